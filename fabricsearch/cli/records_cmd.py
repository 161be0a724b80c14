"""Fabric records: ``meta import|export|show``, ``remove``, ``relocate``, ``taxonomy``."""

from __future__ import annotations

import argparse
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
        "their labels, metadata and codes go with them. Files are never deleted; importing "
        "their folder again adds them back, unlabelled.",
    )
    p.add_argument("library", metavar="LIB")
    p.add_argument("paths", metavar="PATH", nargs="+")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run_remove)

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


def _open(path: str) -> Any:
    from fabricsearch.catalogue import Library

    return Library.open(path)


@user_errors
def run_meta_import(args: argparse.Namespace) -> int:
    from fabricsearch.catalogue.metadata_csv import MetadataCsvError, import_metadata

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
    from fabricsearch.catalogue.metadata_csv import export_metadata

    with _open(args.library) as lib:
        n = export_metadata(lib, args.csv)
    print(f"wrote the metadata of {n} images to {args.csv}")
    return 0


@user_errors
def run_remove(args: argparse.Namespace) -> int:
    with _open(args.library) as lib:
        rep = lib.remove_paths(args.paths)
    if args.json:
        print_json(rep.to_json())
    else:
        labelled = sum(1 for r in rep.removed if r["labelled"])
        print(f"removed {len(rep.removed)} images ({labelled} labelled); files left on disk")
        for p in rep.not_found:
            print(f"  not in the library: {p}")
    return 0 if not rep.not_found else 1


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
    from fabricsearch.taxonomy import TaxonomyError

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
