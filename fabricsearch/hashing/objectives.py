"""What the one training loop (`hashing.train.run_loop`) optimises on each batch.

An objective has two duties: it builds the optimisers for a method (`configure_optimizers`)
and performs one optimisation step on a `Batch` (`training_step`, returning float loss
terms), through `TrainContext.backward_step`, the only place an optimiser steps.

* `MethodObjective` — the method's own objective (`HashMethod.training_step`), for supervised
  training on labelled batches: every method, from DVSH to the GAN baselines.
* `SelfSupervisedObjective` — DVSH's objective (`methods.dvsh.dvsh_loss`) with instance
  discrimination (NT-Xent) and nested code prefixes, for synthetic pretraining (`pretrain`:
  photos of one generated fabric are positives) and adaptation to an unlabelled library
  (`adapt`: two views of one photo are positives). One Adam over the trainable weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch

from fabricsearch.hashing.base import Batch, HashMethod, TrainContext


class Objective(Protocol):
    def configure_optimizers(self, method: HashMethod, cfg: Any) -> list[torch.optim.Optimizer]:
        """Optimisers for `method`; `cfg` gives at least ``lr`` and ``weight_decay``."""
        ...

    def training_step(
        self, method: HashMethod, batch: Batch, ctx: TrainContext
    ) -> dict[str, float]:
        """One optimisation step on `batch` → float loss terms ("loss" is the total)."""
        ...


class MethodObjective:
    """The method's own objective and optimisers (supervised training)."""

    def configure_optimizers(self, method: HashMethod, cfg: Any) -> list[torch.optim.Optimizer]:
        return method.configure_optimizers(cfg)

    def training_step(
        self, method: HashMethod, batch: Batch, ctx: TrainContext
    ) -> dict[str, float]:
        return method.training_step(batch, ctx)


def forward_codes(method: HashMethod, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The method's forward output with relaxed codes "u" (DVSH family), or just "u" for
    methods whose forward returns something else."""
    out = method(x)
    if isinstance(out, dict) and "u" in out:
        return out
    return {"u": method.encode_continuous(x)}


@dataclass(frozen=True)
class SelfSupervisedObjective:
    """`dvsh_loss` with the contrastive term over `Batch.groups`; the list-wise term orders by
    `Batch.S` (labels of generated fabrics, or measured descriptor similarity) when
    `lambda_list` > 0. The method's own config gives τ and the balance mode."""

    nested_bits: tuple[int, ...] = ()
    lambda_list: float = 1.0
    lambda_nce: float = 1.0
    nce_temperature: float = 0.2
    lambda_q: float = 1e-3
    lambda_kld: float = 1e-3
    nested_nce: bool = False

    def configure_optimizers(self, method: HashMethod, cfg: Any) -> list[torch.optim.Optimizer]:
        # One Adam over every trainable weight, whatever the method's own schedule would be.
        return HashMethod.configure_optimizers(method, cfg)

    def training_step(
        self, method: HashMethod, batch: Batch, ctx: TrainContext
    ) -> dict[str, float]:
        from fabricsearch.hashing.methods.dvsh import dvsh_loss

        method.train()
        with ctx.autocast():
            out = forward_codes(method, batch.images)
        total, terms = dvsh_loss(
            out,
            batch.S if self.lambda_list > 0 else None,
            lambda_list=self.lambda_list,
            lambda_q=self.lambda_q,
            lambda_kld=self.lambda_kld,
            tau=getattr(method.config, "tau", 0.0) or None,
            balance=getattr(method.config, "balance", "batch"),
            nested_bits=self.nested_bits,
            groups=batch.groups,
            lambda_nce=self.lambda_nce,
            nce_temperature=self.nce_temperature,
            nested_nce=self.nested_nce,
        )
        ctx.backward_step(total)
        return terms
