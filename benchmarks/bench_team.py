"""Load test of a team library: 8 client processes label, import and search one library on a
local PostgreSQL server, with a kill -9 of one client and a server restart on the way.

    bash scripts/postgres.sh start          # prints the server URL
    .venv/bin/python benchmarks/bench_team.py --server postgresql://postgres@127.0.0.1:PORT/fabricsearch
    .venv/bin/python benchmarks/bench_team.py --duration 40 --clients 4   # shorter

What each client does, in a loop, choosing by weight (label 70 %, search 25 %, import 5 %):

* **label**: sets the tightness of one random image to a value unique to this write (client
  and sequence number encoded in it) and, only after the commit returned, appends the write
  to its oracle log (fsynced JSON lines);
* **search**: what a search asks of the catalogue: the active model's codes
  (`Library.load_codes`), a Hamming top-20 of a random query code (`HammingIndex`), and the
  label arrays of the hits (the re-ranking's input). The CNN forward pass of a real query is
  left out: it runs on the client and does not touch the server (docs/search.md has its cost);
* **import**: imports one more batch folder of small photos, half of the batches shared
  between two clients (the same photos under the same paths), with `importer.import_folder`.

Phases (of ``--duration`` seconds): at 40 % one client is killed with SIGKILL (its open
transaction, if any, rolls back); at 60 % the server is restarted (``scripts/postgres.sh
restart``); clients retry an operation that failed because the connection was lost, and
count it. At the end the oracle logs are checked against the catalogue: every acknowledged
label write is in the audit table, each image's stored tightness is the last audited write
of it, and every audit chain is unbroken (old = previous new). Prints a table and writes
benchmarks/results/team.json.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "team.json"
N_IMAGES = 2000
BITS = 64
BATCHES_PER_CLIENT = 6
PHOTOS_PER_BATCH = 4


def _palette(i: int) -> np.ndarray:
    p = np.zeros((10, 4), np.float32)
    p[i % 10] = (10.0, 100.0, 200.0, 1.0)
    return p


def setup(url: str, photos: Path, clients: int) -> None:
    """A team library with N_IMAGES catalogued images, an active model with codes, and the
    photo batches the clients import."""
    from fabricsearch import synth
    from fabricsearch.catalogue import Library, ModelInfo

    photos.mkdir(parents=True, exist_ok=True)
    with Library.create(url, photos_root=photos) as lib:
        with lib.atomic():
            ids = [
                lib.add_image(
                    str(photos / "catalogued" / f"{i}.jpg"),
                    hashlib.sha256(f"bench-{i}".encode()).hexdigest(),
                    1000,
                    1.0,
                    64,
                    64,
                    _palette(i),
                )
                for i in range(N_IMAGES)
            ]
        weights = photos / "model.safetensors"
        weights.write_bytes(b"\0" * 1024)
        lib.add_model(ModelInfo("bench-v1", "lsh", BITS, weights, time.time()), activate=True)
        rng = np.random.default_rng(0)
        lib.store_codes("bench-v1", ids, rng.integers(0, 256, (N_IMAGES, BITS // 8), np.uint8))
    # Batch folders: client k imports own/k/b (private) and shared/(k//2)/b (same photos as
    # its neighbour client): two clients importing one folder must add nothing twice.
    source = photos / "_source"
    synth.write_dataset(source, clients * BATCHES_PER_CLIENT * PHOTOS_PER_BATCH, seed=7, size=48)
    files = sorted(source.rglob("*.jpg"))
    k = 0
    for c in range(clients):
        for b in range(BATCHES_PER_CLIENT):
            kind = ("shared", str(c // 2)) if b % 2 else ("own", str(c))
            dest = photos.joinpath(*kind, f"b{b}")
            dest.mkdir(parents=True, exist_ok=True)
            for _ in range(PHOTOS_PER_BATCH // (2 if b % 2 else 1)):
                shutil.copy(files[k % len(files)], dest / f"{kind[0]}-{kind[1]}-{b}-{k}.jpg")
                k += 1


def client(
    number: int, url: str, photos: Path, until: float, logs: Path, seed: int
) -> None:  # runs in its own process
    from fabricsearch.catalogue import Library, LibraryError
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.index import HammingIndex

    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    oracle = open(logs / f"oracle-{number}.jsonl", "a", buffering=1)  # noqa: SIM115
    timings = open(logs / f"ops-{number}.jsonl", "a", buffering=1)  # noqa: SIM115
    lib = Library.open(url)
    ids = lib.image_ids()
    seq = 0
    batch = 0
    while time.time() < until:
        op = rng.choices(("label", "search", "import"), (70, 25, 5))[0]
        t0 = time.perf_counter()
        retries = 0
        while True:
            try:
                if op == "label":
                    seq += 1
                    image = rng.choice(ids)
                    value = float((number * 100_000 + seq) % 1_000_000) / 10_000.0
                    lib.set_labels([image], tightness=value, who=f"c{number}")
                    oracle.write(
                        json.dumps({"c": number, "seq": seq, "image": image, "value": value}) + "\n"
                    )
                    os.fsync(oracle.fileno())
                elif op == "search":
                    vids, packed = lib.load_codes("bench-v1")
                    index = HammingIndex(BITS)
                    index.add(vids, packed)
                    q = nprng.integers(0, 256, (1, BITS // 8), np.uint8)
                    _dist, hits = index.search(q, 20)
                    lib.label_arrays([int(h) for h in hits[0] if h >= 0])
                else:
                    kinds = [("own", str(number)), ("shared", str(number // 2))]
                    kind = kinds[batch % 2]
                    folder = photos.joinpath(*kind, f"b{batch % BATCHES_PER_CLIENT}")
                    batch += 1
                    if folder.is_dir():
                        import_folder(lib, folder, workers=0)
                break
            except LibraryError as exc:
                if "lost" not in str(exc) and "connect" not in str(exc):
                    raise
                retries += 1  # the server restarted: the change was not saved, do it again
                time.sleep(0.2)
        timings.write(
            json.dumps(
                {"op": op, "t": time.time(), "s": time.perf_counter() - t0, "retries": retries}
            )
            + "\n"
        )
    lib.close()


def verify(url: str, logs: Path, killed: int) -> dict:
    from fabricsearch.catalogue import Library

    acknowledged = []
    for f in sorted(logs.glob("oracle-*.jsonl")):
        for line in f.read_text().splitlines():
            with contextlib.suppress(ValueError):  # a torn last line of the killed client
                acknowledged.append(json.loads(line))
    with Library.open(url) as lib:
        audit = [h for h in lib.label_history() if h["field"] == "tightness"]
        records = {r.id: r for r in lib.images()}
        shas = lib._query("SELECT COUNT(*), COUNT(DISTINCT sha256) FROM images")[0]
    in_audit = {(h["who"], h["image_id"], h["new"]) for h in audit}
    lost = [a for a in acknowledged if (f"c{a['c']}", a["image"], repr(a["value"])) not in in_audit]
    by_image: dict[int, list[dict]] = {}
    for h in audit:
        by_image.setdefault(h["image_id"], []).append(h)
    broken = sum(
        1
        for chain in by_image.values()
        for prev, nxt in zip(chain, chain[1:], strict=False)
        if nxt["old"] != prev["new"]
    )
    wrong_final = sum(
        1 for image, chain in by_image.items() if repr(records[image].tightness) != chain[-1]["new"]
    )
    acked = {(f"c{a['c']}", a["image"], repr(a["value"])) for a in acknowledged}
    unacked = [h for h in audit if (h["who"], h["image_id"], h["new"]) not in acked]
    return {
        "acknowledged_writes": len(acknowledged),
        "audited_writes": len(audit),
        "lost": len(lost),
        "broken_chains": broken,
        "final_value_not_last_write": wrong_final,
        "committed_but_not_acknowledged": len(unacked),
        "unacknowledged_by_client": sorted({h["who"] for h in unacked}),
        "killed_client": f"c{killed}",
        "images": int(shas[0]),
        "distinct_contents": int(shas[1]),
    }


def summarise(logs: Path, t_kill: float, t_restart: float) -> dict:
    ops = []
    for f in sorted(logs.glob("ops-*.jsonl")):
        ops += [json.loads(line) for line in f.read_text().splitlines() if line.strip()]
    out: dict[str, dict] = {}
    phases = {
        "before kill": lambda o: o["t"] < t_kill,
        "after kill, before restart": lambda o: t_kill <= o["t"] < t_restart,
        "after restart": lambda o: o["t"] >= t_restart,
        "all": lambda o: True,
    }
    for phase, keep in phases.items():
        sel = [o for o in ops if keep(o)]
        if not sel:
            continue
        span = max(o["t"] for o in sel) - min(o["t"] - o["s"] for o in sel)
        row = {"ops": len(sel), "ops_per_s": len(sel) / max(span, 1e-9)}
        for op in ("label", "search", "import"):
            s = sorted(o["s"] for o in sel if o["op"] == op)
            if s:
                row[op] = {
                    "n": len(s),
                    "p50_ms": 1000 * s[len(s) // 2],
                    "p95_ms": 1000 * s[min(len(s) - 1, int(0.95 * len(s)))],
                    "max_ms": 1000 * s[-1],
                }
        row["retried_ops"] = sum(1 for o in sel if o["retries"])
        out[phase] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--server", default=os.environ.get("FABRICSEARCH_TEST_PG"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=90.0)
    ap.add_argument("--no-restart", action="store_true", help="do not restart the server")
    args = ap.parse_args()
    if not args.server:
        print("give --server URL (bash scripts/postgres.sh start prints one)", file=sys.stderr)
        return 2
    import psycopg

    work = Path(tempfile.mkdtemp(prefix="bench-team-"))
    os.environ.setdefault("FABRICSEARCH_DATA_DIR", str(work / "data"))
    name = "bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(args.server, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    url = args.server.rsplit("/", 1)[0] + "/" + name
    photos, logs = work / "photos", work / "logs"
    logs.mkdir(parents=True)
    try:
        setup(url, photos, args.clients)
        ctx = mp.get_context("spawn")
        start = time.time() + 5  # spawned clients import fabricsearch first
        until = start + args.duration
        procs = [
            ctx.Process(target=client, args=(k, url, photos, until, logs, 1000 + k))
            for k in range(args.clients)
        ]
        for p in procs:
            p.start()
        killed = args.clients - 1
        t_kill = start + 0.4 * args.duration
        t_restart = start + 0.6 * args.duration
        time.sleep(max(0.0, t_kill - time.time()))
        os.kill(procs[killed].pid, signal.SIGKILL)
        time.sleep(max(0.0, t_restart - time.time()))
        restart_s = None
        if not args.no_restart:
            t0 = time.perf_counter()
            subprocess.run(["bash", str(ROOT / "scripts" / "postgres.sh"), "restart"], check=True)
            restart_s = time.perf_counter() - t0
        for p in procs:
            p.join()
        failed_clients = [k for k, p in enumerate(procs) if p.exitcode != 0 and k != killed]
        result = {
            "clients": args.clients,
            "duration_s": args.duration,
            "cpus": os.cpu_count(),
            "server_restart_s": restart_s,
            "failed_clients": failed_clients,
            "phases": summarise(logs, t_kill, t_restart),
            "check": verify(url, logs, killed),
        }
    finally:
        with psycopg.connect(args.server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"{'phase':<28} {'ops/s':>7} {'label p95':>10} {'search p95':>11} {'import p95':>11} retried"
    )
    for phase, row in result["phases"].items():
        cells = [
            f"{row[op]['p95_ms']:.0f} ms" if op in row else "—"
            for op in ("label", "search", "import")
        ]
        print(
            f"{phase:<28} {row['ops_per_s']:>7.1f} {cells[0]:>10} {cells[1]:>11} {cells[2]:>11}"
            f" {row['retried_ops']}"
        )
    print(json.dumps(result["check"], indent=2))
    ok = (
        not failed_clients
        and result["check"]["lost"] == 0
        and result["check"]["broken_chains"] == 0
        and result["check"]["final_value_not_last_write"] == 0
        and result["check"]["images"] == result["check"]["distinct_contents"]
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
