"""`safeio`: the one way a user-named file is read (photos, CSVs, model files)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fabricsearch.errors import UserError
from fabricsearch.safeio import (
    FileTooLargeError,
    NotRegularFileError,
    open_regular_file,
    read_regular_file,
)


def test_reads_a_regular_file_also_behind_a_link(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    link = tmp_path / "link"
    link.symlink_to(f)
    assert read_regular_file(f, 3) == read_regular_file(link, 3) == b"abc"
    with open_regular_file(link) as fh:
        assert fh.read() == b"abc"


def test_refuses_folders_pipes_devices_and_large_files(tmp_path: Path) -> None:
    with pytest.raises(NotRegularFileError) as exc:
        read_regular_file(tmp_path, 10)
    assert (exc.value.is_dir, exc.value.kind) == (True, "a folder")
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "p"
        os.mkfifo(fifo)  # no writer: a plain open would wait forever
        with pytest.raises(NotRegularFileError, match="a named pipe"):
            read_regular_file(fifo, 10)
    if Path("/dev/zero").exists():
        with pytest.raises(NotRegularFileError, match="a character device"):
            open_regular_file("/dev/zero")
    big = tmp_path / "big"
    big.write_bytes(b"x" * 11)
    with pytest.raises(FileTooLargeError) as too:
        read_regular_file(big, 10)
    assert (too.value.size, too.value.limit) == (11, 10)
    assert isinstance(too.value, UserError)
    with pytest.raises(FileNotFoundError):
        read_regular_file(tmp_path / "missing", 10)
