"""``labels suggest`` and ``labels accept``: predicted labels for unlabelled images."""

from __future__ import annotations

import argparse
from typing import Any

from fabricsearch.cli.common import UserError, print_json, tqdm_progress, user_errors


def add_label_parsers(sub: Any) -> None:
    """Add ``suggest`` and ``accept`` to the ``labels`` command's actions."""
    from fabricsearch.services.labels import DEFAULT_MIN_CONFIDENCE

    for action, help_text in (
        ("suggest", "predicted labels for the unlabelled images (nothing is changed)"),
        ("accept", "apply the suggestions at or above the confidence"),
    ):
        q = sub.add_parser(action, help=help_text)
        q.add_argument("library", metavar="LIB")
        q.add_argument(
            "--min-confidence",
            type=float,
            default=DEFAULT_MIN_CONFIDENCE,
            metavar="P",
            help=f"suggest only labels predicted with at least this probability "
            f"(0–1, default {DEFAULT_MIN_CONFIDENCE:g})",
        )
        q.add_argument("--json", action="store_true", help="print JSON")
        q.set_defaults(func=run_suggest, accept=action == "accept")


@user_errors
def run_suggest(args: argparse.Namespace) -> int:
    from fabricsearch.catalogue import Library
    from fabricsearch.services.labels import SuggestError, accept_suggestions, suggest_labels

    if not 0.0 <= args.min_confidence <= 1.0:
        raise UserError("--min-confidence is a probability between 0 and 1")
    with Library.open(args.library) as lib, tqdm_progress(not args.json) as (progress, cancel):
        try:
            rep = suggest_labels(lib, args.min_confidence, progress=progress, cancel=cancel)
        except SuggestError as exc:
            raise UserError(str(exc)) from exc
        if args.accept:
            accept_suggestions(lib, rep.suggestions, who=f"suggestion:{rep.model}")
    if args.json:
        out = rep.to_json()
        if args.accept:
            out = {"accepted": len(rep.suggestions), **out}
        print_json(out)
        return 0
    verb = "accepted" if args.accept else "suggested"
    for s in rep.suggestions[:50] if not args.accept else []:
        fine = f", {s.fine}" if s.fine else ""
        print(f"  {s.confidence:5.0%}  {s.coarse}{fine}  {s.path}")
    if not args.accept and len(rep.suggestions) > 50:
        print(f"  … and {len(rep.suggestions) - 50} more (--json lists all)")
    print(
        f"{verb} labels for {len(rep.suggestions)} unlabelled images at confidence >= "
        f"{rep.min_confidence:g}; {rep.unsuggested} left unsuggested"
    )
    if rep.unfamiliar:
        print(
            f"{len(rep.unfamiliar)} unlabelled images are unlike any labelled fabric: no "
            "suggestion (label a few of them by hand, then train again)"
        )
    return 0
