"""`fabricsearch synth OUT_DIR --count N --seed S`: write a labelled synthetic fabric set."""

from __future__ import annotations

import argparse
from typing import Any

from fabricsearch.cli.common import fail, print_json, tqdm_progress
from fabricsearch.jobs import Cancelled


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate labelled synthetic fabric photos",
        description=(
            "Render procedural woven fabrics (solids, stripes, checks, prints, figured "
            "weaves) as photos, several per fabric, into OUT_DIR/<major>/ with "
            "OUT_DIR/labels.csv (path,coarse,fine,tightness). The same seed gives the same set."
        ),
    )
    p.add_argument("out", metavar="OUT_DIR", help="folder to write (created if missing)")
    p.add_argument("--count", type=int, default=100, help="number of images (default 100)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--size", type=int, default=256, metavar="PX", help="image side (default 256)")
    p.add_argument(
        "--photos-per-fabric",
        type=int,
        default=2,
        metavar="P",
        help="photos of each fabric, differing by camera (default 2)",
    )
    p.add_argument(
        "--format", choices=("jpg", "png"), default="jpg", help="image format (default jpg, q92)"
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fabricsearch.services.demo import write_synthetic_dataset

    if args.count < 0:
        return fail("--count must be >= 0")
    if args.photos_per_fabric < 1:
        return fail("--photos-per-fabric must be >= 1")
    if args.size < 8:
        return fail("--size must be >= 8")
    with tqdm_progress(enabled=not args.json) as (progress, cancel):
        try:
            csv_path = write_synthetic_dataset(
                args.out,
                args.count,
                args.seed,
                size=args.size,
                photos_per_fabric=args.photos_per_fabric,
                fmt=args.format,
                progress=progress,
                cancel=cancel,
            )
        except Cancelled:
            return fail("cancelled", 130)
        except OSError as exc:
            return fail(str(exc))
    if args.json:
        print_json({"out": str(args.out), "images": args.count, "labels_csv": str(csv_path)})
    else:
        print(f"wrote {args.count} images and {csv_path}")
    return 0
