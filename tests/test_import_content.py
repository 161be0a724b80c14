"""Rows follow content: renames, rename cycles, edits in place, duplicates (issue 17, item 4)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch.catalogue import Library, ModelInfo
from fabricsearch.catalogue.importer import import_folder

COARSE = ["plaid/tartan", "stripe", "pattern/printed-dots", "solid"]


def sha_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_photo(path: Path, seed: int, mtime: float) -> None:
    a = np.random.default_rng(seed).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a).save(path, quality=90)
    # Distinct mtimes, as real photos have: `mv` keeps them, so a renamed file never
    # matches the size and mtime stored for the path it lands on.
    os.utime(path, (mtime, mtime))


def label_all(lib: Library, photos: Path) -> dict[str, tuple[str, float]]:
    """Give each image its own labels; returns sha256 → (coarse, tightness)."""
    truth = {}
    for k, rec in enumerate(sorted(lib.images(), key=lambda r: str(r.path))):
        coarse, tightness = COARSE[k % len(COARSE)], float(k)
        lib.set_labels([rec.id], coarse=coarse, tightness=tightness)
        truth[rec.sha256] = (coarse, tightness)
    return truth


def add_fake_codes(lib: Library) -> dict[str, bytes]:
    """A model whose code of each image is derived from its content: sha256 → packed code."""
    lib.add_model(ModelInfo("m1", "lsh", 64, lib.models_dir / "m1.pt", time.time()))
    recs = lib.images()
    packed = np.array(
        [np.frombuffer(bytes.fromhex(r.sha256)[:8], np.uint8) for r in recs], dtype=np.uint8
    )
    lib.store_codes("m1", [r.id for r in recs], packed)
    return {r.sha256: bytes.fromhex(r.sha256)[:8] for r in recs}


def assert_rows_describe_files(
    lib: Library, photos: Path, truth: dict[str, tuple[str, float]], codes: dict[str, bytes]
) -> None:
    """Every path's row holds that file's hash, the labels and code of that content, and a
    thumbnail of that content."""
    files = sorted(p for p in photos.rglob("*.jpg"))
    assert lib.count() == len(files)
    ids, packed = lib.load_codes("m1")
    code_of = {int(i): bytes(c) for i, c in zip(ids, packed, strict=True)}
    for path in files:
        rec = lib.find_by_path(path)
        assert rec is not None, path
        sha = sha_of(path)
        assert rec.sha256 == sha, path
        assert (rec.coarse, rec.tightness) == truth[sha], path
        assert code_of[rec.id] == codes[sha], path
        assert lib.thumb_path(sha, 256).is_file()


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    with Library.create(tmp_path / "lib") as lib:
        yield lib


def test_shifted_names_keep_each_photos_labels(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(20):
        write_photo(photos / f"IMG_{i:04d}.jpg", seed=i, mtime=1_600_000_000 + 60 * i)
    rep = import_folder(lib, photos, workers=0)
    assert rep.added == 20
    truth = label_all(lib, photos)
    codes = add_fake_codes(lib)
    deleted_sha = sha_of(photos / "IMG_0000.jpg")

    (photos / "IMG_0000.jpg").unlink()
    for i in range(1, 20):  # every name moves down by one
        (photos / f"IMG_{i:04d}.jpg").rename(photos / f"IMG_{i - 1:04d}.jpg")
    rep = import_folder(lib, photos, workers=0)

    assert (rep.moved, rep.added, rep.updated, rep.duplicates, rep.failed) == (19, 0, 0, [], [])
    assert_rows_describe_files(lib, photos, truth, codes)
    assert lib.find_by_sha(deleted_sha) is None  # its path holds another photo now
    # The dropped labels are reported, not lost silently.
    assert [d["path"] for d in rep.labels_dropped] == [str((photos / "IMG_0000.jpg").resolve())]
    assert rep.labels_dropped[0]["coarse"] == truth[deleted_sha][0]
    rep = import_folder(lib, photos, workers=0)
    assert (rep.unchanged, rep.moved, rep.added) == (19, 0, 0)


def test_shift_up_and_rename_cycles(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(6):
        write_photo(photos / f"IMG_{i:04d}.jpg", seed=100 + i, mtime=1_600_000_000 + 60 * i)
    import_folder(lib, photos, workers=0)
    truth = label_all(lib, photos)
    codes = add_fake_codes(lib)
    p = [photos / f"IMG_{i:04d}.jpg" for i in range(6)]

    # Shift up: each name takes the next one's place (a chain in the "wrong" order).
    for i in (5, 4):
        p[i].rename(photos / f"IMG_{i + 1:04d}.jpg")
    # Rotation: mv A C; mv B A (the case that deleted A's labelled row).
    p[0].rename(photos / "C.jpg")
    p[1].rename(p[0])
    # A swap: a cycle of two.
    p[2].rename(photos / "tmp.jpg")
    p[3].rename(p[2])
    (photos / "tmp.jpg").rename(p[3])

    rep = import_folder(lib, photos, workers=0)
    assert rep.moved == 6
    assert (rep.added, rep.updated, rep.labels_dropped, rep.duplicates) == (0, 0, [], [])
    assert_rows_describe_files(lib, photos, truth, codes)
    assert lib.integrity_check() == "ok"


def test_rename_cycle_in_process_pool(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(8):
        write_photo(photos / f"f{i}.jpg", seed=200 + i, mtime=1_600_000_000 + 60 * i)
    import_folder(lib, photos, workers=0)
    truth = label_all(lib, photos)
    codes = add_fake_codes(lib)
    # Rotate all eight names by one: f0 ← f7's photo, f1 ← f0's, …
    for i in range(8):
        (photos / f"f{i}.jpg").rename(photos / f"t{i}.jpg")
    for i in range(8):
        (photos / f"t{i}.jpg").rename(photos / f"f{(i + 1) % 8}.jpg")
    rep = import_folder(lib, photos, workers=2)
    assert rep.moved == 8
    assert_rows_describe_files(lib, photos, truth, codes)


def test_new_photo_at_a_labelled_path_gets_no_labels(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    for i in range(3):
        write_photo(photos / f"IMG_{i:04d}.jpg", seed=300 + i, mtime=1_600_000_000 + 60 * i)
    import_folder(lib, photos, workers=0)
    truth = label_all(lib, photos)
    add_fake_codes(lib)
    target = photos / "IMG_0001.jpg"
    old = lib.find_by_path(target)
    # The camera's counter restarted: a different fabric now carries the old name.
    write_photo(target, seed=999, mtime=1_700_000_000)
    rep = import_folder(lib, photos, workers=0)
    assert (rep.updated, rep.added, rep.moved) == (1, 0, 0)
    rec = lib.find_by_path(target)
    assert rec.sha256 == sha_of(target)
    assert not rec.labelled  # never the old photo's labels
    assert rec.id != old.id  # an id always means one content, so caches keyed by id follow
    assert lib.count_codes("m1") == 2  # the old photo's code went with it
    assert rep.labels_dropped == [
        {
            "path": str(target.resolve()),
            "coarse": truth[old.sha256][0],
            "fine": "",
            "tightness": repr(truth[old.sha256][1]),
        }
    ]
    assert rep.to_json()["labels_dropped"] == rep.labels_dropped


def test_copy_stays_a_duplicate_and_original_keeps_its_row(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_photo(photos / "a.jpg", seed=1, mtime=1_600_000_000)
    import_folder(lib, photos, workers=0)
    original = lib.find_by_path(photos / "a.jpg")
    (photos / "b.jpg").write_bytes((photos / "a.jpg").read_bytes())
    rep = import_folder(lib, photos, workers=0)
    assert rep.duplicates == [
        {"path": str((photos / "b.jpg").resolve()), "of": str((photos / "a.jpg").resolve())}
    ]
    assert lib.find_by_path(photos / "a.jpg").id == original.id
    assert lib.count() == 1
    # The original is deleted later: the copy takes over the row (labels kept).
    lib.set_labels([original.id], coarse="stripe")
    (photos / "a.jpg").unlink()
    rep = import_folder(lib, photos, workers=0)
    assert rep.moved == 1
    rec = lib.find_by_path(photos / "b.jpg")
    assert (rec.id, rec.coarse) == (original.id, "stripe")
