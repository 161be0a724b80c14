"""Files written atomically, and a plain message when the disk is full.

Every file that must never be seen half-written (checkpoints, resume state, thumbnails, index
files) is written to a temporary file in the same folder and renamed over the target. If the
write fails (a full disk above all), the temporary file is removed: a stale ``partial.pt.tmp``
of hundreds of megabytes would otherwise keep the disk full, and every later command would
fail with SQLite's "disk I/O error".
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fabricsearch.errors import UserError

#: errno values that mean "no room": a full file system, or a user's quota.
FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


class DiskFullError(UserError, OSError):
    """No space left where fabricsearch writes; the message names the device."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        super().__init__(errno.ENOSPC, disk_full_message(path), None if path is None else str(path))

    def __str__(self) -> str:
        return str(self.strerror)


def is_disk_full(exc: BaseException) -> bool:
    """True for an `OSError` meaning "no space" (ENOSPC, EDQUOT), also when wrapped."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
            return True
        if "No space left on device" in str(exc):  # torch and safetensors re-raise as RuntimeError
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


#: Below this much free space a failed write counts as "disk full" even when the writer's
#: error does not say so (torch.save reports "PytorchStreamWriter failed writing file").
LOW_SPACE_BYTES = 1 << 20


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    try:
        return shutil.disk_usage(mount_point(path)).free
    except OSError:
        return None


def failed_for_space(exc: BaseException, path: str | os.PathLike[str]) -> bool:
    """True when ``exc`` says "no space", or a write into ``path``'s file system failed while it
    has (almost) no free space left."""
    if is_disk_full(exc):
        return True
    if not isinstance(exc, (OSError, RuntimeError)):
        return False
    free = free_bytes(path)
    return free is not None and free < LOW_SPACE_BYTES


def mount_point(path: str | os.PathLike[str]) -> Path:
    """The mount point holding ``path`` (its nearest existing folder's file system)."""
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def disk_full_message(path: str | os.PathLike[str] | None) -> str:
    where = mount_point(path) if path else None
    device = f"the disk holding {where}" if where is not None else "the disk"
    return f"disk full: free space on {device} and retry"


def temp_path(path: Path) -> Path:
    """A temporary name beside ``path``, unique per process and thread."""
    return path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], object], mode: int | None = None
) -> Path:
    """Call ``write(tmp)`` then rename ``tmp`` over ``path``; on any failure remove ``tmp``.

    A full disk becomes `DiskFullError` (an `OSError` with a message naming the device)."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        if not isinstance(exc, DiskFullError) and failed_for_space(exc, path):
            raise DiskFullError(path) from exc
        raise
    return path


def sweep_stale_temps(folder: str | os.PathLike[str], older_than_s: float = 3600.0) -> int:
    """Remove ``*.tmp`` files older than ``older_than_s`` in ``folder`` (not recursive):
    what a killed writer or an older version left behind. Returns how many were removed."""
    now = time.time()
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if not entry.name.endswith(".tmp"):
            continue
        with contextlib.suppress(OSError):
            if entry.is_file(follow_symlinks=False) and now - entry.stat().st_mtime > older_than_s:
                os.unlink(entry.path)
                removed += 1
    return removed


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
