"""The progress of a job that holds one of the library's locks (``Library.exclusive``), kept
in the catalogue (``job_progress``, migration 4) so that a team library's other clients see
it: "Training by ann@desk3 (pid 4711): 45 %" in their windows, ``training`` in
``fabricsearch info --json``.

`recording` wraps a job's progress callback: the first report and then at most one every
`INTERVAL_S` seconds are written (one small upsert), and the row is deleted when the job
ends, also when it fails or is cancelled (a client killed outright leaves a row behind: its
lock is gone then, so `read` reports the row only while the lock is held).

Only a team library records: a library folder's windows notice changes by the catalogue
file's size and mtime (`Library.change_token`), so a row written every second would make
every open window reload its records every poll; its lock file names the holder instead.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fabricsearch.catalogue.library import Library

#: The most often a job's progress is written (seconds between writes).
INTERVAL_S = 1.0


def write(
    lib: Library, name: str, stage: str, done: int, total: int | None, who: str, started: float
) -> None:
    lib._execute(
        "INSERT INTO job_progress (name, stage, done, total, who, started, updated)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET stage = excluded.stage,"
        " done = excluded.done, total = excluded.total, who = excluded.who,"
        " started = excluded.started, updated = excluded.updated",
        (name, stage, int(done), None if total is None else int(total), who, started, time.time()),
    )


def clear(lib: Library, name: str) -> None:
    lib._execute("DELETE FROM job_progress WHERE name = ?", (name,))


def read(lib: Library, name: str) -> dict[str, Any] | None:
    """The job ``name``'s last recorded progress while its lock is held, else None:
    ``{"stage", "done", "total", "percent", "who", "started", "updated"}``."""
    if lib.team is None:
        return None
    rows = lib._query(
        "SELECT stage, done, total, who, started, updated FROM job_progress WHERE name = ?",
        (name,),
    )
    if not rows or not _lock_held(lib, name):
        return None
    stage, done, total, who, started, updated = rows[0]
    percent = None
    if total:
        percent = max(0, min(100, round(100 * int(done) / int(total))))
    return {
        "stage": stage,
        "done": int(done),
        "total": None if total is None else int(total),
        "percent": percent,
        "who": who,
        "started": float(started),
        "updated": float(updated),
    }


def _lock_held(lib: Library, name: str) -> bool:
    """Whether some session holds the team library's advisory lock ``name`` (a row left by a
    client killed mid-job is then stale)."""
    from fabricsearch.catalogue import team

    assert lib.team is not None
    key = team.lock_key(lib.team.uuid, name)
    rows = lib._query(
        "SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND objsubid = 1 AND ((classid::bigint << 32) | objid::bigint) = ?",
        (key,),
    )
    return bool(rows and rows[0][0])


@contextmanager
def recording(
    lib: Library,
    name: str,
    progress: Callable[[Any], None] | None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[Callable[[Any], None] | None]:
    """A progress callback (`jobs.Progress` reports) that passes every report on to
    ``progress`` and records one in the catalogue at most every `INTERVAL_S`; the record is
    deleted at the end, however the job ends. A library folder: ``progress`` unchanged."""
    if lib.team is None or lib.read_only:
        yield progress
        return
    from fabricsearch.catalogue import team

    who, started = team.holder(), time.time()
    last: list[float] = []

    def record(p: Any) -> None:
        now = clock()
        if not last or now - last[0] >= INTERVAL_S:
            last[:] = [now]
            # Best effort: a report that cannot be written must not stop the job.
            with contextlib.suppress(Exception):
                write(lib, name, p.stage, p.done, p.total, who, started)
        if progress is not None:
            progress(p)

    try:
        with contextlib.suppress(Exception):
            write(lib, name, "start", 0, None, who, started)
        last.append(clock())
        yield record
    finally:
        with contextlib.suppress(Exception):
            clear(lib, name)
