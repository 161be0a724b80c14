# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""Issue 24, an hour of use: switching libraries and running jobs leaves nothing of the
previous library or of ended jobs in memory (scripts/long_session.py found the resident size
growing ~25 MB per library switch: every job's worker, every library's thumbnail cache,
grid model and selection model were kept by their Qt parents)."""

from __future__ import annotations

import gc
import shutil
from collections import Counter
from pathlib import Path

import pytest
from PySide6.QtCore import QCoreApplication, QEvent
from test_gui_support import (  # noqa: F401 - fixtures
    N_IMAGES,
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

pytestmark = pytest.mark.gui

KINDS = ("ThumbnailCache", "LibraryModel", "ResultsModel", "Worker", "QItemSelectionModel")


def live(qtbot) -> Counter[str]:
    qtbot.wait(20)  # queued thread-finished events
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    counts = Counter(type(o).__name__ for o in gc.get_objects())
    return Counter({k: counts[k] for k in KINDS})


def test_switching_libraries_keeps_nothing_of_the_previous_ones(
    window, library_path: Path, tmp_path: Path, qtbot
) -> None:
    other = tmp_path / "other"
    shutil.copytree(library_path, other)
    assert open_library(window, library_path)
    assert open_library(window, other)
    assert open_library(window, library_path)
    before = live(qtbot)
    old_cache = window.cache
    for _ in range(4):
        assert open_library(window, other)
        assert open_library(window, library_path)
    # The closed library's previews are let go, and it loads nothing more.
    assert old_cache.image(window.browser.model.record(0).id) is None
    del old_cache
    after = live(qtbot)
    assert after == before, (before, after)
    assert window.browser.model.rowCount() == N_IMAGES


def test_ended_jobs_are_let_go(window, library_path: Path, qtbot) -> None:
    assert open_library(window, library_path)
    for _ in range(2):
        window.libraries.reload_records()
        qtbot.waitUntil(lambda: not window.libraries.loading, timeout=30_000)
    before = live(qtbot)["Worker"]
    for _ in range(6):
        window.libraries.reload_records()
        qtbot.waitUntil(lambda: not window.libraries.loading, timeout=30_000)
    assert live(qtbot)["Worker"] <= before
    # The latest job of a slot stays readable.
    assert window.runner.worker("records").state == "finished"
