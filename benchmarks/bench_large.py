"""Large libraries open fast (issue 23): open, `info`, first query and later queries at 100k / 1M.

Pads a library the way `bench_search.py` does (a pool of generated fabrics whose palettes and
labels repeat, a default-size DVSH model on the product backbone with untrained weights, random
codes for every row), in batched SQL so that 1M rows take minutes, not hours; a third of the
rows get labels and every row gets a cached backbone feature (random float16 rows with valid
checksums), as on a real archive whose search re-ranks with them. Thumbnails are not made
(search and `info` never read them). The padded library is cached under /tmp between runs.

Every figure comes from a fresh Python process (cold interpreter, warm OS page cache):

* ``open``:  `Library.open` (+ close), RSS after it
* ``info``:  `fabricsearch info LIB` as a command, wall time end to end (interpreter included),
  and `Library.info()` inside the process
* ``query``: open + `Searcher` + one query from a JPEG file (model, index, labels loaded), RSS
  after opening and after the first query, then the median of later queries
* ``records``: every record as `ImageRecord`s (`Library.images()`, what the window's grid loads
  when a library opens), time and RSS
* ``sketch``: the step before a query (`Searcher.complete_codes`), which fits and writes the
  library's feature sketch (the second candidate source, `fabricsearch.sketch`) the first time;
  run once per library before the other probes, so every query below has the sketch

With ``--sketch-off`` the query probe also runs with the sketch ignored ("nosketch": Hamming
candidates only, R = 1 % of the library at most 1,000, the depth without a sketch).

With ``--old SRC`` (a copy of an older `fabricsearch` package, e.g. made with
``git archive HEAD fabricsearch | tar -x -C /tmp/fs-old``) every probe also runs against it in
the same run, interleaved, so the before/after ratio is measured under the same machine load.

    .venv/bin/python benchmarks/bench_large.py [--n 100000 1000000] [--old /tmp/fs-old]

Prints a table and writes benchmarks/results/large.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("FABRICSEARCH_BENCH_CACHE", "/tmp/fabricsearch-bench-large"))
BITS = 64
BACKBONE = "efficientnet-lite0"
LABELLED_FRACTION = 3  # every third row is labelled
BATCH = 20_000


# --------------------------------------------------------------------------- padding


def pad_library(folder: Path, n: int, seed: int = 0) -> tuple[Path, list[Path]]:
    """The library folder and query files; built once per `n` and kept in `folder`."""
    lib_dir, qdir, done = folder / "lib", folder / "queries", folder / "done"
    if done.exists():
        return lib_dir, sorted(qdir.glob("*.jpg"))
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    sys.path.insert(0, str(ROOT))
    import cv2

    from fabricsearch import colour
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.catalogue.library import split_for_sha
    from fabricsearch.codes import pack_codes
    from fabricsearch.featurestore import store_for
    from fabricsearch.hashing.checkpoint import build_metadata, save_checkpoint
    from fabricsearch.hashing.registry import create_method
    from fabricsearch.synth import random_spec, render

    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    pool = 200
    specs = [random_spec(rng) for _ in range(pool)]
    imgs = [render(s, rng, size=256) for s in specs]
    pals = [np.ascontiguousarray(colour.quantise(im), np.float32).tobytes() for im in imgs]
    qdir.mkdir()
    queries = []
    for i in range(12):
        p = qdir / f"q{i:03d}.jpg"
        big = cv2.resize(imgs[i], (1024, 1024), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(p), cv2.cvtColor(big, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
        queries.append(p)
    method = create_method("dvsh", bits=BITS, backbone=BACKBONE)
    method.eval()
    store = store_for(lib_dir, BACKBONE)
    now = time.time()
    with Library.create(lib_dir) as lib:
        conn = lib._c
        for start in range(0, n, BATCH):
            stop = min(n, start + BATCH)
            shas = [hashlib.sha256(f"{seed}-{i}".encode()).hexdigest() for i in range(start, stop)]
            rows = [
                (
                    f"/archive/{i:07d}.jpg",
                    sha,
                    1,
                    0.0,
                    256,
                    256,
                    now,
                    pals[i % pool],
                    split_for_sha(sha),
                )
                for i, sha in zip(range(start, stop), shas, strict=True)
            ]
            with lib.atomic():
                conn.executemany(
                    "INSERT INTO images (id, path, sha256, size, mtime, width, height, added,"
                    " palette, split) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
                lab = []
                for i in range(start, stop, LABELLED_FRACTION):
                    s = specs[i % pool]
                    lab.append((i + 1, s.coarse, s.fine, round(s.tightness, 1), "bench", now))
                conn.executemany(
                    "INSERT INTO labels (image_id, coarse, fine, tightness, who, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    lab,
                )
            feats = rng.standard_normal((stop - start, 1, store.dim), dtype=np.float32)
            _append_features(store, shas, feats.astype(np.float16))
            print(f"  padded {stop:,}/{n:,} rows ({time.perf_counter() - t0:.0f} s)", flush=True)
        path = lib.models_dir / f"bench-dvsh-{BITS}.safetensors"
        save_checkpoint(path, method, build_metadata(method))
        info = ModelInfo(f"bench-dvsh-{BITS}", "dvsh", BITS, path, time.time())
        lib.add_model(info, activate=True)
        ids = np.arange(1, n + 1)
        codes = pack_codes(rng.integers(0, 2, size=(n, BITS)).astype(bool))
        lib.store_codes(info.version, ids.tolist(), codes)
        lib._c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    done.write_text(f"{time.perf_counter() - t0:.1f}")
    print(f"  library of {n:,} rows built in {time.perf_counter() - t0:.0f} s", flush=True)
    return lib_dir, queries


def _append_features(store, shas: list[str], feats: np.ndarray) -> None:
    """Rows in the store's own format (features, then CRC-32s, then keys), without re-reading
    the store per batch as `FeatureStore.add` does."""
    store.folder.mkdir(parents=True, exist_ok=True)
    if not store._meta_path.exists():
        store._write_meta()
    block = np.ascontiguousarray(feats)
    sums = np.array([zlib.crc32(row) for row in block], dtype="<u4")
    with open(store._feats_path, "ab") as f:
        f.write(block.tobytes())
    with open(store._sums_path, "ab") as f:
        f.write(sums.tobytes())
    with open(store._keys_path, "ab") as f:
        f.write(b"".join(bytes.fromhex(s) for s in shas))


def disk_use(lib_dir: Path) -> dict[str, int]:
    def size(p: Path) -> int:
        if p.is_file():
            return p.stat().st_size
        return sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) if p.exists() else 0

    cat = sum(size(lib_dir / f"catalogue.sqlite{s}") for s in ("", "-wal", "-shm"))
    return {
        "catalogue": cat,
        "features": size(lib_dir / "features"),
        "indexes": size(lib_dir / "indexes"),
        "models": size(lib_dir / "models"),
        "thumbs": size(lib_dir / "thumbs"),
    }


# --------------------------------------------------------------------------- probes


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def probe(kind: str, lib_dir: Path, queries: list[Path]) -> dict:
    """Runs inside a fresh process whose sys.path starts with the code under test."""
    t_start = time.perf_counter()
    from fabricsearch.catalogue import Library

    out: dict = {"import_s": time.perf_counter() - t_start, "rss_start_mb": _rss_mb()}
    if kind == "open":
        t0 = time.perf_counter()
        lib = Library.open(lib_dir)
        out["open_s"] = time.perf_counter() - t0
        out["rss_open_mb"] = _rss_mb()
        lib.close()
    elif kind == "info":
        lib = Library.open(lib_dir)
        t0 = time.perf_counter()
        info = lib.info()
        out["info_call_s"] = time.perf_counter() - t0
        out["images"] = info["images"]
        out["labelled"] = info["labelled"]
        lib.close()
    elif kind == "records":
        lib = Library.open(lib_dir)
        t0 = time.perf_counter()
        recs = lib.images()
        out["records_s"] = time.perf_counter() - t0
        out["records"] = len(recs)
        out["rss_records_mb"] = _rss_mb()
        lib.close()
    elif kind == "sketch":
        from fabricsearch import sketch as sketch_mod
        from fabricsearch.search import Searcher

        lib = Library.open(lib_dir)
        s = Searcher(lib)
        st = s._ensure()
        name = sketch_mod.feature_version(st.method.backbone)
        out["sketch_existed"] = sketch_mod.open_sketch(lib.indexes_dir, name) is not None
        t0 = time.perf_counter()
        s.complete_codes()
        out["sketch_step_s"] = time.perf_counter() - t0
        sk = sketch_mod.open_sketch(lib.indexes_dir, name)
        out["sketch_rows"] = len(sk) if sk is not None else 0
        out["sketch_dims"] = sk.dim if sk is not None else 0
        out["rss_sketch_mb"] = _rss_mb()
        lib.close()
    elif kind == "query":
        from fabricsearch.search import Searcher

        if os.environ.get("FABRICSEARCH_BENCH_NO_SKETCH"):
            Searcher._sketch_source = lambda self, st: None  # type: ignore[method-assign]
        # torch is imported once per process (the window imports it at start): timed apart.
        t0 = time.perf_counter()
        import torch  # noqa: F401

        import fabricsearch.hashing.checkpoint  # noqa: F401

        out["torch_import_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        lib = Library.open(lib_dir)
        out["open_s"] = time.perf_counter() - t0
        out["rss_open_mb"] = _rss_mb()
        s = Searcher(lib)
        r = s.search(queries[0], k=20)
        out["first_query_s"] = time.perf_counter() - t0
        out["first_query_stages_ms"] = {k: round(v, 1) for k, v in r.elapsed_ms.items()}
        out["rss_first_query_mb"] = _rss_mb()
        later, stages = [], []
        for q in queries[1:9]:
            t1 = time.perf_counter()
            r2 = s.search(q, k=20)
            later.append(time.perf_counter() - t1)
            stages.append(r2.elapsed_ms)
        out["later_query_ms"] = statistics.median(later) * 1e3
        out["later_stages_ms"] = {
            k: round(statistics.median(st.get(k, 0.0) for st in stages), 2) for k in stages[0]
        }
        out["later_query_max_ms"] = max(later) * 1e3
        out["rss_after_mb"] = _rss_mb()
        out["hits"] = len(r.hits)
        lib.close()
    return out


def run_probe(
    src: Path, kind: str, lib_dir: Path, queries: list[Path], timeout: float, sketch: bool = True
) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src), FABRICSEARCH_BENCH_SRC=str(src))
    if not sketch:
        env["FABRICSEARCH_BENCH_NO_SKETCH"] = "1"
    env.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            [sys.executable, __file__, "--probe", kind, "--lib", str(lib_dir)]
            + ["--queries", *map(str, queries)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "failed"}
    res = json.loads(p.stdout.strip().splitlines()[-1])
    res["process_s"] = wall
    return res


def run_info_cli(src: Path, lib_dir: Path, timeout: float) -> dict:
    env = dict(os.environ, PYTHONPATH=str(src))
    t0 = time.perf_counter()
    try:
        p = subprocess.run(
            [sys.executable, "-m", "fabricsearch", "info", str(lib_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if p.returncode != 0:
        return {"error": (p.stderr.strip().splitlines() or ["failed"])[-1]}
    return {"info_cli_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- main


def measure(n: int, sources: dict[str, Path], repeats: int, timeout: float) -> dict:
    lib_dir, queries = pad_library(CACHE / f"n{n}", n)
    res: dict = {"n": n, "disk_bytes": disk_use(lib_dir)}
    for name in sources:
        res[name] = {}
    if "new" in sources:
        r = run_probe(sources["new"], "sketch", lib_dir, queries, timeout)
        res["sketch"] = r
        print(f"  n={n:,} new  sketch   {r}", flush=True)
    kinds = ["open", "info", "query", "records"]
    for _rep in range(repeats):
        for kind in kinds:
            for name, src in sources.items():  # interleaved: both see the same load
                if name == "nosketch" and kind != "query":
                    continue
                if kind == "info":
                    r = run_info_cli(src, lib_dir, timeout)
                    r.update(run_probe(src, kind, lib_dir, queries, timeout))
                else:
                    r = run_probe(src, kind, lib_dir, queries, timeout, name != "nosketch")
                res[name].setdefault(kind, []).append(r)
                print(f"  n={n:,} {name:<4} {kind:<8} {_brief(r)}", flush=True)
    res["disk_bytes_after"] = disk_use(lib_dir)  # + the index file the first query saved
    return res


def _brief(r: dict) -> str:
    if "error" in r:
        return "ERROR " + r["error"]
    keys = (
        "open_s",
        "info_cli_s",
        "info_call_s",
        "first_query_s",
        "later_query_ms",
        "records_s",
        "rss_first_query_mb",
        "rss_records_mb",
    )
    return "  ".join(f"{k}={r[k]:.2f}" for k in keys if k in r)


def _best(runs: list[dict], key: str) -> float | None:
    vals = [r[key] for r in runs if key in r]
    return min(vals) if vals else None


ROWS = [
    ("open", "open_s", "Library.open (s)"),
    ("info", "info_cli_s", "`fabricsearch info` command (s)"),
    ("info", "info_call_s", "Library.info() (s)"),
    ("query", "torch_import_s", "import torch (once per process) (s)"),
    ("query", "first_query_s", "first query: open + load + query (s)"),
    ("query", "later_query_ms", "later query, median (ms)"),
    ("open", "rss_open_mb", "RSS after open, no torch (MB)"),
    ("query", "rss_first_query_mb", "RSS after first query (MB)"),
    ("records", "records_s", "all records, grid load (s)"),
    ("records", "rss_records_mb", "RSS with all records (MB)"),
]


def table(results: list[dict], names: list[str]) -> str:
    lines = []
    for res in results:
        lines.append(f"\n{res['n']:,} images (best of the repeats)")
        head = f"{'':<38}" + "".join(f"{nm:>12}" for nm in names)
        if len(names) == 2:
            head += f"{'ratio':>10}"
        lines.append(head)
        for kind, key, label in ROWS:
            vals = [_best(res[nm].get(kind, []), key) for nm in names]
            line = f"{label:<38}" + "".join(
                f"{v:>12.2f}" if v is not None else f"{'—':>12}" for v in vals
            )
            if len(names) == 2 and None not in vals and vals[1]:
                line += f"{vals[0] / vals[1]:>9.1f}×"
            lines.append(line)
        d = res["disk_bytes_after"]
        lines.append(
            "disk (MB): "
            + ", ".join(f"{k} {v / 1e6:.0f}" for k, v in d.items())
            + f", total {sum(d.values()) / 1e6:.0f}"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--old", type=Path, help="folder holding an older fabricsearch package")
    ap.add_argument("--old-max-n", type=int, default=1_000_000, help="skip --old above this n")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument(
        "--sketch-off", action="store_true", help="also query with the feature sketch ignored"
    )
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "large.json")
    ap.add_argument("--probe", help=argparse.SUPPRESS)
    ap.add_argument("--lib", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--queries", type=Path, nargs="*", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.probe:
        print(json.dumps(probe(args.probe, args.lib, args.queries)))
        return
    load = os.getloadavg()
    results = []
    for n in args.n:
        sources = {"new": ROOT}
        if args.old is not None and n <= args.old_max_n:
            sources = {"old": args.old, "new": ROOT}
        if args.sketch_off:
            sources["nosketch"] = ROOT
        results.append(measure(n, sources, args.repeats, args.timeout))
    names = ["old", "new"] if args.old is not None else ["new"]
    if args.sketch_off:
        names.append("nosketch")
    for res in results:
        for name in names:
            res.setdefault(name, {})
    print(table(results, names))
    print(f"\nload average at start {load[0]:.1f} (1 min), {os.cpu_count()} CPU cores")
    out = {
        "machine": {"cpus": os.cpu_count(), "loadavg_start": load, "loadavg_end": os.getloadavg()},
        "results": results,
        "table": table(results, names),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    if os.environ.get("FABRICSEARCH_BENCH_SRC"):
        sys.path.insert(0, os.environ["FABRICSEARCH_BENCH_SRC"])
    main()
