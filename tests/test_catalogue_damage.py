"""A damaged catalogue (issue 17 item 10) is refused plainly and never overwritten; a
read-only library (item 15) opens for search and refuses every change."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from fabricsearch.catalogue import (
    DamagedCatalogueError,
    Library,
    LibraryError,
    ReadOnlyLibraryError,
)
from fabricsearch.catalogue.library import DB_NAME
from fabricsearch.catalogue.schema import SCHEMA_VERSION
from fabricsearch.cli import main as cli_main

PAGE = 4096


def _palette(i: int) -> np.ndarray:
    p = np.zeros((10, 4), np.float32)
    p[i % 10] = (10.0, 100.0, 200.0, 1.0)
    return p


def _sha(i: int) -> str:
    return hashlib.sha256(f"image-{i}".encode()).hexdigest()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def real_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A closed library with 400 labelled images (a catalogue of several dozen pages)."""
    folder = tmp_path_factory.mktemp("real") / "lib"
    with Library.create(folder) as lib:
        with lib.atomic():
            ids = [
                lib.add_image(f"/photos/img{i}.png", _sha(i), 100, 1.0, 64, 48, _palette(i))
                for i in range(400)
            ]
        lib.set_labels(ids[::2], coarse="solid", tightness=40.0)
    return folder


def _damaged_copy(real: Path, dest: Path, how: str) -> Path:
    shutil.copytree(real, dest)
    db = dest / DB_NAME
    if how == "empty":
        db.write_bytes(b"")
    elif how == "zeroed":
        size = db.stat().st_size
        assert size >= 8 * PAGE
        with open(db, "r+b") as f:  # zero every page after the first (the header stays)
            f.seek(PAGE)
            f.write(b"\0" * (size - PAGE))
    elif how == "newer":
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied) VALUES (?, 'future', 0)",
                (SCHEMA_VERSION + 1,),
            )
        conn.close()
    return dest


CASES = {
    "empty": "is empty (0 bytes)",
    "zeroed": "is damaged",
    "newer": "written by a newer fabricsearch",
}


@pytest.mark.parametrize("how", sorted(CASES))
def test_damaged_catalogue_is_refused_and_left_unchanged(
    real_library: Path, tmp_path: Path, how: str
) -> None:
    folder = _damaged_copy(real_library, tmp_path / "lib", how)
    before = _digest(folder / DB_NAME)
    for read_only in (None, True):
        with pytest.raises(DamagedCatalogueError, match=re.escape(CASES[how])):
            Library.open(folder, read_only=read_only)
    with pytest.raises(LibraryError, match="already holds a library"):
        Library.create(folder)
    assert _digest(folder / DB_NAME) == before
    assert not (folder / f"{DB_NAME}-wal").exists() or how != "empty"


@pytest.mark.parametrize("how", sorted(CASES))
def test_cli_prints_one_line_and_fails(
    real_library: Path, tmp_path: Path, how: str, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _damaged_copy(real_library, tmp_path / "lib", how)
    before = _digest(folder / DB_NAME)
    photos = tmp_path / "photos"
    photos.mkdir()
    for argv in (
        ["info", str(folder)],
        ["info", str(folder), "--json"],
        ["import", str(folder), str(photos), "--workers", "0"],
        ["labels", "export", str(folder), str(tmp_path / "out.csv")],
    ):
        assert cli_main(argv) == 1, argv
        captured = capsys.readouterr()
        lines = captured.err.strip().splitlines()
        assert len(lines) == 1, captured.err
        assert lines[0].startswith("fabricsearch: error: ")
        assert CASES[how] in lines[0]
        assert "Traceback" not in captured.err
    assert _digest(folder / DB_NAME) == before


def test_intact_copy_opens(real_library: Path, tmp_path: Path) -> None:
    # The damage cases above fail because of the damage, not because of the copy.
    folder = _damaged_copy(real_library, tmp_path / "lib", "none")
    with Library.open(folder) as lib:
        assert lib.count() == 400
        assert lib.count(labelled=True) == 200


# --- read-only libraries (item 15) ---------------------------------------------------------


def _labelled(lib: Library) -> int:
    return lib.count(labelled=True)


def _assert_read_only(lib: Library, tmp_path: Path) -> None:
    assert lib.read_only
    assert lib.count() == 400
    assert lib.images([1])[0].coarse == "solid"
    assert lib.splits()[1] in ("train", "val", "test")
    assert lib.info()["images"] == 400
    first = lib.image_ids()[0]
    with pytest.raises(ReadOnlyLibraryError, match="read-only"):
        lib.set_labels([first], coarse="stripe")
    with pytest.raises(ReadOnlyLibraryError, match="read-only"):
        lib.add_categories(fine_ids=["new-weave"])
    with pytest.raises(ReadOnlyLibraryError, match="read-only"):
        lib.remove_images([first])  # no early check: SQLite itself refuses
    with pytest.raises(ReadOnlyLibraryError, match="read-only"), lib.atomic():
        lib.record_failure("/x.jpg", "test")
    photos = tmp_path / "photos"
    photos.mkdir(exist_ok=True)
    from fabricsearch.catalogue.importer import import_folder

    with pytest.raises(ReadOnlyLibraryError, match="cannot import photos"):
        import_folder(lib, photos, workers=0)
    assert _labelled(lib) == 200
    # Thumbnails of a read-only library go to this user's cache, not into its folder.
    assert not str(lib.thumbs_dir).startswith(str(lib.folder))


def test_read_only_flag_opens_for_search_and_refuses_changes(
    real_library: Path, tmp_path: Path
) -> None:
    folder = _damaged_copy(real_library, tmp_path / "lib", "none")
    before = _digest(folder / DB_NAME)
    with Library.open(folder, read_only=True) as lib:
        _assert_read_only(lib, tmp_path)
    assert _digest(folder / DB_NAME) == before
    with Library.open(folder) as lib:  # writable again when asked normally
        assert not lib.read_only
        lib.set_labels([lib.image_ids()[0]], coarse="stripe")


@pytest.mark.skipif(
    hasattr(os, "geteuid") and os.geteuid() == 0,
    reason="running as root: chmod cannot make a folder unwritable (read_only=True covers it)",
)
def test_unwritable_folder_opens_read_only(real_library: Path, tmp_path: Path) -> None:
    folder = _damaged_copy(real_library, tmp_path / "lib", "none")
    modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
    try:
        for p in [*folder.rglob("*"), folder]:
            p.chmod(p.stat().st_mode & ~0o222)
        with Library.open(folder) as lib:
            _assert_read_only(lib, tmp_path)
    finally:
        for p, mode in modes.items():
            p.chmod(mode)


def test_cli_says_read_only(
    real_library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    folder = _damaged_copy(real_library, tmp_path / "lib", "none")
    monkeypatch.setenv("FABRICSEARCH_READ_ONLY", "1")
    assert cli_main(["info", str(folder)]) == 0
    captured = capsys.readouterr()
    assert "read-only" in captured.err
    csv = tmp_path / "labels.csv"
    csv.write_text("path,coarse,fine,tightness\n/photos/img1.png,stripe,,\n")
    assert cli_main(["labels", "import", str(folder), str(csv)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert (
        err[-1]
        == f"fabricsearch: error: {folder.resolve()} is open read-only (search only): cannot import labels"
    )
