"""HammingIndex vs faiss.IndexBinaryFlat: exact top-k speed and memory, side by side in one run.

    .venv/bin/python benchmarks/bench_index.py            # 1M codes, 64 and 256 bits
    .venv/bin/python benchmarks/bench_index.py --n 100000 --bits 64
    .venv/bin/python benchmarks/bench_index.py --load     # single-query latency under CPU load

With --load: one 256-bit query at a time over 1M codes, our thread setting (one thread per
single query, index.search_threads) against faiss's default (one per core), alternating query
by query, first on a quiet machine, then while other processes burn every core (as a training
would). Prints a table and writes benchmarks/results/index_load.json.

Single queries are timed one at a time, alternating ours and faiss's on the same query so both
see the same machine load; batched queries likewise alternate. Prints a table and writes
benchmarks/results/index.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import faiss
import numpy as np

from fabricsearch.index import HammingIndex

RESULTS = Path(__file__).resolve().parent / "results" / "index.json"
LOAD_RESULTS = RESULTS.with_name("index_load.json")


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_bits(
    bits: int, n: int, n_single: int, batch: int, repeats: int, k: int, numpy_queries: int
) -> dict:
    rng = np.random.default_rng(bits)
    nbytes = bits // 8
    codes = rng.integers(0, 256, (n, nbytes), dtype=np.uint8)
    # catalogue ids are sparse and arrive in any order
    ids = rng.choice(4 * n, size=n, replace=False).astype(np.int64)
    queries = rng.integers(0, 256, (n_single + batch, nbytes), dtype=np.uint8)

    t_build = time.perf_counter()
    ours = HammingIndex(bits)
    ours.add(ids, codes)
    t_build = time.perf_counter() - t_build
    ref = faiss.IndexBinaryFlat(bits)
    ref.add(codes)

    # warm up caches and faiss's thread pool (and our learned over-fetch, see index.py)
    warm = rng.integers(0, 256, (5, nbytes), dtype=np.uint8)
    for i in range(warm.shape[0]):
        ours.search(warm[i], k)
        ref.search(warm[i : i + 1], k)

    single_ours, single_ref, mismatches = [], [], 0
    for i in range(n_single):
        q = queries[i : i + 1]
        # alternate who goes first so that neither always runs right after the other's scan
        if i % 2:
            single_ref.append(_time(lambda q=q: ref.search(q, k)))
            single_ours.append(_time(lambda q=q: ours.search(q, k)))
        else:
            single_ours.append(_time(lambda q=q: ours.search(q, k)))
            single_ref.append(_time(lambda q=q: ref.search(q, k)))
        d_ours, _ = ours.search(q, k)
        d_ref, _ = ref.search(q, k)
        mismatches += int(not np.array_equal(d_ours, d_ref))  # distances must agree exactly

    qb = queries[n_single:]
    batch_ours, batch_ref = [], []
    for i in range(repeats):
        if i % 2:
            batch_ref.append(_time(lambda: ref.search(qb, k)))
            batch_ours.append(_time(lambda: ours.search(qb, k)))
        else:
            batch_ours.append(_time(lambda: ours.search(qb, k)))
            batch_ref.append(_time(lambda: ref.search(qb, k)))

    numpy_index = HammingIndex(bits, engine="numpy")
    numpy_index._data = ours._data  # same arrays, other engine; no second copy
    numpy_single = [
        _time(lambda q=queries[i : i + 1]: numpy_index.search(q, k)) for i in range(numpy_queries)
    ]

    raw = n * nbytes + 8 * n
    ms = 1e3
    row = {
        "bits": bits,
        "n": n,
        "k": k,
        "build_s": round(t_build, 3),
        "single_ms_ours": round(float(np.median(single_ours)) * ms, 3),
        "single_ms_faiss": round(float(np.median(single_ref)) * ms, 3),
        "batch_queries": batch,
        "batch_ms_ours": round(float(np.median(batch_ours)) * ms, 2),
        "batch_ms_faiss": round(float(np.median(batch_ref)) * ms, 2),
        # best case: the least disturbed call of each, for runs on a busy machine
        "single_ms_ours_min": round(float(np.min(single_ours)) * ms, 3),
        "single_ms_faiss_min": round(float(np.min(single_ref)) * ms, 3),
        "batch_ms_ours_min": round(float(np.min(batch_ours)) * ms, 2),
        "batch_ms_faiss_min": round(float(np.min(batch_ref)) * ms, 2),
        "single_ms_numpy_engine": round(float(np.median(numpy_single)) * ms, 2),
        "memory_bytes": ours.memory_bytes(),
        "raw_bytes": raw,
        "distance_mismatches": mismatches,
    }
    row["single_ratio"] = round(row["single_ms_ours"] / row["single_ms_faiss"], 3)
    row["batch_ratio"] = round(row["batch_ms_ours"] / row["batch_ms_faiss"], 3)
    row["memory_ratio"] = round(row["memory_bytes"] / raw, 4)
    return row


def _burn(stop) -> None:  # type: ignore[no-untyped-def]
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def bench_load(n: int, bits: int, queries: int, k: int, burners: int) -> list[dict]:
    """Median and p95 single-query latency, ours vs faiss's default threads, quiet and loaded."""
    import multiprocessing as mp

    from fabricsearch import index as index_mod

    rng = np.random.default_rng(bits)
    idx = HammingIndex(bits, engine="faiss")
    idx.add(np.arange(n), rng.integers(0, 256, (n, bits // 8), dtype=np.uint8))
    qs = rng.integers(0, 256, (queries, bits // 8), dtype=np.uint8)
    ours = index_mod.search_threads
    default_threads = faiss.omp_get_max_threads()

    def run(condition: str) -> dict:
        t_ours, t_default = [], []
        for q in qs:
            index_mod.search_threads = ours
            t_ours.append(_time(lambda q=q: idx.search(q, k)))
            index_mod.search_threads = lambda _n: default_threads
            t_default.append(_time(lambda q=q: idx.search(q, k)))
        index_mod.search_threads = ours
        row = {"condition": condition, "bits": bits, "n": n, "queries": queries, "k": k}
        for name, t in (("ours", t_ours), ("default", t_default)):
            row[f"{name}_median_ms"] = float(np.median(t) * 1e3)
            row[f"{name}_p95_ms"] = float(np.percentile(t, 95) * 1e3)
        row["median_ratio_default_over_ours"] = row["default_median_ms"] / row["ours_median_ms"]
        row["p95_ratio_default_over_ours"] = row["default_p95_ms"] / row["ours_p95_ms"]
        return row

    idx.search(qs[0], k)  # warm-up: learns the over-fetch
    rows = [run("quiet")]
    stop = mp.Event()
    procs = [mp.Process(target=_burn, args=(stop,), daemon=True) for _ in range(burners)]
    for p in procs:
        p.start()
    try:
        time.sleep(1.0)  # let the burners reach full speed
        rows.append(run(f"{burners} busy processes"))
    finally:
        stop.set()
        for p in procs:
            p.join(5)
    return rows


def main_load(args: argparse.Namespace) -> None:
    rows = bench_load(args.n, 256, args.single, args.k, args.burners or os.cpu_count() or 1)
    head = (
        f"{'condition':<20} | {'ours med ms':>11} {'p95':>7} | {'default med':>11} {'p95':>7} | "
        f"{'med ratio':>9} {'p95 ratio':>9}"
    )
    print(f"256-bit single queries over {args.n:,} codes, k={args.k}; ratio = default / ours")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['condition']:<20} | {r['ours_median_ms']:>11.2f} {r['ours_p95_ms']:>7.2f} | "
            f"{r['default_median_ms']:>11.2f} {r['default_p95_ms']:>7.2f} | "
            f"{r['median_ratio_default_over_ours']:>9.2f} {r['p95_ratio_default_over_ours']:>9.2f}"
        )
    conditions = {
        "cpu_count": os.cpu_count(),
        "faiss_default_threads": faiss.omp_get_max_threads(),
        "faiss_version": faiss.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
    }
    print(f"conditions: {conditions}")
    out = LOAD_RESULTS if args.out == RESULTS else args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"rows": rows, "conditions": conditions}, indent=2) + "\n")
    print(f"wrote {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--bits", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--single", type=int, default=50, help="single queries timed (median)")
    ap.add_argument("--batch", type=int, default=100, help="queries per batched call")
    ap.add_argument("--repeats", type=int, default=7, help="batched calls timed (median)")
    ap.add_argument("--numpy-queries", type=int, default=5)
    ap.add_argument("--threads", type=int, default=0, help="faiss OpenMP threads (0: default)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--load", action="store_true", help="single-query latency under CPU load")
    ap.add_argument("--burners", type=int, default=0, help="with --load: busy processes (0: cores)")
    args = ap.parse_args()
    if args.load:
        main_load(args)
        return
    if args.threads:
        faiss.omp_set_num_threads(args.threads)  # applies to ours and the reference alike

    load_before = os.getloadavg()
    rows = [
        bench_bits(b, args.n, args.single, args.batch, args.repeats, args.k, args.numpy_queries)
        for b in args.bits
    ]
    conditions = {
        "cpu_count": os.cpu_count(),
        "faiss_threads": faiss.omp_get_max_threads(),
        "faiss_version": faiss.__version__,
        "numpy_version": np.__version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
    }

    head = (
        f"{'bits':>4} {'N':>9} | {'1q ours ms':>10} {'1q faiss':>8} {'ratio':>5} | "
        f"{f'{args.batch}q ours ms':>11} {'faiss':>8} {'ratio':>5} | "
        f"{'numpy 1q':>8} | {'mem MiB':>7} {'raw MiB':>7} {'ratio':>6} | mism"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        print(
            f"{r['bits']:>4} {r['n']:>9} | {r['single_ms_ours']:>10.3f} {r['single_ms_faiss']:>8.3f} "
            f"{r['single_ratio']:>5.2f} | {r['batch_ms_ours']:>11.2f} {r['batch_ms_faiss']:>8.2f} "
            f"{r['batch_ratio']:>5.2f} | {r['single_ms_numpy_engine']:>8.2f} | "
            f"{r['memory_bytes'] / 2**20:>7.1f} {r['raw_bytes'] / 2**20:>7.1f} "
            f"{r['memory_ratio']:>6.3f} | {r['distance_mismatches']}"
        )
    print(f"conditions: {conditions}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "conditions": conditions}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
