"""A heartbeat on the GUI thread: how long the window stopped answering during a block of a test.

Usage, inside a pytest-qt test (the window runs on the GUI thread, the test code too)::

    from gui_heartbeat import MAX_BLOCK_S, heartbeat

    with heartbeat() as beat:
        window.versions_action.trigger()            # the action under test
        qtbot.waitUntil(lambda: dialog.done, timeout=60_000)  # let the event loop run
    assert beat.longest < MAX_BLOCK_S, beat.report()

A `QTimer` fires every `INTERVAL_MS` (50 ms) on the GUI thread and records the time between
its ticks; `longest` is the longest gap seen, the first tick measured from the moment the
block is entered and the last gap closed when it is left. A slot that keeps the GUI thread
busy (a query, an evaluation, an image decode) shows as a gap as long as it ran. Only time
spent inside the event loop (``qtbot.waitUntil``, ``qtbot.waitSignal``, a nested loop) lets the
timer tick, so wait for the outcome inside the block: a call that returns only after
its work is done is measured as one gap, which is what the test wants to catch.

To make a regression visible on a small test library, slow the work down where it runs
(``monkeypatch.setattr`` a function of the job with one that sleeps, e.g. 1.5 s, then calls
the original): on the GUI thread the sleep becomes a gap of 1.5 s, in a worker none.

To see who ran during the longest gap, pass ``threads=True`` (Linux): every tick also reads each
thread's CPU time from ``/proc/self/task``, and `report` names the GUI thread's own CPU time in
that gap and the busiest threads' (a thread that ended within the gap is not counted). A gap
in which the GUI thread used almost no CPU is time it waited (for the interpreter lock, a core,
or a thread it joined); that is how an import's pauses were traced to a worker importing
``torch._dynamo`` (docs/gui.md).

A gap also counts time the operating system did not run the process: on a machine loaded far
beyond its cores (load 8 on 2 cores, while developing) single gaps of 0.5-1 s were seen once in
a few runs, no cause found on the GUI thread; with less load the gaps stayed ~0.06 s.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field

from PySide6.QtCore import QTimer

INTERVAL_MS = 50
#: The longest the GUI thread may be blocked (issue 24: "never blocked > 0.5 s").
MAX_BLOCK_S = 0.5


@dataclass
class Heartbeat:
    """What the timer saw: the longest gap between ticks, and how many ticks there were."""

    longest: float = 0.0
    ticks: int = 0
    gaps: list[float] = field(default_factory=list)
    #: With ``threads``: CPU seconds each thread ("name/tid") used during the longest gap.
    longest_cpu: dict[str, float] = field(default_factory=dict)
    _last: float = 0.0
    _clock: Callable[[], float] = time.monotonic
    _threads: bool = False
    _cpu: dict[str, float] = field(default_factory=dict)

    def _tick(self) -> None:
        now = self._clock()
        gap = now - self._last
        self._last = now
        self.ticks += 1
        self.gaps.append(gap)
        cpu = thread_cpu() if self._threads else {}
        if gap > self.longest and self._threads:
            self.longest_cpu = {
                name: round(t - self._cpu.get(name, 0.0), 3)
                for name, t in cpu.items()
                if t - self._cpu.get(name, 0.0) > 0
            }
        self._cpu = cpu
        self.longest = max(self.longest, gap)

    def report(self) -> str:
        """For an assertion's message: the longest gap and the slowest few (with ``threads``,
        the CPU time of each thread that ran during the longest)."""
        slow = sorted(self.gaps, reverse=True)[:5]
        text = (
            f"GUI thread blocked for {self.longest:.2f} s (ticks {self.ticks}, slowest gaps "
            + ", ".join(f"{g:.2f}" for g in slow)
            + ")"
        )
        if self._threads:
            busiest = sorted(self.longest_cpu.items(), key=lambda kv: -kv[1])[:6]
            text += "; CPU s during it: " + ", ".join(f"{n} {s:.3f}" for n, s in busiest)
        return text


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each thread of this process, by "name/tid" (the GUI
    thread is the one whose tid is the process id); empty where /proc is not there."""
    out: dict[str, float] = {}
    try:
        tids = os.listdir("/proc/self/task")
    except OSError:
        return out
    tick = os.sysconf("SC_CLK_TCK")
    for tid in tids:
        try:
            with open(f"/proc/self/task/{tid}/comm", encoding="utf-8") as f:
                name = f.read().strip()
            with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[f"{name}/{tid}"] = (int(fields[11]) + int(fields[12])) / tick
    return out


@contextmanager
def heartbeat(
    interval_ms: int = INTERVAL_MS,
    clock: Callable[[], float] = time.monotonic,
    threads: bool = False,
) -> Iterator[Heartbeat]:
    """Measure the GUI thread's longest pause while the block runs (see the module's doc);
    with ``clock=time.thread_time`` the gaps are the GUI thread's own CPU time instead; with
    ``threads`` each thread's CPU time in the longest gap is kept (`Heartbeat.longest_cpu`)."""
    beat = Heartbeat(
        _last=clock(), _clock=clock, _threads=threads, _cpu=thread_cpu() if threads else {}
    )
    timer = QTimer()
    timer.setInterval(interval_ms)
    timer.timeout.connect(beat._tick)
    timer.start()
    try:
        yield beat
    finally:
        timer.stop()
        beat._tick()  # the time since the last tick counts too (a block that ends blocked)


def gui_thread_work(interval_ms: int = INTERVAL_MS) -> AbstractContextManager[Heartbeat]:
    """The GUI thread's own work between two ticks, in CPU seconds (a slot that runs 2 s counts
    2 s; a thread waiting for a core while others run counts nothing): on a loaded machine the
    wall-clock `heartbeat` also counts the waits."""
    return heartbeat(interval_ms, clock=time.thread_time)
