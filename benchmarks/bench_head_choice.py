"""DVSH, the simple supervised head (methods/head.py) and the one `train_and_choose` keeps, with
`TrainConfig` defaults on a library's cached EfficientNet-Lite0 features (issue 22).

    .venv/bin/python benchmarks/bench_head_choice.py /tmp/dtd10lib /tmp/batik6lib --fraction 0.1

Test mAP at 64 bits: queries = test split, database = train + val (as `fabricsearch eval`).
`--fraction f` keeps the labels of a seeded f of the labelled images (the others are left out
of training, as unlabelled images are); the splits stay the library's. Nothing is written to
the libraries. Prints one JSON line per library and label fraction.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "head_choice.json"
sys.path.insert(0, str(ROOT))

from fabricsearch.catalogue import Library  # noqa: E402
from fabricsearch.config import TrainConfig  # noqa: E402
from fabricsearch.featurestore import MAIN_VIEWS  # noqa: E402
from fabricsearch.hashing.backbones import DEFAULT_BACKBONE  # noqa: E402
from fabricsearch.hashing.metrics import evaluate_codes  # noqa: E402
from fabricsearch.hashing.train import (  # noqa: E402
    FeatureSource,
    head_config,
    library_training_data,
    train,
    train_and_choose,
)


def subsample(data, fraction: float, seed: int = 0):  # type: ignore[no-untyped-def]
    """Keep the labels of a seeded `fraction` of the train and val images (test unchanged)."""
    if fraction >= 1.0:
        return data
    rng = np.random.default_rng(seed)
    keep = lambda idx: np.sort(rng.permutation(idx)[: max(2, round(fraction * len(idx)))])  # noqa: E731
    return dataclasses.replace(data, train_idx=keep(data.train_idx), val_idx=keep(data.val_idx))


def test_map(method, data, feats) -> float:  # type: ignore[no-untyped-def]
    source = FeatureSource(feats)
    full = np.setdiff1d(np.arange(len(data.images)), data.test_idx)  # every non-test photo
    q = source.encode(method, data.test_idx)
    d = source.encode(method, full)
    return evaluate_codes(
        q, d, data.labels.subset(data.test_idx), data.labels.subset(full), ks=(10,)
    ).mAP


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("libraries", nargs="+")
    ap.add_argument("--fraction", type=float, nargs="+", default=[1.0, 0.1])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    rows = []
    for path in args.libraries:
        with Library.open(path) as lib:
            full_data = library_training_data(lib)
        cfg = TrainConfig(backbone=DEFAULT_BACKBONE)
        feats, _ok = full_data.features_fn(DEFAULT_BACKBONE, MAIN_VIEWS)
        for fraction in args.fraction:
            data = subsample(full_data, fraction)
            t0 = time.perf_counter()
            dvsh = train(data, cfg)
            t_dvsh = time.perf_counter() - t0
            t0 = time.perf_counter()
            head = train(data, head_config(cfg))
            t_head = time.perf_counter() - t0
            t0 = time.perf_counter()
            chosen, choice = train_and_choose(data, cfg)
            t_both = time.perf_counter() - t0
            row = {
                "library": Path(path).name,
                "labels": fraction,
                "train": len(data.train_idx),
                "val": len(data.val_idx),
                "test": len(data.test_idx),
                "dvsh": {"val": dvsh.best_val_map, "test": test_map(dvsh.method, data, feats)},
                "head": {"val": head.best_val_map, "test": test_map(head.method, data, feats)},
                "chosen": (choice or {}).get("chosen", "dvsh"),
                "chosen_test": test_map(chosen.method, data, feats),
                "reason": (choice or {}).get("reason", ""),
                "time_s": {"dvsh": t_dvsh, "head": t_head, "both": t_both},
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"{'library':<12} {'labels':>6}  {'DVSH test':>9}  {'head test':>9}  kept")
    for r in rows:
        print(
            f"{r['library']:<12} {r['labels']:>6.0%}  {r['dvsh']['test']:>9.3f}  "
            f"{r['head']['test']:>9.3f}  {r['chosen']} ({r['chosen_test']:.3f})"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
