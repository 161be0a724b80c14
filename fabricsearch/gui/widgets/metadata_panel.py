"""The fabric record of the selection: article, supplier, composition, weight, width, price,
season, notes and tags. Editing a field sets it on every selected image (one undoable step);
a field whose values differ across the selection shows "(mixed)" until it is typed over."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QLabel,
    QLineEdit,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

FIELD_LABELS = {
    "article": "Article no.",
    "supplier": "Supplier",
    "composition": "Composition",
    "weight": "Weight (g/m²)",
    "width": "Width (cm)",
    "price": "Price",
    "season": "Season",
    "notes": "Notes",
    "tags": "Tags",
}
MIXED_TEXT = "(mixed)"


def shown(value: Any) -> str:
    if value is None or value == ():
        return ""
    if isinstance(value, tuple | list):
        return ", ".join(value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


class MetadataPanel(QWidget):
    metadataRequested = Signal(dict)  # {field: text or None}, for every selected image

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.selection_label = QLabel("No selection")
        # A refused value, said beside the form (not in a box) with the typed text kept, so it
        # can be corrected rather than typed again.
        self.problem_label = QLabel()
        self.problem_label.setWordWrap(True)
        self.problem_label.setStyleSheet("color: #b00020;")
        self.problem_label.setVisible(False)
        self.problem_field = ""
        self.edits: dict[str, QLineEdit] = {}
        self._shown: dict[str, str] = {}
        form = QFormLayout()
        for name, label in FIELD_LABELS.items():
            edit = QLineEdit()
            edit.setClearButtonEnabled(True)
            edit.editingFinished.connect(lambda n=name: self._edited(n))
            if name == "tags":
                edit.setToolTip("Comma-separated, e.g. summer, linen look")
            self.edits[name] = edit
            form.addRow(label, edit)
        # The fields scroll rather than make the window taller than a small screen (issue 24).
        fields = QWidget()
        inner = QVBoxLayout(fields)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.addLayout(form)
        inner.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(fields)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.selection_label)
        layout.addWidget(self.problem_label)
        layout.addWidget(scroll, 1)
        self.set_selection([], {})

    def show_problem(self, name: str, reason: str) -> None:
        """Say why `name`'s value was refused, under the selection and on the field, keeping
        the typed text (`set_selection` or a value accepted clears it)."""
        self.clear_problem()
        self.problem_field = name
        label = FIELD_LABELS.get(name, name)
        self.problem_label.setText(f"{label}: {reason}")
        self.problem_label.setVisible(True)
        edit = self.edits.get(name)
        if edit is not None:
            edit.setStyleSheet("border: 1px solid #b00020;")
            edit.setToolTip(reason)
        # Finishing the edit again with the same text tries it again.
        self._shown.pop(name, None)

    def clear_problem(self) -> None:
        edit = self.edits.get(self.problem_field)
        if edit is not None:
            edit.setStyleSheet("")
            edit.setToolTip(
                "Comma-separated, e.g. summer, linen look" if self.problem_field == "tags" else ""
            )
        self.problem_field = ""
        self.problem_label.setVisible(False)

    def set_selection(self, ids: Sequence[int], metadata: Mapping[int, Any]) -> None:
        self.clear_problem()
        n = len(ids)
        self.selection_label.setText(
            "No selection" if n == 0 else f"Fabric record of {n} image{'s' if n != 1 else ''}"
        )
        for name, edit in self.edits.items():
            values = {shown(getattr(metadata[i], name)) for i in ids if i in metadata}
            edit.blockSignals(True)
            if len(values) > 1:
                edit.setText("")
                edit.setPlaceholderText(MIXED_TEXT)
            else:
                edit.setText(values.pop() if values else "")
                edit.setPlaceholderText("")
            self._shown[name] = edit.text()
            edit.setEnabled(n > 0)
            edit.blockSignals(False)

    def set_field(self, name: str, text: str) -> None:
        """Type `text` into a field and finish editing, as a user does (scripts and tests)."""
        self.edits[name].setText(text)
        self._edited(name)

    def _edited(self, name: str) -> None:
        edit = self.edits[name]
        text = edit.text().strip()
        mixed = edit.placeholderText() == MIXED_TEXT
        if text == self._shown.get(name, "") and not (mixed and text):
            return  # focus left without a change: nothing to write
        self._shown[name] = text
        self.metadataRequested.emit({name: text or None})
