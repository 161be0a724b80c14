"""Fabric metadata as CSV: a ``path`` column and any of the fields of `metadata.FIELDS`.

Import: header required (UTF-8, with or without BOM), columns in any order and case. A row
sets the fields its file has columns for; an empty cell clears that field (so an export
edited and imported again is exact), and fields without a column are left as they are.
Paths are relative to the CSV's folder or absolute. A row naming an image not in the
library, a repeated image, or a value that does not fit its field (``weight`` not a number,
a negative price) is reported with its line number and nothing of it is written; every other
row is applied in one transaction. Export writes the images that have metadata, escaping
cells a spreadsheet would run as a formula (as the labels CSV does).

A text cell may hold line breaks (quoted, as export writes them), but a file is refused with
`MetadataCsvError`, nothing applied, when a quoted cell runs on over lines that look like rows
of their own (they name an image of the library: a missing closing quote swallowed them) or
over the path column, and for the same unreadable files as the labels CSV
(`labels_csv.read_csv_text`).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch.catalogue.labels_csv import (
    CsvRow,
    _escape,
    _fmt,
    _unescape,
    find_image,
    open_csv,
)
from fabricsearch.catalogue.library import Library
from fabricsearch.catalogue.metadata import FIELDS, MetadataError, check_value
from fabricsearch.errors import UserError


class MetadataCsvError(UserError, ValueError):
    """A CSV that cannot be read as metadata at all (no path column, unknown columns)."""


@dataclass
class MetadataReport:
    applied: int = 0
    fields: list[str] = field(default_factory=list)  # the columns the file set
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line", "path", "reason"}
    #: image id → the values the import replaced (`Library.set_metadata_rows` undoes it)
    replaced: dict[int, dict[str, Any]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"applied": self.applied, "fields": list(self.fields), "errors": list(self.errors)}


def import_metadata(
    lib: Library, csv_path: str | os.PathLike[str], who: str | None = None
) -> MetadataReport:
    """Apply a metadata CSV to ``lib``; see the module docstring for the rules."""
    lib.require_writable("import metadata")
    csv_path = Path(csv_path)
    base = csv_path.resolve().parent
    who = who if who is not None else f"csv:{csv_path.name}"
    header, reader = open_csv(csv_path, MetadataCsvError, "a header with a path column")
    names = [h.strip().lower() for h in header]
    unknown = [h for h, n in zip(header, names, strict=True) if n != "path" and n not in FIELDS]
    if "path" not in names or unknown or len(set(names)) != len(names):
        problem = (
            "no path column"
            if "path" not in names
            else f"unknown columns {', '.join(unknown)}"
            if unknown
            else "a column appears twice"
        )
        raise MetadataCsvError(
            f"{csv_path}: {problem}; expected path and any of {', '.join(FIELDS)}"
        )
    rep = MetadataReport(fields=[n for n in names if n != "path"])
    rows: dict[int, dict[str, Any]] = {}
    first_line: dict[int, int] = {}
    at = names.index("path")
    for row in reader:
        cells, line = row.cells, row.line
        if row.end > row.line:
            _check_line_breaks(lib, csv_path, base, names, row)
        if not any(c.strip() for c in cells):
            continue
        path_cell = _unescape(cells[at].strip()) if at < len(cells) else ""

        def bad(reason: str, line: int = line, path: str = path_cell) -> None:
            rep.errors.append({"line": line, "path": path, "reason": reason})

        if len(cells) != len(names):
            bad(f"{len(cells)} cells, expected {len(names)}")
            continue
        if not path_cell:
            bad("empty path")
            continue
        rec, missing = find_image(lib, base, path_cell)
        if rec is None:
            bad(missing)
            continue
        if rec.id in first_line:
            bad(f"image already given on line {first_line[rec.id]}")
            continue
        values: dict[str, Any] = {}
        try:
            for name, cell in zip(names, cells, strict=True):
                if name != "path":
                    values[name] = check_value(name, _unescape(cell.strip()))
        except MetadataError as exc:
            bad(str(exc))
            continue
        first_line[rec.id] = line
        rows[rec.id] = values
    if rows:
        rep.replaced = lib.set_metadata_rows(rows, who=who)
    rep.applied = len(rows)
    return rep


def _check_line_breaks(
    lib: Library, csv_path: Path, base: Path, names: list[str], row: CsvRow
) -> None:
    """Refuse a row whose quoted cells run over lines when that cannot be a note with line
    breaks: the path cell has one, or a line inside a cell reads as a row naming an image of
    the library (a closing quote is missing and the rows after it were taken in)."""
    at = names.index("path")
    where = f"{csv_path} line {row.line}: a quoted cell runs on to line {row.end}"
    if at < len(row.cells) and any(ch in row.cells[at] for ch in "\r\n"):
        raise MetadataCsvError(
            f"{where} across the path column (is its closing quote missing?); nothing was imported"
        )
    for name, cell in zip(names, row.cells, strict=False):
        for text in cell.splitlines()[1:]:
            try:
                parts = next(csv.reader([text]), [])
            except csv.Error:
                continue
            # A row has a path and at least one field: a note line naming one photo is not.
            if len(parts) < 2 or at >= len(parts) or not parts[at].strip():
                continue
            rec, _ = find_image(lib, base, _unescape(parts[at].strip()))
            if rec is not None:
                raise MetadataCsvError(
                    f"{where}, and its {name} takes in what looks like the row of "
                    f"{parts[at].strip()} (is a closing quote missing?); nothing was imported"
                )


def export_metadata(lib: Library, csv_path: str | os.PathLike[str]) -> int:
    """Write every image that has metadata (path + all fields); returns the number of rows.
    Paths are relative to the CSV's folder where the image lies under it, else absolute."""
    csv_path = Path(csv_path)
    base = csv_path.resolve().parent
    meta = lib.metadata()
    records = sorted(lib.images(sorted(meta)), key=lambda r: str(r.path))
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", *FIELDS])
        for r in records:
            try:
                path = r.path.relative_to(base).as_posix()
            except ValueError:
                path = str(r.path)
            w.writerow([_escape(path), *metadata_cells(meta[r.id])])
    os.replace(tmp, csv_path)
    return len(records)


def metadata_cells(m: Any) -> list[str]:
    """One `FabricMetadata` as CSV cells in `FIELDS` order (numbers exact, text escaped)."""
    out = []
    for name, kind in FIELDS.items():
        v = getattr(m, name)
        if kind == "number":
            out.append(_fmt(v))
        elif kind == "tags":
            out.append(_escape(", ".join(v)))
        else:
            out.append(_escape(v or ""))
    return out
