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
from fabricsearch.errors import message_for
from fabricsearch.gui.models import ThumbnailCache, ThumbnailModel
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
        self._all: list[ImageRecord] = []
        self._loading = False
        self._suggestions: dict[int, Any] = {}
        self._text_search: Callable[[str], frozenset[int] | None] | None = None
        self._text_ids: frozenset[int] | None = None
        self.text_edit = QLineEdit()
        self.text_edit.setPlaceholderText("Text: supplier:Acme composition:wool …")
        self.text_edit.setClearButtonEnabled(True)
        self.text_edit.setToolTip(
            "Search the fabric records (article, supplier, composition, season, notes, tags, "
            "file name, labels); field:value terms and free words; Enter applies"
        )
        self.text_edit.returnPressed.connect(self.refresh_text_filter)
        self.text_edit.textChanged.connect(lambda t: None if t else self.refresh_text_filter())
        self.model: ThumbnailModel | None = None
        self.grid = ThumbnailGrid(self)
        self.facets = FacetBar()
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

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.facets)
        bar.addStretch(1)
        second = QHBoxLayout()
        second.setContentsMargins(0, 0, 0, 0)
        second.addWidget(QLabel("Sort by"))
        second.addWidget(self.sort_box)
        second.addWidget(self.text_edit, 1)
        second.addWidget(self.count_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
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
        self.model = ThumbnailModel(cache, self)
        self.grid.setModel(self.model)
        self.grid.set_thumb_size(self.grid.iconSize().width())

    def set_taxonomy(self, tax: Taxonomy) -> None:
        self.facets.set_taxonomy(tax)

    def set_suggestions(self, suggestions: dict[int, Any]) -> None:
        self._suggestions = suggestions
        if self.model is not None:
            self.model.set_suggestions(suggestions)
        if self.sort_key() == "confidence":
            self._apply()

    def confidence(self, r: ImageRecord) -> float:
        """The suggestion's confidence for an unlabelled image (0 without one)."""
        s = self._suggestions.get(r.id)
        return float(s.confidence) if s is not None else 0.0

    def set_text_search(self, fn: Callable[[str], frozenset[int] | None]) -> None:
        """`fn(text)` → the ids matching a text query (None: no query); raises on a bad one."""
        self._text_search = fn

    def refresh_text_filter(self) -> None:
        text = self.text_edit.text()
        try:
            ids = self._text_search(text) if self._text_search is not None and text else None
        except Exception as exc:  # noqa: BLE001 - a query that cannot be understood: say why
            self.text_edit.setToolTip(f"Not understood: {message_for(exc, what='a text filter')}")
            self.text_edit.setStyleSheet("QLineEdit { border: 1px solid #b00020; }")
            return
        self.text_edit.setStyleSheet("")
        self._text_ids = ids
        self._apply()

    def set_records(self, records: list[ImageRecord], loading: bool = False) -> None:
        self._all = list(records)
        self._loading = loading
        self._apply()

    def update_records(self, records: list[ImageRecord]) -> None:
        """Refresh changed records (after labelling) without losing the selection."""
        by_id = {r.id: r for r in records}
        self._all = [by_id.get(r.id, r) for r in self._all]
        if self.model is not None:
            self.model.update_records(records)
        self._update_count()

    def all_records(self) -> list[ImageRecord]:
        return list(self._all)

    def current_filter(self) -> BrowseFilter:
        return self.facets.current_filter()

    def sort_key(self) -> str:
        data = self.sort_box.currentData()
        return data if isinstance(data, str) else "imported"

    def set_sort(self, key: str) -> None:
        self.sort_box.setCurrentIndex(max(0, self.sort_box.findData(key)))

    def visible_records(self) -> list[ImageRecord]:
        return self.model.records() if self.model is not None else []

    def _apply(self) -> None:
        if self.model is None:
            return
        selected = self.grid.selected_ids()
        shown = filter_records(self._all, self.current_filter())
        if self._text_ids is not None:
            shown = [r for r in shown if r.id in self._text_ids]
        key = self.sort_key()
        if key == "confidence":
            shown.sort(key=lambda r: (r.labelled, self.confidence(r), r.id))
        elif key != "imported":  # records arrive in import order
            shown.sort(key=SORTS[key][1])
        self.model.set_records(shown)
        if selected:
            self.grid.select_ids(selected)
        self._update_count()
        self.filterChanged.emit()

    def _update_count(self) -> None:
        shown = self.model.rowCount() if self.model is not None else 0
        self.count_label.setText(f"{shown:,} of {len(self._all):,}")
        if shown:
            self.views.setCurrentWidget(self.grid)
        else:
            text = LOADING if self._loading else (NO_MATCH if self._all else EMPTY_LIBRARY)
            self.empty_label.setText(text)
            self.views.setCurrentWidget(self.empty_label)
