"""Query pipeline: image → colour + code → Hamming candidates → re-rank → explained results.

Two stages: the Hamming index gives the candidates; their order comes from float similarity —
the cached backbone features (cosine; "this very fabric", a near-duplicate is marked
`same_fabric` and comes first), the label components (predicted ones weighed by their
confidence; "this kind of fabric") and a camera-tolerant colour similarity. Candidates without
a cached feature keep the Hamming + fine-grained score. See docs/search.md.

`Searcher(library)` keeps the active model, its Hamming index and the library's label arrays in
memory, so a query costs one decode, one forward pass and one index scan. It notices when the
active model changes; after labels change, call `invalidate_labels()`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fabricsearch import colour, verify
from fabricsearch.codes import pack_codes
from fabricsearch.config import SEARCH_RESULTS
from fabricsearch.errors import UserError
from fabricsearch.jobs import CancelToken, Progress, ProgressFn
from fabricsearch.similarity import LabelArrays, combine_components, fine_grained_components

if TYPE_CHECKING:
    from collections.abc import Callable

    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.featurestore import FeatureStore
    from fabricsearch.hashing.base import HashMethod
    from fabricsearch.index import HammingIndex
    from fabricsearch.sketch import Sketch

log = logging.getLogger(__name__)

#: Smallest query side we accept: below this there is no texture to see.
MIN_QUERY_SIDE = 24
#: Queries are decoded exactly as the importer decodes library images (bounded side), so the
#: query's palette is measured the same way as the library's palettes.
QUERY_MAX_SIDE = 512  # equals catalogue.importer.WORK_SIDE; a test checks it
#: Candidates re-ranked: the top R of the Hamming ranking, R = max(RERANK_DEPTH,
#: RERANK_SHARE · library size, at most RERANK_MAX). Chosen by measurement: the original of a
#: re-photographed library fabric must be among them. Its Hamming rank grows with the library
#: (benchmarks/bench_same_fabric.py, "rank at 1M"): on the label-free codes a phone photo,
#: a white balance, JPEG, rotation or perspective keeps it within the first 1 % for 95 % of
#: the photos on both dev sets, where a fixed 200 holds only up to a few thousand photos.
#: Heavy crops and blur on batik6, and class-trained codes, need more (docs/search.md).
#: RERANK_MAX caps it by the query's cost: at 1M photos 10,000 candidates took 302 ms a
#: query and 2 GB more memory (1,000: ~90 ms at 100k). Where the library has a feature sketch
#: (`fabricsearch.sketch`, every library on a pretrained backbone once its codes are complete)
#: the sketch's top SKETCH_DEPTH hold the original instead and R is RERANK_DEPTH.
RERANK_DEPTH = 200
RERANK_SHARE = 0.01
RERANK_MAX = 1_000
#: Candidates from the feature sketch (top S by sketch cosine), merged with the Hamming top R.
#: Chosen by measurement (benchmarks/bench_same_fabric.py, "sketch rank at 1M"; docs/search.md).
SKETCH_DEPTH = 200


def rerank_depth(library_size: int, k: int = 0, sketch: bool = False) -> int:
    """How many Hamming candidates the second stage re-ranks in a library of this size
    (`sketch`: the library's feature sketch adds its own candidates, so R stays the floor)."""
    if sketch:
        return max(k, RERANK_DEPTH)
    share = int(np.ceil(RERANK_SHARE * max(0, library_size)))
    return max(k, RERANK_DEPTH, min(share, RERANK_MAX))


#: Cosine of the cached backbone features at or above which a candidate is the query's fabric
#: itself ("same fabric"), ranked first. Chosen by measurement on dtd10, confirmed on batik6:
#: different fabrics of one class stay below it (benchmarks/bench_same_fabric.py).
SAME_FABRIC_COSINE = 0.9
#: ... and whose camera-tolerant colour similarity is at least this (the same design in
#: another colourway has a cosine as high as the fabric itself; its colours tell it apart).
SAME_FABRIC_COLOUR = 0.7
#: The feature similarity in the score is the cosine rescaled from [FEATURE_FLOOR, 1] to
#: [0, 1] (unrelated photos have cosines around 0.4–0.6 on the pretrained backbone).
FEATURE_FLOOR = 0.5
#: Weight of the feature similarity in the re-rank score, against FEATURE_HAMMING_WEIGHT for
#: the Hamming similarity and 1 - RERANK_HAMMING_WEIGHT for S (docs/search.md).
FEATURE_WEIGHT = 1.0
#: Weight of the Hamming similarity for a candidate whose feature is cached (the code is a
#: coarse copy of the feature then; measured on dtd10: 0.2 ≥ 0.5 in R@1).
FEATURE_HAMMING_WEIGHT = 0.2
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
#: At most this many images lacking a code are encoded by the step before a query
#: (`Searcher.complete_codes`, about a second each 100 on a laptop CPU); more are left to
#: `fabricsearch encode` with a warning. A query itself writes nothing.
MAX_INLINE_ENCODE = 500
#: `encode_missing` commits the codes of this many images at a time (a kill loses at most these).
ENCODE_COMMIT_EVERY = 256


class SearchError(UserError):
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
    #: Cosine of the cached backbone features of the query and this image (None: not cached).
    feature_similarity: float | None = None
    #: The query's fabric itself in a new photo (feature cosine ≥ SAME_FABRIC_COSINE, or its
    #: details found again by the local-feature check, fabricsearch/verify.py).
    same_fabric: bool = False
    #: Keypoints of the query found again in this image by that check (0: not the same fabric
    #: by its details, or not checked).
    matched_points: int = 0
    #: Components whose query label the model predicted: component → its confidence (each
    #: weighs that much in S); a label the user gave weighs 1 and is not listed.
    predicted: dict[str, float] = field(default_factory=dict)

    def explain(self) -> str:
        """'same fabric 97 · colour 92 · texture ~ predicted 64 % · tight 95' (unknown parts
        left out): what the ranking saw, in percent."""
        return explain_hit(self)

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
            "same_fabric": self.same_fabric,
            "matched_points": self.matched_points,
            "feature_similarity": (
                None if self.feature_similarity is None else round(self.feature_similarity, 6)
            ),
            "predicted": {k: round(v, 4) for k, v in self.predicted.items()},
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
    #: What the query computed: `Searcher.rerank(result.state, ...)` re-ranks in milliseconds.
    state: QueryState | None = field(default=None, repr=False, compare=False)
    #: Library images with no code under the model yet, so not found by this search (an
    #: import still encoding, or interrupted): `Searcher.complete_codes` or `encode` adds them.
    unsearchable: int = 0

    def to_json(self) -> dict[str, object]:
        return {
            "query": {"path": self.query, "predicted": self.predicted},
            "model": self.model,
            "bits": self.bits,
            "reranked": self.reranked,
            "unsearchable": self.unsearchable,
            "colours": colour.palette_report(self.palette),
            "results": [h.to_json() for h in self.hits],
            "elapsed_ms": {k: round(v, 2) for k, v in self.elapsed_ms.items()},
        }


class StaleQueryError(SearchError):
    """A kept query (`QueryState`) no longer fits: the active model changed; search again."""


@dataclass
class Candidates:
    """Hamming candidates of one query with what re-ranking needs of each, aligned arrays:
    ids (int64), Hamming distances, rows into the searcher's label arrays, the label and colour
    components (float32, NaN = unknown), S, and the feature cosine (NaN = not cached)."""

    ids: np.ndarray
    dist: np.ndarray
    rows: np.ndarray
    comps: dict[str, np.ndarray]
    s: np.ndarray
    fcos: np.ndarray
    #: The list holds every image its filters let through (fewer than the depth asked).
    complete: bool = False

    @classmethod
    def empty(cls) -> Candidates:
        z = np.zeros(0, np.float32)
        return cls(
            np.zeros(0, np.int64),
            np.zeros(0, np.int32),
            np.zeros(0, np.int64),
            {c: z for c in COMPONENTS},
            z,
            np.zeros(0, np.float64),
            True,
        )

    def take(self, idx: np.ndarray, complete: bool = False) -> Candidates:
        return Candidates(
            self.ids[idx],
            self.dist[idx],
            self.rows[idx],
            {c: v[idx] for c, v in self.comps.items()},
            self.s[idx],
            self.fcos[idx],
            complete,
        )

    def head(self, depth: int) -> Candidates:
        """The first `depth` (the list is in (distance, id) order)."""
        if len(self.ids) <= depth:
            return self
        return self.take(slice(0, depth))  # type: ignore[arg-type]

    @staticmethod
    def merge(a: Candidates, b: Candidates) -> Candidates:
        """The union of two id-sorted pools (disjoint ids), id-sorted."""
        ids = np.concatenate([a.ids, b.ids])
        order = np.argsort(ids, kind="stable")

        def cat(x: np.ndarray, y: np.ndarray) -> np.ndarray:
            return np.concatenate([x, y])[order]

        return Candidates(
            ids[order],
            cat(a.dist, b.dist),
            cat(a.rows, b.rows),
            {c: cat(a.comps[c], b.comps[c]) for c in COMPONENTS},
            cat(a.s, b.s),
            cat(a.fcos, b.fcos),
        )


#: Candidate lists a `QueryState` keeps (one per filter asked, the unfiltered one included).
KEPT_LISTS = 8


@dataclass(eq=False)
class QueryState:
    """What one query computed, kept for re-ranking (`Searcher.rerank`) without decoding or
    running the network again: the query's code, backbone feature, palette and its camera
    corrections, predicted labels, and the candidate lists with their components."""

    query: str  # display name
    model: str  # the model version the code belongs to
    bits: int
    code: np.ndarray  # packed
    feature: np.ndarray | None  # backbone feature (None: model not on features)
    palette: np.ndarray  # (10, 4)
    camera: np.ndarray | None  # (G, 10, 4) palettes under camera corrections
    predicted: dict[str, object] | None
    weights: dict[str, float]  # predicted components → their confidence
    labels: LabelArrays  # the query's labels (given or predicted) and palette, one row
    sha: str | None
    rerank: bool
    elapsed_ms: dict[str, float]  # decode, encode, colour: what `prepare` cost
    _owner: object = None
    _generation: int = -1
    _lists: dict[SearchFilters | None, Candidates] = field(default_factory=dict)
    _pool: Candidates | None = None  # every candidate seen, by id
    _exact_id: int | None = None
    _exact_known: bool = False
    # The feature sketch's candidates: its cosines over the current rows (computed once per
    # query and sketch) and the top SKETCH_DEPTH ids per filter.
    _sketch_token: object = None
    _sketch_scores: np.ndarray | None = None
    _sketch_lists: dict[SearchFilters | None, np.ndarray] = field(default_factory=dict)
    #: The local-feature check of the first candidates (fabricsearch/verify.py): the query's
    #: grey 512-px image and every candidate checked so far (None: re-ranking off).
    verification: verify.Verification | None = None

    def _keep(self, key: SearchFilters | None, lst: Candidates) -> None:
        self._lists.pop(key, None)
        self._lists[key] = lst
        while len(self._lists) > KEPT_LISTS:
            drop = next((k for k in self._lists if k is not None), None)
            self._lists.pop(drop)

    def _forget(self) -> None:
        """The library changed: candidates and their components are computed again."""
        self._lists.clear()
        self._pool = None
        self._exact_id, self._exact_known = None, False
        self._sketch_token, self._sketch_scores = None, None
        self._sketch_lists.clear()
        if self.verification is not None:
            self.verification.checked.clear()


def _check_settings(k: int, balance: float | None) -> float:
    balance = BALANCE_DEFAULT if balance is None else float(balance)
    if not 0.0 <= balance <= 1.0:
        raise SearchError(f"the balance must be between 0 and 1, got {balance:g}")
    if k <= 0:
        raise SearchError("k must be at least 1")
    return balance


@dataclass
class _State:
    info: ModelInfo
    method: HashMethod
    index: HammingIndex
    ids: np.ndarray  # int64, the library's image ids (ascending), aligned with labels
    labels: LabelArrays
    paths: _PathsById | dict[int, Path]  # image id → path
    sha: _ShaColumn | dict[str, int]  # `.get(content hash)` → image id
    coarse: list[str | None]
    fine: list[str | None]
    tightness: list[float | None]
    shas: _ShaColumn | list[str] = field(default_factory=list)  # content hash of each row
    synced: int = -1  # the library's image count when the index was last brought up to date
    coded: int = -1  # how many of them had a code under the model then
    features: FeatureStore | None = None  # the cached features re-ranking reads (kept open)
    sketch: Sketch | None = None  # the feature sketch (second candidate source), if any
    sketch_stamp: tuple[int, ...] | None = None  # its files when opened (None: not looked yet)
    # (sketch rows, library rows) of the current, searchable images; the generation matched at
    sketch_match: tuple[np.ndarray, np.ndarray] | None = None
    sketch_generation: int = -1

    @property
    def unsearchable(self) -> int:
        """Images without a code under the model at the last update: not in the index."""
        return max(0, self.synced - self.coded)


class _PathsById:
    """Image id → `Path` over the loaded rows: a dict of a million `Path`s costs seconds and
    half a gigabyte; this keeps the path texts and makes the `Path` of a hit when asked."""

    def __init__(self, ids: np.ndarray, paths: list[str]) -> None:
        self._ids, self._paths = ids, paths

    def __getitem__(self, image_id: int) -> Path:
        row = int(np.searchsorted(self._ids, image_id))
        if row >= len(self._ids) or self._ids[row] != image_id:
            raise KeyError(image_id)
        return Path(self._paths[row])


class _ShaColumn:
    """The content hash of each loaded row (``[row]`` → hex text) and the image of a content
    hash (``.get(hex)`` → id), over the 32-byte digests (no dict of a million texts)."""

    def __init__(self, ids: np.ndarray, digests: np.ndarray) -> None:
        self._ids, self._digests = ids, digests
        # The first 8 bytes as one integer: a lookup compares N integers, then the few hits.
        self._head = np.ascontiguousarray(digests[:, :8]).view(np.uint64).reshape(-1)

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def digests(self) -> np.ndarray:
        """(N, 32) uint8, aligned with the loaded rows."""
        return self._digests

    def __getitem__(self, row: int) -> str:
        return self._digests[row].tobytes().hex()

    def get(self, sha: str, default: int | None = None) -> int | None:
        try:
            q = np.frombuffer(bytes.fromhex(sha), np.uint8)
        except (ValueError, TypeError):
            return default
        if len(q) != 32:
            return default
        for row in np.flatnonzero(self._head == q[:8].view(np.uint64)[0]).tolist():
            if np.array_equal(self._digests[row], q):
                return int(self._ids[row])
        return default


def index_file(lib: Library, version: str) -> Path:
    from fabricsearch.index import index_path

    return index_path(lib.indexes_dir, version)


class Searcher:
    """Answers queries against one library; thread-safe (one query at a time).

    A query writes nothing to the catalogue: images without a code under the active model
    are left out and counted (`SearchResult.unsearchable`); `complete_codes`, the one method
    that writes, encodes them (the search service calls it before a query). A query writes
    only caches: the Hamming index file (rebuilt from the codes) and, on a team library's
    client, the active model's files downloaded when it is first loaded (`fetch_model`)."""

    def __init__(self, library: Library, device: str = "cpu") -> None:
        self.library = library
        self.device = device
        self._state: _State | None = None
        self._checked: tuple[object, ...] | None = None  # change_token at the last check
        self._lock = threading.RLock()
        self._unencodable: dict[str, set[int]] = {}  # model version → ids that fail to decode
        self._token = object()  # kept `QueryState`s know which searcher they belong to
        #: Bumped whenever the loaded images, codes or labels change: kept candidates are stale.
        self._generation = 0
        # Set by `invalidate` / `invalidate_labels` without the lock (a window's GUI thread
        # calls them while a query runs in a worker); the next query applies them, locked.
        self._stale_all = False
        self._stale_labels = False
        self._sketched: tuple[int, int] | None = None  # (state, generation) the sketch is of
        self._mask_memo: tuple[tuple[object, ...], np.ndarray] | None = None  # last filter's

    # --- state --------------------------------------------------------------------------------
    def invalidate(self) -> None:
        """Forget everything cached (model, index, labels) at the next query. Only marks it:
        takes no lock and reads nothing, so a GUI thread never waits for a running query."""
        self._stale_all = True

    def invalidate_labels(self) -> None:
        """Labels changed: the next query reloads the label arrays (model and index stay).
        Only marks them stale: takes no lock and reads nothing (see `invalidate`)."""
        self._stale_labels = True

    def _apply_invalidations(self) -> None:
        """What `invalidate` / `invalidate_labels` asked for; called with the lock held. A flag
        is cleared before the work, so one set meanwhile is applied by the next query."""
        if self._stale_all:
            self._stale_all = self._stale_labels = False
            self._state = None
            self._checked = None
            self._generation += 1
        if self._stale_labels:
            self._stale_labels = False
            if self._state is not None:
                self._load_labels(self._state)
            self._generation += 1

    def _ensure(self) -> _State:
        self._apply_invalidations()
        # A library folder whose catalogue files (and WAL) are as they were at the last check
        # has no new commit, by anyone: nothing to ask the catalogue (a stat, microseconds,
        # instead of counting 100k rows on every query and every re-rank).
        token = self.library.change_token() if self.library.team is None else None
        st = self._state
        if st is not None and token is not None and token == self._checked:
            return st
        st = self._ensure_checked()
        self._checked = token
        return st

    def _ensure_checked(self) -> _State:
        info = self.library.active_model()
        if info is None:
            raise SearchError(
                "this library has no search model yet: train one (Model ▸ Retrain…, or "
                "`fabricsearch train`) or install the default model (`fabricsearch encode`)"
            )
        st = self._state
        if st is not None and st.info.version == info.version:
            # Same model: images added or removed since (an import, another process, another
            # client of a team library), or codes given to images that had none, update the
            # open index in place.
            if st.synced != self.library.count() or (
                st.unsearchable and self.library.count_codes(info.version) != st.coded
            ):
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
            # A team library's client downloads the model's files into its cache first.
            info = self.library.fetch_model(info.version)
            method, _meta = load_checkpoint(info.path, device=self.device)
        except (CheckpointError, LibraryError, OSError) as exc:
            raise SearchError(f"the active model {info.version} cannot be loaded: {exc}") from exc
        method.eval()
        synced = self.library.count()

        def rebuild() -> tuple[np.ndarray, np.ndarray]:
            return self.library.load_codes(info.version)

        try:
            coded = self.library.count_codes(info.version)
            index = HammingIndex.load_or_rebuild(
                index_file(self.library, info.version), info.bits, rebuild
            )
            if len(index) != coded:
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
        st.synced, st.coded = synced, coded
        self._warn_unsearchable(st)
        self._state = st
        self._generation += 1
        return st

    def _update_incrementally(self, st: _State) -> None:
        """Images were added or removed under the same active model, or codes given: add
        just the new codes to the open index, remove the gone images, and refresh the label
        arrays; no full reload of the codes. Images without a code stay out (counted)."""
        from fabricsearch.catalogue import LibraryError

        version = st.info.version
        synced = self.library.count()
        try:
            coded = self.library.count_codes(version)
            now = np.asarray(self.library.image_ids(), dtype=np.int64)
            gone = np.setdiff1d(st.index.ids(), now)
            new = np.setdiff1d(now, st.index.ids())
            if len(gone):
                st.index.remove(gone)
            if len(new):
                ids, packed = self.library.load_codes(version, ids=new.tolist())
                st.index.add(ids, packed)
            self._load_labels(st)
            self._generation += 1
        except LibraryError as exc:
            self._state = None  # a half-updated state is not kept
            self._generation += 1
            raise SearchError(str(exc)) from exc
        st.synced, st.coded = synced, coded
        self._warn_unsearchable(st)
        log.info("index of %s updated: %d added, %d removed", version, len(new), len(gone))
        if len(new) or len(gone):
            _save_index_quietly(st.index, index_file(self.library, version))

    def _warn_unsearchable(self, st: _State) -> None:
        if st.unsearchable:
            log.warning(
                "%d images have no code under the active model %s and cannot be found yet: "
                "run `fabricsearch encode LIB`",
                st.unsearchable,
                st.info.version,
            )

    def complete_codes(
        self,
        limit: int = MAX_INLINE_ENCODE,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> int:
        """Encode the images that have no code under the active model, when they are at most
        ``limit`` (more is minutes of work: left to `encode_missing`, with a warning), so that
        the next query finds them. Every image has a code after an activation or a finished
        import; this finishes what an interrupted import, another client's import still
        encoding, or an older version left. The explicit writing step before a query
        (`services.search.ensure_codes`); a read-only library is left as it is. Returns how
        many images stay unsearchable (undecodable files among them). Brings the feature
        sketch up to date too (`fabricsearch.sketch`)."""
        with self._lock:
            left = self._complete_codes(limit, progress, cancel)
            self._extend_sketch(progress)
            return left

    def _extend_sketch(self, progress: ProgressFn | None = None) -> None:
        """Give the feature sketch a row for each image with a cached feature and none yet (fit
        it when there is none): the sketch's share of the step before a query. Checked once
        per change of the loaded images; a failure leaves the search on what is there."""
        st = self._ensure()
        if self.library.read_only or not st.method.on_features:
            return
        if self._sketched == (id(st), self._generation):
            return
        written = _write_sketch(
            self.library,
            self._feature_store(st),
            st.method.backbone,
            lambda: (st.ids, self._digests(st)),
            progress,
        )
        if written:
            self._sketched = (id(st), self._generation)

    def _complete_codes(
        self,
        limit: int,
        progress: ProgressFn | None,
        cancel: CancelToken | None,
    ) -> int:
        import sqlite3

        from fabricsearch.catalogue import LibraryError
        from fabricsearch.hashing.activation import complete_codes

        with self._lock:
            st = self._ensure()
            if not st.unsearchable or self.library.read_only:
                return st.unsearchable
            version = st.info.version
            failed = self._unencodable.setdefault(version, set())
            missing = st.unsearchable - len(failed)
            if missing <= 0 or missing > limit:
                return st.unsearchable
            try:
                failed |= complete_codes(self.library, version, st.method, progress, cancel, failed)
            except (LibraryError, sqlite3.Error, OSError) as exc:
                log.warning("images without a code under %s stay unsearchable: %s", version, exc)
                return st.unsearchable
            if failed:
                log.warning(
                    "%d images cannot be encoded with %s and cannot be found by search",
                    len(failed),
                    version,
                )
            return self._ensure().unsearchable

    def _load_labels(self, st: _State) -> None:
        # Columns in one read (no ImageRecord per image): 100k images in well under a second.
        cols = self.library.columns()
        st.ids = cols.ids
        st.labels = cols.label_arrays(self.library.taxonomy)
        st.paths = _PathsById(cols.ids, cols.paths)
        st.sha = st.shas = _ShaColumn(cols.ids, cols.sha)
        st.coarse, st.fine, st.tightness = cols.coarse, cols.fine, cols.tightness

    def _feature_store(self, st: _State) -> FeatureStore:
        """The model's feature store, opened once per loaded state: its key index and its
        rows' checksum verdicts are kept between queries (it notices rows appended since)."""
        if st.features is None:
            from fabricsearch.featurestore import store_for

            st.features = store_for(self.library.folder, st.method.backbone)
        return st.features

    # --- query --------------------------------------------------------------------------------
    def search(
        self,
        image: Path | str | np.ndarray,
        k: int = SEARCH_RESULTS,
        filters: SearchFilters | None = None,
        query_labels: QueryLabels | None = None,
        rerank: bool | None = None,
        balance: float | None = None,
        crop: tuple[int, int, int, int] | None = None,
    ) -> SearchResult:
        """Find the `k` library images most similar to `image` (a path or an RGB uint8 array).

        `balance` (0–1, default `BALANCE_DEFAULT`) shifts the re-ranking from texture (0) to
        colour (1). `crop` = (x, y, w, h) in pixels of the original photo (after EXIF
        rotation) searches with that region only.

        This is `prepare` (decode + one network pass) followed by `rerank`; the result's
        `state` re-ranks again for another balance, top N or filter in milliseconds."""
        t0 = time.perf_counter()
        _check_settings(k, balance)
        state = self.prepare(image, query_labels, rerank, crop)
        result = self.rerank(state, k, filters, balance)
        times = dict(state.elapsed_ms)
        times.update({key: v for key, v in result.elapsed_ms.items() if key != "total"})
        times["total"] = (time.perf_counter() - t0) * 1e3
        return dataclasses.replace(result, elapsed_ms=times)

    def prepare(
        self,
        image: Path | str | np.ndarray,
        query_labels: QueryLabels | None = None,
        rerank: bool | None = None,
        crop: tuple[int, int, int, int] | None = None,
    ) -> QueryState:
        """What a query computes once: decode, palette (and its camera corrections), one pass
        of the network (code, predicted labels, backbone feature). No candidates yet: `rerank`
        finds and keeps them."""
        query_labels = query_labels or QueryLabels()
        rerank = RERANK_DEFAULT if rerank is None else bool(rerank)
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        rgb, name, sha, fine = _load_query(image, crop)
        palette = colour.quantise(fine)
        times["decode"] = (time.perf_counter() - t0) * 1e3

        with self._lock:
            st = self._ensure()
            t1 = time.perf_counter()
            # On a pretrained backbone the file goes through the library's own input recipe
            # (extract.decode_for → data.prepare_image), so a library photo used as a query
            # gets exactly its stored code; decode_for's pixels come from the decode the
            # palette was measured on (extract.net_pixels), so the file is decoded once.
            source: Path | str | np.ndarray = rgb
            if st.method.on_features and sha is not None and crop is None:
                from fabricsearch.hashing.backbones import get_spec
                from fabricsearch.hashing.extract import net_pixels

                source = net_pixels(fine, get_spec(st.method.backbone).input_size)
            code, predicted, qfeat = _encode_query(st.method, source, self.library)
            times["encode"] = (time.perf_counter() - t1) * 1e3
            t2 = time.perf_counter()
            # A dropped photo has no labels: where the model predicts them, each predicted
            # label stands in for the unknown one and weighs its confidence in S; labels the
            # caller gives weigh 1 and always win.
            q_coarse, q_fine = query_labels.coarse, query_labels.fine
            weights: dict[str, float] = {}
            if predicted is not None:
                q_coarse, q_fine, weights = _predicted_labels(predicted, q_coarse, q_fine)
            qlab = LabelArrays.from_records(
                self.library.taxonomy,
                [q_coarse],
                [q_fine],
                [query_labels.tightness],
                [palette],
            )
            # Colour that survives a camera: S_C is the best over plausible corrections of the
            # query's white balance and exposure (colour.camera_palettes).
            camera = colour.camera_palettes(fine) if rerank else None
            times["colour"] = (time.perf_counter() - t2) * 1e3
            return QueryState(
                query=name,
                model=st.info.version,
                bits=st.info.bits,
                code=code,
                feature=qfeat,
                palette=palette,
                camera=camera,
                predicted=predicted,
                weights=weights,
                labels=qlab,
                sha=sha,
                rerank=rerank,
                elapsed_ms=times,
                _owner=self._token,
                _generation=self._generation,
                verification=verify.Verification(verify.grey(rgb)) if rerank else None,
            )

    def rerank(
        self,
        state: QueryState,
        k: int = SEARCH_RESULTS,
        filters: SearchFilters | None = None,
        balance: float | None = None,
    ) -> SearchResult:
        """The results of the query `state` for `k`, `filters` and `balance`: recomputes only
        scores and order over the candidates the state keeps (no decode, no network).

        A filter or a top N that needs images outside the kept candidates gets a fresh Hamming
        stage with the query's cached code (milliseconds; still no decode or network). The
        result equals `search` with the same settings. Raises `StaleQueryError` when the
        active model changed since `prepare` (search again)."""
        filters = filters or SearchFilters()
        balance = _check_settings(k, balance)
        times: dict[str, float] = {}
        t0 = time.perf_counter()
        with self._lock:
            st = self._ensure()
            self._adopt(st, state)
            cand = self._candidates(st, state, filters, k, times)
            t3 = time.perf_counter()
            rerank = state.rerank
            dist, ids, rows = cand.dist, cand.ids, cand.rows
            comps = {c: cand.comps[c][None, :] for c in COMPONENTS}
            hsim = 1.0 - dist.astype(np.float64) / state.bits
            fcos = cand.fcos if rerank and st.method.on_features else None
            if rerank and len(rows):
                score = _rerank_score(comps, state.weights, hsim, fcos, balance)
            else:
                score = hsim
            same = np.zeros(len(ids), bool)
            if fcos is not None:
                # The same design in another colourway has a feature cosine as high as a new
                # photo of the fabric (dtd10: 0.95): the colours must agree too.
                col = np.nan_to_num(comps["colour"][0], nan=1.0)
                same = (np.nan_to_num(fcos, nan=-1.0) >= SAME_FABRIC_COSINE) & (
                    col >= SAME_FABRIC_COLOUR
                )
                # The same fabric in a new photo ranks before every other candidate (among them
                # by the score: features, colour and code together tell duplicates apart best);
                # its score stays the 0–1 score the user reads, the mark does the ordering.
            exact_id = state._exact_id
            # The query file itself first, then the same fabric, then by score (desc), Hamming
            # distance and id.
            is_exact = (ids == exact_id) if exact_id is not None else np.zeros(len(ids), bool)
            # The first few checked by local features: the very fabric under a crop, rotation
            # or perspective comes first (most agreeing keypoints first) and is marked.
            t4 = time.perf_counter()
            points = self._verified(
                st, state, ids, rows, comps["colour"][0], is_exact, dist, score, same
            )
            times["verify"] = (time.perf_counter() - t4) * 1e3
            same |= points > 0
            order = np.lexsort((ids, dist, -score, ~same, -points, ~is_exact))[:k]
            shown_predicted = {
                c: state.weights[c] for c in ("coarse", "fine") if c in state.weights
            }
            hits = []
            for rank, j in enumerate(order.tolist(), start=1):
                row = int(rows[j])
                iid = int(ids[j])
                breakdown = {
                    c: (None if math.isnan(float(cand.comps[c][j])) else float(cand.comps[c][j]))
                    for c in COMPONENTS
                }
                hits.append(
                    SearchHit(
                        image_id=iid,
                        path=st.paths[iid],
                        rank=rank,
                        hamming=int(dist[j]),
                        similarity=float(cand.s[j]),
                        breakdown=breakdown,
                        score=float(score[j]),
                        coarse=st.coarse[row],
                        fine=st.fine[row],
                        tightness=st.tightness[row],
                        exact=bool(is_exact[j]),
                        feature_similarity=(
                            None if fcos is None or math.isnan(float(fcos[j])) else float(fcos[j])
                        ),
                        same_fabric=bool(same[j]),
                        matched_points=int(points[j]),
                        predicted={
                            c: w for c, w in shown_predicted.items() if breakdown[c] is not None
                        },
                    )
                )
            times["rerank"] = (time.perf_counter() - t3) * 1e3
            times["total"] = (time.perf_counter() - t0) * 1e3
            return SearchResult(
                query=state.query,
                model=state.model,
                bits=state.bits,
                palette=state.palette,
                hits=hits,
                elapsed_ms=times,
                reranked=rerank,
                predicted=state.predicted,
                state=state,
                unsearchable=st.unsearchable,
            )

    def _verified(
        self,
        st: _State,
        state: QueryState,
        ids: np.ndarray,
        rows: np.ndarray,
        colour_sim: np.ndarray,
        is_exact: np.ndarray,
        dist: np.ndarray,
        score: np.ndarray,
        same: np.ndarray,
    ) -> np.ndarray:
        """Agreeing keypoints of each candidate the local-feature check found to be the query's
        fabric (0: not checked, or not the same fabric): the first `verify.VERIFY_TOP` of the
        order so far, against their stored thumbnails, and only where the order can change —
        not when the query is the library's file itself. Like the cosine mark, the colours
        must agree too (the same design in another colourway is another fabric)."""
        points = np.zeros(len(ids), np.int64)
        check = state.verification
        if check is None or not len(ids) or is_exact.any():
            return points
        first = np.lexsort((ids, dist, -score, ~same))[: verify.VERIFY_TOP]
        for j in first.tolist():
            if np.nan_to_num(colour_sim[j], nan=1.0) < SAME_FABRIC_COLOUR:
                continue
            sha = st.shas[int(rows[j])]
            found = check.check(int(ids[j]), self.library.thumb_path(sha, verify.SIDE))
            if found is not None and found.same_fabric:
                points[j] = found.inliers
        return points

    def _adopt(self, st: _State, state: QueryState) -> None:
        """Check that `state` still fits the loaded model; drop its kept candidates when the
        library changed since (images, labels) or it comes from another `Searcher`."""
        if state.model != st.info.version:
            raise StaleQueryError(
                f"the active model changed ({state.model} → {st.info.version}): search again"
            )
        if state._owner is not self._token or state._generation != self._generation:
            state._forget()
            state._owner, state._generation = self._token, self._generation
        if state._exact_id is None and state.sha and not state._exact_known:
            state._exact_id = st.sha.get(state.sha)
        state._exact_known = True

    def _candidates(
        self,
        st: _State,
        state: QueryState,
        filters: SearchFilters,
        k: int,
        times: dict[str, float],
    ) -> Candidates:
        """The candidates `search` would re-rank for `k` and `filters`: the first R by
        (Hamming distance, id) among the images the filters let through, and, where the
        library has a feature sketch, its first SKETCH_DEPTH by (sketch cosine, id) among them
        too (the very fabric, which class-trained codes lose in a large library)."""
        source = self._sketch_source(st) if state.rerank and state.feature is not None else None
        depth = rerank_depth(len(st.ids), k, sketch=source is not None) if state.rerank else k
        lst = self._hamming_candidates(st, state, filters, depth, times)
        if source is None:
            return lst
        t = time.perf_counter()
        extra = self._sketch_candidates(st, state, filters, source)
        extra = extra[~np.isin(extra, lst.ids)]
        times["sketch"] = (time.perf_counter() - t) * 1e3
        if len(extra):
            from fabricsearch.index import hamming_distances

            t = time.perf_counter()
            dist = hamming_distances(state.code, st.index.get(extra))
            lst = Candidates.merge(lst, self._with_components(st, state, extra, dist))
            times["components"] = times.get("components", 0.0) + (time.perf_counter() - t) * 1e3
        return lst

    def _sketch_source(self, st: _State) -> tuple[Sketch, np.ndarray, np.ndarray] | None:
        """The library's feature sketch with (its rows, the library rows) of the current,
        searchable images; None without one (Hamming-only candidates). Reads only: the sketch
        is written by `complete_codes` and `encode_missing`."""
        if not st.method.on_features:
            return None
        from fabricsearch import sketch as sketch_mod
        from fabricsearch.index import rows_of

        name = sketch_mod.feature_version(st.method.backbone)
        stamp = sketch_mod.stamp(self.library.indexes_dir, name)
        if stamp != st.sketch_stamp:
            st.sketch = sketch_mod.open_sketch(self.library.indexes_dir, name) if stamp else None
            st.sketch_stamp, st.sketch_match = stamp, None
        if st.sketch is None:
            return None
        if st.sketch_match is None or st.sketch_generation != self._generation:
            sk_rows, lib_rows = sketch_mod.match(
                st.sketch, st.ids, sketch_mod.heads(self._digests(st))
            )
            # Only images the Hamming index holds (a code under the model) can be results.
            coded = st.index.ids()
            ids = st.ids[lib_rows]
            # Usually every image with a row has a code: no lookup.
            if not (len(coded) == len(ids) and np.array_equal(coded, ids)):
                keep = rows_of(coded, ids) >= 0
                sk_rows, lib_rows = sk_rows[keep], lib_rows[keep]
            st.sketch_match, st.sketch_generation = (sk_rows, lib_rows), self._generation
        if not len(st.sketch_match[0]):
            return None
        return st.sketch, st.sketch_match[0], st.sketch_match[1]

    @staticmethod
    def _digests(st: _State) -> np.ndarray:
        shas = st.shas
        if isinstance(shas, _ShaColumn):
            return shas.digests
        return np.array([np.frombuffer(bytes.fromhex(h), np.uint8) for h in shas], np.uint8)

    def _sketch_candidates(
        self,
        st: _State,
        state: QueryState,
        filters: SearchFilters,
        source: tuple[Sketch, np.ndarray, np.ndarray],
    ) -> np.ndarray:
        """Ids of the first SKETCH_DEPTH images by (sketch cosine desc, id) among those the
        filters let through; the cosines are computed once per query, the list kept per
        filter."""
        sk, sk_rows, lib_rows = source
        token = (sk.fit, len(sk), st.sketch_generation)
        if state._sketch_token != token:
            state._sketch_token, state._sketch_scores = token, None
            state._sketch_lists.clear()
        key = filters if filters.active else None
        kept = state._sketch_lists.get(key)
        if kept is not None:
            return kept
        if state._sketch_scores is None:
            assert state.feature is not None
            every = sk.scores(state.feature)
            # Usually every row is current and in order: no gather over the whole library.
            same = len(sk_rows) == len(every) and np.array_equal(sk_rows, np.arange(len(every)))
            state._sketch_scores = every if same else every[sk_rows]
        score = state._sketch_scores
        # `sel` indexes `sc`; `cand` maps it to the current rows (None: all of them, in order).
        cand: np.ndarray | None = None
        sc = score
        if filters.active:
            # The mask over the whole library, then its current rows: no copy of every label
            # array (a subset of 1M rows' palettes alone would be 160 MB).
            allowed = self._filter_mask(st, filters)
            assert allowed is not None
            cand = np.flatnonzero(allowed[lib_rows])
            sc = score[cand]
        depth = SKETCH_DEPTH
        if len(sc) > depth:
            thr = _kth_largest(sc, depth)
            above, tied = np.flatnonzero(sc > thr), np.flatnonzero(sc == thr)
            # Ties at the boundary by id, as everywhere.
            if len(tied) > depth - len(above):
                tied_rows = tied if cand is None else cand[tied]
                tied = tied[np.argsort(st.ids[lib_rows[tied_rows]], kind="stable")]
            sel = np.concatenate([above, tied[: depth - len(above)]])
        else:
            sel = np.arange(len(sc))
        rows = sel if cand is None else cand[sel]
        ids = np.sort(st.ids[lib_rows[rows]])
        state._sketch_lists[key] = ids
        while len(state._sketch_lists) > KEPT_LISTS:
            state._sketch_lists.pop(next(k for k in state._sketch_lists if k is not None))
        return ids

    def _hamming_candidates(
        self,
        st: _State,
        state: QueryState,
        filters: SearchFilters,
        depth: int,
        times: dict[str, float],
    ) -> Candidates:
        """The first `depth` by (Hamming distance, id) among the images the filters let
        through.

        Every kept candidate list is a prefix of that order, so a deeper list or the unfiltered
        one (when enough of it passes the filters) answers without a Hamming stage; otherwise
        one runs with the cached code, and only candidates never seen by this query get their
        components computed."""
        key = filters if filters.active else None
        kept = state._lists.get(key)
        if kept is not None and (len(kept.ids) >= depth or kept.complete):
            return kept.head(depth)
        base = state._lists.get(None)
        if key is not None and base is not None:
            t = time.perf_counter()
            passes = np.flatnonzero(self._filter_mask(st, filters, base.rows))
            times["filter"] = (time.perf_counter() - t) * 1e3
            if len(passes) >= depth or base.complete:
                return base.take(passes[:depth], complete=base.complete)
        t2 = time.perf_counter()
        dist, cand = self._hamming(st, state.code, filters, depth)
        times["search"] = (time.perf_counter() - t2) * 1e3
        t2 = time.perf_counter()
        lst = self._with_components(st, state, cand, dist)
        times["components"] = (time.perf_counter() - t2) * 1e3
        lst.complete = len(cand) < depth
        state._keep(key, lst)
        return lst

    def _hamming(
        self, st: _State, code: np.ndarray, filters: SearchFilters, depth: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """The first `depth` (distance, id) among the images `filters` let through."""
        from fabricsearch.index import hamming_distances

        allowed = self._filter_mask(st, filters)
        if allowed is None:
            dist, cand = st.index.search(code, depth)
            return dist[0], cand[0]
        cand_ids = st.ids[allowed]
        present = np.isin(cand_ids, st.index.ids())
        cand_ids = cand_ids[present]
        d_all = (
            hamming_distances(code, st.index.get(cand_ids))
            if len(cand_ids)
            else np.zeros(0, np.int32)
        )
        order = np.lexsort((cand_ids, d_all))[:depth]
        return d_all[order], cand_ids[order]

    def _with_components(
        self, st: _State, state: QueryState, ids: np.ndarray, dist: np.ndarray
    ) -> Candidates:
        """Candidates `ids` with their per-candidate components: from the state's pool where
        this query already computed them, computed (and pooled) for the others."""
        pool = state._pool
        have = np.zeros(len(ids), bool)
        at = np.zeros(len(ids), np.int64)
        if pool is not None and len(pool.ids):
            at = np.minimum(np.searchsorted(pool.ids, ids), len(pool.ids) - 1)
            have = pool.ids[at] == ids
        new = ids[~have]
        if len(new):
            fresh = self._compute(st, state, new)
            pool = fresh if pool is None else Candidates.merge(pool, fresh)
            state._pool = pool
            at = np.searchsorted(pool.ids, ids)
        assert pool is not None or not len(ids)
        if pool is None:
            return Candidates.empty()
        out = pool.take(at)
        out.dist = np.asarray(dist, np.int32)
        return out

    def _compute(self, st: _State, state: QueryState, ids: np.ndarray) -> Candidates:
        """Per-candidate components of `ids` (sorted by id in the result, for the pool)."""
        ids = np.sort(ids)
        rows = np.searchsorted(st.ids, ids)
        comps = fine_grained_components(state.labels, st.labels.subset(rows))
        if state.rerank and state.camera is not None and len(rows):
            known = comps["colour"][0] == comps["colour"][0]  # not NaN
            tolerant = colour.camera_tolerant_similarity(state.camera, st.labels.palette[rows])
            comps["colour"][0] = np.where(known, tolerant, np.nan)
        s = combine_components(comps, state.weights)[0] if len(rows) else np.zeros(0, np.float32)
        fcos = self._feature_cosines(st, rows, state.feature) if state.rerank else None
        if fcos is None:
            fcos = np.full(len(rows), np.nan, np.float64)
        return Candidates(
            ids=ids,
            dist=np.zeros(len(ids), np.int32),
            rows=rows,
            comps={c: np.asarray(comps[c][0], np.float32) for c in COMPONENTS},
            s=np.asarray(s, np.float32),
            fcos=fcos,
        )

    def _feature_cosines(
        self, st: _State, rows: np.ndarray, qfeat: np.ndarray | None
    ) -> np.ndarray | None:
        """Cosine of the query's backbone feature and each candidate's cached one (NaN where a
        candidate has none cached); None when the model is not on a pretrained backbone's
        features (nothing to compare: the candidates keep the Hamming + S score)."""
        if qfeat is None or not st.method.on_features or not len(rows):
            return None
        try:
            store = self._feature_store(st)
            shas = [st.shas[int(r)] for r in rows]
            have = store.rows(shas) >= 0
            out = np.full(len(rows), np.nan, np.float64)
            if have.any():
                feats = store.get([s for s, h in zip(shas, have, strict=True) if h], views=False)
                q = qfeat.astype(np.float32)
                q /= np.linalg.norm(q) + 1e-12
                f = np.asarray(feats, np.float32)
                # Row by row (not a BLAS product, whose rounding depends on how many rows
                # there are): a candidate's cosine is the same in every candidate list. In
                # float32 (the features are float16): 1,000 candidates in ~2 ms, not ~12.
                norms = np.sqrt((f * f).sum(axis=1)) + 1e-12
                out[have] = (f * q).sum(axis=1) / norms
        except (OSError, ValueError, KeyError) as exc:  # an unreadable store: old ranking
            log.warning("cached features unavailable for re-ranking: %s", exc)
            return None
        return out

    def _filter_mask(
        self, st: _State, f: SearchFilters, rows: np.ndarray | None = None
    ) -> np.ndarray | None:
        """Which images `f` lets through: every loaded image, or only `rows` (a candidate
        list); None when `f` filters nothing."""
        if not f.active:
            return None if rows is None else np.ones(len(rows), dtype=bool)
        if rows is None:
            # The library-wide mask of the last filter is kept: the Hamming stage and the
            # sketch's top S of one query both need it (a colour filter over 1M palettes is
            # tens of milliseconds).
            key = (id(st), self._generation, f)
            if self._mask_memo is not None and self._mask_memo[0] == key:
                return self._mask_memo[1]
            mask = self._filter_mask_of(st, f, None)
            mask.setflags(write=False)
            self._mask_memo = (key, mask)
            return mask
        return self._filter_mask_of(st, f, rows)

    def _filter_mask_of(self, st: _State, f: SearchFilters, rows: np.ndarray | None) -> np.ndarray:
        tax = self.library.taxonomy
        lab = st.labels if rows is None else st.labels.subset(rows)
        ids = st.ids if rows is None else st.ids[rows]
        mask = np.ones(len(ids), dtype=bool)
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
            mask &= np.isin(ids, np.fromiter(f.image_ids, np.int64, len(f.image_ids)))
        return mask


def _kth_largest(values: np.ndarray, k: int) -> float:
    """The k-th largest of `values` (1 ≤ k < len), exactly. A large array is first cut to the
    values at or above a threshold read from a strided sample (one comparison pass instead of
    a partition of every value: 1M cosines 13 → ~2 ms); when fewer than k pass, the whole
    array is partitioned."""
    n = len(values)
    pool = values
    if n > 64 * k:
        step = n // (16 * k)
        sample = values[::step]
        # About 4k of the values are expected at or above the sample's 4k/step-th largest.
        m = max(1, min(len(sample), (4 * k) // step + 1))
        t = np.partition(sample, len(sample) - m)[len(sample) - m]
        above = values[values >= t]
        if len(above) >= k:  # then the k-th largest is ≥ t: all of the top k are in `above`
            pool = above
    return float(np.partition(pool, len(pool) - k)[len(pool) - k])


def search(
    library: Library,
    image: Path | str | np.ndarray,
    k: int = SEARCH_RESULTS,
    filters: SearchFilters | None = None,
    query_labels: QueryLabels | None = None,
    rerank: bool | None = None,
    balance: float | None = None,
    crop: tuple[int, int, int, int] | None = None,
) -> SearchResult:
    """One-shot search (loads the model and index each call; use `Searcher` for many queries)."""
    return Searcher(library).search(image, k, filters, query_labels, rerank, balance, crop)


def _rerank_score(
    comps: dict[str, np.ndarray],
    weights: dict[str, float],
    hsim: np.ndarray,
    fcos: np.ndarray | None,
    balance: float,
) -> np.ndarray:
    """The re-rank score: a weighted mean of the Hamming similarity (RERANK_HAMMING_WEIGHT),
    S (1 - RERANK_HAMMING_WEIGHT; itself the weighted mean of the known components, predicted
    labels weighing their confidence) and, where the candidate's backbone feature is cached,
    the rescaled feature cosine (FEATURE_WEIGHT).

    The balance weighs colour min(1, 2b) and each texture part (Hamming, features, coarse,
    fine, tightness) min(1, 2(1 - b)); at b = 0.5 every balance weight is 1. Without features
    and predictions this is today's 0.5 · Hamming + 0.5 · S."""
    wc, wt = min(1.0, 2.0 * balance), min(1.0, 2.0 * (1.0 - balance))
    num = np.zeros(hsim.shape, np.float64)
    den = np.zeros(hsim.shape, np.float64)
    for c in COMPONENTS:
        v = comps[c][0].astype(np.float64)
        known = ~np.isnan(v)
        w = (wc if c == "colour" else wt) * float(weights.get(c, 1.0))
        num += np.where(known, w * np.nan_to_num(v), 0.0)
        den += np.where(known, w, 0.0)
    s = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    ws = 1.0 - RERANK_HAMMING_WEIGHT
    have = ~np.isnan(fcos) if fcos is not None else np.zeros(hsim.shape, bool)
    h = np.where(have, FEATURE_HAMMING_WEIGHT, RERANK_HAMMING_WEIGHT) * wt
    total = h * hsim + ws * s
    norm = h + ws
    if fcos is not None:
        fsim = np.clip((np.nan_to_num(fcos) - FEATURE_FLOOR) / (1.0 - FEATURE_FLOOR), 0.0, 1.0)
        wf = FEATURE_WEIGHT * wt
        total = total + np.where(have, wf * fsim, 0.0)
        norm = norm + np.where(have, wf, 0.0)
    return total / np.maximum(norm, 1e-12)


def explain_hit(hit: SearchHit) -> str:
    """'same fabric 97 · colour 92 · texture ~ predicted 64 % · tight 95' from a hit (parts
    unknown for the pair left out): a predicted label is shown with the confidence it weighs
    (a match with a 64 %-confident guess is never "texture 100")."""
    b = hit.breakdown
    parts = []
    if hit.same_fabric and hit.matched_points:
        # Found by its details: the number is how many, the look (feature cosine) follows.
        parts.append(f"same fabric ({hit.matched_points} points match)")
        if hit.feature_similarity is not None:
            parts.append(f"look {100 * hit.feature_similarity:.0f}")
    elif hit.same_fabric and hit.feature_similarity is not None:
        parts.append(f"same fabric {100 * hit.feature_similarity:.0f}")
    elif hit.feature_similarity is not None:
        parts.append(f"look {100 * hit.feature_similarity:.0f}")
    if b.get("colour") is not None:
        parts.append(f"colour {100 * b['colour']:.0f}")
    given = [b[k] for k in ("coarse", "fine") if b.get(k) is not None and k not in hit.predicted]
    guessed = [
        b[k] * hit.predicted[k]
        for k in ("coarse", "fine")
        if b.get(k) is not None and k in hit.predicted
    ]
    if given:
        parts.append(f"texture {100 * sum(given) / len(given):.0f}")
    if guessed:
        parts.append(f"texture ~ predicted {100 * sum(guessed) / len(guessed):.0f} %")
    if b.get("tightness") is not None:
        parts.append(f"tight {100 * b['tightness']:.0f}")
    return " · ".join(parts) or f"Hamming {hit.hamming}"


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


def _predicted_labels(
    predicted: dict[str, object], coarse: str | None, fine: str | None
) -> tuple[str | None, str | None, dict[str, float]]:
    """(coarse, fine, weights): each label the caller did not give is the model's prediction,
    weighing its confidence in S (a given label weighs 1); `weights` lists the predicted ones."""
    given = {"coarse": coarse, "fine": fine}
    weights: dict[str, float] = {}
    for key in ("coarse", "fine"):
        value, conf = predicted.get(key), predicted.get(f"{key}_confidence") or 0.0
        if given[key] is None and isinstance(value, str):
            given[key] = value
            weights[key] = min(1.0, max(0.0, float(conf)))  # type: ignore[arg-type]
    return given["coarse"], given["fine"], weights


def _encode_query(
    method: HashMethod, source: Path | str | np.ndarray, library: Library
) -> tuple[np.ndarray, dict[str, object] | None, np.ndarray | None]:
    """The query's packed code, its predicted labels where the model has classification heads,
    and its backbone feature where the model is on a pretrained backbone's features — all from
    one pass of the network (the same input recipe as the library's images)."""
    import torch

    from fabricsearch.hashing.encode import encode_images, encode_tensor
    from fabricsearch.hashing.predict import can_predict, predict_inputs

    feature = None
    if method.on_features:
        from fabricsearch.hashing.extract import compute_features

        feats, ok = compute_features([source], method.backbone)
        if not ok[0]:
            raise SearchError("the query image cannot be decoded")
        feature = feats[0, 0].astype(np.float32)
        x = torch.from_numpy(feats[:, 0].astype(np.float32))
        if not can_predict(method):
            return pack_codes(encode_tensor(method, x))[0], None, feature
    elif not can_predict(method):
        return pack_codes(encode_images(method, [source]))[0], None, None
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
    return code, predicted, feature


def _load_query(
    image: Path | str | np.ndarray, crop: tuple[int, int, int, int] | None = None
) -> tuple[np.ndarray, str, str | None, np.ndarray]:
    """Decode a query → (RGB uint8, display name, sha256 of the file or None, the finer RGB the
    palette is measured on, as the importer measures it: `imaging.decode_fine`); with `crop`
    (pixels of the original photo) only that region, and no sha (it is not the file)."""
    from fabricsearch.imaging import ImageError, decode, decode_fine, read_bytes, resize_max_side

    if isinstance(image, np.ndarray):
        rgb = fine = image
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise SearchError("the query must be an RGB image (H, W, 3) of 8-bit values")
        name, sha = "<image>", None
        if crop is not None:
            fine = _crop(rgb, crop)
            rgb = resize_max_side(fine, QUERY_MAX_SIDE)
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
            if crop is None:
                fine = decode_fine(data, colour.PALETTE_SIDE)[0]
            else:
                fine = _crop(decode(data)[0], crop)
        except ImageError as exc:
            raise SearchError(f"{path.name}: {exc}") from exc
        name, sha = str(path), hashlib.sha256(data).hexdigest()
        rgb = resize_max_side(fine, QUERY_MAX_SIDE)
        if crop is not None:
            sha = None
    if min(rgb.shape[:2]) < MIN_QUERY_SIDE:
        raise SearchError(
            f"the query image is too small ({rgb.shape[1]}×{rgb.shape[0]} px); "
            f"use a photo at least {MIN_QUERY_SIDE} px on each side"
        )
    return rgb, name, sha, fine


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
    chunk: int = 0,
) -> int:
    """Encode the images that have no code under the model `version` (the active one by default),
    add their codes, and drop the saved index so it is rebuilt. Returns how many were encoded.

    The codes are committed every ``chunk`` images (`ENCODE_COMMIT_EVERY` when 0), so a kill
    or a cancel loses at most one chunk's work, and images become searchable while a long
    encode runs. A cancel after a chunk was committed raises `jobs.Cancelled` saying so
    (``partial``: how many were encoded)."""
    from fabricsearch.hashing.encode import encode_records, load_library_model
    from fabricsearch.jobs import Cancelled

    method, info, _meta = load_library_model(lib, version)
    have, _ = lib.load_codes(info.version)
    have_set = set(have.tolist())
    todo = [r for r in lib.images() if r.id not in have_set]
    step = chunk if chunk > 0 else ENCODE_COMMIT_EVERY
    encoded = 0
    for start in range(0, len(todo), step):
        part = todo[start : start + step]
        report = _chunk_progress(progress, start, len(part), len(todo))
        try:
            ids, packed = encode_records(lib, method, part, 32, report, cancel)
        except Cancelled as exc:
            if not encoded:
                raise
            raise Cancelled(
                f"{encoded} of {len(todo)} images were encoded; encode again to finish",
                partial=encoded,
            ) from exc
        if len(ids):
            lib.add_codes(info.version, ids.tolist(), packed)  # also drops the stale index
        encoded += len(ids)
    update_sketch(lib, method, progress)
    return encoded


def update_sketch(lib: Library, method: HashMethod, progress: ProgressFn | None = None) -> None:
    """Bring the library's feature sketch (the second candidate source) up to date with every
    image whose feature is cached; nothing for a model not on a pretrained backbone or a
    read-only library. A failure is logged: the search then uses Hamming candidates only."""
    if lib.read_only or not getattr(method, "on_features", False):
        return
    from fabricsearch.featurestore import store_for

    def images() -> tuple[np.ndarray, np.ndarray]:
        cols = lib.columns(paths=False)
        return cols.ids, cols.sha

    _write_sketch(lib, store_for(lib.folder, method.backbone), method.backbone, images, progress)


def _write_sketch(
    lib: Library,
    store: FeatureStore,
    backbone: str,
    images: Callable[[], tuple[np.ndarray, np.ndarray]],
    progress: ProgressFn | None,
) -> bool:
    """`sketch.update` for the library's images (``images()``: their ids and content-hash
    digests); False, logged, when it failed (the search then uses what is there)."""
    from fabricsearch import sketch as sketch_mod
    from fabricsearch.catalogue import LibraryError

    try:
        ids, digests = images()
        sketch_mod.update(
            lib.indexes_dir,
            store,
            sketch_mod.feature_version(backbone),
            ids,
            digests,
            progress=progress,
        )
    except (OSError, ValueError, LibraryError) as exc:
        log.warning("the feature sketch could not be brought up to date: %s", exc)
        return False
    return True


def _chunk_progress(
    progress: ProgressFn | None, offset: int, size: int, total: int
) -> ProgressFn | None:
    """A chunk's reports (``size`` images after ``offset``) as parts of the whole encode;
    reports of other totals (features computed for the uncached images) pass unchanged."""
    if progress is None or size == total:
        return progress

    def forward(p: Progress) -> None:
        if p.total == size:
            p = dataclasses.replace(p, done=offset + p.done, total=total)
        progress(p)

    return forward
