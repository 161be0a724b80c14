"""Start the desktop application: QApplication, logging, settings, the main window.

`run()` is what ``fabricsearch gui`` calls; `--screenshot` and `--self-test` drive the same
window offscreen (documentation screenshots, a smoke test for packaging)."""

from __future__ import annotations

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
    return app  # type: ignore[return-value]


def initial_library(settings: Settings, requested: Path | None) -> tuple[Path | None, bool]:
    """(library to open, create it?) for a start: the requested one, else the last one, else the
    demo library when the application provides one."""
    if requested is not None:
        requested = requested.expanduser()
        create = not (requested / "catalogue.sqlite").exists() and (
            not requested.exists() or (requested.is_dir() and not any(requested.iterdir()))
        )
        return requested, create
    last = settings.last_library
    if last is not None and last.is_dir():
        return last, False
    from fabricsearch.gui.main_window import ensure_demo_library

    try:
        demo = ensure_demo_library()
    except Exception:  # noqa: BLE001 - the welcome page offers New/Open instead
        log.exception("demo library unavailable")
        demo = None
    return demo, False


def pick_query(window: Any, query: Path | None) -> Any:
    """The query for a screenshot: the given photo, or a labelled library image."""
    from fabricsearch.gui.dropping import QueryInput

    if query is not None:
        return QueryInput(name=query.name, path=query)
    records = [
        r for r in window.browser.all_records() if r.labelled
    ] or window.browser.all_records()
    if not records:
        return None
    rec = records[len(records) // 3]
    # As "Find similar" does: the image's labels join colour in the re-ranking.
    return QueryInput(
        name=rec.path.name, path=rec.path, coarse=rec.coarse, fine=rec.fine, tightness=rec.tightness
    )


def grab_after_search(window: Any, screenshot: Path, query: Path | None) -> int:
    """Search, wait for the results and their thumbnails, then save a grab of the window."""
    from fabricsearch.gui.main_window import process_events_until

    q = pick_query(window, query)
    if q is None:
        print("fabricsearch: error: the library is empty", file=sys.stderr)
        return 1
    done: list[Any] = []
    window.searchFinished.connect(done.append)
    window.searchFailed.connect(done.append)
    window.search(q)
    if not process_events_until(lambda: bool(done), 120_000) or not hasattr(done[0], "result"):
        print(
            f"fabricsearch: error: search failed: {done[0] if done else 'timeout'}", file=sys.stderr
        )
        return 1
    process_events_until(lambda: window.cache is not None and not window.cache.is_pending(), 60_000)
    window._on_selection(window.search_panel.grid.selected_ids(), from_results=True)
    process_events_until(lambda: window.detail.selected.image.has_image(), 10_000)
    QApplication.processEvents()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(screenshot)):
        print(f"fabricsearch: error: cannot write {screenshot}", file=sys.stderr)
        return 1
    print(screenshot)
    return 0


def self_test_search(window: Any) -> bool:
    """Search through the window with one of the library's photos; it must come back first."""
    from fabricsearch.gui.main_window import process_events_until

    q = pick_query(window, None)
    if q is None:
        return False
    done: list[Any] = []
    window.searchFinished.connect(done.append)
    window.searchFailed.connect(done.append)
    window.search(q)
    if not process_events_until(lambda: bool(done), 120_000) or not hasattr(done[0], "result"):
        print(f"self-test: search failed: {done[0] if done else 'timeout'}", file=sys.stderr)
        return False
    hits = done[0].result.hits
    ok = bool(hits) and Path(hits[0].path) == Path(q.path)
    print(f"self-test: search by photo {'ok' if ok else 'FAILED'}: {len(hits)} results")
    return ok


def grab_training(window: Any, screenshot: Path, epochs: int) -> int:
    """Train a small model from the window and grab the progress dialog when it ends."""
    from fabricsearch.gui.main_window import process_events_until

    cfg = window.base_train_config()
    import dataclasses

    cfg = dataclasses.replace(cfg, epochs=epochs)
    ended: list[str] = []
    window.trainingEnded.connect(ended.append)
    worker = window.start_training(cfg)
    if worker is None:
        return 1
    process_events_until(lambda: bool(ended), 600_000)
    QApplication.processEvents()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    window.train_dialog.grab().save(str(screenshot))
    print(screenshot, ended[0] if ended else "timeout")
    return 0 if ended and ended[0] == "finished" else 1


def run(
    library: Path | None = None,
    screenshot: Path | None = None,
    self_test: bool = False,
    query: Path | None = None,
    training_screenshot: Path | None = None,
    train_overrides: dict[str, Any] | None = None,
    verbose: bool = False,
) -> int:
    """Open the main window; with `screenshot` / `self_test`, do that and quit."""
    from fabricsearch.gui.main_window import MainWindow, process_events_until
    from fabricsearch.gui.qtcheck import pyside_problem
    from fabricsearch.gui.workers import stop_all_workers
    from fabricsearch.logging_setup import setup_logging

    log_path = setup_logging(verbose)
    problem = pyside_problem()
    if problem is not None:  # refuse plainly rather than abort in the middle of labelling
        log.error("%s", problem)
        print(f"fabricsearch: error: {problem}", file=sys.stderr)
        return 2
    app = create_app()
    log.info("starting fabricsearch GUI (log %s)", log_path)
    settings = Settings()
    window = MainWindow(settings)
    scripted = screenshot is not None or self_test or training_screenshot is not None
    window.interactive = not scripted
    if train_overrides:
        window.train_config_overrides.update(train_overrides)
    path, create = initial_library(settings, library)
    if path is not None:
        window.open_library(path, create=create)
    if scripted:
        window.resize(1440, 900)
    window.show()
    if not scripted:
        return app.exec()
    try:
        process_events_until(lambda: window.isVisible(), 5_000)
        code = 0
        if screenshot is not None:
            code = grab_after_search(window, screenshot, query) or code
        if training_screenshot is not None:
            code = (
                grab_training(window, training_screenshot, (train_overrides or {}).get("epochs", 3))
                or code
            )
        if self_test:
            ok = window.library is not None or path is None
            shown = window.browser.model.rowCount() if window.browser.model else 0
            print(
                f"self-test: window ok, library {window.library.folder if window.library else '—'}, "
                f"{shown} images shown"
            )
            if ok and window.library is not None and shown:
                if window.library.active_model() is not None:
                    ok = self_test_search(window)
                else:
                    print("self-test: the library has no search model; search skipped")
            code = code or (0 if ok else 1)
        return code
    finally:
        stop_all_workers()
        window.close()
