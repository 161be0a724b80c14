"""Loading cached backbone features: the memory-mapped store beside the catalogue against
float16 BLOBs in SQLite (issue 14: 100k features must load in under a second).

Writes N random float16 features (default 100,000 × 1280) both ways into a temporary folder,
then times, in one run and side by side, (1) opening the store (key index) and reading every
row into a float16 array (the stored type; training converts per batch), (2) reading a random
10 % subset, for each layout. Prints a table and
writes benchmarks/results/features_load.json.

    .venv/bin/python benchmarks/bench_features.py [--n 100000] [--dim 1280]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np

from fabricsearch.featurestore import FeatureStore

OUT = Path(__file__).parent / "results" / "features_load.json"


def _keys(n: int) -> list[str]:
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=1280)
    args = ap.parse_args()
    n, dim = args.n, args.dim
    rng = np.random.default_rng(0)
    keys = _keys(n)
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = FeatureStore(Path(tmp) / "store", dim, 1)
        chunk = 10_000
        for s in range(0, n, chunk):
            f = rng.random((min(chunk, n - s), 1, dim), dtype=np.float32).astype(np.float16)
            store.add(keys[s : s + chunk], f)
        db = sqlite3.connect(Path(tmp) / "blobs.sqlite")
        db.execute("CREATE TABLE features (sha TEXT PRIMARY KEY, feat BLOB NOT NULL)")
        it = ((keys[i], store.get([keys[i]])[0, 0].astype(np.float16).tobytes()) for i in range(n))
        db.executemany("INSERT INTO features VALUES (?, ?)", it)
        db.commit()
        db.close()
        subset = list(rng.choice(n, n // 10, replace=False))
        sub_keys = [keys[i] for i in subset]

        def store_all() -> np.ndarray:
            s = FeatureStore(Path(tmp) / "store", dim, 1)
            return s.get(keys, views=False, dtype=np.float16)

        def store_subset() -> np.ndarray:
            s = FeatureStore(Path(tmp) / "store", dim, 1)
            return s.get(sub_keys, views=False, dtype=np.float16)

        def blobs_all() -> np.ndarray:
            c = sqlite3.connect(Path(tmp) / "blobs.sqlite")
            got = dict(c.execute("SELECT sha, feat FROM features"))
            c.close()
            return np.stack([np.frombuffer(got[k], np.float16) for k in keys])

        def blobs_subset() -> np.ndarray:
            c = sqlite3.connect(Path(tmp) / "blobs.sqlite")
            out = []
            for k in sub_keys:
                (b,) = c.execute("SELECT feat FROM features WHERE sha = ?", (k,)).fetchone()
                out.append(np.frombuffer(b, np.float16))
            c.close()
            return np.stack(out)

        for name, fn in (
            ("store, all rows", store_all),
            ("SQLite BLOBs, all rows", blobs_all),
            ("store, random 10 %", store_subset),
            ("SQLite BLOBs, random 10 %", blobs_subset),
        ):
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                arr = fn()
                times.append(time.perf_counter() - t0)
            rows[name] = {"seconds_median": float(np.median(times)), "shape": list(arr.shape)}
    base_all = rows["SQLite BLOBs, all rows"]["seconds_median"]
    base_sub = rows["SQLite BLOBs, random 10 %"]["seconds_median"]
    print(f"{'layout':30s} {'median s':>9s} {'speed-up':>9s}")
    for name, r in rows.items():
        base = base_all if "all" in name else base_sub
        r["speedup_vs_blobs"] = base / r["seconds_median"]
        print(f"{name:30s} {r['seconds_median']:9.3f} {r['speedup_vs_blobs']:8.1f}×")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"n": n, "dim": dim, "rows": rows}, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
