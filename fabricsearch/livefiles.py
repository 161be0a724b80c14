"""The SQLite files this process holds open, so nothing else in the process touches them.

POSIX advisory locks belong to a process and a file, not to a descriptor: closing *any*
descriptor of a file drops every lock the process holds on it ("How To Corrupt An SQLite
Database File", §2.2). A plain ``open()``/``close()`` of a live catalogue (a header check, a
photo read that happens to be the catalogue) silently unlocks the connection's file; the
next process to close the catalogue then believes it is the last user and deletes the WAL and
shared-memory files under the open connection. SQLite's own connections are safe among
themselves (it defers closing descriptors of a locked file); only outside descriptors are not.

`hold` registers a catalogue while a connection is open, `is_held` tells whether a path is
one of those files (or its ``-wal``/``-shm``/``-journal``), by device and inode, so links and
other spellings of the path are caught. `guard` serialises a check-then-connect with every
other registration. Leaf module: no project imports.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

#: Files SQLite keeps beside a catalogue.
SIDE_SUFFIXES = ("-wal", "-shm", "-journal")

_lock = threading.RLock()
_held: Counter[tuple[int, int]] = Counter()


def _key(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    try:
        st = os.stat(path)  # follows links: the file itself, whatever names it
    except (OSError, ValueError):
        return None
    return (st.st_dev, st.st_ino)


@contextmanager
def guard() -> Iterator[None]:
    """Hold the registry: a check of a catalogue file and the connection that follows are
    one step for every other thread of this process."""
    with _lock:
        yield


def hold(db_path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """Register ``db_path`` as open through SQLite; returns the token for `release`."""
    key = _key(db_path)
    if key is not None:
        with _lock:
            _held[key] += 1
    return key


def release(token: tuple[int, int] | None) -> None:
    if token is None:
        return
    with _lock:
        _held[token] -= 1
        if _held[token] <= 0:
            del _held[token]


def is_held(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` is (or links to) a catalogue this process holds open, or one of the
    files SQLite keeps beside it."""
    with _lock:
        if not _held:
            return False
        key = _key(path)
        if key is not None and key in _held:
            return True
        real = os.path.realpath(path)
        for suffix in SIDE_SUFFIXES:
            if real.endswith(suffix):
                main = _key(real[: -len(suffix)])
                if main is not None and main in _held:
                    return True
        return False


__all__ = ["guard", "hold", "is_held", "release"]
