"""Scripted runs of the window: documentation screenshots and the packaging self-test.

`fabricsearch gui --screenshot / --training-screenshot / --self-test` open the real window
offscreen with a `RecordingSink` (no message box can block), drive it as a user would and
quit. Nothing here is used by an interactive session."""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QApplication


def demo_available() -> bool:
    try:
        from fabricsearch.services import demo
    except ImportError:
        return False
    return hasattr(demo, "ensure_demo_library")


def ensure_demo_library() -> Path | None:
    """The demo library, if `fabricsearch.demo` exists."""
    try:
        from fabricsearch.services.demo import ensure_demo_library as ensure
    except ImportError:
        return None
    return Path(ensure())


def process_events_until(predicate: Callable[[], bool], timeout_ms: int = 30_000) -> bool:
    """Spin the event loop until `predicate()`."""
    from PySide6.QtCore import QDeadlineTimer, QEventLoop, QThread

    deadline = QDeadlineTimer(timeout_ms)
    app = QApplication.instance()
    while not predicate():
        if deadline.hasExpired():
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        QThread.msleep(5)
    return True


def wait_for_records(window: Any, timeout_ms: int = 120_000) -> bool:
    return process_events_until(
        lambda: window.library is None or not window.libraries.loading, timeout_ms
    )


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


def search_and_wait(window: Any, q: Any, crop: Any = None, timeout_ms: int = 120_000) -> Any:
    """Search through the window; the SearchOutcome, or the failure message."""
    done: list[Any] = []
    window.searchFinished.connect(done.append)
    window.searchFailed.connect(done.append)
    try:
        window.search(q, crop)
        if not process_events_until(lambda: bool(done), timeout_ms):
            return "timeout"
    finally:
        window.searchFinished.disconnect(done.append)
        window.searchFailed.disconnect(done.append)
    return done[0]


def _settle(window: Any) -> None:
    process_events_until(lambda: window.cache is not None and not window.cache.is_pending(), 60_000)
    window.on_selection(window.search_panel.grid.selected_ids(), from_results=True)
    process_events_until(lambda: window.detail.selected.image.has_image(), 10_000)
    QApplication.processEvents()


def _save(widget: Any, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path)):
        print(f"fabricsearch: error: cannot write {path}", file=sys.stderr)
        return 1
    print(path)
    return 0


def grab_after_search(window: Any, screenshot: Path, query: Path | None) -> int:
    """Search, wait for the results and their thumbnails, then save a grab of the window."""
    q = pick_query(window, query)
    if q is None:
        print("fabricsearch: error: the library is empty", file=sys.stderr)
        return 1
    out = search_and_wait(window, q)
    if not hasattr(out, "result"):
        print(f"fabricsearch: error: search failed: {out}", file=sys.stderr)
        return 1
    _settle(window)
    return _save(window, screenshot)


def grab_feature_screenshots(window: Any, folder: Path, query: Path | None) -> int:
    """The screenshots of issue 15's window features: results filtered by facets, a search
    with a region of the query, the loupe."""
    q = pick_query(window, query)
    if q is None:
        print("fabricsearch: error: the library is empty", file=sys.stderr)
        return 1
    out = search_and_wait(window, q)
    if not hasattr(out, "result"):
        print(f"fabricsearch: error: search failed: {out}", file=sys.stderr)
        return 1
    code = 0
    # Filters: the results narrowed to the query's own major category and a colour.
    facets = window.search_panel.facets
    major = (q.coarse or "").split("/")[0]
    if major:
        facets.set_coarse(major)
    main_colour = max(range(10), key=lambda i: float(out.result.palette[i, 3]))
    facets.set_colour_index(main_colour)
    _settle(window)
    code |= _save(window, folder / "filters.png")
    facets.reset()
    # Crop: the middle half of the query photo.
    w, h = out.original_size or (0, 0)
    if w and h:
        crop = (w // 4, h // 4, w // 2, h // 2)
        out2 = search_and_wait(window, q, crop)
        if hasattr(out2, "result"):
            _settle(window)
            code |= _save(window, folder / "crop.png")
    # Loupe: the query and the second result side by side at 200 %.
    hits = window.search_panel.model.hits()
    if len(hits) > 1:
        window.search_panel.grid.select_ids([hits[1].image_id])
    loupe = window.show_loupe()
    if loupe is not None:
        loupe.resize(1100, 600)
        process_events_until(lambda: loupe.ready(), 30_000)
        loupe.set_zoom(2)
        loupe.centre()
        QApplication.processEvents()
        code |= _save(loupe, folder / "loupe.png")
    return code


def self_test_search(window: Any) -> bool:
    """Search through the window with one of the library's photos; it must come back first."""
    q = pick_query(window, None)
    if q is None:
        return False
    out = search_and_wait(window, q)
    if not hasattr(out, "result"):
        print(f"self-test: search failed: {out}", file=sys.stderr)
        return False
    hits = out.result.hits
    ok = bool(hits) and Path(hits[0].path) == Path(q.path)
    print(f"self-test: search by photo {'ok' if ok else 'FAILED'}: {len(hits)} results")
    return ok


def grab_training(window: Any, screenshot: Path, epochs: int) -> int:
    """Train a small model from the window and grab the progress dialog when it ends."""
    cfg = dataclasses.replace(window.training.base_config(), epochs=epochs)
    ended: list[str] = []
    window.trainingEnded.connect(ended.append)
    worker = window.training.start_training(cfg)
    if worker is None:
        return 1
    process_events_until(lambda: bool(ended), 600_000)
    QApplication.processEvents()
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    window.train_dialog.grab().save(str(screenshot))
    print(screenshot, ended[0] if ended else "timeout")
    return 0 if ended and ended[0] == "finished" else 1


def self_test(window: Any, path: Path | None) -> int:
    ok = window.library is not None or path is None
    shown = window.browser.model.rowCount() if window.browser.model else 0
    print(
        f"self-test: window ok, library {window.library.folder if window.library else '—'}, "
        f"{shown} images shown"
    )
    if ok and window.library is not None and shown:
        if window.session.active_model is not None:
            ok = self_test_search(window)
        else:
            print("self-test: the library has no search model; search skipped")
    return 0 if ok else 1


def grab_suggestions_and_records(window: Any, folder: Path) -> int:
    """Screenshots of the label suggestions (ghost labels, blue badges) and of the fabric
    record panel with a text search; the library needs unlabelled images and a model with
    classification heads."""
    code = 0
    suggesting = window.suggesting
    suggesting.refresh()
    if not process_events_until(lambda: bool(suggesting.suggestions), 300_000):
        print("fabricsearch: error: no label suggestions", file=sys.stderr)
        return 1
    browser = window.browser
    browser.set_sort("confidence")
    # As "Next unlabelled, least confident first" does: the image the model is least sure of.
    window.next_least_confident()
    process_events_until(lambda: window.cache is not None and not window.cache.is_pending(), 60_000)
    process_events_until(lambda: window.detail.selected.image.has_image(), 10_000)
    QApplication.processEvents()
    code |= _save(window, folder / "suggestions.png")

    # Fabric records: three fabrics of one supplier, found again by text.
    browser.set_sort("imported")
    records = [r for r in browser.all_records() if r.labelled][:3]
    browser.grid.select_ids([r.id for r in records])
    window.edit_tabs.setCurrentWidget(window.metadata_panel)
    panel = window.metadata_panel
    for name, value in (
        ("supplier", "Acme Weaving"),
        ("composition", "80% wool, 20% polyamide"),
        ("weight", "320"),
        ("season", "AW27"),
        ("tags", "coat, melange"),
    ):
        panel.set_field(name, value)
    browser.grid.select_ids([records[0].id])
    panel.set_field("article", "AC-4471")
    browser.text_edit.setText("supplier:acme wool")
    browser.refresh_text_filter()
    browser.grid.select_ids([records[0].id])
    process_events_until(lambda: window.detail.selected.image.has_image(), 10_000)
    QApplication.processEvents()
    code |= _save(window, folder / "records.png")
    return code
