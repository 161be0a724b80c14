# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI: work the window hands to threads stays off the GUI thread and out of Qt's way there
(issues 21/24 follow-up): a photo copied to the clipboard is decoded in a worker, a thumbnail
load that ends after its library closed changes nothing."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from gui_heartbeat import MAX_BLOCK_S, heartbeat
from PySide6.QtCore import QCoreApplication
from PySide6.QtGui import QGuiApplication
from test_gui_import_background import photos, slow_features  # noqa: F401 - fixtures
from test_gui_responsive import slowed
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

pytestmark = pytest.mark.gui


def test_copy_image_decodes_the_photo_in_a_worker(
    window, library_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch.gui import export

    assert open_library(window, library_path)
    rec = window.browser.all_records()[2]
    window.browser.grid.select_ids([rec.id])
    readers = slowed(monkeypatch, export, "read_full_image")
    QGuiApplication.clipboard().clear()
    with heartbeat() as beat:
        window.copy_image_action.trigger()
        assert "Copying" in window.statusBar().currentMessage()
        qtbot.waitUntil(
            lambda: window.statusBar().currentMessage() == f"Copied {rec.path.name}",
            timeout=30_000,
        )
    assert beat.longest < MAX_BLOCK_S, beat.report()
    assert readers
    assert threading.main_thread() not in readers
    image = QGuiApplication.clipboard().image()
    assert (image.width(), image.height()) == (rec.width, rec.height)


def test_copy_image_of_an_unreadable_photo_copies_its_preview(
    window, library_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    rec = window.browser.all_records()[1]
    window.browser.grid.select_ids([rec.id])
    cache = window.cache
    qtbot.waitUntil(lambda: cache.request_image(rec) is not None, timeout=30_000)
    Path(rec.path).unlink()  # moved away since the import
    QGuiApplication.clipboard().clear()
    window.copy_image_action.trigger()
    qtbot.waitUntil(
        lambda: window.statusBar().currentMessage() == f"Copied {rec.path.name}", timeout=30_000
    )
    image = QGuiApplication.clipboard().image()
    assert not image.isNull()
    assert image.size() == cache.image(rec.id).size()  # the cached preview


def test_a_thumbnail_failing_after_its_library_closed_changes_nothing(qtbot) -> None:
    """The load ran while the library closed (`stop` waits for it); its failure, delivered
    after, was recorded and announced for a library no longer shown."""
    from fabricsearch.catalogue import ImageRecord
    from fabricsearch.gui.models import ThumbnailCache

    class GoneLibrary:
        def thumbnail(self, record: ImageRecord, size: int) -> Path:
            raise OSError("the library's folder is gone")

    cache = ThumbnailCache(GoneLibrary())
    announced: list[int] = []
    cache.ready.connect(announced.append)
    rec = ImageRecord(
        id=7,
        path=Path("/nowhere/7.jpg"),
        sha256="0" * 64,
        size=1,
        mtime=0.0,
        width=8,
        height=8,
        added=0.0,
        palette=np.zeros((10, 4), np.float32),
    )
    assert cache.pixmap(rec) is None  # a load queued
    cache.stop()  # waits for it: its failure is queued to the GUI thread
    QCoreApplication.sendPostedEvents()  # the queued failure arrives (and must change nothing)
    QCoreApplication.processEvents()
    assert announced == []
    assert not cache.failed(rec.id)


def test_the_heartbeat_names_who_ran_during_the_longest_gap(qtbot) -> None:
    """`heartbeat(threads=True)`: the GUI thread's own CPU time in its longest gap, so a gap it
    spent working tells apart from one it spent waiting for the interpreter or a core."""
    import os
    import time

    from PySide6.QtCore import QTimer

    done: list[bool] = []

    def busy() -> None:  # a slot that works 0.3 s on the GUI thread
        end = time.thread_time() + 0.3
        while time.thread_time() < end:
            pass
        done.append(True)

    with heartbeat(threads=True) as beat:
        QTimer.singleShot(100, busy)
        qtbot.waitUntil(lambda: bool(done), timeout=10_000)
    assert beat.longest >= 0.3
    gui = {n: s for n, s in beat.longest_cpu.items() if n.endswith(f"/{os.getpid()}")}
    assert sum(gui.values()) >= 0.25, beat.longest_cpu
    assert "CPU s during it" in beat.report()


def test_label_suggestions_wait_for_the_import_to_end(
    window, tmp_path: Path, photos: Path, slow_features: None, qtbot
) -> None:
    """Each grid reload during an import restarted a prediction over every unlabelled image
    (a model load, the network on photos the import's own thread was reading), competing with
    the import for the cores while the window waited; now the import's last reload asks."""
    assert open_library(window, tmp_path / "lib", create=True)
    runner = window.runner
    started: list[tuple[str, str]] = []  # (job, the import's state then)
    real_start = runner.start

    def recording(fn, **kwargs):  # type: ignore[no-untyped-def]
        importing = runner.worker("import")
        started.append((kwargs.get("name", ""), importing.state if importing else "none"))
        return real_start(fn, **kwargs)

    runner.start = recording  # type: ignore[method-assign]
    with qtbot.waitSignal(window.importEnded, timeout=120_000):
        window.libraries.import_folder(photos)
    qtbot.waitUntil(lambda: any(name == "suggest" for name, _ in started), timeout=30_000)
    assert ("records", "running") in started  # the grid did reload during the import
    assert ("suggest", "running") not in started, started
