# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI: the window keeps answering (GUI thread never blocked > 0.5 s; issue 24) while Model ▸
Versions evaluates, a contact sheet is written and a library opens. Each job is slowed to 1.5 s
where it runs: on the GUI thread that is a 1.5 s gap of the heartbeat, in a worker none."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from gui_heartbeat import MAX_BLOCK_S, heartbeat
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

pytestmark = pytest.mark.gui

SLOW_S = 1.5


def slowed(
    monkeypatch: pytest.MonkeyPatch, owner: object, name: str, seconds: float = SLOW_S
) -> list[threading.Thread]:
    """Replace ``owner.name`` by a copy that sleeps `seconds` first; the threads it ran in."""
    original = getattr(owner, name)
    threads: list[threading.Thread] = []

    def slow(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread())
        time.sleep(seconds)
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, slow)
    return threads


def test_versions_open_at_once_and_fill_in_from_a_worker(
    window, trained_library_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch.gui.dialogs.versions_dialog import VersionsDialog
    from fabricsearch.hashing import evaluate

    open_library(window, trained_library_path)
    threads = slowed(monkeypatch, evaluate, "assess_library_codes")
    with heartbeat() as beat:
        window.versions_action.trigger()
        dialog = window.last_dialog
        assert isinstance(dialog, VersionsDialog)
        # Listed at once, the figures still to come.
        assert dialog.table.rowCount() == 1
        assert dialog.table.item(0, 5).text() == "evaluating…"
        assert dialog.stop_button.isVisible()
        qtbot.waitUntil(lambda: dialog.state == "done", timeout=60_000)
    assert beat.longest < MAX_BLOCK_S, beat.report()
    assert threads
    assert threading.main_thread() not in threads
    assert 0.0 <= float(dialog.table.item(0, 5).text()) <= 1.0
    assert int(dialog.table.item(0, 6).text()) > 0
    assert not dialog.stop_button.isVisible()


def test_closing_versions_cancels_the_evaluation(
    window, trained_library_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch.hashing import evaluate

    open_library(window, trained_library_path)
    threads = slowed(monkeypatch, evaluate, "assess_library_codes")
    window.versions_action.trigger()
    dialog = window.last_dialog
    worker = dialog.worker
    qtbot.waitUntil(lambda: bool(threads), timeout=30_000)
    dialog.reject()  # Close (Escape) while the model is being evaluated
    qtbot.waitUntil(lambda: worker.state == "cancelled", timeout=30_000)
    qtbot.waitUntil(lambda: dialog.state == "stopped", timeout=30_000)
    # The model evaluated before the cancel keeps its figure; nothing says "evaluating…".
    assert "stopped" in dialog.status.text()
    assert dialog.table.item(0, 5).text() != "evaluating…"
    assert not dialog.stop_button.isVisible()


def test_library_opens_in_a_worker_while_the_window_answers(
    window, library_path: Path, tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtCore import QTimer

    from fabricsearch.catalogue import Library

    threads = slowed(monkeypatch, Library, "open")  # a team library's server answering slowly
    meanwhile: list[object] = []

    def during_the_open() -> None:
        meanwhile.append(window.statusBar().currentMessage())
        meanwhile.append(window.open_library(tmp_path / "another"))  # a second open waits

    QTimer.singleShot(int(SLOW_S * 1000 / 3), during_the_open)
    with heartbeat() as beat:
        # Returns once the library is open, the window answering meanwhile.
        assert window.open_library(library_path)
    assert beat.longest < MAX_BLOCK_S, beat.report()
    assert threads
    assert threading.main_thread() not in threads
    assert meanwhile == [f"Opening {library_path}…", False]
    assert window.library.folder == library_path.resolve()
    with heartbeat() as beat:
        qtbot.waitUntil(lambda: not window.libraries.loading, timeout=30_000)
    assert beat.longest < MAX_BLOCK_S, beat.report()
    assert window.browser.count_all() > 0


def test_a_failed_open_in_the_worker_is_reported(window, tmp_path: Path) -> None:
    with heartbeat() as beat:
        assert not window.open_library(tmp_path / "junk")
    assert beat.longest < MAX_BLOCK_S, beat.report()
    assert window.library is None
    assert window.welcome.problem.isVisible()
    assert "junk" in window.welcome.problem.text()
    assert window.libraries.opening is None


def test_contact_sheet_is_drawn_in_a_worker(
    window, trained_library_path: Path, tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtGui import QImage

    from fabricsearch.catalogue import Library
    from fabricsearch.gui import export

    open_library(window, trained_library_path)
    rec = window.browser.all_records()[3]
    window.browser.grid.select_ids([rec.id])
    with qtbot.waitSignal(window.searchFinished, timeout=60_000):
        window.similar_action.trigger()
    writers = slowed(monkeypatch, export, "write_contact_sheet")
    thumbnails = slowed(monkeypatch, Library, "thumbnail", seconds=0.0)  # only where it ran
    saved = f"Saved {tmp_path / 'sheet.png'}"
    with heartbeat() as beat:
        worker = window.searching.export_sheet(tmp_path / "sheet.png")
        assert "Saving the contact sheet" in window.statusBar().currentMessage()
        qtbot.waitUntil(lambda: window.statusBar().currentMessage() == saved, timeout=60_000)
    assert beat.longest < MAX_BLOCK_S, beat.report()
    assert worker.state == "finished"
    # Drawn, and every thumbnail read, off the GUI thread.
    assert writers
    assert thumbnails
    assert threading.main_thread() not in writers + thumbnails
    sheet = QImage(str(tmp_path / "sheet.png"))
    assert sheet.width() > 500
    assert sheet.height() > 300
