"""Start the desktop application: QApplication, logging, settings, the main window.

`run()` is what ``fabricsearch gui`` calls; `--screenshot` and `--self-test` drive the same
window offscreen (documentation screenshots, a smoke test for packaging)."""

from __future__ import annotations

import dataclasses
import logging
import sys
from pathlib import Path
from typing import Any

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtWidgets import QApplication

from fabricsearch.gui.settings import APPLICATION, ORGANISATION, Settings

log = logging.getLogger(__name__)


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication (reused if one exists, e.g. under pytest-qt)."""
    app = QApplication.instance()
    if app is None:
        QApplication.setHighDpiScaleFactorRoundingPolicy(
            Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
        )
        app = QApplication(argv or [sys.argv[0]])
    QCoreApplication.setOrganizationName(ORGANISATION)
    QCoreApplication.setApplicationName(APPLICATION)
    app.setApplicationDisplayName("fabricsearch")
    # numpy's linear algebra in the window's workers leaves a core to the GUI thread: with
    # OpenBLAS's second thread spinning beside an import, it waited 0.4-0.76 s at a time.
    from fabricsearch.services.training import one_blas_thread

    one_blas_thread()
    return app  # type: ignore[return-value]


def initial_library(
    settings: Settings, requested: Path | None, demo: bool = True
) -> tuple[Path | None, bool]:
    """(library to open, create it?) for a start: the requested one, else the last one, else the
    demo library when the application provides one (built here, which takes minutes on a
    first start; ``demo=False``: none, the window prepares it in the background)."""
    if requested is not None and str(requested).startswith(("postgresql://", "postgres://")):
        return requested, False  # a team library (see docs/team-library.md)
    if requested is not None:
        requested = Path(requested).expanduser()
        create = not (requested / "catalogue.sqlite").exists() and (
            not requested.exists() or (requested.is_dir() and not any(requested.iterdir()))
        )
        return requested, create
    last = settings.last_library
    if last is not None and last.is_dir():
        return last, False
    if not demo:
        return None, False
    from fabricsearch.gui.scripted import ensure_demo_library

    try:
        demo = ensure_demo_library()
    except Exception:  # noqa: BLE001 - the welcome page offers New/Open instead
        log.exception("demo library unavailable")
        demo = None
    return demo, False


def open_window(
    window: Any, settings: Settings, library: Path | None, demo_now: bool = False
) -> Path | None:
    """Show `window` with the library a start opens (returned; None while the demo builds). A demo library still to be built is
    prepared in the background while the window is up (`controllers.demo`), unless
    `demo_now` (scripted runs, which need it before their first step)."""
    from fabricsearch.gui.scripted import demo_available

    path, create = initial_library(settings, library, demo=demo_now)
    # Shown first: the open runs in a worker and the window says "Opening …" meanwhile (a team
    # library's server may take its 10 s connect timeout to answer).
    window.show()
    if path is not None:
        window.open_library(path, create=create)
    if path is None and not demo_now and library is None and demo_available():
        window.demo.prepare()
    return path


def _warm_up_backbone() -> None:
    """Runs in a background thread: the import of torch happens here, not in the GUI thread."""
    from fabricsearch.services.training import warm_up_backbone

    try:
        warm_up_backbone()  # logs its own failures; an import that fails (no torch) is here
    except Exception:  # noqa: BLE001 - best effort; the first query does the work itself
        return


def run(
    library: Path | None = None,
    screenshot: Path | None = None,
    self_test: bool = False,
    query: Path | None = None,
    training_screenshot: Path | None = None,
    train_overrides: dict[str, Any] | None = None,
    verbose: bool = False,
    size: tuple[int, int] | None = None,
) -> int:
    """Open the main window; with `screenshot` / `self_test`, do that and quit (`size`: the
    window's size in a scripted run, e.g. (1280, 800) for a small laptop's screen)."""
    from fabricsearch.gui import scripted as script
    from fabricsearch.gui.main_window import MainWindow
    from fabricsearch.gui.messages import RecordingSink
    from fabricsearch.gui.qtcheck import pyside_problem, xcb_problem
    from fabricsearch.gui.workers import shut_down_workers, stop_all_workers
    from fabricsearch.logging_setup import setup_logging

    log_path = setup_logging(verbose)
    # Refuse plainly rather than abort: Qt's own xcb message names no package, and a wrong
    # PySide6 aborts in the middle of labelling.
    problem = xcb_problem() or pyside_problem()
    if problem is not None:
        log.error("%s", problem)
        print(f"fabricsearch: error: {problem}", file=sys.stderr)
        return 2
    app = create_app()
    log.info("starting fabricsearch GUI (log %s)", log_path)
    settings = Settings()
    scripted = screenshot is not None or self_test or training_screenshot is not None
    train_config = None
    if train_overrides:
        from fabricsearch.config import TrainConfig

        train_config = dataclasses.replace(TrainConfig(), **train_overrides)
    # Scripted runs record messages instead of showing boxes nobody could close.
    window = MainWindow(settings, RecordingSink() if scripted else None, train_config)
    if scripted:
        window.resize(*(size or (1440, 900)))
    path = open_window(window, settings, library, demo_now=scripted)
    if not scripted:
        import threading

        # The first dropped photo should not wait for torch's import and the network's load:
        # both happen in the background while the window comes up.
        threading.Thread(target=_warm_up_backbone, name="backbone-warm-up", daemon=True).start()
        code = app.exec()
        shut_down_workers()  # nothing may run into the interpreter's exit
        return code
    try:
        script.process_events_until(lambda: window.isVisible(), 5_000)
        script.wait_for_records(window)
        code = 0
        if screenshot is not None:
            code = script.grab_after_search(window, screenshot, query) or code
        if training_screenshot is not None:
            epochs = (train_overrides or {}).get("epochs", 3)
            code = script.grab_training(window, training_screenshot, epochs) or code
        if self_test:
            code = code or script.self_test(window, path)
        return code
    finally:
        stop_all_workers()
        window.close()
        shut_down_workers()
