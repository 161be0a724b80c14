"""Tiny configurations and synthetic batches shared by the hashing tests."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch

from fabricsearch.hashing.base import Batch, BatchLabels
from fabricsearch.hashing.registry import method_config_class
from fabricsearch.similarity import LabelArrays, fine_grained_torch

# Small widths so a forward/backward pass takes milliseconds. Methods whose Config has fields
# of these names get them; others get only bits and input_size.
TINY_OPTIONS: dict[str, Any] = {
    "widths": (4, 8, 8, 8, 8),
    "feature_dim": 16,
    "latent_dim": 8,
    "hidden_dim": 16,
}


def tiny_options(method: str) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(method_config_class(method))}
    return {k: v for k, v in TINY_OPTIONS.items() if k in names}


def synthetic_labels(n: int, seed: int = 0, classes: int = 3) -> LabelArrays:
    rng = np.random.default_rng(seed)
    minor = rng.integers(0, classes, n)
    palette = np.zeros((n, 10, 4), np.float32)
    palette[np.arange(n), minor, 3] = 1.0  # one dominant colour per class
    palette[..., 2] = 200.0
    return LabelArrays(
        major=np.zeros(n, np.int64),
        minor=minor,
        fine=np.full(n, -1),
        tightness=np.full(n, np.nan, np.float32),
        palette=palette,
    )


def synthetic_images(labels: LabelArrays, size: int = 40, seed: int = 0) -> list[np.ndarray]:
    """Class-dependent stripes plus noise, uint8 RGB."""
    rng = np.random.default_rng(seed)
    out = []
    for c in labels.minor.tolist():
        img = rng.integers(0, 60, (size, size, 3)).astype(np.uint8)
        period = 4 + 3 * int(c)
        img[:, ::period, c % 3] = 230
        out.append(img)
    return out


def synthetic_batch(n: int = 6, size: int = 32, seed: int = 0) -> Batch:
    labels = synthetic_labels(n, seed)
    t = BatchLabels(*labels.to_torch())
    g = torch.Generator().manual_seed(seed)
    return Batch(
        images=torch.randn(n, 3, size, size, generator=g),
        labels=t,
        S=fine_grained_torch(*t.as_tuple()),
        indices=torch.arange(n),
    )
