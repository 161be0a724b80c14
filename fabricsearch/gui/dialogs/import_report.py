"""The report shown after importing a folder: counts, the files that failed with reasons, the
duplicates (which file is the same photo as which one in the library, behind a "Show" button)
and what its labels CSV did."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
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


def duplicate_entries(report: Any) -> list[tuple[str, str]]:
    """(file, the library photo with the same content) pairs from an ImportReport."""
    return [
        (str(d.get("path", "")), str(d.get("of", "")))
        for d in getattr(report, "duplicates", None) or []
    ]


def _table(rows: list[tuple[str, str]], headers: list[str]) -> QTableWidget:
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(headers)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
    for row, (a, b) in enumerate(rows):
        table.setItem(row, 0, QTableWidgetItem(a))
        table.setItem(row, 1, QTableWidgetItem(b))
    header = table.horizontalHeader()
    header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
    header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    table.setColumnWidth(0, 320)
    return table


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
        text = f"{folder}<br>" + " · ".join(counts)
        labels = getattr(report, "labels", None)
        if labels is not None:
            # The labels CSV's rows too: refused rows are never silent (the labels report
            # groups them and offers to add missing categories).
            name = Path(getattr(labels, "source", "") or "labels.csv").name
            text += (
                f"<br>{name}: <b>{labels.applied:,}</b> labels applied, "
                f"<b>{len(labels.errors):,}</b> rows refused"
            )
        self.summary = QLabel(text)
        self.summary.setWordWrap(True)
        self.table = _table(failed, ["File", "Reason"])
        self.table.setVisible(bool(failed))
        dup_rows = duplicate_entries(report)
        self.duplicates_button = QToolButton()
        self.duplicates_button.setText(f"Show the {len(dup_rows):,} duplicates")
        self.duplicates_button.setCheckable(True)
        self.duplicates_button.setVisible(bool(dup_rows))
        self.duplicates = _table(dup_rows, ["File", "Same photo as (in the library)"])
        self.duplicates.setVisible(False)
        self.duplicates_button.toggled.connect(self._show_duplicates)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        layout = QVBoxLayout(self)
        layout.addWidget(self.summary)
        if failed:
            layout.addWidget(QLabel("These files could not be imported:"))
        layout.addWidget(self.table, 1)
        layout.addWidget(self.duplicates_button)
        layout.addWidget(self.duplicates, 1)
        layout.addWidget(buttons)

    def _show_duplicates(self, on: bool) -> None:
        self.duplicates.setVisible(on)
        n = self.duplicates.rowCount()
        self.duplicates_button.setText(f"{'Hide' if on else 'Show'} the {n:,} duplicates")

    def failed_paths(self) -> list[str]:
        return [self.table.item(r, 0).text() for r in range(self.table.rowCount())]

    def duplicate_pairs(self) -> list[tuple[str, str]]:
        t = self.duplicates
        return [(t.item(r, 0).text(), t.item(r, 1).text()) for r in range(t.rowCount())]
