"""Instant re-ranking (issue 22): a full query vs re-ranking the kept query, side by side.

For each query photo: one full `Searcher.search` (decode + one network pass + Hamming stage +
re-rank), then `Searcher.rerank` of its `QueryState` for what the window changes without a new
photo: the Texture ↔ Colour balance, the top N, a filter whose images the kept candidates hold
(re-rank only) and a category filter that needs a fresh Hamming stage with the cached code (still
no decode or network), then that filter again (kept). Every re-rank is checked against a full
search with the same settings (identical ids and scores).

Libraries: a real one with cached backbone features (default: the dtd10 library that
bench_same_fabric.py caches under benchmarks/results/cache, copied to a temporary folder so
it stays untouched), and a large generated one (bench_search.build_large_library, --n rows) for
the fresh Hamming stage at scale.

    .venv/bin/python benchmarks/bench_instant_rerank.py [--lib LIB] [--queries 12] [--n 100000]

Prints a table and writes benchmarks/results/instant_rerank.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from fabricsearch.catalogue import Library  # noqa: E402
from fabricsearch.search import Searcher, SearchFilters, SearchResult  # noqa: E402

DEFAULT_LIB = ROOT / "benchmarks/results/cache/same_fabric-dtd10-600-lib"
BALANCES = (0.0, 0.25, 0.75, 1.0, 0.5)


def _same(a: SearchResult, b: SearchResult) -> bool:
    return [(h.image_id, h.score) for h in a.hits] == [(h.image_id, h.score) for h in b.hits]


def measure(lib_dir: Path, queries: list[Path], k: int = 40) -> dict:
    """Median / p95 ms of each kind of change, and whether every re-rank equalled a search."""
    rows: dict[str, list[float]] = {
        "full query": [],
        "  decode": [],
        "  encode (network)": [],
        "  colour (camera corrections)": [],
        "rerank: balance": [],
        "rerank: top N 40→100": [],
        "rerank: filter within kept": [],
        "rerank: category filter (fresh Hamming)": [],
        "rerank: category filter again": [],
    }
    identical = True
    with Library.open(lib_dir) as lib:
        s, check = Searcher(lib), Searcher(lib)
        s.search(queries[0], k=k)  # loads model, index and labels once
        check.search(queries[0], k=k)
        recs = lib.images()
        for q in queries:
            full = s.search(q, k=k)
            rows["full query"].append(full.elapsed_ms["total"])
            rows["  decode"].append(full.elapsed_ms["decode"])
            rows["  encode (network)"].append(full.elapsed_ms["encode"])
            rows["  colour (camera corrections)"].append(full.elapsed_ms["colour"])
            state = full.state
            assert state is not None
            for b in BALANCES:
                r = s.rerank(state, k=k, balance=b)
                rows["rerank: balance"].append(r.elapsed_ms["total"])
                identical &= _same(r, check.search(q, k=k, balance=b))
            r = s.rerank(state, k=100)
            rows["rerank: top N 40→100"].append(r.elapsed_ms["total"])
            identical &= _same(r, check.search(q, k=100))
            # A filter every kept candidate passes (it drops other images): re-rank only.
            kept = {h.image_id for h in s.rerank(state, k=1000).hits}
            outside = [r.id for r in recs if r.id not in kept][::10]
            wide = SearchFilters(image_ids=frozenset(r.id for r in recs) - frozenset(outside))
            r = s.rerank(state, k=k, filters=wide, balance=0.3)
            rows["rerank: filter within kept"].append(r.elapsed_ms["total"])
            identical &= _same(r, check.search(q, k=k, filters=wide, balance=0.3))
            # A category: most kept candidates fail it, so a fresh Hamming stage runs (with the
            # cached code); then the same filter at another balance re-ranks its kept list.
            major = next((r.coarse for r in recs if r.coarse), "")
            narrow = SearchFilters(coarse_major=(major or "").split("/")[0] or None)
            for key, b in (
                ("rerank: category filter (fresh Hamming)", 0.5),
                ("rerank: category filter again", 0.9),
            ):
                r = s.rerank(state, k=k, filters=narrow, balance=b)
                rows[key].append(r.elapsed_ms["total"])
                identical &= _same(r, check.search(q, k=k, filters=narrow, balance=b))
    return {
        "images": len(recs),
        "queries": len(queries),
        "k": k,
        "identical_to_full_search": bool(identical),
        "ms": {
            key: {"median": statistics.median(v), "p95": float(np.percentile(v, 95))}
            for key, v in rows.items()
        },
    }


def table(title: str, res: dict) -> str:
    lines = [
        f"{title}: {res['images']} images, {res['queries']} queries, top {res['k']}, "
        f"re-rank identical to a full search: {res['identical_to_full_search']}",
        f"{'':40s} {'median ms':>10s} {'p95 ms':>10s}",
    ]
    for key, v in res["ms"].items():
        lines.append(f"{key:40s} {v['median']:10.2f} {v['p95']:10.2f}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--lib", type=Path, default=DEFAULT_LIB)
    ap.add_argument("--queries", type=int, default=12)
    ap.add_argument("--n", type=int, default=100_000, help="rows of the large library (0: skip)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/instant_rerank.json")
    args = ap.parse_args()
    out: dict = {
        "machine": f"{platform.machine()} · {os.cpu_count()} CPUs (shared)",
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        if args.lib.exists():
            lib_dir = Path(tmp) / "real"
            shutil.copytree(args.lib, lib_dir)
            with Library.open(lib_dir) as lib:
                recs = lib.images()
            step = max(1, len(recs) // args.queries)
            queries = [r.path for r in recs[::step][: args.queries]]
            out["real"] = measure(lib_dir, queries)
            out["real"]["library"] = args.lib.name
            print(table(f"Real library ({args.lib.name})", out["real"]), "\n")
        else:
            print(f"{args.lib} not found: run benchmarks/bench_same_fabric.py first", "\n")
        if args.n:
            from bench_search import build_large_library

            t0 = time.perf_counter()
            big = Path(tmp) / "large"
            queries = build_large_library(big, args.n, 64)[: args.queries]
            out["large_build_s"] = time.perf_counter() - t0
            out["large"] = measure(big / "lib", queries)
            print(table("Large generated library (no cached features)", out["large"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
