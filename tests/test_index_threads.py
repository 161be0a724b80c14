"""Issue 17 item 16: the Hamming index sets faiss's thread count per search deliberately
(one thread for a single query) instead of faiss's default of one per core."""

from __future__ import annotations

import numpy as np
import pytest

from fabricsearch import index as index_mod
from fabricsearch.index import MAX_SEARCH_THREADS, HammingIndex, search_threads

faiss = pytest.importorskip("faiss")


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """faiss's thread count inside each faiss kernel call."""
    calls: list[int] = []
    for name in ("_faiss_knn_hc", "_faiss_knn_mc", "_faiss_range"):
        real = getattr(index_mod, name)

        def spy(*args, _real=real, **kw):  # type: ignore[no-untyped-def]
            calls.append(faiss.omp_get_max_threads())
            return _real(*args, **kw)

        monkeypatch.setattr(index_mod, name, spy)
    return calls


@pytest.mark.parametrize("bits", [64, 256])
def test_single_query_runs_on_one_thread_and_restores(seen: list[int], bits: int) -> None:
    rng = np.random.default_rng(0)
    idx = HammingIndex(bits, engine="faiss")
    idx.add(np.arange(500), rng.integers(0, 256, (500, bits // 8), dtype=np.uint8))
    default = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(3)
    try:
        idx.search(rng.integers(0, 256, bits // 8, dtype=np.uint8), 10)
        idx.range_search(rng.integers(0, 256, bits // 8, dtype=np.uint8), bits // 3)
        assert seen
        assert set(seen) == {1}
        assert faiss.omp_get_max_threads() == 3  # the caller's setting is back
        seen.clear()
        idx.search(rng.integers(0, 256, (20, bits // 8), dtype=np.uint8), 10)
        assert seen
        assert set(seen) == {search_threads(20)}
    finally:
        faiss.omp_set_num_threads(default)


def test_thread_rule() -> None:
    assert search_threads(1) == 1
    assert 1 <= search_threads(1000) <= MAX_SEARCH_THREADS
    assert search_threads(2) <= 2
