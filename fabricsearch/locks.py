"""Cross-process locks on lock files, the same on Linux, macOS and Windows.

The primitive is filelock's `lock_descriptor` (``flock`` on POSIX; ``LockFileEx`` on the first
byte on Windows), so a lock is held by an open file and a holder that dies releases it (the OS
closes its files). Every cross-process lock of fabricsearch goes through `hold`: a library's
job locks (``exclusive``), the feature cache's writer lock and `library copy`'s lock.

The holder writes who it is (``pid N since …``) into the lock file after one newline byte: on
Windows others cannot read the locked first byte, but can read the rest; `LockBusy` carries it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from filelock import lock_descriptor, unlock_descriptor


class LockBusy(Exception):
    """The lock is held by another process (or another open file of this one)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is locked{f' by {holder}' if holder else ''}")
        self.path = path
        #: What the holder wrote (``pid N since …``); empty when it wrote nothing.
        self.holder = holder


def holder_note() -> str:
    return f"pid {os.getpid()} since {time.ctime()}"


@contextlib.contextmanager
def hold(
    path: str | os.PathLike[str],
    *,
    wait: bool = False,
    poll_s: float = 0.2,
    on_wait: Callable[[], None] | None = None,
    note: bool = True,
    remove: bool = False,
) -> Iterator[BinaryIO]:
    """Hold the lock file ``path`` (created if missing) for the ``with`` block.

    Busy: raises `LockBusy` naming the holder, or with ``wait`` polls every ``poll_s`` seconds,
    calling ``on_wait`` between tries (it may raise to stop waiting). ``note``: write
    `holder_note` into the file for others to read. ``remove``: delete the file when done (a
    lock beside the user's folders); a process that opened it before it was removed sees that
    and opens the new one. `OSError` from opening the file (a read-only folder) propagates."""
    path = Path(path)
    f = _acquire(path, wait, poll_s, on_wait, remove)
    try:
        if note:
            f.seek(0)
            f.truncate()
            f.write(b"\n" + holder_note().encode())
            f.flush()
        yield f
    finally:
        _release(f, path if remove else None)


def _acquire(
    path: Path,
    wait: bool,
    poll_s: float,
    on_wait: Callable[[], None] | None,
    removable: bool,
) -> BinaryIO:
    while True:
        f = open(path, "a+b")  # noqa: SIM115 - append: never truncates a holder's note
        try:
            while not lock_descriptor(f.fileno(), blocking=False):
                if not wait:
                    raise LockBusy(path, _read_note(f))
                if on_wait is not None:
                    on_wait()
                time.sleep(poll_s)
        except BaseException:
            f.close()
            raise
        if not removable or _same_file(f, path):
            return f
        _release(f, None)  # removed by its last holder meanwhile: lock the new file


def _release(f: BinaryIO, remove: Path | None) -> None:
    try:
        if remove is not None and sys.platform != "win32":
            # Removed while still held, so whoever opens the name next makes a new file;
            # Windows cannot remove an open file: there it goes after closing, if it can.
            with contextlib.suppress(OSError):
                remove.unlink()
        with contextlib.suppress(OSError):
            unlock_descriptor(f.fileno())
    finally:
        f.close()
    if remove is not None and sys.platform == "win32":
        with contextlib.suppress(OSError):
            remove.unlink()


def _same_file(f: BinaryIO, path: Path) -> bool:
    try:
        return os.path.samestat(os.fstat(f.fileno()), os.stat(path))
    except OSError:
        return False


def _read_note(f: BinaryIO) -> str:
    """What the holder wrote (after the first byte, which Windows keeps locked)."""
    for start in (0, 1):  # Windows refuses to read the locked byte
        try:
            f.seek(start)
            return f.read(4096).decode("utf-8", "replace").strip()
        except OSError:
            continue
    return ""
