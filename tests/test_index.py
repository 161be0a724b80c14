"""HammingIndex against the brute-force numpy oracle (XOR + popcount), and its file format."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import fabricsearch.index as fi
from fabricsearch import codes as C
from fabricsearch.index import HammingIndex, IndexFileError, index_path

ENGINES = ["faiss", "numpy"] if fi.faiss is not None else ["numpy"]


def oracle(
    queries: np.ndarray, ids: np.ndarray, packed: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k by (distance, id) from codes.hamming_packed."""
    dist = C.hamming_packed(queries, packed)
    kk = min(k, len(ids))
    out_d = np.empty((len(queries), kk), np.int32)
    out_i = np.empty((len(queries), kk), np.int64)
    for qi in range(len(queries)):
        order = np.lexsort((ids, dist[qi]))[:kk]
        out_d[qi], out_i[qi] = dist[qi, order], ids[order]
    return out_d, out_i


def tied_data(
    rng: np.random.Generator, n: int, bits: int, pool: int
) -> tuple[np.ndarray, np.ndarray]:
    """n codes drawn from a small pool (so distances repeat a lot), with sparse shuffled ids."""
    base = rng.integers(0, 256, (pool, bits // 8), dtype=np.uint8)
    packed = base[rng.integers(0, pool, n)]
    ids = rng.choice(50 * n, size=n, replace=False).astype(np.int64)
    return ids, packed


def build(ids: np.ndarray, packed: np.ndarray, bits: int, engine: str) -> HammingIndex:
    index = HammingIndex(bits, engine=engine)
    index.add(ids, packed)
    return index


# ---------------------------------------------------------------- search vs oracle


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("bits", [8, 48, 64, 256])
@pytest.mark.parametrize("pool", [3, 20, 10_000])
def test_search_matches_oracle(rng, engine, bits, pool):
    ids, packed = tied_data(rng, 400, bits, pool)
    queries = np.concatenate(
        [packed[:3], rng.integers(0, 256, (3, bits // 8), dtype=np.uint8)]  # exact hits + random
    )
    index = build(ids, packed, bits, engine)
    for k in (1, 7, 50, 399, 400, 1000):
        d, i = index.search(queries, k)
        want_d, want_i = oracle(queries, ids, packed, k)
        assert d.dtype == np.int32
        assert i.dtype == np.int64
        np.testing.assert_array_equal(d, want_d)
        np.testing.assert_array_equal(i, want_i)
        # one query at a time, (B,) form, gives the same rows
        d1, i1 = index.search(queries[2], k)
        np.testing.assert_array_equal(i1[0], want_i[2])
        np.testing.assert_array_equal(d1[0], want_d[2])


@pytest.mark.parametrize("engine", ENGINES)
def test_range_search_matches_oracle(rng, engine):
    bits = 64
    ids, packed = tied_data(rng, 300, bits, 6)
    index = build(ids, packed, bits, engine)
    q = rng.integers(0, 256, bits // 8, dtype=np.uint8)
    dist = C.hamming_packed(q, packed)[0]
    for radius in (0, int(dist.min()), int(np.median(dist)), bits):
        d, i = index.range_search(q, radius)
        keep = dist <= radius  # inclusive radius
        order = np.lexsort((ids[keep], dist[keep]))
        np.testing.assert_array_equal(i, ids[keep][order])
        np.testing.assert_array_equal(d, dist[keep][order])
        assert d.dtype == np.int32
        assert i.dtype == np.int64
    assert index.range_search(q, -1)[1].size == 0
    with pytest.raises(ValueError, match="single query"):
        index.range_search(packed[:2], 3)


@pytest.mark.skipif(fi.faiss is None, reason="faiss not installed")
def test_tie_overflow_falls_back_to_range_search(rng, monkeypatch):
    """With no over-fetch, ties at the k-th distance overflow what faiss returns; the range pass
    must then produce the oracle's answer."""
    ids, packed = tied_data(rng, 500, 64, 4)
    index = build(ids, packed, 64, "faiss")
    calls = []
    real = fi._faiss_range
    monkeypatch.setattr(fi, "_faiss_range", lambda *a: calls.append(1) or real(*a))
    queries = rng.integers(0, 256, (4, 8), dtype=np.uint8)
    for k in (5, 130):
        index._excess = 0
        d, i = index.search(queries, k)
        want_d, want_i = oracle(queries, ids, packed, k)
        np.testing.assert_array_equal(d, want_d)
        np.testing.assert_array_equal(i, want_i)
    assert calls, "the fallback path was not exercised"
    assert index._excess > 0  # it learned to over-fetch


@pytest.mark.skipif(fi.faiss is None, reason="faiss not installed")
@pytest.mark.parametrize("bits", [64, 256])
def test_correct_whatever_ties_faiss_keeps(rng, monkeypatch, bits):
    """faiss promises the k smallest distances, not which tied rows: feed the index a k-NN that
    keeps the *largest* rows among ties and check the answer is still the oracle's."""

    def adversarial_knn(q, codes, k):
        dist = C.hamming_packed(q, codes)
        order = np.lexsort((-np.arange(codes.shape[0])[None, :].repeat(len(q), 0), dist), axis=1)
        rows = order[:, :k]
        shuffle = rng.permuted(np.arange(k)[None, :].repeat(len(q), 0), axis=1)
        rows = np.take_along_axis(rows, shuffle, 1)
        return np.take_along_axis(dist, rows, 1).astype(np.int32), rows.astype(np.int64)

    monkeypatch.setattr(fi, "_faiss_knn_mc", adversarial_knn)
    monkeypatch.setattr(fi, "_faiss_knn_hc", adversarial_knn)
    ids, packed = tied_data(rng, 300, bits, 5)
    index = build(ids, packed, bits, "faiss")
    queries = rng.integers(0, 256, (3, bits // 8), dtype=np.uint8)
    for k in (1, 10, 100):
        d, i = index.search(queries, k)
        want_d, want_i = oracle(queries, ids, packed, k)
        np.testing.assert_array_equal(d, want_d)
        np.testing.assert_array_equal(i, want_i)


def test_engines_agree(rng):
    if fi.faiss is None:
        pytest.skip("faiss not installed")
    ids, packed = tied_data(rng, 1000, 128, 50)
    a, b = build(ids, packed, 128, "faiss"), build(ids, packed, 128, "numpy")
    queries = rng.integers(0, 256, (10, 16), dtype=np.uint8)
    for k in (1, 33, 2000):
        for x, y in zip(a.search(queries, k), b.search(queries, k), strict=True):
            np.testing.assert_array_equal(x, y)
    for x, y in zip(a.range_search(queries[0], 60), b.range_search(queries[0], 60), strict=True):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("engine", ENGINES)
def test_empty_index_and_small_k(engine):
    index = HammingIndex(64, engine=engine)
    q = np.zeros((3, 8), np.uint8)
    d, i = index.search(q, 10)
    assert d.shape == (3, 0)
    assert i.shape == (3, 0)
    assert index.range_search(q[0], 64)[0].shape == (0,)
    index.add([5], np.ones((1, 8), np.uint8))
    d, i = index.search(q, 0)
    assert d.shape == (3, 0)
    d, i = index.search(q[0], 10)
    assert d.tolist() == [[8]]
    assert i.tolist() == [[5]]
    with pytest.raises(ValueError, match="k must be"):
        index.search(q, -1)


# ------------------------------------------------------------------- mutation


@pytest.mark.parametrize("engine", ENGINES)
def test_add_remove_update_against_model(rng, engine):
    """A random sequence of adds (some re-adding ids), removals and updates, checked against a
    plain dict model and the oracle after every step."""
    bits = 32
    pool = rng.integers(0, 256, (8, bits // 8), dtype=np.uint8)
    index = HammingIndex(bits, engine=engine)
    model: dict[int, np.ndarray] = {}
    queries = rng.integers(0, 256, (3, bits // 8), dtype=np.uint8)
    for step in range(40):
        op = rng.integers(0, 3)
        if op == 0 or not model:
            new_ids = rng.integers(0, 300, rng.integers(1, 30))
            packed = pool[rng.integers(0, len(pool), len(new_ids))]
            index.add(new_ids, packed)
            for j, c in zip(new_ids.tolist(), packed, strict=True):
                model[j] = c  # repeated ids in one batch: last wins
        elif op == 1:
            drop = rng.integers(0, 320, rng.integers(1, 20))
            removed = index.remove(drop)
            assert removed == len(set(drop.tolist()) & set(model))
            for j in set(drop.tolist()):
                model.pop(j, None)
        else:
            upd = rng.choice(list(model), size=min(5, len(model)), replace=False)
            packed = pool[rng.integers(0, len(pool), len(upd))]
            index.update(upd, packed)
            for j, c in zip(upd.tolist(), packed, strict=True):
                model[j] = c
        want_ids = np.array(sorted(model), np.int64)
        want_codes = np.array([model[j] for j in want_ids], np.uint8).reshape(-1, bits // 8)
        assert len(index) == len(model), step
        np.testing.assert_array_equal(index.ids(), want_ids)
        np.testing.assert_array_equal(index.codes(), want_codes)
        if len(model):
            j = int(want_ids[0])
            assert j in index
            np.testing.assert_array_equal(index.get([j])[0], model[j])
        for k in (1, 10, 500):
            got = index.search(queries, k)
            want = oracle(queries, want_ids, want_codes, k)
            np.testing.assert_array_equal(got[0], want[0])
            np.testing.assert_array_equal(got[1], want[1])
    assert 100_000 not in index
    assert "x" not in index


def test_add_validates_and_exposes_read_only_views(rng):
    index = HammingIndex(64)
    with pytest.raises(ValueError, match="2 ids but 3 codes"):
        index.add([1, 2], np.zeros((3, 8), np.uint8))
    with pytest.raises(ValueError, match=r"shape \(N, 8\)"):
        index.add([1], np.zeros((1, 4), np.uint8))
    with pytest.raises(ValueError, match="must be uint8"):
        index.add([1], np.full((1, 8), 300))
    index.add(np.array([3, 1]), np.array([[1] * 8, [2] * 8]))  # int64 in 0..255 is accepted
    assert index.ids().tolist() == [1, 3]
    assert index.codes()[0].tolist() == [2] * 8
    assert not index.ids().flags.writeable
    assert not index.codes().flags.writeable
    with pytest.raises(KeyError):
        index.get([2])
    assert index.remove([99]) == 0
    assert index.memory_bytes() == 2 * 8 + 2 * 8
    with pytest.raises(ValueError, match="multiple of 8"):
        HammingIndex(12)


def test_pm1_and_packed_forms_agree(rng):
    for bits in (8, 64, 256):
        pm1 = np.where(rng.random((40, bits)) < 0.5, -1.0, 1.0).astype(np.float32)
        packed = C.pack_codes(pm1)
        np.testing.assert_array_equal(C.unpack_codes(packed, bits), pm1)
        want = C.hamming_pm1(pm1[:5], pm1)
        np.testing.assert_array_equal(C.hamming_packed(packed[:5], packed), want)
        index = build(np.arange(40), packed, bits, ENGINES[0])
        d, i = index.search(packed[:5], 40)
        np.testing.assert_array_equal(d, np.take_along_axis(want, i.astype(np.intp), 1))


# ---------------------------------------------------------------- persistence


@pytest.fixture
def saved(tmp_path, rng) -> tuple[Path, HammingIndex]:
    ids, packed = tied_data(rng, 200, 64, 30)
    index = build(ids, packed, 64, ENGINES[0])
    path = tmp_path / "v1.fshidx"
    index.save(path)
    return path, index


def test_save_load_round_trip(saved, rng, tmp_path):
    path, index = saved
    loaded = HammingIndex.load(path)
    assert loaded.bits == 64
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    np.testing.assert_array_equal(loaded.codes(), index.codes())
    q = rng.integers(0, 256, (3, 8), dtype=np.uint8)
    for x, y in zip(loaded.search(q, 20), index.search(q, 20), strict=True):
        np.testing.assert_array_equal(x, y)
    loaded.add([10**12], np.zeros((1, 8), np.uint8))  # a loaded index stays mutable
    assert 10**12 in loaded
    empty = tmp_path / "empty.fshidx"
    HammingIndex(256).save(empty)
    back = HammingIndex.load(empty)
    assert (back.bits, len(back)) == (256, 0)
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_truncated_file_refused(saved):
    path, _ = saved
    data = path.read_bytes()
    for cut in (0, 5, 40, fi._HEADER.size, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(IndexFileError, match="short|truncated"):
            HammingIndex.load(path)
    path.write_bytes(data + b"\0")
    with pytest.raises(IndexFileError, match="size"):
        HammingIndex.load(path)


def test_flipped_byte_refused(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    for pos in (fi._HEADER.size + 3, len(data) - 1, 20, fi._HEADER.size - 1):
        bad = bytearray(data)
        bad[pos] ^= 0x10
        path.write_bytes(bytes(bad))
        with pytest.raises(IndexFileError):
            HammingIndex.load(path)


def test_foreign_files_refused(tmp_path, rng):
    from PIL import Image

    png = tmp_path / "photo.fshidx"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(png, format="PNG")
    with pytest.raises(IndexFileError, match="not a fabricsearch index"):
        HammingIndex.load(png)
    junk = tmp_path / "junk.fshidx"
    junk.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(IndexFileError, match="not a fabricsearch index"):
        HammingIndex.load(junk)
    with pytest.raises(IndexFileError, match="directory"):
        HammingIndex.load(tmp_path)


def test_future_format_version_refused(saved):
    path, _ = saved
    data = bytearray(path.read_bytes())
    data[8:12] = (fi.FORMAT_VERSION + 1).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match="version 2"):
        HammingIndex.load(path)


@pytest.mark.parametrize("fail_at", ["replace", "fsync", "write"])
def test_failed_save_leaves_old_file_intact(saved, monkeypatch, fail_at):
    path, index = saved
    before = path.read_bytes()
    index.add([123456789], np.full((1, 8), 7, np.uint8))

    def boom(*a, **kw):
        raise OSError("disk full")

    if fail_at == "replace":
        monkeypatch.setattr(os, "replace", boom)
    elif fail_at == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:
        monkeypatch.setattr(fi, "open", _HalfWriter, raising=False)
    with pytest.raises(OSError, match="disk full"):
        index.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert 123456789 not in HammingIndex.load(path)
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


class _HalfWriter:
    """The temp file as `open` gives it, except that the second write fails half-way."""

    def __init__(self, path, mode):
        self._f = open(path, mode)  # noqa: SIM115 - closed in __exit__
        self._writes = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()
        return False

    def write(self, data):
        self._writes += 1
        if self._writes == 2:
            self._f.write(bytes(data[: len(data) // 2]))
            raise OSError("disk full")
        return self._f.write(data)

    def __getattr__(self, name):
        return getattr(self._f, name)


def test_load_or_rebuild(tmp_path, rng, caplog):
    ids, packed = tied_data(rng, 50, 64, 10)
    calls = []

    def rebuild():
        calls.append(1)
        return ids, packed

    path = index_path(tmp_path / "indexes", "dvsh-64-v3")  # folder created on first save
    a = HammingIndex.load_or_rebuild(path, 64, rebuild)  # missing → rebuilt and saved
    assert len(calls) == 1
    assert path.exists()
    np.testing.assert_array_equal(a.ids(), np.sort(ids))
    b = HammingIndex.load_or_rebuild(path, 64, rebuild)  # valid → loaded
    assert len(calls) == 1
    np.testing.assert_array_equal(b.codes(), a.codes())
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    c = HammingIndex.load_or_rebuild(path, 64, rebuild)  # corrupt → rebuilt
    assert len(calls) == 2
    assert "checksum" in caplog.text
    np.testing.assert_array_equal(c.codes(), a.codes())
    HammingIndex.load(path)  # and the rebuilt file is valid again
    HammingIndex.load_or_rebuild(path, 128, lambda: (ids, np.zeros((50, 16), np.uint8)))
    assert HammingIndex.load(path).bits == 128  # other code length → rebuilt


def test_index_path_rejects_unsafe_versions(tmp_path):
    assert index_path(tmp_path, "dvsh_64.v2").name == "dvsh_64.v2.fshidx"
    for bad in ("../x", "a/b", "", ".hidden", "a..b"):
        with pytest.raises(ValueError, match="not usable"):
            index_path(tmp_path, bad)


def test_numpy_engine_used_without_faiss(monkeypatch, rng):
    monkeypatch.setattr(fi, "faiss", None)
    index = HammingIndex(64)
    assert index.engine == "numpy"
    ids, packed = tied_data(rng, 100, 64, 5)
    index.add(ids, packed)
    q = packed[:2]
    for x, y in zip(index.search(q, 30), oracle(q, ids, packed, 30), strict=True):
        np.testing.assert_array_equal(x, y)
    with pytest.raises(RuntimeError, match="faiss"):
        HammingIndex(64, engine="faiss")
