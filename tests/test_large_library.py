"""Large libraries open fast (issue 23): the columnar loading gives what the per-record one
gave, a large catalogue's open check still refuses a cut or zeroed file, `info --check` reads
everything on demand, and `info` does not import torch."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fabricsearch.catalogue import DamagedCatalogueError, Library
from fabricsearch.catalogue import library as library_mod
from fabricsearch.catalogue.library import DB_NAME
from fabricsearch.cli import main as cli_main
from fabricsearch.similarity import LabelArrays

PAGE = 4096


def _palette(i: int) -> np.ndarray:
    rng = np.random.default_rng(i)
    return rng.random((10, 4)).astype(np.float32)


def _sha(i: int) -> str:
    return hashlib.sha256(f"large-{i}".encode()).hexdigest()


@pytest.fixture(scope="module")
def library_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("large") / "lib"
    with Library.create(folder) as lib:
        with lib.atomic():
            ids = [
                lib.add_image(f"/photos/img{i}.png", _sha(i), 100, 1.0, 64, 48, _palette(i))
                for i in range(600)
            ]
        lib.set_labels(ids[::3], coarse="solid", tightness=40.0)
        lib.set_labels(ids[1::7], coarse="plaid/tartan", fine="twill")
        lib.set_labels(ids[2::11], tightness=72.3)
        lib.remove_images(ids[5::50])  # gaps in the ids
    return folder


def _old_label_arrays(lib: Library, ids: list[int]) -> LabelArrays:
    recs = lib.images(ids)
    return LabelArrays.from_records(
        lib.taxonomy,
        [r.coarse for r in recs],
        [r.fine for r in recs],
        [r.tightness for r in recs],
        np.stack([r.palette for r in recs]),
    )


def _same(a: LabelArrays, b: LabelArrays) -> None:
    for name in ("major", "minor", "fine", "tightness", "palette"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
        assert getattr(a, name).dtype == getattr(b, name).dtype, name


def test_columns_match_the_records(library_dir: Path) -> None:
    with Library.open(library_dir) as lib:
        recs = lib.images()
        cols = lib.columns()
        assert cols.ids.tolist() == [r.id for r in recs]
        assert cols.paths == [str(r.path) for r in recs]
        assert [cols.sha[i].tobytes().hex() for i in range(len(cols))] == [r.sha256 for r in recs]
        np.testing.assert_array_equal(cols.palettes, np.stack([r.palette for r in recs]))
        assert cols.coarse == [r.coarse for r in recs]
        assert cols.fine == [r.fine for r in recs]
        assert cols.tightness == [r.tightness for r in recs]
        _same(cols.label_arrays(lib.taxonomy), _old_label_arrays(lib, cols.ids.tolist()))


@pytest.mark.parametrize("scan_above", [0, 20_000])
def test_label_arrays_unchanged(
    library_dir: Path, monkeypatch: pytest.MonkeyPatch, scan_above: int
) -> None:
    monkeypatch.setattr(library_mod, "_SCAN_ABOVE", scan_above)  # both ways of reading
    with Library.open(library_dir) as lib:
        ids = lib.image_ids()
        some = ids[::-4] + ids[:3]  # any order, repeats
        for want in (ids, some, []):
            if want:
                _same(lib.label_arrays(want), _old_label_arrays(lib, want))
            else:
                assert len(lib.label_arrays(want)) == 0
        with pytest.raises(KeyError):
            lib.label_arrays([ids[0], 10**9])


def test_counts(library_dir: Path) -> None:
    with Library.open(library_dir) as lib:
        assert lib.count(labelled=True) == len(lib.image_ids(labelled=True))
        assert lib.count(labelled=False) == len(lib.image_ids(labelled=False))
        assert lib.count(labelled=True) + lib.count(labelled=False) == lib.count()


def test_searcher_columns(library_dir: Path) -> None:
    from fabricsearch.search import _PathsById, _ShaColumn

    with Library.open(library_dir) as lib:
        recs = lib.images()
        cols = lib.columns()
    sha = _ShaColumn(cols.ids, cols.sha)
    paths = _PathsById(cols.ids, cols.paths)
    for row, r in enumerate(recs):
        assert sha[row] == r.sha256
        assert sha.get(r.sha256) == r.id
        assert paths[r.id] == Path(r.path)
    assert sha.get(_sha(10**6)) is None
    assert sha.get("not hex") is None
    with pytest.raises(KeyError):
        paths[10**9]


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


@pytest.mark.parametrize("limit", [0, 1 << 40])
def test_intact_large_catalogue_opens(
    library_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: int
) -> None:
    monkeypatch.setattr(library_mod, "QUICK_CHECK_MAX_BYTES", limit)
    folder = _copy(library_dir, tmp_path / "lib")
    for read_only in (None, True):
        with Library.open(folder, read_only=read_only) as lib:
            assert lib.count() == 588


@pytest.mark.parametrize("how", ["cut", "zeroed"])
def test_damaged_large_catalogue_is_refused(
    library_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    # Above the quick-check size only the cheap checks run: they still see a cut file and
    # a file whose pages after the header were zeroed.
    monkeypatch.setattr(library_mod, "QUICK_CHECK_MAX_BYTES", 0)
    folder = _copy(library_dir, tmp_path / "lib")
    db = folder / DB_NAME
    size = db.stat().st_size
    assert size >= 8 * PAGE
    if how == "cut":
        os.truncate(db, size - 3 * PAGE)
    else:
        with open(db, "r+b") as f:
            f.seek(PAGE)
            f.write(b"\0" * (size - PAGE))
    before = db.read_bytes()
    for read_only in (None, True):
        with pytest.raises(DamagedCatalogueError, match="is damaged"):
            Library.open(folder, read_only=read_only)
    assert db.read_bytes() == before


def test_info_check_reads_everything(
    library_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _copy(library_dir, tmp_path / "lib")
    assert cli_main(["info", str(folder), "--check"]) == 0
    assert "integrity ok" in capsys.readouterr().out
    assert cli_main(["info", str(folder), "--check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["integrity"] == "ok"
    assert cli_main(["info", str(folder), "--json"]) == 0
    assert "integrity" not in json.loads(capsys.readouterr().out)


def test_info_does_not_import_torch(library_dir: Path) -> None:
    code = (
        "import sys\n"
        "from fabricsearch.cli import main\n"
        f"assert main(['info', {str(library_dir)!r}]) == 0\n"
        "assert 'torch' not in sys.modules, 'info imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
