"""A simple supervised hashing head: the strong, fast baseline DVSH is compared with.

    feature → (sqrt + L2 normalisation, dropout) → FC + ReLU (hidden) → FC → BN → tanh → u
    bit = sign(u)

Loss: cross-entropy of linear classifiers on the relaxed code u (coarse minor class, and the
fine texture where the library has it) plus a small quantisation term pushing |u| to 1 with
balanced bits. On a frozen pretrained backbone's cached features it trains in seconds; on
labelled sets nobody tuned DVSH on it scored higher than DVSH with `train`'s defaults, so
`train_library` trains it alongside DVSH and keeps the one with the higher validation mAP
(docs/dvsh.md, "DVSH or the simple head").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from fabricsearch.hashing import losses
from fabricsearch.hashing.base import (
    MAX_CLASSES,
    MAX_DIM,
    MAX_WEIGHT,
    MAX_WIDTH,
    Batch,
    HashMethod,
    MethodConfig,
    TrainContext,
)
from fabricsearch.hashing.networks import DEFAULT_WIDTHS, make_base
from fabricsearch.hashing.registry import register_method

#: The classifiers see u · 4 so that their logits are not all ≈ 0 at the start (as DVSH's).
CODE_LOGIT_SCALE = 4.0


@dataclass(frozen=True)
class HeadConfig(MethodConfig):
    widths: tuple[int, ...] = DEFAULT_WIDTHS  # BaseNet on pixels (compact backbone only)
    hidden_dim: int = 512  # the hidden layer
    lambda_q: float = 0.01  # quantisation + bit balance
    lambda_fine: float = 1.0  # weight of the fine-texture classifier (0 = coarse only)
    num_minor: int = 0  # classes of the coarse-minor classifier (set by the trainer)
    num_fine: int = 0  # classes of the fine-texture classifier (set by the trainer)

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "widths": (1, MAX_WIDTH),
        "hidden_dim": (1, MAX_DIM),
        "lambda_q": (0.0, MAX_WEIGHT),
        "lambda_fine": (0.0, MAX_WEIGHT),
        "num_minor": (0, MAX_CLASSES),
        "num_fine": (0, MAX_CLASSES),
    }


@register_method("head")
class SupervisedHead(HashMethod):
    """Features → hidden layer (ReLU) → K tanh bits, trained by classification on the code."""

    Config = HeadConfig
    config: HeadConfig
    supports_features = True
    label_head_prefixes = ("code_minor.", "code_fine.")

    def __init__(self, config: HeadConfig) -> None:
        super().__init__(config)
        c = config
        self.base = make_base(
            c.backbone,
            c.widths,
            c.hidden_dim,
            c.finetune_blocks,
            c.feature_norm,
            c.feature_dropout,
        )
        self.code = nn.Linear(c.hidden_dim, c.bits)
        self.code_norm = nn.BatchNorm1d(c.bits)
        self.code_minor = nn.Linear(c.bits, c.num_minor) if c.num_minor > 0 else None
        self.code_fine = nn.Linear(c.bits, c.num_fine) if c.num_fine > 0 else None

    def base_network(self) -> nn.Module:
        return self.base

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.code_norm(self.code(self.base(x))).float())

    def compute_losses(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        u = self.encode_continuous(batch.images)
        total = u.new_zeros((), dtype=torch.float32)
        terms: dict[str, float] = {}
        if batch.labels is not None:
            x = u * CODE_LOGIT_SCALE
            l_cls = x.new_zeros(())
            if self.code_minor is not None:
                l_cls = l_cls + losses.classification_loss(
                    self.code_minor(x).float(), batch.labels.minor
                )
            if self.code_fine is not None and c.lambda_fine > 0:
                l_cls = l_cls + c.lambda_fine * losses.classification_loss(
                    self.code_fine(x).float(), batch.labels.fine
                )
            total = total + l_cls
            terms["cls"] = float(l_cls.detach())
        l_q = losses.quantization_loss(u, balance="batch") / c.bits
        total = total + c.lambda_q * l_q
        terms["quant"] = float(l_q.detach())
        terms["loss"] = float(total.detach())
        return total, terms

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        self.train()
        with ctx.autocast():
            total, terms = self.compute_losses(batch)
        ctx.backward_step(total)
        return terms

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class probabilities from the code classifiers (coarse minor, fine texture)."""
        with self.evaluating():
            u = self.encode_continuous(x) * CODE_LOGIT_SCALE
        probs: dict[str, torch.Tensor] = {}
        for key, head in (("minor", self.code_minor), ("fine", self.code_fine)):
            if head is not None:
                probs[key] = head(u).float().softmax(dim=1)
        return probs

    def extra_metadata(self) -> dict[str, Any]:
        return {"bit_rule": "u = tanh(BN(W h + b)); bit = sign(u)"}
