"""Same fabric by local features (issue 22): does checking the first few candidates with ORB
keypoints and a RANSAC homography (`fabricsearch/verify.py`) put the very fabric first where the
global feature does not — batik6's crops and phone photos — without a wrong "same fabric"?

Reuses `bench_same_fabric.py`'s cached dev-set libraries, its 40 seeded picks and its
re-photographed query files, with the network outputs and camera palettes replayed (so only
the re-ranking runs), for each model found in the cached library (the label-free automatic
one and the DVSH model `bench_same_fabric.py --trained` left there). For each transform:
R@1 / R@10 / median rank of the original with the check off (`VERIFY_TOP = 0`, the ranking
before) and on, the share of first results marked "same fabric" that are the original and
that are another photo (a stored copy of the original, cosine ≥ 0.97, counted apart), and
the time the check adds to a query.

False matches among *different* library photos: 150 seeded library photos against their 10
nearest by feature cosine (copies left out), thumbnails both sides; every pair the check calls
the same fabric is listed with its paths, to be looked at.

    .venv/bin/python benchmarks/bench_verify.py [--sets dtd10 batik6] [--top 5]

Needs the libraries `bench_same_fabric.py --limit 600 --trained` caches (it builds them if
missing: minutes). Writes benchmarks/results/verify.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_same_fabric as B  # noqa: E402

OUT = B.ROOT / "benchmarks" / "results" / "verify.json"
LIMIT = 600
FALSE_MATCH_PHOTOS = 150
FALSE_MATCH_NEIGHBOURS = 10


def _models(lib: Any, name: str) -> list[tuple[str, str]]:
    """(label, version) of the models whose queries `bench_same_fabric` prepared."""
    folder = B.CACHE / f"same_fabric-{name}-{LIMIT}-queries"
    out = []
    for info in lib.models():
        if not (folder / info.version / "prepared.pkl").exists():
            continue
        label = "label-free" if info.version.startswith("auto-") else "trained"
        if label not in {lbl for lbl, _ in out}:
            out.append((label, info.version))
    return sorted(out)


def ranks(prep: Any, top: int) -> tuple[dict[str, Any], dict[str, list[float]]]:
    """`Prepared.rank_new` with `verify.VERIFY_TOP = top`, and the check's time per query: wall
    clock and the thread's CPU time (what it costs on a quiet core; the machine is shared)."""
    from fabricsearch import search as S
    from fabricsearch import verify

    spent: dict[str, list[float]] = {"wall": [], "cpu": []}
    original_top, original_verified = verify.VERIFY_TOP, S.Searcher._verified

    def timed(self: Any, *args: Any) -> np.ndarray:
        t, c = time.perf_counter(), time.thread_time()
        try:
            return original_verified(self, *args)
        finally:
            spent["wall"].append((time.perf_counter() - t) * 1e3)
            spent["cpu"].append((time.thread_time() - c) * 1e3)

    verify.VERIFY_TOP = top
    S.Searcher._verified = timed  # type: ignore[method-assign]
    try:
        return prep.rank_new(), spent
    finally:
        verify.VERIFY_TOP = original_top
        S.Searcher._verified = original_verified  # type: ignore[method-assign]


def false_matches(lib: Any, arr: dict[str, Any]) -> dict[str, Any]:
    """Library photos against their nearest different photos, thumbnails on both sides."""
    from fabricsearch import verify

    f, ids = arr["feats"], arr["ids"]
    shas = {int(r.id): r.sha256 for r in arr["records"]}
    paths = {int(r.id): str(r.path) for r in arr["records"]}
    feats: dict[int, verify.LocalFeatures | None] = {}

    def local(i: int) -> verify.LocalFeatures | None:
        if i not in feats:
            g = verify.read_grey(lib.thumb_path(shas[i], verify.SIDE))
            feats[i] = None if g is None else verify.local_features(g)
        return feats[i]

    rng = np.random.default_rng(7)
    pairs, same, inliers = 0, [], []
    t = time.perf_counter()
    for a in rng.choice(len(ids), FALSE_MATCH_PHOTOS, replace=False):
        cos = f @ f[a]
        near = [j for j in np.argsort(-cos) if j != a and cos[j] < B.DUPLICATE_COSINE]
        for j in near[:FALSE_MATCH_NEIGHBOURS]:
            qa, qb = local(int(ids[a])), local(int(ids[j]))
            if qa is None or qb is None:
                continue
            m = verify.match(qa, qb)
            pairs += 1
            inliers.append(m.inliers)
            if m.same_fabric:
                same.append(
                    {
                        "a": paths[int(ids[a])].split("/data/")[-1],
                        "b": paths[int(ids[j])].split("/data/")[-1],
                        "inliers": m.inliers,
                        "spread": round(m.spread, 3),
                        "cosine": round(float(cos[j]), 3),
                    }
                )
    return {
        "pairs": pairs,
        "verified same fabric": len(same),
        "inliers p99": float(np.quantile(inliers, 0.99)) if inliers else 0.0,
        "listed": same,
        "seconds": round(time.perf_counter() - t, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sets", nargs="+", default=["dtd10", "batik6"])
    ap.add_argument("--top", type=int, default=None, help="candidates checked (verify.VERIFY_TOP)")
    args = ap.parse_args()
    import cv2
    import torch

    from fabricsearch import verify

    torch.set_num_threads(2)
    cv2.setNumThreads(1)  # the check's cost on one core
    top = verify.VERIFY_TOP if args.top is None else args.top
    results: dict[str, Any] = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in args.sets:
        lib = B.build_library(name, LIMIT)
        active = lib.active_model()
        try:
            arr = B.library_arrays(lib)
            rng = np.random.default_rng(B.SEED)
            picks = np.sort(rng.choice(len(arr["ids"]), size=B.N_QUERIES, replace=False))
            entry: dict[str, Any] = {"top": top, "load at start": os.getloadavg()[0]}
            for label, version in _models(lib, name):
                lib.set_active_model(version)
                prep = B.Prepared(lib, arr, picks, B.CACHE / f"same_fabric-{name}-{LIMIT}-queries")
                off, _ = ranks(prep, 0)
                on, spent = ranks(prep, top)
                entry[label] = {
                    "model": version,
                    "off": off,
                    "on": on,
                    "verify ms": {
                        f"{kind} {stat}": float(fn(v))
                        for kind, v in spent.items()
                        for stat, fn in (
                            ("median", np.median),
                            ("p90", lambda a: np.quantile(a, 0.9)),
                            ("max", np.max),
                        )
                    },
                }
                for tname in off:
                    o, n = off[tname], on[tname]
                    print(
                        f"{name:<7} {label:<10} {tname:<14} R@1 {o['R@1']:.2f} → {n['R@1']:.2f} "
                        f"R@10 {o['R@10']:.2f} → {n['R@10']:.2f} | first marked: original "
                        f"{o['first is original, marked same fabric']:.2f} → "
                        f"{n['first is original, marked same fabric']:.2f}, other "
                        f"{o['first marked same fabric but another photo']:.2f} → "
                        f"{n['first marked same fabric but another photo']:.2f}",
                        flush=True,
                    )
                print(f"{name} {label}: verify ms {entry[label]['verify ms']}", flush=True)
            entry["false matches"] = false_matches(lib, arr)
            fm = entry["false matches"]
            print(
                f"{name}: {fm['verified same fabric']} of {fm['pairs']} pairs verified", flush=True
            )
            for p in fm["listed"]:
                print("   ", p, flush=True)
            results[name if top == verify.VERIFY_TOP else f"{name}, top {top}"] = entry
            OUT.parent.mkdir(parents=True, exist_ok=True)
            OUT.write_text(json.dumps(results, indent=1, ensure_ascii=False))
        finally:
            if active is not None:
                lib.set_active_model(active.version)
            lib.close()
    print(markdown(results))
    return 0


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "| set | model | transform | R@1 before | R@1 with the check | R@10 before | R@10 with "
        "| median before / with | first marked, original: before / with | first marked, "
        "another photo: before / with |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, entry in results.items():
        for label in ("label-free", "trained"):
            if label not in entry:
                continue
            for tname, o in entry[label]["off"].items():
                n = entry[label]["on"][tname]
                mo, mn = (
                    "first is original, marked same fabric",
                    "first marked same fabric but another photo",
                )
                lines.append(
                    f"| {name} | {label} | {tname} | {o['R@1']:.2f} | **{n['R@1']:.2f}** "
                    f"| {o['R@10']:.2f} | {n['R@10']:.2f} | {o['median rank']:g} / {n['median rank']:g} "
                    f"| {o[mo]:.2f} / {n[mo]:.2f} | {o[mn]:.2f} / {n[mn]:.2f} |"
                )
    return "\n".join(lines)


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    raise SystemExit(main())
