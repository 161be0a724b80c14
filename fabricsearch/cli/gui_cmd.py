"""`fabricsearch gui [LIB]`: open the desktop application (also `fabricsearch` alone)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _library_arg(value: str) -> str | Path:
    # A team library's URL stays a string: Path() would fold its "//".
    return value if value.startswith(("postgresql://", "postgres://")) else Path(value)


def _size_arg(value: str) -> tuple[int, int]:
    w, sep, h = value.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit() or int(w) < 200 or int(h) < 200:
        raise argparse.ArgumentTypeError(f"not a window size: {value!r} (e.g. 1280x800)")
    return int(w), int(h)


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gui", help="open the desktop application")
    p.add_argument(
        "library",
        nargs="?",
        type=_library_arg,
        help="library folder or team library URL (default: the last one used)",
    )
    p.add_argument(
        "--screenshot",
        type=Path,
        metavar="PATH",
        help="search offscreen, save a PNG of the window to PATH and quit",
    )
    p.add_argument(
        "--query",
        type=Path,
        metavar="PHOTO",
        help="query photo for --screenshot (default: an image of the library)",
    )
    p.add_argument(
        "--size",
        type=_size_arg,
        metavar="WxH",
        help="window size for --screenshot / --self-test, e.g. 1280x800 (default 1440x900)",
    )
    p.add_argument(
        "--training-screenshot",
        type=Path,
        metavar="PATH",
        help="train a small model from the window and save a PNG of the training dialog",
    )
    p.add_argument("--epochs", type=int, default=3, help="epochs for --training-screenshot")
    p.add_argument(
        "--input-size", type=int, default=None, help="network input size for --training-screenshot"
    )
    p.add_argument(
        "--self-test", action="store_true", help="open the window offscreen, check it, quit"
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import os

    if args.screenshot or args.self_test or args.training_screenshot:
        os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from fabricsearch.gui.app import run as run_gui

    overrides = {"epochs": args.epochs}
    if args.input_size:
        overrides["input_size"] = args.input_size
    return run_gui(
        library=args.library,
        screenshot=args.screenshot,
        self_test=args.self_test,
        query=args.query,
        training_screenshot=args.training_screenshot,
        train_overrides=overrides if args.training_screenshot else None,
        verbose=getattr(args, "verbose", False),
        size=args.size,
    )
