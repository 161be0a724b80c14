"""The open library's state, owned in one place (issue 21; napari's model and its Qt layer):
the `Library` handle, its categories, its active model, the selection and which grid it is
in, whether its records are being read, the search shown (its outcome, or why there is none)
and the search history; and it announces the writes this window made (labels, fabric
records, images added or removed) or saw another process make.

Controllers change the state through its methods and never touch a widget; the window, which
holds the widgets, connects them to these signals (`MainWindow._connect`) and panels that
show the library follow it themselves (`listen`). Controllers that must react to a change
(the search controller forgets its searcher when the active model changes, suggestions are
predicted again) connect too. What a controller may ask of the window itself (the status
bar, messages, the job runner, the undo stack, a parent for dialogs) is `shell.Shell`.

Transient job state stays with the controller that runs the job: the searcher (a cache of
the index, rebuilt on demand), which search is the latest (its generation), a query held
back for a text filter not understood."""

from __future__ import annotations

import logging
from typing import Any

from PySide6.QtCore import QObject, Signal

from fabricsearch.catalogue import ImageRecord, Library
from fabricsearch.taxonomy import Taxonomy

log = logging.getLogger(__name__)


class LibrarySession(QObject):
    """One per window. Signals, in the order a library lives:

    * ``opened(lib)``: a library is open (its records are read by a worker after);
    * ``firstScreen(count, records)``: how many images it holds and the first screen's
      records, read at once when it opens (issue 23);
    * ``loadingChanged(loading)``: its records are being read (every image's grid columns,
      in a worker) or no longer are; ``columnsLoaded(columns)`` when they were read;
    * ``taxonomyChanged(tax)``: its categories (a library opened, edited here or elsewhere);
    * ``selectionChanged(ids, in_results)``: the shown grid's selection (results or library);
    * ``labelsChanged(ids)``: labels written by this window (also by undo and redo);
      `changed_records` reads the changed records once for every listener;
    * ``metadataChanged(ids)``: fabric records (article, supplier, …) written by this window
      (also by undo and redo);
    * ``recordsChanged()``: records changed in bulk and are read again: outside this window
      (another process), or by this window's import or labels CSV;
    * ``imagesChanged()``: this window added, moved or removed images (a watched folder's
      batch, a relocation, a removal): what the searcher holds of the index is stale;
    * ``activeModelChanged(info)``: the active model (a `ModelInfo` or None) was read again
      after a training, an activation or a reload that found another one (read once when
      the library opens, announced by ``opened``);
    * ``searchStarted(name, busy)``: a search of ``name`` runs (``busy`` False: a re-rank of
      the shown query's candidates, milliseconds, nothing to show meanwhile);
    * ``resultsChanged(outcome)``: the search shown (a `SearchOutcome`), or None once it is
      forgotten (`results_note` says what the results area shows instead);
    * ``searchFailed(message)``: a search could not run or failed (its results are cleared
      first, through ``resultsChanged(None)``);
    * ``textFilterChecked(error, refused)``: the results' text filter was checked: ``error``
      empty when understood; ``refused`` when a search was held back because of it;
    * ``historyChanged()``: the search history or the position in it;
    * ``closed()``: the library, if one was open, is closed and forgotten (also sent when
      none was open: the window then shows no library either way)."""

    opened = Signal(object)
    firstScreen = Signal(int, list)
    loadingChanged = Signal(bool)
    columnsLoaded = Signal(object)  # gui.browse_columns.BrowseColumns
    closed = Signal()
    labelsChanged = Signal(list)
    taxonomyChanged = Signal(object)
    selectionChanged = Signal(list, bool)
    recordsChanged = Signal()
    metadataChanged = Signal(list)
    imagesChanged = Signal()
    activeModelChanged = Signal(object)
    searchStarted = Signal(str, bool)
    resultsChanged = Signal(object)
    searchFailed = Signal(str)
    textFilterChecked = Signal(str, bool)
    historyChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._library: Library | None = None
        self._taxonomy: Taxonomy | None = None
        self._selection: list[int] = []
        self._in_results = False
        self._changed: tuple[tuple[int, ...], list[ImageRecord]] | None = None
        self._active_model: Any = None
        self._loading = False
        self._outcome: Any = None  # controllers.search.SearchOutcome
        self._results_note: str | None = None
        self._history: list[Any] = []  # controllers.search.HistoryEntry, oldest first
        self._position = -1  # index into the history of the search shown

    # --- what listeners read --------------------------------------------------------------
    @property
    def library(self) -> Library | None:
        return self._library

    @property
    def taxonomy(self) -> Taxonomy | None:
        return self._taxonomy

    @property
    def selection(self) -> list[int]:
        return list(self._selection)

    @property
    def in_results(self) -> bool:
        """Whether the selection is the search results' (else the library grid's)."""
        return self._in_results

    @property
    def records_loading(self) -> bool:
        """Whether the library's records (grid columns) are being read."""
        return self._loading

    @property
    def active_model(self) -> Any:
        """The open library's active model (`ModelInfo`), as last read; None without one."""
        return self._active_model

    @property
    def outcome(self) -> Any:
        """The search shown (`controllers.search.SearchOutcome`), None when none is."""
        return self._outcome

    @property
    def query(self) -> Any:
        """The shown search's query (`dropping.QueryInput`)."""
        return None if self._outcome is None else self._outcome.query

    @property
    def results_note(self) -> str | None:
        """With no outcome: what the results area says instead (None: its prompt)."""
        return self._results_note

    @property
    def history(self) -> list[Any]:
        return list(self._history)

    @property
    def position(self) -> int:
        """Index into `history` of the search shown (-1: none)."""
        return self._position

    def can_go_back(self) -> bool:
        return self._position > 0

    def can_go_forward(self) -> bool:
        return 0 <= self._position < len(self._history) - 1

    def changed_records(self) -> list[ImageRecord]:
        """The records of the latest ``labelsChanged``, read once however many listen."""
        if self._changed is None or self._library is None:
            return []
        ids, records = self._changed
        if not records and ids:
            records = list(self._library.images(list(ids)))
            self._changed = (ids, records)
        return records

    # --- what controllers change ----------------------------------------------------------
    def open(self, lib: Library) -> None:
        """``lib`` is now the open library (the previous one closed first by the caller)."""
        self._library = lib
        self._selection = []
        self._in_results = False
        self._changed = None
        self._active_model = self._read_active_model(lib)
        self.opened.emit(lib)

    def close(self) -> None:
        """Close the open library's handle, forget its state, then ``closed``."""
        lib = self._library
        self._library = None
        self._taxonomy = None
        self._selection = []
        self._in_results = False
        self._changed = None
        self._active_model = None
        self._loading = False
        self._outcome = None
        self._results_note = None
        self._history = []
        self._position = -1
        if lib is not None:
            lib.close()
        # Nothing of the closed library's searches stays on screen or goes into an export.
        self.historyChanged.emit()
        self.resultsChanged.emit(None)
        self.closed.emit()

    def set_taxonomy(self, tax: Taxonomy) -> None:
        """Category names and pickers everywhere (a library opened, a category edited)."""
        self._taxonomy = tax
        self.taxonomyChanged.emit(tax)

    def labels_changed(self, ids: list[int]) -> None:
        """This window wrote the labels of ``ids``: one ``labelsChanged`` (none without a
        library: an undo after the library closed has nothing to show)."""
        if self._library is None:
            return
        self._changed = (tuple(ids), [])
        self.labelsChanged.emit(list(ids))

    def select(self, ids: list[int], in_results: bool) -> None:
        """The shown grid's selection is ``ids`` (``in_results``: the results grid)."""
        self._selection = list(ids)
        self._in_results = in_results
        self.selectionChanged.emit(list(ids), in_results)

    def metadata_changed(self, ids: list[int]) -> None:
        """This window wrote the fabric records of ``ids``."""
        if self._library is not None:
            self.metadataChanged.emit(list(ids))

    def records_changed(self) -> None:
        """Records changed in bulk (another process, an import, a labels CSV); they are
        shown again."""
        if self._library is not None:
            self.recordsChanged.emit()

    def images_changed(self) -> None:
        """This window added, moved or removed images."""
        if self._library is not None:
            self.imagesChanged.emit()

    # --- the records ----------------------------------------------------------------------
    def show_first_screen(self, count: int, records: list[ImageRecord]) -> None:
        self.firstScreen.emit(count, records)

    def set_loading(self, loading: bool) -> None:
        """The records are being read (True), or their reading ended without columns."""
        self._loading = loading
        self.loadingChanged.emit(loading)

    def columns_loaded(self, columns: Any) -> None:
        """Every image's grid columns were read: ``columns`` (a `BrowseColumns`)."""
        self._loading = False
        self.columnsLoaded.emit(columns)

    # --- the active model -----------------------------------------------------------------
    @staticmethod
    def _read_active_model(lib: Library) -> Any:
        try:
            return lib.active_model()
        except Exception:  # noqa: BLE001 - a lost connection: shown as none, read again later
            log.debug("cannot read the active model", exc_info=True)
            return None

    def refresh_active_model(self, announce: bool = False) -> Any:
        """Read the active model again; ``activeModelChanged`` when it is another one (or
        always with ``announce``: a training ended or a version was activated)."""
        lib = self._library
        if lib is None:
            return None
        before = self._active_model
        self._active_model = self._read_active_model(lib)
        if announce or _version(before) != _version(self._active_model):
            self.activeModelChanged.emit(self._active_model)
        return self._active_model

    # --- the search shown -------------------------------------------------------------------
    def search_started(self, name: str, busy: bool = True) -> None:
        self.searchStarted.emit(name, busy)

    def show_results(self, outcome: Any) -> None:
        """``outcome`` (a `SearchOutcome`) is the search shown."""
        self._outcome = outcome
        self._results_note = None
        self.resultsChanged.emit(outcome)

    def clear_results(self, note: str | None = None) -> None:
        """No search shown (``note``: what the results area says instead of its prompt)."""
        self._outcome = None
        self._results_note = note
        self.resultsChanged.emit(None)

    def search_failed(self, message: str) -> None:
        self.searchFailed.emit(message)

    def text_filter_checked(self, error: str | None, refused: bool = False) -> None:
        self.textFilterChecked.emit(error or "", refused)

    # --- the search history ---------------------------------------------------------------
    def push_history(self, entry: Any, limit: int) -> None:
        """``entry`` after the one shown (those "ahead" of it are dropped, as a browser
        does); at most ``limit`` kept."""
        del self._history[self._position + 1 :]
        self._history.append(entry)
        del self._history[:-limit]
        self._position = len(self._history) - 1
        self.historyChanged.emit()

    def go_to_history(self, position: int) -> bool:
        """Show the history's ``position`` (False: there is none)."""
        if not 0 <= position < len(self._history):
            return False
        self._position = position
        self.historyChanged.emit()
        return True

    def history_entry(self, position: int | None = None) -> Any:
        """The entry at ``position`` (default: the one shown), None if there is none."""
        i = self._position if position is None else position
        return self._history[i] if 0 <= i < len(self._history) else None


def _version(info: Any) -> Any:
    return None if info is None else getattr(info, "version", info)
