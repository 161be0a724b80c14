"""Library-wide commands: ``library copy`` (folder ⇄ team library) and ``library map``."""

from __future__ import annotations

import argparse
from typing import Any

from fabricsearch.cli.common import print_json, tqdm_progress, user_errors


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "library",
        help="copy a library between a folder and a team library; map a team library's photos",
    )
    sub = p.add_subparsers(dest="library_command", metavar="ACTION", required=True)
    q = sub.add_parser(
        "copy",
        help="copy a library (labels, metadata, audit, models, codes) into a new one",
        description=(
            "Copy SRC into a new library DEST; either may be a folder or a team library URL "
            "(postgresql://USER@HOST/DB). Photo paths are rewritten: relative to the photos "
            "root in a team library, absolute in a folder."
        ),
    )
    q.add_argument("source", metavar="SRC")
    q.add_argument("destination", metavar="DEST")
    q.add_argument(
        "--photos-root",
        metavar="DIR",
        help="photos root of a new team library (default: the source team library's)",
    )
    q.add_argument("--json", action="store_true", help="print a JSON summary")
    q.set_defaults(func=run_copy)
    q = sub.add_parser(
        "map",
        help="where this computer sees a team library's photos (e.g. Z:\\archive)",
    )
    q.add_argument("library", metavar="URL")
    q.add_argument("photos_root", metavar="DIR")
    q.set_defaults(func=run_map)


@user_errors
def run_copy(args: argparse.Namespace) -> int:
    from fabricsearch.services.records import copy_library

    with tqdm_progress(not args.json) as (progress, cancel):
        rep = copy_library(
            args.source, args.destination, args.photos_root, progress=progress, cancel=cancel
        )
    if args.json:
        print_json(rep.to_json())
    else:
        rows = ", ".join(f"{k} {v}" for k, v in rep.rows.items())
        print(f"copied {rep.source} → {rep.destination}: {rows}; model files {rep.model_files}")
    return 0


@user_errors
def run_map(args: argparse.Namespace) -> int:
    from fabricsearch.catalogue import Library
    from fabricsearch.services.records import map_photos_root

    with Library.open(args.library) as lib:
        root = map_photos_root(lib, args.photos_root)
    print(f"{lib.location}: photos under {root} on this computer")
    return 0
