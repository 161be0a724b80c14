"""A progress dialog for any `Worker`: stage, bar, rate, ETA and Cancel."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.gui.workers import Worker
from fabricsearch.jobs import Progress


def format_duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def units(n: float | None, unit: str) -> str:
    """The unit for a count: "1 step", "45 steps" (units already plural stay as they are)."""
    if not unit or n == 1 or unit.endswith("s"):
        return unit
    return unit + ("es" if unit.endswith(("ch", "sh", "x")) else "s")


class RateEstimator:
    """Smoothed items/s and ETA for one stage at a time."""

    def __init__(self) -> None:
        self.stage = ""
        self._start_t = 0.0
        self._start_done = 0
        self.rate: float | None = None

    def update(self, p: Progress, now: float | None = None) -> tuple[float | None, float | None]:
        now = time.monotonic() if now is None else now
        if p.stage != self.stage or p.done < self._start_done:
            self.stage, self._start_t, self._start_done, self.rate = p.stage, now, p.done, None
            return None, None
        dt = now - self._start_t
        if dt > 0.2 and p.done > self._start_done:
            self.rate = (p.done - self._start_done) / dt
        eta = None
        if self.rate and p.total:
            eta = max(0.0, (p.total - p.done) / self.rate)
        return self.rate, eta


class JobProgressDialog(QDialog):
    """Shows a worker's progress; Cancel asks it to stop; closes itself when it ends."""

    def __init__(self, worker: Worker, title: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.worker = worker
        self.setWindowTitle(title)
        self.setModal(True)
        self.setMinimumWidth(420)
        self.stage_label = QLabel("Starting…")
        self.bar = QProgressBar()
        self.bar.setRange(0, 0)
        self.rate_label = QLabel(" ")
        self.message_label = QLabel(" ")
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.buttons.rejected.connect(self.cancel)
        layout = QVBoxLayout(self)
        for w in (self.stage_label, self.bar, self.rate_label, self.message_label):
            layout.addWidget(w)
        layout.addWidget(self.buttons)
        self._rate = RateEstimator()
        worker.progress.connect(self.on_progress)
        worker.ended.connect(self.accept)

    def on_progress(self, p: Progress) -> None:
        self.stage_label.setText(p.stage.capitalize())
        if p.total:
            self.bar.setRange(0, p.total)
            self.bar.setValue(min(p.done, p.total))
        else:
            self.bar.setRange(0, 0)
        rate, eta = self._rate.update(p)
        count = p.total if p.total else p.done
        parts = [
            f"{p.done:,}"
            + (f" of {p.total:,}" if p.total else "")
            + f" {units(count, p.unit)}".rstrip()
        ]
        if rate:
            parts.append(f"{rate:.1f} {p.unit}/s")
        if eta is not None:
            parts.append(f"about {format_duration(eta)} left")
        self.rate_label.setText(" · ".join(parts))
        if p.message:
            self.message_label.setText(p.message)

    def cancel(self) -> None:
        self.stage_label.setText("Cancelling…")
        self.buttons.setEnabled(False)
        self.worker.cancel()

    def reject(self) -> None:  # Esc / window close: cancel, close when the worker has stopped
        if self.worker.running:
            self.cancel()
        else:
            super().reject()
