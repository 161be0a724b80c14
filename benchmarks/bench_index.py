"""HammingIndex vs faiss.IndexBinaryFlat: exact top-k speed and memory, side by side in one run.

    .venv/bin/python benchmarks/bench_index.py            # 1M codes, 64 and 256 bits
    .venv/bin/python benchmarks/bench_index.py --n 100000 --bits 64

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
    args = ap.parse_args()
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
