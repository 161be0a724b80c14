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


def slowed(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> list[threading.Thread]:
    """Replace ``owner.name`` by a copy that sleeps `SLOW_S` first; the threads it ran in."""
    original = getattr(owner, name)
    threads: list[threading.Thread] = []

    def slow(*args: object, **kwargs: object) -> object:
        threads.append(threading.current_thread())
        time.sleep(SLOW_S)
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
