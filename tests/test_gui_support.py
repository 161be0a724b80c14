"""Fixtures for the GUI tests (imported by the other test_gui_* files) and tests of the
GUI plumbing that needs no library: settings, logging, the generic worker."""

from __future__ import annotations

import logging
import shutil
import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402

from fabricsearch.errors import UserError  # noqa: E402
from fabricsearch.jobs import Cancelled, Progress, check  # noqa: E402

pytestmark = pytest.mark.gui

N_IMAGES = 24
IMAGE_PX = 64


def tiny_train_overrides(**extra: object) -> dict[str, object]:
    """A model small enough to train in seconds on two shared CPU cores."""
    return {
        "input_size": 32,
        "epochs": 1,
        "batch_size": 8,
        "bits": 32,
        "device": "cpu",
        "amp": False,
        "patience": 0,
        "min_steps": 0,
        **extra,
    }


def wait_for(predicate, timeout_ms: int = 30_000) -> None:
    """Process events until `predicate()` holds (qtbot.waitUntil without a qtbot at hand)."""
    from PySide6.QtCore import QDeadlineTimer, QEventLoop
    from PySide6.QtWidgets import QApplication

    deadline = QDeadlineTimer(timeout_ms)
    while not predicate():
        assert not deadline.hasExpired(), "timed out"
        QApplication.processEvents(QEventLoop.ProcessEventsFlag.WaitForMoreEvents, 50)


def wait_records(window) -> None:
    """Records load in a worker: wait until the grid shows them."""
    wait_for(lambda: window.library is None or not window.libraries.loading)


def open_library(window, path: Path, create: bool = False) -> bool:
    """Open a library as the user does and wait for its records to be shown."""
    if not window.open_library(path, create=create):
        return False
    wait_records(window)
    return True


@pytest.fixture
def gui_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Settings and the data folder under tmp_path; every worker stopped afterwards, with
    the workers that their queued outcomes start (nothing left running into the next test,
    or into the interpreter's exit when a failing test ends the run)."""
    from fabricsearch.gui.workers import shut_down_workers

    QSettings.setPath(
        QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(tmp_path / "settings")
    )
    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path / "data"))
    yield tmp_path
    assert shut_down_workers(60_000)


@pytest.fixture(scope="session")
def fabric_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated woven-fabric photos with exact labels (labels.csv beside them)."""
    from fabricsearch import synth

    folder = tmp_path_factory.mktemp("fabrics")
    synth.write_dataset(folder, N_IMAGES, seed=0, size=IMAGE_PX)
    return folder


@pytest.fixture(scope="session")
def library_template(tmp_path_factory: pytest.TempPathFactory, fabric_folder: Path) -> Path:
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import import_folder

    folder = tmp_path_factory.mktemp("libtemplate") / "lib"
    with Library.create(folder) as lib:
        report = import_folder(
            lib, fabric_folder, labels_csv=fabric_folder / "labels.csv", workers=0
        )
        assert report.added == N_IMAGES
        assert not report.failed
    return folder


@pytest.fixture(scope="session")
def trained_template(tmp_path_factory: pytest.TempPathFactory, library_template: Path) -> Path:
    """The library with one tiny trained model (trained once per session)."""
    from fabricsearch.catalogue import Library
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library

    folder = tmp_path_factory.mktemp("trainedtemplate") / "lib"
    shutil.copytree(library_template, folder)
    with Library.open(folder) as lib:
        train_library(lib, TrainConfig(**tiny_train_overrides(epochs=2)))
    return folder


@pytest.fixture
def library_path(tmp_path: Path, library_template: Path) -> Path:
    folder = tmp_path / "lib"
    shutil.copytree(library_template, folder)
    return folder


@pytest.fixture
def trained_library_path(tmp_path: Path, trained_template: Path) -> Path:
    folder = tmp_path / "trained"
    shutil.copytree(trained_template, folder)
    return folder


@pytest.fixture
def window(qtbot, gui_env):
    from fabricsearch.config import TrainConfig
    from fabricsearch.gui.main_window import MainWindow
    from fabricsearch.gui.messages import RecordingSink
    from fabricsearch.gui.settings import Settings

    # Messages and questions are recorded (questions answered yes), and models are tiny:
    # both injected, nothing in the window knows it runs under a test.
    win = MainWindow(
        Settings(), sink=RecordingSink(), train_config=TrainConfig(**tiny_train_overrides())
    )
    win.libraries.import_workers = 0
    qtbot.addWidget(win)
    win.resize(1200, 800)
    win.show()
    yield win
    win.close()


# --- tests of the plumbing --------------------------------------------------------------
def test_settings_round_trip(gui_env: Path) -> None:
    from fabricsearch.gui.settings import Settings

    s = Settings()
    assert s.last_library is None
    assert s.recent_libraries() == []
    s.add_recent_library(gui_env / "a")
    s.add_recent_library(gui_env / "b")
    s.add_recent_library(gui_env / "a")
    s.thumb_size = 224
    s.sync()
    assert str(gui_env / "settings") in s.file_name
    again = Settings()
    assert again.recent_libraries() == [(gui_env / "a").resolve(), (gui_env / "b").resolve()]
    assert again.last_library == (gui_env / "a").resolve()
    assert again.thumb_size == 224
    again.thumb_size = 99  # not an offered size → default
    assert again.thumb_size == 128


def test_logging_goes_to_the_data_folder(gui_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fabricsearch import logging_setup

    path = logging_setup.setup_logging()
    assert path == gui_env / "data" / "fabricsearch.log"
    logging.getLogger("fabricsearch.test").info("hello from the test")
    assert "hello from the test" in path.read_text(encoding="utf-8")
    assert logging_setup.current_log_file() == path
    monkeypatch.delenv("FABRICSEARCH_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(gui_env / "xdg"))
    monkeypatch.setattr(logging_setup.sys, "platform", "linux")
    assert logging_setup.data_dir() == gui_env / "xdg" / "fabricsearch"
    monkeypatch.setenv("APPDATA", str(gui_env / "roaming"))
    monkeypatch.setattr(logging_setup.sys, "platform", "win32")
    from platformdirs import windows  # off Windows: the folders come from the environment

    monkeypatch.setattr(windows, "_RESOLVE_WIN_FOLDER", windows.get_win_folder_from_env_vars)
    assert logging_setup.data_dir() == gui_env / "roaming" / "fabricsearch"


def test_worker_finishes_with_throttled_progress(qtbot, gui_env: Path) -> None:
    from fabricsearch.gui.workers import Worker

    def work(progress=None, cancel=None) -> int:
        for i in range(2000):
            progress(Progress("count", i + 1, 2000))
        return 42

    worker = Worker(work, name="count")
    seen: list[Progress] = []
    worker.progress.connect(seen.append)
    with (
        qtbot.waitSignal(worker.ended, timeout=10_000),
        qtbot.waitSignal(worker.finished, timeout=10_000) as blocker,
    ):
        worker.start()
    assert blocker.args == [42]
    assert worker.state == "finished"
    assert 1 <= len(seen) < 200  # throttled, far fewer than the 2000 reports
    qtbot.waitUntil(lambda: seen[-1].done == 2000)  # the last report always arrives


def test_worker_failure_and_cancel(qtbot, gui_env: Path) -> None:
    from fabricsearch.gui.workers import Worker, active_workers, stop_all_workers

    def boom(progress=None, cancel=None) -> None:
        raise UserError("the loom jammed")  # a user error: its message as it is

    worker = Worker(boom)
    with qtbot.waitSignal(worker.failed, timeout=10_000) as blocker:
        worker.start()
    assert blocker.args == ["the loom jammed"]

    started = threading.Event()

    def forever(progress=None, cancel=None) -> None:
        started.set()
        while True:
            check(cancel)
            threading.Event().wait(0.005)

    slow = Worker(forever)
    with qtbot.waitSignal(slow.cancelled, timeout=10_000):
        slow.start()
        assert started.wait(10)
        slow.cancel()
    assert slow.state == "cancelled"

    again = Worker(forever).start()
    assert started.wait(10)
    assert stop_all_workers(10_000)
    assert not again.running
    assert again not in active_workers()
    with pytest.raises(RuntimeError):
        again.start()
    with pytest.raises(Cancelled):
        forever(cancel=again.token)


def test_crash_logging_writes_the_traceback_to_the_log(tmp_path, monkeypatch) -> None:
    import sys

    from fabricsearch import logging_setup

    monkeypatch.setenv("FABRICSEARCH_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "excepthook", lambda *a: None)
    log_path = logging_setup.setup_logging()
    logging_setup.install_crash_logging()
    try:
        raise RuntimeError("boom for the log")
    except RuntimeError:
        sys.excepthook(*sys.exc_info())
    text = log_path.read_text(encoding="utf-8")
    assert "uncaught exception" in text
    assert "boom for the log" in text
