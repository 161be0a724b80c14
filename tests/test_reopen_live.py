"""Re-opening a library this process already holds open never touches the catalogue file
through a second descriptor (issue 20 item 1): POSIX drops every lock a process holds on a
file when any descriptor of it is closed, and the next process to open the catalogue would
then delete the WAL and shared-memory files under the open connection."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fabricsearch import livefiles
from fabricsearch.catalogue import Library
from fabricsearch.catalogue.library import DB_NAME
from fabricsearch.imaging import ImageError, read_bytes


def _palette() -> np.ndarray:
    p = np.zeros((10, 4), np.float32)
    p[0] = (10.0, 100.0, 200.0, 1.0)
    return p


def _make(folder: Path, n: int = 60) -> list[int]:
    with Library.create(folder) as lib, lib.atomic():
        return [
            lib.add_image(
                f"/photos/img{i}.png",
                hashlib.sha256(f"i{i}".encode()).hexdigest(),
                100,
                1.0,
                64,
                48,
                _palette(),
            )
            for i in range(n)
        ]


EXTERNAL = textwrap.dedent(
    """
    import sys
    from fabricsearch.catalogue import Library
    with Library.open(sys.argv[1]) as lib:
        ids = lib.image_ids()
        lib.set_labels(ids[int(sys.argv[2]) :: 3], coarse="plaid")
    """
)


def _external_write(folder: Path, offset: int) -> None:
    """Another process (a terminal's `labels import`) writes and closes: the last closer of
    a WAL catalogue checkpoints and deletes -wal/-shm when it can lock the file alone."""
    subprocess.run([sys.executable, "-c", EXTERNAL, str(folder), str(offset)], check=True)


def test_reopen_the_open_library_then_an_external_write_keeps_it_sound(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    ids = _make(folder)
    lib = Library.open(folder)
    try:
        lib.set_labels(ids[:10], coarse="solid")
        # The window's Open recent ▸ first entry: a new Library on the same folder before
        # the old one closes.
        again = Library.open(folder)
        lib.close()
        lib = again
        lib.set_labels(ids[10:20], coarse="solid")
        _external_write(folder, 1)
        for k in range(5):
            lib.set_labels(ids[20 + k * 5 : 25 + k * 5], coarse="solid", tightness=30.0 + k)
        _external_write(folder, 2)
        lib.set_labels(ids[50:55], coarse="solid")
        assert lib.integrity_check() == "ok"
    finally:
        lib.close()
    with Library.open(folder) as fresh:
        assert fresh.integrity_check() == "ok"
        coarse = {r.id: r.coarse for r in fresh.images()}
    # The terminal's labels survive (those not relabelled afterwards by the window).
    assert all(coarse[i] == "plaid" for i in ids[56::3]), "external labels were lost"
    assert all(coarse[i] == "solid" for i in ids[50:55])


def test_two_open_libraries_on_one_catalogue_survive_external_writers(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    ids = _make(folder)
    first = Library.open(folder)
    second = Library.open(folder)
    try:
        second.close()
        _external_write(folder, 0)
        first.set_labels(ids[1:30:3], coarse="solid")
        _external_write(folder, 2)
        first.set_labels(ids[4:40:3], coarse="solid")
        assert first.integrity_check() == "ok"
    finally:
        first.close()
    with Library.open(folder) as fresh:
        assert fresh.integrity_check() == "ok"
        coarse = {r.id: r.coarse for r in fresh.images()}
    assert all(coarse[i] == "plaid" for i in ids[41::3])


def test_an_open_catalogue_is_never_read_as_a_photo(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    _make(folder, 3)
    link = tmp_path / "catalogue.jpg"
    link.symlink_to(folder / DB_NAME)
    read_bytes(link)  # not open in this process: readable (and not an image)
    with Library.open(folder):
        assert livefiles.is_held(folder / DB_NAME)
        assert livefiles.is_held(folder / (DB_NAME + "-wal"))
        for p in (folder / DB_NAME, link):
            with pytest.raises(ImageError, match="catalogue"):
                read_bytes(p)
    assert not livefiles.is_held(folder / DB_NAME)
