"""`fabricsearch search LIB IMAGE [-k 20] [--json]` and filters; `search LIB DIR --csv OUT`
searches with every photo of a folder and writes one CSV."""

from __future__ import annotations

import argparse
from pathlib import Path

from fabricsearch.cli.common import fail, print_json


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("search", help="find the library images most similar to a photo")
    p.add_argument("library", type=Path, help="library folder")
    p.add_argument("image", type=Path, help="query photo, or a folder of them (with --csv)")
    p.add_argument("-k", type=int, default=20, help="number of results (default 20)")
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
        "--csv",
        type=Path,
        help="write the results as CSV (query, rank, match, score, breakdown); needed for a folder",
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=run)


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


def _csv_rows(result) -> list[list[object]]:  # noqa: ANN001 - a SearchResult
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
        ]
        for h in result.hits
    ]


def write_results_csv(path: Path, results: list) -> int:
    """One row per (query, hit), queries in the given order; returns the number of rows."""
    import csv

    rows = [row for r in results for row in _csv_rows(r)]
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS)
        writer.writerows(rows)
    return len(rows)


def _filters(args: argparse.Namespace):  # noqa: ANN202 - returns SearchFilters
    from fabricsearch.search import SearchError, SearchFilters

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
    )


def _run_batch(args: argparse.Namespace) -> int:
    """Every photo of a folder (sorted, sub-folders included) as a query → one CSV."""
    from fabricsearch.catalogue import Library, LibraryError
    from fabricsearch.imaging import is_image_path
    from fabricsearch.search import QueryLabels, Searcher, SearchError, parse_crop

    if args.csv is None:
        return fail(f"{args.image} is a folder: add --csv OUT to write one CSV for all its photos")
    queries = sorted(p for p in args.image.rglob("*") if p.is_file() and is_image_path(p))
    results, failed = [], []
    try:
        crop = parse_crop(args.crop) if args.crop else None
        with Library.open(args.library) as lib:
            searcher = Searcher(lib)
            for q in queries:
                try:
                    results.append(
                        searcher.search(
                            q,
                            k=args.k,
                            filters=_filters(args),
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
    except (LibraryError, SearchError) as exc:
        return fail(str(exc))
    rows = write_results_csv(args.csv, results)
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
    from fabricsearch.catalogue import Library, LibraryError
    from fabricsearch.colour import palette_report
    from fabricsearch.search import QueryLabels, Searcher, SearchError, parse_crop

    if args.image.is_dir():
        return _run_batch(args)
    try:
        crop = parse_crop(args.crop) if args.crop else None
        with Library.open(args.library) as lib:
            result = Searcher(lib).search(
                args.image,
                k=args.k,
                filters=_filters(args),
                query_labels=QueryLabels(args.query_coarse, args.query_fine, args.query_tightness),
                rerank=args.rerank,
                balance=args.balance,
                crop=crop,
            )
    except (LibraryError, SearchError) as exc:
        return fail(str(exc))
    if args.csv is not None:
        write_results_csv(args.csv, [result])
    if args.json:
        print_json(result.to_json())
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

        def f(x: float | None) -> str:
            return "  -  " if x is None else f"{x:.2f}"

        print(
            f"{h.rank:>3}  {h.hamming:>4}  {h.similarity:5.3f}  {f(b['colour']):>6} "
            f"{f(b['coarse']):>6} {f(b['fine']):>5} {f(b['tightness']):>5}  {h.path}"
            + ("  (this photo)" if h.exact else "")
        )
    t = result.elapsed_ms
    print(f"{len(result.hits)} results in {t.get('total', 0):.0f} ms")
    return 0
