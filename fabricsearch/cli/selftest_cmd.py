"""`fabricsearch selftest [--gui] [--json]`: prove an installation works end to end.

Builds (or opens) the demo library, searches with one of its photos and checks that the photo
finds itself first. With `--gui` the same happens through the main window (offscreen-capable).
Used by packaging/check_bundle.sh on the built bundle.
"""

from __future__ import annotations

import argparse
import time

from fabricsearch.cli.common import fail, print_json, tqdm_progress


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("selftest", help="check that this installation can search (demo library)")
    p.add_argument("--gui", action="store_true", help="also open the window and search through it")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)

    d = sub.add_parser(
        "demo", help="build the demo library (generated fabrics + shipped model) if missing"
    )
    d.add_argument("--json", action="store_true", help="print JSON")
    d.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from fabricsearch.services.demo import ensure_demo_library

    with tqdm_progress(enabled=not args.json) as (progress, cancel):
        folder = ensure_demo_library(progress=progress, cancel=cancel)
    if args.json:
        print_json({"library": str(folder)})
    else:
        print(f"demo library: {folder}")
    return 0


def run(args: argparse.Namespace) -> int:
    from fabricsearch.catalogue import Library
    from fabricsearch.services.demo import ensure_demo_library
    from fabricsearch.services.search import Searcher

    t0 = time.perf_counter()
    with tqdm_progress(enabled=not args.json) as (progress, cancel):
        folder = ensure_demo_library(progress=progress, cancel=cancel)
    with Library.open(folder) as lib:
        info = lib.active_model()
        if info is None:
            return fail("the demo library has no model: the shipped model is missing")
        records = lib.images()
        rec = records[len(records) // 2]
        result = Searcher(lib).search(rec.path, k=5)
    ok = bool(result.hits) and result.hits[0].image_id == rec.id
    report = {
        "ok": ok,
        "library": str(folder),
        "model": info.version,
        "query": str(rec.path),
        "top": str(result.hits[0].path) if result.hits else None,
        "seconds": round(time.perf_counter() - t0, 2),
    }
    if ok and args.gui:
        from fabricsearch.cli import main as cli_main

        ok = cli_main(["gui", str(folder), "--self-test"]) == 0
        report["gui"] = ok
        report["ok"] = ok
    if args.json:
        print_json(report)
    else:
        print(("self-test passed" if ok else "self-test FAILED") + f": {report}")
    return 0 if ok else 1
