"""Removing images from the library (never from disk) and relocating a moved folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library
from fabricsearch.cli import main as cli_main
from fabricsearch.jobs import Cancelled, CancelToken
from tests.records_helpers import fake_library, ids_by_name

NAMES = ["a.jpg", "b.jpg", "shelf/c.jpg", "shelf/d.jpg", "shelf2/e.jpg"]


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    with fake_library(tmp_path, NAMES) as lib:
        yield lib


def test_remove_files_and_folders_keeps_files_on_disk(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    ids = ids_by_name(lib)
    lib.set_labels([ids["a.jpg"]], coarse="solid")
    lib.set_metadata([ids["c.jpg"]], {"supplier": "Acme"})
    rep = lib.remove_paths([photos / "a.jpg", photos / "shelf", photos / "nope.jpg"])
    assert [Path(r["path"]).name for r in rep.removed] == ["a.jpg", "c.jpg", "d.jpg"]
    assert [r["labelled"] for r in rep.removed] == [True, False, False]
    assert rep.not_found == [str(photos / "nope.jpg")]
    assert sorted(ids_by_name(lib)) == ["b.jpg", "e.jpg"]  # shelf2 is not under shelf
    assert all((photos / n).is_file() for n in NAMES)
    assert lib.metadata_count() == 0
    assert lib.text_search("supplier:acme") == []


def test_cli_remove(lib: Library, tmp_path: Path, capsys) -> None:
    lib_dir = str(lib.folder)
    lib.close()
    photos = tmp_path / "photos"
    assert cli_main(["remove", lib_dir, str(photos / "b.jpg"), "--json"]) == 0
    assert [Path(r["path"]).name for r in json.loads(capsys.readouterr().out)["removed"]] == [
        "b.jpg"
    ]
    assert cli_main(["remove", lib_dir, str(photos / "b.jpg")]) == 1  # already gone
    assert "not in the library" in capsys.readouterr().out


def test_relocate_checks_content(lib: Library, tmp_path: Path) -> None:
    photos, moved = tmp_path / "photos", tmp_path / "share" / "moved"
    ids = ids_by_name(lib)
    lib.set_labels([ids["c.jpg"]], coarse="solid")
    moved.parent.mkdir()
    shutil.move(photos / "shelf", moved)
    (moved / "d.jpg").write_bytes(b"another photo")  # same name, other content
    shutil.move(photos / "a.jpg", tmp_path / "elsewhere.jpg")
    rep = lib.relocate(photos / "shelf", moved)
    assert rep.moved == [
        {"from": str(photos.resolve() / "shelf" / "c.jpg"), "to": str(moved.resolve() / "c.jpg")}
    ]
    assert rep.different == [str(photos.resolve() / "shelf" / "d.jpg")]
    assert rep.missing == []
    c = lib.get(ids["c.jpg"])
    assert c.path == moved.resolve() / "c.jpg"
    assert c.coarse == "solid"  # the row moved, labels and all
    assert lib.get(ids["d.jpg"]).path == photos.resolve() / "shelf" / "d.jpg"  # not moved
    assert lib.text_search("path:moved") == [ids["c.jpg"]]
    rep = lib.relocate(photos, tmp_path / "nowhere")
    assert rep.moved == []
    assert len(rep.missing) == 4  # a, b, d (old place), e


def test_relocate_into_a_subfolder_of_itself(tmp_path: Path) -> None:
    with fake_library(tmp_path, ["x/a.jpg", "x/x/a.jpg"]) as lib:
        photos = tmp_path / "photos"
        # x/ moves to x/x/ (nested): x/a → x/x/a (a path another moving row still holds).
        (photos / "x" / "x" / "x").mkdir()
        shutil.move(photos / "x" / "x" / "a.jpg", photos / "x" / "x" / "x" / "a.jpg")
        shutil.move(photos / "x" / "a.jpg", photos / "x" / "x" / "a.jpg")
        rep = lib.relocate(photos / "x", photos / "x" / "x")
        assert len(rep.moved) == 2, rep
        assert all(Path(r.path).is_file() for r in lib.images())


def test_relocate_cancelled_changes_nothing(lib: Library, tmp_path: Path) -> None:
    before = {r.id: r.path for r in lib.images()}
    token = CancelToken()
    token.cancel()
    shutil.copytree(tmp_path / "photos", tmp_path / "new")
    with pytest.raises(Cancelled):
        lib.relocate(tmp_path / "photos", tmp_path / "new", cancel=token)
    assert {r.id: r.path for r in lib.images()} == before


def test_cli_relocate(lib: Library, tmp_path: Path, capsys) -> None:
    lib_dir = str(lib.folder)
    lib.close()
    shutil.copytree(tmp_path / "photos", tmp_path / "new")
    assert (
        cli_main(["relocate", lib_dir, str(tmp_path / "photos"), str(tmp_path / "new"), "--json"])
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert len(out["moved"]) == len(NAMES)
    with Library.open(lib_dir) as lib2:
        assert all(str(r.path).startswith(str((tmp_path / "new").resolve())) for r in lib2.images())
