"""The learning-rate schedule of the one training loop (`hashing.train.run_loop`)."""

from __future__ import annotations

import math
from dataclasses import dataclass


def lr_factor(step: int, total: int, warmup_frac: float = 0.05, floor: float = 0.05) -> float:
    """Learning-rate multiplier at `step` (counted from 0) of `total`: a linear warm-up over
    `warmup_frac` of the steps (at least one step when > 0), then a cosine decay to `floor`."""
    warm = max(1, int(round(total * warmup_frac))) if warmup_frac > 0 else 0
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))


@dataclass(frozen=True)
class LRSchedule:
    """How the loop scales each parameter group's base learning rate: "constant" (always 1;
    adaptation) or "cosine" (`lr_factor`: warm-up over `warmup_frac`, then a cosine decay to
    `floor`; training: no warm-up, to 0; synthetic pretraining: 5 % warm-up, to 5 %)."""

    kind: str = "cosine"
    warmup_frac: float = 0.0
    floor: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("cosine", "constant"):
            raise ValueError(f"unknown learning-rate schedule {self.kind!r}")

    def factor(self, step: int, total: int) -> float:
        if self.kind == "constant":
            return 1.0
        return lr_factor(step, total, warmup_frac=self.warmup_frac, floor=self.floor)
