"""Library commands: ``init``, ``import``, ``labels import|export``, ``info``, ``thumbs``."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fabricsearch.cli.common import UserError, fail, print_json, tqdm_progress, user_errors


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "init",
        help="create a new fabric library folder",
        description="Create a library: a folder with catalogue.sqlite, thumbs/, models/, indexes/.",
    )
    p.add_argument(
        "library",
        metavar="LIB",
        help="library folder (created if missing), or postgresql://USER@HOST/DB for a team"
        " library (an empty database; docs/team-library.md)",
    )
    p.add_argument(
        "--photos-root",
        metavar="DIR",
        help="team library: the folder its photos lie under (each computer may map it: "
        "`fabricsearch library map`)",
    )
    p.add_argument(
        "--no-default-model",
        action="store_true",
        help="do not install the shipped pretrained search model",
    )
    p.set_defaults(func=run_init)

    p = subparsers.add_parser(
        "import",
        help="import (or re-import) a folder of photos",
        description=(
            "Import every jpg/jpeg/png/tif/tiff/bmp/webp under DIR (recursively). Unchanged "
            "files are skipped, moved files recognised by content, changed files re-measured. "
            "Bad files are reported with a reason and never stop the import."
        ),
    )
    p.add_argument("library", metavar="LIB", help="library folder")
    p.add_argument("folder", metavar="DIR", help="folder of photos")
    p.add_argument("--labels", metavar="CSV", help="labels CSV (path,coarse,fine,tightness)")
    p.add_argument(
        "--add-categories",
        action="store_true",
        help="add categories the labels CSV names but the library lacks",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=None,
        help="decoding processes (default: the cores not busy with other work)",
    )
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=run_import)

    p = subparsers.add_parser("labels", help="import or export labels as CSV")
    sub = p.add_subparsers(dest="labels_command", metavar="ACTION", required=True)
    q = sub.add_parser("import", help="apply a labels CSV (path,coarse,fine,tightness)")
    q.add_argument("library", metavar="LIB")
    q.add_argument("csv", metavar="CSV")
    q.add_argument("--add-categories", action="store_true", help="add unknown categories")
    q.add_argument("--json", action="store_true", help="print a JSON summary")
    q.set_defaults(func=run_labels_import)
    q = sub.add_parser("export", help="write all labels to a CSV")
    q.add_argument("library", metavar="LIB")
    q.add_argument("csv", metavar="CSV")
    q.set_defaults(func=run_labels_export)
    from fabricsearch.cli.suggest_cmd import add_label_parsers

    add_label_parsers(sub)  # labels suggest, labels accept

    p = subparsers.add_parser("info", help="counts of images, labels, failures and models")
    p.add_argument("library", metavar="LIB")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--check",
        action="store_true",
        help="also read every page of the catalogue (SQLite's integrity check; opening a large"
        " library checks only part of it); exit 1 when it finds damage",
    )
    p.set_defaults(func=run_info)

    p = subparsers.add_parser("thumbs", help="regenerate missing thumbnails")
    p.add_argument("library", metavar="LIB")
    p.set_defaults(func=run_thumbs)

    p = subparsers.add_parser(
        "measure-colours",
        aliases=["measure-colors"],
        help="measure every photo's colours again (libraries imported before fine yarns were"
        " measured apart)",
    )
    p.add_argument("library", metavar="LIB")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_colours)


def _open(path: str) -> Any:
    from fabricsearch.cli.libraries import open_library

    return open_library(path)


@user_errors
def run_init(args: argparse.Namespace) -> int:
    from fabricsearch.services.imports import create_library

    with create_library(
        args.library, default_model=not args.no_default_model, photos_root=args.photos_root
    ) as lib:
        if lib.team is not None:
            print(f"created team library {lib.location} (photos under {lib.team.photos_root})")
        else:
            print(f"created library {lib.folder}")
        info = lib.active_model()
        if info is not None:
            print(f"search model: {info.version} (shipped; label or adapt to improve it)")
    return 0


@user_errors
def run_import(args: argparse.Namespace) -> int:
    from fabricsearch.jobs import Cancelled
    from fabricsearch.services.imports import import_and_encode
    from fabricsearch.services.labels import LabelsCsvError

    with _open(args.library) as lib, tqdm_progress() as (prog, cancel):
        try:
            outcome = import_and_encode(
                lib,
                args.folder,
                labels_csv=args.labels,
                add_categories=args.add_categories,
                workers=args.workers,
                progress=prog,
                cancel=cancel,
            )
        except FileNotFoundError as exc:
            return fail(str(exc))
        except LabelsCsvError as exc:
            raise UserError(f"images imported, labels not applied: {exc}") from exc
        except Cancelled as exc:
            # What was committed is shown like a finished import's report; the error
            # boundary then says what was kept and exits 130.
            if exc.partial is not None:
                _print_import(args, exc.partial.report, exc.partial.encoded)
            raise
    # New images became searchable at once with the active (e.g. shipped) model.
    _print_import(args, outcome.report, outcome.encoded)
    return 0


def _print_import(args: argparse.Namespace, rep: Any, encoded: int) -> None:
    if args.json:
        print_json({**rep.to_json(), "encoded": encoded})
        return
    print(
        f"added {rep.added}, unchanged {rep.unchanged}, moved {rep.moved}, "
        f"updated {rep.updated}, duplicates {len(rep.duplicates)}, failed {len(rep.failed)}, "
        f"encoded {encoded}"
    )
    for f in rep.failed:
        print(f"  failed: {f['path']}: {f['reason']}")
    for d in rep.duplicates:
        print(f"  duplicate: {d['path']} (same content as {d['of']})")
    for d in rep.labels_dropped:
        labels = ", ".join(v for v in (d["coarse"], d["fine"], d["tightness"]) if v)
        print(f"  labels dropped: {d['path']} holds a different photo now (was {labels})")
    if rep.labels is not None:
        _print_labels(rep.labels)


#: Rows shown under each group of refused rows (the rest are counted; --json lists them all).
SHOWN_ROWS = 3


def _print_labels(rep: Any, taxonomy: Any = None) -> None:
    """Applied and refused counts; with the library's `taxonomy`, the refused rows grouped as
    the window groups them (one line per missing category, one group per other rule), a few
    rows each, instead of one line per row (a labels CSV of 1,200 rows refused 1,200 times)."""
    print(f"labels applied to {rep.applied} images, {len(rep.errors)} rows rejected")
    if rep.added_categories:
        print(f"  added categories: {', '.join(rep.added_categories)}")
    if taxonomy is None or not rep.errors:
        for e in rep.errors:
            print(f"  line {e['line']}: {e['path']}: {e['reason']}")
        return
    from fabricsearch.services.labels import summarise_labels

    summary = summarise_labels(rep, taxonomy)
    by_line = {int(e.get("line") or 0): e for e in rep.errors}

    def rows(errors: list[dict[str, Any]]) -> None:
        for e in errors[:SHOWN_ROWS]:
            print(f"      line {e['line']}: {e['path']}")
        if len(errors) > SHOWN_ROWS:
            print(f"      … and {len(errors) - SHOWN_ROWS} more")

    if summary.missing:
        addable = summary.addable
        print(
            f"  {summary.missing_rows} rows name categories this library lacks"
            + (
                " (run again with --add-categories to add them and apply these rows):"
                if addable
                else ":"
            )
        )
        for m in summary.missing:
            level = "fine texture" if m.level == "fine" else "coarse category"
            why = f" — cannot be added: {m.problem}" if m.problem else ""
            print(f"    {level} {m.id}: {m.rows} rows{why}")
            key = (m.level, m.id)
            rows([e for e in rep.errors if any(tuple(x) == key for x in e.get("missing") or ())])
    for group in summary.others:
        print(f"  {len(group.rows)} rows: {group.reason}")
        rows([by_line.get(int(r.get("line") or 0), r) for r in group.rows])


@user_errors
def run_labels_import(args: argparse.Namespace) -> int:
    from fabricsearch.services.labels import import_labels

    with _open(args.library) as lib:
        rep = import_labels(lib, args.csv, add_categories=args.add_categories)
        taxonomy = lib.taxonomy
    if args.json:
        print_json(rep.to_json())
    else:
        _print_labels(rep, taxonomy)
    return 0 if not rep.errors else 1


@user_errors
def run_labels_export(args: argparse.Namespace) -> int:
    from fabricsearch.services.labels import export_labels

    with _open(args.library) as lib:
        n = export_labels(lib, args.csv)
    print(f"wrote {n} labelled images to {args.csv}")
    return 0


@user_errors
def run_info(args: argparse.Namespace) -> int:
    with _open(args.library) as lib:
        info = lib.info()
        if getattr(args, "check", False):
            info["integrity"] = lib.integrity_check()
    damaged = info.get("integrity", "ok") != "ok"
    if args.json:
        print_json(info)
        return 1 if damaged else 0
    print(f"library   {info['location']}")
    if info.get("team"):
        print(f"photos    {info['photos_root']}  (cache {info['folder']})")
    print(f"images    {info['images']}  (labelled {info['labelled']})")
    if info["splits"]:
        print("splits    " + ", ".join(f"{k} {v}" for k, v in sorted(info["splits"].items())))
    for cat, n in info["labelled_per_category"].items():
        print(f"  {cat:<32} {n}")
    print(f"failed    {len(info['failed'])}")
    for f in info["failed"][:20]:
        print(f"  {f['path']}: {f['reason']}")
    if len(info["failed"]) > 20:
        print(f"  … and {len(info['failed']) - 20} more (--json lists all)")
    print(f"models    {len(info['models'])}")
    for m in info["models"]:
        mark = "*" if m["active"] else " "
        print(f" {mark} {m['version']}  {m['method']} {m['bits']} bits")
    if "integrity" in info:
        print(f"integrity {info['integrity']}")
    return 1 if damaged else 0


@user_errors
def run_colours(args: argparse.Namespace) -> int:
    from fabricsearch.services.imports import remeasure_colours

    with _open(args.library) as lib, tqdm_progress(not args.json) as (prog, cancel):
        rep = remeasure_colours(lib, prog, cancel)
    if args.json:
        print_json(rep.to_json())
    else:
        for row in rep.skipped:
            print(f"  {row['path']}: {row['reason']}", file=sys.stderr)
        print(
            f"colours measured again: {rep.changed} changed, {rep.unchanged} unchanged, "
            f"{len(rep.skipped)} skipped"
        )
    return 0 if not rep.skipped else 1


@user_errors
def run_thumbs(args: argparse.Namespace) -> int:
    from fabricsearch.services.records import make_missing_thumbnails

    def show(exc: Exception) -> None:
        print(f"  {exc}", file=sys.stderr)

    with _open(args.library) as lib, tqdm_progress() as (prog, cancel):
        made, failed = make_missing_thumbnails(lib, prog, cancel, on_error=show)
    print(f"made {made} thumbnails, {failed} failed")
    return 0 if not failed else 1
