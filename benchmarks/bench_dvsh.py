"""DVSH and its ablations (paper Tables 2–3): mAP and NDCG@50 per code length, on the synthetic
fabric set and on dtd10 (real photos, if present), plus training time and encoding speed on CPU.

    .venv/bin/python benchmarks/bench_dvsh.py --quick        # bounded run on a 2-core CPU
    .venv/bin/python benchmarks/bench_dvsh.py                # all of 32/64/128/256 bits

Writes benchmarks/results/dvsh.json and the "DVSH" section of docs/benchmarks.md.
Queries = test split, database = train + val (as `fabricsearch eval`). "untrained" is the
same network with its initial weights, for reference.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabricsearch.catalogue import Library  # noqa: E402
from fabricsearch.catalogue.importer import import_folder  # noqa: E402
from fabricsearch.config import TrainConfig  # noqa: E402
from fabricsearch.hashing.data import TrainingData, build_cache, work_size_for  # noqa: E402
from fabricsearch.hashing.encode import encode_cached, encode_speed  # noqa: E402
from fabricsearch.hashing.metrics import evaluate_codes  # noqa: E402
from fabricsearch.hashing.registry import create_method  # noqa: E402
from fabricsearch.hashing.train import build_method, library_training_data, train  # noqa: E402

DTD = Path("/work/shared/data/dtd10")
METHODS = ["dvsh", "dvsh1a", "dvsh1b", "dvsh2a"]


def load_dataset(folder: Path, labels_csv: Path, lib_dir: Path, input_size: int) -> dict[str, Any]:
    """Import into a temporary library (real import path: palettes, splits) and decode once."""
    lib = Library.create(lib_dir)
    import_folder(lib, folder, labels_csv=labels_csv, add_categories=True)
    data = library_training_data(lib)
    cache, ok = build_cache(data.images, work_size_for(input_size), data.loader)
    lib.close()
    keep = lambda idx: idx[ok[idx]]  # noqa: E731
    return {
        "data": TrainingData(
            images=list(cache),
            labels=data.labels,
            train_idx=keep(data.train_idx),
            val_idx=keep(data.val_idx),
            test_idx=keep(data.test_idx),
            fingerprint=data.fingerprint,
        ),
        "cache": cache,
    }


def evaluate(method: torch.nn.Module, ds: dict[str, Any]) -> dict[str, float]:
    data: TrainingData = ds["data"]
    db_idx = np.concatenate([data.train_idx, data.val_idx])
    q = encode_cached(method, ds["cache"][data.test_idx])
    db = encode_cached(method, ds["cache"][db_idx])
    r = evaluate_codes(
        q, db, data.labels.subset(data.test_idx), data.labels.subset(db_idx), ks=(10,)
    )
    return {"mAP": r.mAP, "ndcg@50": r.ndcg, "precision@10": r.precision[10]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from fabricsearch import synth

    torch.set_num_threads(args.threads)
    results: dict[str, Any] = {
        "settings": {
            "quick": args.quick,
            "epochs": args.epochs,
            "patience": args.patience,
            "synth_size": args.synth_size,
            "input_size": args.input_size,
            "batch_size": 32,
            "synth_images": args.synth,
            "bits": args.bits,
            "methods": args.methods,
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
        },
        "datasets": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        datasets: dict[str, tuple[Path, Path]] = {}
        t0 = time.perf_counter()
        csv_path = synth.write_dataset(tmp_path / "synth", args.synth, seed=7, size=args.synth_size)
        print(f"synthetic set: {args.synth} images in {time.perf_counter() - t0:.0f}s", flush=True)
        datasets["synthetic"] = (tmp_path / "synth", csv_path)
        if DTD.exists() and not args.no_dtd:
            datasets["dtd10"] = (DTD, DTD / "labels.csv")
        for name, (folder, labels) in datasets.items():
            ds = load_dataset(folder, labels, tmp_path / f"lib-{name}", args.input_size)
            d: TrainingData = ds["data"]
            print(
                f"{name}: train {len(d.train_idx)}, val {len(d.val_idx)}, test {len(d.test_idx)}",
                flush=True,
            )
            rows: dict[str, Any] = {}
            methods = args.methods if name == "synthetic" else (args.dtd_methods or args.methods)
            for bits in args.bits:
                for method in methods:
                    cfg = TrainConfig(
                        method=method,
                        bits=bits,
                        input_size=args.input_size,
                        epochs=args.epochs,
                        patience=args.patience,
                        lr=args.lr,
                        device="cpu",
                        seed=0,
                    )
                    torch.manual_seed(cfg.seed)
                    untrained = build_method(cfg).eval()
                    before = evaluate(untrained, ds)
                    res = train(d, cfg)
                    after = evaluate(res.method, ds)
                    rows[f"{method}-{bits}"] = {
                        "method": method,
                        "bits": bits,
                        **after,
                        "untrained_mAP": before["mAP"],
                        "untrained_ndcg@50": before["ndcg@50"],
                        "train_time_s": res.train_time_s,
                        "epochs_run": len(res.history),
                        "best_epoch": res.best_epoch,
                        "val_mAP": res.best_val_map,
                    }
                    print(
                        f"  {method:<7}{bits:>4} bits  mAP {after['mAP']:.3f} (untrained {before['mAP']:.3f})"
                        f"  NDCG@50 {after['ndcg@50']:.3f} (untrained {before['ndcg@50']:.3f})"
                        f"  {res.train_time_s:.0f}s",
                        flush=True,
                    )
            results["datasets"][name] = {
                "images": {
                    "train": len(d.train_idx),
                    "val": len(d.val_idx),
                    "test": len(d.test_idx),
                },
                "runs": rows,
            }
    speed = {}
    for size in sorted({args.input_size, 112}):
        m = create_method("dvsh", bits=64, input_size=size).eval()
        speed[str(size)] = encode_speed(m, n=256, batch_size=32)["images_per_s"]
    results["encode_images_per_s"] = speed
    print("encode images/s (DVSH 64 bits, CPU):", {k: round(v, 1) for k, v in speed.items()})
    return results


def markdown(results: dict[str, Any]) -> str:
    s = results["settings"]
    lines = [
        "## DVSH",
        "",
        "`benchmarks/bench_dvsh.py"
        + (" --quick" if s["quick"] else "")
        + f"` on CPU ({s['threads']} threads), "
        f"input {s['input_size']} px, batch {s['batch_size']}, "
        + (
            f"up to {s['epochs']} epochs (early stopping on val mAP, patience {s['patience']})"
            if s.get("patience")
            else f"{s['epochs']} epochs (no early stopping)"
        )
        + ", Adam lr 1e-3 with cosine decay, weight decay 5e-5, λ1 = λ2 = 1e-3, λ3 = 1, "
        "λ4 = λ5 = 20 (classification from the base feature and from the code, docs/dvsh.md). "
        "Queries = test split, database = train + val; relevance = same minor category (and same "
        "fine texture where labelled); NDCG gain = S (Eq. 6); tie-aware metrics (docs/evaluation.md). "
        "In brackets: the same network untrained.",
        "",
    ]
    for name, ds in results["datasets"].items():
        n = ds["images"]
        lines.append(f"**{name}** (train {n['train']}, val {n['val']}, test {n['test']})")
        lines.append("")
        bits = sorted({r["bits"] for r in ds["runs"].values()})
        header = (
            "| method | "
            + " | ".join(f"mAP {b}" for b in bits)
            + " | "
            + " | ".join(f"NDCG@50 {b}" for b in bits)
            + " | train s |"
        )
        lines.append(header)
        lines.append("|" + "---|" * (2 * len(bits) + 2))
        for method in results["settings"]["methods"]:
            runs = [ds["runs"].get(f"{method}-{b}") for b in bits]
            if not all(runs):
                continue
            maps = " | ".join(f"{r['mAP']:.3f} ({r['untrained_mAP']:.3f})" for r in runs)
            ndcg = " | ".join(f"{r['ndcg@50']:.3f} ({r['untrained_ndcg@50']:.3f})" for r in runs)
            t = sum(r["train_time_s"] for r in runs) / len(runs)
            lines.append(f"| {method.upper()} | {maps} | {ndcg} | {t:.0f} |")
        lines.append("")
    speed = results["encode_images_per_s"]
    lines.append(
        "Encoding speed (DVSH, 64 bits, CPU, batch 32, network only): "
        + ", ".join(f"{v:.0f} images/s at {k} px" for k, v in speed.items())
        + "."
    )
    lines.append("")
    return "\n".join(lines)


NOTES_MARK = "<!-- notes: kept when bench_dvsh.py rewrites the tables above -->"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) the '## DVSH' section, leaving other sections alone."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    start = text.find("## DVSH\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        old = text[start : end + 1 if end != -1 else len(text)]
        mark = old.find(NOTES_MARK)
        if mark != -1:  # hand-written notes under the marker survive a re-run
            section = section.rstrip("\n") + "\n\n" + old[mark:]
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    path.write_text(text, encoding="utf-8")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="32/64 bits, fewer images and epochs")
    p.add_argument(
        "--synth", type=int, default=None, help="synthetic images (default 1600, quick 800)"
    )
    p.add_argument("--synth-size", type=int, default=128)
    p.add_argument("--epochs", type=int, default=None, help="default 20, quick 8")
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--input-size", type=int, default=64)
    p.add_argument("--bits", type=int, nargs="+", default=None)
    p.add_argument("--methods", nargs="+", default=METHODS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-dtd", action="store_true")
    p.add_argument("--dtd-methods", nargs="+", default=None, help="methods on dtd10 (default: all)")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args()
    args.synth = args.synth or (800 if args.quick else 1600)
    args.epochs = args.epochs or (8 if args.quick else 20)
    args.bits = args.bits or ([32, 64] if args.quick else [32, 64, 128, 256])
    results = run(args)
    section = markdown(results)
    print(section)
    if not args.no_write:
        out = ROOT / "benchmarks" / "results" / "dvsh.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        write_section(ROOT / "docs" / "benchmarks.md", section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
