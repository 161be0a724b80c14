"""Labels as CSV: ``path,coarse,fine,tightness``.

``coarse`` is ``major/minor`` or ``major``; an empty cell means unknown (and a row sets all
three fields, so an empty cell clears a label). Paths are relative to the CSV's folder or
absolute. Bad rows (unknown category, image not in the library, tightness outside 0–100,
repeated path) are reported with their line number and nothing of them is written, not even
a category they would add with ``--add-categories``; all good rows are applied in one
transaction. Tightness is a plain ASCII number (`parse_tightness`). Export escapes cells that a
spreadsheet would run as a formula (leading ``'``), and import undoes that escape.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch.atomicio import atomic_write
from fabricsearch.catalogue.library import Library, normalise_path
from fabricsearch.taxonomy import Taxonomy, TaxonomyError, split_coarse

COLUMNS = ("path", "coarse", "fine", "tightness")

#: A tightness cell: ASCII decimal digits with an optional sign, fraction and exponent (export
#: writes `repr`, e.g. "1e-05"). Python's float() also takes "5_0", full-width digits "５０",
#: "inf" and "nan"; none of them is a tightness anybody meant to type.
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
#: Cells a spreadsheet would run as a formula (CSV injection); export prefixes them with "'".
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def open_csv(
    csv_path: Path, error: type[ValueError], expected: str
) -> tuple[list[str], Iterator[list[str]]]:
    """A UTF-8 CSV file (Excel's byte-order mark allowed) → (header, reader of the other rows);
    `error` with a plain message when it cannot be read, is not text or is empty (`expected`
    names the header that was wanted). Shared by the labels and metadata CSVs."""
    try:
        text = csv_path.read_text(encoding="utf-8-sig")  # utf-8-sig: Excel writes a BOM
    except UnicodeDecodeError as exc:
        raise error(f"{csv_path} is not a UTF-8 text CSV file") from exc
    except OSError as exc:
        raise error(f"cannot read {csv_path}: {exc.strerror or exc}") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise error(f"{csv_path} is not a readable CSV file: {exc}") from exc
    if header is None:
        raise error(f"{csv_path} is empty; expected {expected}")
    return header, reader


class LabelsCsvError(ValueError):
    """A CSV that cannot be read as labels at all (wrong columns, not text)."""


@dataclass
class LabelsReport:
    applied: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)  # {"line", "path", "reason"}
    added_categories: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "errors": list(self.errors),
            "added_categories": list(self.added_categories),
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
) -> LabelsReport:
    """Apply a labels CSV to ``lib``; see the module docstring for the format and rules.

    With ``add_categories`` unknown categories are added to the library's taxonomy instead of
    rejecting their rows (in the same transaction as the labels)."""
    lib.require_writable("import labels")
    csv_path = Path(csv_path)
    base = csv_path.resolve().parent
    who = who if who is not None else f"csv:{csv_path.name}"
    rep = LabelsReport()
    header, reader = open_csv(csv_path, LabelsCsvError, f"a header {','.join(COLUMNS)}")
    names = [h.strip().lower() for h in header]
    if sorted(names) != sorted(COLUMNS):
        raise LabelsCsvError(
            f"{csv_path}: expected columns {','.join(COLUMNS)}, found {','.join(header)}"
        )
    col = {name: names.index(name) for name in COLUMNS}
    raw: list[tuple[int, dict[str, str]]] = []
    try:
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue  # blank line
            if len(cells) != len(names):
                raw.append((reader.line_num, {"_error": f"{len(cells)} cells, expected 4"}))
                continue
            raw.append((reader.line_num, {k: _unescape(cells[i].strip()) for k, i in col.items()}))
    except csv.Error as exc:
        raise LabelsCsvError(f"{csv_path} line {reader.line_num}: {exc}") from exc

    tax = lib.taxonomy
    rows: list[_Row] = []
    first_line: dict[int, int] = {}
    new_coarse: list[str] = []
    new_fine: list[str] = []
    for line, cells in raw:

        def bad(reason: str, line: int = line, cells: dict[str, str] = cells) -> None:
            rep.errors.append({"line": line, "path": cells.get("path", ""), "reason": reason})

        if "_error" in cells:
            bad(cells["_error"])
            continue
        if not cells["path"]:
            bad("empty path")
            continue
        p = Path(cells["path"])
        rec = lib.find_by_path(p if p.is_absolute() else base / p)
        if rec is None:
            bad(f"image not in the library: {normalise_path(p if p.is_absolute() else base / p)}")
            continue
        tightness: float | None = None
        if cells["tightness"]:
            try:
                tightness = parse_tightness(cells["tightness"])
            except ValueError:
                bad(f"tightness {cells['tightness']!r} is not a number")
                continue
            if not 0.0 <= tightness <= 100.0:
                bad(f"tightness {cells['tightness']} is outside 0–100")
                continue
        if rec.id in first_line:
            bad(f"image already labelled on line {first_line[rec.id]}")
            continue
        coarse = cells["coarse"] or None
        fine = cells["fine"] or None
        if coarse is not None:
            major, minor = split_coarse(coarse)
            coarse = major if minor is None else f"{major}/{minor}"
        if coarse is not None and tax.has_coarse(coarse) and tax.is_retired(coarse):
            bad(f"coarse category {coarse!r} is retired (taxonomy editor)")
            continue
        if fine is not None and fine in tax.retired_fine:
            bad(f"fine texture {fine!r} is retired (taxonomy editor)")
            continue
        # Categories last, once the row is otherwise good, and on a trial copy: a rejected
        # row never adds a category (with --add-categories).
        add_coarse = coarse if coarse is not None and not tax.has_coarse(coarse) else None
        add_fine = fine if fine is not None and fine not in tax.fine else None
        if add_coarse is not None or add_fine is not None:
            if not add_categories:
                if add_coarse is not None:
                    bad(f"unknown coarse category {coarse!r} (use --add-categories to add it)")
                else:
                    bad(f"unknown fine texture {fine!r} (use --add-categories to add it)")
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
                bad(str(exc))
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
