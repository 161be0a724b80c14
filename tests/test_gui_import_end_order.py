# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""The status bar's import bar is gone when ``importEnded`` arrives, however late the
import's thread gets to its own ``ended`` (tests/test_gui_import_background.py failed about
3 runs in 11 on a loaded machine: the grid's reload after the outcome, and with it
``importEnded``, could come before the thread's ``ended`` that hid the bar)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from test_gui_support import gui_env, open_library, window  # noqa: F401 - fixtures

pytestmark = pytest.mark.gui

N_PHOTOS = 4
#: How long the import's thread is held between its outcome and its ``ended``, as a thread
#: descheduled on a busy machine is (the grid's reload takes far less).
LATE_END_S = 3.0


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fabricsearch import synth

    folder = tmp_path_factory.mktemp("incoming")
    synth.write_dataset(folder, N_PHOTOS, seed=5, size=40)
    (folder / "labels.csv").unlink()
    return folder


def hold_the_thread(worker) -> None:
    """Make the import's thread wait after each outcome signal, before its ``ended``: a
    direct connection runs in the emitting thread, after the window's queued callbacks were
    posted."""
    direct = Qt.ConnectionType.DirectConnection
    worker.finished.connect(lambda _: time.sleep(LATE_END_S), direct)
    worker.cancelled.connect(lambda: time.sleep(LATE_END_S), direct)


@pytest.mark.parametrize("cancel", [False, True], ids=["finished", "cancelled"])
def test_the_bar_is_gone_when_the_import_ends(
    window, tmp_path: Path, photos: Path, qtbot, cancel: bool
) -> None:
    assert open_library(window, tmp_path / "lib", create=True)
    libraries = window.libraries
    bar = libraries.import_bar
    with qtbot.waitSignal(window.importEnded, timeout=120_000) as ended:
        worker = libraries.import_folder(photos)
        hold_the_thread(worker)
        assert bar.isVisible()
        if cancel:
            bar.cancel_button.click()
    assert (ended.args[0] is None) == cancel
    assert worker.running  # its thread has not reached ``ended`` yet
    assert not bar.isVisible()
    assert not bar.running
    qtbot.waitUntil(lambda: not worker.running, timeout=30_000)
    assert not bar.isVisible()
