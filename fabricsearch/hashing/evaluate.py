"""Evaluate a library model (§5): queries = labelled test split, database = labelled train + val.

See docs/evaluation.md for the metric definitions and tie handling.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from fabricsearch.codes import unpack_codes
from fabricsearch.hashing.metrics import EvalResult, evaluate_codes

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo


def evaluate_library_codes(
    lib: Library, ids: np.ndarray, packed: np.ndarray, bits: int
) -> EvalResult | None:
    """Metrics for codes (ids, packed) of a library; None if there are no labelled test queries
    or no labelled train/val database images among them."""
    labelled = set(lib.image_ids(labelled=True))
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
