"""The open library's state, owned in one place (issue 21 item 5; napari's model and its Qt
layer): the `Library` handle, its categories, the selection and which grid it is in. Not
the searches: their history, outcome and searcher stay the search controller's, which
forgets them on ``closed``. Controllers change the state through its methods; widgets and
controllers that show it connect to its signals and update themselves, instead of one
controller calling seven others by hand."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from fabricsearch.catalogue import ImageRecord, Library
from fabricsearch.taxonomy import Taxonomy


class LibrarySession(QObject):
    """One per window. Signals, in the order a library lives:

    * ``opened(lib)``: a library is open (its records are read by a worker after);
    * ``taxonomyChanged(tax)``: its categories (a library opened, edited here or elsewhere);
    * ``selectionChanged(ids, in_results)``: the shown grid's selection (results or library);
    * ``labelsChanged(ids)``: labels written by this window (also by undo and redo);
      `changed_records` reads the changed records once for every listener;
    * ``recordsChanged()``: the catalogue changed outside this window (its records reloaded);
    * ``closed()``: the library, if one was open, is closed and forgotten (also sent when
      none was open: the window then shows no library either way)."""

    opened = Signal(object)
    closed = Signal()
    labelsChanged = Signal(list)
    taxonomyChanged = Signal(object)
    selectionChanged = Signal(list, bool)
    recordsChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._library: Library | None = None
        self._taxonomy: Taxonomy | None = None
        self._selection: list[int] = []
        self._in_results = False
        self._changed: tuple[tuple[int, ...], list[ImageRecord]] | None = None

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
        self.opened.emit(lib)

    def close(self) -> None:
        """Close the open library's handle, forget its state, then ``closed``."""
        lib = self._library
        self._library = None
        self._taxonomy = None
        self._selection = []
        self._in_results = False
        self._changed = None
        if lib is not None:
            lib.close()
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

    def records_changed(self) -> None:
        """The catalogue changed outside this window; its records are shown again."""
        if self._library is not None:
            self.recordsChanged.emit()
