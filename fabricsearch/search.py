"""Query pipeline: image → colour + code → Hamming candidates → re-rank → explained results.

`Searcher(library)` keeps the active model, its Hamming index and the library's label arrays in
memory, so a query costs one decode, one forward pass and one index scan. It notices when the
active model changes; after labels change, call `invalidate_labels()`.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fabricsearch import colour
from fabricsearch.codes import pack_codes
from fabricsearch.jobs import CancelToken, ProgressFn
from fabricsearch.similarity import LabelArrays, combine_components, fine_grained_components

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.hashing.base import HashMethod
    from fabricsearch.index import HammingIndex

log = logging.getLogger(__name__)

#: Smallest query side we accept: below this there is no texture to see.
MIN_QUERY_SIDE = 24
#: Queries are decoded exactly as the importer decodes library images (bounded side), so the
#: query's palette is measured the same way as the library's palettes.
QUERY_MAX_SIDE = 512  # equals catalogue.importer.WORK_SIDE; a test checks it
#: Candidates re-ranked by the fine-grained similarity (top R of the Hamming ranking).
RERANK_DEPTH = 100
#: Weight of the Hamming similarity (1 - d/K) in the re-rank score; the rest is S.
#: Chosen by measurement, see docs/search.md.
RERANK_HAMMING_WEIGHT = 0.5
#: Re-ranking on by default (see docs/search.md for the measurement behind this default).
RERANK_DEFAULT = True
#: Colour ↔ texture balance of the re-ranking: 0 ranks by texture alone (the code's Hamming
#: similarity and the coarse/fine/tightness components; colour ignored), 1 by colour alone,
#: 0.5 weighs every component equally, which is the ranking before the balance existed.
BALANCE_DEFAULT = 0.5
COMPONENTS = ("colour", "coarse", "fine", "tightness")
#: At most this many images lacking a code are encoded inside a query (about a second each 100
#: on a laptop CPU); more are left to `fabricsearch encode` with a warning.
MAX_INLINE_ENCODE = 500


class SearchError(Exception):
    """A query that cannot be answered (bad image, no model, ...), with a message for the user."""


@dataclass(frozen=True)
class SearchFilters:
    coarse_major: str | None = None  # e.g. "plaid"
    coarse_minor: str | None = None  # full id, e.g. "plaid/tartan"
    fine: str | None = None
    tightness_min: float | None = None
    tightness_max: float | None = None
    contains_colour: str | None = None  # one of colour.COLOUR_NAMES
    labelled_only: bool = False
    #: Only these image ids (e.g. a text search's matches, `Library.text_search`); None = all.
    image_ids: frozenset[int] | None = None

    @property
    def active(self) -> bool:
        if self.image_ids is not None:
            return True
        return any(
            v not in (None, False)
            for v in (
                self.coarse_major,
                self.coarse_minor,
                self.fine,
                self.tightness_min,
                self.tightness_max,
                self.contains_colour,
                self.labelled_only,
            )
        )


@dataclass(frozen=True)
class QueryLabels:
    """What the user says about the query (optional); colour is always measured."""

    coarse: str | None = None
    fine: str | None = None
    tightness: float | None = None


@dataclass(frozen=True)
class SearchHit:
    image_id: int
    path: Path
    rank: int
    hamming: int
    similarity: float  # fine-grained S over the components known for both
    breakdown: dict[str, float | None]  # colour, coarse, fine, tightness (None = unknown)
    score: float = 0.0  # what the list is sorted by (re-rank score, or 1 - d/K without it)
    coarse: str | None = None
    fine: str | None = None
    tightness: float | None = None
    exact: bool = False  # the query file itself (same content hash)

    def to_json(self) -> dict[str, object]:
        return {
            "rank": self.rank,
            "id": self.image_id,
            "path": str(self.path),
            "hamming": self.hamming,
            "similarity": round(self.similarity, 6),
            "score": round(self.score, 6),
            "breakdown": {
                k: (None if v is None else round(v, 6)) for k, v in self.breakdown.items()
            },
            "labels": {"coarse": self.coarse, "fine": self.fine, "tightness": self.tightness},
            "exact": self.exact,
        }


@dataclass(frozen=True)
class SearchResult:
    query: str
    model: str
    bits: int
    palette: np.ndarray  # the query's (10, 4) colour quantisation
    hits: list[SearchHit] = field(default_factory=list)
    elapsed_ms: dict[str, float] = field(default_factory=dict)  # decode, encode, search, rerank
    reranked: bool = False
    #: What the model's classification heads say the query is (coarse, fine, confidences);
    #: None when the model has no heads (label-free or classical models).
    predicted: dict[str, object] | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "query": {"path": self.query, "predicted": self.predicted},
            "model": self.model,
            "bits": self.bits,
            "reranked": self.reranked,
            "colours": colour.palette_report(self.palette),
            "results": [h.to_json() for h in self.hits],
            "elapsed_ms": {k: round(v, 2) for k, v in self.elapsed_ms.items()},
        }


@dataclass
class _State:
    info: ModelInfo
    method: HashMethod
    index: HammingIndex
    ids: np.ndarray  # int64, the library's image ids (ascending), aligned with labels
    labels: LabelArrays
    paths: dict[int, Path]
    sha: dict[str, int]
    coarse: list[str | None]
    fine: list[str | None]
    tightness: list[float | None]
    synced: int = -1  # the library's image count when the index was last brought up to date


def index_file(lib: Library, version: str) -> Path:
    from fabricsearch.index import index_path

    return index_path(lib.indexes_dir, version)


class Searcher:
    """Answers queries against one library; thread-safe (one query at a time)."""

    def __init__(self, library: Library, device: str = "cpu") -> None:
        self.library = library
        self.device = device
        self._state: _State | None = None
        self._lock = threading.RLock()
        self._unencodable: dict[str, set[int]] = {}  # model version → ids that fail to decode

    # --- state --------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget everything cached (model, index, labels)."""
        with self._lock:
            self._state = None

    def invalidate_labels(self) -> None:
        """Labels changed: reload the label arrays on the next query (model and index stay)."""
        with self._lock:
            if self._state is not None:
                self._load_labels(self._state)

    def _ensure(self) -> _State:
        info = self.library.active_model()
        if info is None:
            raise SearchError(
                "this library has no search model yet: train one (Model ▸ Retrain…, or "
                "`fabricsearch train`) or install the default model (`fabricsearch encode`)"
            )
        st = self._state
        if st is not None and st.info.version == info.version:
            # Same model: images added or removed since (an import, another process, another
            # client of a team library) update the open index in place.
            if st.synced != self.library.count():
                self._update_incrementally(st)
            return st
        return self._full_load(info)

    def _full_load(self, info: ModelInfo) -> _State:
        """Load the active model, its index (from the index file, else from every code in the
        catalogue) and the label arrays: when the active model changes (or after
        `invalidate`)."""
        from fabricsearch.catalogue import LibraryError
        from fabricsearch.hashing.checkpoint import CheckpointError, load_checkpoint
        from fabricsearch.index import HammingIndex

        try:
            method, _meta = load_checkpoint(info.path, device=self.device)
        except (CheckpointError, OSError) as exc:
            raise SearchError(f"the active model {info.version} cannot be loaded: {exc}") from exc
        method.eval()
        synced = self.library.count()
        self._complete_codes(info, method)

        def rebuild() -> tuple[np.ndarray, np.ndarray]:
            return self.library.load_codes(info.version)

        try:
            index = HammingIndex.load_or_rebuild(
                index_file(self.library, info.version), info.bits, rebuild
            )
            if len(index) != self.library.count_codes(info.version):
                # Codes were added or replaced since the index was saved: rebuild it.
                ids, packed = rebuild()
                index = HammingIndex(info.bits)
                index.add(ids, packed)
                _save_index_quietly(index, index_file(self.library, info.version))
        except LibraryError as exc:
            raise SearchError(str(exc)) from exc
        st = _State(
            info, method, index, np.zeros(0, np.int64), LabelArrays.empty(), {}, {}, [], [], []
        )
        self._load_labels(st)
        st.synced = synced
        self._state = st
        return st

    def _update_incrementally(self, st: _State) -> None:
        """Images were added or removed under the same active model: encode the new ones
        that have no code yet, add just their codes to the open index, remove the gone ones,
        and refresh the label arrays; no full reload of the codes."""
        from fabricsearch.catalogue import LibraryError

        version = st.info.version
        synced = self.library.count()
        self._complete_codes(st.info, st.method)
        try:
            now = np.asarray(self.library.image_ids(), dtype=np.int64)
            gone = np.setdiff1d(st.index.ids(), now)
            new = np.setdiff1d(now, st.index.ids())
            if len(gone):
                st.index.remove(gone)
            if len(new):
                ids, packed = self.library.load_codes(version, ids=new.tolist())
                st.index.add(ids, packed)
            self._load_labels(st)
        except LibraryError as exc:
            self._state = None  # a half-updated state is not kept
            raise SearchError(str(exc)) from exc
        st.synced = synced
        log.info("index of %s updated: %d added, %d removed", version, len(new), len(gone))
        if len(new) or len(gone):
            _save_index_quietly(st.index, index_file(self.library, version))

    def _complete_codes(self, info: ModelInfo, method: HashMethod) -> None:
        """Every image must have a code under the active model, or search can never return it.
        Activation guarantees that; this repairs libraries where it does not hold (an older
        version, a crash) by encoding the missing images now, and says which cannot be."""
        import sqlite3

        from fabricsearch.catalogue import LibraryError
        from fabricsearch.hashing.activation import complete_codes

        failed = self._unencodable.setdefault(info.version, set())
        missing = len(self.library.ids_without_codes(info.version)) - len(failed)
        if missing <= 0:
            return
        if missing > MAX_INLINE_ENCODE:  # minutes of work: not inside a query
            log.warning(
                "%d images have no code under the active model %s and cannot be found yet: "
                "run `fabricsearch encode LIB`",
                missing,
                info.version,
            )
            return
        try:
            failed |= complete_codes(self.library, info.version, method, skip=failed)
        except (LibraryError, sqlite3.Error, OSError) as exc:  # e.g. a read-only library
            log.warning("images without a code under %s stay unsearchable: %s", info.version, exc)
            return
        if failed:
            log.warning(
                "%d images cannot be encoded with %s and cannot be found by search",
                len(failed),
                info.version,
            )

    def _load_labels(self, st: _State) -> None:
        records = self.library.images()
        st.ids = np.array([r.id for r in records], dtype=np.int64)
        st.labels = self.library.label_arrays(st.ids.tolist())
        st.paths = {r.id: Path(r.path) for r in records}
        st.sha = {r.sha256: r.id for r in records}
        st.coarse = [r.coarse for r in records]
        st.fine = [r.fine for r in records]
        st.tightness = [r.tightness for r in records]

    # --- query --------------------------------------------------------------------------------
    def search(
        self,
        image: Path | str | np.ndarray,
        k: int = 20,
        filters: SearchFilters | None = None,
        query_labels: QueryLabels | None = None,
        rerank: bool | None = None,
        balance: float | None = None,
        crop: tuple[int, int, int, int] | None = None,
    ) -> SearchResult:
        """Find the `k` library images most similar to `image` (a path or an RGB uint8 array).

        `balance` (0–1, default `BALANCE_DEFAULT`) shifts the re-ranking from texture (0) to
        colour (1). `crop` = (x, y, w, h) in pixels of the original photo (after EXIF
        rotation) searches with that region only."""
        from fabricsearch.index import hamming_distances

        filters = filters or SearchFilters()
        query_labels = query_labels or QueryLabels()
        rerank = RERANK_DEFAULT if rerank is None else rerank
        balance = BALANCE_DEFAULT if balance is None else float(balance)
        if not 0.0 <= balance <= 1.0:
            raise SearchError(f"the balance must be between 0 and 1, got {balance:g}")
        if k <= 0:
            raise SearchError("k must be at least 1")
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        rgb, name, sha = _load_query(image, crop)
        palette = colour.quantise(rgb)
        times["decode"] = (time.perf_counter() - t0) * 1e3

        with self._lock:
            st = self._ensure()
            t1 = time.perf_counter()
            # On a pretrained backbone the file goes through the library's own input recipe
            # (featurestore.decode_for → data.prepare_image), so a library photo used as a query
            # gets exactly its stored code.
            source = image if st.method.on_features and sha is not None and crop is None else rgb
            code, predicted = _encode_query(st.method, source, self.library)
            times["encode"] = (time.perf_counter() - t1) * 1e3

            t2 = time.perf_counter()
            bits = st.info.bits
            depth = max(k, RERANK_DEPTH) if rerank else k
            allowed = self._filter_mask(st, filters)
            if allowed is None:
                dist, cand = st.index.search(code, depth)
                dist, cand = dist[0], cand[0]
            else:
                cand_ids = st.ids[allowed]
                present = np.isin(cand_ids, st.index.ids())
                cand_ids = cand_ids[present]
                d_all = (
                    hamming_distances(code, st.index.get(cand_ids))
                    if len(cand_ids)
                    else np.zeros(0, np.int32)
                )
                order = np.lexsort((cand_ids, d_all))[:depth]
                dist, cand = d_all[order], cand_ids[order]
            times["search"] = (time.perf_counter() - t2) * 1e3

            t3 = time.perf_counter()
            rows = np.searchsorted(st.ids, cand)
            # A dropped photo has no labels: where the model predicts them, its predicted coarse
            # and fine labels stand in (measured: dtd10 mAP +0.02 over colour alone,
            # benchmarks/bench_rerank.py); labels the caller gives always win.
            q_coarse, q_fine = query_labels.coarse, query_labels.fine
            if predicted is not None and q_coarse is None and q_fine is None:
                q_coarse, q_fine = _confident_labels(predicted)
            qlab = LabelArrays.from_records(
                self.library.taxonomy,
                [q_coarse],
                [q_fine],
                [query_labels.tightness],
                [palette],
            )
            comps = fine_grained_components(qlab, st.labels.subset(rows))
            s = combine_components(comps)[0] if len(rows) else np.zeros(0, np.float32)
            hsim = 1.0 - dist.astype(np.float64) / bits
            if rerank and balance != BALANCE_DEFAULT and len(rows):
                score = _balanced_score(comps, hsim, balance)
            elif rerank:
                score = RERANK_HAMMING_WEIGHT * hsim + (1.0 - RERANK_HAMMING_WEIGHT) * s
            else:
                score = hsim
            exact_id = st.sha.get(sha) if sha else None
            # Sort by score (desc), then Hamming distance, then id; the query file itself first.
            is_exact = (cand == exact_id) if exact_id is not None else np.zeros(len(cand), bool)
            order = np.lexsort((cand, dist, -score, ~is_exact))[:k]
            hits = []
            for rank, j in enumerate(order, start=1):
                row = int(rows[j])
                iid = int(cand[j])
                breakdown = {
                    c: (None if math.isnan(float(comps[c][0, j])) else float(comps[c][0, j]))
                    for c in COMPONENTS
                }
                hits.append(
                    SearchHit(
                        image_id=iid,
                        path=st.paths[iid],
                        rank=rank,
                        hamming=int(dist[j]),
                        similarity=float(s[j]),
                        breakdown=breakdown,
                        score=float(score[j]),
                        coarse=st.coarse[row],
                        fine=st.fine[row],
                        tightness=st.tightness[row],
                        exact=bool(is_exact[j]),
                    )
                )
            times["rerank"] = (time.perf_counter() - t3) * 1e3
            times["total"] = (time.perf_counter() - t0) * 1e3
            return SearchResult(
                query=name,
                model=st.info.version,
                bits=bits,
                palette=palette,
                hits=hits,
                elapsed_ms=times,
                reranked=rerank,
                predicted=predicted,
            )

    def _filter_mask(self, st: _State, f: SearchFilters) -> np.ndarray | None:
        if not f.active:
            return None
        tax = self.library.taxonomy
        lab = st.labels
        mask = np.ones(len(st.ids), dtype=bool)
        if f.coarse_minor:
            try:
                _major, minor = tax.coarse_indices(f.coarse_minor)
            except ValueError as exc:
                raise SearchError(str(exc)) from exc
            mask &= lab.minor == minor
        if f.coarse_major:
            if f.coarse_major not in tax.majors:
                raise SearchError(f"unknown coarse category {f.coarse_major!r}")
            mask &= lab.major == tax.majors.index(f.coarse_major)
        if f.fine:
            try:
                mask &= lab.fine == tax.fine_index(f.fine)
            except ValueError as exc:
                raise SearchError(str(exc)) from exc
        if f.tightness_min is not None:
            mask &= lab.tightness >= f.tightness_min  # NaN (unknown) compares False
        if f.tightness_max is not None:
            mask &= lab.tightness <= f.tightness_max
        if f.contains_colour:
            if f.contains_colour not in colour.COLOUR_NAMES:
                raise SearchError(
                    f"unknown colour {f.contains_colour!r}; one of {', '.join(colour.COLOUR_NAMES)}"
                )
            from fabricsearch.similarity import colour_mask

            mask &= colour_mask(lab.palette, f.contains_colour)
        if f.labelled_only:
            mask &= (lab.major >= 0) | (lab.fine >= 0) | ~np.isnan(lab.tightness)
        if f.image_ids is not None:
            mask &= np.isin(st.ids, np.fromiter(f.image_ids, np.int64, len(f.image_ids)))
        return mask


def search(
    library: Library,
    image: Path | str | np.ndarray,
    k: int = 20,
    filters: SearchFilters | None = None,
    query_labels: QueryLabels | None = None,
    rerank: bool | None = None,
    balance: float | None = None,
    crop: tuple[int, int, int, int] | None = None,
) -> SearchResult:
    """One-shot search (loads the model and index each call; use `Searcher` for many queries)."""
    return Searcher(library).search(image, k, filters, query_labels, rerank, balance, crop)


def _balanced_score(comps: dict[str, np.ndarray], hsim: np.ndarray, balance: float) -> np.ndarray:
    """The re-rank score with colour weighted min(1, 2b) and each texture part (the Hamming
    similarity, coarse, fine, tightness) min(1, 2(1 - b)); at b = 0.5 every weight is 1 and
    this equals the default score (0.5 · Hamming + 0.5 · mean of the known components)."""
    wc, wt = min(1.0, 2.0 * balance), min(1.0, 2.0 * (1.0 - balance))
    num = np.zeros(hsim.shape, np.float64)
    den = np.zeros(hsim.shape, np.float64)
    for c in COMPONENTS:
        v = comps[c][0].astype(np.float64)
        known = ~np.isnan(v)
        w = wc if c == "colour" else wt
        num += np.where(known, w * np.nan_to_num(v), 0.0)
        den += np.where(known, w, 0.0)
    s = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    h = RERANK_HAMMING_WEIGHT * wt
    return (h * hsim + (1.0 - RERANK_HAMMING_WEIGHT) * s) / (h + 1.0 - RERANK_HAMMING_WEIGHT)


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """'X,Y,W,H' (pixels) → a crop tuple; raises `SearchError` with the reason."""
    try:
        x, y, w, h = (int(v) for v in text.replace(" ", "").split(","))
    except ValueError:
        raise SearchError(f"a crop is X,Y,W,H in pixels, got {text!r}") from None
    return x, y, w, h


def _crop(rgb: np.ndarray, crop: tuple[int, int, int, int]) -> np.ndarray:
    x, y, w, h = (int(v) for v in crop)
    height, width = rgb.shape[:2]
    if w <= 0 or h <= 0 or x < 0 or y < 0 or x >= width or y >= height:
        raise SearchError(f"the crop {x},{y},{w},{h} is not inside the {width}×{height} px photo")
    return np.ascontiguousarray(rgb[y : min(height, y + h), x : min(width, x + w)])


#: Predicted labels below this confidence do not enter the re-ranking (a guess that is more
#: likely wrong than right would push true matches down).
PREDICTION_MIN_CONFIDENCE = 0.5


def _confident_labels(predicted: dict[str, object]) -> tuple[str | None, str | None]:
    """The predicted (coarse, fine) labels confident enough to stand in for unknown ones."""
    out: list[str | None] = []
    for key in ("coarse", "fine"):
        value, conf = predicted.get(key), predicted.get(f"{key}_confidence") or 0.0
        ok = isinstance(value, str) and float(conf) >= PREDICTION_MIN_CONFIDENCE  # type: ignore[arg-type]
        out.append(value if ok else None)  # type: ignore[arg-type]
    return out[0], out[1]


def _encode_query(
    method: HashMethod, source: Path | str | np.ndarray, library: Library
) -> tuple[np.ndarray, dict[str, object] | None]:
    """The query's packed code and, where the model has classification heads, its predicted
    labels — from one pass of the network (the same input recipe as the library's images)."""
    import torch

    from fabricsearch.hashing.encode import encode_images, encode_tensor
    from fabricsearch.hashing.predict import can_predict, predict_inputs

    if not can_predict(method):
        return pack_codes(encode_images(method, [source]))[0], None
    if method.on_features:
        from fabricsearch.featurestore import compute_features

        feats, ok = compute_features([source], method.backbone)
        if not ok[0]:
            raise SearchError("the query image cannot be decoded")
        x = torch.from_numpy(feats[:, 0].astype(np.float32))
    else:
        from fabricsearch.hashing.data import preprocess

        rgb = source if isinstance(source, np.ndarray) else _load_query(source)[0]
        x = preprocess([rgb], method.input_size)
    code = pack_codes(encode_tensor(method, x))[0]
    c, cc, f, fc = predict_inputs(method, x, library.taxonomy)[0]
    predicted: dict[str, object] = {
        "coarse": c,
        "coarse_confidence": round(cc, 4),
        "fine": f,
        "fine_confidence": round(fc, 4),
    }
    return code, predicted


def _load_query(
    image: Path | str | np.ndarray, crop: tuple[int, int, int, int] | None = None
) -> tuple[np.ndarray, str, str | None]:
    """Decode a query → (RGB uint8, display name, sha256 of the file or None); with `crop`
    (pixels of the original photo) only that region, and no sha (it is not the file)."""
    from fabricsearch.imaging import ImageError, decode, read_bytes, resize_max_side

    if isinstance(image, np.ndarray):
        rgb = image
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise SearchError("the query must be an RGB image (H, W, 3) of 8-bit values")
        name, sha = "<image>", None
        if crop is not None:
            rgb = resize_max_side(_crop(rgb, crop), QUERY_MAX_SIDE)
    else:
        path = Path(image)
        if not path.exists():
            raise SearchError(f"{path}: no such file")
        if path.is_dir():
            raise SearchError(f"{path} is a folder, not an image")
        try:
            # Bounded, regular files only: a FIFO or /dev/zero as a query must not hang.
            data = read_bytes(path)
        except ImageError as exc:
            raise SearchError(f"{path}: {exc}") from exc
        try:
            # A crop is in pixels of the original photo: decode it whole, then crop.
            rgb = decode(data, max_side=None if crop else QUERY_MAX_SIDE)[0]
        except ImageError as exc:
            raise SearchError(f"{path.name}: {exc}") from exc
        name, sha = str(path), hashlib.sha256(data).hexdigest()
        if crop is not None:
            rgb = resize_max_side(_crop(rgb, crop), QUERY_MAX_SIDE)
            sha = None
    if min(rgb.shape[:2]) < MIN_QUERY_SIDE:
        raise SearchError(
            f"the query image is too small ({rgb.shape[1]}×{rgb.shape[0]} px); "
            f"use a photo at least {MIN_QUERY_SIDE} px on each side"
        )
    return rgb, name, sha


def _save_index_quietly(index: HammingIndex, path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        index.save(path)
    except OSError as exc:
        log.warning("could not save index %s: %s", path, exc)


def encode_missing(
    lib: Library,
    version: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> int:
    """Encode the images that have no code under the model `version` (the active one by default),
    add their codes, and drop the saved index so it is rebuilt. Returns how many were encoded."""
    from fabricsearch.hashing.encode import encode_records, load_library_model

    method, info, _meta = load_library_model(lib, version)
    have, _ = lib.load_codes(info.version)
    have_set = set(have.tolist())
    todo = [r for r in lib.images() if r.id not in have_set]
    if not todo:
        return 0
    ids, packed = encode_records(lib, method, todo, 32, progress, cancel)
    if len(ids):
        lib.add_codes(info.version, ids.tolist(), packed)  # also drops the stale index
    return len(ids)
