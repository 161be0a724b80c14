"""The query pipeline end to end on a tiny generated library with a tiny trained model."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import WORK_SIDE, import_folder
from fabricsearch.codes import hamming_packed
from fabricsearch.config import TrainConfig
from fabricsearch.search import (
    QUERY_MAX_SIDE,
    QueryLabels,
    Searcher,
    SearchError,
    SearchFilters,
    encode_missing,
    index_file,
)
from fabricsearch.services.search import ensure_codes
from fabricsearch.synth import write_dataset

TINY = {"width": 8}


@pytest.fixture(scope="module")
def trained_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fabricsearch.hashing.train import train_library

    root = tmp_path_factory.mktemp("searchlib")
    photos = root / "photos"
    labels = write_dataset(photos, count=48, seed=3, size=64)
    lib_dir = root / "lib"
    with Library.create(lib_dir) as lib:
        import_folder(lib, photos, labels_csv=labels, workers=0)
        cfg = TrainConfig(bits=32, input_size=32, epochs=1, batch_size=8, patience=0)
        train_library(lib, cfg)
    return lib_dir


def test_query_side_matches_import_decode() -> None:
    # The query palette must be measured on the same decode as library palettes.
    assert QUERY_MAX_SIDE == WORK_SIDE


def test_image_in_library_comes_first(trained_library: Path) -> None:
    with Library.open(trained_library) as lib:
        searcher = Searcher(lib)
        for rec in lib.images()[:5]:
            result = searcher.search(rec.path, k=5)
            assert result.hits[0].image_id == rec.id
            assert result.hits[0].exact
            assert result.hits[0].hamming == 0
            assert len(result.hits) == 5
            assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]


def test_hamming_order_matches_oracle_without_rerank(trained_library: Path) -> None:
    with Library.open(trained_library) as lib:
        version = lib.active_model().version
        ids, packed = lib.load_codes(version)
        rec = lib.images()[7]
        query_row = int(np.flatnonzero(ids == rec.id)[0])
        # A copy of the file under another name: same pixels, not recognised as "exact".
        result = Searcher(lib).search(rec.path, k=10, rerank=False)
        d = hamming_packed(packed[query_row], packed)[0]
        order = np.lexsort((ids, d))[:10]
        got = [h.image_id for h in result.hits]
        # The exact file is promoted first; the rest follow (distance, id).
        rest = [int(i) for i in ids[order] if int(i) != rec.id]
        assert got[0] == rec.id
        assert got[1:] == rest[: len(got) - 1]
        assert [h.hamming for h in result.hits[1:]] == sorted(h.hamming for h in result.hits[1:])


def test_rerank_scores_sorted_and_breakdown_explains(trained_library: Path) -> None:
    with Library.open(trained_library) as lib:
        rec = lib.images()[3]
        img = cv2.cvtColor(cv2.imread(str(rec.path)), cv2.COLOR_BGR2RGB)
        result = Searcher(lib).search(img, k=8, rerank=True)
        scores = [h.score for h in result.hits]
        assert scores == sorted(scores, reverse=True)
        predicted = result.predicted
        for h in result.hits:
            assert set(h.breakdown) == {"colour", "coarse", "fine", "tightness"}
            assert 0.0 <= h.breakdown["colour"] <= 1.0
            if predicted is None or predicted["coarse"] is None:
                # The query's texture labels are unknown, so only colour explains the match.
                assert h.breakdown["coarse"] is None
                assert h.similarity == pytest.approx(h.breakdown["colour"], abs=1e-6)
            elif h.coarse == predicted["coarse"]:
                # The predicted label stands in for the unknown one and explains the match.
                assert h.breakdown["coarse"] == pytest.approx(1.0)


def test_query_labels_enter_the_breakdown(trained_library: Path) -> None:
    with Library.open(trained_library) as lib:
        rec = next(r for r in lib.images() if r.coarse and r.fine)
        result = Searcher(lib).search(
            rec.path, k=5, query_labels=QueryLabels(rec.coarse, rec.fine, rec.tightness)
        )
        top = result.hits[0]
        assert top.image_id == rec.id
        assert top.breakdown["coarse"] == pytest.approx(1.0)
        assert top.breakdown["fine"] == pytest.approx(1.0)
        assert top.similarity == pytest.approx(1.0, abs=1e-5)


def test_filters_restrict_results(trained_library: Path) -> None:
    with Library.open(trained_library) as lib:
        rec = next(r for r in lib.images() if r.coarse and "/" in r.coarse)
        major = rec.coarse.split("/")[0]
        s = Searcher(lib)
        res = s.search(rec.path, k=50, filters=SearchFilters(coarse_major=major))
        assert res.hits
        assert all(h.coarse and h.coarse.split("/")[0] == major for h in res.hits)
        res = s.search(rec.path, k=50, filters=SearchFilters(coarse_minor=rec.coarse))
        assert {h.coarse for h in res.hits} == {rec.coarse}
        res = s.search(rec.path, k=50, filters=SearchFilters(tightness_min=60, tightness_max=80))
        assert all(60 <= h.tightness <= 80 for h in res.hits)
        with pytest.raises(SearchError, match="unknown colour"):
            s.search(rec.path, k=5, filters=SearchFilters(contains_colour="chartreuse"))


@pytest.mark.parametrize(
    ("name", "payload", "match"),
    [
        ("empty.jpg", b"", "empty|zero|no data|cannot|not"),
        ("text.jpg", b"this is not an image", "not|cannot|unrecognised|unknown|identify"),
    ],
)
def test_bad_query_files_give_clear_errors(
    trained_library: Path, tmp_path: Path, name: str, payload: bytes, match: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(payload)
    with Library.open(trained_library) as lib, pytest.raises(SearchError, match=match):
        Searcher(lib).search(bad)


def test_tiny_missing_and_huge_queries(trained_library: Path, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    cv2.imwrite(str(tiny), np.zeros((8, 8, 3), np.uint8))
    huge = tmp_path / "huge.png"
    # A PNG header claiming 100000 × 100000 pixels with no data behind it.
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    huge.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", len(ihdr))
        + chunk
        + struct.pack(">I", zlib.crc32(chunk) & 0xFFFFFFFF)
    )
    with Library.open(trained_library) as lib:
        s = Searcher(lib)
        with pytest.raises(SearchError, match="too small"):
            s.search(tiny)
        with pytest.raises(SearchError, match="no such file"):
            s.search(tmp_path / "missing.jpg")
        with pytest.raises(SearchError):
            s.search(huge)


def test_index_rebuilt_when_file_is_corrupt(trained_library: Path, tmp_path: Path) -> None:
    copy = tmp_path / "lib"
    shutil.copytree(trained_library, copy)
    with Library.open(copy) as lib:
        rec = lib.images()[0]
        first = Searcher(lib).search(rec.path, k=5)
        path = index_file(lib, lib.active_model().version)
        assert path.exists()
        path.write_bytes(path.read_bytes()[:20])  # truncated
        again = Searcher(lib).search(rec.path, k=5)
        assert [h.image_id for h in again.hits] == [h.image_id for h in first.hits]


def test_new_images_are_encoded_and_found(trained_library: Path, tmp_path: Path) -> None:
    copy = tmp_path / "lib"
    shutil.copytree(trained_library, copy)
    extra = tmp_path / "extra"
    write_dataset(extra, count=4, seed=99, size=64)
    with Library.open(copy) as lib:
        before = len(lib.load_codes(lib.active_model().version)[0])
        import_folder(lib, extra, workers=0)
        assert encode_missing(lib) == 4
        assert encode_missing(lib) == 0
        assert len(lib.load_codes(lib.active_model().version)[0]) == before + 4
        new = lib.find_by_path(next(extra.rglob("*.jpg")))
        assert Searcher(lib).search(new.path, k=3).hits[0].image_id == new.id


def test_cli_search_json(trained_library: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fabricsearch.cli import main

    with Library.open(trained_library) as lib:
        rec = lib.images()[2]
    assert main(["search", str(trained_library), str(rec.path), "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["query"]["path"] == str(rec.path)
    assert out["model"]
    assert len(out["results"]) == 3
    assert out["results"][0]["path"] == str(rec.path)
    assert set(out["results"][0]["breakdown"]) == {"colour", "coarse", "fine", "tightness"}


def test_cli_search_without_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fabricsearch.cli import main

    Library.create(tmp_path / "empty").close()
    img = tmp_path / "q.png"
    cv2.imwrite(str(img), np.full((64, 64, 3), 120, np.uint8))
    assert main(["search", str(tmp_path / "empty"), str(img)]) == 1
    assert "no search model" in capsys.readouterr().err


def test_index_updates_incrementally_when_images_arrive(
    trained_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = tmp_path / "lib"
    shutil.copytree(trained_library, copy)
    full_loads: list[str] = []
    real = Searcher._full_load

    def counting(self, info):  # type: ignore[no-untyped-def]
        full_loads.append(info.version)
        return real(self, info)

    monkeypatch.setattr(Searcher, "_full_load", counting)
    with Library.open(copy) as lib, Library.open(copy) as other:  # another client
        searcher = Searcher(lib)
        first = lib.images()[0]
        assert searcher.search(first.path, k=3).hits[0].image_id == first.id
        assert len(full_loads) == 1
        for seed in (101, 102):
            extra = tmp_path / f"extra{seed}"
            write_dataset(extra, count=2, seed=seed, size=64)
            import_folder(other, extra, workers=0)  # no codes yet
            assert ensure_codes(searcher) == 0  # encoded by the step before a query
            for photo in sorted(extra.rglob("*.jpg")):
                new = lib.find_by_path(photo)
                hit = searcher.search(new.path, k=3).hits[0]
                assert (hit.image_id, hit.exact) == (new.id, True)
        assert len(full_loads) == 1  # the new images joined the open index
        gone = lib.find_by_path(next((tmp_path / "extra101").rglob("*.jpg")))
        other.remove_paths([gone.path])
        hits = searcher.search(first.path, k=100).hits
        assert gone.id not in {h.image_id for h in hits}
        assert len(hits) == lib.count()
        assert len(full_loads) == 1
        searcher.invalidate()  # what a new active model does
        searcher.search(first.path, k=3)
        assert len(full_loads) == 2
