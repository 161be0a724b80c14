"""The demo library, and synthetic fabric data sets (`synth`)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

from fabricsearch.demo import demo_folder, ensure_demo_library
from fabricsearch.jobs import Progress

if TYPE_CHECKING:
    from fabricsearch.jobs import CancelToken, ProgressFn

__all__ = [
    "demo_folder",
    "ensure_demo_library",
    "prepare_demo_library",
    "write_synthetic_dataset",
]

# The demo's build, stage by stage: (stage, share of the whole, what the user is told). The
# shares are those of a first start on a laptop CPU; any other stage (fitting the search
# model, encoding) shares what is left.
DEMO_STAGES: tuple[tuple[str, float, str], ...] = (
    ("synth", 0.30, "Drawing the demo fabrics"),
    ("scan", 0.02, "Reading photos"),
    ("import", 0.30, "Reading photos"),
    ("features", 0.20, "Learning what they look like"),
)
LAST_STAGE_WORDS = "Making them searchable"


class OverallProgress:
    """Turns the build's per-stage reports (each restarting at 0) into one percentage that
    only grows: ``Progress("demo", percent, 100, "%", message=words)``."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.progress = progress
        self.percent = 0
        self._lock = threading.Lock()  # the import reports from its worker threads too

    def __call__(self, p: Progress) -> None:
        start, share, words = 0.0, 0.0, LAST_STAGE_WORDS
        for stage, weight, said in DEMO_STAGES:
            if stage == p.stage:
                share, words = weight, said
                break
            start += weight
        else:
            share = 1.0 - start
        fraction = p.fraction or 0.0
        with self._lock:
            self.percent = max(self.percent, min(99, int(100 * (start + share * fraction))))
            percent = self.percent
        if self.progress is not None:
            self.progress(Progress("demo", percent, 100, "%", message=words))


def prepare_demo_library(
    progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> Path:
    """`ensure_demo_library` reporting one overall percentage (`OverallProgress`), for a
    window that shows "Preparing the demo library… 40 %" while it builds."""
    overall = OverallProgress(progress)
    folder = Path(ensure_demo_library(progress=overall, cancel=cancel))
    if progress is not None:
        progress(Progress("demo", 100, 100, "%", message="Ready"))
    return folder


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
