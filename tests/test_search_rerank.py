"""Issue 22, instant re-ranking: a kept query (`QueryState`) re-ranks for another balance, top N
or filter without decoding or running the network, and gives exactly what a full search with
the same settings gives. Tiny, seeded, generated fabrics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fabricsearch import search as search_mod
from fabricsearch.catalogue import Library
from fabricsearch.search import (
    Searcher,
    SearchError,
    SearchFilters,
    SearchResult,
    StaleQueryError,
)
from fabricsearch.synth import write_dataset

#: A shallow re-rank depth, so the 48-image library is larger than the candidate list and the
#: filters need the fresh Hamming stage (the library's real depth is 200).
DEPTH = 10


@pytest.fixture(scope="module", params=["features", "trained"])
def library_path(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 labelled generated fabrics; "features": the shipped model on the pretrained backbone
    (feature cosines, same-fabric marks), "trained": a small trained model (predicted labels
    where it has heads, no features)."""
    from fabricsearch.catalogue.importer import import_folder

    root = tmp_path_factory.mktemp(f"rerank_{request.param}")
    labels = write_dataset(root / "photos", count=48, seed=22, size=64)
    if request.param == "features":
        from fabricsearch.workflows import create_library, import_and_encode

        lib = create_library(root / "lib")
        try:
            if lib.active_model() is None:
                pytest.skip("no shipped model (efficientnet-lite0 not installed)")
            import_and_encode(lib, root / "photos", labels_csv=labels, workers=1)
        finally:
            lib.close()
    else:
        from fabricsearch.config import TrainConfig
        from fabricsearch.hashing.train import train_library

        with Library.create(root / "lib") as lib:
            import_folder(lib, root / "photos", labels_csv=labels, workers=0)
            cfg = TrainConfig(bits=32, input_size=32, epochs=1, batch_size=8, patience=0)
            train_library(lib, cfg)
    return root / "lib"


def _same(a: SearchResult, b: SearchResult) -> None:
    assert [(h.image_id, h.score) for h in a.hits] == [(h.image_id, h.score) for h in b.hits]
    assert [h.to_json() for h in a.hits] == [h.to_json() for h in b.hits]
    assert a.predicted == b.predicted
    assert a.reranked == b.reranked


def _filters(lib: Library) -> list[SearchFilters | None]:
    recs = lib.images()
    major = next(r.coarse for r in recs if r.coarse).split("/")[0]
    colour_name = "red"
    return [
        None,
        SearchFilters(coarse_major=major),
        SearchFilters(contains_colour=colour_name),
        SearchFilters(tightness_min=30.0, tightness_max=80.0),
        SearchFilters(image_ids=frozenset(r.id for r in recs[::7])),  # narrow: 7 images
        SearchFilters(image_ids=frozenset()),  # nothing passes
    ]


@pytest.mark.parametrize("rerank", [True, False])
def test_rerank_equals_a_full_search(
    library_path: Path, monkeypatch: pytest.MonkeyPatch, rerank: bool
) -> None:
    monkeypatch.setattr(search_mod, "RERANK_DEPTH", DEPTH)
    with Library.open(library_path) as lib:
        s = Searcher(lib)
        query = lib.images()[5].path
        first = s.search(query, k=5, rerank=rerank)
        state = first.state
        assert state is not None
        full = Searcher(lib)  # a searcher of its own: nothing kept from the re-ranks
        for filters in _filters(lib):
            for k in (3, DEPTH, 25, 60):
                for balance in (0.0, 0.3, 0.5, 1.0):
                    again = s.rerank(state, k=k, filters=filters, balance=balance)
                    expected = full.search(
                        query, k=k, filters=filters, balance=balance, rerank=rerank
                    )
                    _same(again, expected)
        # A crop is kept the same way.
        crop = (0, 0, 40, 40)
        region = s.search(query, k=8, crop=crop, rerank=rerank).state
        for balance in (0.0, 1.0):
            _same(
                s.rerank(region, k=12, balance=balance),
                full.search(query, k=12, crop=crop, balance=balance, rerank=rerank),
            )


def test_rerank_runs_neither_decoder_nor_network(
    library_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch import colour, imaging

    monkeypatch.setattr(search_mod, "RERANK_DEPTH", DEPTH)
    with Library.open(library_path) as lib:
        s = Searcher(lib)
        recs = lib.images()
        query = recs[9].path
        state = s.search(query, k=5).state
        expected = {
            (b, k): Searcher(lib).search(query, k=k, balance=b, filters=f)
            for b in (0.0, 0.7)
            for k, f in ((5, None), (30, SearchFilters(image_ids=frozenset(r.id for r in recs))))
        }

        def forbidden(*_a: object, **_k: object) -> None:
            raise AssertionError("re-ranking must not decode or run the network")

        for name in ("_load_query", "_encode_query"):
            monkeypatch.setattr(search_mod, name, forbidden)
        monkeypatch.setattr(imaging, "decode", forbidden)
        monkeypatch.setattr(colour, "quantise", forbidden)
        monkeypatch.setattr(colour, "camera_palettes", forbidden)
        import torch

        monkeypatch.setattr(torch.nn.Module, "__call__", forbidden)
        for (b, k), exp in expected.items():
            f = None if k == 5 else SearchFilters(image_ids=frozenset(r.id for r in recs))
            got = s.rerank(state, k=k, balance=b, filters=f)
            _same(got, exp)
            assert "decode" not in got.elapsed_ms
            assert "encode" not in got.elapsed_ms
        with pytest.raises(AssertionError, match="must not decode"):
            s.search(query, k=5)  # the full search does decode


def test_a_kept_query_follows_library_changes_and_refuses_another_model(
    library_path: Path,
) -> None:
    with Library.open(library_path) as lib:
        s = Searcher(lib)
        query = lib.images()[2].path
        state = s.search(query, k=10).state
        assert state is not None
        s.invalidate_labels()  # labels changed: the kept components are computed again
        _same(s.rerank(state, k=10, balance=0.2), Searcher(lib).search(query, k=10, balance=0.2))
        with pytest.raises(SearchError, match="between 0 and 1"):
            s.rerank(state, balance=1.5)
        with pytest.raises(SearchError, match="at least 1"):
            s.rerank(state, k=0)
        state.model = "another-model"
        with pytest.raises(StaleQueryError, match="search again"):
            s.rerank(state, k=10)


def test_rerank_times_are_milliseconds(library_path: Path) -> None:
    with Library.open(library_path) as lib:
        s = Searcher(lib)
        result = s.search(lib.images()[0].path, k=20)
        again = s.rerank(result.state, k=20, balance=0.9)
        assert set(again.elapsed_ms) >= {"rerank", "total"}
        assert again.elapsed_ms["total"] < result.elapsed_ms["total"]
        assert {"decode", "encode", "search", "rerank", "total"} <= set(result.elapsed_ms)
        assert np.isfinite(again.elapsed_ms["total"])


def test_rerank_depth_grows_with_the_library() -> None:
    """The candidate depth keeps the measured share of the library (the original of a
    re-photographed fabric lies within it), never below the floor nor above the bound."""
    floor, share, bound = search_mod.RERANK_DEPTH, search_mod.RERANK_SHARE, search_mod.RERANK_MAX
    assert search_mod.rerank_depth(600) == floor
    assert search_mod.rerank_depth(100_000) == max(floor, int(share * 100_000))
    assert search_mod.rerank_depth(100_000) > floor
    assert search_mod.rerank_depth(1_000_000) == min(bound, int(share * 1_000_000))
    assert search_mod.rerank_depth(50_000_000) == bound
    assert search_mod.rerank_depth(600, k=500) == 500
    # With a feature sketch (a second candidate source) the Hamming depth stays the floor.
    assert search_mod.rerank_depth(1_000_000, sketch=True) == floor
    assert search_mod.rerank_depth(1_000_000, k=500, sketch=True) == max(floor, 500)


def test_search_reranks_the_share_of_the_library(
    library_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`search` re-ranks rerank_depth(library size) candidates: with the share raised so that it
    exceeds the floor, every image of the small library is a Hamming candidate — where the
    library has no feature sketch; with one, the Hamming depth stays the floor."""
    monkeypatch.setattr(search_mod, "RERANK_DEPTH", 3)
    with Library.open(library_path) as lib:
        n = len(lib.images())
        small = Searcher(lib).search(lib.images()[2].path, k=3).state
        assert small is not None
        assert len(small._lists[None].ids) == 3
        monkeypatch.setattr(search_mod, "RERANK_SHARE", 1.0)
        with_sketch = Searcher(lib)
        state = with_sketch.search(lib.images()[2].path, k=3).state
        assert state is not None
        has_sketch = with_sketch._sketch_source(with_sketch._ensure()) is not None
        assert has_sketch == with_sketch._ensure().method.on_features
        assert len(state._lists[None].ids) == (3 if has_sketch else n)
        monkeypatch.setattr(Searcher, "_sketch_source", lambda self, st: None)
        state = Searcher(lib).search(lib.images()[2].path, k=3).state
        assert state is not None
        assert len(state._lists[None].ids) == n
