"""Labels as CSV: ``path,coarse,fine,tightness``.

``coarse`` is ``major/minor`` or ``major``; an empty cell means unknown (and a row sets all
three fields, so an empty cell clears a label). Paths are relative to the CSV's folder or
absolute. Bad rows (unknown category, image not in the library, tightness outside 0–100,
repeated path) are reported with their line number and nothing of them is written, not even
a category they would add with ``--add-categories``; all good rows are applied in one
transaction. Tightness is a plain ASCII number (`parse_tightness`). Export escapes cells that a
spreadsheet would run as a formula (leading ``'``), and import undoes that escape.

A file that cannot be read as a whole is refused with `LabelsCsvError` and nothing is applied:
not a regular file (a folder, pipe or device), over `MAX_CSV_BYTES`, not UTF-8 text, a NUL
byte, a malformed row (an unclosed quote, reported on the line it opens), or a quoted cell
running over several lines (no label has a line break: it would have swallowed the rows after
it).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch import safeio
from fabricsearch.atomicio import atomic_write
from fabricsearch.catalogue.library import Library, normalise_path
from fabricsearch.errors import UserError
from fabricsearch.taxonomy import Taxonomy, TaxonomyError, split_coarse

COLUMNS = ("path", "coarse", "fine", "tightness")

#: A tightness cell: ASCII decimal digits with an optional sign, fraction and exponent (export
#: writes `repr`, e.g. "1e-05"). Python's float() also takes "5_0", full-width digits "５０",
#: "inf" and "nan"; none of them is a tightness anybody meant to type.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Cells a spreadsheet would run as a formula (CSV injection); export prefixes them with "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


#: Largest CSV file read (a labels CSV of a million photos is about 60 MB). A single cell is
#: bounded by the csv module's field limit (131,072 characters), reported as a bad line.
MAX_CSV_BYTES = 200 * 1024 * 1024


@dataclass(frozen=True)
class CsvRow:
    """One CSV record: the physical lines it starts and ends on (more than one only when a
    quoted cell holds a line break) and its cells."""

    line: int
    end: int
    cells: list[str]


def read_csv_text(csv_path: Path, error: type[ValueError]) -> str:
    """The text of a UTF-8 CSV file (Excel's byte-order mark allowed); `error` with a plain
    message for a path that is not a regular file (a folder, a pipe, a device: checked before
    opening, so a FIFO cannot hang the import; `safeio.read_regular_file`), a file over `MAX_CSV_BYTES`, one that is not
    UTF-8 text, or one holding a NUL byte (a binary or UTF-16 file)."""
    try:
        data = safeio.read_regular_file(csv_path, MAX_CSV_BYTES)
    except safeio.NotRegularFileError as exc:
        if exc.is_dir:
            raise error(f"{csv_path} is a folder, not a CSV file") from exc
        raise error(
            f"{csv_path} is not a regular file (a pipe or a device?); give a CSV file"
        ) from exc
    except safeio.FileTooLargeError as exc:
        raise error(
            f"{csv_path} is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB: "
            "too large for a labels or metadata CSV"
        ) from exc
    except OSError as exc:
        raise error(f"cannot read {csv_path}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")  # utf-8-sig: Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise error(f"{csv_path} is not a UTF-8 text CSV file") from exc
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        raise error(
            f"{csv_path} line {line}: holds a NUL byte, which a text CSV never has "
            "(saved as UTF-16 or binary?); save it as CSV UTF-8"
        )
    return text


def open_csv(
    csv_path: Path, error: type[ValueError], expected: str
) -> tuple[list[str], Iterator[CsvRow]]:
    """A UTF-8 CSV file → (header, its other rows as `CsvRow`); `error` with a plain message
    when it cannot be read (`read_csv_text`) or is empty (`expected` names the header that
    was wanted). Reading the rows raises `error` with the line number for a malformed CSV,
    such as a quote that is never closed (reported on the line the quoted cell starts on).
    Shared by the labels and metadata CSVs."""
    text = read_csv_text(csv_path, error)
    # strict: a stray quote after a closing one, or a quoted cell still open at the end of the
    # file, is an error rather than text silently taken into one cell.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)

    def fail(exc: csv.Error, line: int) -> ValueError:
        hint = ""
        if "end of data" in str(exc) or "expected after" in str(exc):
            hint = " (is a closing quote missing in the cell that starts there?)"
        return error(f"{csv_path} line {line}: not a well-formed CSV row: {exc}{hint}")

    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise fail(exc, 1) from exc
    if header is None:
        raise error(f"{csv_path} is empty; expected {expected}")

    def rows() -> Iterator[CsvRow]:
        while True:
            start = reader.line_num + 1
            try:
                cells = next(reader, None)
            except csv.Error as exc:
                raise fail(exc, start) from exc
            if cells is None:
                return
            yield CsvRow(start, max(start, reader.line_num), cells)

    return header, rows()


def find_image(lib: Library, base: Path, cell: str) -> tuple[Any, str]:
    """(the library's image named by a CSV path cell, relative to ``base``, the CSV's folder,
    or absolute; "") or (None, the reason for the report) when there is none: not in the
    library, or not a path at all (``~nosuchuser/x``, a name too long)."""
    p = Path(cell)
    full = p if p.is_absolute() else base / p
    try:
        rec = lib.find_by_path(full)
    except (OSError, ValueError, RuntimeError) as exc:
        return None, f"not a usable path: {exc}"
    if rec is None:
        return None, f"image not in the library: {normalise_path(full)}"
    return rec, ""


class LabelsCsvError(UserError, ValueError):
    """A CSV that cannot be read as labels at all (wrong columns, not text)."""


@dataclass
class LabelsReport:
    """What a labels CSV did. Each refused row is ``{"line", "path", "reason", "kind"}``:
    ``kind`` names the rule it broke (`REFUSAL_KINDS`), and a row refused for categories the
    library lacks also has ``"missing": [[level, id], ...]`` (level "coarse" or "fine", in
    the CSV's column), so a front end can group the rows and offer to add the categories."""

    applied: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)
    added_categories: list[str] = field(default_factory=list)
    source: str = ""  # the CSV file's path (not in the JSON: the caller named it)

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "errors": list(self.errors),
            "added_categories": list(self.added_categories),
        }


#: The ``kind`` of a refused row → what it means, in words a front end can show.
REFUSAL_KINDS = {
    "cells": "wrong number of cells",
    "empty-path": "no path",
    "bad-path": "not a usable path",
    "not-in-library": "photo not in the library",
    "tightness": "tightness not a number from 0 to 100",
    "repeated": "photo already labelled on an earlier line",
    "retired": "retired category",
    "missing-category": "category the library lacks",
    "bad-category": "category that cannot be added",
}


@dataclass(frozen=True)
class _Row:
    line: int
    image_id: int
    coarse: str | None
    fine: str | None
    tightness: float | None


def import_labels(
    lib: Library,
    csv_path: str | os.PathLike[str],
    add_categories: bool = False,
    who: str | None = None,
    lines: Collection[int] | None = None,
) -> LabelsReport:
    """Apply a labels CSV to ``lib``; see the module docstring for the format and rules.

    With ``add_categories`` unknown categories are added to the library's taxonomy instead of
    rejecting their rows (in the same transaction as the labels). ``lines``: only the rows
    starting on these line numbers are read (the rows an earlier import refused for their
    categories, applied once they are added); the others are skipped unchecked."""
    lib.require_writable("import labels")
    csv_path = Path(csv_path)
    base = csv_path.resolve().parent
    who = who if who is not None else f"csv:{csv_path.name}"
    wanted = None if lines is None else frozenset(lines)
    rep = LabelsReport(source=str(csv_path))
    header, reader = open_csv(csv_path, LabelsCsvError, f"a header {','.join(COLUMNS)}")
    names = [h.strip().lower() for h in header]
    if sorted(names) != sorted(COLUMNS):
        raise LabelsCsvError(
            f"{csv_path}: expected columns {','.join(COLUMNS)}, found {','.join(header)}"
        )
    col = {name: names.index(name) for name in COLUMNS}
    raw: list[tuple[int, dict[str, str]]] = []
    for row in reader:
        cells = row.cells
        if row.end > row.line:
            # No label has a line break: a quoted cell running over lines is a missing
            # closing quote that took the next rows into it.
            raise LabelsCsvError(
                f"{csv_path} line {row.line}: a quoted cell runs on to line {row.end} "
                "(is its closing quote missing?); labels have no line breaks, "
                "so nothing was imported"
            )
        if not any(c.strip() for c in cells):
            continue  # blank line
        if wanted is not None and row.line not in wanted:
            continue
        if len(cells) != len(names):
            raw.append((row.line, {"_error": f"{len(cells)} cells, expected 4"}))
            continue
        raw.append((row.line, {k: _unescape(cells[i].strip()) for k, i in col.items()}))

    tax = lib.taxonomy
    rows: list[_Row] = []
    first_line: dict[int, int] = {}
    new_coarse: list[str] = []
    new_fine: list[str] = []
    for line, cells in raw:

        def bad(
            reason: str, kind: str, line: int = line, cells: dict[str, str] = cells, **more: Any
        ) -> None:
            path = cells.get("path", "")
            rep.errors.append({"line": line, "path": path, "reason": reason, "kind": kind, **more})

        if "_error" in cells:
            bad(cells["_error"], "cells")
            continue
        if not cells["path"]:
            bad("empty path", "empty-path")
            continue
        rec, missing = find_image(lib, base, cells["path"])
        if rec is None:
            bad(missing, "bad-path" if missing.startswith("not a usable") else "not-in-library")
            continue
        tightness: float | None = None
        if cells["tightness"]:
            try:
                tightness = parse_tightness(cells["tightness"])
            except ValueError:
                bad(f"tightness {cells['tightness']!r} is not a number", "tightness")
                continue
            if not 0.0 <= tightness <= 100.0:
                bad(f"tightness {cells['tightness']} is outside 0–100", "tightness")
                continue
        if rec.id in first_line:
            bad(f"image already labelled on line {first_line[rec.id]}", "repeated")
            continue
        coarse = cells["coarse"] or None
        fine = cells["fine"] or None
        if coarse is not None:
            major, minor = split_coarse(coarse)
            coarse = major if minor is None else f"{major}/{minor}"
        if coarse is not None and tax.has_coarse(coarse) and tax.is_retired(coarse):
            bad(f"coarse category {coarse!r} is retired (taxonomy editor)", "retired")
            continue
        if fine is not None and fine in tax.retired_fine:
            bad(f"fine texture {fine!r} is retired (taxonomy editor)", "retired")
            continue
        # Categories last, once the row is otherwise good, and on a trial copy: a rejected
        # row never adds a category (with --add-categories).
        add_coarse = coarse if coarse is not None and not tax.has_coarse(coarse) else None
        add_fine = fine if fine is not None and fine not in tax.fine else None
        if add_coarse is not None or add_fine is not None:
            if not add_categories:
                lacking = [["coarse", add_coarse]] if add_coarse is not None else []
                lacking += [["fine", add_fine]] if add_fine is not None else []
                if add_coarse is not None:
                    reason = f"unknown coarse category {coarse!r} (use --add-categories to add it)"
                else:
                    reason = f"unknown fine texture {fine!r} (use --add-categories to add it)"
                bad(reason, "missing-category", missing=lacking)
                continue
            trial = Taxonomy.from_dict(tax.to_dict())
            try:
                if add_coarse is not None:
                    if "/" in add_coarse:
                        trial.add_minor(add_coarse)
                    else:
                        trial.add_major(add_coarse)
                if add_fine is not None:
                    trial.add_fine(add_fine)
            except TaxonomyError as exc:
                bad(str(exc), "bad-category")
                continue
            tax = trial
            new_coarse += [add_coarse] if add_coarse is not None else []
            new_fine += [add_fine] if add_fine is not None else []
        first_line[rec.id] = line
        rows.append(_Row(line, rec.id, coarse, fine, tightness))

    with lib.atomic():
        if new_coarse or new_fine:
            rep.added_categories = lib.add_categories(new_coarse, new_fine)
        for r in rows:
            lib.set_labels(
                [r.image_id], coarse=r.coarse, fine=r.fine, tightness=r.tightness, who=who
            )
        rep.applied = len(rows)
    return rep


def export_labels(lib: Library, csv_path: str | os.PathLike[str]) -> int:
    """Write every labelled image as a CSV row; returns the number of rows.

    Paths are relative to the CSV's folder where the image lies under it, else absolute, so
    an export next to the photos is portable with them."""
    csv_path = Path(csv_path)
    base = csv_path.resolve().parent
    records = lib.images(lib.image_ids(labelled=True))

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(COLUMNS)
            for r in records:
                try:
                    path = r.path.relative_to(base).as_posix()
                except ValueError:
                    path = str(r.path)
                w.writerow(
                    [_escape(c) for c in (path, r.coarse or "", r.fine or "")] + [_fmt(r.tightness)]
                )

    atomic_write(csv_path, write)
    return len(records)


def _fmt(t: float | None) -> str:
    if t is None:
        return ""
    s = repr(float(t))  # repr round-trips exactly
    return s[:-2] if s.endswith(".0") else s


def parse_tightness(text: str) -> float:
    """A tightness cell as a number; `ValueError` for anything but a plain ASCII decimal."""
    text = text.strip()
    if not _NUMBER.fullmatch(text):
        raise ValueError(text)
    return float(text)


def _escape(cell: str) -> str:
    """A cell a spreadsheet will not run: one that starts like a formula (``=cmd|…``, ``+``,
    ``-``, ``@``, tab, CR) or with the escape itself gets a leading ``'``; `_unescape` undoes
    it, so export → import still round-trips."""
    return "'" + cell if cell.startswith((*_FORMULA_START, "'")) else cell


def _unescape(cell: str) -> str:
    if len(cell) > 1 and cell[0] == "'" and cell[1] in "=+-@\t\r'":
        return cell[1:]
    return cell
