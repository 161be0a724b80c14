"""Benchmark folder import: images per second for camera-size JPEGs.

    python benchmarks/bench_import.py [--count 1000] [--workers N ...] [--width 3000 --height 2000]

Generates ``count`` distinct 3000×2000 JPEGs (woven-looking pattern, lighting gradient and
sensor noise, quality 90) into /tmp/fabricsearch-bench-import/ (kept for re-runs), then times
a full import into a fresh library for each worker count: read + sha256, reduced decode
(JPEG draft mode), colour quantisation, two thumbnails, batched SQLite writes. Also times one
photo's decode at full size versus draft mode. Prints a table and writes
benchmarks/results/import.json.

    python benchmarks/bench_import.py --compare [--baseline REV] [--rounds 2]
        [--dtd ../shared/data/dtd10 --dtd-count 240] [--camera-count 40]

Import speed of the whole user operation (`workflows.import_and_encode` into a fresh library
with the shipped model: import, features, label-free head fit, encoding), today's code against
the code of ``--baseline`` (extracted with ``git archive`` into a temporary folder, never
touching the checkout), on dtd10 photos (≤ 640 px) and on 4000×3000 camera JPEGs made by
upscaling dtd10 photos with sensor noise. Old and new runs alternate (each a fresh process,
so torch's import is counted), round after round, so a busy machine slows both alike; also
times the features stage alone (`extract.compute_features` on the same files: decode +
network). Records stage times and peak memory (the process, and its largest worker). Prints a
table and writes benchmarks/results/import_speed.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fabricsearch import imaging
from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import WORK_SIDE, import_folder

RESULTS = Path(__file__).resolve().parent / "results" / "import.json"
SPEED_RESULTS = Path(__file__).resolve().parent / "results" / "import_speed.json"
RECIPE_RESULTS = Path(__file__).resolve().parent / "results" / "import_recipe.json"
COSTS_RESULTS = Path(__file__).resolve().parent / "results" / "import_costs.json"
REPO = Path(__file__).resolve().parent.parent
CACHE = Path(tempfile.gettempdir()) / "fabricsearch-bench-import"


def make_photo(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A twill-like two-colour weave under a lighting gradient, with noise (BGR uint8)."""
    period = int(rng.integers(4, 12))
    y, x = np.mgrid[0:height, 0:width]
    weave = ((x + y) // period) % 2 == 0
    c1, c2 = rng.integers(20, 235, (2, 3))
    img = np.where(weave[..., None], c1, c2).astype(np.float32)
    img *= (0.65 + 0.35 * x / width)[..., None].astype(np.float32)
    img += rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def ensure_photos(count: int, width: int, height: int, seed: int = 0) -> Path:
    folder = CACHE / f"{width}x{height}"
    folder.mkdir(parents=True, exist_ok=True)
    have = sorted(folder.glob("*.jpg"))
    if len(have) >= count:
        return folder
    rng = np.random.default_rng(seed + len(have))
    t0 = time.perf_counter()
    for i in range(len(have), count):
        img = make_photo(rng, width, height)
        cv2.imwrite(str(folder / f"photo_{i:05d}.jpg"), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        if (i + 1) % 100 == 0:
            print(f"  generated {i + 1}/{count} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return folder


def time_decode(path: Path, repeats: int = 5) -> dict[str, float]:
    data = path.read_bytes()
    out = {}
    for name, side in (("full_decode_ms", None), ("draft_decode_ms", WORK_SIDE)):
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            imaging.decode(data, max_side=side)
            ts.append((time.perf_counter() - t0) * 1000)
        out[name] = float(np.median(ts))
    return out


def run_import(folder: Path, count: int, workers: int) -> dict[str, Any]:
    files = sorted(folder.glob("*.jpg"))[:count]
    subset = CACHE / f"subset-{count}"
    if subset.exists():
        shutil.rmtree(subset)
    subset.mkdir()
    for f in files:  # hard links: the same bytes, no copy
        os.link(f, subset / f.name)
    lib_dir = Path(tempfile.mkdtemp(prefix="bench-lib-"))
    try:
        with Library.create(lib_dir / "lib") as lib:
            t0 = time.perf_counter()
            rep = import_folder(lib, subset, workers=workers)
            seconds = time.perf_counter() - t0
            assert rep.added == count, rep.to_json()
            assert not rep.failed, rep.to_json()
            t1 = time.perf_counter()
            again = import_folder(lib, subset, workers=workers)
            rescan = time.perf_counter() - t1
            assert again.unchanged == count
    finally:
        shutil.rmtree(lib_dir, ignore_errors=True)
        shutil.rmtree(subset, ignore_errors=True)
    return {
        "workers": workers,
        "images": count,
        "seconds": seconds,
        "images_per_s": count / seconds,
        "reimport_unchanged_s": rescan,
    }


# --------------------------------------------------------------------------- --compare


def ensure_camera_photos(dtd: Path, count: int, seed: int = 0) -> Path:
    """``count`` 4000×3000 JPEGs (quality 92) from dtd10 photos: bicubic upscale + noise."""
    folder = CACHE / "camera-4000x3000"
    folder.mkdir(parents=True, exist_ok=True)
    src = sorted(dtd.rglob("*.jpg"))
    step = max(1, len(src) // max(count, 1))
    rng = np.random.default_rng(seed)
    for i in range(count):
        out = folder / f"cam_{i:04d}.jpg"
        noise = rng.normal(0, 5, (3000, 4000, 1)).astype(np.int16)  # drawn even if cached
        if out.exists():
            continue
        img = cv2.imread(str(src[(i * step) % len(src)]))
        big = cv2.resize(img, (4000, 3000), interpolation=cv2.INTER_CUBIC).astype(np.int16)
        big = np.clip(big + noise, 0, 255).astype(np.uint8)
        cv2.imwrite(str(out), big, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return folder


def link_subset(files: list[Path], name: str) -> Path:
    subset = CACHE / f"subset-{name}"
    if subset.exists():
        shutil.rmtree(subset)
    subset.mkdir(parents=True)
    for i, f in enumerate(files):  # hard links (or copies across devices): the same bytes
        dest = subset / f"{i:05d}_{f.name}"
        try:
            os.link(f, dest)
        except OSError:
            shutil.copyfile(f, dest)
    return subset


def baseline_tree(rev: str) -> Path:
    """The package at ``rev``, extracted once into a temporary folder."""
    import subprocess

    sha = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", rev], capture_output=True, text=True, check=True
    ).stdout.strip()
    dest = CACHE / f"baseline-{sha[:12]}"
    if not (dest / "fabricsearch" / "__init__.py").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", sha, "fabricsearch"],
            capture_output=True,
            check=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def child(variant: str, folder: Path, workers: int | None) -> dict[str, Any]:
    """One measured run in this (fresh) process; ``variant`` old/new run import_and_encode,
    ``features`` runs compute_features alone on the folder's files."""
    import resource

    t0 = time.perf_counter()
    stages: dict[str, list[float]] = {}

    def progress(p: Any) -> None:
        now = time.perf_counter() - t0
        span = stages.setdefault(p.stage, [now, now])
        span[1] = now

    import fabricsearch

    out: dict[str, Any] = {"variant": variant, "package": str(Path(fabricsearch.__file__).parent)}
    if variant == "features":
        import torch  # noqa: F401

        out["torch_import_s"] = time.perf_counter() - t0
        from fabricsearch.hashing.backbones import DEFAULT_BACKBONE
        from fabricsearch.hashing.extract import compute_features

        files = sorted(str(p) for p in folder.glob("*.jpg"))
        _, ok = compute_features(files, DEFAULT_BACKBONE, progress=progress)
        out["images"] = int(ok.sum())
    else:
        from fabricsearch.workflows import create_library, import_and_encode

        try:
            from fabricsearch.threads import free_cores

            out["free_cores_at_start"] = free_cores()
        except ImportError:  # the baseline may predate it
            pass

        lib_dir = Path(tempfile.mkdtemp(prefix="bench-lib-"))
        try:
            lib = create_library(lib_dir / "lib")
            out["setup_s"] = time.perf_counter() - t0
            outcome = import_and_encode(lib, folder, workers=workers, progress=progress)
            out["images"] = outcome.report.added
            out["encoded"] = outcome.encoded
            lib.close()
        finally:
            shutil.rmtree(lib_dir, ignore_errors=True)
    out["seconds"] = time.perf_counter() - t0
    out["stages"] = {k: [round(a, 2), round(b, 2)] for k, (a, b) in stages.items()}
    if "import" in stages and "features" in stages:
        # The per-image part: from the first photo read to the last feature stored.
        out["import_features_s"] = stages["features"][1] - stages["import"][0]
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["peak_worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


def run_child(
    variant: str,
    folder: Path,
    workers: int | None,
    baseline: Path | None,
    new_tree: Path | None = None,
) -> dict[str, Any]:
    import subprocess
    import sys

    env = dict(os.environ)
    root = baseline if variant == "old" and baseline is not None else (new_tree or REPO)
    env["PYTHONPATH"] = str(root)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", variant, str(folder)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    load = os.getloadavg()[0]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=str(root))
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} run failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["loadavg_1min_before"] = load
    return result


def compare(args: argparse.Namespace) -> None:
    dtd = Path(args.dtd).resolve()
    base = baseline_tree(args.baseline)
    print(f"baseline {args.baseline} in {base}", flush=True)
    # --new-rev: today's side from a commit too (a shared working tree may be mid-edit).
    new_tree = baseline_tree(args.new_rev) if args.new_rev else None
    datasets: dict[str, Path] = {}
    if args.camera_count:
        cam = sorted(ensure_camera_photos(dtd, args.camera_count).glob("*.jpg"))
        datasets["camera 4000×3000"] = link_subset(cam[: args.camera_count], "camera")
    if args.dtd_count:
        photos = sorted(dtd.rglob("*.jpg"))
        step = max(1, len(photos) // args.dtd_count)
        datasets["dtd10 ≤640 px"] = link_subset(photos[::step][: args.dtd_count], "dtd")
    workers = args.workers[0] if args.workers else None
    runs: list[dict[str, Any]] = []
    for r in range(args.rounds):
        for name, folder in datasets.items():
            order = ["old", "new", "features"] if r % 2 == 0 else ["features", "new", "old"]
            if args.new_workers:  # today's path with a fixed decoder count, beside the policy's
                order.insert(2, f"new_w{args.new_workers}")
            for variant in order:
                w = args.new_workers if variant.startswith("new_w") else workers
                res = run_child(variant, folder, w, base, new_tree)
                res.update({"dataset": name, "round": r})
                runs.append(res)
                print(
                    f"  round {r} {name:18s} {variant:8s} {res['images']:5d} img "
                    f"{res['seconds']:7.1f} s  {res['images'] / res['seconds']:6.2f} img/s  "
                    f"load {res['loadavg_1min_before']:.1f}",
                    flush=True,
                )
    rows = []
    print()
    print(
        f"{'dataset':18s} {'round':>5s} {'old img/s':>9s} {'new img/s':>9s} {'new/old':>7s} "
        f"{'feat. img/s':>11s} {'new/feat':>8s} {'old MB':>7s} {'new MB':>7s} {'load':>5s}"
    )
    for name in datasets:
        for r in range(args.rounds):
            got = {x["variant"]: x for x in runs if x["dataset"] == name and x["round"] == r}
            old, new, feat = got["old"], got["new"], got["features"]
            row = {
                "dataset": name,
                "round": r,
                "images": new["images"],
                "old_img_s": old["images"] / old["seconds"],
                "new_img_s": new["images"] / new["seconds"],
                "features_img_s": feat["images"] / feat["seconds"],
                "speedup": old["seconds"] / new["seconds"],
                "new_over_features": new["seconds"] / feat["seconds"],
                "old_peak_mb": old["peak_rss_mb"] + old["peak_worker_rss_mb"],
                "new_peak_mb": new["peak_rss_mb"] + new["peak_worker_rss_mb"],
                "load": (old["loadavg_1min_before"] + new["loadavg_1min_before"]) / 2,
            }
            fixed = got.get(f"new_w{args.new_workers}")
            if fixed is not None:
                row["new_fixed_workers"] = args.new_workers
                row["new_fixed_img_s"] = fixed["images"] / fixed["seconds"]
                row["new_fixed_peak_mb"] = fixed["peak_rss_mb"] + fixed["peak_worker_rss_mb"]
                row["new_over_fixed"] = fixed["seconds"] / new["seconds"]
            for key, run in (("old", old), ("new", new), ("fixed", fixed)):
                if run is not None and "import_features_s" in run:
                    row[f"{key}_per_image_part_img_s"] = run["images"] / run["import_features_s"]
            rows.append(row)
            print(
                f"{name:18s} {r:5d} {row['old_img_s']:9.2f} {row['new_img_s']:9.2f} "
                f"{row['speedup']:6.2f}× {row['features_img_s']:11.2f} "
                f"{row['new_over_features']:7.2f}× {row['old_peak_mb']:7.0f} "
                f"{row['new_peak_mb']:7.0f} {row['load']:5.1f}"
            )
            parts = "  ".join(
                f"{k}: {row[f'{k}_per_image_part_img_s']:.2f}"
                for k in ("old", "new", "fixed")
                if f"{k}_per_image_part_img_s" in row
            )
            extra = f"  new/new_w{args.new_workers} {row['new_over_fixed']:.2f}×" if fixed else ""
            print(f"{'':18s} import+features img/s  {parts}{extra}")
    SPEED_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    SPEED_RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "import_speed",
                "baseline": args.baseline,
                "machine": {
                    "cores": os.cpu_count(),
                    "platform": platform.platform(),
                    "loadavg_1min_after": os.getloadavg()[0],
                },
                "note": "peak MB: the importing process plus its largest worker (ru_maxrss)",
                "summary": rows,
                "runs": runs,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {SPEED_RESULTS}")


# --------------------------------------------------------------------------- --recipe / --costs


def _old_net_pixels(path: Path, size: int) -> np.ndarray:
    """The network's pixels before issue 23's one-decode recipe: a separate decode with the
    longest side capped at 2·size (a 12 MP JPEG at the 1/8 DCT scale)."""
    return imaging.decode(path.read_bytes(), max_side=2 * size)[0]


def recipe_cosine(args: argparse.Namespace) -> None:
    """Cosine between a photo's feature with the old network pixels and with today's (derived
    from the fine decode), on dtd10 photos and on camera JPEGs made from them: how far cached
    features of existing libraries are from what a new import or query computes."""
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, get_spec
    from fabricsearch.hashing.extract import compute_features

    dtd = Path(args.dtd).resolve()
    size = get_spec(DEFAULT_BACKBONE).input_size
    out: dict[str, Any] = {}
    photos = sorted(dtd.rglob("*.jpg"))
    step = max(1, len(photos) // args.recipe)
    sets = {
        "dtd10": photos[::step][: args.recipe],
        "camera 4000×3000": sorted(ensure_camera_photos(dtd, args.recipe).glob("*.jpg"))[
            : args.recipe
        ],
    }
    for name, files in sets.items():
        old, _ = compute_features(
            files, DEFAULT_BACKBONE, loader=lambda p: _old_net_pixels(p, size)
        )
        new, _ = compute_features(files, DEFAULT_BACKBONE)
        a, b = old[:, 0].astype(np.float64), new[:, 0].astype(np.float64)
        cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        out[name] = {
            "photos": len(files),
            "cosine_min": float(cos.min()),
            "cosine_median": float(np.median(cos)),
            "cosine_mean": float(cos.mean()),
        }
        print(
            f"{name:18s} {len(files):4d} photos  cosine old/new min {cos.min():.4f} "
            f"median {np.median(cos):.4f}",
            flush=True,
        )
    RECIPE_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RECIPE_RESULTS.write_text(
        json.dumps({"benchmark": "recipe_cosine", "sets": out}, indent=2) + "\n"
    )
    print(f"wrote {RECIPE_RESULTS}")


def per_photo_costs(args: argparse.Namespace) -> None:
    """Per-photo costs of the import on camera JPEGs, one core: decode at the chosen DCT scale
    (and at 1/8 for comparison), palette, thumbnails + network pixels, network at batch 32."""
    import torch

    from fabricsearch import colour
    from fabricsearch.catalogue.importer import measure_file
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, get_spec, load_backbone
    from fabricsearch.hashing.extract import forward_batch, net_pixels

    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    dtd = Path(args.dtd).resolve()
    files = sorted(ensure_camera_photos(dtd, args.costs).glob("*.jpg"))[: args.costs]
    size = get_spec(DEFAULT_BACKBONE).input_size
    ms: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}  # CPU time of this process: what a quiet core would take

    @contextlib.contextmanager
    def timed(key: str) -> Iterator[None]:
        t0, c0 = time.perf_counter(), time.process_time()
        yield
        ms.setdefault(key, []).append((time.perf_counter() - t0) * 1e3)
        cpu.setdefault(key, []).append((time.process_time() - c0) * 1e3)

    squares = []
    for f in files:
        with timed("read_sha256"):
            data = f.read_bytes()
            hashlib.sha256(data).digest()
        with timed("decode_fine"):
            fine = imaging.decode_fine(data, colour.PALETTE_SIDE)[0]
        with timed("decode_1_8_old_net"):
            imaging.decode(data, max_side=2 * size)
        with timed("palette"):
            colour.quantise(fine)
        with timed("thumbnails"):
            work = imaging.resize_max_side(fine, WORK_SIDE)
            [imaging.thumbnail_jpeg(work, s) for s in imaging.THUMB_SIZES]
        with timed("net_pixels_square"):
            squares.append(imaging.centre_square(net_pixels(fine, size), size))
        with timed("measure_file_total"):
            measure_file(str(f), frozenset(), net_size=size)
    net = load_backbone(DEFAULT_BACKBONE, torch.device("cpu"), fused=True)
    batch = np.stack((squares * (32 // len(squares) + 1))[:32])
    forward_batch(net, batch, torch.device("cpu"))  # warm-up
    for _ in range(3):
        with timed("network_per_image_b32"):
            forward_batch(net, batch, torch.device("cpu"))
    ms["network_per_image_b32"] = [t / 32 for t in ms["network_per_image_b32"]]
    cpu["network_per_image_b32"] = [t / 32 for t in cpu["network_per_image_b32"]]
    med = {k: float(np.median(v)) for k, v in ms.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    print(f"  {'median per photo':24s} {'wall ms':>8s} {'CPU ms':>8s}")
    for k, v in med.items():
        print(f"  {k:24s} {v:8.1f} {med_cpu[k]:8.1f}")
    for label, m in (("wall", med), ("CPU", med_cpu)):
        per_photo = m["measure_file_total"] + m["network_per_image_b32"]
        print(
            f"  one core per photo ({label}, measure_file + network): {per_photo:.0f} ms → "
            f"{2000 / per_photo:.1f} img/s on 2 cores at best"
        )
    print(f"  load average {os.getloadavg()[0]:.1f}")
    COSTS_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    COSTS_RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "import_costs",
                "median_ms": med,
                "median_cpu_ms": med_cpu,
                "loadavg_1min": os.getloadavg()[0],
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {COSTS_RESULTS}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compare", action="store_true", help="old vs new import_and_encode")
    ap.add_argument("--baseline", default="8833227", help="git revision of the old path")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--dtd", default=str(REPO.parent / "shared" / "data" / "dtd10"))
    ap.add_argument("--dtd-count", type=int, default=240)
    ap.add_argument("--camera-count", type=int, default=40)
    ap.add_argument("--new-rev", default="", help="git revision of today's path (default: tree)")
    ap.add_argument(
        "--new-workers", type=int, default=0, help="also run today's path with N decoders"
    )
    ap.add_argument("--recipe", type=int, default=0, help="cosine old/new network pixels, N photos")
    ap.add_argument("--costs", type=int, default=0, help="per-photo costs on N camera JPEGs")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "FOLDER"), help=argparse.SUPPRESS)
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--width", type=int, default=3000)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--workers", type=int, nargs="*", default=None, help="default: 1 and all cores")
    args = ap.parse_args()
    if args.child:
        w = args.workers[0] if args.workers else None
        print(json.dumps(child(args.child[0], Path(args.child[1]), w)))
        return
    if args.compare:
        compare(args)
        return
    if args.recipe:
        recipe_cosine(args)
        return
    if args.costs:
        per_photo_costs(args)
        return

    cores = os.cpu_count() or 1
    load_before = os.getloadavg()[0]
    workers_list = args.workers or sorted({1, cores})
    print(f"preparing {args.count} {args.width}×{args.height} JPEGs in {CACHE} …", flush=True)
    folder = ensure_photos(args.count, args.width, args.height)
    sample = sorted(folder.glob("*.jpg"))[0]
    decode = time_decode(sample)
    rows = [run_import(folder, args.count, w) for w in workers_list]

    print()
    print(
        f"{args.count} photos {args.width}×{args.height}, mean file "
        f"{np.mean([p.stat().st_size for p in sorted(folder.glob('*.jpg'))[: args.count]]) / 1e6:.2f} MB, "
        f"{cores} cores ({platform.processor() or platform.machine()}), "
        f"load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after"
    )
    print(
        f"one photo: full decode {decode['full_decode_ms']:.0f} ms, "
        f"draft (≤{WORK_SIDE} px) {decode['draft_decode_ms']:.0f} ms"
    )
    print(f"{'workers':>7} {'images':>7} {'seconds':>8} {'img/s':>7} {'re-import s':>11}")
    for r in rows:
        print(
            f"{r['workers']:>7} {r['images']:>7} {r['seconds']:>8.1f} {r['images_per_s']:>7.1f} "
            f"{r['reimport_unchanged_s']:>11.2f}"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "import",
                "machine": {
                    "cores": cores,
                    "platform": platform.platform(),
                    # A shared machine: the load tells how contended the cores were.
                    "loadavg_1min_before": load_before,
                    "loadavg_1min_after": os.getloadavg()[0],
                },
                "photo": {"width": args.width, "height": args.height, "count": args.count},
                "decode": decode,
                "runs": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
