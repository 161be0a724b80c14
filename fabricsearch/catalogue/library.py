"""Library: the SQLite catalogue of one fabric archive. (Contract stub; being implemented.)"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


class LibraryError(Exception):
    """A library folder that cannot be used, with a message for the user."""


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: Path
    sha256: str
    size: int  # bytes
    mtime: float
    width: int
    height: int
    added: float  # unix time
    palette: np.ndarray  # (10, 4) float32, see docs/architecture.md
    coarse: str | None = None  # "major/minor" or "major"
    fine: str | None = None
    tightness: float | None = None  # percent
    labelled_by: str | None = None
    labelled_at: float | None = None

    @property
    def labelled(self) -> bool:
        return self.coarse is not None or self.fine is not None or self.tightness is not None


@dataclass(frozen=True)
class ModelInfo:
    version: str  # unique, e.g. "20261123-141500-dvsh-64"
    method: str
    bits: int
    path: Path  # checkpoint file (weights); metadata JSON beside it
    created: float
    metrics: dict[str, float] = field(default_factory=dict)
    note: str = ""


class Library:  # pragma: no cover - replaced by the implementation
    pass
