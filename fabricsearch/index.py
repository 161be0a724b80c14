"""Persistent exact Hamming index over packed binary codes, keyed by catalogue image ids.

Layout: one contiguous `uint8 (N, bits/8)` code array and one `int64 (N,)` id array, rows kept
sorted by id. Sorted rows give three things for free: membership and id → row lookup by binary
search (no per-item dict, so memory stays at the raw code + id bytes), deterministic tie-breaking
(row order *is* id order), and a cheap merge on `add`.

Mutations are copy-on-write: each `add`/`remove` builds new arrays and swaps the `(ids, codes)`
pair in one assignment, so a search running in another thread always sees a consistent snapshot.
Each mutation costs O(N) memory traffic (~10–20 ms at 1M codes); adds arrive in batches (an
import, an encode), so this is cheaper than the bookkeeping of tombstones and compaction.

Distances come from faiss's Hamming kernels (`hammings_knn_hc`, `hamming_range_search`) run
directly on our arrays, with no copy into a `faiss.IndexBinaryFlat`. faiss returns the exact
k smallest *distances* but does not promise which of several equal-distance rows it keeps, so
`search` asks for more than k, and falls back to a range search when ties cross even that
boundary; see `_select`. Without faiss, a pure-numpy engine gives the same answers.

Files: see `save` for the format. A truncated, corrupted or foreign file raises `IndexFileError`;
`HammingIndex.load_or_rebuild` then rebuilds from the catalogue.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import struct
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

try:
    import faiss
except ImportError:  # the numpy engine gives identical results, only slower
    faiss = None

log = logging.getLogger(__name__)

__all__ = ["FORMAT_VERSION", "MAGIC", "HammingIndex", "IndexFileError", "index_path"]

MAGIC = b"FSHIDX\r\n"  # \r\n catches files mangled by text-mode transfers
FORMAT_VERSION = 1
# magic, format version, bits, count, blake2b-256 digest of (header before digest + payload)
_HEADER = struct.Struct("<8sIIQ32s")
_DIGEST_SIZE = 32
SUFFIX = ".fshidx"

# faiss returns the exact k smallest distances but keeps an arbitrary subset of rows tied at the
# k-th; we ask it for k + excess rows so that all tied rows are usually among them. The excess
# is learned per index from how far ties reached in earlier queries; the first query uses
# _FIRST_EXCESS_FACTOR * k + 16. (At 1M random 64-bit codes and k=100, ~120 rows share the
# boundary distance.)
_FIRST_EXCESS_FACTOR = 1
#: OpenMP threads faiss may use for one search. faiss's default is one per core, and every
#: search then waits at a barrier for the slowest of them: with another process busy (a
#: training) one 256-bit query over 1M codes took 111 ms instead of 1.5 ms. A single query
#: runs on one thread (no waiting for a preempted sibling thread); a batch uses at most this
#: many, never more than it has queries. Measured by benchmarks/bench_index.py --load
#: (2 cores, 1M codes: 13 ms vs 74 ms quiet, 25 ms vs 192 ms with both cores busy;
#: benchmarks/results/index_load.json).
MAX_SEARCH_THREADS = 4
_MAX_EXCESS_FACTOR = 8
_MC_BUFFER_BYTES = 1 << 20

_VERSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class IndexFileError(Exception):
    """An index file is missing its header, truncated, corrupted, of another format or version."""


def index_path(folder: str | os.PathLike[str], model_version: str) -> Path:
    """Path of the index file for `model_version` inside `folder` (e.g. the library's models dir)."""
    if not _VERSION_RE.match(model_version) or ".." in model_version:
        raise ValueError(f"model version {model_version!r} is not usable in a file name")
    return Path(folder) / f"{model_version}{SUFFIX}"


def _have_faiss() -> bool:
    return faiss is not None


def search_threads(queries: int) -> int:
    """faiss threads for a search of `queries` queries (see MAX_SEARCH_THREADS)."""
    return max(1, min(int(queries), MAX_SEARCH_THREADS, os.cpu_count() or 1))


@contextlib.contextmanager
def _faiss_threads(n: int) -> Iterator[None]:
    # OpenMP's thread count is per calling thread (libgomp keeps it per thread), so this
    # neither races with searches in other threads nor outlives the call.
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def _popcount_rows(x: np.ndarray) -> np.ndarray:
    """Sum of set bits per row of a 2-D unsigned array → int32 (N,)."""
    if hasattr(np, "bitwise_count"):
        counts = np.bitwise_count(x)
    else:  # numpy < 2.0
        from fabricsearch.codes import _POPCOUNT8

        counts = _POPCOUNT8[x.view(np.uint8)]
    if counts.shape[1] == 1:
        return counts[:, 0].astype(np.int32)
    return counts.sum(axis=1, dtype=np.int32)


def hamming_distances(query: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Hamming distances from one packed query (B,) to all codes (N, B) → int32 (N,)."""
    nbytes = codes.shape[1]
    if nbytes % 8 == 0 and codes.flags.c_contiguous:
        # 64-bit words: 8x fewer popcounts than bytes
        return _popcount_rows(codes.view(np.uint64) ^ query.view(np.uint64)[None, :])
    return _popcount_rows(codes ^ query[None, :])


def _select(dist: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """Indices into `rows` of the k smallest (distance, row) pairs, in that order.

    `dist`/`rows` must hold *every* row with distance <= the k-th smallest distance.
    """
    order = np.lexsort((rows, dist))
    return order[:k]


class HammingIndex:
    """Exact Hamming index: packed codes keyed by int64 ids, top-k and radius search.

    Results are sorted by (distance, id); among equal distances the smaller id comes first.
    `engine` is "auto" (faiss when installed), "faiss" or "numpy"; all give identical results.
    """

    def __init__(self, bits: int, engine: str = "auto") -> None:
        if bits <= 0 or bits % 8:
            raise ValueError(f"bits must be a positive multiple of 8, got {bits}")
        if engine not in ("auto", "faiss", "numpy"):
            raise ValueError(f"unknown engine {engine!r}")
        if engine == "faiss" and not _have_faiss():
            raise RuntimeError("engine='faiss' requested but faiss is not installed")
        if engine == "auto":
            engine = "faiss" if _have_faiss() else "numpy"
        self.bits = int(bits)
        self.nbytes = self.bits // 8
        self.engine = engine
        self._excess: int | None = None  # learned over-fetch for faiss, see _search_faiss
        # one tuple so that readers in other threads never see ids and codes of different versions
        self._data: tuple[np.ndarray, np.ndarray] = _frozen(
            np.empty(0, np.int64), np.empty((0, self.nbytes), np.uint8)
        )

    # ----------------------------------------------------------------- contents

    def __len__(self) -> int:
        return int(self._data[0].shape[0])

    def __contains__(self, image_id: object) -> bool:
        try:
            key = int(image_id)  # type: ignore[call-overload]
        except (TypeError, ValueError):
            return False
        ids = self._data[0]
        pos = int(np.searchsorted(ids, key))
        return pos < ids.shape[0] and int(ids[pos]) == key

    def __repr__(self) -> str:
        return f"HammingIndex(bits={self.bits}, n={len(self)}, engine={self.engine!r})"

    def ids(self) -> np.ndarray:
        """All ids, ascending (read-only int64 view)."""
        return self._data[0]

    def codes(self) -> np.ndarray:
        """Packed codes aligned with `ids()` (read-only uint8 (N, bits/8) view)."""
        return self._data[1]

    def get(self, ids: Iterable[int] | np.ndarray) -> np.ndarray:
        """Packed codes of `ids` (in the given order); KeyError if one is absent."""
        want = np.asarray(ids, dtype=np.int64).reshape(-1)
        have, codes = self._data
        rows = rows_of(have, want)
        missing = rows < 0
        if missing.any():
            raise KeyError(f"ids not in index: {want[missing][:10].tolist()}")
        return codes[rows]

    def memory_bytes(self) -> int:
        """Bytes held by the code and id arrays (the index keeps nothing else per item)."""
        ids, codes = self._data
        return int(ids.nbytes + codes.nbytes)

    # ---------------------------------------------------------------- mutation

    def add(self, ids: Iterable[int] | np.ndarray, packed: np.ndarray) -> None:
        """Add codes; an id already present (or repeated in `ids`: last wins) is updated."""
        new_ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        new_codes = self._check_codes(packed)
        if new_codes.shape[0] != new_ids.shape[0]:
            raise ValueError(f"{new_ids.shape[0]} ids but {new_codes.shape[0]} codes")
        if new_ids.size == 0:
            return
        # last occurrence of each id wins, as if the rows had been added one by one
        rev_unique, rev_first = np.unique(new_ids[::-1], return_index=True)
        keep = new_ids.shape[0] - 1 - rev_first
        new_ids, new_codes = rev_unique, new_codes[keep]  # now sorted by id

        old_ids, old_codes = self._data
        rows = rows_of(old_ids, new_ids)
        present = rows >= 0
        codes = old_codes
        if present.any():
            codes = old_codes.copy()
            codes[rows[present]] = new_codes[present]
        fresh = ~present
        if fresh.any():
            pos = np.searchsorted(old_ids, new_ids[fresh])
            merged_ids = np.insert(old_ids, pos, new_ids[fresh])
            codes = np.insert(codes, pos, new_codes[fresh], axis=0)
        else:
            merged_ids = old_ids
        self._data = _frozen(merged_ids, np.ascontiguousarray(codes))

    def remove(self, ids: Iterable[int] | np.ndarray) -> int:
        """Remove ids; absent ids are ignored. Returns how many were removed."""
        drop = np.unique(np.asarray(ids, dtype=np.int64).reshape(-1))
        old_ids, old_codes = self._data
        rows = rows_of(old_ids, drop)
        rows = rows[rows >= 0]
        if rows.size == 0:
            return 0
        self._data = _frozen(np.delete(old_ids, rows), np.delete(old_codes, rows, axis=0))
        return int(rows.size)

    def update(self, ids: Iterable[int] | np.ndarray, packed: np.ndarray) -> None:
        """Replace the codes of ids (same as `add`; kept for readability at call sites)."""
        self.add(ids, packed)

    def clear(self) -> None:
        self._data = _frozen(np.empty(0, np.int64), np.empty((0, self.nbytes), np.uint8))

    # ------------------------------------------------------------------ search

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k. queries (Q, B) or (B,) packed → distances int32 (Q, k'), ids int64 (Q, k').

        k' = min(k, len(self)); rows are sorted by (distance, id).
        """
        q = self._check_codes(queries)
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        ids, codes = self._data
        n = ids.shape[0]
        kk = min(int(k), n)
        nq = q.shape[0]
        out_d = np.empty((nq, kk), np.int32)
        out_i = np.empty((nq, kk), np.int64)
        if kk == 0 or nq == 0:
            return out_d, out_i
        if self.engine == "faiss":
            with _faiss_threads(search_threads(nq)):
                self._search_faiss(q, codes, kk, out_d, out_i)
        else:
            for qi in range(nq):
                d, r = _numpy_topk(q[qi], codes, kk)
                out_d[qi], out_i[qi] = d, r
        out_i[:] = ids[out_i]  # rows → ids (rows are in id order, so ties stay id-ordered)
        return out_d, out_i

    def range_search(self, query: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
        """All codes within Hamming distance <= radius of one query (B,).

        Returns distances int32 and ids int64 sorted by (distance, id).
        """
        q = self._check_codes(query)
        if q.shape[0] != 1:
            raise ValueError("range_search takes a single query of shape (B,)")
        radius = int(radius)
        ids, codes = self._data
        if radius < 0 or ids.shape[0] == 0:
            return np.empty(0, np.int32), np.empty(0, np.int64)
        if self.engine == "faiss":
            with _faiss_threads(1):
                ((d, r),) = _faiss_range(q, codes, radius)
        else:
            dist = hamming_distances(q[0], codes)
            r = np.flatnonzero(dist <= radius)
            d = dist[r]
        order = np.lexsort((r, d))
        return d[order].astype(np.int32), ids[r[order]]

    def _search_faiss(
        self, q: np.ndarray, codes: np.ndarray, k: int, out_d: np.ndarray, out_r: np.ndarray
    ) -> None:
        n, nq = codes.shape[0], q.shape[0]
        excess = self._excess if self._excess is not None else _FIRST_EXCESS_FACTOR * k + 16
        k_ask = min(n, k + excess)
        # faiss's counting k-NN (one bucket of up to k rows per distance) beats its heap on
        # codes up to 64 bits at any k we use; from 128 bits on the heap is faster (measured,
        # docs/index.md). The bucket buffer is (bits+1) * k * 8 bytes per query: cap it.
        if self.bits <= 64 and (self.bits + 1) * k_ask * 8 <= _MC_BUFFER_BYTES:
            dist, rows = _faiss_knn_mc(q, codes, k_ask)
        else:
            dist, rows = _faiss_knn_hc(q, codes, k_ask)
        key = dist.astype(np.int64)
        key *= n
        key += rows  # unique per row: sorting the key sorts by (distance, row)
        key.sort(axis=1)
        # faiss's k_ask distances are the exact k_ask smallest. If the largest is beyond the
        # k-th, every row tied with the k-th distance is among them and sorting them by
        # (distance, row) gives the exact answer, whatever tied rows faiss chose to keep.
        if nq == 1:  # the interactive case: same logic with fewer numpy calls
            key1 = key[0]
            kth1 = int(key1[k - 1]) // n
            bound1 = (kth1 + 1) * n  # every key below this has distance <= the k-th
            if k_ask == n or int(key1[-1]) >= bound1:
                top = key1[:k]
                out_d[0] = top // n
                out_r[0] = top % n
                need = int(np.searchsorted(key1, bound1)) - k
                self._learn_excess(need, excess, k)
                return
        top = key[:, :k]
        out_d[:] = top // n
        out_r[:] = top % n
        kth = out_d[:, -1].astype(np.int64)
        bound = (kth + 1) * n
        complete = np.ones(nq, bool) if k_ask == n else key[:, -1] >= bound
        need_q = (key < bound[:, None]).sum(axis=1) - k
        todo = np.flatnonzero(~complete)
        if todo.size:
            # ties run past what faiss returned: collect every row with d <= k-th distance
            for qi, (d, r) in zip(todo, _faiss_range(q[todo], codes, kth[todo]), strict=True):
                sel = _select(d, r, k)
                out_d[qi], out_r[qi] = d[sel], r[sel]
                need_q[qi] = d.shape[0] - k
        self._learn_excess(int(need_q.max()), excess, k)

    def _learn_excess(self, need: int, excess: int, k: int) -> None:
        # Remember how far ties reached so later queries ask faiss for just enough (results
        # never depend on this, only speed); shrink slowly when the data stop needing it.
        # Capped: beyond a few k, one range pass is cheaper than a huge heap or bucket buffer.
        want = min(int(need * 1.5) + 16, _MAX_EXCESS_FACTOR * k + 1024)
        self._excess = max(want, int(excess * 0.98)) if self._excess is not None else want

    # --------------------------------------------------------------- persistence

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write atomically: temp file in the same folder, fsync, os.replace.

        Format (little-endian): header `<8sIIQ32s>` = magic b"FSHIDX\\r\\n", format version,
        bits, count, blake2b-256 of (the header's first 24 bytes + payload); then the payload:
        ids int64 (count,), then codes uint8 (count, bits/8). A crash at any point leaves either
        the old file or the new one, never a mix.
        """
        path = Path(path)
        ids, codes = self._data
        head = struct.pack("<8sIIQ", MAGIC, FORMAT_VERSION, self.bits, ids.shape[0])
        payload = (_bytes_view(ids.astype("<i8", copy=False)), _bytes_view(codes))
        digest = hashlib.blake2b(head, digest_size=_DIGEST_SIZE)
        for part in payload:
            digest.update(part)
        from fabricsearch.atomicio import atomic_write

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                f.write(head + digest.digest())
                for part in payload:
                    f.write(part)
                f.flush()
                os.fsync(f.fileno())

        atomic_write(path, write)  # the temp file is removed on failure; ENOSPC: DiskFullError
        _fsync_dir(path.parent)

    @classmethod
    def load(cls, path: str | os.PathLike[str], engine: str = "auto") -> HammingIndex:
        """Read an index saved by `save`; raises IndexFileError if it is not a valid index file."""
        path = Path(path)
        try:
            with open(path, "rb") as f:
                return cls._read(f, path, engine)
        except IsADirectoryError as e:
            raise IndexFileError(f"{path}: is a directory, not an index file") from e

    @classmethod
    def _read(cls, f: BinaryIO, path: Path, engine: str) -> HammingIndex:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(_HEADER.size)
        if len(raw) < _HEADER.size:
            raise IndexFileError(f"{path}: too short for an index header ({size} bytes)")
        magic, version, bits, count, stored = _HEADER.unpack(raw)
        if magic != MAGIC:
            raise IndexFileError(f"{path}: not a fabricsearch index file (bad magic {magic!r})")
        if version != FORMAT_VERSION:
            raise IndexFileError(
                f"{path}: index format version {version}, this program reads {FORMAT_VERSION}"
            )
        if bits <= 0 or bits % 8:
            raise IndexFileError(f"{path}: invalid code length {bits} bits")
        expected = _HEADER.size + count * (8 + bits // 8)
        if size != expected:
            raise IndexFileError(
                f"{path}: size {size} bytes, header promises {expected} "
                f"({count} codes of {bits} bits); the file is truncated or damaged"
            )
        ids = np.empty(count, "<i8")
        codes = np.empty((count, bits // 8), np.uint8)
        digest = hashlib.blake2b(raw[:-_DIGEST_SIZE], digest_size=_DIGEST_SIZE)
        for arr in (ids, codes):
            view = _bytes_view(arr)  # read straight into the arrays: no second copy in memory
            if f.readinto(view) != arr.nbytes:
                raise IndexFileError(f"{path}: truncated while reading")
            digest.update(view)
        if digest.digest() != stored:
            raise IndexFileError(f"{path}: checksum mismatch; the file is corrupted")
        ids = ids.astype(np.int64, copy=False)
        if count > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            raise IndexFileError(f"{path}: ids are not strictly ascending")
        index = cls(int(bits), engine=engine)
        index._data = _frozen(ids, codes)
        return index

    @classmethod
    def load_or_rebuild(
        cls,
        path: str | os.PathLike[str],
        bits: int,
        rebuild: Callable[[], tuple[Any, np.ndarray]],
        engine: str = "auto",
    ) -> HammingIndex:
        """Load `path`; if it is missing, invalid or of another code length, rebuild and save.

        `rebuild()` returns `(ids, packed codes)`, typically `library.load_codes(version)`.
        A rebuilt index that cannot be saved (read-only library) is still returned.
        """
        path = Path(path)
        try:
            index = cls.load(path, engine=engine)
        except FileNotFoundError:
            log.info("no index at %s; building it", path)
        except IndexFileError as e:
            log.warning("rebuilding index: %s", e)
        else:
            if index.bits == bits:
                return index
            log.warning("rebuilding index: %s holds %d-bit codes, need %d", path, index.bits, bits)
        ids, packed = rebuild()
        index = cls(bits, engine=engine)
        index.add(ids, packed)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            index.save(path)
        except OSError as e:
            log.warning("could not save rebuilt index to %s: %s", path, e)
        return index

    # ----------------------------------------------------------------- helpers

    def _check_codes(self, packed: np.ndarray) -> np.ndarray:
        arr = np.asarray(packed)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.nbytes:
            raise ValueError(
                f"expected packed codes of shape (N, {self.nbytes}) for {self.bits} bits, "
                f"got {np.shape(packed)}"
            )
        if arr.dtype != np.uint8:
            if not np.issubdtype(arr.dtype, np.integer) or (
                arr.size and (arr.min() < 0 or arr.max() > 255)
            ):
                raise ValueError(f"packed codes must be uint8, got {arr.dtype}")
            arr = arr.astype(np.uint8)
        return np.ascontiguousarray(arr)


def _frozen(ids: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # arrays are never written after publication (copy-on-write), so hand out read-only views
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    codes = np.ascontiguousarray(codes, dtype=np.uint8)
    ids.flags.writeable = False
    codes.flags.writeable = False
    return ids, codes


def _bytes_view(arr: np.ndarray) -> np.ndarray:
    """1-D uint8 view of a C-contiguous array (works for empty arrays, unlike memoryview.cast)."""
    return arr.reshape(-1).view(np.uint8)


def rows_of(sorted_ids: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Row of each wanted id in the sorted id array, -1 where absent."""
    if sorted_ids.shape[0] == 0:
        return np.full(want.shape, -1, np.int64)
    pos = np.searchsorted(sorted_ids, want)
    clipped = np.minimum(pos, sorted_ids.shape[0] - 1)
    return np.where(sorted_ids[clipped] == want, clipped, -1).astype(np.int64)


def _numpy_topk(query: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k of one query by counting: find the k-th distance from a histogram, then take
    every row at or below it (ascending rows = ascending ids) and sort stably by distance."""
    dist = hamming_distances(query, codes)
    counts = np.cumsum(np.bincount(dist, minlength=codes.shape[1] * 8 + 1))
    kth = int(np.searchsorted(counts, k))
    rows = np.flatnonzero(dist <= kth)
    d = dist[rows]
    order = np.argsort(d, kind="stable")[:k]
    return d[order], rows[order]


def _faiss_knn_hc(q: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss heap k-NN straight over our arrays (no copy into a faiss index)."""
    nq = q.shape[0]
    dist = np.empty((nq, k), np.int32)
    rows = np.empty((nq, k), np.int64)
    heap = faiss.int_maxheap_array_t()
    heap.k = k
    heap.nh = nq
    heap.ids = faiss.swig_ptr(rows)
    heap.val = faiss.swig_ptr(dist)
    faiss.hammings_knn_hc(
        heap, faiss.swig_ptr(q), faiss.swig_ptr(codes), codes.shape[0], codes.shape[1], 1
    )
    return dist, rows


def _faiss_knn_mc(q: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """faiss counting k-NN (one bucket per distance) straight over our arrays."""
    nq = q.shape[0]
    dist = np.empty((nq, k), np.int32)
    rows = np.empty((nq, k), np.int64)
    faiss.hammings_knn_mc(
        faiss.swig_ptr(q),
        faiss.swig_ptr(codes),
        nq,
        codes.shape[0],
        k,
        codes.shape[1],
        faiss.swig_ptr(dist),
        faiss.swig_ptr(rows),
    )
    return dist, rows


def _faiss_range(
    q: np.ndarray, codes: np.ndarray, radius: int | np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per query: (distances int32, rows int64) of all rows with distance <= radius (unsorted).

    `radius` may be one value or one per query; faiss takes one strict bound per call, so
    queries are grouped by radius."""
    nq = q.shape[0]
    radii = np.broadcast_to(np.asarray(radius, dtype=np.int64), (nq,))
    out: list[tuple[np.ndarray, np.ndarray]] = [None] * nq  # type: ignore[list-item]
    for r in np.unique(radii):
        which = np.flatnonzero(radii == r)
        sub = np.ascontiguousarray(q[which])
        res = faiss.RangeSearchResult(len(which))
        # faiss keeps d < radius; ours is inclusive
        faiss.hamming_range_search(
            faiss.swig_ptr(sub),
            faiss.swig_ptr(codes),
            len(which),
            codes.shape[0],
            int(r) + 1,
            codes.shape[1],
            res,
        )
        lims = faiss.rev_swig_ptr(res.lims, len(which) + 1).copy()
        total = int(lims[-1])
        d = faiss.rev_swig_ptr(res.distances, total).astype(np.int32) if total else np.empty(0)
        rows = faiss.rev_swig_ptr(res.labels, total).copy() if total else np.empty(0, np.int64)
        for j, qi in enumerate(which):
            a, b = int(lims[j]), int(lims[j + 1])
            out[qi] = (d[a:b].astype(np.int32), rows[a:b].astype(np.int64))
    return out


def _fsync_dir(folder: Path) -> None:
    # makes the rename itself durable; not supported on Windows, where replace is enough
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
