"""Labelling panel: coarse major → minor, fine texture and tightness for the selection.

Shortcuts (active anywhere in the window, on the selected images):

* 1–9: coarse major (in taxonomy order); Alt+1–9: minor of the current major
* F1–F12: fine texture (in taxonomy order)
* [ and ]: tightness −5 / +5 %
* N (Edit menu): next unlabelled image; Ctrl+Z / Ctrl+Shift+Z: undo / redo
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui.widgets.facets import current_minors
from fabricsearch.taxonomy import Taxonomy, split_coarse

MIXED = "(mixed)"
# Item data of the "—" (no label) entries. Never None: PySide6 6.12.0 drops a reference to None
# on every None item-data call, and Python aborts once None's count reaches zero.
NO_LABEL = ""
TIGHTNESS_STEP = 5
TIGHT_MIXED = -1  # the spin box's value while the selection's tightness values differ


class LabelPanel(QWidget):
    """Edits labels of the selected images; every change goes out as `labelRequested`."""

    labelRequested = Signal(dict)  # some of {"coarse", "fine", "tightness"}
    tightnessStepRequested = Signal(int)  # ± percent, each image from its own value
    nextUnlabelledRequested = Signal()
    acceptRequested = Signal()  # the selection's suggestions (Enter)
    acceptAllRequested = Signal(float)  # suggestions of the selection at or above a confidence

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.taxonomy = Taxonomy()
        self._ids: list[int] = []
        self._updating = False
        self._shown_tightness: Any = None  # what the panel shows: a number, None or MIXED

        self.selection_label = QLabel("No selection")
        self.major_box = QComboBox()
        self.minor_box = QComboBox()
        self.fine_box = QComboBox()
        # As wide as a short name, not the longest one: the panel never widens the window.
        for box in (self.major_box, self.minor_box, self.fine_box):
            box.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            box.setMinimumContentsLength(14)
        self.tight_slider = QSlider(Qt.Orientation.Horizontal)
        self.tight_slider.setRange(0, 100)
        self.tight_spin = QSpinBox()
        self.tight_spin.setRange(0, 100)
        self.tight_spin.setSuffix(" %")
        self.tight_spin.setSpecialValueText("mixed")  # shown at TIGHT_MIXED only
        # valueChanged on Enter, focus loss and arrow steps, not on every keystroke.
        self.tight_spin.setKeyboardTracking(False)
        self.tight_known = QCheckBox("known")
        self.tight_known.setToolTip("Untick to clear the tightness of the selection")
        self.next_button = QPushButton(
            self.style().standardIcon(QStyle.StandardPixmap.SP_ArrowForward), "Next unlabelled"
        )
        self.next_button.setToolTip("Select the next image without labels (N)")
        self.clear_button = QPushButton("Clear labels")
        self.clear_button.setToolTip("Remove all labels from the selection (undoable)")
        # What the model suggests for the selection's unlabelled images, in italics ("ghost"
        # labels): nothing is written until accepted.
        self.suggestion_label = QLabel("")
        self.suggestion_label.setWordWrap(True)
        self.suggestion_label.setStyleSheet("QLabel { font-style: italic; color: #2f5fb3; }")
        self.accept_button = QPushButton("Accept (Enter)")
        self.accept_button.setToolTip("Set the suggested labels on the selected images")
        self.accept_all_button = QPushButton("Accept all ≥")
        self.accept_all_button.setToolTip(
            "Accept the suggestions of every selected image at or above this confidence "
            "(Shift+Enter)"
        )
        self.min_confidence = QSpinBox()
        self.min_confidence.setRange(0, 100)
        self.min_confidence.setSuffix(" %")
        self.min_confidence.setValue(50)
        self.accept_button.clicked.connect(self.acceptRequested)
        self.accept_all_button.clicked.connect(
            lambda: self.acceptAllRequested.emit(self.min_confidence.value() / 100.0)
        )

        tight_row = QHBoxLayout()
        tight_row.addWidget(self.tight_slider, 1)
        tight_row.addWidget(self.tight_spin)
        tight_row.addWidget(self.tight_known)
        form = QFormLayout()
        form.addRow("Coarse", self.major_box)
        form.addRow("", self.minor_box)
        form.addRow("Fine", self.fine_box)
        form.addRow("Tightness", tight_row)
        buttons = QHBoxLayout()
        buttons.addWidget(self.clear_button)
        buttons.addStretch(1)
        buttons.addWidget(self.next_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.selection_label)
        suggest_row = QHBoxLayout()
        suggest_row.addWidget(self.suggestion_label, 1)
        suggest_row.addWidget(self.accept_button)
        suggest_row.addWidget(self.accept_all_button)
        suggest_row.addWidget(self.min_confidence)
        layout.addLayout(suggest_row)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addStretch(1)

        self.major_box.activated.connect(self._on_major)
        self.minor_box.activated.connect(self._on_minor)
        self.fine_box.activated.connect(self._on_fine)
        # Every change the user makes is saved: a drag when released, a track click, a key
        # or wheel step and a spin-box step or entry at once.
        self.tight_slider.valueChanged.connect(self._on_slider_value)
        self.tight_slider.sliderReleased.connect(
            lambda: self._commit_tightness(self.tight_slider.value())
        )
        self.tight_spin.valueChanged.connect(self._on_spin_value)
        self.tight_known.toggled.connect(self._on_known)
        self.next_button.clicked.connect(self.nextUnlabelledRequested)
        self.clear_button.clicked.connect(
            lambda: self._request({"coarse": None, "fine": None, "tightness": None})
        )
        self.shortcut_actions: list[QAction] = []
        self.set_taxonomy(self.taxonomy)
        self.set_selection([])
        self.set_suggestion(None)

    def set_suggestion(self, text: str | None, count: int = 0, acceptable: bool = True) -> None:
        """The ghost labels for the selection (None: no suggestion; not ``acceptable``: a
        note without anything to accept)."""
        self.suggestion_label.setText(text or "")
        self.suggestion_label.setVisible(bool(text))
        self.accept_button.setVisible(bool(text) and acceptable)
        for w in (self.accept_all_button, self.min_confidence):
            w.setVisible(count > 1)

    # --- taxonomy and shortcuts ---------------------------------------------------------
    def listen(self, session: Any) -> None:
        """Follow the window's `LibrarySession`: its categories fill the pickers and keys."""
        session.taxonomyChanged.connect(self.set_taxonomy)

    def set_taxonomy(self, tax: Taxonomy) -> None:
        self.taxonomy = tax
        self._updating = True
        self.major_box.clear()
        self.major_box.addItem("—", NO_LABEL)
        for i, major in enumerate(tax.active_majors()):
            key = f"  ({i + 1})" if i < 9 else ""
            self.major_box.addItem(tax.major_names.get(major, major) + key, major)
        self.fine_box.clear()
        self.fine_box.addItem("—", NO_LABEL)
        for i, fine in enumerate(tax.active_fine()):
            key = f"  (F{i + 1})" if i < 12 else ""
            self.fine_box.addItem(tax.fine_names.get(fine, fine) + key, fine)
        self._fill_minors(None)
        self._updating = False
        self._build_actions()
        self.setToolTip(self.shortcut_help())

    def shortcut_help(self) -> str:
        tax = self.taxonomy
        lines = ["Keyboard labelling (applies to the selected images):"]
        lines += [
            f"  {i + 1}: {tax.major_names.get(m, m)}" for i, m in enumerate(tax.active_majors()[:9])
        ]
        lines.append("  Alt+1…9: minor category of the current major")
        lines += [
            f"  F{i + 1}: {tax.fine_names.get(f, f)}" for i, f in enumerate(tax.active_fine()[:12])
        ]
        lines.append("  [ / ]: tightness −5 / +5 %")
        return "\n".join(lines)

    def _build_actions(self) -> None:
        old = self.shortcut_actions
        for action in old:
            for w in action.associatedObjects():
                if isinstance(w, QWidget):
                    w.removeAction(action)
            action.deleteLater()
        actions = []
        tax = self.taxonomy

        def make(text: str, key: str, slot: Any) -> None:
            action = QAction(text, self)
            action.setShortcut(QKeySequence(key))
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            action.triggered.connect(lambda _checked=False: slot())
            actions.append(action)

        for i, major in enumerate(tax.active_majors()[:9]):
            make(f"Coarse: {major}", str(i + 1), lambda m=major: self.label_major(m))
        for i in range(9):
            make(f"Minor {i + 1}", f"Alt+{i + 1}", lambda n=i: self.label_minor(n))
        for i, fine in enumerate(tax.active_fine()[:12]):
            make(f"Fine: {fine}", f"F{i + 1}", lambda f=fine: self._request({"fine": f}))
        make("Tightness −5 %", "[", lambda: self.step_tightness(-TIGHTNESS_STEP))
        make("Tightness +5 %", "]", lambda: self.step_tightness(TIGHTNESS_STEP))
        self.shortcut_actions = actions

    # --- showing the selection ----------------------------------------------------------
    def set_selection(self, records: Sequence[ImageRecord]) -> None:
        """Show the labels the selected images share (or '(mixed)')."""
        self._ids = [r.id for r in records]
        n = len(records)
        self.selection_label.setText(
            "No selection" if n == 0 else f"{n} image{'s' if n != 1 else ''} selected"
        )
        for w in (
            self.major_box,
            self.minor_box,
            self.fine_box,
            self.tight_slider,
            self.tight_spin,
            self.tight_known,
            self.clear_button,
        ):
            w.setEnabled(n > 0)
        self._updating = True
        try:
            coarse = _common(r.coarse for r in records)
            major, minor = split_coarse(coarse) if isinstance(coarse, str) else (coarse, None)
            _select(self.major_box, major)
            self._fill_minors(major if isinstance(major, str) else None)
            _select(self.minor_box, coarse if minor else (None if coarse is not MIXED else MIXED))
            _select(self.fine_box, _common(r.fine for r in records))
            tight = _common(r.tightness for r in records)
            self._shown_tightness = tight
            known = isinstance(tight, float | int)
            self.tight_known.setChecked(known or tight == MIXED)
            if tight == MIXED:
                values = [r.tightness for r in records if r.tightness is not None]
                self.tight_spin.setMinimum(TIGHT_MIXED)
                self.tight_spin.setValue(TIGHT_MIXED)
                self.tight_slider.setValue(50)
                self.tight_spin.setToolTip(
                    f"Mixed: {min(values):.0f}–{max(values):.0f} % (some unknown)"
                    if len(values) < n
                    else f"Mixed: {min(values):.0f}–{max(values):.0f} %"
                )
            else:
                self.tight_spin.setMinimum(0)
                self.tight_spin.setValue(round(tight) if known else 50)
                self.tight_slider.setValue(self.tight_spin.value())
                self.tight_spin.setToolTip("")
        finally:
            self._updating = False

    def current_major(self) -> str | None:
        data = _data(self.major_box)
        return data if data != MIXED else None

    def _fill_minors(self, major: str | None) -> None:
        self.minor_box.clear()
        self.minor_box.addItem("— (major only)", NO_LABEL)
        if major:
            for i, minor in enumerate(current_minors(self.taxonomy, major)):
                key = f"  (Alt+{i + 1})" if i < 9 else ""
                self.minor_box.addItem(self.taxonomy.minor_names.get(minor, minor) + key, minor)

    # --- user actions -------------------------------------------------------------------
    def label_major(self, major: str) -> None:
        self._request({"coarse": major})

    def label_minor(self, n: int) -> None:
        major = self.current_major()
        if major is None:
            return
        minors = current_minors(self.taxonomy, major)
        if n < len(minors):
            self._request({"coarse": minors[n]})

    def step_tightness(self, delta: int) -> None:
        """Move each selected image's tightness by `delta` from its own value (unknown: 50)."""
        if not self._updating and self._ids:
            self.tightnessStepRequested.emit(int(delta))

    def _on_major(self, _i: int) -> None:
        major = _data(self.major_box)
        if major != MIXED:
            self._request({"coarse": major})

    def _on_minor(self, _i: int) -> None:
        minor = _data(self.minor_box)
        if minor == MIXED:
            return
        self._request({"coarse": minor if minor else self.current_major()})

    def _on_fine(self, _i: int) -> None:
        fine = _data(self.fine_box)
        if fine != MIXED:
            self._request({"fine": fine})

    def _on_slider_value(self, value: int) -> None:
        if self._updating:
            return
        self._updating = True  # showing the value in the spin box is not a second edit
        try:
            self.tight_spin.setMinimum(0)
            self.tight_spin.setValue(value)
        finally:
            self._updating = False
        if not self.tight_slider.isSliderDown():  # a drag is saved once, when released
            self._commit_tightness(value)

    def _on_spin_value(self, value: int) -> None:
        if self._updating or value == TIGHT_MIXED:
            return
        self._updating = True
        try:
            self.tight_spin.setMinimum(0)
            self.tight_slider.setValue(value)
        finally:
            self._updating = False
        self._commit_tightness(value)

    def _commit_tightness(self, value: int) -> None:
        if self._updating or value == TIGHT_MIXED:
            return
        if self._shown_tightness != MIXED and self._shown_tightness == float(value):
            return  # nothing changed (a click on the handle, a release without a move)
        self._request({"tightness": float(value)})

    def _on_known(self, on: bool) -> None:
        if self._updating:
            return
        value = self.tight_spin.value()
        self._request({"tightness": float(50 if value == TIGHT_MIXED else value) if on else None})

    def _request(self, changes: dict[str, Any]) -> None:
        if self._updating or not self._ids:
            return
        self.labelRequested.emit(changes)


def _common(values: Any) -> Any:
    """The one value all share, MIXED if they differ, None if there are none."""
    values = list(values)
    if not values:
        return None
    first = values[0]
    return first if all(v == first for v in values) else MIXED


def _data(box: QComboBox) -> str | None:
    """The current item's data, None for the "—" entry (or an empty box)."""
    if box.currentIndex() < 0:
        return None
    data = box.currentData()
    return data if isinstance(data, str) and data != NO_LABEL else None


def _select(box: QComboBox, value: Any) -> None:
    if value is None:
        value = NO_LABEL
    if value == MIXED:
        if box.findData(MIXED) < 0:
            box.addItem(MIXED, MIXED)
        box.setCurrentIndex(box.findData(MIXED))
        return
    mixed = box.findData(MIXED)
    if mixed >= 0:
        box.removeItem(mixed)
    i = box.findData(value)
    box.setCurrentIndex(i if i >= 0 else 0)
