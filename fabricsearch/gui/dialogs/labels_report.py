"""The report of a labels CSV import: rows applied, rows refused grouped by why, and for rows
naming categories the library lacks one line per category and the button that adds them and
applies those rows ("Add these 12 categories and import"). The dialog only shows a
`services.labels.LabelsSummary` and asks; `LibraryController` does the work."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.services.labels import LabelsSummary, MissingCategory
from fabricsearch.taxonomy import Taxonomy, split_coarse

#: Refused rows listed under each group (a CSV of a million rows must not fill a widget).
MAX_LISTED = 500


def _rows(n: int) -> str:
    return f"{n:,} row{'s' * (n != 1)}"


def category_text(m: MissingCategory, tax: Taxonomy) -> str:
    """'Coarse category: Plaid › madras — 40 rows' (a known major by its name)."""
    if m.level == "fine":
        what = f"Fine texture: {m.id}"
    else:
        major, minor = split_coarse(m.id)
        shown = tax.major_names.get(major, major)
        what = f"Coarse category: {shown}" + (f" › {minor}" if minor is not None else "")
        if minor is not None and major not in tax.majors:
            what += " (a new major too)"
    text = f"{what} — {_rows(m.rows)}"
    if m.problem:
        text += f" (cannot be added: {m.problem})"
    return text


class LabelsReportDialog(QDialog):
    addRequested = Signal()  # the user asked to add the missing categories and import

    def __init__(
        self, summary: LabelsSummary, taxonomy: Taxonomy, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Labels imported")
        self.library: Any = None  # the library the rows were applied to (its controller sets it)
        self.resize(640, 460)
        self.headline = QLabel()
        self.headline.setWordWrap(True)
        self.missing_title = QLabel()
        self.missing_title.setWordWrap(True)
        self.missing = QTreeWidget()
        self.missing.setHeaderHidden(True)
        self.missing.setRootIsDecorated(False)
        self.add_button = QPushButton()
        self.add_button.clicked.connect(self._add)
        self.others_title = QLabel("Other rows refused (open a group to see its rows):")
        self.others = QTreeWidget()
        self.others.setHeaderLabels(["Why", "Line", "Path", "Reason"])
        self.others.setColumnWidth(0, 260)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.headline)
        layout.addWidget(self.missing_title)
        layout.addWidget(self.missing, 1)
        layout.addWidget(self.add_button)
        layout.addWidget(self.others_title)
        layout.addWidget(self.others, 1)
        layout.addWidget(buttons)
        self.set_summary(summary, taxonomy)

    def set_summary(self, summary: LabelsSummary, taxonomy: Taxonomy) -> None:
        """Show ``summary`` (the first import, or the first and the categories' rows)."""
        self.summary = summary
        name = Path(summary.source).name or "the CSV"
        head = f"{name}: <b>{summary.applied:,}</b> rows applied, "
        head += f"<b>{summary.refused:,}</b> refused."
        if summary.added_categories:
            added = ", ".join(summary.added_categories)
            head += f"<br>Categories added: {added}."
        self.headline.setText(head)

        self.missing.clear()
        for m in summary.missing:
            QTreeWidgetItem(self.missing, [category_text(m, taxonomy)])
        n_rows = len(summary.missing_lines)
        addable = summary.addable
        self.missing_title.setText(
            f"{_rows(summary.missing_rows)} name categories this library lacks "
            f"({len(summary.missing)}):"
        )
        for w in (self.missing_title, self.missing):
            w.setVisible(bool(summary.missing))
        n = len(addable)
        self.add_button.setText(
            f"Add {'these' if n != 1 else 'this'} {n} categor{'ies' if n != 1 else 'y'} and import"
        )
        self.add_button.setToolTip(
            f"Adds them to the library's categories, each as a coarse category or a fine "
            f"texture as its CSV column says, and applies the {_rows(n_rows)} that name them"
        )
        self.add_button.setVisible(bool(addable) and n_rows > 0)
        self.add_button.setEnabled(True)
        self.add_button.setDefault(not self.add_button.isHidden())

        self.others.clear()
        for group in summary.others:
            top = QTreeWidgetItem(self.others, [f"{group.reason} — {_rows(len(group.rows))}"])
            for e in group.rows[:MAX_LISTED]:
                QTreeWidgetItem(
                    top,
                    ["", str(e.get("line", "")), str(e.get("path", "")), str(e.get("reason"))],
                )
            if len(group.rows) > MAX_LISTED:
                QTreeWidgetItem(top, [f"… and {len(group.rows) - MAX_LISTED:,} more"])
        for w in (self.others_title, self.others):
            w.setVisible(bool(summary.others))

    def set_busy(self, busy: bool) -> None:
        self.add_button.setEnabled(not busy)

    def missing_lines_shown(self) -> list[str]:
        """The lines shown for the missing categories (tests, scripts)."""
        return [
            self.missing.topLevelItem(i).text(0) for i in range(self.missing.topLevelItemCount())
        ]

    def refused_groups_shown(self) -> list[str]:
        return [self.others.topLevelItem(i).text(0) for i in range(self.others.topLevelItemCount())]

    def _add(self) -> None:
        self.set_busy(True)
        self.addRequested.emit()
