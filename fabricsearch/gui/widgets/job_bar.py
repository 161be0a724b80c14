"""A job running in the background, shown in the status bar: what it is doing in plain words,
one bar for the whole job with one time left, and Cancel (issue 24 item 8).

The window stays usable meanwhile (no dialog). The bar follows a `Worker` through a
`stages.OverallProgress`, so it never restarts at a new stage; between reports a one-second
timer keeps the time left counting down. It hides itself when the job ends (its owner calls
`job_ended` as it handles the outcome, so nothing it announces finds the bar still up). It is
narrow: the time left is written in the bar, what the job works on is in the tooltip, and the
stage may be squeezed, so the status bar never widens the window (issue 24 item 4).
"""

from __future__ import annotations

import contextlib

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QToolButton, QWidget

from fabricsearch.gui.dialogs.progress_dialog import format_duration
from fabricsearch.gui.workers import Worker
from fabricsearch.jobs import Progress
from fabricsearch.stages import Overall, OverallProgress, StagePlan

#: Steps of the bar (per mille: smooth on a wide bar, still an integer).
STEPS = 1000


def time_left_text(seconds: float | None) -> str:
    if seconds is None:
        return "estimating time left…"
    if seconds < 5:
        return "a few seconds left"
    return f"about {format_duration(seconds)} left"


def stage_text(o: Overall) -> str:
    """ "Reading photos · 120 of 1,200" (the count of the stage, when it has one)."""
    p = o.stage
    if p is None or not p.total or p.unit in ("", "step"):
        return o.label
    return f"{o.label} · {p.done:,} of {p.total:,}"


class JobBar(QWidget):
    """Status-bar view of one background job at a time (module docstring)."""

    changed = Signal(object)  # stages.Overall, after each report

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker: Worker | None = None
        self.overall: OverallProgress | None = None
        self.title = QLabel()
        self.stage_label = QLabel()
        self.bar = QProgressBar()
        self.bar.setRange(0, STEPS)
        self.bar.setMinimumWidth(150)
        self.bar.setMaximumWidth(260)
        self.bar.setMaximumHeight(18)
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.title, self.stage_label, self.bar, self.cancel_button):
            layout.addWidget(w, 0, Qt.AlignmentFlag.AlignVCenter)
        self.left_text = ""
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._show_time_left)
        self.setVisible(False)

    def follow(self, worker: Worker, title: str, plan: StagePlan, details: str = "") -> None:
        """Show ``worker``'s job until it ends (a job followed before is let go): a short
        ``title`` ("Import"), ``details`` (what it works on) in the tooltip."""
        if self.worker is not None:
            self._let_go(self.worker)
        self.worker = worker
        self.overall = OverallProgress(plan)
        self.title.setText(f"<b>{title}</b>")
        self.setToolTip(details or title)
        self.stage_label.setText(plan.stages[0].label if plan.stages else "Starting…")
        # The stage's words always fit; its count ("120 of 1,200") may be squeezed.
        fm = self.stage_label.fontMetrics()
        words = max((fm.horizontalAdvance(s.label) for s in plan.stages), default=60)
        self.stage_label.setMinimumWidth(words + fm.averageCharWidth())
        self.bar.setValue(0)
        self._set_time_left(None)
        self.cancel_button.setEnabled(True)
        worker.progress.connect(self.on_progress)
        worker.ended.connect(self._on_ended)
        self._tick.start()
        self.setVisible(True)
        if worker.state not in ("new", "running"):  # it ended before we listened
            self._on_ended()

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def value(self) -> float:
        """The whole job's share done, 0–1."""
        return self.bar.value() / STEPS

    def on_progress(self, p: Progress) -> None:
        if self.overall is None:
            return
        o = self.overall.update(p)
        self.bar.setValue(max(self.bar.value(), round(o.fraction * STEPS)))
        if self.cancel_button.isEnabled():
            self.stage_label.setText(stage_text(o))
        self._set_time_left(o.seconds_left)
        self.changed.emit(o)

    def _set_time_left(self, seconds: float | None) -> None:
        self.left_text = time_left_text(seconds)
        self.bar.setFormat(f"%p% · {self.left_text}")

    def _show_time_left(self) -> None:
        if self.overall is not None:
            self._set_time_left(self.overall.current().seconds_left)

    def cancel(self) -> None:
        if self.worker is None:
            return
        self.stage_label.setText("Cancelling…")
        self.cancel_button.setEnabled(False)
        self.worker.cancel()

    def job_ended(self) -> None:
        """The job's outcome is in: hide now. Its thread's own ``ended`` (which hides the bar
        too) may come much later on a busy machine, after whatever the outcome's callback
        announced (the import's ``importEnded``), which must find the bar gone."""
        self._on_ended()

    def _on_ended(self) -> None:
        if self.worker is not None:
            self._let_go(self.worker)
        self.worker = None
        self._tick.stop()
        self.setVisible(False)

    def _let_go(self, worker: Worker) -> None:
        for signal, slot in ((worker.progress, self.on_progress), (worker.ended, self._on_ended)):
            with contextlib.suppress(RuntimeError, TypeError):  # disconnected, or deleted
                signal.disconnect(slot)
