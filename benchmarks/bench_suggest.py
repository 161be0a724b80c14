"""Label suggestions on dtd10 (issue 15): train on half of the labels, suggest the other half.

Imports dtd10 (photos stay where they are) into a fresh library, keeps the labels of half of
each class (every other image by content hash) and clears the rest, trains the default model
(`fabricsearch train` defaults: DVSH on the pretrained backbone's cached features), then asks
`suggest.suggest_labels` for the unlabelled half and compares with the true coarse labels, at
several confidence thresholds and at the default one: ``accuracy`` is the share of the
suggestions that are right, ``right_of_held_out`` the share of the whole held-out half that
got a right suggestion (unsuggested images count as not right). Writes
benchmarks/results/suggest.json.

    .venv/bin/python benchmarks/bench_suggest.py [--data /work/shared/data/dtd10] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import import_folder
from fabricsearch.config import TrainConfig
from fabricsearch.hashing.backbones import default_backbone_for
from fabricsearch.hashing.train import train_library
from fabricsearch.suggest import DEFAULT_MIN_CONFIDENCE, suggest_labels

OUT = Path(__file__).parent / "results" / "suggest.json"
THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", default="/work/shared/data/dtd10")
    ap.add_argument("--work", help="folder for the library (default: a temporary one)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    data = Path(args.data)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="bench-suggest-"))
    t0 = time.perf_counter()
    with Library.create(work / "lib") as lib:
        import_folder(lib, data, labels_csv=data / "labels.csv", add_categories=True, workers=2)
        t_import = time.perf_counter() - t0
        by_class: dict[str, list] = defaultdict(list)
        for r in lib.images(lib.image_ids(labelled=True)):
            by_class[r.coarse].append(r)
        truth: dict[int, str] = {}
        for records in by_class.values():
            records.sort(key=lambda r: r.sha256)
            truth.update({r.id: r.coarse for r in records[1::2]})
        lib.set_labels(sorted(truth), coarse=None, fine=None, tightness=None)
        cfg = TrainConfig(seed=args.seed, backbone=default_backbone_for("dvsh"))
        t1 = time.perf_counter()
        info = train_library(lib, cfg, activate=True)
        t_train = time.perf_counter() - t1
        t2 = time.perf_counter()
        everything = suggest_labels(lib, min_confidence=0.0)
        t_suggest = time.perf_counter() - t2
        rows = []
        for p in THRESHOLDS:
            chosen = [s for s in everything.suggestions if s.confidence >= p]
            right = sum(1 for s in chosen if truth[s.image_id] == s.coarse)
            rows.append(
                {
                    "min_confidence": p,
                    "suggested": len(chosen),
                    "right": right,
                    "accuracy": round(right / len(chosen), 4) if chosen else None,
                    "right_of_held_out": round(right / len(truth), 4),
                    "unsuggested": len(truth) - len(chosen),
                }
            )
        default = suggest_labels(lib)  # the CLI's default threshold, through the real API
        right = sum(1 for s in default.suggestions if truth[s.image_id] == s.coarse)
    result = {
        "data": str(data),
        "model": info.version,
        "labelled_for_training": sum(len(v) for v in by_class.values()) - len(truth),
        "held_out": len(truth),
        "default_min_confidence": DEFAULT_MIN_CONFIDENCE,
        "default": {
            "suggested": len(default.suggestions),
            "right": right,
            "accuracy": round(right / max(len(default.suggestions), 1), 4),
            "right_of_held_out": round(right / len(truth), 4),
            "unsuggested": default.unsuggested,
            "coverage": round(len(default.suggestions) / len(truth), 4),
        },
        "thresholds": rows,
        "seconds": {
            "import": round(t_import, 1),
            "train": round(t_train, 1),
            "suggest": round(t_suggest, 1),
        },
        "threads": torch.get_num_threads(),
    }
    # One entry per seed: training runs differ by a few points, so the file keeps them all.
    runs = json.loads(OUT.read_text(encoding="utf-8")).get("runs", {}) if OUT.is_file() else {}
    runs[f"seed{args.seed}"] = result
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"runs": runs}, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
