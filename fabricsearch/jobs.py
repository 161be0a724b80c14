"""Long work as plain functions: a progress callback type, a cancel token and `Cancelled`.

Every long operation (import, training, encoding, adaptation) has the signature
``fn(..., progress: ProgressFn | None = None, cancel: CancelToken | None = None)``.
The GUI wraps it in a worker thread that forwards progress as throttled signals;
the CLI wraps it in a tqdm bar. Neither knows how the work is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Cancelled(Exception):
    """Raised inside long work when its cancel token was set.

    One rule for every job: a cancelled job raises, it never returns a partial result as if
    it had finished. Work that keeps what it finished before the cancel (an import commits the
    files it measured) says so: ``partial`` is that result and ``kept`` a sentence for the
    user ("imported 40 of 120 files; run the import again to finish"). A job whose cancel
    changes nothing raises a bare ``Cancelled()`` (``kept`` empty)."""

    def __init__(self, kept: str = "", partial: Any = None) -> None:
        super().__init__(kept or "cancelled")
        self.kept = kept
        self.partial = partial

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes, attributes kept
        return (type(self), (self.kept, self.partial))

    def user_message(self) -> str:
        """What the user is told: what was kept, or that nothing was changed."""
        return f"cancelled; {self.kept}" if self.kept else "cancelled; nothing was changed"


@dataclass(frozen=True)
class Progress:
    """One progress report. `done`/`total` in units of `unit`; `info` carries extras
    (loss terms, samples/s, metrics) for whoever wants to show them."""

    stage: str
    done: int
    total: int | None = None
    unit: str = "items"
    message: str = ""
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


ProgressFn = Callable[[Progress], None]


class CancelToken:
    """Thread-safe cancellation flag checked by long work at safe points."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def report(progress: ProgressFn | None, *args: Any, **kwargs: Any) -> None:
    """Call `progress` with a `Progress` built from the arguments, if there is a callback."""
    if progress is not None:
        progress(Progress(*args, **kwargs))


def check(cancel: CancelToken | None) -> None:
    """Raise `Cancelled` if `cancel` is set; a `None` token never cancels."""
    if cancel is not None:
        cancel.raise_if_cancelled()
