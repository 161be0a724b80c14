"""A full disk (issue 17 item 11): no temporary file is left behind by a failed atomic write,
and the error says "disk full: free space on … and retry" instead of "disk I/O error"."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import numpy as np
import pytest

from fabricsearch import atomicio
from fabricsearch.catalogue import DiskFullError, Library
from fabricsearch.catalogue import library as libmod
from fabricsearch.cli import main as cli_main

ENOSPC = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _half_then_full(real):  # type: ignore[no-untyped-def]
    """A writer that puts some bytes into its target, then finds the disk full."""

    def write(*args, **kwargs):  # type: ignore[no-untyped-def]
        target = next(a for a in args if isinstance(a, (str, Path)))
        Path(target).write_bytes(b"x" * 4096)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))

    return write


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".tmp"))


def test_save_partial_removes_its_temp_file(tmp_path: Path, monkeypatch) -> None:
    import torch

    from fabricsearch.hashing import checkpoint as ckpt

    monkeypatch.setattr(torch, "save", _half_then_full(torch.save))
    target = tmp_path / "train-dvsh-32.partial.pt"
    with pytest.raises(atomicio.DiskFullError, match="disk full: free space on .* and retry"):
        ckpt.save_partial(target, {"epoch": 3})
    assert _leftovers(tmp_path) == []
    assert not target.exists()


def test_writer_error_without_errno_counts_as_full_when_no_space_is_left(
    tmp_path: Path, monkeypatch
) -> None:
    import torch

    from fabricsearch.hashing import checkpoint as ckpt

    def torch_like(state, path):  # type: ignore[no-untyped-def]
        Path(path).write_bytes(b"x" * 100)
        raise RuntimeError("PytorchStreamWriter failed writing file data/0: file write failed")

    monkeypatch.setattr(torch, "save", torch_like)
    monkeypatch.setattr(atomicio, "free_bytes", lambda path: 0)
    with pytest.raises(atomicio.DiskFullError):
        ckpt.save_partial(tmp_path / "p.partial.pt", {"epoch": 1})
    assert _leftovers(tmp_path) == []
    # With space left the same error is not called "disk full" (it is some other failure).
    monkeypatch.setattr(atomicio, "free_bytes", lambda path: 10 << 30)
    with pytest.raises(RuntimeError, match="PytorchStreamWriter"):
        ckpt.save_partial(tmp_path / "p.partial.pt", {"epoch": 1})
    assert _leftovers(tmp_path) == []


def test_save_checkpoint_removes_its_temp_file(tmp_path: Path, monkeypatch) -> None:
    import safetensors.torch
    from hashing_helpers import tiny_options

    from fabricsearch.hashing import checkpoint as ckpt
    from fabricsearch.hashing.registry import create_method

    m = create_method("dvsh", bits=32, input_size=32, **tiny_options("dvsh"))
    monkeypatch.setattr(safetensors.torch, "save_file", _half_then_full(None))
    with pytest.raises(atomicio.DiskFullError):
        ckpt.save_checkpoint(tmp_path / "m.safetensors", m, ckpt.build_metadata(m))
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_thumbnail_and_index_writes_clean_up(tmp_path: Path, monkeypatch) -> None:
    from fabricsearch import index as index_mod

    with Library.create(tmp_path / "lib") as lib:
        real = Path.write_bytes

        def full_write_bytes(self: Path, data: bytes) -> int:
            real(self, data[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

        monkeypatch.setattr(Path, "write_bytes", full_write_bytes)
        with pytest.raises(atomicio.DiskFullError):
            lib.write_thumbnail("ab" * 32, 256, b"\xff\xd8" + b"\0" * 1000)
        monkeypatch.setattr(Path, "write_bytes", real)
        assert _leftovers(lib.folder) == []
        assert not lib.thumb_path("ab" * 32, 256).exists()

        idx = index_mod.HammingIndex(32)
        idx.add(np.arange(4), np.zeros((4, 4), np.uint8))

        def no_room(fd: int) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        monkeypatch.setattr(index_mod.os, "fsync", no_room)
        with pytest.raises(atomicio.DiskFullError):
            idx.save(lib.indexes_dir / "v1.idx")
        assert _leftovers(lib.folder) == []
        assert not (lib.indexes_dir / "v1.idx").exists()


def test_feature_store_gives_space_back(tmp_path: Path, monkeypatch) -> None:
    from fabricsearch import featurestore

    store = featurestore.FeatureStore(tmp_path / "f", dim=8)
    shas = [f"{i:064x}" for i in range(3)]
    store.add(shas[:2], np.ones((2, 1, 8), np.float32))
    sizes = {p.name: p.stat().st_size for p in (tmp_path / "f").iterdir()}

    def no_room(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(featurestore.os, "fsync", no_room)
    with pytest.raises(atomicio.DiskFullError):
        store.add(shas[2:], np.ones((1, 1, 8), np.float32))
    monkeypatch.undo()
    assert {p.name: p.stat().st_size for p in (tmp_path / "f").iterdir()} == sizes
    assert len(featurestore.FeatureStore(tmp_path / "f", dim=8)) == 2


def _full_catalogues(monkeypatch, pages: int) -> None:
    """Every catalogue opened from now on may not grow beyond ``pages`` pages: SQLite then
    fails writes with "database or disk is full", as on a full disk."""
    real = libmod._connect

    def connect(db_path: Path, read_only: bool = False):  # type: ignore[no-untyped-def]
        conn = real(db_path, read_only)
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn

    monkeypatch.setattr(libmod, "_connect", connect)


def _fill(lib: Library) -> list[int]:
    ids = []
    for i in range(2000):
        with lib.atomic():
            ids.append(lib.add_image(f"/p/{i}.png", f"{i:064x}", 1, 1.0, 8, 8, np.zeros((10, 4))))
    return ids


def test_sqlite_full_is_a_disk_full_error(tmp_path: Path, monkeypatch) -> None:
    Library.create(tmp_path / "lib").close()
    pages = (tmp_path / "lib" / "catalogue.sqlite").stat().st_size // 4096 + 3
    _full_catalogues(monkeypatch, pages)
    with Library.open(tmp_path / "lib") as lib:
        with pytest.raises(DiskFullError, match="disk full: free space on .* and retry"):
            _fill(lib)
        assert lib.integrity_check() == "ok"


def test_cli_says_disk_full_in_one_line(
    tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lib_dir = tmp_path / "lib"
    with Library.create(lib_dir) as lib:
        with lib.atomic():
            for i in range(300):
                lib.add_image(
                    str(tmp_path / f"{i}.png"), f"{i:064x}", 1, 1.0, 8, 8, np.zeros((10, 4))
                )
        lib.set_labels([1], coarse="solid")
    capsys.readouterr()
    # An OSError(ENOSPC) from a plain write (labels export).
    real_open = open

    def full_open(path, mode="r", *args, **kwargs):  # type: ignore[no-untyped-def]
        if "w" in mode and str(path).endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr("builtins.open", full_open)
    assert cli_main(["labels", "export", str(lib_dir), str(tmp_path / "out.csv")]) == 1
    monkeypatch.undo()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("fabricsearch: error: disk full: free space on the disk holding /")
    assert err[0].endswith(" and retry")
    assert _leftovers(tmp_path) == []
    # SQLite's "database or disk is full" (labels import).
    # 300 new fine categories grow the stored taxonomy by several pages; the catalogue may not.
    _full_catalogues(monkeypatch, (lib_dir / "catalogue.sqlite").stat().st_size // 4096)
    csv = tmp_path / "labels.csv"
    rows = "".join(f"{i}.png,,weave-{i:03d}-{'x' * 60},\n" for i in range(300))
    csv.write_text("path,coarse,fine,tightness\n" + rows)
    assert cli_main(["labels", "import", str(lib_dir), str(csv), "--add-categories"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"fabricsearch: error: {atomicio.disk_full_message(lib_dir / 'catalogue.sqlite')}"
    ]


def test_open_sweeps_stale_temp_files(tmp_path: Path) -> None:
    Library.create(tmp_path / "lib").close()
    models = tmp_path / "lib" / "models"
    stale = models / "train-dvsh-64.partial.pt.tmp"
    fresh = models / ".m.safetensors.123.456.tmp"
    stale.write_bytes(b"x" * 1000)
    fresh.write_bytes(b"y")
    old = time.time() - 2 * 3600
    os.utime(stale, (old, old))
    Library.open(tmp_path / "lib").close()
    assert not stale.exists()
    assert fresh.exists()  # may belong to a writer running now
