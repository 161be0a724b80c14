"""The demo library, and synthetic fabric data sets (`synth`)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fabricsearch.demo import demo_folder, ensure_demo_library

if TYPE_CHECKING:
    from fabricsearch.jobs import CancelToken, ProgressFn

__all__ = ["demo_folder", "ensure_demo_library", "write_synthetic_dataset"]


def write_synthetic_dataset(
    out_dir: str | Path,
    count: int,
    seed: int,
    size: int = 256,
    photos_per_fabric: int = 2,
    fmt: str = "jpg",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> Path:
    """Write ``count`` synthetic fabric photos and their labels CSV; the CSV's path
    (`synth.write_dataset`, OpenCV imported only now)."""
    from fabricsearch import synth

    return synth.write_dataset(
        out_dir,
        count,
        seed,
        size=size,
        photos_per_fabric=photos_per_fabric,
        fmt=fmt,
        progress=progress,
        cancel=cancel,
    )
