"""The one training loop (`hashing.train.run_loop`): sources and objectives plug in, one place
steps an optimiser, and DVSH's objective is written once (issue 21)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from hashing_helpers import TINY_OPTIONS

from fabricsearch.hashing import losses, registry
from fabricsearch.hashing.base import Batch, HashMethod, TrainContext
from fabricsearch.hashing.methods.dvsh import dvsh_loss
from fabricsearch.hashing.objectives import SelfSupervisedObjective
from fabricsearch.hashing.schedule import LRSchedule
from fabricsearch.hashing.train import (
    LoopPlan,
    run_loop,
    seeded,
    training_context,
)
from fabricsearch.jobs import Cancelled, CancelToken, Progress

PACKAGE = Path(__file__).resolve().parents[1] / "fabricsearch"


class _Source:
    """A minimal data source: random images, every photo its own group."""

    def __init__(self, n: int = 6, size: int = 32) -> None:
        self.n, self.size, self.epochs_begun = n, size, 0

    def begin_epoch(self, generator: torch.Generator) -> None:
        self.epochs_begun += 1

    def batch(self, i: int, generator: torch.Generator) -> Batch:
        images = torch.randn(self.n, 3, self.size, self.size, generator=generator)
        return Batch(images=images, labels=None, S=None, groups=torch.arange(self.n).repeat(1))


class _RecordingObjective(SelfSupervisedObjective):
    def __init__(self) -> None:
        super().__init__(lambda_list=0.0, lambda_nce=0.0)
        object.__setattr__(self, "lrs", [])

    def training_step(
        self, method: HashMethod, batch: Batch, ctx: TrainContext
    ) -> dict[str, float]:
        self.lrs.append(ctx.optimizers[0].param_groups[0]["lr"])  # type: ignore[attr-defined]
        return super().training_step(method, batch, ctx)


class _Opt:
    lr, weight_decay = 1e-3, 0.0


def _method() -> HashMethod:
    return registry.create_method("dvsh", bits=8, input_size=32, **TINY_OPTIONS)


def test_a_source_and_an_objective_plug_into_the_one_loop() -> None:
    gen = seeded(0)
    method = _method()
    objective = _RecordingObjective()
    ctx = training_context(method, objective, _Opt(), torch.device("cpu"), False, gen)
    source = _Source()
    seen: list[Progress] = []
    plan = LoopPlan(
        stage="custom",
        epochs=3,
        steps_per_epoch=2,
        batch_size=6,
        schedule=LRSchedule("cosine"),
        max_steps=5,
        epoch_keys=("epoch",),
    )
    state = run_loop(method, ctx, source, plan, objective, progress=seen.append)
    assert ctx.step == 5  # the step cap cuts the third epoch short
    assert source.epochs_begun == 3
    assert [h["step"] for h in state.history] == [2, 4, 5]
    assert {"quant", "kld", "loss"} <= set(state.history[-1])
    assert objective.lrs[0] == pytest.approx(1e-3)  # cosine from the base rate, no warm-up
    assert objective.lrs == sorted(objective.lrs, reverse=True)
    assert [p.done for p in seen] == [1, 2, 3, 4, 5]
    assert {p.total for p in seen} == {5}
    info = seen[-1].info
    assert info["epoch"] == 3
    assert "epochs" not in info
    assert {"samples/s", "eta_s"} <= set(info)


def test_history_every_n_steps_and_a_constant_rate() -> None:
    method = _method()
    objective = _RecordingObjective()
    ctx = training_context(method, objective, _Opt(), torch.device("cpu"), False, seeded(1))
    plan = LoopPlan("stream", 1, 5, 6, schedule=LRSchedule("constant"), log_every=2, epoch_keys=())
    state = run_loop(method, ctx, _Source(), plan, objective)
    assert [h["step"] for h in state.history] == [2, 4, 5]  # and the last, shorter chunk
    assert all("epoch" not in h for h in state.history)
    assert objective.lrs == [pytest.approx(1e-3)] * 5


def test_the_loop_is_seeded_and_cancellable() -> None:
    def run() -> dict[str, torch.Tensor]:
        gen = seeded(3)  # before the weights are drawn, as every run does
        method = _method()
        obj = SelfSupervisedObjective(lambda_list=0.0)
        ctx = training_context(method, obj, _Opt(), torch.device("cpu"), False, gen)
        run_loop(method, ctx, _Source(), LoopPlan("s", 1, 2, 6), obj)
        return method.state_dict()

    a, b = run(), run()
    assert all(torch.equal(a[k], b[k]) for k in a)

    cancel = CancelToken()
    method = _method()
    obj = SelfSupervisedObjective()
    ctx = training_context(method, obj, _Opt(), torch.device("cpu"), False, seeded(0))
    with pytest.raises(Cancelled):
        run_loop(
            method,
            ctx,
            _Source(),
            LoopPlan("s", 2, 3, 6),
            obj,
            progress=lambda p: cancel.cancel(),
            cancel=cancel,
        )
    assert ctx.step == 1


def test_an_optimiser_steps_in_one_module_only() -> None:
    """Every objective steps through `TrainContext.backward_step` (hashing/base.py)."""
    pattern = re.compile(r"\b(opt\w*|optimi[sz]er\w*|scaler)\.step\(")
    found = {
        p.relative_to(PACKAGE).as_posix()
        for p in PACKAGE.rglob("*.py")
        if pattern.search(p.read_text(encoding="utf-8"))
    }
    assert found == {"hashing/base.py"}


def test_dvsh_objective_is_written_once() -> None:
    """Supervised DVSH and the self-supervised objective share `dvsh_loss`: without heads the
    supervised terms are exactly dvsh_loss with the model's weights; groups add λ·NT-Xent."""
    from hashing_helpers import synthetic_batch

    m = registry.create_method("dvsh", bits=16, input_size=32, **TINY_OPTIONS)
    batch = synthetic_batch()
    m.eval()  # deterministic forward (no sampling) for the comparison
    total, terms = m.compute_losses(batch)
    with torch.no_grad():
        out = m(batch.images)
    c = m.config
    ref_total, ref_terms = dvsh_loss(
        out,
        batch.S,
        tau=c.tau or None,
        balance=c.balance,
        lambda_list=c.lambda_list,
        lambda_q=c.lambda_q,
        lambda_kld=c.lambda_kld,
    )
    assert terms == pytest.approx(ref_terms)
    groups = torch.arange(len(batch.images)) // 2
    with_nce, nce_terms = dvsh_loss(
        out, batch.S, lambda_nce=2.0, groups=groups, tau=c.tau or None, balance=c.balance
    )
    expected = float(ref_total) + 2.0 * float(losses.nt_xent_loss(out["u"], groups))
    assert float(with_nce) == pytest.approx(expected, rel=1e-5)
    assert "nce" in nce_terms
