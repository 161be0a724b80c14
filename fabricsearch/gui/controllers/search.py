"""Searching from the window: queries (file, paste, drop, "find similar"), a crop of the query,
the colour ↔ texture balance, history (back / forward, recent searches) and exports."""

from __future__ import annotations

import dataclasses
import logging
import sys
import threading
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QMimeData, QObject, Qt
from PySide6.QtGui import QGuiApplication, QImage
from PySide6.QtWidgets import QFileDialog

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui.dropping import QueryInput, can_accept, query_from_mime
from fabricsearch.gui.messages import plural
from fabricsearch.jobs import CancelToken, ProgressFn, check, report

if TYPE_CHECKING:
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import ResultsView, Shell

log = logging.getLogger(__name__)

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.tif *.tiff *.bmp *.webp);;All files (*)"
PREVIEW_SIDE = 768
HISTORY_LENGTH = 30
HISTORY_THUMB = 64


@dataclass(frozen=True)
class SearchRequest:
    """Everything a search was asked with: replayed as it was by back / forward."""

    query: QueryInput
    crop: tuple[int, int, int, int] | None = None  # pixels of the original photo
    balance: float | None = None
    text: str = ""  # only fabrics whose record matches (Library.text_search)


@dataclass
class SearchOutcome:
    """What a search worker hands back to the GUI thread."""

    result: Any  # search.SearchResult
    records: list[ImageRecord]
    preview: QImage | None
    query: QueryInput
    request: SearchRequest | None = None
    original_size: tuple[int, int] | None = None  # (width, height) of the whole photo


@dataclass
class HistoryEntry:
    request: SearchRequest
    thumbnail: QImage | None
    hits: int

    @property
    def title(self) -> str:
        crop = " (region)" if self.request.crop else ""
        text = f" + “{self.request.text}”" if self.request.text else ""
        return f"{self.request.query.name}{crop}{text} · {plural(self.hits, 'result')}"


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def run_search(
    library: Any,
    searcher: Any,
    request: SearchRequest,
    k: int,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SearchOutcome:
    """Worker body: search, then fetch the hits' records and a preview of the query."""
    from fabricsearch.services.search import (
        QueryLabels,
        SearchError,
        SearchFilters,
        decode_image,
        ensure_codes,
        resize_max_side,
    )

    query = request.query
    # The few images an interrupted import (or another client's) left without a code: the
    # one step that writes, here in the worker; the query itself writes nothing.
    ensure_codes(searcher, progress, cancel)
    report(progress, "search", 0, None, "queries", message=query.name)
    labels = QueryLabels(coarse=query.coarse, fine=query.fine, tightness=query.tightness)
    filters = None
    if request.text:
        try:
            filters = SearchFilters(image_ids=frozenset(library.text_search(request.text)))
        except ValueError as exc:  # TextQueryError: the query cannot be understood
            raise SearchError(f"the text {request.text!r} is not understood: {exc}") from exc
    result = searcher.search(
        query.source,
        k=k,
        filters=filters,
        query_labels=labels,
        balance=request.balance,
        crop=request.crop,
    )
    check(cancel)
    records = library.images([h.image_id for h in result.hits]) if result.hits else []
    preview: QImage | None = None
    size = None
    try:
        if query.path is not None:
            rgb, info = decode_image(query.path, max_side=PREVIEW_SIDE)
            size = (info.width, info.height)
        else:
            assert query.image is not None
            size = (query.image.shape[1], query.image.shape[0])
            rgb = resize_max_side(query.image, PREVIEW_SIDE)
        preview = rgb_to_qimage(rgb)
    except Exception:  # noqa: BLE001 - the preview is a nicety; results still show
        preview = None
    return SearchOutcome(result, records, preview, query, request, size)


def run_rerank(
    library: Any,
    searcher: Any,
    previous: SearchOutcome,
    request: SearchRequest,
    k: int,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SearchOutcome:
    """Worker body for a new balance, top N or text filter of the shown query: re-ranks the
    query's kept candidates (`Searcher.rerank`: no decode, no network, milliseconds) and keeps
    its preview; a full search when the kept query no longer fits (another active model)."""
    from fabricsearch.services.search import SearchError, SearchFilters, StaleQueryError

    state = getattr(previous.result, "state", None)
    if state is None:
        return run_search(library, searcher, request, k, progress, cancel)
    filters = None
    if request.text:
        try:
            filters = SearchFilters(image_ids=frozenset(library.text_search(request.text)))
        except ValueError as exc:  # TextQueryError: the query cannot be understood
            raise SearchError(f"the text {request.text!r} is not understood: {exc}") from exc
    try:
        result = searcher.rerank(state, k=k, filters=filters, balance=request.balance)
    except StaleQueryError:
        return run_search(library, searcher, request, k, progress, cancel)
    check(cancel)
    records = library.images([h.image_id for h in result.hits]) if result.hits else []
    return SearchOutcome(
        result, records, previous.preview, previous.query, request, previous.original_size
    )


def _preload_torch() -> None:
    """Runs in a background thread as the window starts: torch's import (0.3–1 s during which
    its libraries load holding Python's interpreter lock, so that no GUI thread runs) happens
    now, its libraries mapped without the lock, rather than at the first search or import."""
    from fabricsearch.services.training import preload_torch

    try:
        preload_torch()
    except Exception:  # noqa: BLE001 - best effort: the first search imports torch itself
        log.debug("torch not preloaded", exc_info=True)


class SearchController(QObject):
    """Runs searches and keeps which is the latest; what is shown (the outcome, or why there
    is none) and the history are the session's, whose signals the panels follow."""

    def __init__(self, session: LibrarySession, shell: Shell, view: ResultsView) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.view = view  # the search's inputs (top N, balance, text) and the shown hits
        self._searcher: Any = None
        self._generation = 0
        self._navigating = False
        self._held: SearchRequest | None = None  # a query waiting for an understood text
        # Labels changed here or elsewhere: the re-ranking reads them again; another active
        # model: a new searcher; a closed library's searches are forgotten.
        session.labelsChanged.connect(lambda _ids: self.invalidate_labels())
        session.recordsChanged.connect(self.invalidate_labels)
        session.metadataChanged.connect(lambda _ids: self.invalidate_labels())
        session.imagesChanged.connect(self.invalidate)
        session.taxonomyChanged.connect(lambda _tax: self.invalidate_labels())
        session.activeModelChanged.connect(lambda _info: self.model_changed())
        session.resultsChanged.connect(self._results_changed)
        session.closed.connect(self.forget_library)
        if "torch" not in sys.modules:
            # Not a daemon: a process that ends meanwhile waits for the import (seconds)
            # rather than tearing down the interpreter under it.
            threading.Thread(target=_preload_torch, name="torch-preload").start()

    # --- state ------------------------------------------------------------------------------
    @property
    def query(self) -> QueryInput | None:
        """The shown search's query (`LibrarySession.query`)."""
        return self.session.query

    @property
    def outcome(self) -> SearchOutcome | None:
        """The search shown (`LibrarySession.outcome`)."""
        return self.session.outcome

    def searcher(self) -> Any:
        if self._searcher is None:
            from fabricsearch.services.search import Searcher

            self._searcher = Searcher(self.session.library)
        return self._searcher

    # Both only mark the searcher's cache stale (no lock, no read: a search running in a
    # worker holds the searcher's lock); the next search's worker reloads what is needed.
    def invalidate(self) -> None:
        if self._searcher is not None:
            self._searcher.invalidate()

    def invalidate_labels(self) -> None:
        if self._searcher is not None:
            self._searcher.invalidate_labels()  # the re-ranking reads labels from memory

    def model_changed(self) -> None:
        self._searcher = None  # the searcher also notices; start clean anyway

    def _results_changed(self, outcome: SearchOutcome | None) -> None:
        if outcome is None:  # cleared (here, by a removal, a close): a running search is void
            self._generation += 1
            self._held = None

    def forget_library(self) -> None:
        """The library closed (the session forgot its searches): its searcher goes and a
        search still running shows nothing."""
        self._searcher = None
        self._generation += 1
        self._held = None

    # --- queries ------------------------------------------------------------------------------
    def choose_query(self) -> None:
        parent = self.shell.dialog_parent()
        path, _ = QFileDialog.getOpenFileName(parent, "Search by photo", "", IMAGE_FILTER)
        if path:
            self.search(QueryInput(name=Path(path).name, path=Path(path)))

    def paste_query(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not can_accept(mime):
            self.shell.status("The clipboard holds no image.", 5000)
            return
        self.search_input(query_from_mime(mime))

    def search_mime(self, mime: QMimeData) -> Any:
        return self.search_input(query_from_mime(mime))

    def search_input(self, query: QueryInput) -> Any:
        """A pasted or dropped query; a photo of the library itself (its path copied as text,
        or the file dropped) is searched as *Find similar* on that image, with its labels,
        rather than as an outside photo."""
        lib = self.session.library
        if query.ok and query.path is not None and lib is not None:
            try:
                rec = lib.find_by_path(query.path)
            except Exception:  # noqa: BLE001 - a path outside the library's folders
                rec = None
            if rec is not None:
                return self.find_similar(rec.id)
        return self.search(query)

    def find_similar(self, image_id: int | None = None) -> Any:
        """Search with a library image as the query, its labels included."""
        lib = self.session.library
        if lib is None:
            return None
        if image_id is None:
            records = self.shell.selected_records()
            if not records:
                self.shell.status("Select an image first.", 4000)
                return None
            rec = records[0]
        else:
            rec = lib.get(image_id)
        query = QueryInput(
            name=rec.path.name,
            path=rec.path,
            coarse=rec.coarse,
            fine=rec.fine,
            tightness=rec.tightness,
        )
        return self.search(query)

    def search(self, query: QueryInput, crop: tuple[int, int, int, int] | None = None) -> Any:
        """Run a search off the GUI thread with the panel's balance; results arrive in the
        search panel."""
        view = self.view
        return self.run(SearchRequest(query, crop, view.balance(), view.text()))

    def search_region(self, crop: tuple[int, int, int, int] | None) -> Any:
        """Search again with a region of the current query (None: the whole photo)."""
        if self.query is None:
            return None
        return self.search(self.query, crop)

    def rerun(self) -> Any:
        """The current query again (the top N, the balance or the text filter changed):
        re-ranks the candidates the query kept, without decoding or running the network."""
        view, outcome, lib = self.view, self.session.outcome, self.session.library
        if outcome is None or outcome.request is None or lib is None:
            held = self._held
            if held is not None and lib is not None:  # its text was not understood
                return self.run(dataclasses.replace(held, text=view.text()))
            self._text_refused(view.text(), None)
            return None
        req = outcome.request
        request = dataclasses.replace(req, balance=view.balance(), text=view.text())
        return self.run(request, True, rerank_from=outcome)

    def _text_refused(self, text: str, request: SearchRequest | None) -> bool:
        """A text filter that cannot be understood: no matches and why (never the previous
        matches, which would read as its answer). The query is held, so that a corrected
        text searches with it."""
        from fabricsearch.services.search import TextQueryError, parse_text_query

        try:
            if text:
                parse_text_query(text)
        except TextQueryError as exc:
            if request is None:  # nothing searched yet: only the field says so
                self.session.text_filter_checked(str(exc))
                return True
            self._held = request
            self._generation += 1  # a search still running must not show its matches
            self.session.text_filter_checked(str(exc), refused=True)
            self.shell.status(f"Text filter not understood: {exc}", 8000)
            self.session.search_failed(str(exc))
            return True
        self.session.text_filter_checked(None)
        return False

    def run(
        self,
        request: SearchRequest,
        same_entry: bool = False,
        rerank_from: SearchOutcome | None = None,
    ) -> Any:
        """Search off the GUI thread; with `rerank_from` (the shown outcome of the same query)
        only re-rank its kept candidates."""
        shell, lib = self.shell, self.session.library
        query = request.query
        if not query.ok:
            self.clear(query.error or "Nothing to search for.")
            shell.status(query.error or "", 8000)
            self.session.search_failed(query.error or "")
            return None
        if lib is None:
            shell.sink.inform("Search", "Open a library first.")
            return None
        if self._text_refused(request.text, request):
            return None
        self._held = None
        self._generation += 1
        generation = self._generation
        navigating = self._navigating or same_entry
        k = self.view.top_n()
        if rerank_from is not None:
            fn = partial(run_rerank, lib, self.searcher(), rerank_from, request, k)
        else:
            fn = partial(run_search, lib, self.searcher(), request, k)
        worker = shell.runner.start(
            fn,
            name="search",
            slot="search",
            replace=True,
            on_finished=lambda out: self._on_done(out, generation, navigating),
            on_failed=lambda msg: self._on_failed(msg, generation),
        )
        if rerank_from is None:  # a re-rank takes milliseconds: no "searching" flicker
            shell.status(f"Searching for fabrics like {query.name}…")
        self.session.search_started(query.name, busy=rerank_from is None)
        return worker

    def _on_done(self, outcome: SearchOutcome, generation: int, navigating: bool) -> None:
        if generation != self._generation:
            return  # a newer query replaced this one
        session = self.session
        hits = len(outcome.result.hits)
        if not navigating:
            self._push_history(outcome)
        else:
            entry = session.history_entry()
            if entry is not None and outcome.request is not None:
                entry.request = outcome.request
                entry.hits = hits
        self.shell.status(plural(hits, "result"), 5000)
        session.show_results(outcome)  # the panels show it, the window its selection

    def _on_failed(self, message: str, generation: int) -> None:
        if generation != self._generation:
            return
        self.clear(f"Search failed: {message}")
        self.shell.status(f"Search failed: {message}", 8000)
        self.session.search_failed(message)

    def clear(self, message: str | None = None) -> None:
        """Forget the query and its results (and ignore a search still running: see
        `_results_changed`): nothing of another library or an earlier query stays on screen or
        goes into an export."""
        self.session.clear_results(message)

    # --- history ------------------------------------------------------------------------------
    def _push_history(self, outcome: SearchOutcome) -> None:
        thumb = None
        if outcome.preview is not None:
            thumb = outcome.preview.scaled(
                HISTORY_THUMB,
                HISTORY_THUMB,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        entry = HistoryEntry(outcome.request, thumb, len(outcome.result.hits))
        self.session.push_history(entry, HISTORY_LENGTH)

    def can_go_back(self) -> bool:
        return self.session.can_go_back()

    def can_go_forward(self) -> bool:
        return self.session.can_go_forward()

    def go_to(self, position: int) -> Any:
        if self.session.library is None or not self.session.go_to_history(position):
            return None
        self._navigating = True
        try:
            return self.run(self.session.history_entry(position).request)
        finally:
            self._navigating = False

    def back(self) -> Any:
        return self.go_to(self.session.position - 1) if self.can_go_back() else None

    def forward(self) -> Any:
        return self.go_to(self.session.position + 1) if self.can_go_forward() else None

    # --- export -------------------------------------------------------------------------------
    def export_csv(self, path: str | Path | None = None) -> Path | None:
        from fabricsearch.gui.export import write_csv

        shown = self.view.shown_hits()
        if shown is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self.shell.dialog_parent(), "Export results as CSV", "results.csv", "CSV (*.csv)"
            )
            if not path:
                return None
        hits, records = shown
        lib = self.session.library
        metadata = lib.metadata([h.image_id for h in hits]) if hasattr(lib, "metadata") else None
        write_csv(Path(path), hits, records, metadata)
        self.shell.status(f"Saved {path}", 5000)
        return Path(path)

    def export_sheet(self, path: str | Path | None = None) -> Any:
        """Write the contact sheet in a worker, which reads and draws the thumbnails (on the
        GUI thread this blocked the window 1.2 s; issue 24); the status bar says when it is
        saved. The worker (None: nothing to export)."""
        from fabricsearch.gui.export import write_contact_sheet

        shell = self.shell
        shown = self.view.shown_hits()
        lib = self.session.library
        if shown is None or lib is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                shell.dialog_parent(),
                "Export contact sheet",
                "results.pdf",
                "PDF (*.pdf);;PNG image (*.png)",
            )
            if not path:
                return None
        path = Path(path)

        def load(rec: ImageRecord) -> QImage:  # in the worker: QImage, never QPixmap
            try:
                return QImage(str(lib.thumbnail(rec, 256)))
            except Exception:  # noqa: BLE001 - a missing original leaves a blank cell
                return QImage()

        name = self.query.name if self.query else "query"
        preview = self.outcome.preview if self.outcome else None
        hits, records = shown
        # Article numbers under the thumbnails (one query, here: the worker only draws).
        articles = {
            i: m.article for i, m in lib.metadata([h.image_id for h in hits]).items() if m.article
        }
        fn = partial(
            write_contact_sheet,
            path,
            hits,
            records,
            load,
            title=f"Fabrics like {name}",
            query=None if preview is None else preview.copy(),  # the worker's own copy
            articles=articles,
        )
        shell.status(f"Saving the contact sheet {path.name}…")
        return shell.runner.start(
            fn,
            name="contact-sheet",
            slot="export",
            on_finished=lambda saved: shell.status(f"Saved {saved}", 5000),
            on_failed=lambda message: (
                shell.clear_status(),
                shell.sink.inform(
                    "Export contact sheet", f"Cannot write {path}: {message}", warning=True
                ),
            ),
            on_cancelled=shell.clear_status,
        )
