# ruff: noqa: F811 - pytest fixtures imported from backends are redefined as arguments
"""catalogue.Library: schema, labels, taxonomy, splits, models and codes, threads, thumbnails.

Tests taking the ``lib`` fixture run on both backends (a library folder, and a team library on
PostgreSQL: tests/backends.py); the others test what only a library folder has."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from backends import create_library, location, pg_database, pg_server  # noqa: F401 - fixtures
from PIL import Image

from fabricsearch.catalogue import UNSET, Library, LibraryError, ModelInfo
from fabricsearch.catalogue import library as libmod
from fabricsearch.catalogue.schema import MIGRATIONS, SCHEMA_VERSION
from fabricsearch.taxonomy import TaxonomyError


def palette(seed: int) -> np.ndarray:
    p = np.zeros((10, 4), np.float32)
    p[seed % 10] = (10.0, 100.0, 200.0, 1.0)
    return p


def sha(i: int) -> str:
    return hashlib.sha256(f"image-{i}".encode()).hexdigest()


@pytest.fixture
def lib(location: str) -> Library:
    """A new library on each backend (a folder; a team library on PostgreSQL)."""
    with create_library(location) as lib:
        yield lib


def add_images(lib: Library, n: int, folder: Path | None = None) -> list[int]:
    ids = []
    with lib.atomic():
        for i in range(n):
            path = str((folder or lib.folder) / f"img{i}.png")
            ids.append(lib.add_image(path, sha(i), 100 + i, 1000.0 + i, 64, 48, palette(i)))
    return ids


def test_create_makes_folders_wal_and_records_migrations(tmp_path: Path) -> None:
    with Library.create(tmp_path / "lib") as lib:
        for d in ("thumbs", "models", "indexes"):
            assert (tmp_path / "lib" / d).is_dir()
        assert lib.db_path == tmp_path.resolve() / "lib" / "catalogue.sqlite"
        assert lib.schema_version() == SCHEMA_VERSION
        assert lib.integrity_check() == "ok"
    conn = sqlite3.connect(tmp_path / "lib" / "catalogue.sqlite")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = conn.execute("SELECT version, name FROM schema_migrations").fetchall()
        assert rows == [(v, name) for v, name, _sql in MIGRATIONS]
    finally:
        conn.close()


def test_open_and_create_errors(tmp_path: Path) -> None:
    with pytest.raises(LibraryError, match="not a fabricsearch library"):
        Library.open(tmp_path)
    Library.create(tmp_path / "lib").close()
    with pytest.raises(LibraryError, match="already holds a library"):
        Library.create(tmp_path / "lib")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "catalogue.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LibraryError, match="damaged"):
        Library.open(tmp_path / "bad")


def test_closed_library_refuses_use(tmp_path: Path) -> None:
    lib = Library.create(tmp_path / "lib")
    lib.close()
    lib.close()  # twice is fine
    assert lib.closed
    with pytest.raises(LibraryError, match="closed"):
        lib.count()


def test_images_round_trip_and_lookup(lib: Library) -> None:
    ids = add_images(lib, 3)
    assert lib.count() == 3
    assert lib.image_ids() == ids
    rec = lib.get(ids[1])
    assert rec.sha256 == sha(1)
    assert (rec.size, rec.width, rec.height) == (101, 64, 48)
    np.testing.assert_array_equal(rec.palette, palette(1))
    assert rec.palette.dtype == np.float32
    assert not rec.labelled
    assert lib.find_by_path(lib.folder / "img2.png").id == ids[2]
    assert lib.find_by_path(lib.folder / "nope.png") is None
    assert [r.id for r in lib.images([ids[2], ids[0]])] == [ids[2], ids[0]]
    with pytest.raises(KeyError):
        lib.images([ids[0], 999])


def test_set_labels_validates_and_is_atomic(lib: Library) -> None:
    ids = add_images(lib, 4)
    lib.set_labels(ids[:2], coarse="plaid/tartan", fine="twill", tightness=40.0, who="ann")
    r = lib.get(ids[0])
    assert (r.coarse, r.fine, r.tightness, r.labelled_by) == ("plaid/tartan", "twill", 40.0, "ann")
    assert r.labelled_at is not None
    # UNSET leaves fields alone; None clears.
    lib.set_labels([ids[0]], tightness=None)
    r = lib.get(ids[0])
    assert (r.coarse, r.fine, r.tightness) == ("plaid/tartan", "twill", None)
    lib.set_labels([ids[2]], coarse="stripe")  # a major alone is allowed
    assert lib.get(ids[2]).coarse == "stripe"
    assert lib.image_ids(labelled=True) == ids[:3]
    assert lib.image_ids(labelled=False) == [ids[3]]
    assert lib.count(labelled=True) == 3

    before = [lib.get(i) for i in ids]
    with pytest.raises(TaxonomyError):
        lib.set_labels(ids, coarse="plaid/nonsense")
    with pytest.raises(TaxonomyError):
        lib.set_labels(ids, fine="velvetish")
    with pytest.raises(ValueError, match="0–100"):
        lib.set_labels(ids, tightness=100.5)
    with pytest.raises(KeyError):
        lib.set_labels([ids[3], 12345], coarse="solid")
    after = [lib.get(i) for i in ids]
    assert [(a.coarse, a.fine, a.tightness, a.labelled_at) for a in after] == [
        (b.coarse, b.fine, b.tightness, b.labelled_at) for b in before
    ]
    # Clearing everything makes an image unlabelled again.
    lib.set_labels([ids[2]], coarse=None)
    assert not lib.get(ids[2]).labelled
    assert UNSET is libmod.UNSET


def test_atomic_rolls_back_and_nests(lib: Library) -> None:
    ids = add_images(lib, 2)

    def label_then_fail(image_id: int) -> None:
        with lib.atomic():
            lib.set_labels([image_id], coarse="solid")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        label_then_fail(ids[0])
    assert not lib.get(ids[0]).labelled
    with lib.atomic():
        lib.set_labels([ids[0]], coarse="solid")
        with pytest.raises(RuntimeError):
            label_then_fail(ids[1])  # a nested block rolls back to its savepoint only
    assert lib.get(ids[0]).coarse == "solid"
    assert not lib.get(ids[1]).labelled


def test_taxonomy_extension_persists(tmp_path: Path) -> None:
    with Library.create(tmp_path / "lib") as lib:
        assert "plaid/tartan" in lib.taxonomy.minors
        added = lib.add_categories(["pattern/bubbly", "velvet/crushed", "plaid"], ["leno"])
        assert added == ["pattern/bubbly", "velvet", "velvet/crushed", "leno"]
        assert lib.add_categories(["pattern/bubbly"]) == []
        lib.taxonomy.add_fine("not-stored")  # a copy: changing it does not change the library
        assert "not-stored" not in lib.taxonomy.fine
    with Library.open(tmp_path / "lib") as lib:
        tax = lib.taxonomy
        assert "pattern/bubbly" in tax.minors
        assert "velvet" in tax.majors
        assert "leno" in tax.fine
        # Categories are only appended, so default indices are unchanged.
        default = libmod.Taxonomy.default()
        assert tax.minors[: len(default.minors)] == default.minors


def test_label_arrays(lib: Library) -> None:
    ids = add_images(lib, 3)
    lib.set_labels([ids[0]], coarse="plaid/tartan", fine="twill", tightness=25.0)
    lib.set_labels([ids[2]], coarse="stripe")
    la = lib.label_arrays([ids[2], ids[0], ids[1]])
    tax = lib.taxonomy
    assert la.major.tolist() == [tax.majors.index("stripe"), tax.majors.index("plaid"), -1]
    assert la.minor.tolist() == [-1, tax.minors.index("plaid/tartan"), -1]
    assert la.fine.tolist() == [-1, tax.fine.index("twill"), -1]
    assert la.tightness[1] == 25.0
    assert np.isnan(la.tightness[0])
    assert np.isnan(la.tightness[2])
    np.testing.assert_array_equal(la.palette[0], palette(2))
    assert la.palette.shape == (3, 10, 4)


def test_split_for_sha_is_deterministic_and_proportional() -> None:
    shas = [sha(i) for i in range(4000)]
    splits = [libmod.split_for_sha(s) for s in shas]
    assert splits == [libmod.split_for_sha(s) for s in shas]
    frac = {s: splits.count(s) / len(splits) for s in ("train", "val", "test")}
    assert frac["train"] == pytest.approx(0.70, abs=0.03)
    assert frac["val"] == pytest.approx(0.15, abs=0.03)
    assert frac["test"] == pytest.approx(0.15, abs=0.03)


def test_splits_stored_and_stable_across_libraries(tmp_path: Path) -> None:
    with Library.create(tmp_path / "a") as a, Library.create(tmp_path / "b") as b:
        ids_a = add_images(a, 40)
        # Same content added in another order on another "machine" gets the same split.
        with b.atomic():
            for i in reversed(range(40)):
                b.add_image(f"/elsewhere/{i}.png", sha(i), 1, 1.0, 8, 8, palette(i))
        sa = a.splits()
        sb = b.splits()
        by_sha_a = {a.get(i).sha256: s for i, s in sa.items()}
        by_sha_b = {b.get(i).sha256: s for i, s in sb.items()}
        assert by_sha_a == by_sha_b
        assert set(sa) == set(ids_a)
        assert set(sa.values()) <= {"train", "val", "test"}
        assert a.info()["splits"] == {s: list(sa.values()).count(s) for s in set(sa.values())}


def test_models_and_codes(lib: Library, tmp_path: Path) -> None:
    ids = add_images(lib, 5)
    assert lib.models() == []
    assert lib.active_model() is None
    m1 = ModelInfo(
        "v1", "dvsh", 16, lib.models_dir / "v1.safetensors", 100.0, {"map": 0.5}, "first"
    )
    m2 = ModelInfo("v2", "dvsh", 16, tmp_path / "outside.pt", 200.0)
    lib.add_model(m1)
    lib.add_model(m2)
    assert [m.version for m in lib.models()] == ["v2", "v1"]
    assert lib.active_model().version == "v1"  # the first model became active
    assert lib.models()[1] == m1
    assert lib.models()[0].path == m2.path
    lib.set_active_model("v2")
    assert lib.active_model().version == "v2"
    with pytest.raises(LibraryError):
        lib.set_active_model("nope")
    with pytest.raises(LibraryError, match="already exists"):
        lib.add_model(m1)

    rng = np.random.default_rng(1)
    packed = rng.integers(0, 256, (5, 2), dtype=np.uint8)
    lib.store_codes("v1", ids[::-1], packed)
    got_ids, got = lib.load_codes("v1")
    assert got_ids.dtype == np.int64
    assert got.dtype == np.uint8
    assert got_ids.tolist() == ids
    np.testing.assert_array_equal(got, packed[::-1])
    lib.store_codes("v1", ids[:2], packed[:2])  # replaces
    assert lib.load_codes("v1")[0].tolist() == ids[:2]
    with pytest.raises(ValueError, match="shape"):
        lib.store_codes("v1", ids, np.zeros((5, 4), np.uint8))
    empty_ids, empty = lib.load_codes("v2")
    assert empty_ids.shape == (0,)
    assert empty.shape == (0, 2)
    # New content drops stale codes of that image.
    lib.update_image(ids[0], sha256=sha(999))
    assert lib.load_codes("v1")[0].tolist() == [ids[1]]
    lib.remove_model("v1")
    assert [m.version for m in lib.models()] == ["v2"]


def test_model_path_relative_inside_library(tmp_path: Path) -> None:
    with Library.create(tmp_path / "lib") as lib:
        lib.add_model(ModelInfo("v1", "dvsh", 8, lib.models_dir / "v1" / "w.safetensors", 1.0))
    (tmp_path / "lib").rename(tmp_path / "moved")
    with Library.open(tmp_path / "moved") as lib:
        assert (
            lib.models()[0].path
            == (tmp_path / "moved" / "models" / "v1" / "w.safetensors").resolve()
        )


def test_usable_from_another_thread(lib: Library) -> None:
    ids = add_images(lib, 50)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for i in ids:
                lib.set_labels([i], coarse="solid", tightness=float(i % 100))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=worker)
    t.start()
    seen = 0
    while t.is_alive():
        seen = max(seen, lib.count(labelled=True))  # reads while the worker writes
        lib.images(ids[:5])
    t.join()
    assert not errors
    assert lib.count(labelled=True) == 50
    assert lib.integrity_check() == "ok"


def test_thumbnail_regenerated_from_original(lib: Library, tmp_path: Path) -> None:
    src = tmp_path / "photo.png"
    Image.new("RGB", (600, 300), (200, 30, 30)).save(src)
    with lib.atomic():
        image_id = lib.add_image(str(src), sha(7), 1, 1.0, 600, 300, palette(0))
    path = lib.thumbnail(image_id, 256)
    assert path == lib.thumbs_dir / sha(7)[:2] / f"{sha(7)}_256.jpg"
    with Image.open(path) as im:
        assert im.size == (256, 128)
    path.unlink()
    assert lib.thumbnail(lib.get(image_id), 256).is_file()
    with Image.open(lib.thumbnail(image_id, 512)) as im:
        assert im.size == (512, 256)
    src.unlink()
    lib.thumb_path(sha(7), 256).unlink()
    with pytest.raises(LibraryError, match="cannot make a thumbnail"):
        lib.thumbnail(image_id, 256)


def test_info_counts(lib: Library) -> None:
    ids = add_images(lib, 4)
    lib.set_labels(ids[:2], coarse="plaid/tartan")
    lib.set_labels(ids[2:3], fine="twill")
    lib.record_failure("/x/bad.jpg", "not an image (unrecognised file format)")
    info = lib.info()
    assert info["images"] == 4
    assert info["labelled"] == 3
    assert info["labelled_per_category"] == {"plaid/tartan": 2, "—": 1}
    assert info["failed"][0]["reason"].startswith("not an image")
    assert info["models"] == []
