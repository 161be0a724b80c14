"""Issue 22: the feature sketch, the second candidate source. A re-photographed library fabric
whose Hamming rank is beyond the candidate depth R is still found first through the sketch; a
missing or foreign sketch falls back to Hamming-only candidates; encoding writes the sketch, the
step before a query extends it as images arrive and a search writes nothing; re-ranking a kept
query still equals a full search. Tiny, seeded, generated fabrics on the shipped model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabricsearch import search as search_mod
from fabricsearch import sketch as sketch_mod
from fabricsearch.catalogue import Library
from fabricsearch.search import Searcher, SearchFilters, SearchResult
from fabricsearch.synth import write_dataset


def _library(root: Path, count: int) -> Path:
    from fabricsearch.workflows import create_library, import_and_encode

    labels = write_dataset(root / "photos", count=count, seed=22, size=64)
    lib = create_library(root / "lib")
    try:
        if lib.active_model() is None:
            pytest.skip("no shipped model (efficientnet-lite0 not installed)")
        import_and_encode(lib, root / "photos", labels_csv=labels, workers=1)
    finally:
        lib.close()
    return root / "lib"


@pytest.fixture(scope="module")
def library_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _library(tmp_path_factory.mktemp("sketch"), 48)


def _sketch_files(lib: Library) -> list[Path]:
    return sorted(lib.indexes_dir.glob("sketch-*"))


def _rephotographed(path: Path) -> np.ndarray:
    """The library photo under a camera's warmer white balance and a little blur."""
    from fabricsearch.imaging import load_rgb

    q = cv2.GaussianBlur(load_rgb(path), (0, 0), 0.8).astype(np.float64)
    return np.clip(q * [1.1, 1.0, 0.9], 0, 255).astype(np.uint8)


def test_encoding_writes_a_sketch_of_every_feature(library_path: Path) -> None:
    with Library.open(library_path) as lib:
        s = Searcher(lib)
        st = s._ensure()
        name = sketch_mod.feature_version(st.method.backbone)
        sk = sketch_mod.open_sketch(lib.indexes_dir, name)
        assert sk is not None
        assert sorted(sk.ids.tolist()) == lib.image_ids()
        assert sk.rows.shape == (len(sk), sk.dim)
        assert 0 < sk.dim <= sketch_mod.SKETCH_DIM
        assert np.allclose(np.linalg.norm(sk.rows, axis=1), 1.0, atol=1e-4)
        # A row is the projection of the image's cached feature.
        feats = s._feature_store(st).get([st.shas[0]], views=False)
        row = int(np.flatnonzero(sk.ids == st.ids[0])[0])
        assert np.allclose(sk.project(feats)[0], sk.rows[row], atol=1e-5)


def test_the_sketch_finds_the_fabric_beyond_the_hamming_depth(
    library_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """R = 1: the Hamming stage holds one candidate, not the original; the sketch's one
    candidate is the original, which then comes first. Without the sketch it is not found."""
    monkeypatch.setattr(search_mod, "RERANK_DEPTH", 1)
    monkeypatch.setattr(search_mod, "SKETCH_DEPTH", 1)
    with Library.open(library_path) as lib:
        s = Searcher(lib)
        st = s._ensure()
        sk = sketch_mod.open_sketch(lib.indexes_dir, sketch_mod.feature_version(st.method.backbone))
        assert sk is not None
        found = None
        for rec in lib.images():
            query = _rephotographed(rec.path)
            state = s.prepare(query)
            _d, order = st.index.search(state.code, len(st.ids))
            hamming_rank = int(np.flatnonzero(order[0] == rec.id)[0]) + 1
            sc = sk.scores(state.feature)
            sketch_rank = int((sc > sc[np.flatnonzero(sk.ids == rec.id)[0]]).sum()) + 1
            cos = s._feature_cosines(st, np.arange(len(st.ids)), state.feature)
            assert cos is not None
            row = int(np.searchsorted(st.ids, rec.id))
            if hamming_rank > 1 and sketch_rank == 1 and (cos > cos[row]).sum() == 0:
                found = (rec.id, query)
                break
        assert found is not None, "no re-photographed fabric lost by the Hamming top 1"
        target, query = found
        res = s.search(query, k=1)
        assert res.hits[0].image_id == target
        assert "sketch" in res.elapsed_ms
        # The re-rank of the kept query agrees.
        assert s.rerank(res.state, k=1, balance=0.5).hits[0].image_id == target

        # A missing sketch: Hamming candidates only, the original is not among them.
        for f in _sketch_files(lib):
            if f.suffix != ".lock":
                f.unlink()
        plain = Searcher(lib).search(query, k=1)
        assert plain.hits[0].image_id != target
        assert "sketch" not in plain.elapsed_ms
        # The encoding step fits it again (the other tests use this library).
        search_mod.update_sketch(lib, st.method)
        assert Searcher(lib).search(query, k=1).hits[0].image_id == target


def test_a_foreign_or_damaged_sketch_falls_back(library_path: Path) -> None:
    with Library.open(library_path) as lib:
        query = lib.images()[3].path
        meta = next(p for p in _sketch_files(lib) if p.suffix == ".json")
        good = meta.read_text()
        with_sketch = Searcher(lib).search(query, k=5)
        assert "sketch" in with_sketch.elapsed_ms
        for damage in (
            json.dumps({**json.loads(good), "format": 99}),  # a later version's
            json.dumps({**json.loads(good), "backbone": "another"}),
            json.dumps({**json.loads(good), "fit": "gone"}),  # its files missing
            "{not json",
        ):
            meta.write_text(damage)
            res = Searcher(lib).search(query, k=5)
            assert "sketch" not in res.elapsed_ms
            assert res.hits[0].image_id == with_sketch.hits[0].image_id  # the file itself
        # The next encoding step writes a good sketch again.
        meta.write_text("{not json")
        s = Searcher(lib)
        search_mod.update_sketch(lib, s._ensure().method)
        assert "sketch" in Searcher(lib).search(query, k=5).elapsed_ms


def test_the_sketch_is_extended_as_images_arrive_and_a_search_writes_nothing(
    tmp_path: Path,
) -> None:
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.services.search import ensure_codes

    path = _library(tmp_path, 8)
    more = tmp_path / "more"
    write_dataset(more, count=6, seed=23, size=64)
    with Library.open(path) as lib:
        s = Searcher(lib)
        st = s._ensure()
        name = sketch_mod.feature_version(st.method.backbone)
        before = sketch_mod.open_sketch(lib.indexes_dir, name)
        assert before is not None
        # A writer killed mid-append left part of a row and part of a key: trimmed on the next
        # write, so the rows appended after it line up with their keys.
        with open(lib.indexes_dir / f"sketch-{name}-{before.fit}.rows", "ab") as f:
            f.write(b"\0" * 100)
        with open(lib.indexes_dir / f"sketch-{name}-{before.fit}.keys", "ab") as f:
            f.write(b"\1" * 5)
        import_folder(lib, more, workers=0)
        new_ids = sorted(set(lib.image_ids()) - set(before.ids.tolist()))
        assert new_ids
        stamp = sketch_mod.stamp(lib.indexes_dir, name)
        s.invalidate()
        s.search(lib.images()[0].path, k=3)
        assert sketch_mod.stamp(lib.indexes_dir, name) == stamp  # the query wrote nothing
        assert ensure_codes(s) == 0  # the step before a query encodes and extends
        after = sketch_mod.open_sketch(lib.indexes_dir, name)
        assert after is not None
        assert after.fit == before.fit  # extended, not refitted
        assert set(new_ids) <= set(after.ids.tolist())
        assert sorted(set(after.ids.tolist())) == lib.image_ids()
        row = int(np.flatnonzero(after.ids == new_ids[-1])[0])
        feat = s._feature_store(s._ensure()).get([lib.get(new_ids[-1]).sha256], views=False)
        assert np.allclose(after.project(feat)[0], after.rows[row], atol=1e-5)
        # A new photo is found through the sketch's rows.
        res = Searcher(lib).search(lib.get(new_ids[-1]).path, k=3)
        assert "sketch" in res.elapsed_ms
        assert res.hits[0].exact
        assert res.hits[0].image_id == new_ids[-1]

        # An import that encodes appends the new photos' rows itself (only theirs: it does not
        # read every row of the catalogue for it).
        from fabricsearch.workflows import import_and_encode

        write_dataset(tmp_path / "third", count=4, seed=24, size=64)
        known = set(lib.image_ids())
        import_and_encode(lib, tmp_path / "third", workers=1)
        latest = sketch_mod.open_sketch(lib.indexes_dir, name)
        assert latest is not None
        assert latest.fit == before.fit
        assert set(lib.image_ids()) - known <= set(latest.ids.tolist())


def _same(a: SearchResult, b: SearchResult) -> None:
    assert [h.to_json() for h in a.hits] == [h.to_json() for h in b.hits]


def test_rerank_with_both_sources_equals_a_full_search(
    library_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Shallow depths so that the two sources differ and filters need fresh lists."""
    monkeypatch.setattr(search_mod, "RERANK_DEPTH", 3)
    monkeypatch.setattr(search_mod, "SKETCH_DEPTH", 4)
    with Library.open(library_path) as lib:
        recs = lib.images()
        major = next(r.coarse for r in recs if r.coarse).split("/")[0]
        query = _rephotographed(recs[7].path)
        s = Searcher(lib)
        state = s.search(query, k=2).state
        assert state is not None
        kept = state._sketch_lists[None]
        assert len(kept) == 4
        assert not set(kept) <= set(state._lists[None].ids.tolist())
        full = Searcher(lib)
        for filters in (
            None,
            SearchFilters(coarse_major=major),
            SearchFilters(contains_colour="red"),
            SearchFilters(image_ids=frozenset(r.id for r in recs[::5])),
            SearchFilters(image_ids=frozenset()),
        ):
            for k in (1, 3, 12):
                for balance in (0.0, 0.5, 1.0):
                    _same(
                        s.rerank(state, k=k, filters=filters, balance=balance),
                        full.search(query, k=k, filters=filters, balance=balance),
                    )


def test_match_keeps_only_current_rows() -> None:
    """A row counts for an image when its id and content-hash head are the image's now; of
    several, the newest; rows of removed images are ignored."""
    d = sketch_mod.SKETCH_DIM
    sk = sketch_mod.Sketch(
        backbone="b",
        fit="f",
        fitted_on=4,
        mean=np.zeros(8, np.float32),
        proj=np.zeros((8, d), np.float32),
        rows=np.zeros((5, d), np.float32),
        ids=np.array([3, 1, 2, 3, 9], np.int64),
        heads=np.array([30, 10, 99, 31, 90], np.uint64),
    )
    lib_ids = np.array([1, 2, 3, 4], np.int64)
    lib_heads = np.array([10, 20, 31, 40], np.uint64)
    sk_rows, lib_rows = sketch_mod.match(sk, lib_ids, lib_heads)
    # id 1 → row 1; id 2 changed content (head 99 ≠ 20): none; id 3 → its newest row 3;
    # id 4 has no row; row 4 (id 9) is of a removed image.
    assert sk_rows.tolist() == [1, 3]
    assert lib_rows.tolist() == [0, 2]


def test_fit_projection_whitens(rng: np.random.Generator) -> None:
    x = rng.standard_normal((300, 40)) @ rng.standard_normal((40, 40))
    mean, proj = sketch_mod.fit_projection(x, dim=16)
    assert proj.shape == (40, 16)
    f = x / np.linalg.norm(x, axis=1, keepdims=True)
    y = (f - mean) @ proj
    assert np.allclose(y.T @ y, np.eye(16), atol=1e-3)  # unit variance, uncorrelated


def test_kth_largest_agrees_with_a_sort(rng: np.random.Generator) -> None:
    """The sketch's top-S threshold (sampled pre-cut of a large array) against a full sort,
    with and without ties."""
    for trial in range(60):
        n = int(rng.integers(2, 200_000))
        k = int(rng.integers(1, min(n, 300)))
        v = rng.standard_normal(n).astype(np.float32)
        if trial % 3 == 0:
            v = np.round(v, 1)  # many ties
        if trial % 7 == 0:
            v[:] = 0.25  # all tied
        assert search_mod._kth_largest(v, k) == float(np.sort(v)[::-1][k - 1])
