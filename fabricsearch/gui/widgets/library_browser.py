"""Library browser: the thumbnail grid of the whole library with facet filters and sorting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord
from fabricsearch.colour import COLOUR_NAMES
from fabricsearch.errors import message_for
from fabricsearch.gui.browse_columns import BrowseColumns
from fabricsearch.gui.models import LibraryModel, ThumbnailCache
from fabricsearch.gui.widgets.facets import (  # noqa: F401 - re-exported
    ANY,
    COLOUR_PRESENT,
    BrowseFilter,
    FacetBar,
    filter_records,
)
from fabricsearch.gui.widgets.grid import ThumbnailGrid
from fabricsearch.taxonomy import Taxonomy

EMPTY_LIBRARY = (
    "<h3>This library has no photos yet</h3>"
    "Library ▸ Import folder… (Ctrl+I) adds a folder of fabric photos."
)
NO_MATCH = "No image matches these filters."
LOADING = "Loading the library…"
TEXT_TIP = (
    "Search the fabric records (article, supplier, composition, season, notes, tags, "
    "file name, labels); field:value terms and free words; Enter applies (Ctrl+F)"
)


def _colour_key(r: ImageRecord) -> tuple[float, ...]:
    """Dominant colour class, then its hue: similar colours end up next to each other."""
    if r.palette is None:
        return (99.0, 0.0)
    p = np.asarray(r.palette)
    i = int(np.argmax(p[:, 3]))
    return (float(i), float(p[i, 0]), -float(p[i, 3]))


def _label_key(r: ImageRecord) -> tuple[Any, ...]:
    return (
        not r.labelled,
        r.coarse or "~",
        r.fine or "~",
        r.tightness if r.tightness is not None else 1e9,
        r.path.name.lower(),
    )


#: Sort orders of the grid: (label, key). The first is the catalogue's (import) order.
SORTS: dict[str, tuple[str, Callable[[ImageRecord], Any]]] = {
    "imported": ("Import order", lambda r: r.id),
    "name": ("Name", lambda r: (r.path.name.lower(), str(r.path))),
    "added": ("Date added", lambda r: (-r.added, r.id)),
    "modified": ("Date taken/modified", lambda r: (-r.mtime, r.id)),
    "colour": ("Colour", _colour_key),
    "label": ("Label", _label_key),
    # Unlabelled images the model is least sure of first (active learning), then the rest.
    "confidence": ("Least confident", lambda r: (r.labelled, r.id)),
}


class LibraryBrowser(QWidget):
    """Facet bar and sort order over a ThumbnailGrid of the library's images."""

    selectionChangedIds = Signal(list)
    activatedId = Signal(int)
    filterChanged = Signal()

    def __init__(self, cache: ThumbnailCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # Every image as columns (issue 23): the grid filters and sorts on them; its model
        # fetches records by page as rows come into view.
        self._cols = BrowseColumns.empty()
        self._known = 0  # images counted before the columns arrive (a library opening)
        self._library: Any = None
        self._loading = False
        self._suggestions: dict[int, Any] = {}
        self._text_search: Callable[[str], frozenset[int] | None] | None = None
        self._text_ids: frozenset[int] | None = None
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Text: supplier:Acme composition:wool …")
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.setToolTip(TEXT_TIP)
        self._text_error: str | None = None
        self.text_edit.returnPressed.connect(self.refresh_text_filter)
        self.text_edit.textChanged.connect(lambda t: None if t else self.refresh_text_filter())
        self.model: LibraryModel | None = None
        self.grid = ThumbnailGrid(self)
        self.facets = FacetBar()
        # Clear empties the text filter too, and is enabled while one is typed (issue 24).
        self.facets.reset_button.clicked.connect(self.text_edit.clear)
        self.text_edit.textChanged.connect(lambda t: self.facets.set_extra_active(bool(t.strip())))
        # The facet widgets under their old names (scripts and tests use them).
        self.coarse_box = self.facets.coarse_box
        self.fine_box = self.facets.fine_box
        self.labelled_box = self.facets.labelled_box
        self.tight_min = self.facets.tight_min
        self.tight_max = self.facets.tight_max
        self.colour_box = self.facets.colour_box
        self.sort_box = QComboBox()
        self.sort_box.setToolTip("Order of the grid")
        for key, (label, _fn) in SORTS.items():
            self.sort_box.addItem(label, key)
        self.sort_box.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self.sort_box.setMinimumContentsLength(13)
        self.count_label = QLabel()

        second = QHBoxLayout()
        second.setContentsMargins(0, 0, 0, 0)
        second.addWidget(QLabel("Sort by"))
        second.addWidget(self.sort_box)
        second.addWidget(self.text_edit, 1)
        second.addWidget(self.count_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.facets)  # wraps onto a second line when narrow
        layout.addLayout(second)
        # The grid, or a line saying why it is empty (rather than a blank grid).
        self.empty_label = QLabel(EMPTY_LIBRARY)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.views = QStackedWidget()
        self.views.addWidget(self.grid)
        self.views.addWidget(self.empty_label)
        layout.addWidget(self.views, 1)

        self.facets.filterChanged.connect(self._apply)
        self.sort_box.currentIndexChanged.connect(self._apply)
        self.grid.selectionChangedIds.connect(self.selectionChangedIds)
        self.grid.activatedId.connect(self.activatedId)
        if cache is not None:
            self.set_cache(cache)

    def set_cache(self, cache: ThumbnailCache) -> None:
        old = self.model
        self.model = LibraryModel(cache, self._fetch_records, self)
        self.grid.setModel(self.model)
        if old is not None:  # the previous library's (its records, its cache): not kept
            old.deleteLater()
        self.grid.set_thumb_size(self.grid.iconSize().width())

    def listen(self, session: Any) -> None:
        """Follow the window's `LibrarySession`: its categories, the labels it changed, its
        records as they are read (the first screen, then every image's columns)."""
        self._session = session
        session.taxonomyChanged.connect(self.set_taxonomy)
        session.labelsChanged.connect(self._labels_changed)
        session.firstScreen.connect(self.show_first)
        session.columnsLoaded.connect(self.set_columns)
        session.metadataChanged.connect(lambda _ids: self.refresh_text_filter())

    def _labels_changed(self, _ids: list[int]) -> None:
        self.update_records(self._session.changed_records())

    def set_taxonomy(self, tax: Taxonomy) -> None:
        self.facets.set_taxonomy(tax)
        if self.model is not None:
            self.model.taxonomy = tax

    def set_suggestions(self, suggestions: dict[int, Any]) -> None:
        self._suggestions = suggestions
        if self.model is not None:
            self.model.set_suggestions(suggestions)
        if self.sort_key() == "confidence":
            self._apply()

    def set_library(self, library: Any) -> None:
        """Where records are fetched from as rows come into view (and lazy sort keys)."""
        self._library = library

    def _fetch_records(self, ids: list[int]) -> list[ImageRecord]:
        lib = self._library
        if lib is None or getattr(lib, "closed", False):
            return []
        return list(lib.images(ids))

    def confidence(self, r: ImageRecord) -> float:
        """The suggestion's confidence for an unlabelled image (0 without one)."""
        s = self._suggestions.get(r.id)
        return float(s.confidence) if s is not None else 0.0

    def set_text_search(self, fn: Callable[[str], frozenset[int] | None]) -> None:
        """`fn(text)` → the ids matching a text query (None: no query); raises on a bad one."""
        self._text_search = fn

    def current_filters(self) -> tuple[str, dict[str, Any]]:
        """The text filter and the facet filters (`BrowseFilter.to_dict`), as saved."""
        return self.text_edit.text().strip(), self.facets.current_filter().to_dict()

    def show_filters(self, text: str, filters: dict[str, Any]) -> None:
        """Filter by ``text`` and the facet filters ``filters`` (a saved search)."""
        self.text_edit.setText(text)
        self.facets.set_filter(BrowseFilter.from_dict(filters))
        self.refresh_text_filter()

    def refresh_text_filter(self) -> None:
        text = self.text_edit.text()
        try:
            ids = self._text_search(text) if self._text_search is not None and text else None
        except Exception as exc:  # noqa: BLE001 - a query that cannot be understood: say why
            # No matches and the reason, never the previous matches (they read as the answer).
            self._text_error = message_for(exc, what="a text filter")
            self.text_edit.setToolTip(f"Not understood: {self._text_error}")
            self.text_edit.setStyleSheet("QLineEdit { border: 1px solid #b00020; }")
            self._text_ids = frozenset()
            self._apply()
            return
        self._text_error = None
        self.text_edit.setToolTip(TEXT_TIP)
        self.text_edit.setStyleSheet("")
        self._text_ids = ids
        self._apply()

    def set_records(self, records: list[ImageRecord], loading: bool = False) -> None:
        """Show these records (small sets: tests, an empty library while it loads)."""
        self._loading = loading
        self._known = 0
        self._cols = BrowseColumns.from_records(records)
        if self.model is not None:
            self.model.forget()
            self.model.remember(records)
        self._apply()

    def show_first(self, count: int, records: list[ImageRecord]) -> None:
        """A library opening: its count and first screen at once, before the columns (the
        filters and sorts apply when they arrive)."""
        self._loading = True
        self._known = count
        self._cols = BrowseColumns.empty()
        if self.model is not None:
            self.model.forget()
            self.model.remember(records)
            ids = np.fromiter((r.id for r in records), np.int64, len(records))
            self.model.set_ids(ids)
        self._update_count()

    def set_columns(self, cols: BrowseColumns) -> None:
        """Every image's filter and sort columns, read by a worker: the grid as filtered."""
        self._loading = False
        self._known = 0
        self._cols = cols
        if self.model is not None:
            self.model.forget()  # read again: the catalogue may have changed
        # A reload (an import, a watched folder, another process): the same images stay
        # selected and where they were on screen.
        with self.grid.keeping_view():
            self._show_rows(keep_view=True)

    def columns(self) -> BrowseColumns:
        return self._cols

    def update_records(self, records: list[ImageRecord]) -> None:
        """Refresh changed records (after labelling) without losing the selection."""
        self._cols.update(records)
        if self.model is not None:
            self.model.update_records(records)
        self._update_count()

    def all_records(self) -> list[ImageRecord]:
        """Every image's record, read (small libraries, scripts, tests: the window itself
        works on `columns`)."""
        if self.model is None:
            return []
        return self.model.records_of([int(i) for i in self._cols.ids])

    def count_all(self) -> int:
        return max(len(self._cols), self._known)

    def count_labelled(self) -> int | None:
        """Labelled images (None while the columns load)."""
        if self._known and not len(self._cols):
            return None
        return int(self._cols.labelled.sum())

    def all_labelled(self) -> bool:
        return bool(self._cols.labelled.all())

    def label_counts(self) -> dict[str, int]:
        return self._cols.label_counts()

    def shown_ids(self) -> np.ndarray:
        return self.model.ids() if self.model is not None else np.zeros(0, np.int64)

    def next_unlabelled_id(self, after_row: int) -> int | None:
        """The first unlabelled image shown after row ``after_row`` (wrapping)."""
        ids = self.shown_ids()
        if not len(ids):
            return None
        cols = self._cols
        labelled = cols.labelled[np.searchsorted(cols.ids, ids)]
        order = np.roll(np.arange(len(ids)), -(after_row + 1))
        hits = order[~labelled[order]]
        return int(ids[hits[0]]) if len(hits) else None

    def least_confident_unlabelled_id(self) -> int | None:
        """The unlabelled image shown whose suggestion is least confident (none first)."""
        ids = self.shown_ids()
        cols = self._cols
        unlabelled = ids[~cols.labelled[np.searchsorted(cols.ids, ids)]]
        if not len(unlabelled):
            return None
        conf = self._confidences(unlabelled)
        return int(unlabelled[np.lexsort((unlabelled, conf))[0]])

    def _confidences(self, ids: np.ndarray) -> np.ndarray:
        s = self._suggestions
        return np.fromiter(
            (float(s[i].confidence) if i in s else 0.0 for i in ids.tolist()), np.float64, len(ids)
        )

    def current_filter(self) -> BrowseFilter:
        return self.facets.current_filter()

    def sort_key(self) -> str:
        data = self.sort_box.currentData()
        return data if isinstance(data, str) else "imported"

    def set_sort(self, key: str) -> None:
        self.sort_box.setCurrentIndex(max(0, self.sort_box.findData(key)))

    def visible_records(self) -> list[ImageRecord]:
        """The records shown, in order (read: small libraries, scripts and tests)."""
        return self.model.records() if self.model is not None else []

    def _apply(self) -> None:
        self._show_rows(keep_view=False)

    def _show_rows(self, keep_view: bool) -> None:
        """The rows the filters and the sort order give (``keep_view``: the caller keeps the
        selection and the scroll position, `ThumbnailGrid.keeping_view`)."""
        if self.model is None:
            return
        if self._known and not len(self._cols):
            return  # opening: the first screen stays until the columns arrive
        selected = [] if keep_view else self.grid.selected_ids()
        cols = self._cols
        f = self.current_filter()
        colour_i = COLOUR_NAMES.index(f.colour) if f.colour else None
        keep = cols.mask(f, colour_i)
        if self._text_ids is not None:
            keep &= np.isin(cols.ids, np.fromiter(self._text_ids, np.int64, len(self._text_ids)))
        rows = np.flatnonzero(keep)
        key = self.sort_key()
        if key != "imported":  # the columns are in import (id) order
            rows = rows[self._sort_order(key, rows)]
        self.model.set_ids(cols.ids[rows])
        if selected:
            self.grid.select_ids(selected)
        self._update_count()
        self.filterChanged.emit()

    def _sort_order(self, key: str, rows: np.ndarray) -> np.ndarray:
        """The order of ``rows`` under sort ``key`` (as `SORTS`; ties by id: stable)."""
        cols = self._cols
        ids = cols.ids[rows]
        labelled = cols.labelled[rows]
        if key == "confidence":
            return np.lexsort((ids, self._confidences(ids), labelled))
        if key == "colour":
            cov = cols.coverage[rows]
            dominant = np.argmax(cov, axis=1)
            share = cov[np.arange(len(rows)), dominant]
            return np.lexsort((ids, -share, cols.hue[rows], dominant))
        if key in ("added", "modified"):
            values = cols.extra("added" if key == "added" else "mtime", self._library)[rows]
            return np.lexsort((ids, -values))
        name = cols.extra("name", self._library)[rows]
        if key == "name":
            return np.lexsort((ids, name))
        # "label": labelled first, then coarse, fine, tightness (unknown last), name
        tight = np.where(np.isnan(cols.tightness[rows]), 1e9, cols.tightness[rows])
        coarse = cols.value_rank(cols.coarse_values)[cols.coarse[rows]]
        fine = cols.value_rank(cols.fine_values)[cols.fine[rows]]
        return np.lexsort((ids, name, tight, fine, coarse, ~labelled))

    def _update_count(self) -> None:
        shown = self.model.rowCount() if self.model is not None else 0
        reading = " · reading…" if self._known and not len(self._cols) else ""
        self.count_label.setText(f"{shown:,} of {self.count_all():,}{reading}")
        if shown:
            self.views.setCurrentWidget(self.grid)
        else:
            text = LOADING if self._loading else (NO_MATCH if self.count_all() else EMPTY_LIBRARY)
            if self._text_error is not None and not self._loading:
                text = f"No matches: the text filter is not understood.\n{self._text_error}"
            self.empty_label.setText(text)
            self.views.setCurrentWidget(self.empty_label)
