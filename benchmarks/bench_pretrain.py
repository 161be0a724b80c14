"""Search before labels: scratch vs synthetic-pretrained vs self-supervised adapted vs fine-tuned.

On dtd10 (real photographs, /work/shared/data/dtd10; 10 texture classes, chance mAP 0.100,
hand-crafted colour+LBP 0.168) and on a held-out synthetic set, at 32 and 64 bits:

  (a) DVSH trained from scratch on all training labels (and on 10 % / 50 %, to compare with (d))
  (b) the shipped synthetic-pretrained model, no labels (32 bits = its nested code prefix)
  (c) (b) + self-supervised adaptation on the training images, no labels
  (d) (c) + DVSH training with 10 %, 50 % and 100 % of the training labels (base from (c),
      fresh hash head; every fraction gets the same number of optimisation steps)
  (h) reference: ITQ on the hand-crafted descriptors, fitted on the training images (no labels)

Protocol: queries = test split, database = train + val (as `fabricsearch eval`), tie-aware mAP
over the Hamming ranking. dtd10 is imported into a library (its stored 70/15/15 split);
the synthetic set is split by fabric. Results go to benchmarks/results/pretrain.json (each cell
is kept, so an interrupted run continues where it stopped) and a Markdown table is printed.

    python benchmarks/bench_pretrain.py --quick            # CPU budget (2 training epochs)
    python benchmarks/bench_pretrain.py --parts a,b        # only some cells
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabricsearch import adapt, pretrain  # noqa: E402
from fabricsearch.config import TrainConfig  # noqa: E402
from fabricsearch.hashing import checkpoint as ckpt  # noqa: E402
from fabricsearch.hashing.data import TrainingData, build_cache, work_size_for  # noqa: E402
from fabricsearch.hashing.encode import encode_cached  # noqa: E402
from fabricsearch.hashing.metrics import evaluate_codes  # noqa: E402
from fabricsearch.hashing.train import train  # noqa: E402
from fabricsearch.similarity import LabelArrays  # noqa: E402

DTD10 = Path("/work/shared/data/dtd10")
RESULTS = ROOT / "benchmarks" / "results" / "pretrain.json"
INPUT = 64  # the shipped model's input size
FRACTIONS = (1.0, 0.1, 0.5)  # most important first (cells are saved as they finish)


class Data:
    def __init__(
        self, name: str, cache: np.ndarray, labels: LabelArrays, split: np.ndarray
    ) -> None:
        self.name, self.cache, self.labels = name, cache, labels
        self.train = np.flatnonzero(split == "train")
        self.val = np.flatnonzero(split == "val")
        self.test = np.flatnonzero(split == "test")
        self.db = np.concatenate([self.train, self.val])


def load_dtd10(work: Path) -> Data:
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import import_folder

    folder = work / "dtd10-lib"
    if (folder / "catalogue.sqlite").exists():
        lib = Library.open(folder)
    else:
        lib = Library.create(folder)
        import_folder(lib, DTD10, labels_csv=DTD10 / "labels.csv", add_categories=True)
    with lib:
        records = lib.images()
        ids = [r.id for r in records]
        labels = lib.label_arrays(ids)
        splits = lib.splits()
        cache, ok = build_cache([r.path for r in records], work_size_for(INPUT))
    split = np.array([splits.get(i, "train") for i in ids])
    split[~ok] = "skip"
    return Data("dtd10", cache, labels, split)


def load_synthetic(n_fabrics: int, seed: int = 2024) -> Data:
    from fabricsearch.taxonomy import Taxonomy

    rng = np.random.default_rng([seed, 1])
    cache, labels, fabric = pretrain.synthetic_batch(
        rng, Taxonomy.default(), n_fabrics, 2, work_size_for(INPUT)
    )
    u = np.random.default_rng([seed, 2]).random(n_fabrics)[fabric]  # split by fabric
    split = np.where(u < 0.7, "train", np.where(u < 0.85, "val", "test"))
    return Data("synthetic", cache, labels, split)


def evaluate(method: torch.nn.Module, data: Data) -> dict[str, float]:
    codes = encode_cached(method, data.cache)
    r = evaluate_codes(
        codes[data.test], codes[data.db], data.labels.subset(data.test), data.labels.subset(data.db)
    )
    return {"mAP": r.mAP, "precision@10": r.precision.get(10, float("nan"))}


def train_cell(
    data: Data,
    bits: int,
    init: str,
    fraction: float,
    epochs: int,
    seed: int,
    method: str = "dvsh",
) -> tuple[dict[str, float], float]:
    rng = np.random.default_rng([seed, int(fraction * 1000)])

    def subset(idx: np.ndarray) -> np.ndarray:
        k = max(2, int(round(fraction * len(idx))))
        return np.sort(rng.choice(idx, k, replace=False))

    tr, va = subset(data.train), subset(data.val)
    full_steps = epochs * (len(data.train) // 32)
    spe = max(1, len(tr) // 32)
    cfg = TrainConfig(
        method=method,
        bits=bits,
        input_size=INPUT,
        epochs=max(1, math.ceil(full_steps / spe)),  # the same step budget for every fraction
        patience=0,
        val_every=max(1, math.ceil(full_steps / spe) // epochs),
        seed=seed,
        init=init,
    )
    td = TrainingData(images=list(data.cache), labels=data.labels, train_idx=tr, val_idx=va)
    result = train(td, cfg)
    return evaluate(result.method, data), result.train_time_s


def run(args: argparse.Namespace) -> dict:
    results = Path(args.out)
    out = json.loads(results.read_text()) if results.exists() and not args.fresh else {}
    cells = out.setdefault("cells", {})
    parts = set(args.parts.split(","))
    bit_lengths = [int(b) for b in args.bits.split(",")]
    epochs = 2 if args.quick else args.epochs
    adapt_epochs = 2 if args.quick else args.adapt_epochs
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    shipped = pretrain.shipped_model_path()
    meta = ckpt.read_metadata(shipped) if shipped.exists() else ckpt.CheckpointMeta("dvsh", 64, {})
    out["settings"] = {
        "quick": args.quick,
        "train_epochs_at_100pct": epochs,
        "adapt_epochs": adapt_epochs,
        "input_size": INPUT,
        "pretrain": {
            "steps": meta.train_config.get("steps"),
            "seed": meta.train_config.get("seed"),
            "train_time_s": meta.metrics.get("train_time_s"),
            "device": meta.extra.get("device"),
        },
        "machine": f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads",
        "device": "cuda" if torch.cuda.is_available() else "cpu",
    }

    def save() -> None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(out, indent=2) + "\n")

    for name in args.datasets.split(","):
        t = time.perf_counter()
        data = load_dtd10(work) if name == "dtd10" else load_synthetic(150 if args.quick else 300)
        print(
            f"{name}: {len(data.cache)} images loaded in {time.perf_counter() - t:.0f} s",
            flush=True,
        )
        fractions = FRACTIONS if name == "dtd10" or not args.quick else (1.0,)

        def done(key: str) -> bool:
            return key in cells and not args.fresh

        for bits in bit_lengths:
            for frac in fractions:  # (a) at 100 %, and the label fractions of (d) from scratch
                key = f"{name}/a/{bits}" if frac == 1.0 else f"{name}/a{int(frac * 100)}/{bits}"
                if "a" in parts and not done(key):
                    m, secs = train_cell(data, bits, "scratch", frac, epochs, args.seed)
                    cells[key] = {**m, "time_s": secs}
                    save()
                    print(key, cells[key], flush=True)
            key = f"{name}/h/{bits}"
            if "h" in parts and not done(key):
                m, secs = train_cell(data, bits, "scratch", 1.0, 1, args.seed, method="itq")
                cells[key] = {**m, "time_s": secs}
                save()
                print(key, cells[key], flush=True)
            key = f"{name}/b/{bits}"
            if "b" in parts and not done(key):
                method, _ = pretrain.load_pretrained(bits)
                cells[key] = {**evaluate(method, data), "time_s": 0.0}
                save()
                print(key, cells[key], flush=True)

        adapted = work / f"{name}-adapted-{adapt_epochs}.safetensors"
        if ("c" in parts and not all(done(f"{name}/c/{b}") for b in (64, 32))) or (
            "d" in parts and not adapted.exists()
        ):
            method, meta = pretrain.load_pretrained(64)
            t = time.perf_counter()
            acfg = adapt.AdaptConfig(epochs=adapt_epochs, seed=args.seed)
            adapt.adapt_method(method, data.cache[data.train], acfg)
            secs = time.perf_counter() - t
            ckpt.save_checkpoint(adapted, method.to("cpu"), meta)
            for bits in (64, 32):
                m = pretrain.truncate_bits(method, bits)
                cells[f"{name}/c/{bits}"] = {**evaluate(m, data), "time_s": secs}
                print(f"{name}/c/{bits}", cells[f"{name}/c/{bits}"], flush=True)
            save()
        if "d" in parts:
            for bits in bit_lengths:
                for frac in fractions:
                    key = f"{name}/d{int(frac * 100)}/{bits}"
                    if done(key):
                        continue
                    m, secs = train_cell(data, bits, str(adapted), frac, epochs, args.seed)
                    cells[key] = {**m, "time_s": secs}
                    save()
                    print(key, cells[key], flush=True)
    save()
    return out


def table(out: dict) -> str:
    cells = out["cells"]
    rows = [
        ("a", "(a) DVSH from scratch, 100 % labels"),
        ("a10", "(a) DVSH from scratch, 10 % labels"),
        ("a50", "(a) DVSH from scratch, 50 % labels"),
        ("b", "(b) shipped synthetic-pretrained, no labels"),
        ("c", "(c) (b) + self-supervised adaptation, no labels"),
        ("d10", "(d) (c) + DVSH, 10 % labels"),
        ("d50", "(d) (c) + DVSH, 50 % labels"),
        ("d100", "(d) (c) + DVSH, 100 % labels"),
        ("h", "reference: ITQ on hand-crafted descriptors, no labels"),
    ]
    lines = []
    for name in ("dtd10", "synthetic"):
        if not any(k.startswith(name + "/") for k in cells):
            continue
        lines += [
            f"**{name}** (test queries vs train+val database)",
            "",
            "| setting | mAP 32 bits | mAP 64 bits | P@10 64 bits | time 32 / 64 bits (s) |",
            "|---|---|---|---|---|",
        ]
        for key, label in rows:
            c32, c64 = cells.get(f"{name}/{key}/32"), cells.get(f"{name}/{key}/64")
            if c32 is None and c64 is None:
                continue

            def f(c: dict | None, k: str, fmt: str = "{:.3f}") -> str:
                return fmt.format(c[k]) if c is not None and k in c else "–"

            lines.append(
                f"| {label} | {f(c32, 'mAP')} | {f(c64, 'mAP')} | {f(c64, 'precision@10')} | "
                f"{f(c32, 'time_s', '{:.0f}')} / {f(c64, 'time_s', '{:.0f}')} |"
            )
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="CPU budget: 2 epochs, smaller synthetic set"
    )
    p.add_argument("--epochs", type=int, default=6, help="training epochs at 100 %% labels")
    p.add_argument("--adapt-epochs", type=int, default=5)
    p.add_argument("--parts", default="a,b,c,d,h")
    p.add_argument("--bits", default="64,32", help="code lengths, most important first")
    p.add_argument("--out", default=str(RESULTS), help="results JSON (cells are kept and reused)")
    p.add_argument("--datasets", default="dtd10,synthetic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default=str(Path(tempfile.gettempdir()) / "bench_pretrain"))
    p.add_argument("--fresh", action="store_true", help="recompute every cell")
    args = p.parse_args()
    if "dtd10" in args.datasets and not DTD10.exists():
        args.datasets = ",".join(d for d in args.datasets.split(",") if d != "dtd10")
        print("dtd10 not found; synthetic only")
    out = run(args)
    print(table(out))


if __name__ == "__main__":
    main()
