"""Evaluate a library model (§5): queries = labelled test split, database = labelled train + val.

See docs/evaluation.md for the metric definitions and tie handling.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fabricsearch.codes import unpack_codes
from fabricsearch.hashing.metrics import EvalResult, evaluate_codes, relevance_matrix
from fabricsearch.jobs import CancelToken, ProgressFn, check, report

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo


#: An evaluation decides whether a new model replaces the active one only when it has at least
#: this many test queries with a relevant database image (docs/evaluation.md, "Activation")...
MIN_TEST_QUERIES = 10
#: ... and at least this many distinct classes (coarse + fine label) among those queries.
MIN_QUERY_CLASSES = 2
#: A new model counts as "not worse" when its test mAP >= the active model's − this.
MAP_TOLERANCE = 0.01


def evaluate_library_codes(
    lib: Library,
    ids: np.ndarray,
    packed: np.ndarray,
    bits: int,
    only: Iterable[int] | None = None,
) -> EvalResult | None:
    """Metrics for codes (ids, packed) of a library; None if there are no labelled test queries
    or no labelled train/val database images among them. `only` restricts queries and database
    to those image ids (to compare two models on exactly the same images)."""
    labelled = set(lib.image_ids(labelled=True))
    if only is not None:
        labelled &= {int(i) for i in only}
    splits = lib.splits()
    ids = np.asarray(ids, dtype=np.int64)
    pos = {int(i): k for k, i in enumerate(ids)}
    q_ids = [i for i in ids.tolist() if i in labelled and splits.get(i) == "test"]
    db_ids = [i for i in ids.tolist() if i in labelled and splits.get(i) in ("train", "val")]
    if not q_ids or not db_ids:
        return None
    codes = unpack_codes(packed, bits)
    q_codes = codes[[pos[i] for i in q_ids]]
    db_codes = codes[[pos[i] for i in db_ids]]
    return evaluate_codes(q_codes, db_codes, lib.label_arrays(q_ids), lib.label_arrays(db_ids))


@dataclass(frozen=True)
class CodeStats:
    """How much of the code space a model uses on a set of images."""

    images: int
    distinct: int  # distinct codes
    bits_used: int  # bits that are not the same for every image

    @classmethod
    def of(cls, packed: np.ndarray, bits: int) -> CodeStats:
        packed = np.asarray(packed, dtype=np.uint8)
        if len(packed) == 0:
            return cls(0, 0, 0)
        distinct = len(np.unique(packed, axis=0))
        codes = np.unpackbits(packed, axis=1, count=bits)
        used = int((codes.min(axis=0) != codes.max(axis=0)).sum())
        return cls(int(len(packed)), int(distinct), used)


@dataclass(frozen=True)
class Assessment:
    """A model's test evaluation plus what is needed to judge whether it can be trusted."""

    result: EvalResult | None  # None: no labelled test queries / database
    classes: int  # distinct (coarse, fine) labels among the queries that counted
    db_classes: int  # distinct (coarse, fine) labels among queries + database
    codes: CodeStats  # over every compared image, labelled or not

    @property
    def mAP(self) -> float | None:
        if self.result is None or self.result.mAP != self.result.mAP:
            return None
        return float(self.result.mAP)

    @property
    def queries(self) -> int:
        return 0 if self.result is None else int(self.result.queries_with_relevant)

    def problems(self) -> list[str]:
        """Why this evaluation cannot decide anything (empty: it is meaningful)."""
        out = []
        if self.queries < MIN_TEST_QUERIES or self.classes < MIN_QUERY_CLASSES:
            out.append(
                f"too few labelled test images to judge it: {self.queries} "
                f"{'query' if self.queries == 1 else 'queries'} with a match in {self.classes} "
                f"{'class' if self.classes == 1 else 'classes'} (needs at least "
                f"{MIN_TEST_QUERIES} queries in {MIN_QUERY_CLASSES} classes)"
            )
        if self.codes.images and self.codes.distinct < max(2, self.db_classes):
            out.append(
                f"its codes are degenerate: {self.codes.distinct} distinct "
                f"{'code' if self.codes.distinct == 1 else 'codes'} for {self.codes.images} "
                f"images in {self.db_classes} classes ({self.codes.bits_used} bits vary)"
            )
        return out

    @property
    def meaningful(self) -> bool:
        return not self.problems()

    def metrics(self) -> dict[str, float]:
        """Flat numbers stored with a model (test metrics plus the meaningfulness figures)."""
        out: dict[str, float] = {}
        if self.result is not None:
            out.update(
                {k: float(v) for k, v in self.result.summary().items() if isinstance(v, float)}
            )
            out["test_queries"] = float(self.queries)
        out["test_classes"] = float(self.classes)
        out["distinct_codes"] = float(self.codes.distinct)
        out["bits_used"] = float(self.codes.bits_used)
        return {k: v for k, v in out.items() if v == v}

    def to_dict(self) -> dict[str, Any]:
        return {
            "mAP": self.mAP,
            "queries": self.queries,
            "classes": self.classes,
            "distinct_codes": self.codes.distinct,
            "bits_used": self.codes.bits_used,
            "images": self.codes.images,
            "problems": self.problems(),
        }


def _label_keys(labels: Any) -> list[tuple[int, int, int]]:
    return list(
        zip(labels.major.tolist(), labels.minor.tolist(), labels.fine.tolist(), strict=True)
    )


def assess_library_codes(
    lib: Library,
    ids: np.ndarray,
    packed: np.ndarray,
    bits: int,
    only: Iterable[int] | None = None,
) -> Assessment:
    """Evaluate codes on the library's test split (like `evaluate_library_codes`) and measure
    what decides whether the result means anything: queries, classes, code diversity."""
    labelled = set(lib.image_ids(labelled=True))
    compared: set[int] = set()
    if only is not None:
        compared = {int(i) for i in only}
        labelled &= compared
    splits = lib.splits()
    ids = np.asarray(ids, dtype=np.int64)
    pos = {int(i): k for k, i in enumerate(ids)}
    q_ids = [i for i in ids.tolist() if i in labelled and splits.get(i) == "test"]
    db_ids = [i for i in ids.tolist() if i in labelled and splits.get(i) in ("train", "val")]
    rows = [pos[i] for i in q_ids + db_ids]
    # Code diversity over every compared image, labelled or not: a collapsed model shows
    # without labels too.
    keep = [k for k, i in enumerate(ids.tolist()) if only is None or i in compared]
    stats = CodeStats.of(np.asarray(packed)[keep], bits)
    if not q_ids or not db_ids:
        keys = _label_keys(lib.label_arrays(q_ids + db_ids)) if rows else []
        return Assessment(None, 0, len(set(keys)), stats)
    q_labels, db_labels = lib.label_arrays(q_ids), lib.label_arrays(db_ids)
    codes = unpack_codes(packed, bits)
    result = evaluate_codes(
        codes[rows[: len(q_ids)]], codes[rows[len(q_ids) :]], q_labels, db_labels
    )
    counted = relevance_matrix(q_labels, db_labels).any(axis=1)
    q_keys = _label_keys(q_labels)
    classes = len({k for k, c in zip(q_keys, counted.tolist(), strict=True) if c})
    db_classes = len(set(q_keys) | set(_label_keys(db_labels)))
    return Assessment(result, classes, db_classes, stats)


def assess_models(
    lib: Library, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> dict[str, Assessment | None]:
    """Every model of the library evaluated now, from its stored codes, on the current test
    split (None: the model has no stored codes). Used by the versions lists.

    After each model a report carries ``info["assessed"]``: a copy of every model evaluated so
    far, so a list can fill its rows as they come (a report dropped by a throttle loses
    nothing); a cancel stops it between two models, or after the last."""
    out: dict[str, Assessment | None] = {}
    models = lib.models()
    report(progress, "assess", 0, len(models), "models", info={"assessed": {}})
    for k, info in enumerate(models, 1):
        check(cancel)
        ids, packed = lib.load_codes(info.version)
        out[info.version] = assess_library_codes(lib, ids, packed, info.bits) if len(ids) else None
        report(progress, "assess", k, len(models), "models", info={"assessed": dict(out)})
    check(cancel)
    return out


def evaluate_library(lib: Library, version: str | None = None) -> tuple[EvalResult, ModelInfo]:
    """Evaluate the stored codes of model `version` (active by default)."""
    from fabricsearch.catalogue import LibraryError
    from fabricsearch.hashing.encode import find_model

    info = find_model(lib, version)
    ids, packed = lib.load_codes(info.version)
    result = evaluate_library_codes(lib, ids, packed, info.bits)
    if result is None:
        raise LibraryError(
            "nothing to evaluate: the model needs labelled test images (queries) and labelled "
            "train/val images (database)"
        )
    return result, info


def write_plots(result: EvalResult, folder: str | Path, stem: str) -> list[Path]:
    """PR curve and precision@k as PNG files in `folder`; returns their paths."""
    from fabricsearch.plots import line_plot

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    pr = folder / f"{stem}-pr.png"
    rec = [r for r, p in zip(result.pr_recall, result.pr_precision, strict=True) if p == p]
    prec = [p for p in result.pr_precision if p == p]
    line_plot(
        {f"{result.bits} bits": (rec, prec)},
        pr,
        title="Precision-recall (Hamming radius)",
        xlabel="recall",
        ylabel="precision",
        xlim=(0.0, 1.0),
        ylim=(0.0, 1.0),
    )
    pk = folder / f"{stem}-precision-at-k.png"
    ks = sorted(result.precision)
    line_plot(
        {f"{result.bits} bits": ([float(k) for k in ks], [result.precision[k] for k in ks])},
        pk,
        title="Precision@k",
        xlabel="k",
        ylabel="precision",
        ylim=(0.0, 1.0),
    )
    return [pr, pk]
