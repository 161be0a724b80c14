"""Learning-rate schedule shared by training (`hashing.train`) and pretraining (`pretrain`)."""

from __future__ import annotations

import math


def lr_factor(step: int, total: int, warmup_frac: float = 0.05, floor: float = 0.05) -> float:
    """Learning-rate multiplier at `step` (counted from 0) of `total`: a linear warm-up over
    `warmup_frac` of the steps (at least one step when > 0), then a cosine decay to `floor`."""
    warm = max(1, int(round(total * warmup_frac))) if warmup_frac > 0 else 0
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * min(1.0, t)))
