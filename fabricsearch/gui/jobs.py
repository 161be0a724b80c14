"""One runner for every long job of the window: a `Worker`, its dialog and its callbacks.

`JobRunner.start(fn, ...)` runs the plain core function ``fn(progress=, cancel=)`` in a worker,
opens the dialog that shows it (a `JobProgressDialog` with a title, a dialog built around the
worker, or none), and connects the callbacks for each outcome. A job may take a *slot*
("search", "train", "import", ...): the window asks `running(slot)` before starting a second
training, a newer search `replace`s an older one, and `cancel()` stops them all when a library
closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QDialog, QWidget

from fabricsearch.gui.workers import Worker

DialogFactory = Callable[[Worker], QDialog]


class JobRunner(QObject):
    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self._slots: dict[str, Worker] = {}
        self.last_dialog: QDialog | None = None  # the latest job's dialog (scripts, tests)

    def start(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        slot: str | None = None,
        replace: bool = False,
        dialog: str | DialogFactory | None = None,
        modal: bool = True,
        on_finished: Callable[[Any], None] | None = None,
        on_failed: Callable[[str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        on_progress: Callable[[Any], None] | None = None,
    ) -> Worker:
        """Start `fn` in a worker. `dialog`: a title for a progress dialog, or a factory
        building one from the worker; `modal` False shows it without blocking the window.
        With `replace`, a job still running in the same slot is cancelled (its outcome
        still arrives; callers that care compare generations)."""
        if slot is not None and replace:
            old = self._slots.get(slot)
            if old is not None and old.running:
                old.cancel()
        worker = Worker(fn, name=name, parent=self, delete_when_done=True)
        # The dialog connects to the worker first, so it has shown the outcome by the time the
        # callbacks (which may announce it to the rest of the window) run.
        box: QDialog | None = None
        if isinstance(dialog, str):
            from fabricsearch.gui.dialogs.progress_dialog import JobProgressDialog

            box = JobProgressDialog(worker, dialog, self._parent)
        elif dialog is not None:
            box = dialog(worker)
        if box is not None:
            self.last_dialog = box
        if on_finished is not None:
            worker.finished.connect(on_finished)
        if on_failed is not None:
            worker.failed.connect(on_failed)
        if on_cancelled is not None:
            worker.cancelled.connect(on_cancelled)
        if on_progress is not None:
            worker.progress.connect(on_progress)
        if slot is not None:
            self._slots[slot] = worker
        worker.start()
        if box is not None:
            if modal:
                box.open()
            else:
                box.show()
        return worker

    def worker(self, slot: str) -> Worker | None:
        return self._slots.get(slot)

    def running(self, slot: str) -> bool:
        w = self._slots.get(slot)
        return w is not None and w.running

    def cancel(self, *slots: str, wait: bool = True) -> None:
        """Cancel the jobs in `slots` (all slots when none is named) and wait for them."""
        workers = [self._slots[s] for s in (slots or tuple(self._slots)) if s in self._slots]
        for w in workers:
            if w.running:
                w.cancel()
        if wait:
            for w in workers:
                w.wait()
