"""Facet filters over image records: coarse major/minor, fine texture, labelled or not, a
tightness range and a colour. The same bar narrows the library grid and the search results."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox, QToolButton, QWidget

from fabricsearch.catalogue import ImageRecord
from fabricsearch.colour import COLOUR_NAMES
from fabricsearch.gui.widgets.flow import FlowLayout, row_widget
from fabricsearch.taxonomy import Taxonomy

COLOUR_PRESENT = 0.05  # a colour "is in" an image when it covers at least 5 % of it
# Item data of the "All …" entries. Never None: PySide6 6.12.0 drops a reference to None on
# every None item-data call, and Python aborts once None's count reaches zero.
ANY = ""
LABELLED_CHOICES = {"labelled": True, "unlabelled": False}


def current_minors(tax: Taxonomy, major: str) -> list[str]:
    """The minors of `major` that can still be chosen (retired ones hidden from pickers)."""
    return [m for m in tax.minors_of(major) if not tax.is_retired(m)]


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

    @property
    def active(self) -> bool:
        return self != BrowseFilter()

    def to_dict(self) -> dict[str, Any]:
        """The fields that differ from no filter (a saved search stores these)."""
        return {k: v for k, v in asdict(self).items() if v != getattr(BrowseFilter(), k)}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BrowseFilter:
        """Back from `to_dict`; unknown keys (a newer version's) are left out."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


def record_passes(r: ImageRecord, f: BrowseFilter, colour_i: int | None = None) -> bool:
    if f.labelled is not None and r.labelled != f.labelled:
        return False
    if f.coarse and not (r.coarse == f.coarse or (r.coarse or "").startswith(f.coarse + "/")):
        return False
    if f.fine and r.fine != f.fine:
        return False
    if f.tightness_restricted and (
        r.tightness is None or not f.tightness_min <= r.tightness <= f.tightness_max
    ):
        return False
    return colour_i is None or (
        r.palette is not None and float(np.asarray(r.palette)[colour_i, 3]) >= COLOUR_PRESENT
    )


def filter_records(records: Iterable[ImageRecord], f: BrowseFilter) -> list[ImageRecord]:
    """Records that pass the filters (unknown tightness fails a restricted range)."""
    colour_i = COLOUR_NAMES.index(f.colour) if f.colour else None
    return [r for r in records if record_passes(r, f, colour_i)]


class FacetBar(QWidget):
    """The filter widgets in a row; `filterChanged` on every change."""

    filterChanged = Signal()

    def __init__(self, parent: QWidget | None = None, compact: bool = False) -> None:
        super().__init__(parent)
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
        self.colour_box.setToolTip("Contains this colour (at least 5 % of the image)")
        for box, chars in (
            (self.coarse_box, 10),
            (self.fine_box, 7),
            (self.labelled_box, 8),
            (self.colour_box, 7),
        ):
            box.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            box.setMinimumContentsLength(chars)
        self.reset_button = QToolButton()
        self.reset_button.setText("Clear")
        self.reset_button.setToolTip("Show everything again")
        self.reset_button.clicked.connect(self.reset)

        # One line when there is room, more when narrow: the filters never widen the window
        # (issue 24: it must fit 1280×800).
        self.flow = FlowLayout(self)
        for w in (self.coarse_box, self.fine_box, self.labelled_box):
            self.flow.addWidget(w)
        self.flow.addWidget(
            row_widget(
                QLabel("Tight." if compact else "Tightness"),
                self.tight_min,
                QLabel("–"),
                self.tight_max,
            )
        )
        self.flow.addWidget(self.colour_box)
        self.flow.addWidget(self.reset_button)
        self._extra_active = False  # a text filter beside the facets (its owner says)
        for box in (self.coarse_box, self.fine_box, self.labelled_box, self.colour_box):
            box.currentIndexChanged.connect(self._changed)
        self.tight_min.valueChanged.connect(self._changed)
        self.tight_max.valueChanged.connect(self._changed)
        self._update_reset()

    def set_taxonomy(self, tax: Taxonomy) -> None:
        """The categories offered; a choice still offered stays chosen (categories added by
        another process refresh the boxes without dropping the filter), else "All"."""
        chosen = [_choice(box) for box in (self.coarse_box, self.fine_box)]
        for box in (self.coarse_box, self.fine_box):
            box.blockSignals(True)
            box.clear()
        self.coarse_box.addItem("All categories", ANY)
        for major in tax.active_majors():
            self.coarse_box.addItem(tax.display_coarse(major), major)
            for minor in current_minors(tax, major):
                self.coarse_box.addItem("    " + tax.minor_names.get(minor, minor), minor)
        self.fine_box.addItem("All textures", ANY)
        for fine in tax.active_fine():
            self.fine_box.addItem(tax.fine_names.get(fine, fine), fine)
        lost = False
        for box, data in zip((self.coarse_box, self.fine_box), chosen, strict=True):
            index = box.findData(data) if data is not None else -1
            box.setCurrentIndex(max(0, index))
            lost |= data is not None and index < 0
            box.blockSignals(False)
        if lost:
            self._changed()  # the filter follows what the boxes now show

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

    # --- setting values as a user would pick them (scripts and tests) ------------------------
    def set_coarse(self, coarse: str) -> None:
        self.coarse_box.setCurrentIndex(max(0, self.coarse_box.findData(coarse)))

    def set_fine(self, fine: str) -> None:
        self.fine_box.setCurrentIndex(max(0, self.fine_box.findData(fine)))

    def set_colour_index(self, i: int) -> None:
        self.colour_box.setCurrentIndex(i + 1)

    def set_filter(self, f: BrowseFilter) -> None:
        """Show `f` in the boxes (a saved search), with one `filterChanged`. A category the
        library no longer offers falls back to "All"."""
        labelled = next((k for k, v in LABELLED_CHOICES.items() if v == f.labelled), ANY)
        widgets = (
            self.coarse_box,
            self.fine_box,
            self.labelled_box,
            self.colour_box,
            self.tight_min,
            self.tight_max,
        )
        for w in widgets:
            w.blockSignals(True)
        for box, data in (
            (self.coarse_box, f.coarse),
            (self.fine_box, f.fine),
            (self.labelled_box, labelled),
            (self.colour_box, f.colour),
        ):
            box.setCurrentIndex(max(0, box.findData(data if data is not None else ANY)))
        self.tight_min.setValue(round(f.tightness_min))
        self.tight_max.setValue(round(f.tightness_max))
        for w in widgets:
            w.blockSignals(False)
        self._changed()

    def reset(self) -> None:
        """Every box back to "All" / "Any", the tightness to 0–100 %, with one `filterChanged`."""
        self.set_filter(BrowseFilter())

    def _changed(self, *_args: object) -> None:
        self._update_reset()
        self.filterChanged.emit()

    def add_widget(self, widget: QWidget) -> None:
        """A widget after the facets, wrapping with them (an expanding one fills its line)."""
        self.flow.addWidget(widget)

    def set_extra_active(self, active: bool) -> None:
        """Whether a filter beside the facets (the text field) narrows the list: *Clear* is
        enabled then too, and its owner clears that filter on *Clear*."""
        self._extra_active = active
        self._update_reset()

    def _update_reset(self) -> None:
        self.reset_button.setEnabled(self.current_filter().active or self._extra_active)


def _choice(box: QComboBox) -> str | None:
    """The chosen item's data, None for an "All …" entry (or an empty box)."""
    if box.currentIndex() < 0:
        return None
    data = box.currentData()
    return data if isinstance(data, str) and data != ANY else None
