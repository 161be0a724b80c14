"""Model ▸ Evaluate: mAP, NDCG@50, precision–recall and precision@k of the active model."""

from __future__ import annotations

import math
from typing import Any

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.gui.widgets.plot import LinePlot
from fabricsearch.gui.workers import Worker
from fabricsearch.jobs import CancelToken, ProgressFn, check, report


def evaluate_active_model(
    library: Any, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> Any:
    """EvalResult of the active model's stored codes on the library's test split."""
    from fabricsearch.services.training import evaluate

    report(progress, "evaluate", 0, None, "queries")
    check(cancel)
    result, _info, _plots = evaluate(library, plots=False)
    report(progress, "evaluate", 1, 1, "queries")
    return result


def _fmt(v: Any) -> str:
    return f"{v:.3f}" if isinstance(v, int | float) and math.isfinite(v) else "—"


class EvaluateDialog(QDialog):
    """Runs the evaluation in a worker and shows the numbers and both plots."""

    def __init__(self, worker: Worker, model_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.result: Any = None
        self.setWindowTitle(f"Evaluate · {model_name}")
        self.resize(760, 420)
        self.status = QLabel("Evaluating on the test split…")
        self.map_label = QLabel("—")
        self.ndcg_label = QLabel("—")
        self.counts_label = QLabel("—")
        form = QFormLayout()
        form.addRow("mAP", self.map_label)
        form.addRow("NDCG@50", self.ndcg_label)
        form.addRow("Queries / database", self.counts_label)
        self.pr_plot = LinePlot("Precision–recall (by Hamming radius)", "recall")
        self.pr_plot.x_range = (0.0, 1.0)
        self.pr_plot.y_range = (0.0, 1.0)
        self.pk_plot = LinePlot("Precision@k", "k")
        self.pk_plot.y_range = (0.0, 1.0)
        plots = QHBoxLayout()
        plots.addWidget(self.pr_plot)
        plots.addWidget(self.pk_plot)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.status)
        layout.addLayout(form)
        layout.addLayout(plots, 1)
        layout.addWidget(buttons)
        worker.finished.connect(self.show_result)
        worker.failed.connect(lambda msg: self.status.setText(f"Evaluation failed: {msg}"))
        worker.cancelled.connect(lambda: self.status.setText("Evaluation cancelled."))

    def show_result(self, result: Any) -> None:
        self.result = result
        self.status.setText("Test split: queries against the rest of the library.")
        self.map_label.setText(_fmt(result.mAP))
        self.ndcg_label.setText(_fmt(result.ndcg))
        self.counts_label.setText(f"{result.queries:,} / {result.database:,}")
        self.pr_plot.set_series("precision", result.pr_recall, result.pr_precision, markers=True)
        ks = sorted(result.precision)
        self.pk_plot.set_series("P@k", ks, [result.precision[k] for k in ks], markers=True)

    def reject(self) -> None:
        if self.worker.running:
            self.worker.cancel()
        super().reject()
