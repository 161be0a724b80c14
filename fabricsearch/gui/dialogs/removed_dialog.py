"""Library ▸ Recently removed…: the removals kept in the library's ``removed/`` folder, newest
first, each with a Restore button's worth of detail (when, who, how many, labelled, how many
are back in the library)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

HEADERS = ("Removed", "By", "Images", "Labelled", "In the library again", "First photo")


def describe_time(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds))


class RecentlyRemovedDialog(QDialog):
    """A table of `services.records.RemovalBatch`; Restore asks for the selected one
    (`restoreRequested` with its record file), the owner restores and calls `set_batches`."""

    restoreRequested = Signal(str)

    def __init__(self, batches: Sequence[Any], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Recently removed")
        self.resize(760, 360)
        self.batches: list[Any] = []
        self.reading = False
        layout = QVBoxLayout(self)
        self.note = QLabel(
            "Images removed from the library, with their labels and records. The photo files "
            "were never deleted. Restore puts a removal back."
        )
        self.note.setWordWrap(True)
        layout.addWidget(self.note)
        self.table = QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels(HEADERS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(
            len(HEADERS) - 1, QHeaderView.ResizeMode.Stretch
        )
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.restore_button = QPushButton("Restore")
        buttons.addButton(self.restore_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.restore_button.clicked.connect(self._restore)
        self.table.itemSelectionChanged.connect(self._update_button)
        self.set_batches(batches)

    def set_reading(self, reading: bool) -> None:
        """While the removed/ folder is read: no Restore, and say so."""
        self.reading = reading
        self.restore_button.setEnabled(False)
        self.setWindowTitle("Recently removed (reading…)" if reading else "Recently removed")

    def set_batches(self, batches: Sequence[Any]) -> None:
        self.reading = False
        self.setWindowTitle("Recently removed")
        self.batches = list(batches)
        self.table.setRowCount(len(self.batches))
        for row, b in enumerate(self.batches):
            cells = (
                describe_time(b.removed_at),
                b.who or "",
                str(b.count),
                str(b.labelled),
                f"{b.back} of {b.count}",
                b.paths[0] if b.paths else "",
            )
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setToolTip("\n".join(b.paths[:30]) + ("\n…" if b.count > 30 else ""))
                if col in (2, 3, 4):
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, col, item)
        if self.batches:
            self.table.selectRow(0)
        self.table.resizeColumnsToContents()
        self._update_button()

    def select_record(self, record: str) -> bool:
        for row, b in enumerate(self.batches):
            if b.record == record:
                self.table.selectRow(row)
                return True
        return False

    def selected(self) -> Any:
        rows = self.table.selectionModel().selectedRows()
        return self.batches[rows[0].row()] if rows else None

    def _update_button(self) -> None:
        b = self.selected()
        self.restore_button.setEnabled(not self.reading and b is not None and b.back < b.count)

    def _restore(self) -> None:
        b = self.selected()
        if b is not None:
            self.restoreRequested.emit(b.record)
