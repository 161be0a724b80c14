"""Library browser: the thumbnail grid of the whole library with a filter bar."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord
from fabricsearch.colour import COLOUR_NAMES
from fabricsearch.gui.models import ThumbnailCache, ThumbnailModel
from fabricsearch.gui.widgets.grid import ThumbnailGrid
from fabricsearch.taxonomy import Taxonomy

EMPTY_LIBRARY = (
    "<h3>This library has no photos yet</h3>"
    "Library ▸ Import folder… (Ctrl+I) adds a folder of fabric photos."
)
NO_MATCH = "No image matches these filters."
COLOUR_PRESENT = 0.05  # a colour "is in" an image when it covers at least 5 % of it
# Item data of the "All …" entries. Never None: PySide6 6.12.0 drops a reference to None on
# every None item-data call, and Python aborts once None's count reaches zero.
ANY = ""
LABELLED_CHOICES = {"labelled": True, "unlabelled": False}


@dataclass(frozen=True)
class BrowseFilter:
    coarse: str | None = None  # a major ("plaid") or a minor ("plaid/tartan")
    fine: str | None = None
    labelled: bool | None = None  # None = all
    tightness_min: float = 0.0
    tightness_max: float = 100.0
    colour: str | None = None

    @property
    def tightness_restricted(self) -> bool:
        return self.tightness_min > 0.0 or self.tightness_max < 100.0


def filter_records(records: Iterable[ImageRecord], f: BrowseFilter) -> list[ImageRecord]:
    """Records that pass the browser's filters (unknown tightness fails a restricted range)."""
    colour_i = COLOUR_NAMES.index(f.colour) if f.colour else None
    out = []
    for r in records:
        if f.labelled is not None and r.labelled != f.labelled:
            continue
        if f.coarse and not (r.coarse == f.coarse or (r.coarse or "").startswith(f.coarse + "/")):
            continue
        if f.fine and r.fine != f.fine:
            continue
        if f.tightness_restricted and (
            r.tightness is None or not f.tightness_min <= r.tightness <= f.tightness_max
        ):
            continue
        if colour_i is not None and (
            r.palette is None or float(np.asarray(r.palette)[colour_i, 3]) < COLOUR_PRESENT
        ):
            continue
        out.append(r)
    return out


class LibraryBrowser(QWidget):
    """Filter bar over a ThumbnailGrid of the library's images."""

    selectionChangedIds = Signal(list)
    activatedId = Signal(int)
    filterChanged = Signal()

    def __init__(self, cache: ThumbnailCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._all: list[ImageRecord] = []
        self.model: ThumbnailModel | None = None
        self.grid = ThumbnailGrid(self)

        self.coarse_box = QComboBox()
        self.coarse_box.setToolTip("Coarse category (major or major › minor)")
        self.fine_box = QComboBox()
        self.fine_box.setToolTip("Fine texture")
        self.labelled_box = QComboBox()
        self.labelled_box.addItem("All images", ANY)
        self.labelled_box.addItem("Labelled", "labelled")
        self.labelled_box.addItem("Unlabelled", "unlabelled")
        self.tight_min = QSpinBox()
        self.tight_max = QSpinBox()
        for spin, value in ((self.tight_min, 0), (self.tight_max, 100)):
            spin.setRange(0, 100)
            spin.setValue(value)
            spin.setSuffix(" %")
            spin.setToolTip("Tightness range (images without a tightness are hidden when narrowed)")
        self.colour_box = QComboBox()
        self.colour_box.addItem("Any colour", ANY)
        for name in COLOUR_NAMES:
            self.colour_box.addItem(name.capitalize(), name)
        self.count_label = QLabel()

        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        for w in (self.coarse_box, self.fine_box, self.labelled_box):
            bar.addWidget(w)
        bar.addWidget(QLabel("Tightness"))
        bar.addWidget(self.tight_min)
        bar.addWidget(QLabel("–"))
        bar.addWidget(self.tight_max)
        bar.addWidget(self.colour_box)
        bar.addStretch(1)
        bar.addWidget(self.count_label)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        # The grid, or a line saying why it is empty (rather than a blank grid).
        self.empty_label = QLabel(EMPTY_LIBRARY)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.views = QStackedWidget()
        self.views.addWidget(self.grid)
        self.views.addWidget(self.empty_label)
        layout.addWidget(self.views, 1)

        for box in (self.coarse_box, self.fine_box, self.labelled_box, self.colour_box):
            box.currentIndexChanged.connect(self._apply)
        self.tight_min.valueChanged.connect(self._apply)
        self.tight_max.valueChanged.connect(self._apply)
        self.grid.selectionChangedIds.connect(self.selectionChangedIds)
        self.grid.activatedId.connect(self.activatedId)
        if cache is not None:
            self.set_cache(cache)

    def set_cache(self, cache: ThumbnailCache) -> None:
        self.model = ThumbnailModel(cache, self)
        self.grid.setModel(self.model)
        self.grid.set_thumb_size(self.grid.iconSize().width())

    def set_taxonomy(self, tax: Taxonomy) -> None:
        for box in (self.coarse_box, self.fine_box):
            box.blockSignals(True)
            box.clear()
        self.coarse_box.addItem("All categories", ANY)
        for major in tax.majors:
            self.coarse_box.addItem(tax.display_coarse(major), major)
            for minor in tax.minors_of(major):
                self.coarse_box.addItem("    " + tax.minor_names.get(minor, minor), minor)
        self.fine_box.addItem("All textures", ANY)
        for fine in tax.fine:
            self.fine_box.addItem(tax.fine_names.get(fine, fine), fine)
        for box in (self.coarse_box, self.fine_box):
            box.blockSignals(False)

    def set_records(self, records: list[ImageRecord]) -> None:
        self._all = list(records)
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
        lo, hi = self.tight_min.value(), self.tight_max.value()
        return BrowseFilter(
            coarse=_choice(self.coarse_box),
            fine=_choice(self.fine_box),
            labelled=LABELLED_CHOICES.get(_choice(self.labelled_box) or ""),
            tightness_min=float(min(lo, hi)),
            tightness_max=float(max(lo, hi)),
            colour=_choice(self.colour_box),
        )

    def visible_records(self) -> list[ImageRecord]:
        return self.model.records() if self.model is not None else []

    def _apply(self) -> None:
        if self.model is None:
            return
        selected = self.grid.selected_ids()
        self.model.set_records(filter_records(self._all, self.current_filter()))
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
            self.empty_label.setText(NO_MATCH if self._all else EMPTY_LIBRARY)
            self.views.setCurrentWidget(self.empty_label)


def _choice(box: QComboBox) -> str | None:
    """The chosen item's data, None for an "All …" entry (or an empty box)."""
    if box.currentIndex() < 0:
        return None
    data = box.currentData()
    return data if isinstance(data, str) and data != ANY else None
