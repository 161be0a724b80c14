"""Thread policy for the network on the CPU (issue 23), side by side in one run.

A single query image (the product's query path: `extract.compute_features` on one
512-px photo, decode + crop + network) and a batch of 32, with 1 thread, 2 threads, all cores
and the policy's choice (`fabricsearch.threads.threads_for`), on a quiet machine and beside
busy processes (each a Python loop spinning one core). Rounds are interleaved, medians are
reported, and each row is given as a ratio to 1 thread in the same conditions.

    .venv/bin/python benchmarks/bench_threads.py [--rounds 15] [--busy 1]

Prints a table and writes benchmarks/results/threads.json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

OUT = Path(__file__).parent / "results" / "threads.json"


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def _measure(fn: Any, settings: dict[str, int], rounds: int) -> dict[str, float]:
    from fabricsearch.hashing import extract

    policy = extract.threads_for
    times: dict[str, list[float]] = {k: [] for k in settings}
    try:
        for _ in range(rounds):
            for key, n in settings.items():  # interleaved: drift hits every setting alike
                # The feature path applies the policy itself: make it apply this setting.
                extract.threads_for = lambda _images, n=n: n
                t0 = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - t0)
    finally:
        extract.threads_for = policy
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--busy", type=int, default=1, help="busy processes in the loaded runs")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()

    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE
    from fabricsearch.hashing.extract import compute_features
    from fabricsearch.threads import cores, threads_for

    rng = np.random.default_rng(0)
    one = [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8)]
    batch = [rng.integers(0, 256, (512, 512, 3), dtype=np.uint8) for _ in range(32)]

    def query() -> None:
        compute_features(one, DEFAULT_BACKBONE, loader=lambda a: a)

    def encode_batch() -> None:
        compute_features(batch, DEFAULT_BACKBONE, loader=lambda a: a, batch_size=32)

    query()  # load the network, warm the allocator
    n = cores()
    rows: list[dict[str, Any]] = []
    for load in (0, args.busy):
        stop = mp.Event()
        procs = [mp.Process(target=_spin, args=(stop,), daemon=True) for _ in range(load)]
        for p in procs:
            p.start()
        time.sleep(1.0 if load else 0.0)  # let the spinners start
        try:
            for name, fn, images, rounds in (
                ("single query", query, 1, args.rounds),
                ("batch of 32", encode_batch, 32, max(3, args.rounds // 5)),
            ):
                policy = threads_for(images, n, busy=float(load))
                settings = {"1 thread": 1, "2 threads": 2}
                if n > 2:
                    settings[f"{n} threads (all)"] = n
                settings[f"policy ({policy})"] = policy
                med = _measure(fn, settings, rounds)
                base = med["1 thread"]
                for key, t in med.items():
                    rows.append(
                        {
                            "case": name,
                            "busy_processes": load,
                            "setting": key,
                            "median_s": t,
                            "ratio_to_1_thread": t / base,
                        }
                    )
        finally:
            stop.set()
            for p in procs:
                p.join(5)
    print(f"{'case':<14} {'busy':>4}  {'setting':<16} {'median':>9}  {'× 1 thread':>10}")
    for r in rows:
        print(
            f"{r['case']:<14} {r['busy_processes']:>4}  {r['setting']:<16} "
            f"{r['median_s'] * 1000:>7.1f} ms  {r['ratio_to_1_thread']:>9.2f}×"
        )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cores": n, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
