"""Query latency from file to results on a large library (issue 5), and what re-ranking does.

Part 1 (latency): builds a library of N catalogue rows (default 100,000) with real palettes and
labels drawn from generated fabrics, a default-size DVSH model (untrained weights: latency does not
depend on the weights) and its codes, then times `Searcher.search` on real JPEG query files:
decode + colour + encode + Hamming search + re-rank, median and p95 over Q queries.

Part 2 (quality, optional --quality LIB): mAP and NDCG@50 of the test-split queries with and
without re-ranking on a trained library.

    .venv/bin/python benchmarks/bench_search.py [--n 100000] [--queries 30] [--bits 64]
    .venv/bin/python benchmarks/bench_search.py --quality /path/to/trained/library

Prints a table and writes benchmarks/results/search.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fabricsearch import colour  # noqa: E402
from fabricsearch.catalogue import Library, ModelInfo  # noqa: E402
from fabricsearch.codes import pack_codes  # noqa: E402
from fabricsearch.search import Searcher  # noqa: E402


def build_large_library(
    folder: Path, n: int, bits: int, seed: int = 0, backbone: str = "efficientnet-lite0"
) -> list[Path]:
    """N rows whose palettes/labels come from a pool of generated fabrics; returns query files."""
    import cv2

    from fabricsearch.hashing.checkpoint import build_metadata, save_checkpoint
    from fabricsearch.hashing.registry import create_method
    from fabricsearch.synth import random_spec, render

    rng = np.random.default_rng(seed)
    pool = 200
    specs = [random_spec(rng) for _ in range(pool)]
    imgs = [render(s, rng, size=256) for s in specs]
    pals = [colour.quantise(im) for im in imgs]
    qdir = folder / "queries"
    qdir.mkdir(parents=True)
    queries = []
    for i in range(40):
        p = qdir / f"q{i:03d}.jpg"
        big = cv2.resize(imgs[i], (1024, 1024), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(p), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        queries.append(p)
    with Library.create(folder / "lib") as lib:
        with lib.atomic():
            for i in range(n):
                j = i % pool
                sha = hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()
                lib.add_image(f"/archive/{i:07d}.jpg", sha, 1, 0.0, 256, 256, pals[j])
        ids = lib.image_ids()
        specs_of = [specs[k % pool] for k in range(n)]
        # Labels for every row, in chunks (one transaction each) grouped by equal label.
        groups: dict[tuple, list[int]] = {}
        for iid, s in zip(ids, specs_of, strict=True):
            groups.setdefault((s.coarse, s.fine, round(s.tightness, 1)), []).append(iid)
        for (c, f, t), members in groups.items():
            lib.set_labels(members, coarse=c, fine=f, tightness=t, who="bench")
        method = create_method("dvsh", bits=bits, backbone=backbone)
        method.eval()
        path = lib.models_dir / f"bench-dvsh-{bits}.safetensors"
        save_checkpoint(path, method, build_metadata(method))
        info = ModelInfo(f"bench-dvsh-{bits}", "dvsh", bits, path, time.time())
        lib.add_model(info, activate=True)
        codes = pack_codes(rng.integers(0, 2, size=(n, bits)).astype(bool))
        lib.store_codes(info.version, ids, codes)
    return queries


def latency(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        queries = build_large_library(Path(tmp), args.n, args.bits, backbone=args.backbone)
        build_s = time.perf_counter() - t0
        with Library.open(Path(tmp) / "lib") as lib:
            s = Searcher(lib)
            t1 = time.perf_counter()
            s.search(queries[0], k=20)  # loads model, index and labels once
            warm_s = time.perf_counter() - t1
            rows = {"total": [], "decode": [], "encode": [], "search": [], "rerank": []}
            for mode in ("rerank", "hamming"):
                totals = []
                for q in queries[1 : 1 + args.queries]:
                    r = s.search(q, k=20, rerank=(mode == "rerank"))
                    totals.append(r.elapsed_ms["total"])
                    if mode == "rerank":
                        for key in rows:
                            rows[key].append(r.elapsed_ms[key])
                rows[f"total_{mode}"] = totals
    stats = {
        k: {"median_ms": statistics.median(v), "p95_ms": float(np.percentile(v, 95))}
        for k, v in rows.items()
    }
    return {
        "n": args.n,
        "bits": args.bits,
        "backbone": args.backbone,
        "queries": args.queries,
        "build_s": build_s,
        "first_query_s": warm_s,
        "stages": stats,
        "torch_threads": __import__("torch").get_num_threads(),
    }


def quality(lib_dir: Path) -> dict:
    """mAP / NDCG@50 over test-split queries, Hamming-only vs re-ranked (colour-only query labels)."""
    from fabricsearch.hashing.metrics import ndcg_at_k, relevance_matrix
    from fabricsearch.similarity import fine_grained_matrix

    out = {}
    with Library.open(lib_dir) as lib:
        splits = lib.splits()
        recs = lib.images()
        test = [r for r in recs if splits.get(r.id) == "test" and r.coarse]
        db = [r for r in recs if splits.get(r.id) != "test"]
        db_ids = np.array([r.id for r in db])
        lab_db = lib.label_arrays(db_ids.tolist())
        db_set = set(db_ids.tolist())
        pos = {iid: i for i, iid in enumerate(db_ids.tolist())}
        s = Searcher(lib)
        for mode in ("hamming", "rerank"):
            aps, ndcgs = [], []
            for q in test:
                res = s.search(q.path, k=len(recs), rerank=(mode == "rerank"))
                ranked = [h.image_id for h in res.hits if h.image_id in db_set]
                order = np.array([pos[i] for i in ranked])
                lab_q = lib.label_arrays([q.id])
                rel = relevance_matrix(lab_q, lab_db)[0][order]
                gain = fine_grained_matrix(lab_q, lab_db)[0][order]
                # Ranked lists are strict orders here: distances = rank positions.
                dist = np.arange(len(order))[None, :]
                hits = np.cumsum(rel)
                ap = (
                    float((hits / np.arange(1, len(rel) + 1))[rel > 0].mean())
                    if rel.any()
                    else np.nan
                )
                aps.append(ap)
                ndcgs.append(float(ndcg_at_k(dist, gain[None, :], 50)[0]))
            out[mode] = {
                "mAP": float(np.nanmean(aps)),
                "ndcg@50": float(np.mean(ndcgs)),
                "queries": len(test),
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=30)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument(
        "--backbone",
        default="efficientnet-lite0",
        help="image network of the model (the product default; 'compact' for the old one)",
    )
    ap.add_argument(
        "--quality",
        type=Path,
        nargs="*",
        default=[],
        help="trained libraries to measure re-ranking on",
    )
    ap.add_argument("--skip-latency", action="store_true")
    args = ap.parse_args()
    result: dict = {}
    if not args.skip_latency:
        lat = latency(args)
        result["latency"] = lat
        print(
            f"\nQuery latency, {lat['n']:,} images, {lat['bits']} bits, {lat['queries']} queries "
            f"(1024×1024 JPEG files), torch threads {lat['torch_threads']}"
        )
        print(f"{'stage':<16}{'median ms':>10}{'p95 ms':>10}")
        for k, v in lat["stages"].items():
            print(f"{k:<16}{v['median_ms']:>10.1f}{v['p95_ms']:>10.1f}")
        print(
            f"(library build {lat['build_s']:.1f} s, first query incl. loading {lat['first_query_s']:.2f} s)"
        )
    for lib_dir in args.quality:
        q = quality(lib_dir)
        result.setdefault("quality", {})[str(lib_dir)] = q
        print(f"\nRe-ranking on {lib_dir}:")
        print(f"{'ranking':<10}{'mAP':>8}{'NDCG@50':>10}")
        for mode, v in q.items():
            print(f"{mode:<10}{v['mAP']:>8.3f}{v['ndcg@50']:>10.3f}")
    out = ROOT / "benchmarks" / "results" / "search.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    prev = json.loads(out.read_text()) if out.exists() else {}
    prev.update(result)
    out.write_text(json.dumps(prev, indent=2))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
