"""Nothing runs when the process ends: `shut_down_workers` also stops the workers that the
queued outcomes of stopped ones start (an import's end reloads the grid in another worker),
which `stop_all_workers` alone left running into the interpreter's finalisation."""

from __future__ import annotations

import threading

import pytest
from test_gui_support import gui_env  # noqa: F401 - fixture

pytestmark = pytest.mark.gui


def test_shut_down_stops_what_the_outcomes_start(qtbot, gui_env) -> None:  # noqa: F811
    from fabricsearch.gui.workers import Worker, active_workers, shut_down_workers

    first_done = threading.Event()
    idle = threading.Event()  # never set: a short wait between looks at the token
    seconds: list[Worker] = []

    def first(progress=None, cancel=None) -> int:
        first_done.set()
        return 1

    def second(progress=None, cancel=None) -> None:
        # Runs until cancelled, as a long load would.
        while not cancel.cancelled:
            idle.wait(0.01)
        cancel.raise_if_cancelled()

    def start_second(_result: object) -> None:
        seconds.append(Worker(second, name="second", delete_when_done=True).start())

    w = Worker(first, name="first", delete_when_done=True)
    w.finished.connect(start_second)
    w.start()
    assert first_done.wait(10)
    assert w.wait(10_000)
    # Its outcome is still queued: nothing has started the second worker yet.
    assert not seconds

    assert shut_down_workers(10_000)
    assert len(seconds) == 1  # the outcome was delivered, and what it started was stopped
    assert seconds[0].state == "cancelled"
    assert not seconds[0].running
    assert not active_workers()
