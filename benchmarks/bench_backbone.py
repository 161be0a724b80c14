"""Pretrained backbone (issue 14): mAP with few or no labels, lite0/1/2, methods, encode speed.

On dtd10 and batik6 (real photographs, /work/shared/data; never copied into the repo), each
imported once into a library under benchmarks/results/cache/ (gitignored; the real import
path: palettes, stored 70/15/15 split, content-keyed feature store). Protocol as
`fabricsearch eval`: queries = test split, database = train + val, every image with its true
labels, tie-aware mAP over the Hamming ranking.

  labels   (a) no labels: ITQ on the frozen features of every library image (what a new
           library gets); (b) 10 %, (c) 50 %, (d) 100 % of the train/val labels: DVSH on the
           cached features. Labels are "cleared" by leaving a seeded random subset of the
           train and val images out of training (the trainer sees labelled images only, as
           `train_library` does); test labels are kept for evaluation.
  lite     efficientnet-lite0/1/2 at 64 bits on dtd10, (a) and (d), with CPU encode speed
           (`extract.compute_features` on 128 photos: decode + backbone forward).
  methods  dvsh, dvsh1a, dvsh1b, dvsh2a, itq, lsh on lite0 features, dtd10, all labels
           (DNNH, DSaH, TSN and DSH-GANs need pixels: compact backbone only).
  speed    one run, side by side: eager fp32 NCHW at 224 px vs channels_last + inference_mode
           vs 192 px input; full JPEG decode vs reduced-size decode; mAP change where the
           input changes.
  tune     a few DVSH hyper-parameter variants at 64 bits (method options only).

Cells are kept in benchmarks/results/backbone.json as they finish, so an interrupted run
continues where it stopped (`--fresh` recomputes). Single-seed numbers.

    .venv/bin/python benchmarks/bench_backbone.py --quick     # ~2 min subset
    .venv/bin/python benchmarks/bench_backbone.py             # everything (~25 min, 2 cores)
    .venv/bin/python benchmarks/bench_backbone.py --parts labels,lite
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fabricsearch.config import TrainConfig  # noqa: E402
from fabricsearch.featurestore import MAIN_VIEWS  # noqa: E402
from fabricsearch.hashing.backbones import LITE_MEAN, LITE_STD, get_spec, load_backbone  # noqa: E402
from fabricsearch.hashing.data import TrainingData, prepare_image, to_tensor  # noqa: E402
from fabricsearch.hashing.encode import encode_tensor  # noqa: E402
from fabricsearch.hashing.extract import compute_features  # noqa: E402
from fabricsearch.hashing.metrics import evaluate_codes  # noqa: E402
from fabricsearch.hashing.train import library_training_data, train  # noqa: E402
from fabricsearch.imaging import load_rgb  # noqa: E402

DATA = Path("/work/shared/data")
DATASETS = ("dtd10", "batik6")
CACHE = ROOT / "benchmarks" / "results" / "cache"
RESULTS = ROOT / "benchmarks" / "results" / "backbone.json"
QUICK_RESULTS = ROOT / "benchmarks" / "results" / "backbone_quick.json"
DEFAULT = "efficientnet-lite0"
LITES = ("efficientnet-lite0", "efficientnet-lite1", "efficientnet-lite2")
FRACTIONS = {"b": 0.1, "c": 0.5, "d": 1.0}
METHODS = ("dvsh", "dvsh1a", "dvsh1b", "dvsh2a", "itq", "lsh")
PIXEL_ONLY = ("dnnh", "dsah", "tsn", "dshgan")
#: Reference rows of the compact backbone (issue 14, measured before; not re-run: too slow).
COMPACT_REFERENCE = {
    "dtd10": {
        "a": (0.131, "shipped synthetic-pretrained model"),
        "d": (0.356, "DVSH, train defaults, 6 min"),
        "d120": (0.427, "DVSH, 120 epochs, 17 min"),
    }
}
#: DVSH variants of the `tune` part: (name, TrainConfig changes, method options).
TUNE = (
    ("feature_views", {"feature_views": True}, {}),
    ("lr 3e-3", {"lr": 3e-3}, {}),
    ("lambda_cls 5, lambda_code_cls 5", {}, {"lambda_cls": 5.0, "lambda_code_cls": 5.0}),
    ("feature_dim 1024", {}, {"feature_dim": 1024}),
    ("epochs 60, patience 10", {"epochs": 60, "patience": 10}, {}),
    # 10 % of dtd10 is 85 images = 2 steps per epoch: the defaults stop after ~20 steps.
    ("epochs 300, patience 0", {"epochs": 300, "patience": 0}, {}),
)
SECTION = "## Pretrained backbone (issue 14)"
NOTES_MARK = "<!-- notes: kept by bench_backbone.py -->"


# --------------------------------------------------------------------------- data


class Dataset:
    """One dataset's library: paths, labels, split and the cached features per backbone."""

    def __init__(self, name: str) -> None:
        from fabricsearch.catalogue import Library
        from fabricsearch.catalogue.importer import import_folder

        self.name = name
        folder = CACHE / f"{name}-lib"
        src = DATA / name
        t = time.perf_counter()
        if (folder / "catalogue.sqlite").exists():
            self.lib = Library.open(folder)
        else:
            folder.parent.mkdir(parents=True, exist_ok=True)
            self.lib = Library.create(folder)
            import_folder(self.lib, src, labels_csv=src / "labels.csv", add_categories=True)
        self.import_s = time.perf_counter() - t
        self.data = library_training_data(self.lib)  # every image is labelled in both sets
        self.labels = self.data.labels
        self.db = np.concatenate([self.data.train_idx, self.data.val_idx])
        self.test = self.data.test_idx
        self._feats: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}
        print(
            f"{name}: {len(self.data.images)} images, train {len(self.data.train_idx)} / "
            f"val {len(self.data.val_idx)} / test {len(self.test)} "
            f"(library ready in {self.import_s:.0f} s)",
            flush=True,
        )

    def features(self, backbone: str) -> tuple[np.ndarray, np.ndarray, float]:
        """float32 (N, 1, D) centre-crop features, ok (N,), seconds it took (0 when cached)."""
        if backbone not in self._feats:
            t = time.perf_counter()
            feats, ok = self.data.features_fn(backbone, MAIN_VIEWS)
            self._feats[backbone] = (feats, ok, time.perf_counter() - t)
        return self._feats[backbone]


def evaluate(codes: np.ndarray, ds: Dataset, ok: np.ndarray) -> dict[str, float]:
    q, db = ds.test[ok[ds.test]], ds.db[ok[ds.db]]
    r = evaluate_codes(codes[q], codes[db], ds.labels.subset(q), ds.labels.subset(db))
    return {"mAP": float(r.mAP), "precision@10": float(r.precision.get(10, float("nan")))}


def subsample(idx: np.ndarray, fraction: float, seed: int, salt: int) -> np.ndarray:
    """The seeded subset of `idx` that keeps its labels (at least 2)."""
    if fraction >= 1.0:
        return idx
    rng = np.random.default_rng([seed, salt, int(round(fraction * 1000))])
    k = max(2, int(round(fraction * len(idx))))
    return np.sort(rng.choice(idx, k, replace=False))


def run_cell(
    ds: Dataset,
    method: str,
    bits: int,
    backbone: str = DEFAULT,
    fraction: float = 1.0,
    seed: int = 0,
    fit_all: bool = False,
    feats: tuple[np.ndarray, np.ndarray] | None = None,
    cfg_changes: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train `method` on the cached features and evaluate it; label-free methods are fitted on
    every image (`fit_all`) or on the train split."""
    if feats is None:
        f, ok, _ = ds.features(backbone)
    else:
        f, ok = feats
    d = ds.data
    if fit_all:
        train_idx, val_idx = np.arange(len(d.images)), d.val_idx
    else:
        train_idx = subsample(d.train_idx, fraction, seed, 1)
        val_idx = subsample(d.val_idx, fraction, seed, 2)
    changes = dict(cfg_changes or {})
    views = bool(changes.get("feature_views"))

    def features_fn(bb, view_ids, progress=None, cancel=None):  # type: ignore[no-untyped-def]
        if tuple(view_ids) == MAIN_VIEWS:
            return f, ok
        return d.features_fn(bb, view_ids, progress, cancel)

    td = TrainingData(
        images=d.images,
        labels=ds.labels,
        train_idx=train_idx,
        val_idx=val_idx,
        fabric_ids=d.fabric_ids,
        fingerprint=d.fingerprint,
        features_fn=features_fn,
    )
    cfg = TrainConfig(
        method=method,
        bits=bits,
        backbone=backbone,
        seed=seed,
        method_options=dict(options or {}),
        **changes,
    )
    t = time.perf_counter()
    result = train(td, cfg)
    secs = time.perf_counter() - t
    codes = encode_tensor(result.method, torch.from_numpy(np.ascontiguousarray(f[:, 0])))
    out = evaluate(codes, ds, ok)
    out.update(
        {
            "time_s": round(secs, 2),
            "epochs_run": len(result.history),
            "best_epoch": result.best_epoch,
            "train_images": int(len(train_idx)),
            "views": views,
        }
    )
    return out


# --------------------------------------------------------------------------- speed


def _time(fn, repeat: int = 1) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def forward_rate(backbone: str, size: int, channels_last: bool, inference: bool, n: int) -> float:
    """Images/s of the backbone forward alone on random input (batch 32)."""
    net = load_backbone(backbone)
    x = torch.randn(min(32, n), 3, size, size)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    ctx = torch.inference_mode if inference else torch.no_grad
    batches = max(1, n // x.shape[0])

    def go() -> None:
        with ctx():
            for _ in range(batches):
                net(x)

    with ctx():
        net(x)  # warm-up
    return batches * x.shape[0] / _time(go, 2)


def decode_rate(paths: list[Path], max_side: int | None) -> float:
    return len(paths) / _time(lambda: [load_rgb(p, max_side=max_side) for p in paths], 2)


def pipeline_rate(paths: list[Path], backbone: str) -> float:
    """Images/s of the product encode path: `compute_features` (decode threads + forward)."""
    compute_features(paths[:8], backbone)  # warm-up (weights, allocator)
    return len(paths) / _time(lambda: compute_features(paths, backbone), 1)


def eager_pipeline_rate(paths: list[Path], backbone: str) -> float:
    """Images/s of the naive path: full decode, one image after another, eager fp32 NCHW."""
    net = load_backbone(backbone)
    size = get_spec(backbone).input_size

    def go() -> None:
        batch = []
        for p in paths:
            batch.append(prepare_image(load_rgb(p), size))
            if len(batch) == 32 or p is paths[-1]:
                with torch.no_grad():
                    net(to_tensor(np.stack(batch), LITE_MEAN, LITE_STD))
                batch = []

    return len(paths) / _time(go, 1)


@torch.inference_mode()
def features_variant(
    paths: list[Any], backbone: str, size: int, max_side: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Features with another input size or decode (not cached): float32 (N, 1, D), ok (N,)."""
    from concurrent.futures import ThreadPoolExecutor

    from fabricsearch.imaging import ImageError

    net = load_backbone(backbone)
    out = np.zeros((len(paths), 1, get_spec(backbone).feature_dim), np.float32)
    ok = np.ones(len(paths), bool)

    def prep(p: Any) -> np.ndarray | None:
        try:
            return prepare_image(load_rgb(p, max_side=max_side), size)
        except (ImageError, OSError, ValueError):
            return None

    with ThreadPoolExecutor(2) as pool:
        prepared = list(pool.map(prep, paths))
    for s in range(0, len(paths), 32):
        idx = [i for i in range(s, min(len(paths), s + 32)) if prepared[i] is not None]
        for i in range(s, min(len(paths), s + 32)):
            ok[i] = prepared[i] is not None
        if idx:
            x = to_tensor(np.stack([prepared[i] for i in idx]), LITE_MEAN, LITE_STD)
            out[idx, 0] = net(x.contiguous(memory_format=torch.channels_last)).numpy()
    return out.astype(np.float16).astype(np.float32), ok  # as stored (float16)


LARGE_SIDE = 3000


def large_photos(paths: list[Path]) -> list[Path]:
    """Camera-sized JPEGs (longest side 3000 px, upscaled from dataset photos) in the cache
    folder, for the reduced-size decoding measurement (the datasets' photos are ≤ 640 px)."""
    import cv2

    folder = CACHE / "large"
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for p in paths:
        dest = folder / f"{p.parent.name}-{p.stem}.jpg"
        if not dest.exists():
            rgb = load_rgb(p)
            h, w = rgb.shape[:2]
            s = LARGE_SIDE / max(h, w)
            big = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
            cv2.imwrite(str(dest), big[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
        out.append(dest)
    return out


# --------------------------------------------------------------------------- the run


def run(args: argparse.Namespace) -> dict[str, Any]:
    results = Path(args.out)
    out = json.loads(results.read_text()) if results.exists() and not args.fresh else {}
    cells: dict[str, Any] = out.setdefault("cells", {})
    parts = set(args.parts.split(","))
    bit_lengths = [int(b) for b in args.bits.split(",")]
    out["settings"] = {
        "quick": args.quick,
        "seed": args.seed,
        "bits": bit_lengths,
        "train_defaults": {
            k: getattr(TrainConfig(), k) for k in ("epochs", "lr", "batch_size", "patience")
        },
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads",
        "torch": torch.__version__,
    }

    def save() -> None:
        results.parent.mkdir(parents=True, exist_ok=True)
        results.write_text(json.dumps(out, indent=2) + "\n")

    def cell(key: str, fn, *a: Any, **kw: Any) -> None:  # type: ignore[no-untyped-def]
        """Compute `fn(*a, **kw)` into cells[key] unless it is there already."""
        if key in cells and not args.fresh_cells:
            return
        cells[key] = fn(*a, **kw)
        save()
        print(f"{key}: {cells[key]}", flush=True)

    datasets = {}
    for name in args.datasets.split(","):
        datasets[name] = ds = Dataset(name)
        feats, ok, secs = ds.features(DEFAULT)
        out.setdefault("datasets", {})[name] = {
            "images": len(ds.data.images),
            "queries": int(len(ds.test)),
            "database": int(len(ds.db)),
            "undecodable": int((~ok).sum()),
        }
        if secs > 1:
            print(f"{name}: {DEFAULT} features computed in {secs:.0f} s", flush=True)

    for name, ds in datasets.items():
        if "labels" in parts:
            for bits in bit_lengths:
                cell(f"{name}/a/{bits}", run_cell, ds, "itq", bits, fit_all=True)
                for part, frac in FRACTIONS.items():
                    if args.quick and part != "d":
                        continue
                    key = f"{name}/{part}/{bits}"
                    cell(key, run_cell, ds, "dvsh", bits, fraction=frac, seed=args.seed)
            if not args.quick:
                cell(f"{name}/a-train-split/64", run_cell, ds, "itq", 64)
                cell(f"{name}/a-lsh/64", run_cell, ds, "lsh", 64, fit_all=True)

    ds = datasets.get("dtd10")
    if ds is not None and "lite" in parts:
        rng = np.random.default_rng(args.seed)
        sample = [Path(ds.data.images[i]) for i in rng.choice(len(ds.data.images), 128, False)]
        sample = sample[: 32 if args.quick else 128]
        for bb in LITES[:1] if args.quick else LITES:
            for part in ("a", "d"):
                if bb == DEFAULT and f"dtd10/{part}/64" in cells:
                    cells[f"lite/{bb}/{part}"] = cells[f"dtd10/{part}/64"]  # the same run
            cell(f"lite/{bb}/a", run_cell, ds, "itq", 64, backbone=bb, fit_all=True)
            cell(f"lite/{bb}/d", run_cell, ds, "dvsh", 64, backbone=bb, seed=args.seed)

        def lite_speed() -> dict[str, float]:
            # Interleaved rounds, best of each (the CPU is shared; see `speed`).
            best: dict[str, float] = {}
            for _ in range(1 if args.quick else 2):
                for bb in LITES[:1] if args.quick else LITES:
                    best[bb] = max(best.get(bb, 0.0), pipeline_rate(sample[:64], bb))
            return best

        cell("lite/speed", lite_speed)

    if ds is not None and "methods" in parts and not args.quick:
        for m in METHODS:
            for bits in bit_lengths:
                if m == "dvsh" and f"dtd10/d/{bits}" in cells:
                    continue  # the (d) cell is this cell
                cell(f"methods/{m}/{bits}", run_cell, ds, m, bits, seed=args.seed)

    if ds is not None and "speed" in parts:
        rng = np.random.default_rng(args.seed)
        sample = [Path(ds.data.images[i]) for i in rng.choice(len(ds.data.images), 128, False)]
        sample = sample[: 32 if args.quick else 128]
        size = get_spec(DEFAULT).input_size
        n = len(sample)

        large = large_photos(sample[:16])

        def speed() -> dict[str, float]:
            # Interleaved rounds, best of each: the CPU is shared, so a slow moment hits one
            # round of every variant rather than one variant.
            fwd = min(n, 64)
            variants = {
                "forward_eager_fp32_224": lambda: forward_rate(DEFAULT, size, False, False, fwd),
                "forward_channels_last_224": lambda: forward_rate(DEFAULT, size, True, False, fwd),
                "forward_channels_last_inference_224": lambda: forward_rate(
                    DEFAULT, size, True, True, fwd
                ),
                "forward_channels_last_inference_192": lambda: forward_rate(
                    DEFAULT, 192, True, True, fwd
                ),
                "forward_channels_last_inference_160": lambda: forward_rate(
                    DEFAULT, 160, True, True, fwd
                ),
                "decode_full": lambda: decode_rate(sample, None),
                "decode_reduced_max448": lambda: decode_rate(sample, 2 * size),
                "decode_large_full": lambda: decode_rate(large, None),
                "decode_large_reduced_max448": lambda: decode_rate(large, 2 * size),
                "pipeline_naive": lambda: eager_pipeline_rate(sample, DEFAULT),
                "pipeline_product": lambda: pipeline_rate(sample, DEFAULT),
            }
            best: dict[str, float] = {}
            for _ in range(1 if args.quick else 3):
                for k, fn in variants.items():
                    best[k] = max(best.get(k, 0.0), fn())
            return {**best, "photos": n, "large_photos": len(large), "large_side": LARGE_SIDE}

        cell("speed/rates", speed)
        if not args.quick:
            paths = ds.data.images
            variants = [("reduced-192", 192, 384)]
            if args.full_decode_map:
                variants.append(("full-decode-224", 224, None))
            for label, sz, ms in variants:
                key = f"speed/map/{label}"
                if key in cells and not args.fresh_cells:
                    continue
                t = time.perf_counter()
                fv = features_variant(paths, DEFAULT, sz, ms)
                secs = time.perf_counter() - t
                cells[key] = {
                    "features_s": round(secs, 1),
                    "a": run_cell(ds, "itq", 64, fit_all=True, feats=fv),
                    "d": run_cell(ds, "dvsh", 64, seed=args.seed, feats=fv),
                }
                save()
                print(f"{key}: {cells[key]}", flush=True)

    if "tune" in parts and not args.quick:
        for name, ds in datasets.items():
            for label, changes, options in TUNE:
                if args.tune and label not in args.tune.split(";"):
                    continue
                only_b = changes.get("patience") == 0
                for part in ("b",) if only_b else ("d", "b") if name == "dtd10" else ("d",):
                    cell(
                        f"tune/{name}/{part}/{label}",
                        run_cell,
                        ds,
                        "dvsh",
                        64,
                        fraction=FRACTIONS[part],
                        seed=args.seed,
                        cfg_changes=changes,
                        options=options,
                    )
    for ds in datasets.values():
        ds.lib.close()
    return out


# --------------------------------------------------------------------------- report


def _m(cells: dict[str, Any], key: str) -> str:
    c = cells.get(key)
    return "–" if c is None else f"{c['mAP']:.3f}"


def _t(cells: dict[str, Any], key: str) -> str:
    c = cells.get(key)
    return "–" if c is None else f"{c['time_s']:.0f} s"


GOALS = {("dtd10", "a"): 0.55, ("dtd10", "b"): 0.70, ("dtd10", "d"): 0.90}
GOALS.update({("batik6", "a"): 0.40, ("batik6", "d"): 0.70})


def markdown(out: dict[str, Any]) -> str:
    cells = out["cells"]
    bits = out["settings"]["bits"]
    lines = [
        SECTION,
        "",
        "`benchmarks/bench_backbone.py`: EfficientNet-Lite0 (ImageNet weights, frozen) under the "
        "hashing methods, trained on the library's cached features. Queries = test split, "
        "database = train + val (as `fabricsearch eval`); single seed; "
        f"{out['settings']['machine']}. (a) = ITQ fitted on every library image's feature, "
        "no labels; (b)/(c)/(d) = DVSH at `train` defaults on 10 / 50 / 100 % of the train+val "
        "labels (the other images left out of training; test labels kept for evaluation). "
        "Time = training wall time with features cached (computing them is a one-off at "
        "import: see the speed table).",
        "",
    ]
    head = "| dataset | labels | " + " | ".join(f"{b} bits" for b in bits) + " | time (64) |"
    lines += [head, "|" + "---|" * (len(bits) + 3)]
    names = {"a": "(a) none, ITQ", "b": "(b) 10 %", "c": "(c) 50 %", "d": "(d) 100 %"}
    for ds in out.get("datasets", {}):
        for part in "abcd":
            if not any(f"{ds}/{part}/{b}" in cells for b in bits):
                continue
            row = [_m(cells, f"{ds}/{part}/{b}") for b in bits]
            lines.append(
                f"| {ds} | {names[part]} | "
                + " | ".join(row)
                + f" | {_t(cells, f'{ds}/{part}/64')} |"
            )
        for key, label in (("a-train-split", "(a) ITQ, train split only"), ("a-lsh", "(a) LSH")):
            if f"{ds}/{key}/64" in cells:
                lines.append(
                    f"| {ds} | {label} | "
                    + " | ".join(_m(cells, f"{ds}/{key}/64") if b == 64 else "" for b in bits)
                    + f" | {_t(cells, f'{ds}/{key}/64')} |"
                )
    ref = COMPACT_REFERENCE["dtd10"]
    lines += [
        "",
        f"Compact backbone for reference (measured before, 64 bits, dtd10): no labels "
        f"{ref['a'][0]:.3f} ({ref['a'][1]}), all labels {ref['d'][0]:.3f} ({ref['d'][1]}), "
        f"{ref['d120'][0]:.3f} ({ref['d120'][1]}).",
        "",
        "Goals at 64 bits:",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
    ]
    for (ds, part), goal in GOALS.items():
        c = cells.get(f"{ds}/{part}/64")
        if c is None:
            continue
        met = "yes" if c["mAP"] >= goal else "**no**"
        lines.append(f"| {ds} ({part}) ≥ {goal:.2f} | {c['mAP']:.3f} | {met} |")

    if any(k.startswith("lite/") for k in cells):
        lines += [
            "",
            "Backbones side by side, dtd10, 64 bits (encode = `compute_features` on 64 photos: "
            "reduced-size decode in two threads + forward, images/s, best of two interleaved "
            "rounds):",
            "",
            "| backbone | input | (a) ITQ | (d) DVSH | DVSH time | encode img/s |",
            "|---|---|---|---|---|---|",
        ]
        for bb in LITES:
            if f"lite/{bb}/d" not in cells:
                continue
            sp = cells.get("lite/speed", {}).get(bb, float("nan"))
            lines.append(
                f"| {bb} | {get_spec(bb).input_size} px | {_m(cells, f'lite/{bb}/a')} | "
                f"{_m(cells, f'lite/{bb}/d')} | {_t(cells, f'lite/{bb}/d')} | {sp:.1f} |"
            )

    if any(k.startswith("methods/") for k in cells):
        lines += [
            "",
            "Methods on the pretrained backbone (lite0 features), dtd10, all labels, "
            "`train` defaults:",
            "",
            "| method | " + " | ".join(f"{b} bits" for b in bits) + " | time (64) |",
            "|" + "---|" * (len(bits) + 2),
        ]
        for m in METHODS:
            key = (lambda b: f"dtd10/d/{b}") if m == "dvsh" else (lambda b, m=m: f"methods/{m}/{b}")
            lines.append(
                f"| {m} | "
                + " | ".join(_m(cells, key(b)) for b in bits)
                + f" | {_t(cells, key(64))} |"
            )
        lines.append(
            "| " + ", ".join(PIXEL_ONLY) + " | compact only (they need pixels: spatial maps, "
            "saliency or a generator) | | | |"
        )

    sp = cells.get("speed/rates")
    if sp:
        base = sp["forward_eager_fp32_224"]
        lines += [
            "",
            f"Encode speed on this CPU, one run, {sp['photos']} dtd10 photos (images/s; ratio "
            "to the first row of its group):",
            "",
            "| path | images/s | ratio |",
            "|---|---|---|",
            f"| forward, eager fp32 NCHW, 224 px | {base:.1f} | 1.00 |",
        ]
        for k, label in (
            ("forward_channels_last_224", "forward, channels_last, 224"),
            ("forward_channels_last_inference_224", "forward, channels_last + inference_mode, 224"),
            ("forward_channels_last_inference_192", "forward, channels_last + inference_mode, 192"),
            ("forward_channels_last_inference_160", "forward, channels_last + inference_mode, 160"),
        ):
            lines.append(f"| {label} | {sp[k]:.1f} | {sp[k] / base:.2f} |")
        d0 = sp["decode_full"]
        lines += [
            f"| decode, full size (dtd10 photos, ≤ 640 px) | {d0:.1f} | 1.00 |",
            f"| decode, reduced-size JPEG (max side 448) | {sp['decode_reduced_max448']:.1f} | "
            f"{sp['decode_reduced_max448'] / d0:.2f} |",
            f"| decode, full size, {sp['large_photos']} photos of {sp['large_side']} px | "
            f"{sp['decode_large_full']:.1f} | 1.00 |",
            f"| decode, reduced-size JPEG (max side 448), {sp['large_side']} px photos | "
            f"{sp['decode_large_reduced_max448']:.1f} | "
            f"{sp['decode_large_reduced_max448'] / sp['decode_large_full']:.2f} |",
            f"| decode + forward, naive (full decode, serial, eager) | {sp['pipeline_naive']:.1f} "
            "| 1.00 |",
            f"| decode + forward, `compute_features` (reduced decode, 2 threads, channels_last, "
            f"inference_mode) | {sp['pipeline_product']:.1f} | "
            f"{sp['pipeline_product'] / sp['pipeline_naive']:.2f} |",
        ]
        ref_a, ref_d = cells.get("dtd10/a/64"), cells.get("dtd10/d/64")
        variants = [k for k in ("full-decode-224", "reduced-192") if f"speed/map/{k}" in cells]
        if variants and ref_a and ref_d:
            lines += [
                "",
                "mAP at 64 bits, dtd10, where the input changes (Δ to the shipped recipe: "
                "reduced decode to max side 448, 224 px):",
                "",
                "| input | (a) ITQ | Δ | (d) DVSH | Δ |",
                "|---|---|---|---|---|",
                f"| shipped: reduced decode, 224 px | {ref_a['mAP']:.3f} | | {ref_d['mAP']:.3f} | |",
            ]
            for k in variants:
                c = cells[f"speed/map/{k}"]
                lines.append(
                    f"| {k} | {c['a']['mAP']:.3f} | {c['a']['mAP'] - ref_a['mAP']:+.3f} | "
                    f"{c['d']['mAP']:.3f} | {c['d']['mAP'] - ref_d['mAP']:+.3f} |"
                )

    tune = sorted(k for k in cells if k.startswith("tune/"))
    if tune:
        lines += [
            "",
            "DVSH hyper-parameter variants, 64 bits (one change each from the defaults):",
            "",
            "| dataset | labels | variant | mAP | Δ to default | time |",
            "|---|---|---|---|---|---|",
        ]
        for k in tune:
            _, ds, part, label = k.split("/", 3)
            base = cells.get(f"{ds}/{part}/64")
            delta = "" if base is None else f"{cells[k]['mAP'] - base['mAP']:+.3f}"
            lines.append(
                f"| {ds} | {names[part]} | {label} | {cells[k]['mAP']:.3f} | {delta} | "
                f"{cells[k]['time_s']:.0f} s |"
            )
    return "\n".join(lines) + "\n"


def write_section(path: Path, section: str) -> None:
    """Replace (or append) this benchmark's section of docs/benchmarks.md; hand-written notes
    under `NOTES_MARK` survive a re-run."""
    text = path.read_text(encoding="utf-8")
    start = text.find(SECTION + "\n")
    if start == -1:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + 1)
        old = text[start : end + 1 if end != -1 else len(text)]
        mark = old.find(NOTES_MARK)
        if mark != -1:
            section = section.rstrip("\n") + "\n\n" + old[mark:].rstrip("\n") + "\n"
        text = text[:start] + section + (text[end + 1 :] if end != -1 else "")
    path.write_text(text, encoding="utf-8")


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="dtd10, 64 bits, (a)/(d), short speed run")
    p.add_argument("--datasets", default=None, help="comma list (default dtd10,batik6)")
    p.add_argument("--parts", default="labels,lite,methods,speed,tune")
    p.add_argument("--bits", default=None, help="comma list (default 32,64,128; quick 64)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None)
    p.add_argument("--fresh", action="store_true", help="start a new results file")
    p.add_argument("--fresh-cells", action="store_true", help="recompute existing cells")
    p.add_argument("--tune", default="", help="';'-separated TUNE labels to run (default all)")
    p.add_argument("--report", action="store_true", help="print the table from the JSON only")
    p.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    p.add_argument(
        "--full-decode-map", action="store_true", help="also mAP with full-size decoding"
    )
    args = p.parse_args()
    args.datasets = args.datasets or ("dtd10" if args.quick else ",".join(DATASETS))
    args.bits = args.bits or ("64" if args.quick else "32,64,128")
    args.out = args.out or str(QUICK_RESULTS if args.quick else RESULTS)
    if args.report:
        section = markdown(json.loads(Path(args.out).read_text()))
        print(section)
        if args.write_docs:
            write_section(ROOT / "docs" / "benchmarks.md", section)
        return 0
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    t = time.perf_counter()
    out = run(args)
    out["settings"]["total_s"] = round(time.perf_counter() - t, 1)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(markdown(out))
    if args.write_docs and not args.quick:
        write_section(ROOT / "docs" / "benchmarks.md", markdown(out))
    print(f"total {time.perf_counter() - t:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
