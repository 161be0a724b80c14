"""Labels and their history: the ``labels`` and ``label_audit`` tables.

`LabelsStore` is one of the stores a `Library` is made of (docs/architecture.md, "Storage"):
it runs its statements through the library's `Db` and checks values against the library's
taxonomy, which it is given as a function (the library caches it and re-reads it on demand).
Every label change writes one ``label_audit`` row per field that changed, in the same
transaction: concurrent edits of a team library resolve last-writer-wins per field, and the
history says who overwrote what.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from fabricsearch.catalogue.authors import audit_text, user_name
from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.errors import MissingImageError
from fabricsearch.errors import ConfigError
from fabricsearch.taxonomy import Taxonomy


class _Unset:
    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()

#: A labels row with at least one field known (the images it is joined to are labelled).
_LABELLED = (
    "(l.coarse IS NOT NULL OR l.fine IS NOT NULL OR l.tightness IS NOT NULL)"  # a labels row
)


class LabelsStore:
    """The labels of one catalogue's images and their audit."""

    def __init__(self, db: Db, taxonomy: Callable[[], Taxonomy]) -> None:
        self.db = db
        self._taxonomy = taxonomy  # the library's stored taxonomy (a copy per call)

    def set_labels(
        self,
        ids: Sequence[int],
        coarse: str | None = UNSET,
        fine: str | None = UNSET,
        tightness: float | None = UNSET,
        who: str | None = None,
    ) -> None:
        """Set the given label fields (None = unknown; UNSET = leave as is) on all ``ids``.

        Validates against the taxonomy first, then writes in one transaction; raises
        `TaxonomyError` / `ValueError` / `KeyError` and writes nothing on a bad value or id."""
        self.db.require_writable("change labels")
        tax = self._taxonomy()
        if coarse is not UNSET and coarse is not None:
            coarse = coarse.strip() or None
            if coarse is not None:
                tax.coarse_indices(coarse)  # raises TaxonomyError
        if fine is not UNSET and fine is not None:
            fine = fine.strip() or None
            tax.fine_index(fine)
        if tightness is not UNSET and tightness is not None:
            tightness = float(tightness)
            if not 0.0 <= tightness <= 100.0:  # also rejects NaN
                raise ConfigError(f"tightness {tightness} is outside 0–100")
        ids = [int(i) for i in ids]
        now = time.time()
        with self.db.atomic():
            known = {
                r[0]
                for start in range(0, len(ids), 500)
                for r in self.db.query(
                    "SELECT id FROM images WHERE id IN ({})".format(
                        ",".join("?" * len(ids[start : start + 500]))
                    ),
                    ids[start : start + 500],
                )
            }
            missing = [i for i in ids if i not in known]
            if missing:
                raise MissingImageError(f"no images with ids {missing[:10]}")
            changes = [
                (col, value)
                for col, value in (("coarse", coarse), ("fine", fine), ("tightness", tightness))
                if value is not UNSET
            ]
            author = who or user_name()
            # Ascending ids: concurrent writers lock rows in one order and never deadlock.
            touched = sorted(set(ids))
            for i in touched:
                self.db.execute(
                    "INSERT INTO labels (image_id, at) VALUES (?, ?)"
                    " ON CONFLICT(image_id) DO NOTHING",
                    (i, now),
                )
                # Lock the row first (a no-op update): on a team library a concurrent writer
                # of the same image waits here, so the old values below are the ones this
                # write replaces and the audit chains old → new without gaps. Each field
                # written is the last writer's; fields not written are left to others.
                self.db.execute("UPDATE labels SET at = at WHERE image_id = ?", (i,))
                old = self.db.query(
                    "SELECT coarse, fine, tightness FROM labels WHERE image_id = ?", (i,)
                )[0]
                sets, params = ["who = ?", "at = ?"], [who, now]
                for col, value in changes:
                    sets.append(f"{col} = ?")
                    params.append(value)
                self.db.execute(
                    f"UPDATE labels SET {', '.join(sets)} WHERE image_id = ?", [*params, i]
                )
                before = dict(zip(("coarse", "fine", "tightness"), old, strict=True))
                for col, value in changes:
                    if before[col] != value:
                        self.db.execute(
                            "INSERT INTO label_audit (image_id, field, old, new, who, at)"
                            " VALUES (?, ?, ?, ?, ?, ?)",
                            (i, col, audit_text(before[col]), audit_text(value), author, now),
                        )
            # A row whose three fields are all unknown again is the same as no row (only
            # rows written here: others' rows are not ours to lock).
            for start in range(0, len(touched), 500):
                chunk = touched[start : start + 500]
                self.db.execute(
                    "DELETE FROM labels WHERE coarse IS NULL AND fine IS NULL"
                    f" AND tightness IS NULL AND image_id IN ({','.join('?' * len(chunk))})",
                    chunk,
                )

    def label_history(self, image_id: int | None = None) -> list[dict[str, Any]]:
        """Every recorded label change (oldest first), of one image or all: ``image_id, field,
        old, new, who, at`` (values as text; tightness as repr)."""
        sql = "SELECT image_id, field, old, new, who, at FROM label_audit"
        params: tuple[Any, ...] = ()
        if image_id is not None:
            sql += " WHERE image_id = ?"
            params = (int(image_id),)
        keys = ("image_id", "field", "old", "new", "who", "at")
        return [
            dict(zip(keys, r, strict=True)) for r in self.db.query(sql + " ORDER BY id", params)
        ]

    def label_counts(self) -> dict[str, int]:
        """Labelled images per coarse category (``'—'`` for labelled but coarse unknown)."""
        rows = self.db.query(
            f"SELECT COALESCE(l.coarse, '—'), COUNT(*) FROM labels l WHERE {_LABELLED}"
            " GROUP BY 1 ORDER BY 1"
        )
        return {r[0]: int(r[1]) for r in rows}

    def label_times(self) -> list[float | None]:
        """When each labelled image's labels were last set (its `ImageRecord.labelled_at`)."""
        return [r[0] for r in self.db.query(f"SELECT l.at FROM labels l WHERE {_LABELLED}")]
