"""Synthetic fabric generation speed: ms per photo by size and by coarse class.

    .venv/bin/python benchmarks/bench_synth.py                 # 64, 128, 256 px
    .venv/bin/python benchmarks/bench_synth.py --sizes 128 --per-class 20
    .venv/bin/python benchmarks/bench_synth.py --sheet /tmp/synth_sheet.png

Times `render(spec, rng, size, photo=True)` (the pretraining stream's unit of work), the
canonical view, and `generate_batch`; medians over repeats, single thread of numpy/OpenCV
as configured. Prints a table and writes benchmarks/results/synth.json. `--sheet` also
writes a contact sheet (one row per class) to look at.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import cv2
import numpy as np

from fabricsearch import synth

RESULTS = Path(__file__).resolve().parent / "results" / "synth.json"


def bench_size(size: int, per_class: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    specs = {
        c: [synth.random_spec(rng, c) for _ in range(per_class)] for c in synth.SUPPORTED_COARSE
    }
    for c in synth.SUPPORTED_COARSE:  # warm the per-fabric caches and OpenCV
        synth.render(specs[c][0], rng, size)
    by_class: dict[str, float] = {}
    all_times: list[float] = []
    # CPU time too: on a shared machine wall time measures the neighbours as well
    cpu0 = time.process_time()
    for c, ss in specs.items():
        times = []
        for s in ss:
            t0 = time.perf_counter()
            synth.render(s, rng, size, photo=True)
            times.append(time.perf_counter() - t0)
        by_class[c] = 1000 * float(np.median(times))
        all_times += times
    cpu_ms = 1000 * (time.process_time() - cpu0) / len(all_times)
    flat = []
    for ss in specs.values():
        t0 = time.perf_counter()
        synth.render(ss[0], rng, size, photo=False)
        flat.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    n_fab, ppf = 16, 2
    synth.generate_batch(rng, n_fab, ppf, size)
    batch_ms = 1000 * (time.perf_counter() - t0) / (n_fab * ppf)
    return {
        "size": size,
        "photo_ms_median": 1000 * float(np.median(all_times)),
        "photo_ms_mean": 1000 * float(np.mean(all_times)),
        "photo_ms_p90": 1000 * float(np.percentile(all_times, 90)),
        "photo_cpu_ms_mean": cpu_ms,
        "canonical_ms_median": 1000 * float(np.median(flat)),
        "generate_batch_ms_per_image": batch_ms,
        "by_class_ms_median": by_class,
    }


def contact_sheet(path: str, size: int, cols: int, seed: int) -> None:
    rows = []
    for ci, coarse in enumerate(synth.SUPPORTED_COARSE):
        rng = np.random.default_rng(seed + ci)
        tiles = []
        for _ in range(cols):
            spec = synth.random_spec(rng, coarse)
            img = synth.render(spec, rng, size)
            label = f"{coarse.split('/')[1]} {spec.fine} {spec.tightness:.0f}%"
            cv2.putText(img, label, (2, 10), cv2.FONT_HERSHEY_PLAIN, 0.7, (255, 255, 0), 1)
            tiles.append(np.pad(img, ((2, 2), (2, 2), (0, 0)), constant_values=255))
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    cv2.imwrite(path, cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    print(f"contact sheet: {path} ({sheet.shape[1]}x{sheet.shape[0]})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    ap.add_argument("--per-class", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sheet", help="also write a contact sheet PNG here")
    args = ap.parse_args()

    results = [bench_size(s, args.per_class, args.seed) for s in args.sizes]
    print(
        f"{'size':>5} {'photo med':>10} {'mean':>7} {'p90':>7} {'canonical':>10} {'batch/img':>10}"
    )
    for r in results:
        print(
            f"{r['size']:>5} {r['photo_ms_median']:>8.2f}ms {r['photo_ms_mean']:>5.2f}ms "
            f"{r['photo_ms_p90']:>5.2f}ms {r['photo_cpu_ms_mean']:>7.2f}ms "
            f"{r['canonical_ms_median']:>8.2f}ms "
            f"{r['generate_batch_ms_per_image']:>8.2f}ms"
        )
    print("\nmedian ms per photo by class:")
    print(f"{'class':<26}" + "".join(f"{r['size']:>8}" for r in results))
    for c in synth.SUPPORTED_COARSE:
        print(f"{c:<26}" + "".join(f"{r['by_class_ms_median'][c]:>8.2f}" for r in results))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "numpy": np.__version__,
                    "opencv": cv2.__version__,
                },
                "per_class": args.per_class,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"\nwrote {RESULTS}")
    if args.sheet:
        contact_sheet(args.sheet, 160, 6, args.seed + 100)


if __name__ == "__main__":
    main()
