"""Model ▸ Versions: every trained model with its metrics; switch the active one."""

from __future__ import annotations

import datetime as dt
from functools import partial
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("", "Version", "Method", "Bits", "Created", "Test mAP", "Queries", "Status", "Note")


def _metric(metrics: dict[str, Any], *names: str) -> str:
    for name in names:
        value = metrics.get(name)
        if isinstance(value, int | float):
            return f"{value:.3f}"
    return "—"


class VersionsDialog(QDialog):
    """The versions at once; their test figures from a worker (Model ▸ Versions evaluates
    every model on the current test split: seconds per model on a large library, which froze
    the window for 12.8 s when it ran here; issue 24). Rows say "evaluating…" until their
    model is done; Stop evaluating or closing the dialog cancels. Making a version active
    (which encodes the images it lacks codes for) runs in a worker too."""

    activeChanged = Signal(str)
    assessedChanged = Signal()  # the evaluation ended: finished, failed or stopped

    def __init__(self, library: Any, runner: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.library = library
        self.runner = runner  # gui.jobs.JobRunner: closing the library cancels its jobs
        self.assessed: dict[str, Any] = {}
        self.state = "evaluating"  # evaluating | done | stopped | failed
        self.worker: Any = None  # the evaluation
        self.activating: str | None = None  # the version being made active
        self._generation = 0  # of the evaluation this dialog shows
        self.setWindowTitle("Model versions")
        self.resize(760, 320)
        self.status = QLabel()
        self.status.setWordWrap(True)
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
        self.stop_button = QPushButton("Stop evaluating")
        self.stop_button.clicked.connect(self.stop_evaluating)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.doubleClicked.connect(lambda _i: self.activate_selected())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.activate_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(self.stop_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.evaluate()

    # --- the evaluation, in a worker ------------------------------------------------------
    def evaluate(self) -> Any:
        """Evaluate every model in a worker; the rows show what is done as it comes."""
        from fabricsearch.services.versions import assess

        self.stop_evaluating()
        self.assessed = {}
        self.state = "evaluating"
        self._generation += 1
        # What an evaluation this dialog no longer waits for reports is ignored.
        current = partial(lambda g: g == self._generation, self._generation)

        def progressed(p: Any) -> None:
            if current() and "assessed" in p.info:
                self.assessed = dict(p.info["assessed"])
                self.refresh()

        def finished(assessed: dict[str, Any]) -> None:
            if current():
                self.assessed = dict(assessed)
                self._ended("done")

        self.worker = self.runner.start(
            partial(assess, self.library),
            name="versions",
            slot="versions",
            replace=True,
            on_progress=progressed,
            on_finished=finished,
            on_failed=lambda message: current() and self._ended("failed", message),
            on_cancelled=lambda: current() and self._ended("stopped"),
        )
        self.refresh()
        return self.worker

    def stop_evaluating(self) -> None:
        if self.worker is not None and self.worker.running:
            self.worker.cancel()

    def _ended(self, state: str, message: str = "") -> None:
        self.state = state
        self.refresh()
        if message:
            self.status.setText(f"The evaluation failed: {message}")
        self.assessedChanged.emit()

    def _test_cells(self, version: str) -> tuple[str, str]:
        if version in self.assessed:
            test = self.assessed[version]
            if test is None:
                return "no codes", ""
            return _metric({"mAP": test.mAP}, "mAP"), str(test.queries)
        if self.state == "evaluating":
            return "evaluating…", ""
        return "not evaluated", ""

    # --- the table ------------------------------------------------------------------------
    def refresh(self) -> None:
        from fabricsearch.services.versions import read_decision

        if self.library.closed:
            return  # the window opened another library: this list is of the past
        selected = self.selected_version()
        models = self.library.models()
        active = self.library.active_model()
        self.table.setRowCount(len(models))
        for row, m in enumerate(models):
            created = dt.datetime.fromtimestamp(m.created).strftime("%Y-%m-%d %H:%M")
            is_active = active is not None and m.version == active.version
            decision = read_decision(m)
            if m.version == self.activating:
                status = "making active…"
            elif is_active:
                status = "active"
            elif decision is not None and not decision.activate:
                status = f"not activated: {decision.reason}"
            else:
                status = ""
            test_map, queries = self._test_cells(m.version)
            values = (
                "●" if is_active else "",
                m.version,
                m.method,
                str(m.bits),
                created,
                test_map,
                queries,
                status,
                m.note,
            )
            for col, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, m.version)
                self.table.setItem(row, col, item)
        if selected is not None:
            self.select_version(selected)
        self.status.setText(
            {
                "evaluating": f"Evaluating every model on the test split… "
                f"{len(self.assessed)} of {len(models)} done",
                "done": "Test mAP: every model evaluated now on the library's test split.",
                "stopped": "Evaluation stopped: the models not evaluated show no figures.",
                "failed": "The evaluation failed.",
            }[self.state]
        )
        self.stop_button.setVisible(self.state == "evaluating")
        self._update_buttons()

    def selected_version(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def select_version(self, version: str) -> None:
        for row in range(self.table.rowCount()):
            if self.table.item(row, 1).text() == version:
                self.table.selectRow(row)

    # --- make active, in a worker -------------------------------------------------------
    def activate_selected(self) -> Any:
        version = self.selected_version()
        if version is None or self.activating is not None:
            return None
        from fabricsearch.services.versions import activate

        had_codes = self.assessed.get(version) is not None
        self.activating = version

        def done(_encoded: Any) -> None:
            self.activating = None
            self.refresh()
            self.activeChanged.emit(version)
            if not had_codes and self.state != "evaluating":
                self.evaluate()  # activation encoded its images: its figures exist now

        def failed(message: str) -> None:
            self.activating = None
            self.refresh()
            QMessageBox.warning(self, "Model versions", f"Cannot switch to {version}: {message}")

        # Images imported since this model was made get their codes first.
        worker = self.runner.start(
            partial(activate, self.library, version),
            name="activate",
            slot="activate",
            on_finished=done,
            on_failed=failed,
            on_cancelled=lambda: (setattr(self, "activating", None), self.refresh()),
        )
        self.refresh()
        return worker

    def _update_buttons(self) -> None:
        version = self.selected_version()
        active = None if self.library.closed else self.library.active_model()
        self.activate_button.setEnabled(
            self.activating is None
            and version is not None
            and (active is None or active.version != version)
        )

    def reject(self) -> None:
        # Closing the dialog stops its evaluation; a switch already asked for goes on.
        self.stop_evaluating()
        super().reject()
