"""Command line: thin argument parsing over the core. One module per command group.

Each module in `COMMAND_MODULES` exposes ``add_parsers(subparsers)`` which adds its
subcommands and sets ``func`` (a callable taking the parsed args and returning an exit code).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib

COMMAND_MODULES = [
    "fabricsearch.cli.colour_cmd",  # colour
    "fabricsearch.cli.synth_cmd",  # synth
    "fabricsearch.cli.library_cmd",  # init, import, labels, info, thumbs
    "fabricsearch.cli.team_cmd",  # library copy, library map
    "fabricsearch.cli.model_cmd",  # train, encode, eval, models
    "fabricsearch.cli.pretrain_cmd",  # pretrain, adapt
    "fabricsearch.cli.search_cmd",  # search
    "fabricsearch.cli.records_cmd",  # meta, remove, relocate, taxonomy
    "fabricsearch.cli.watch_cmd",  # watch
    "fabricsearch.cli.gui_cmd",  # gui
    "fabricsearch.cli.selftest_cmd",  # selftest
]


def build_parser() -> argparse.ArgumentParser:
    from fabricsearch import __version__

    parser = argparse.ArgumentParser(
        prog="fabricsearch",
        description="Find fabrics by photo. Without a command, opens the desktop application.",
    )
    parser.add_argument("--version", action="version", version=f"fabricsearch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # command group not written yet
                continue
            raise
        module.add_parsers(sub)
    return parser


def main(argv: list[str]) -> int:
    from fabricsearch.cli.search_cmd import glue_text_value

    parser = build_parser()
    args = parser.parse_args(glue_text_value(list(argv)))
    if args.command is None:
        args = parser.parse_args(["gui", *argv])
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    from fabricsearch.cli.common import run_command
    from fabricsearch.logging_setup import install_crash_logging, setup_logging

    # A read-only home must not stop the CLI; logging then stays on stderr.
    with contextlib.suppress(OSError):
        setup_logging(verbose=args.verbose)
        install_crash_logging()
    return run_command(func, args)  # the one error boundary
