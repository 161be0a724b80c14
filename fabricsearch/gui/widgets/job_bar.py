"""A job running in the background, shown in the status bar: what it is doing in plain words,
one bar for the whole job, one time left, and Cancel (issue 24 item 8).

The window stays usable meanwhile (no dialog). The bar follows a `Worker` through a
`stages.OverallProgress`, so it never restarts at a new stage; between reports a one-second
timer keeps the time left counting down. It hides itself when the job ends.
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
        self.bar.setFormat("%p%")
        self.bar.setMaximumWidth(180)
        self.bar.setMaximumHeight(16)
        self.left_label = QLabel()
        self.cancel_button = QToolButton()
        self.cancel_button.setText("Cancel")
        self.cancel_button.setAutoRaise(True)
        self.cancel_button.clicked.connect(self.cancel)
        # The status bar must not make the window wider (issue 24 item 4): each label may be
        # squeezed below its text, the full text is in the tooltip.
        self.title.setMaximumWidth(140)
        for label in (self.title, self.stage_label, self.left_label):
            label.setMinimumWidth(40)
        self.bar.setMinimumWidth(60)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.title, self.stage_label, self.bar, self.left_label, self.cancel_button):
            layout.addWidget(w, 0, Qt.AlignmentFlag.AlignVCenter)
        self._tick = QTimer(self)
        self._tick.setInterval(1000)
        self._tick.timeout.connect(self._show_time_left)
        self.setVisible(False)

    def follow(self, worker: Worker, title: str, plan: StagePlan, details: str = "") -> None:
        """Show ``worker``'s job until it ends (a job followed before is let go): a short
        ``title`` ("Import"), ``details`` (what it works on) in the tooltip."""
        if self.worker is not None:
            self._disconnect(self.worker)
        self.worker = worker
        self.overall = OverallProgress(plan)
        self.title.setText(f"<b>{title}</b>")
        self.setToolTip(details or title)
        self.stage_label.setText(plan.stages[0].label if plan.stages else "Starting…")
        self.bar.setValue(0)
        self.left_label.setText(time_left_text(None))
        self.cancel_button.setEnabled(True)
        worker.progress.connect(self.on_progress)
        worker.ended.connect(self._on_ended)
        self._tick.start()
        self.setVisible(True)

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
        self.left_label.setText(time_left_text(o.seconds_left))
        self.changed.emit(o)

    def _show_time_left(self) -> None:
        if self.overall is not None:
            self.left_label.setText(time_left_text(self.overall.current().seconds_left))

    def cancel(self) -> None:
        if self.worker is None:
            return
        self.stage_label.setText("Cancelling…")
        self.cancel_button.setEnabled(False)
        self.worker.cancel()

    def _on_ended(self) -> None:
        worker = self.sender()
        if worker is not None and worker is not self.worker:
            return
        if self.worker is not None:
            self._disconnect(self.worker)
        self.worker = None
        self._tick.stop()
        self.setVisible(False)

    def _disconnect(self, worker: Worker) -> None:
        for signal, slot in ((worker.progress, self.on_progress), (worker.ended, self._on_ended)):
            with contextlib.suppress(RuntimeError, TypeError):  # already disconnected
                signal.disconnect(slot)
