"""The taxonomy editor: add, rename, merge and retire coarse and fine categories.

Ids stay stable (`catalogue.taxonomy_edit`); each edit is one undoable step of the window's
undo stack (the images it relabels included). The dialog only shows the taxonomy and asks for
names; `TaxonomyController` makes the changes."""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.taxonomy import Taxonomy

KindRole = Qt.ItemDataRole.UserRole + 1
IdRole = Qt.ItemDataRole.UserRole + 2


def derive_id(name: str) -> str:
    """A category id from its name: lower case, accents dropped, words joined by "-"
    ("Slub yarn" → "slub-yarn", "Crêpe" → "crepe"); "" when the name has no letter or digit."""
    plain = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return "-".join(re.findall(r"[a-z0-9]+", plain.lower()))


class AddCategoryDialog(QDialog):
    """Categories ▸ Add: the level (coarse or fine), for a coarse one the major it goes under
    (or a new major), the name shown, and the id derived from the name (editable; ids never
    change afterwards, names can)."""

    def __init__(
        self, tax: Taxonomy, kind: str, major: str | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add category")
        self.level_box = QComboBox()
        self.level_box.addItem("Coarse category", "coarse")
        self.level_box.addItem("Fine texture", "fine")
        self.level_box.setCurrentIndex(self.level_box.findData(kind))
        self.under_box = QComboBox()
        self.under_box.addItem("— a new major category —", None)
        for m in tax.active_majors():
            self.under_box.addItem(f"under {tax.display_coarse(m)}", m)
        self.under_box.setCurrentIndex(max(0, self.under_box.findData(major)))
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("e.g. Slub yarn")
        self.id_edit = QLineEdit()
        self.id_edit.setPlaceholderText("derived from the name")
        self.id_label = QLabel()
        self._id_typed = False  # once the user types an id, the name no longer changes it
        self.name_edit.textChanged.connect(self._name_changed)
        self.id_edit.textEdited.connect(self._id_edited)
        self.level_box.currentIndexChanged.connect(self._update)
        self.under_box.currentIndexChanged.connect(self._update)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = self.form = QFormLayout(self)
        form.addRow("Level:", self.level_box)
        form.addRow("Where:", self.under_box)
        form.addRow("Name:", self.name_edit)
        form.addRow("Id:", self.id_edit)
        form.addRow("", self.id_label)
        form.addRow(self.buttons)
        self.name_edit.setFocus()
        self._update()

    def kind(self) -> str:
        return str(self.level_box.currentData())

    def category_id(self) -> str:
        """The full id: ``major``, ``major/minor`` or a fine id."""
        cid = self.id_edit.text().strip()
        major = self.under_box.currentData()
        if self.kind() == "coarse" and major is not None and cid:
            return f"{major}/{cid}"
        return cid

    def name(self) -> str:
        return self.name_edit.text().strip()

    def _name_changed(self, text: str) -> None:
        if not self._id_typed:
            self.id_edit.setText(derive_id(text))
        self._update()

    def _id_edited(self, text: str) -> None:
        self._id_typed = bool(text.strip())
        self._update()

    def _update(self) -> None:
        coarse = self.kind() == "coarse"
        self.form.setRowVisible(self.under_box, coarse)  # a fine texture has no major
        cid = self.category_id()
        where = "fine texture" if not coarse else "coarse category"
        self.id_label.setText(f"Adds the {where} with id “{cid}”" if cid else "")
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(bool(cid and self.name()))


class TaxonomyDialog(QDialog):
    # kind, action, arguments: ("coarse", "add", (id, name)), ("fine", "merge", (src, tgt)), …
    editRequested = Signal(str, str, tuple)

    def __init__(
        self, taxonomy: Taxonomy, counts: dict[str, int], parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Categories")
        self.resize(560, 560)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Category", "Id", "Images"])
        self.tree.setColumnWidth(0, 240)
        note = QLabel(
            "Ids never change: renaming changes only the name shown; merging relabels the images "
            "and retires the old category; a retired category stays known to trained models "
            "but can no longer be chosen. Every edit can be undone (Edit ▸ Undo)."
        )
        note.setWordWrap(True)
        self.add_button = QPushButton("Add…")
        self.rename_button = QPushButton("Rename…")
        self.merge_button = QPushButton("Merge into…")
        self.retire_button = QPushButton("Retire…")
        self.add_button.clicked.connect(self._ask_add)
        self.rename_button.clicked.connect(self._ask_rename)
        self.merge_button.clicked.connect(self._ask_merge)
        self.retire_button.clicked.connect(self._ask_retire)
        row = QHBoxLayout()
        for b in (self.add_button, self.rename_button, self.merge_button, self.retire_button):
            row.addWidget(b)
        row.addStretch(1)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.tree, 1)
        layout.addLayout(row)
        layout.addWidget(buttons)
        self.tree.currentItemChanged.connect(lambda *_: self._update_buttons())
        self.add_dialog: AddCategoryDialog | None = None  # the latest Add… (tests, scripts)
        self.set_taxonomy(taxonomy, counts)

    def set_taxonomy(self, tax: Taxonomy, counts: dict[str, int]) -> None:
        """Show the current categories (retired ones hidden), with how many images each has."""
        self.taxonomy = tax
        current = self.current()
        self.tree.clear()
        coarse = QTreeWidgetItem(self.tree, ["Coarse categories"])
        fine = QTreeWidgetItem(self.tree, ["Fine textures"])
        # The headings say which level Add… adds to (they have no id: nothing else to do).
        coarse.setData(0, KindRole, "coarse")
        fine.setData(0, KindRole, "fine")
        for major in tax.active_majors():
            item = self._item(coarse, "coarse", major, tax.display_coarse(major), counts)
            for minor in tax.minors_of(major):
                if not tax.is_retired(minor):
                    self._item(item, "coarse", minor, tax.minor_names.get(minor, minor), counts)
        for f in tax.active_fine():
            self._item(fine, "fine", f, tax.fine_names.get(f, f), counts)
        self.tree.expandAll()
        if current is not None:
            self.select(*current)
        self._update_buttons()

    def _item(
        self, parent: QTreeWidgetItem, kind: str, cid: str, name: str, counts: dict[str, int]
    ) -> QTreeWidgetItem:
        item = QTreeWidgetItem(parent, [name, cid, str(counts.get(f"{kind}:{cid}", 0))])
        item.setData(0, KindRole, kind)
        item.setData(0, IdRole, cid)
        return item

    def current(self) -> tuple[str, str] | None:
        item = self.tree.currentItem()
        if item is None or item.data(0, IdRole) is None:
            return None
        return str(item.data(0, KindRole)), str(item.data(0, IdRole))

    def select(self, kind: str, cid: str) -> bool:
        for item in self._items():
            if (item.data(0, KindRole), item.data(0, IdRole)) == (kind, cid):
                self.tree.setCurrentItem(item)
                return True
        return False

    def _items(self) -> list[QTreeWidgetItem]:
        out = []
        stack = [self.tree.topLevelItem(i) for i in range(self.tree.topLevelItemCount())]
        while stack:
            item = stack.pop()
            out.append(item)
            stack.extend(item.child(i) for i in range(item.childCount()))
        return out

    def ids(self, kind: str) -> list[str]:
        return [
            str(i.data(0, IdRole))
            for i in self._items()
            if i.data(0, KindRole) == kind and i.data(0, IdRole) is not None
        ]

    def _update_buttons(self) -> None:
        on = self.current() is not None
        for b in (self.rename_button, self.merge_button, self.retire_button):
            b.setEnabled(on)

    # --- asking the user -------------------------------------------------------------------
    def _ask_add(self) -> None:
        """What is selected decides where the new category goes: a heading its level, a major
        (or one of its minors) a new minor under that major; the dialog can change both."""
        item = self.tree.currentItem()
        kind = str(item.data(0, KindRole)) if item is not None else "coarse"
        cid = item.data(0, IdRole) if item is not None else None
        major = str(cid).split("/", 1)[0] if kind == "coarse" and cid else None
        dialog = AddCategoryDialog(self.taxonomy, kind, major, self)
        dialog.accepted.connect(
            lambda: self.editRequested.emit(
                dialog.kind(), "add", (dialog.category_id(), dialog.name() or None)
            )
        )
        self.add_dialog = dialog
        dialog.open()

    def _ask_rename(self) -> None:
        cur = self.current()
        if cur is None:
            return
        name, ok = QInputDialog.getText(
            self, "Rename", f"New name for {cur[1]}:", text=self.tree.currentItem().text(0)
        )
        if ok and name.strip():
            self.editRequested.emit(cur[0], "rename", (cur[1], name.strip()))

    def _ask_merge(self) -> None:
        cur = self.current()
        if cur is None:
            return
        choices = [c for c in self.ids(cur[0]) if c != cur[1]]
        target, ok = QInputDialog.getItem(
            self, "Merge", f"Relabel every image of {cur[1]} with:", choices, 0, False
        )
        if ok and target:
            self.editRequested.emit(cur[0], "merge", (cur[1], target))

    def _ask_retire(self) -> None:
        cur = self.current()
        if cur is None:
            return
        answer = QMessageBox.question(
            self,
            "Retire",
            f"Retire {cur[1]}? Images labelled with it lose that label (undoable).",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.editRequested.emit(cur[0], "retire", (cur[1], True))


def label_counts(records: list[Any]) -> dict[str, int]:
    """'coarse:<id>' / 'fine:<id>' → number of images (a minor counts for its major too)."""
    out: dict[str, int] = {}
    for r in records:
        if r.coarse:
            major = r.coarse.split("/")[0]
            for key in {f"coarse:{r.coarse}", f"coarse:{major}"}:
                out[key] = out.get(key, 0) + 1
        if r.fine:
            out[f"fine:{r.fine}"] = out.get(f"fine:{r.fine}", 0) + 1
    return out
