"""Fabric records: the fields a textile company keeps beside each photo.

Article number, supplier, composition, weight (g/m²), width (cm), price, season, free notes and
tags, in the ``metadata`` table (migration 2), one row per image while at least one field is
known. `MetadataStore` holds `Library`'s metadata methods; every write validates all values
first, runs in one transaction and returns the values it replaced, so a caller (the window's
undo stack, a CSV import) can put them back with `Library.set_metadata_rows`.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.errors import MissingImageError
from fabricsearch.errors import UserError

#: Field name → kind: "text", "number" or "tags". The order is the CSV column order.
FIELDS: dict[str, str] = {
    "article": "text",
    "supplier": "text",
    "composition": "text",
    "weight": "number",  # g/m²
    "width": "number",  # cm
    "price": "number",  # in the company's currency
    "season": "text",
    "notes": "text",
    "tags": "tags",
}
TEXT_FIELDS = tuple(k for k, v in FIELDS.items() if v != "number")
NUMBER_FIELDS = tuple(k for k, v in FIELDS.items() if v == "number")
UNITS = {"weight": "g/m²", "width": "cm", "price": ""}
#: Longest text we keep in one field (a pasted document in "notes" is a mistake).
MAX_TEXT = 10_000
#: Largest number kept per field: far above any real fabric (and any currency's price), far
#: below where sums, averages and displays of floats go wrong (``price=1e308``).
MAX_NUMBER = {"weight": 100_000.0, "width": 100_000.0, "price": 1e12}

#: A number cell: plain ASCII decimal (as labels_csv's tightness: no "5_0", "inf", "nan").
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


class MetadataError(UserError, ValueError):
    """A metadata value that does not fit its field, with a message for the user."""


@dataclass(frozen=True)
class FabricMetadata:
    article: str | None = None
    supplier: str | None = None
    composition: str | None = None
    weight: float | None = None  # g/m²
    width: float | None = None  # cm
    price: float | None = None
    season: str | None = None
    notes: str | None = None
    tags: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) in (None, ()) for f in FIELDS)

    def to_json(self) -> dict[str, Any]:
        out = {name: getattr(self, name) for name in FIELDS}
        out["tags"] = list(self.tags)
        return out


def check_value(name: str, value: Any) -> Any:
    """The stored form of ``value`` for field ``name`` (None clears); raises `MetadataError`."""
    kind = FIELDS.get(name)
    if kind is None:
        raise MetadataError(f"unknown metadata field {name!r}; fields: {', '.join(FIELDS)}")
    if value is None:
        return None
    if kind == "tags":
        items = value.split(",") if isinstance(value, str) else list(value)
        tags: list[str] = []
        for t in items:
            if not isinstance(t, str):
                raise MetadataError(f"tags: {t!r} is not text")
            t = " ".join(t.split())
            if t and t not in tags:
                tags.append(t)
        if sum(map(len, tags)) > MAX_TEXT:
            raise MetadataError(f"tags: longer than {MAX_TEXT} characters")
        return ", ".join(tags) or None
    if kind == "text":
        if not isinstance(value, str):
            raise MetadataError(f"{name}: {value!r} is not text")
        value = value.strip()
        if len(value) > MAX_TEXT:
            raise MetadataError(f"{name}: longer than {MAX_TEXT} characters")
        return value or None
    if isinstance(value, str):
        number = parse_number(name, value)
    elif isinstance(value, bool) or not isinstance(value, int | float):
        raise MetadataError(f"{name}: {value!r} is not a number")
    else:
        try:
            number = _check_range(name, float(value))
        except OverflowError:  # an int beyond any float
            raise MetadataError(f"{name}: {value} is more than {MAX_NUMBER[name]:g}") from None
    if number is not None and number > MAX_NUMBER[name]:
        unit = f" {UNITS[name]}" if UNITS.get(name) else ""
        raise MetadataError(f"{name}: {number:g} is more than {MAX_NUMBER[name]:g}{unit}")
    return number


def parse_number(name: str, text: str) -> float | None:
    """A number typed in a CSV or a form: plain ASCII (``280``, ``12.50``); empty is None."""
    text = text.strip()
    if not text:
        return None
    if not _NUMBER.fullmatch(text):
        unit = f" in {UNITS[name]}" if UNITS.get(name) else ""
        raise MetadataError(f"{name}: {text!r} is not a number (write it{unit}, e.g. 280 or 12.5)")
    return _check_range(name, float(text))


def _check_range(name: str, value: float) -> float:
    if not math.isfinite(value):
        raise MetadataError(f"{name}: {value!r} is not a number")
    if name == "price" and value < 0:
        raise MetadataError(f"price: {value:g} is negative")
    if name in ("weight", "width") and value <= 0:
        raise MetadataError(f"{name}: {value:g} must be more than 0")
    return value


def check_values(values: Mapping[str, Any]) -> dict[str, Any]:
    """All values of one write in their stored form; raises on the first bad one."""
    return {name: check_value(name, v) for name, v in values.items()}


def _from_row(r: Sequence[Any]) -> FabricMetadata:
    vals = dict(zip(FIELDS, r, strict=True))
    tags = vals.pop("tags")
    return FabricMetadata(**vals, tags=tuple(t.strip() for t in tags.split(",")) if tags else ())


_COLS = ", ".join(FIELDS)


class MetadataStore:
    """The fabric metadata of one catalogue's images (the ``metadata`` table); `Library`'s
    metadata methods delegate to it."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def metadata(self, ids: Iterable[int] | None = None) -> dict[int, FabricMetadata]:
        """image id → its metadata; ids without any (or unknown ids) map to an empty record."""
        if ids is None:
            rows = self.db.query(f"SELECT image_id, {_COLS} FROM metadata")
            return {int(r[0]): _from_row(r[1:]) for r in rows}
        ids = [int(i) for i in ids]
        out = {i: FabricMetadata() for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for r in self.db.query(
                f"SELECT image_id, {_COLS} FROM metadata WHERE image_id IN ({marks})", chunk
            ):
                out[int(r[0])] = _from_row(r[1:])
        return out

    def set_metadata(
        self, ids: Sequence[int], values: Mapping[str, Any], who: str | None = None
    ) -> dict[int, dict[str, Any]]:
        """Set the same ``values`` (field → value; None clears) on every image of ``ids``.

        Returns, per image, the stored values it replaced (same fields): pass them to
        `set_metadata_rows` to undo. Validates first; writes nothing on a bad value or id."""
        checked = check_values(values)
        return self._write_metadata({int(i): checked for i in ids}, who)

    def set_metadata_rows(
        self, rows: Mapping[int, Mapping[str, Any]], who: str | None = None
    ) -> dict[int, dict[str, Any]]:
        """Set different values per image (image id → {field: value}) in one transaction;
        returns the replaced values like `set_metadata` (so undoing an undo redoes)."""
        return self._write_metadata({int(i): check_values(v) for i, v in rows.items()}, who)

    def _write_metadata(
        self, rows: dict[int, dict[str, Any]], who: str | None
    ) -> dict[int, dict[str, Any]]:
        now = time.time()
        ids = list(rows)
        with self.db.atomic():
            known: set[int] = set()
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                known |= {
                    r[0]
                    for r in self.db.query(f"SELECT id FROM images WHERE id IN ({marks})", chunk)
                }
            missing = [i for i in ids if i not in known]
            if missing:
                raise MissingImageError(f"no images with ids {missing[:10]}")
            before = self._stored_metadata(ids)
            old: dict[int, dict[str, Any]] = {}
            for i, values in rows.items():
                old[i] = {k: before.get(i, {}).get(k) for k in values}
                if not values:
                    continue
                self.db.execute(
                    "INSERT INTO metadata (image_id, at) VALUES (?, ?)"
                    " ON CONFLICT (image_id) DO NOTHING",
                    (i, now),
                )
                sets = ", ".join(f"{k} = ?" for k in values)
                self.db.execute(
                    f"UPDATE metadata SET {sets}, who = ?, at = ? WHERE image_id = ?",
                    [*values.values(), who, now, i],
                )
            # A row with every field unknown again is the same as no row.
            empty = " AND ".join(f"{k} IS NULL" for k in FIELDS)
            self.db.execute(f"DELETE FROM metadata WHERE {empty}")
        return old

    def _stored_metadata(self, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        out: dict[int, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = list(ids[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for r in self.db.query(
                f"SELECT image_id, {_COLS} FROM metadata WHERE image_id IN ({marks})", chunk
            ):
                out[int(r[0])] = dict(zip(FIELDS, r[1:], strict=True))
        return out

    def metadata_count(self) -> int:
        """How many images have at least one metadata field."""
        return int(self.db.query("SELECT COUNT(*) FROM metadata")[0][0])
