"""One generic worker: runs ``fn(progress=..., cancel=...)`` in a QThread.

The function is plain core code (import, training, search, evaluation); the worker only
bridges it to Qt: progress reports become a throttled ``progress`` signal (regular reports at
most `MAX_RATE_HZ` per second; the last report and every change of stage or of the kind of
report, such as a validation result between training steps, are always delivered), and the
outcome becomes
exactly one of ``finished(result)``, ``failed(message)`` or ``cancelled()``, followed by
``ended()``. Every running worker is tracked so that the window (and each test) can cancel
and wait for all of them with `stop_all_workers` (and, before the process ends,
`shut_down_workers`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal

from fabricsearch.errors import message_for
from fabricsearch.jobs import Cancelled, CancelToken, Progress

log = logging.getLogger(__name__)

MAX_RATE_HZ = 20.0

_ACTIVE: set[Worker] = set()


class _Thread(QThread):
    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self._worker = worker

    def run(self) -> None:
        self._worker._run()


class Worker(QObject):
    """Run `fn(progress=..., cancel=...)` off the GUI thread.

    ``fn`` must accept the keyword arguments ``progress`` and ``cancel``; bind any other
    arguments with a lambda or functools.partial."""

    progress = Signal(object)  # jobs.Progress
    finished = Signal(object)  # the function's return value
    failed = Signal(str)  # a user error's message, or "an internal error …" (traceback logged)
    cancelled = Signal()
    ended = Signal()  # after whichever of the three above

    def __init__(
        self,
        fn: Callable[..., Any],
        name: str = "work",
        parent: QObject | None = None,
        max_rate_hz: float = MAX_RATE_HZ,
        delete_when_done: bool = False,
    ) -> None:
        super().__init__(parent)
        self.fn = fn
        # The Qt object is deleted once its thread has ended (`JobRunner`'s workers: each
        # was kept by its parent for the window's life, with its result). The Python object,
        # its state and result stay readable for as long as someone holds it.
        self._delete_when_done = delete_when_done
        self.name = name
        self.token = CancelToken()
        self.result: Any = None
        self.error: str | None = None
        self.last_progress: Progress | None = None
        self._interval = 1.0 / max_rate_hz
        self._last_emit = 0.0
        self._pending: Progress | None = None
        self._lock = threading.Lock()
        self._thread: _Thread | None = None
        self._state = "new"  # new | running | finished | failed | cancelled

    # --- control ------------------------------------------------------------------------
    def start(self) -> Worker:
        if self._thread is not None:
            raise RuntimeError("a worker runs once")
        self._thread = _Thread(self)
        self._thread.setObjectName(f"worker-{self.name}")
        self._thread.finished.connect(self._on_thread_finished)
        _ACTIVE.add(self)
        self._state = "running"
        self._thread.start()
        return self

    def cancel(self) -> None:
        """Ask the function to stop at its next safe point (it raises `Cancelled`)."""
        self.token.cancel()

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread ends; True if it did within the timeout."""
        if self._thread is None:
            return True
        return self._thread.wait(timeout_ms)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    @property
    def state(self) -> str:
        return self._state

    # --- in the worker thread -----------------------------------------------------------
    def _report(self, p: Progress) -> None:
        now = time.monotonic()
        with self._lock:
            previous, self.last_progress = self.last_progress, p
            # A report of a different kind (new stage, other info keys: e.g. a validation
            # result between training steps) is a milestone: never replaced by a later one.
            milestone = previous is None or (p.stage, set(p.info)) != (
                previous.stage,
                set(previous.info),
            )
            if not milestone and now - self._last_emit < self._interval:
                self._pending = p
                return
            pending, self._pending = self._pending, None
            self._last_emit = now
        if pending is not None and milestone:
            self.progress.emit(pending)
        self.progress.emit(p)

    def _flush_progress(self) -> None:
        with self._lock:
            p, self._pending = self._pending, None
        if p is not None:
            self.progress.emit(p)

    def _run(self) -> None:
        try:
            result = self.fn(progress=self._report, cancel=self.token)
        except Cancelled:
            self._flush_progress()
            self._state = "cancelled"
            log.info("%s cancelled", self.name)
            self.cancelled.emit()
        except Exception as exc:  # noqa: BLE001 - the boundary: a user error's message, or a bug
            # A user error (`fabricsearch.errors.UserError`, an OSError) is shown as it is; a
            # bug is "an internal error …; details in the log", its traceback logged.
            self._flush_progress()
            self.error = message_for(exc, log, self.name)
            self._state = "failed"
            self.failed.emit(self.error)
        else:
            self._flush_progress()
            self.result = result
            self._state = "finished"
            self.finished.emit(result)
        self.ended.emit()

    def _on_thread_finished(self) -> None:
        _ACTIVE.discard(self)
        if self._thread is not None:
            self._thread._worker = None  # type: ignore[assignment] # no cycle once it ended
        if self._delete_when_done:
            # Last of the worker's queued events: every receiver of ``ended`` has run.
            self.deleteLater()


def active_workers() -> list[Worker]:
    return [w for w in _ACTIVE if w.running]


def stop_all_workers(timeout_ms: int = 30_000) -> bool:
    """Cancel every running worker and wait for it; True if all stopped in time."""
    workers = list(_ACTIVE)
    for w in workers:
        w.cancel()
    ok = True
    for w in workers:
        ok = w.wait(timeout_ms) and ok
        _ACTIVE.discard(w)
    return ok


def shut_down_workers(timeout_ms: int = 30_000, rounds: int = 10) -> bool:
    """Before the process ends (or a test's window is let go): stop every worker, deliver
    the outcomes they left queued, and stop the workers those callbacks started in turn (an
    import's end reloads the grid in another worker), until none runs; the global thread
    pool's tasks are waited for too. `stop_all_workers` alone left such a second worker
    running, and Python code in a thread during the interpreter's finalisation, or a queued
    outcome holding Python objects when Qt tears down, can crash the process at exit. True
    if everything stopped in time."""
    from PySide6.QtCore import QCoreApplication, QEvent, QThreadPool

    ok = True
    for _ in range(rounds):
        ok = stop_all_workers(timeout_ms) and ok
        ok = QThreadPool.globalInstance().waitForDone(timeout_ms) and ok
        if QCoreApplication.instance() is None:
            break
        QCoreApplication.sendPostedEvents()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        if not _ACTIVE:
            break
    else:
        ok = False
    return ok
