"""Re-ranking the Hamming top R (issue 14): by the fine-grained similarity (colour, plus the
coarse/fine labels where known), by the cached backbone features, by both, or not at all.

For a dropped photo no label is known, so the fine-grained similarity S of today's search is
its colour component alone; with a trained DVSH model the query's labels can be *predicted*
(classification heads), which adds the coarse and fine components. Evaluated on a library's
test split (queries) against train+val (database), relevance = same coarse label, mAP over the
whole ranking (top R reordered, the rest in Hamming order), all variants in one run.

    .venv/bin/python benchmarks/bench_rerank.py LIB [--depth 100]

LIB must have labels and an active model on the pretrained backbone (e.g. after
`fabricsearch import LIB dtd10 --labels … && fabricsearch train LIB`). Prints a table and
writes benchmarks/results/rerank.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from fabricsearch.catalogue import Library
from fabricsearch.codes import unpack_codes
from fabricsearch.hashing.encode import library_features, load_library_model
from fabricsearch.hashing.predict import can_predict, predict_inputs
from fabricsearch.similarity import LabelArrays, combine_components, fine_grained_components

OUT = Path(__file__).parent / "results" / "rerank.json"
W = 0.5  # search.RERANK_HAMMING_WEIGHT
MIN_CONF = 0.5  # search.PREDICTION_MIN_CONFIDENCE


def average_precision(order: np.ndarray, rel: np.ndarray) -> float:
    r = rel[order]
    if not r.any():
        return float("nan")
    hits = np.cumsum(r)
    return float((hits[r] / (np.flatnonzero(r) + 1)).mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("library")
    ap.add_argument("--depth", type=int, default=100)
    args = ap.parse_args()
    torch.set_num_threads(2)
    lib = Library.open(args.library)
    method, info, _ = load_library_model(lib)
    ids, packed = lib.load_codes(info.version)
    records = lib.images(ids.tolist())
    splits = lib.splits()
    split = np.array([splits.get(int(i), "train") for i in ids])
    coarse = np.array([r.coarse or "" for r in records])
    q_idx = np.flatnonzero((split == "test") & (coarse != ""))
    db_idx = np.flatnonzero((split != "test") & (coarse != ""))
    codes = unpack_codes(packed, info.bits).astype(np.float32)
    feats, _ok = library_features(lib, method.backbone, records)
    f = feats.astype(np.float32)
    f /= np.linalg.norm(f, axis=1, keepdims=True) + 1e-9
    labels = lib.label_arrays(ids.tolist())
    palettes = labels.palette
    tax = lib.taxonomy
    predicted = None
    if can_predict(method):
        preds = predict_inputs(method, torch.from_numpy(feats[q_idx].astype(np.float32)), tax)
        predicted = preds
    db_labels = labels.subset(db_idx)
    rows: dict[str, list[float]] = {
        k: []
        for k in (
            "hamming only",
            "colour S (today)",
            "features",
            "features + colour S",
            "predicted labels + colour S",
            "features + predicted labels + colour S",
        )
    }
    t0 = time.perf_counter()
    for qi, q in enumerate(q_idx):
        rel = coarse[db_idx] == coarse[q]
        hd = (info.bits - codes[db_idx] @ codes[q]) / 2
        base = np.lexsort((ids[db_idx], hd))
        top, rest = base[: args.depth], base[args.depth :]
        hsim = 1.0 - hd[top] / info.bits
        cos = f[db_idx[top]] @ f[q]
        unknown = LabelArrays.from_records(tax, [None], [None], [None], [palettes[q]])
        s_col = combine_components(fine_grained_components(unknown, db_labels.subset(top)))[0]
        s_pred = s_col
        if predicted is not None:
            c, cc, fine, fc = predicted[qi]
            c = c if cc >= MIN_CONF else None
            fine = fine if fc >= MIN_CONF else None
            guess = LabelArrays.from_records(tax, [c], [fine], [None], [palettes[q]])
            s_pred = combine_components(fine_grained_components(guess, db_labels.subset(top)))[0]
        scores = {
            "hamming only": hsim,
            "colour S (today)": W * hsim + (1 - W) * s_col,
            "features": W * hsim + (1 - W) * cos,
            "features + colour S": (hsim + cos + s_col) / 3,
            "predicted labels + colour S": W * hsim + (1 - W) * s_pred,
            "features + predicted labels + colour S": (hsim + cos + s_pred) / 3,
        }
        for name, sc in scores.items():
            order = np.concatenate([top[np.lexsort((ids[db_idx][top], hd[top], -sc))], rest])
            rows[name].append(average_precision(order, rel))
    elapsed = time.perf_counter() - t0
    result = {
        "library": str(args.library),
        "model": info.version,
        "queries": len(q_idx),
        "database": len(db_idx),
        "depth": args.depth,
        "mAP": {k: float(np.nanmean(v)) for k, v in rows.items()},
        "seconds": elapsed,
    }
    base_map = result["mAP"]["hamming only"]
    print(f"model {info.version}, {len(q_idx)} queries, {len(db_idx)} database, top {args.depth}")
    print(f"{'re-ranking':42s} {'mAP':>7s} {'vs Hamming':>11s}")
    for k, v in result["mAP"].items():
        print(f"{k:42s} {v:7.3f} {v - base_map:+11.3f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
