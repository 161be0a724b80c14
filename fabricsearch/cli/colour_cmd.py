"""`fabricsearch colour IMAGE [--json]`: the HSV colour quantisation of one photo."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from fabricsearch.cli.common import UserError, fail, print_json


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "colour",
        help="show the colour classes of an image (paper §3.2)",
        description=(
            "Quantise an image into the ten HSV colour classes (black, grey, white, red, "
            "orange, yellow, green, cyan, blue, purple) with their centres and proportions. "
            "Classes under 1 % are dropped and the rest renormalised."
        ),
    )
    p.add_argument("image", metavar="IMAGE", help="image file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def load_image(path: str | Path) -> np.ndarray:
    """Decode ``path`` to RGB uint8 as the importer does for the palette (never area-resized
    below `colour.PALETTE_SIDE`: quantisation samples pixels itself, and a resize would blend
    neighbouring yarn colours).

    Raises `UserError` with a readable reason for missing or unreadable files."""
    from fabricsearch.services.search import ImageError, load_for_palette

    try:
        return load_for_palette(path)
    except ImageError as exc:
        raise UserError(f"{path}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    try:
        rgb = load_image(args.image)
    except UserError as exc:
        return fail(str(exc))
    from fabricsearch.services.search import colour_report

    report = colour_report(rgb)
    if args.json:
        print_json({"colours": report})
        return 0
    print(f"{'colour':<8} {'H':>6} {'S':>6} {'V':>6} {'share':>7}")
    for row in report:
        h, s, v = row["centre_hsv"]
        print(f"{row['name']:<8} {h:6.1f} {s:6.1f} {v:6.1f} {row['proportion']:7.1%}")
    return 0
