"""The per-image part of an import, two code versions side by side (issue 23).

    python benchmarks/bench_import_stage.py OLD_REV NEW_REV FOLDER... [--rounds 2] [--workers 2 auto]

Times `import_folder` with a `FeatureFeed` into a fresh library (read, hash, decode, palette,
thumbnails, the network's input, the network, the feature store), each run a fresh process
with torch imported and the backbone loaded before the clock starts, so the fixed costs of
`bench_import.py --compare` (head fit, encoding) do not hide the per-image part. Both
revisions are extracted with ``git archive`` (`bench_import.baseline_tree`); runs alternate
old/new, round after round, so a busy machine slows both alike. Writes
benchmarks/results/import_stage.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "import_stage.json"


def child(folder: Path, workers: int | None) -> dict[str, Any]:
    import resource
    import shutil
    import tempfile

    import torch  # noqa: F401  (a fixed cost, before the clock)

    import fabricsearch
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.featurefeed import FeatureFeed
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, load_backbone

    load_backbone(DEFAULT_BACKBONE)
    tmp = Path(tempfile.mkdtemp(prefix="bench-stage-"))
    try:
        lib = Library.create(tmp / "lib")
        t0 = time.perf_counter()
        with FeatureFeed(lib.folder, DEFAULT_BACKBONE) as feed:
            rep = import_folder(lib, folder, workers=workers, features=feed)
            t1 = time.perf_counter()
            feed.close()
        t2 = time.perf_counter()
        lib.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return {
        "package": str(Path(fabricsearch.__file__).parent),
        "images": rep.added,
        "features": feed.done,
        "import_s": t1 - t0,
        "import_features_s": t2 - t0,
        "peak_mb": (usage + children) / 1024,
    }


def main() -> None:
    if sys.argv[1:2] == ["--child"]:  # one measured run: --child FOLDER WORKERS
        folder, w = sys.argv[2], sys.argv[3]
        print(json.dumps(child(Path(folder), None if w == "auto" else int(w))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("folders", nargs="+", type=Path)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", nargs="+", default=["2"], help="counts, or auto (the policy)")
    args = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_import import baseline_tree

    trees = {"old": baseline_tree(args.old), "new": baseline_tree(args.new)}
    runs = []
    for r in range(args.rounds):
        for folder in args.folders:
            for w in args.workers:
                order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
                for variant in order:
                    root = trees[variant]
                    load = os.getloadavg()[0]
                    script = str(Path(__file__).resolve())
                    cmd = [sys.executable, script, "--child", str(folder.resolve()), w]
                    env = dict(os.environ, PYTHONPATH=str(root))
                    out = subprocess.run(
                        cmd, env=env, cwd=str(root), capture_output=True, text=True, check=True
                    )
                    res = json.loads(out.stdout.strip().splitlines()[-1])
                    res.update(round=r, folder=folder.name, workers=w, variant=variant, load=load)
                    runs.append(res)
                    print(
                        f"round {r} {folder.name:16s} w={w:4s} {variant}  "
                        f"{res['images'] / res['import_features_s']:6.2f} img/s  "
                        f"({res['import_features_s']:.1f} s, peak {res['peak_mb']:.0f} MB, "
                        f"load {load:.1f})",
                        flush=True,
                    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {"benchmark": "import_stage", "old": args.old, "new": args.new, "runs": runs},
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
