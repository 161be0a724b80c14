"""The report shown after importing a folder: counts and the files that failed, with reasons."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


def failed_entries(report: Any) -> list[tuple[str, str]]:
    """(path, reason) pairs from an ImportReport (dicts or tuples)."""
    out = []
    for item in getattr(report, "failed", []) or []:
        if isinstance(item, dict):
            out.append((str(item.get("path", "")), str(item.get("reason", ""))))
        else:
            path, reason = item
            out.append((str(path), str(reason)))
    return out


class ImportReportDialog(QDialog):
    def __init__(self, report: Any, folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(
            "Import finished" if not getattr(report, "cancelled", False) else "Import cancelled"
        )
        self.resize(640, 360)
        failed = failed_entries(report)
        counts = [
            f"<b>{getattr(report, 'added', 0):,}</b> added",
            f"{getattr(report, 'updated', 0):,} updated",
            f"{getattr(report, 'moved', 0):,} moved",
            f"{getattr(report, 'unchanged', 0):,} unchanged",
        ]
        dups = getattr(report, "duplicates", None) or []
        if dups:
            counts.append(f"{len(dups):,} duplicates")
        counts.append(f"<b>{len(failed):,}</b> failed")
        self.summary = QLabel(f"{folder}<br>" + " · ".join(counts))
        self.summary.setWordWrap(True)
        self.table = QTableWidget(len(failed), 2)
        self.table.setHorizontalHeaderLabels(["File", "Reason"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for row, (path, reason) in enumerate(failed):
            self.table.setItem(row, 0, QTableWidgetItem(path))
            self.table.setItem(row, 1, QTableWidgetItem(reason))
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 320)
        self.table.setVisible(bool(failed))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        if failed:
            layout.addWidget(QLabel("These files could not be imported:"))
        layout.addWidget(self.table, 1)
        layout.addWidget(buttons)

    def failed_paths(self) -> list[str]:
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]
