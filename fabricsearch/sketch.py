"""Feature sketch: the second candidate source of a query (docs/search.md, "The very fabric
first").

Codes trained to tell classes apart give every fabric of a class nearly the same code, so in a
large archive the Hamming index alone does not hold a re-photographed fabric among its
candidates; the cached backbone feature does. The sketch is a compact projection of every
searchable image's cached feature — PCA-whitened to `SKETCH_DIM` dimensions, fitted per library
and backbone version on the cached features, each row L2-normalised — scanned exactly per
query (`Sketch.scores`, one matrix-vector product); its top S by cosine join the Hamming top R
before the float re-rank.

Files, beside the Hamming indexes in the library's ``indexes`` folder::

    sketch-<backbone version>.json            {"format", "backbone", "feature_dim", "dim",
                                               "fitted_on", "fit": token}
    sketch-<backbone version>-<fit>.proj.npy  (feature_dim, dim + 1) float32: the mean, then
                                              the whitened projection
    sketch-<backbone version>-<fit>.rows      float32 rows (N, dim), memory-mapped
    sketch-<backbone version>-<fit>.keys      (image id int64, first 8 bytes of the content
                                              hash uint64) per row

Rows are appended (rows first, then keys: a row counts once its key is written); the JSON names
the fit, so a refit writes new files and swaps the JSON atomically. A row whose image is gone,
or whose image's content changed (the hash head differs), is ignored by the search.

The sketch is derived data, written only by the steps that write codes (`update`, called by
`Searcher.complete_codes` before a query and by `search.encode_missing`); a search only reads
it, and a missing, foreign or unreadable sketch means Hamming-only candidates.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from fabricsearch.featurestore import FeatureStore
    from fabricsearch.jobs import ProgressFn

log = logging.getLogger(__name__)

FORMAT = 1
#: Dimensions of the sketch. Chosen by measurement (benchmarks/bench_same_fabric.py, rank of
#: the original at 1M): whitened 64 dims hold nearly as many originals as the exact 1280-dim
#: cosine on dtd10 and as many on batik6; 32 dims lose some, 128 gain a little for twice the
#: memory and scan (docs/search.md).
SKETCH_DIM = 64
#: Features the projection is fitted on at most (a seeded sample of the library).
FIT_SAMPLE = 20_000
#: Fewer cached features than this: no sketch (the Hamming candidates hold the whole library).
MIN_FIT = 8
#: Refit (and rewrite every row) when the library has grown this many times past the fit's
#: sample and that sample was below FIT_SAMPLE.
REFIT_GROWTH = 4
_KEY = np.dtype([("id", "<i8"), ("head", "<u8")])
_SEED = 22


def feature_version(backbone: str) -> str:
    """The name a sketch is kept under: the backbone's feature version (its store's name)."""
    from fabricsearch.backbone_specs import get_spec

    return get_spec(backbone).version


def _base(indexes_dir: Path, backbone: str) -> Path:
    return Path(indexes_dir) / f"sketch-{backbone}"


def heads(digests: np.ndarray) -> np.ndarray:
    """The first 8 bytes of each 32-byte content hash (N, 32) uint8 as one uint64 each."""
    return np.ascontiguousarray(np.asarray(digests, np.uint8)[:, :8]).view("<u8").reshape(-1)


@dataclass
class Sketch:
    """An open sketch: the projection, the memory-mapped rows and their keys."""

    backbone: str
    fit: str
    fitted_on: int
    mean: np.ndarray  # (feature_dim,) float32
    proj: np.ndarray  # (feature_dim, dim) float32
    rows: np.ndarray  # (N, dim) float32, memory-mapped
    ids: np.ndarray  # (N,) int64
    heads: np.ndarray  # (N,) uint64
    stamp: tuple[int, ...] = ()  # the files' `stamp` when opened

    @property
    def dim(self) -> int:
        return int(self.proj.shape[1])

    def __len__(self) -> int:
        return len(self.ids)

    def project(self, feats: np.ndarray) -> np.ndarray:
        """Sketches (N, dim) float32, L2-normalised, of backbone features (N, feature_dim)."""
        f = np.asarray(feats, np.float32).reshape(-1, self.mean.shape[0])
        f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)
        y = (f - self.mean) @ self.proj
        return (y / (np.linalg.norm(y, axis=1, keepdims=True) + 1e-12)).astype(np.float32)

    def scores(self, feature: np.ndarray) -> np.ndarray:
        """Cosine of the query's sketch with every row (N,) float32. float32 rows: numpy's
        float16 → float32 conversion would cost 0.3–0.5 s a scan at 1M rows, the product
        11–16 ms. `einsum`, not a BLAS product: one thread, so a busy machine's other processes
        do not stall it (BLAS's worker threads did: 2× the wall time under load), and the same
        rounding however many threads BLAS would use."""
        q = self.project(feature)[0]
        if not len(self.ids):
            return np.zeros(0, np.float32)
        return np.einsum("ij,j->i", self.rows, q)


def stamp(indexes_dir: Path, backbone: str) -> tuple[int, ...]:
    """Sizes and times of the JSON and the keys: a sketch grown or refitted since differs."""
    base = _base(indexes_dir, backbone)
    meta = Path(f"{base}.json")
    try:
        st = meta.stat()
        fit = json.loads(meta.read_text(encoding="utf-8")).get("fit", "")
        keys = Path(f"{base}-{fit}.keys").stat()
    except (OSError, ValueError, AttributeError):
        return ()
    return (st.st_mtime_ns, st.st_size, keys.st_size, keys.st_mtime_ns)


def open_sketch(indexes_dir: str | os.PathLike[str], backbone: str) -> Sketch | None:
    """The library's sketch of `backbone` features, or None (missing, foreign, damaged)."""
    indexes_dir = Path(indexes_dir)
    base = _base(indexes_dir, backbone)
    meta_path = Path(f"{base}.json")
    if not meta_path.exists():
        return None
    try:
        files = stamp(indexes_dir, backbone)
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT or meta.get("backbone") != backbone:
            log.info("sketch %s is of another format or backbone: not used", meta_path)
            return None
        fit = str(meta["fit"])
        dim, fdim = int(meta["dim"]), int(meta["feature_dim"])
        pm = np.load(f"{base}-{fit}.proj.npy", allow_pickle=False)
        if pm.shape != (fdim, dim + 1) or not np.isfinite(pm).all():
            raise ValueError(f"projection of shape {pm.shape}, expected {(fdim, dim + 1)}")
        rows_path, keys_path = Path(f"{base}-{fit}.rows"), Path(f"{base}-{fit}.keys")
        n = min(rows_path.stat().st_size // (4 * dim), keys_path.stat().st_size // _KEY.itemsize)
        keys = np.fromfile(keys_path, dtype=_KEY, count=n)
        rows = (
            # A plain array over the map: numpy's memmap subclass slows every product on it.
            np.asarray(np.memmap(rows_path, dtype=np.float32, mode="r", shape=(n, dim)))
            if n
            else np.zeros((0, dim), np.float32)
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning(
            "sketch %s is unreadable (%s): candidates from the Hamming index only", base, exc
        )
        return None
    return Sketch(
        backbone=backbone,
        fit=fit,
        fitted_on=int(meta.get("fitted_on", 0)),
        mean=np.ascontiguousarray(pm[:, 0], np.float32),
        proj=np.ascontiguousarray(pm[:, 1:], np.float32),
        rows=rows,
        ids=np.asarray(keys["id"], np.int64),
        heads=np.asarray(keys["head"], np.uint64),
        stamp=files,
    )


def match(sk: Sketch, ids: np.ndarray, lib_heads: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which rows of `sk` are current: (sketch rows, library rows) of the images (`ids`
    ascending, `lib_heads` their content hash heads) that have a row for their present content
    (the newest such row where an image has several)."""
    if not len(sk.ids) or not len(ids):
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if len(sk.ids) < 2 or bool(np.all(sk.ids[1:] > sk.ids[:-1])):
        # Rows appended in id order, one per image (the usual case): nothing to sort.
        order, sid = np.arange(len(sk.ids)), sk.ids
    else:
        # Newest row per id: sort by id, then by row, keep each id's last.
        order = np.lexsort((np.arange(len(sk.ids)), sk.ids))
        sid = sk.ids[order]
        last = np.ones(len(sid), bool)
        last[:-1] = sid[1:] != sid[:-1]
        order, sid = order[last], sid[last]
    if len(sid) == len(ids) and np.array_equal(sid, ids):
        at = np.arange(len(ids))  # a row for every image, in the same order
    else:
        at = np.minimum(np.searchsorted(sid, ids), len(sid) - 1)
    ok = (sid[at] == ids) & (sk.heads[order[at]] == lib_heads)
    lib_rows = np.flatnonzero(ok)
    return order[at[lib_rows]].astype(np.int64), lib_rows.astype(np.int64)


def _top_eigen(c: np.ndarray, k: int, iterations: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """The `k` largest eigenvalues (descending) and eigenvectors of the symmetric PSD matrix
    `c`, by seeded subspace iteration with 32 extra directions: fewer operations than a full
    1280² `eigh` (measured on the busy 2-core machine: 0.9–5 s against 6–9 s), the same
    subspace (principal angles' cosines ≥ 0.99997 on both dev sets)."""
    n = c.shape[0]
    m = min(n, k + 32)
    if n <= 2 * m:
        w, v = np.linalg.eigh(c)
    else:
        q = np.linalg.qr(np.random.default_rng(_SEED).standard_normal((n, m)))[0]
        for _ in range(iterations):
            q = np.linalg.qr(c @ q)[0]
        w, v = np.linalg.eigh(q.T @ c @ q)
        v = q @ v
    order = np.argsort(w)[::-1][:k]
    return w[order], v[:, order]


def fit_projection(feats: np.ndarray, dim: int = SKETCH_DIM) -> tuple[np.ndarray, np.ndarray]:
    """Mean (F,) and PCA-whitening projection (F, d) of L2-normalised features (N, F);
    d = min(dim, the sample's numerical rank)."""
    f = np.asarray(feats, np.float32)
    f = f / (np.linalg.norm(f, axis=1, keepdims=True) + 1e-12)
    mean = f.mean(axis=0, dtype=np.float64)
    x = f - mean.astype(np.float32)
    evals, evecs = _top_eigen((x.T @ x).astype(np.float64), dim)
    s = np.sqrt(np.clip(evals, 0.0, None))
    keep = int(min(dim, len(f) - 1, (s > s[0] * 1e-4).sum())) if len(s) and s[0] > 0 else 0
    if keep <= 0:
        raise ValueError("the features have no spread to fit a sketch on")
    # Whitening (each direction scaled to unit variance): measured better than plain PCA on
    # batik6 (phone photo, blur) and level on dtd10 (docs/search.md).
    proj = evecs[:, :keep] / s[:keep]
    return mean.astype(np.float32), proj.astype(np.float32)


def _append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _features_of(
    store: FeatureStore, ids: np.ndarray, digests: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, heads, features) of the images among `ids` whose feature is cached (and intact)."""
    if not len(ids):
        return ids, np.zeros(0, np.uint64), np.zeros((0, store.dim), np.float32)
    shas = [d.tobytes().hex() for d in digests]
    have = store.rows(shas) >= 0
    keep = np.flatnonzero(have)
    feats = store.get([shas[i] for i in keep], views=False, dtype=np.float32)
    return ids[keep], heads(digests[keep]), feats


def update(
    indexes_dir: str | os.PathLike[str],
    store: FeatureStore,
    backbone: str,
    ids: np.ndarray,
    digests: np.ndarray,
    chunk: int = 8192,
    progress: ProgressFn | None = None,
) -> Sketch | None:
    """Bring the sketch up to date with the library's images (`ids` with their content hashes
    `digests` (N, 32) uint8): fit it when there is none (or the library outgrew its fit), else
    append a row for each image with a cached feature and no current row. Returns the sketch
    (None when too few features are cached to fit one). Writes under the indexes folder; an
    `OSError` propagates (the caller logs it: the search then uses what is there)."""
    from fabricsearch import locks

    indexes_dir = Path(indexes_dir)
    ids = np.asarray(ids, np.int64)
    digests = np.asarray(digests, np.uint8).reshape(-1, 32)
    indexes_dir.mkdir(parents=True, exist_ok=True)
    base = _base(indexes_dir, backbone)
    with locks.hold(Path(f"{base}.lock"), wait=True, poll_s=0.05, note=False):
        sk = open_sketch(indexes_dir, backbone)
        if sk is not None and sk.mean.shape[0] != store.dim:
            sk = None
        if sk is None or (
            sk.fitted_on < FIT_SAMPLE and len(ids) >= REFIT_GROWTH * max(sk.fitted_on, 1)
        ):
            return _refit(indexes_dir, store, backbone, ids, digests, sk, chunk, progress)
        _rows, lib_rows = match(sk, ids, heads(digests))
        todo = np.setdiff1d(np.arange(len(ids)), lib_rows)
        if len(todo):
            _write_rows(base, sk.fit, sk, store, ids[todo], digests[todo], chunk, progress)
        return open_sketch(indexes_dir, backbone) if len(todo) else sk


def _write_rows(
    base: Path,
    fit: str,
    sk: Sketch,
    store: FeatureStore,
    ids: np.ndarray,
    digests: np.ndarray,
    chunk: int,
    progress: ProgressFn | None = None,
) -> int:
    rows_path, keys_path = Path(f"{base}-{fit}.rows"), Path(f"{base}-{fit}.keys")
    # A killed writer may have left rows without keys, or part of a key: cut both files back
    # to the rows that count, so that what is appended lines up.
    n = len(sk.ids)
    for path, size in ((rows_path, n * 4 * sk.dim), (keys_path, n * _KEY.itemsize)):
        if path.exists() and path.stat().st_size != size:
            os.truncate(path, size)
    written = 0
    for start in range(0, len(ids), chunk):
        cid, chead, feats = _features_of(
            store, ids[start : start + chunk], digests[start : start + chunk]
        )
        if not len(cid):
            continue
        keys = np.empty(len(cid), _KEY)
        keys["id"], keys["head"] = cid, chead
        _append(rows_path, np.ascontiguousarray(sk.project(feats), "<f4").tobytes())
        _append(keys_path, keys.tobytes())
        written += len(cid)
        if progress is not None and len(ids) > chunk:
            from fabricsearch.jobs import Progress

            progress(
                Progress(
                    "sketch",
                    min(start + chunk, len(ids)),
                    len(ids),
                    "images",
                    message="indexing the photos' features for search",
                )
            )
    return written


def _refit(
    indexes_dir: Path,
    store: FeatureStore,
    backbone: str,
    ids: np.ndarray,
    digests: np.ndarray,
    old: Sketch | None,
    chunk: int,
    progress: ProgressFn | None = None,
) -> Sketch | None:
    from fabricsearch.atomicio import write_text_atomic

    base = _base(indexes_dir, backbone)
    rng = np.random.default_rng(_SEED)
    sample = np.sort(rng.permutation(len(ids))[: FIT_SAMPLE * 2])
    sid, _sh, feats = _features_of(store, ids[sample], digests[sample])
    feats = feats[:FIT_SAMPLE]
    if len(sid) < MIN_FIT:
        return None
    mean, proj = fit_projection(feats)
    fit = secrets.token_hex(4)
    np.save(f"{base}-{fit}.proj.npy", np.hstack([mean[:, None], proj]).astype(np.float32))
    for suffix in (".rows", ".keys"):
        Path(f"{base}-{fit}{suffix}").write_bytes(b"")
    empty = Sketch(
        backbone,
        fit,
        len(feats),
        mean,
        proj,
        np.zeros((0, proj.shape[1]), np.float32),
        np.zeros(0, np.int64),
        np.zeros(0, np.uint64),
    )
    _write_rows(base, fit, empty, store, ids, digests, chunk, progress)
    meta = {
        "format": FORMAT,
        "backbone": backbone,
        "feature_dim": int(store.dim),
        "dim": int(proj.shape[1]),
        "fitted_on": len(feats),
        "fit": fit,
    }
    write_text_atomic(Path(f"{base}.json"), json.dumps(meta))
    if old is not None:
        for suffix in (".proj.npy", ".rows", ".keys"):
            # A reader on Windows may still map the old rows: it is removed at the next refit.
            with contextlib.suppress(OSError):
                Path(f"{base}-{old.fit}{suffix}").unlink()
    log.info("sketch of %s fitted on %d features (%d dims)", backbone, len(feats), proj.shape[1])
    return open_sketch(indexes_dir, backbone)
