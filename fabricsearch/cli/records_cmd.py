"""Fabric records: ``meta import|export|show``, ``remove``, ``restore``, ``relocate``,
``taxonomy``."""

from __future__ import annotations

import argparse
import shlex
import sys
from typing import Any

from fabricsearch.cli.common import UserError, print_json, tqdm_progress, user_errors


def add_parsers(subparsers: Any) -> None:
    p = subparsers.add_parser("meta", help="fabric metadata (article, supplier, composition, …)")
    sub = p.add_subparsers(dest="meta_command", metavar="ACTION", required=True)
    q = sub.add_parser(
        "import",
        help="apply a metadata CSV: a path column and any of article, supplier, composition, "
        "weight, width, price, season, notes, tags",
    )
    q.add_argument("library", metavar="LIB")
    q.add_argument("csv", metavar="CSV")
    q.add_argument("--json", action="store_true", help="print a JSON summary")
    q.set_defaults(func=run_meta_import)
    q = sub.add_parser("export", help="write the metadata of every image that has some to a CSV")
    q.add_argument("library", metavar="LIB")
    q.add_argument("csv", metavar="CSV")
    q.set_defaults(func=run_meta_export)

    p = subparsers.add_parser(
        "remove",
        help="remove images from the library (the files stay on disk)",
        description="Forget the images at PATH (a photo, or a folder: every image under it): "
        "their labels, metadata and codes go with them. Files are never deleted. Removing "
        f"more than {CONFIRM_ABOVE} images or any labelled one asks first (--yes: do not "
        "ask; without a terminal, only --yes removes them). What is removed is saved in the "
        "library's removed/ folder: `fabricsearch restore LIB FILE` puts it back.",
    )
    p.add_argument("library", metavar="LIB")
    p.add_argument("paths", metavar="PATH", nargs="+")
    p.add_argument("--yes", action="store_true", help="remove without asking")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_remove)

    p = subparsers.add_parser(
        "restore",
        help="put back images that `remove` removed (from its file in LIB/removed/)",
        description="Restore the images, labels, metadata, codes and label history saved by a "
        "`remove` in FILE (in the library's removed/ folder), under their old ids where "
        "those are free. Images whose path or photo is in the library again are skipped.",
    )
    p.add_argument("library", metavar="LIB")
    p.add_argument("record", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_restore)

    p = subparsers.add_parser(
        "relocate",
        help="point images under OLD_PREFIX at NEW_PREFIX (a moved folder), checking content",
        description="For every image under OLD_PREFIX, use the same relative path under "
        "NEW_PREFIX if the file there has the same content (sha256). All verified images move "
        "in one step; the others are listed and stay.",
    )
    p.add_argument("library", metavar="LIB")
    p.add_argument("old", metavar="OLD_PREFIX")
    p.add_argument("new", metavar="NEW_PREFIX")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_relocate)

    p = subparsers.add_parser(
        "taxonomy",
        help="show or edit the library's categories (add, rename, merge, retire)",
        description="Ids are stable: rename changes the display name; merge relabels the "
        "source's images with the target and retires the source; a retired category is kept "
        "for the models trained on it but refused as a new label.",
    )
    sub = p.add_subparsers(dest="taxonomy_command", metavar="ACTION", required=True)
    q = sub.add_parser("show", help="list the categories (retired ones marked)")
    q.add_argument("library", metavar="LIB")
    q.add_argument("--json", action="store_true", help="print the taxonomy as JSON")
    q.set_defaults(func=run_taxonomy_show)
    for action, help_text in (
        ("add", "add a category: coarse MAJOR or MAJOR/MINOR, or fine ID"),
        ("rename", "give a category a new display name"),
        ("merge", "relabel SOURCE's images with TARGET and retire SOURCE"),
        ("retire", "retire an unused category (or clear its labels: --clear-labels)"),
    ):
        q = sub.add_parser(action, help=help_text)
        q.add_argument("library", metavar="LIB")
        q.add_argument("kind", choices=("coarse", "fine"))
        q.add_argument("category", metavar="ID" if action != "merge" else "SOURCE")
        if action == "add":
            q.add_argument("--name", help="display name (default: the id)")
        elif action == "rename":
            q.add_argument("name", metavar="NAME")
        elif action == "merge":
            q.add_argument("target", metavar="TARGET")
        else:
            q.add_argument(
                "--clear-labels", action="store_true", help="unlabel the images that use it"
            )
        q.add_argument("--json", action="store_true", help="print JSON")
        q.set_defaults(func=run_taxonomy_edit, action=action)


#: `remove` asks before removing more images than this, or any labelled one.
CONFIRM_ABOVE = 10


def _open(path: str) -> Any:
    from fabricsearch.catalogue import Library

    return Library.open(path)


@user_errors
def run_meta_import(args: argparse.Namespace) -> int:
    from fabricsearch.services.records import MetadataCsvError, import_metadata

    try:
        with _open(args.library) as lib:
            rep = import_metadata(lib, args.csv)
    except MetadataCsvError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json(rep.to_json())
    else:
        print(
            f"metadata applied to {rep.applied} images ({', '.join(rep.fields) or 'no fields'}), "
            f"{len(rep.errors)} rows rejected"
        )
        for e in rep.errors:
            print(f"  line {e['line']}: {e['path']}: {e['reason']}")
    return 0 if not rep.errors else 1


@user_errors
def run_meta_export(args: argparse.Namespace) -> int:
    from fabricsearch.services.records import export_metadata

    with _open(args.library) as lib:
        n = export_metadata(lib, args.csv)
    print(f"wrote the metadata of {n} images to {args.csv}")
    return 0


@user_errors
def run_remove(args: argparse.Namespace) -> int:
    with _open(args.library) as lib:
        rep = lib.remove_paths(args.paths, dry_run=True)
        n, labelled = len(rep.removed), rep.labelled
        if n and (n > CONFIRM_ABOVE or labelled) and not args.yes:
            what = f"{n} image{'s' * (n != 1)} ({labelled} labelled)"
            if not _can_ask():
                if args.json:
                    print_json({**rep.to_json(), "removed": [], "would_remove": rep.removed})
                else:
                    _list("would remove", [r["path"] for r in rep.removed])
                raise UserError(
                    f"nothing removed: this would remove {what} from {lib.location};"
                    " run again with --yes to remove them (they can be restored afterwards"
                    " with `fabricsearch restore`)"
                )
            _list("to remove", [r["path"] for r in rep.removed], sys.stderr)
            if not _ask(f"Remove {what} from {lib.location}? The files stay on disk."):
                raise UserError("nothing removed")
        if n:
            rep = lib.remove_paths(args.paths)
    if args.json:
        print_json(rep.to_json())
    else:
        print(f"removed {len(rep.removed)} images ({rep.labelled} labelled); files left on disk")
        if rep.record:
            print(f"  saved to {rep.record}; to undo:")
            print(f"  fabricsearch restore {shlex.quote(args.library)} {shlex.quote(rep.record)}")
        for p in rep.not_found:
            print(f"  not in the library: {p}")
    return 0 if not rep.not_found else 1


def _can_ask() -> bool:
    return _is_terminal(sys.stdin) and _is_terminal(sys.stderr)


def _ask(question: str) -> bool:
    """y/N on the terminal."""
    sys.stderr.write(f"{question} [y/N] ")
    sys.stderr.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _list(label: str, paths: list[str], stream: Any = None) -> None:
    for p in paths[:20]:
        print(f"  {label}: {p}", file=stream or sys.stdout)
    if len(paths) > 20:
        print(f"  … and {len(paths) - 20} more", file=stream or sys.stdout)


@user_errors
def run_restore(args: argparse.Namespace) -> int:
    from fabricsearch.services.records import restore_removed

    with _open(args.library) as lib, tqdm_progress(not args.json) as (prog, cancel):
        rep, encoded = restore_removed(lib, args.record, progress=prog, cancel=cancel)
    if args.json:
        print_json({**rep.to_json(), "encoded": encoded})
    else:
        labelled = sum(1 for r in rep.restored if r["labelled"])
        print(
            f"restored {len(rep.restored)} images ({labelled} labelled), "
            f"{len(rep.renumbered)} under new ids, {len(rep.skipped)} skipped, encoded {encoded}"
        )
        for s in rep.skipped[:20]:
            print(f"  skipped: {s['path']}: {s['reason']}")
        if len(rep.skipped) > 20:
            print(f"  … and {len(rep.skipped) - 20} more skipped (--json lists all)")
    return 0 if not rep.skipped else 1


@user_errors
def run_relocate(args: argparse.Namespace) -> int:
    with _open(args.library) as lib, tqdm_progress(not args.json) as (prog, cancel):
        rep = lib.relocate(args.old, args.new, progress=prog, cancel=cancel)
    if args.json:
        print_json(rep.to_json())
    else:
        print(
            f"relocated {len(rep.moved)} images; {len(rep.missing)} not found under "
            f"{args.new}, {len(rep.different)} with different content, {len(rep.taken)} "
            "whose new path is another image's"
        )
        for label, paths in (
            ("not found", rep.missing),
            ("different content", rep.different),
            ("path taken", rep.taken),
        ):
            for p in paths[:20]:
                print(f"  {label}: {p}")
            if len(paths) > 20:
                print(f"  … and {len(paths) - 20} more {label} (--json lists all)")
    return 0 if not (rep.missing or rep.different or rep.taken) else 1


@user_errors
def run_taxonomy_show(args: argparse.Namespace) -> int:
    with _open(args.library) as lib:
        tax = lib.taxonomy
        counts = lib.label_counts()
    if args.json:
        print_json(tax.to_dict())
        return 0

    def mark(cid: str, fine: bool = False) -> str:
        if not tax.is_retired(cid, fine=fine):
            return ""
        target = (tax.retired_fine if fine else tax.retired_coarse).get(cid)
        return f"  (retired{', merged into ' + target if target else ''})"

    print("coarse")
    for major in tax.majors:
        print(f"  {major:<28} {tax.major_names[major]}{mark(major)}  [{counts.get(major, 0)}]")
        for m in tax.minors_of(major):
            print(f"    {m:<26} {tax.minor_names[m]}{mark(m)}  [{counts.get(m, 0)}]")
    print("fine")
    for f in tax.fine:
        print(f"  {f:<28} {tax.fine_names[f]}{mark(f, fine=True)}")
    return 0


@user_errors
def run_taxonomy_edit(args: argparse.Namespace) -> int:
    from fabricsearch.services.records import TaxonomyError

    try:
        with _open(args.library) as lib:
            if args.action == "add":
                change = lib.taxonomy_add(args.kind, args.category, args.name)
            elif args.action == "rename":
                change = lib.taxonomy_rename(args.kind, args.category, args.name)
            elif args.action == "merge":
                change = lib.taxonomy_merge(args.kind, args.category, args.target)
            else:
                change = lib.taxonomy_retire(args.kind, args.category, args.clear_labels)
    except TaxonomyError as exc:
        raise UserError(str(exc)) from exc
    if args.json:
        print_json(change.to_json())
    else:
        print(f"{change.description}; {len(change.relabelled)} images relabelled")
    return 0
