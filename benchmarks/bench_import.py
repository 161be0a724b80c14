"""Benchmark folder import: images per second for camera-size JPEGs.

    python benchmarks/bench_import.py [--count 1000] [--workers N ...] [--width 3000 --height 2000]

Generates ``count`` distinct 3000×2000 JPEGs (woven-looking pattern, lighting gradient and
sensor noise, quality 90) into /tmp/fabricsearch-bench-import/ (kept for re-runs), then times
a full import into a fresh library for each worker count: read + sha256, reduced decode
(JPEG draft mode), colour quantisation, two thumbnails, batched SQLite writes. Also times one
photo's decode at full size versus draft mode. Prints a table and writes
benchmarks/results/import.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from fabricsearch import imaging
from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import WORK_SIDE, import_folder

RESULTS = Path(__file__).resolve().parent / "results" / "import.json"
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=1000)
    ap.add_argument("--width", type=int, default=3000)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--workers", type=int, nargs="*", default=None, help="default: 1 and all cores")
    args = ap.parse_args()

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
