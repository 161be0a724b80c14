"""Model ▸ Versions: every trained model with its metrics; switch the active one."""

from __future__ import annotations

import datetime as dt
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.errors import message_for

COLUMNS = ("", "Version", "Method", "Bits", "Created", "Test mAP", "Queries", "Status", "Note")


def _metric(metrics: dict[str, Any], *names: str) -> str:
    for name in names:
        value = metrics.get(name)
        if isinstance(value, int | float):
            return f"{value:.3f}"
    return "—"


class VersionsDialog(QDialog):
    activeChanged = Signal(str)

    def __init__(self, library: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.setWindowTitle("Model versions")
        self.resize(760, 320)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QTableWidget.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.activate_button = QPushButton("Make active")
        self.activate_button.clicked.connect(self.activate_selected)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _i: self.activate_selected())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.activate_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.refresh()

    def refresh(self) -> None:
        from fabricsearch.services.versions import assess as assess_models
        from fabricsearch.services.versions import read_decision

        models = self.library.models()
        active = self.library.active_model()
        # Every model evaluated now on the current test split, the shipped one included.
        assessed = assess_models(self.library)
        self.table.setRowCount(len(models))
        for row, m in enumerate(models):
            created = dt.datetime.fromtimestamp(m.created).strftime("%Y-%m-%d %H:%M")
            test = assessed.get(m.version)
            is_active = active is not None and m.version == active.version
            decision = read_decision(m)
            if is_active:
                status = "active"
            elif decision is not None and not decision.activate:
                status = f"not activated: {decision.reason}"
            else:
                status = ""
            values = (
                "●" if is_active else "",
                m.version,
                m.method,
                str(m.bits),
                created,
                "no codes" if test is None else _metric({"mAP": test.mAP}, "mAP"),
                "" if test is None else str(test.queries),
                status,
                m.note,
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, m.version)
                self.table.setItem(row, col, item)
        self._update_buttons()

    def selected_version(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select_version(self, version: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 1).text() == version:
                self.table.selectRow(row)

    def activate_selected(self) -> None:
        version = self.selected_version()
        if version is None:
            return
        from fabricsearch.services.versions import activate

        try:
            # Images imported since this model was made get their codes first.
            activate(self.library, version)
        except Exception as exc:  # noqa: BLE001 - shown to the user
            reason = message_for(exc, what="switching models")
            QMessageBox.warning(self, "Model versions", f"Cannot switch to {version}: {reason}")
            return
        self.refresh()
        self.activeChanged.emit(version)

    def _update_buttons(self) -> None:
        version = self.selected_version()
        active = self.library.active_model()
        self.activate_button.setEnabled(
            version is not None and (active is None or active.version != version)
        )
