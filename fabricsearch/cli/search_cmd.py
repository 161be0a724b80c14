"""`fabricsearch search LIB IMAGE [-k 20] [--json]` and filters; `search LIB DIR --csv OUT`
searches with every photo of a folder and writes one CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from fabricsearch.cli.common import fail, print_json
from fabricsearch.config import SEARCH_RESULTS


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find the library images most similar to a photo")
    p.add_argument("library", help="library folder or team library URL")
    p.add_argument(
        "image",
        type=Path,
        nargs="?",
        help="query photo, or a folder of them (with --csv); optional with --text",
    )
    p.add_argument(
        "-k", type=int, default=SEARCH_RESULTS, help=f"number of results (default {SEARCH_RESULTS})"
    )
    p.add_argument("--coarse", help="filter: coarse category (major or major/minor)")
    p.add_argument("--fine", help="filter: fine texture id")
    p.add_argument("--tightness", help="filter: tightness range MIN:MAX in percent")
    p.add_argument("--colour", "--color", dest="colour", help="filter: contains this colour")
    p.add_argument("--labelled-only", action="store_true", help="filter: only labelled images")
    p.add_argument("--query-coarse", help="what you know of the query: coarse category")
    p.add_argument("--query-fine", help="what you know of the query: fine texture")
    p.add_argument("--query-tightness", type=float, help="what you know of the query: tightness %%")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--rerank",
        dest="rerank",
        action="store_true",
        default=None,
        help="re-rank the top candidates by fine-grained similarity (default)",
    )
    g.add_argument("--no-rerank", dest="rerank", action="store_false", help="pure Hamming ranking")
    p.add_argument(
        "--balance",
        type=float,
        help="colour ↔ texture balance of the re-ranking: 0 texture only (ignore colour), "
        "1 colour only, 0.5 default",
    )
    p.add_argument("--crop", help="search with this region only: X,Y,W,H in pixels of the photo")
    p.add_argument(
        "--text",
        help="only fabrics matching this text: field:value terms and free words, e.g. "
        '"supplier:Acme composition:wool" (without a photo: list them); a text starting '
        "with '-' is taken too (--text -wool, or --text=-wool)",
    )
    p.add_argument(
        "--csv",
        type=Path,
        help="write the results as CSV (query, rank, match, score, breakdown); needed for a folder",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)
    _OPTIONS.update(p._option_string_actions)


#: The search command's option strings (`add_parsers` fills it), for `glue_text_value`.
_OPTIONS: set[str] = set()


def glue_text_value(argv: list[str]) -> list[str]:
    """``search … --text -wool`` → ``--text=-wool``: argparse takes a value that starts with
    '-' for an option and stops with "expected one argument", but a search text may start
    with one. A value that is one of the search options (``--text --json``: the text was
    left out) is left alone, so that mistake is still reported."""
    if "search" not in argv or "--text" not in argv:
        return argv
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg, value = argv[i], argv[i + 1] if i + 1 < len(argv) else ""
        if arg == "--":
            out += argv[i:]
            break
        if arg == "--text" and value[:1] == "-" and len(value) > 1 and not _is_option(value):
            out.append(f"--text={value}")
            i += 2
            continue
        out.append(arg)
        i += 1
    return out


def _is_option(arg: str) -> bool:
    name = arg.split("=", 1)[0]
    if name in _OPTIONS:
        return True
    # argparse also takes an unambiguous start of a long option (--js for --json).
    return name.startswith("--") and any(o.startswith(name) for o in _OPTIONS)


CSV_FIELDS = (
    "query",
    "rank",
    "match",
    "score",
    "similarity",
    "hamming",
    "colour",
    "coarse",
    "fine",
    "tightness",
)


def _csv_rows(result, metadata=None) -> list[list[object]]:  # noqa: ANN001 - a SearchResult
    from fabricsearch.catalogue.metadata import FabricMetadata
    from fabricsearch.services.records import metadata_cells

    metadata = metadata or {}

    def f(x: float | None) -> str:
        return "" if x is None else f"{x:.4f}"

    return [
        [
            result.query,
            h.rank,
            str(h.path),
            f"{h.score:.4f}",
            f"{h.similarity:.4f}",
            h.hamming,
            *(f(h.breakdown.get(c)) for c in ("colour", "coarse", "fine", "tightness")),
            *metadata_cells(metadata.get(h.image_id, FabricMetadata())),
        ]
        for h in result.hits
    ]


def write_results_csv(path: Path, results: list, metadata: dict | None = None) -> int:
    """One row per (query, hit), queries in the given order, with each match's metadata
    (`metadata`: image id → `FabricMetadata`); returns the number of rows."""
    import csv

    from fabricsearch.catalogue.metadata import FIELDS

    rows = [row for r in results for row in _csv_rows(r, metadata)]
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*CSV_FIELDS, *FIELDS])
        writer.writerows(rows)
    return len(rows)


def _filters(args: argparse.Namespace, lib=None):  # noqa: ANN001, ANN202 - SearchFilters
    from fabricsearch.services.search import SearchError, SearchFilters, TextQueryError

    image_ids = None
    if args.text and lib is not None:
        try:
            image_ids = frozenset(lib.text_search(args.text))
        except TextQueryError as exc:
            raise SearchError(str(exc)) from None

    tmin = tmax = None
    if args.tightness:
        try:
            lo, _, hi = args.tightness.partition(":")
            tmin = float(lo) if lo else None
            tmax = float(hi) if hi else None
        except ValueError:
            raise SearchError(
                f"--tightness wants MIN:MAX in percent, got {args.tightness!r}"
            ) from None
    major = minor = None
    if args.coarse:
        if "/" in args.coarse:
            minor = args.coarse
        else:
            major = args.coarse
    return SearchFilters(
        coarse_major=major,
        coarse_minor=minor,
        fine=args.fine,
        tightness_min=tmin,
        tightness_max=tmax,
        contains_colour=args.colour,
        labelled_only=args.labelled_only,
        image_ids=image_ids,
    )


def _run_batch(args: argparse.Namespace) -> int:
    """Every photo of a folder (sorted, sub-folders included) as a query → one CSV."""
    from fabricsearch.catalogue import LibraryError
    from fabricsearch.cli.libraries import open_library
    from fabricsearch.services.search import (
        QueryLabels,
        Searcher,
        SearchError,
        ensure_codes,
        is_image_path,
        parse_crop,
    )

    if args.csv is None:
        return fail(f"{args.image} is a folder: add --csv OUT to write one CSV for all its photos")
    queries = sorted(p for p in args.image.rglob("*") if p.is_file() and is_image_path(p))
    results, failed = [], []
    try:
        crop = parse_crop(args.crop) if args.crop else None
        with open_library(args.library) as lib:
            searcher = Searcher(lib)
            ensure_codes(searcher)  # the few images an interrupted import left unsearchable
            filters = _filters(args, lib)
            for q in queries:
                try:
                    results.append(
                        searcher.search(
                            q,
                            k=args.k,
                            filters=filters,
                            query_labels=QueryLabels(
                                args.query_coarse, args.query_fine, args.query_tightness
                            ),
                            rerank=args.rerank,
                            balance=args.balance,
                            crop=crop,
                        )
                    )
                except SearchError as exc:  # one bad photo does not stop the batch
                    failed.append({"query": str(q), "reason": str(exc)})
            metadata = lib.metadata({h.image_id for r in results for h in r.hits})
    except (LibraryError, SearchError) as exc:
        return fail(str(exc))
    rows = write_results_csv(args.csv, results, metadata)
    summary = {
        "queries": len(queries),
        "searched": len(results),
        "rows": rows,
        "csv": str(args.csv),
        "failed": failed,
    }
    if args.json:
        print_json(summary)
    else:
        print(f"{len(results)} of {len(queries)} queries, {rows} rows → {args.csv}")
        for f in failed:
            print(f"  failed: {f['query']}: {f['reason']}")
    return 0 if results or not queries else 1


def run(args: argparse.Namespace) -> int:
    from fabricsearch.catalogue import LibraryError
    from fabricsearch.cli.libraries import open_library
    from fabricsearch.services.search import (
        QueryLabels,
        Searcher,
        SearchError,
        ensure_codes,
        palette_report,
        parse_crop,
    )

    if args.image is None:
        return _run_text_listing(args)
    if args.image.is_dir():
        return _run_batch(args)
    try:
        crop = parse_crop(args.crop) if args.crop else None
        with open_library(args.library) as lib:
            searcher = Searcher(lib)
            ensure_codes(searcher)  # the few images an interrupted import left unsearchable
            result = searcher.search(
                args.image,
                k=args.k,
                filters=_filters(args, lib),
                query_labels=QueryLabels(args.query_coarse, args.query_fine, args.query_tightness),
                rerank=args.rerank,
                balance=args.balance,
                crop=crop,
            )
            metadata = lib.metadata(h.image_id for h in result.hits)
    except (LibraryError, SearchError) as exc:
        return fail(str(exc))
    if args.csv is not None:
        write_results_csv(args.csv, [result], metadata)
    if args.json:
        print_json(_json_with_metadata(result.to_json(), metadata, args.text))
        return 0
    print(f"query: {result.query}   model: {result.model} ({result.bits} bits)")
    print(
        "colours: "
        + ", ".join(f"{c['name']} {c['proportion']:.0%}" for c in palette_report(result.palette))
    )
    print(
        f"{'#':>3}  {'ham':>4}  {'sim':>5}  {'colour':>6} {'coarse':>6} {'fine':>5} {'tight':>5}  path"
    )
    for h in result.hits:
        b = h.breakdown

        def f(key: str, hit=h, b=b) -> str:  # noqa: ANN001 - the loop's hit
            x = b[key]
            if x is None:
                return "  -  "
            if key in hit.predicted:  # a predicted label: what it weighs, marked "~"
                return f"~{x * hit.predicted[key]:.2f}"
            return f"{x:.2f}"

        mark = ""
        if h.exact:
            mark = "  (this photo)"
        elif h.same_fabric and h.matched_points:
            mark = f"  (same fabric, {h.matched_points} points match)"
        elif h.same_fabric and h.feature_similarity is not None:
            mark = f"  (same fabric, {h.feature_similarity:.2f})"
        print(
            f"{h.rank:>3}  {h.hamming:>4}  {h.similarity:5.3f}  {f('colour'):>6} "
            f"{f('coarse'):>6} {f('fine'):>5} {f('tightness'):>5}  {h.path}" + mark
        )
    if result.predicted and any(h.predicted for h in result.hits):
        p = result.predicted
        guesses = [
            f"{k} {p[k]} ({float(p[f'{k}_confidence'] or 0):.0%})"  # type: ignore[arg-type]
            for k in ("coarse", "fine")
            if p.get(k)
        ]
        print("~ predicted by the model, weighed by its confidence: " + ", ".join(guesses))
    t = result.elapsed_ms
    print(f"{len(result.hits)} results in {t.get('total', 0):.0f} ms")
    if result.unsearchable:
        print(
            f"{result.unsearchable} photos have no code under the model yet and were not "
            "searched: `fabricsearch encode LIB` encodes them"
        )
    return 0


def _json_with_metadata(out: dict, metadata: dict, text: str | None) -> dict:
    """A search's JSON with each result's ``metadata`` (and the ``text`` asked for)."""
    from fabricsearch.catalogue.metadata import FabricMetadata

    for r in out["results"]:
        r["metadata"] = metadata.get(r["id"], FabricMetadata()).to_json()
    if text is not None:
        out["text"] = text
    return out


def _run_text_listing(args: argparse.Namespace) -> int:
    """``search LIB --text ...`` without a photo: the matching fabrics, by path, in the photo
    search's JSON form (no scores: ``hamming``, ``similarity`` and ``score`` are null)."""
    import time

    from fabricsearch.catalogue import Library, LibraryError
    from fabricsearch.services.search import TextQueryError

    if not args.text:
        return fail("give a query photo, --text, or both")
    if any((args.coarse, args.fine, args.tightness, args.colour, args.labelled_only, args.crop)):
        return fail(
            "--coarse/--fine/--tightness/--colour/--labelled-only/--crop need a query photo; "
            'without one, put them in the text (e.g. --text "coarse:plaid fine:twill")'
        )
    t0 = time.perf_counter()
    try:
        with Library.open(args.library) as lib:
            ids = lib.text_search(args.text)
            records = sorted(lib.images(ids), key=lambda r: str(r.path))
            total = len(records)
            records = records[: args.k]
            metadata = lib.metadata(r.id for r in records)
    except (LibraryError, TextQueryError) as exc:
        return fail(str(exc))
    hits = [
        {
            "rank": rank,
            "id": r.id,
            "path": str(r.path),
            "hamming": None,
            "similarity": None,
            "score": None,
            "breakdown": {},
            "labels": {"coarse": r.coarse, "fine": r.fine, "tightness": r.tightness},
            "exact": False,
        }
        for rank, r in enumerate(records, start=1)
    ]
    out = {
        "query": None,
        "model": None,
        "bits": None,
        "reranked": False,
        "colours": [],
        "results": hits,
        "elapsed_ms": {"total": round((time.perf_counter() - t0) * 1e3, 2)},
        "matches": total,
    }
    out = _json_with_metadata(out, metadata, args.text)
    if args.csv is not None:
        _write_listing_csv(args.csv, records, metadata)
    if args.json:
        print_json(out)
        return 0
    for h in out["results"]:
        m = h["metadata"]
        extra = "  ".join(str(m[k]) for k in ("article", "supplier", "composition") if m[k])
        print(f"{h['rank']:>4}  {h['path']}" + (f"  ({extra})" if extra else ""))
    shown = f", {len(hits)} shown" if len(hits) < total else ""
    print(f"{total} fabrics match {args.text!r}{shown}")
    return 0


def _write_listing_csv(path: Path, records: list, metadata: dict) -> None:
    import csv

    from fabricsearch.catalogue.metadata import FIELDS
    from fabricsearch.services.records import csv_cell as _escape
    from fabricsearch.services.records import metadata_cells

    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "match", "coarse", "fine", "tightness", *FIELDS])
        for rank, r in enumerate(records, start=1):
            tightness = "" if r.tightness is None else r.tightness
            labels = [r.coarse or "", r.fine or "", tightness]
            w.writerow([rank, _escape(str(r.path)), *labels, *metadata_cells(metadata[r.id])])
