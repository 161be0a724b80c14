"""The taxonomy editor: add, rename, merge and retire coarse and fine categories.

Ids stay stable (`catalogue.taxonomy_edit`); each edit is one undoable step of the window's
undo stack (the images it relabels included). The dialog only shows the taxonomy and asks for
names; `TaxonomyController` makes the changes."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QInputDialog,
    QLabel,
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


class TaxonomyDialog(QDialog):
    # kind, action, arguments: ("coarse", "add", (id, name)), ("fine", "merge", (src, tgt)), …
    editRequested = Signal(str, str, tuple)

    def __init__(self, taxonomy: Taxonomy, counts: dict[str, int], parent: QWidget | None = None):
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
        self.set_taxonomy(taxonomy, counts)

    def set_taxonomy(self, tax: Taxonomy, counts: dict[str, int]) -> None:
        """Show the current categories (retired ones hidden), with how many images each has."""
        self.taxonomy = tax
        current = self.current()
        self.tree.clear()
        coarse = QTreeWidgetItem(self.tree, ["Coarse categories"])
        fine = QTreeWidgetItem(self.tree, ["Fine textures"])
        for top in (coarse, fine):
            top.setFlags(top.flags() & ~Qt.ItemFlag.ItemIsSelectable)
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
        return [str(i.data(0, IdRole)) for i in self._items() if i.data(0, KindRole) == kind]

    def _update_buttons(self) -> None:
        on = self.current() is not None
        for b in (self.rename_button, self.merge_button, self.retire_button):
            b.setEnabled(on)

    # --- asking the user -------------------------------------------------------------------
    def _ask_add(self) -> None:
        cur = self.current()
        kind = cur[0] if cur else "coarse"
        hint = "a major (e.g. herringbone) or major/minor (e.g. plaid/madras)"
        if kind == "fine":
            hint = "a fine texture id (e.g. crepe)"
        cid, ok = QInputDialog.getText(self, "Add category", f"Id: {hint}")
        if ok and cid.strip():
            name, ok = QInputDialog.getText(self, "Add category", "Name shown:", text=cid)
            if ok:
                self.editRequested.emit(kind, "add", (cid.strip(), name.strip() or None))

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
