"""`fabricsearch watch LIB DIR...`: import photos into the library as they arrive."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fabricsearch.cli.common import fail, tqdm_progress, user_errors


def add_parsers(subparsers: Any) -> None:
    from fabricsearch.services.watching import SETTLE_SECONDS

    p = subparsers.add_parser(
        "watch",
        help="import new and changed photos from folders as they arrive (Ctrl-C stops)",
        description="Catch up on photos added since the last import (and encode catalogued "
        "photos an interrupted import left without codes), then import every new or changed "
        "photo once it has stopped growing, and make it searchable. Nothing is imported "
        "twice; deleted files are left in the library. Sub-folders that are links are not "
        "followed (one leaving the watched folders is reported).",
    )
    p.add_argument("library", metavar="LIB")
    p.add_argument("folders", metavar="DIR", nargs="+")
    p.add_argument(
        "--settle",
        type=float,
        default=SETTLE_SECONDS,
        help=f"seconds a file must stay unchanged before it is imported (default {SETTLE_SECONDS:g})",
    )
    p.add_argument(
        "--poll",
        action="store_true",
        help="look for changes by polling (network shares whose changes the OS does not report)",
    )
    p.add_argument(
        "--workers", type=int, default=0, help="decoding processes (default 0: in this one)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object per import")
    p.set_defaults(func=run_watch)


@user_errors
def run_watch(args: argparse.Namespace) -> int:
    from fabricsearch.catalogue import Library
    from fabricsearch.services.watching import FolderWatcher

    if args.settle < 0:
        return fail("--settle must be 0 or more seconds")

    def on_batch(b: Any) -> None:
        if args.json:
            print(json.dumps(b.to_json(), ensure_ascii=False), flush=True)
            return
        if b.folder:
            print(
                f"{b.folder}: added {b.added}, updated {b.updated}, moved {b.moved}, "
                f"unchanged {b.unchanged}, failed {len(b.failed)}, encoded {b.encoded}",
                flush=True,
            )
        else:  # the catch-up encode of photos already catalogued
            print(
                f"encoded {b.encoded} catalogued photos that had no code, failed {len(b.failed)}",
                flush=True,
            )
        for f in b.failed:
            print(f"  failed: {f['path']}: {f['reason']}", flush=True)

    with Library.open(args.library) as lib:
        try:
            watcher = FolderWatcher(
                lib,
                args.folders,
                settle=args.settle,
                poll=args.poll,
                workers=args.workers,
                on_problem=lambda m: print(f"warning: {m}", file=sys.stderr, flush=True),
            )
        except FileNotFoundError as exc:
            return fail(str(exc))
        with tqdm_progress(not args.json) as (progress, cancel):
            print(
                "watching " + ", ".join(str(f) for f in watcher.folders) + " (Ctrl-C stops)",
                file=sys.stderr,
                flush=True,
            )
            watcher.run(on_batch, progress, cancel)
    print("stopped watching", file=sys.stderr, flush=True)
    return 0
