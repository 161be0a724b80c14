"""Reading a file a user named, when it may be anything: a photo, a labels CSV, a model file.

A FIFO would block a plain ``open`` forever and a device such as ``/dev/zero`` never ends, so
`open_regular_file` refuses anything but a regular file before opening it (``stat``, which
follows symbolic links), opens it non-blocking (so a FIFO swapped in after the check cannot
hang either) and checks the open descriptor again (so such a swap is refused too).
`read_regular_file` reads one, bounded. Callers word the errors their own way: an `OSError`
passes unchanged; `NotRegularFileError` and `FileTooLargeError` carry what they need."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO

from fabricsearch.errors import UserError

_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class NotRegularFileError(UserError):
    """The path is a folder or a special file (``kind``: "a folder", "a named pipe", …)."""

    def __init__(self, path: str | os.PathLike[str], mode: int) -> None:
        self.path = Path(path)
        self.mode = mode
        self.is_dir = stat.S_ISDIR(mode)
        self.kind = file_kind(mode)
        super().__init__(f"{self.path} is not a regular file ({self.kind}); not read")


class FileTooLargeError(UserError):
    """The file holds more than ``limit`` bytes (``size``: its size, or what was read)."""

    def __init__(self, path: str | os.PathLike[str], size: int, limit: int) -> None:
        self.path = Path(path)
        self.size = size
        self.limit = limit
        super().__init__(
            f"{self.path} is too large: {size / 2**20:.0f} MiB (limit {limit / 2**20:.0f} MiB)"
        )


def file_kind(mode: int) -> str:
    """What a file of ``mode`` is, in words: "a folder", "a named pipe", "a character device"…"""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISREG(mode):
        return "a regular file"
    return "a special file"


def open_regular_file(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for binary reading if it is a regular file (also behind a symbolic
    link); `NotRegularFileError` for anything else, which is never opened for long; an
    `OSError` (missing, permission denied, a link loop…) as it comes."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFileError(path, mode)
    fd = os.open(path, _FLAGS)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):  # swapped for a FIFO or a folder since the check
            raise NotRegularFileError(path, mode)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular_file(path: str | os.PathLike[str], max_bytes: int) -> bytes:
    """The bytes of the regular file ``path``, refused (`FileTooLargeError`) when it holds
    more than ``max_bytes``, also when it grows while being read (never more than
    ``max_bytes + 1`` are read). Errors as `open_regular_file`."""
    with open_regular_file(path) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > max_bytes:
            raise FileTooLargeError(path, size, max_bytes)
        data = fh.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise FileTooLargeError(path, len(data), max_bytes)
    return data
