# ruff: noqa: F811 - pytest fixtures imported from backends are redefined as arguments
"""Removing images from the library (never from disk) and relocating a moved folder."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from backends import create_library, location, pg_database, pg_server  # noqa: F401 - fixtures

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


# --- remove asks first and keeps a record; restore puts it back (issue 20, item 5) -----------

MANY = [f"shelf/p{i:02d}.jpg" for i in range(12)]


def test_cli_remove_of_many_or_labelled_images_needs_yes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with fake_library(tmp_path, [*MANY, "one.jpg"]) as lib:
        lib.set_labels([ids_by_name(lib)["one.jpg"]], coarse="solid")
        lib_dir = str(lib.folder)
    photos = tmp_path / "photos"
    # More than the threshold: listed, nothing removed, exit 1 (stdin is no terminal here).
    assert cli_main(["remove", lib_dir, str(photos / "shelf")]) == 1
    out, err = capsys.readouterr()
    assert "would remove" in out
    assert "p00.jpg" in out
    assert "nothing removed" in err
    assert "--yes" in err
    # One labelled image is enough to ask; --json says what would go.
    assert cli_main(["remove", lib_dir, str(photos / "one.jpg"), "--json"]) == 1
    shown = json.loads(capsys.readouterr().out)
    assert shown["removed"] == []
    assert [r["labelled"] for r in shown["would_remove"]] == [True]
    with Library.open(lib_dir) as lib:
        assert lib.count() == 13
    # A few unlabelled images go without asking.
    assert cli_main(["remove", lib_dir, str(photos / "shelf" / "p00.jpg")]) == 0
    assert "fabricsearch restore" in capsys.readouterr().out
    assert cli_main(["remove", lib_dir, str(photos), "--yes", "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert len(rep["removed"]) == 12
    assert Path(rep["record"]).parent == Path(lib_dir) / "removed"
    with Library.open(lib_dir) as lib:
        assert lib.count() == 0
    # The record puts them back, labels included.
    assert cli_main(["restore", lib_dir, rep["record"], "--json"]) == 0
    back = json.loads(capsys.readouterr().out)
    assert sorted(r["id"] for r in back["restored"]) == sorted(r["id"] for r in rep["removed"])
    with Library.open(lib_dir) as lib:
        assert lib.count() == 12
        assert lib.count(labelled=True) == 1


def test_removed_images_are_restored_with_everything(lib: Library, tmp_path: Path) -> None:
    from fabricsearch.catalogue import ModelInfo

    photos = tmp_path / "photos"
    ids = ids_by_name(lib)
    lib.set_labels([ids["a.jpg"], ids["c.jpg"]], coarse="solid", tightness=40.0, who="ann")
    lib.set_labels([ids["c.jpg"]], fine="twill", who="bob")
    lib.set_metadata([ids["c.jpg"]], {"supplier": "Acme", "weight": 250, "tags": ["x", "y"]})
    weights = tmp_path / "m.bin"
    weights.write_bytes(b"w")
    lib.add_model(ModelInfo("v1", "dvsh", 16, weights, 1.0, {}, ""))
    all_ids = sorted(ids.values())
    codes = np.arange(2 * len(all_ids), dtype=np.uint8).reshape(len(all_ids), 2)
    lib.store_codes("v1", all_ids, codes)
    before = (
        [(r.id, r.path, r.sha256, r.coarse, r.fine, r.tightness) for r in lib.images()],
        lib.metadata(),
        lib.label_history(),
        lib.load_codes("v1")[1].tolist(),
        lib.text_search("supplier:acme"),
    )
    rep = lib.remove_paths([photos])
    assert len(rep.removed) == len(NAMES)
    assert lib.count() == 0
    assert rep.record is not None
    assert Path(rep.record).is_file()
    assert lib.label_history() == before[2]  # the history of removed images stays anyway

    back = lib.restore_removed(rep.record)
    assert sorted(r["id"] for r in back.restored) == all_ids
    assert back.renumbered == []
    assert back.skipped == []
    after = (
        [(r.id, r.path, r.sha256, r.coarse, r.fine, r.tightness) for r in lib.images()],
        lib.metadata(),
        lib.label_history(),
        lib.load_codes("v1")[1].tolist(),
        lib.text_search("supplier:acme"),
    )
    assert after == before
    # Twice: everything is already there.
    again = lib.restore_removed(rep.record)
    assert again.restored == []
    assert len(again.skipped) == len(NAMES)
    assert "already in the library" in again.skipped[0]["reason"]


def test_restore_skips_a_photo_imported_again_and_refuses_other_files(
    lib: Library, tmp_path: Path
) -> None:
    from fabricsearch.catalogue import LibraryError

    photos = tmp_path / "photos"
    rep = lib.remove_paths([photos / "a.jpg", photos / "b.jpg"])
    a = next(r for r in rep.removed if r["path"].endswith("a.jpg"))
    with lib.atomic():  # a.jpg imported again (a new, unlabelled row)
        lib.add_image(a["path"], "f" * 64, 1, 1.0, 8, 8, np.zeros((10, 4), np.float32))
    back = lib.restore_removed(rep.record)
    assert [Path(r["path"]).name for r in back.restored] == ["b.jpg"]
    assert [Path(s["path"]).name for s in back.skipped] == ["a.jpg"]
    bogus = tmp_path / "x.json"
    bogus.write_text("{}")
    with pytest.raises(LibraryError, match="not a record of removed images"):
        lib.restore_removed(bogus)


def test_remove_and_restore_on_both_backends(location: str, tmp_path: Path) -> None:
    import hashlib

    with create_library(location) as lib:
        with lib.atomic():
            ids = [
                lib.add_image(
                    str(tmp_path / f"{i}.jpg"),
                    hashlib.sha256(bytes([i])).hexdigest(),
                    7,
                    1.0,
                    8,
                    8,
                    np.full((10, 4), i, np.float32),
                )
                for i in range(3)
            ]
        lib.set_labels(ids[:2], coarse="solid", who="ann")
        lib.set_metadata([ids[1]], {"supplier": "Acme"})
        before = [(r.id, r.path, r.coarse, r.palette.tolist()) for r in lib.images()]
        rep = lib.remove_paths([tmp_path])
        assert lib.count() == 0
        back = lib.restore_removed(rep.record)
        assert sorted(r["id"] for r in back.restored) == ids
        assert [(r.id, r.path, r.coarse, r.palette.tolist()) for r in lib.images()] == before
        assert lib.text_search("supplier:acme") == [ids[1]]
        with lib.atomic():  # new ids continue after the restored ones
            new = lib.add_image(
                str(tmp_path / "n.jpg"), "e" * 64, 1, 1.0, 8, 8, np.zeros((10, 4), np.float32)
            )
        assert new > max(ids)
