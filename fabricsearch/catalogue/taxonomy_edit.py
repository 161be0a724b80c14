"""Taxonomy editor core: add, rename, merge and retire coarse and fine categories.

Ids are stable: a rename changes only the display name; a retired or merged category stays
in the taxonomy's lists (so the integer indices trained models use keep their meaning),
marked retired, refused as a new label and hidden from pickers (`Taxonomy.active_*`). A
merge relabels every image of the source with the target and retires the source; merging a
major moves its minors under the target major (``plaid/tartan`` → ``check/tartan``, created
if needed). Each edit is one transaction and returns a `TaxonomyChange` holding the taxonomy
before and each relabelled image's old labels; `Library.undo_taxonomy_change` puts it back.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from fabricsearch.taxonomy import Taxonomy, TaxonomyError, split_coarse

Kind = Literal["coarse", "fine"]


@dataclass(frozen=True)
class TaxonomyChange:
    description: str
    before: dict[str, Any]  # Taxonomy.to_dict() before the edit
    after: dict[str, Any]
    #: image id → its labels row before the edit (coarse, fine, tightness, who, at)
    relabelled: dict[int, tuple[Any, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "relabelled": len(self.relabelled)}


def _kind(kind: str) -> Kind:
    if kind not in ("coarse", "fine"):
        raise TaxonomyError(f"a category kind is 'coarse' or 'fine', not {kind!r}")
    return kind  # type: ignore[return-value]


class TaxonomyEditMixin:
    """`Library` methods of the taxonomy editor (uses `atomic`, `taxonomy`, `_query`, …)."""

    def taxonomy_add(self, kind: str, category_id: str, name: str | None = None) -> TaxonomyChange:
        """Add a category (``major``, ``major/minor`` or a fine id) with a display name."""
        kind = _kind(kind)

        def edit(tax: Taxonomy) -> str:
            cid = category_id.strip()
            if kind == "fine":
                if cid in tax.fine:
                    raise TaxonomyError(f"fine texture {cid!r} already exists")
                tax.add_fine(cid, name)
            else:
                if tax.has_coarse(cid):
                    raise TaxonomyError(f"coarse category {cid!r} already exists")
                major, minor = split_coarse(cid)
                if major in tax.retired_coarse:
                    raise TaxonomyError(f"coarse category {major!r} is retired")
                if minor is None:
                    tax.add_major(cid, name)
                else:
                    tax.add_minor(cid, name)
            return f"add {kind} {cid}"

        return self._edit_taxonomy(edit)

    def taxonomy_rename(self, kind: str, category_id: str, name: str) -> TaxonomyChange:
        """Give a category a new display name (its id, and so every label, stays)."""
        kind = _kind(kind)
        name = " ".join(name.split())
        if not name:
            raise TaxonomyError("a category needs a non-empty name")

        def edit(tax: Taxonomy) -> str:
            names = _names(tax, kind, category_id)
            names[category_id] = name
            return f"rename {kind} {category_id} to {name!r}"

        return self._edit_taxonomy(edit)

    def taxonomy_merge(self, kind: str, source: str, target: str) -> TaxonomyChange:
        """Relabel every image of ``source`` with ``target`` and retire ``source``."""
        kind = _kind(kind)

        def edit(tax: Taxonomy) -> str:
            _names(tax, kind, source)
            _names(tax, kind, target)
            if source == target:
                raise TaxonomyError("a category cannot be merged into itself")
            if tax.is_retired(target, fine=kind == "fine"):
                raise TaxonomyError(f"{target!r} is retired: merge into a current category")
            if kind == "fine":
                self._relabel("fine", {source: target})
                tax.retired_fine[source] = target
                return f"merge fine {source} into {target}"
            s_major, s_minor = split_coarse(source)
            t_major, t_minor = split_coarse(target)
            if s_minor is None and t_major == s_major:
                raise TaxonomyError(f"{target!r} is part of {source!r}")
            mapping = {source: target}
            if s_minor is None:  # a major: its minors move under the target's major
                for m in tax.minors_of(source):
                    if tax.is_retired(m):
                        continue
                    moved = f"{t_major}/{m.split('/', 1)[1]}"
                    if t_minor is not None or tax.is_retired(moved):
                        moved = target  # into one minor (or a retired one's major)
                    elif not tax.has_coarse(moved):
                        tax.add_minor(moved, tax.minor_names.get(m))
                    mapping[m] = moved
            self._relabel("coarse", mapping)
            for old, new in mapping.items():
                tax.retired_coarse[old] = new
            return f"merge coarse {source} into {target}"

        return self._edit_taxonomy(edit)

    def taxonomy_retire(
        self, kind: str, category_id: str, clear_labels: bool = False
    ) -> TaxonomyChange:
        """Retire a category. Images still labelled with it are refused unless
        ``clear_labels`` (then that label becomes unknown on them, in the same step)."""
        kind = _kind(kind)

        def edit(tax: Taxonomy) -> str:
            _names(tax, kind, category_id)
            ids = [category_id]
            if kind == "coarse" and split_coarse(category_id)[1] is None:
                ids += tax.minors_of(category_id)
            used = self._label_users(kind, ids)
            if used and not clear_labels:
                raise TaxonomyError(
                    f"{len(used)} images are labelled {category_id!r}: merge it into another "
                    "category, or retire it with its labels cleared"
                )
            self._relabel(kind, dict.fromkeys(ids))
            retired = tax.retired_fine if kind == "fine" else tax.retired_coarse
            for cid in ids:
                retired.setdefault(cid, None)
            return f"retire {kind} {category_id}"

        return self._edit_taxonomy(edit)

    def undo_taxonomy_change(self, change: TaxonomyChange) -> None:
        """Put back the taxonomy and the labels an edit changed (one transaction)."""
        with self.atomic():  # type: ignore[attr-defined]
            self._put_meta("taxonomy", json.dumps(change.before))  # type: ignore[attr-defined]
            self._taxonomy = None
            for image_id, row in change.relabelled.items():
                self._execute(  # type: ignore[attr-defined]
                    "INSERT INTO labels (image_id, coarse, fine, tightness, who, at)"
                    " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (image_id) DO UPDATE SET"
                    " coarse = excluded.coarse, fine = excluded.fine,"
                    " tightness = excluded.tightness, who = excluded.who, at = excluded.at",
                    (image_id, *row),
                )

    # --- helpers --------------------------------------------------------------------------
    def _edit_taxonomy(self, edit: Any) -> TaxonomyChange:
        with self.atomic():  # type: ignore[attr-defined]
            self._relabelled: dict[int, tuple[Any, ...]] = {}
            tax = self.taxonomy  # type: ignore[attr-defined]
            before = tax.to_dict()
            description = edit(tax)
            after = tax.to_dict()
            self._put_meta("taxonomy", json.dumps(after))  # type: ignore[attr-defined]
            self._taxonomy = tax
            relabelled, self._relabelled = self._relabelled, {}
        return TaxonomyChange(description, before, after, relabelled)

    def _label_users(self, kind: Kind, ids: list[str]) -> list[int]:
        marks = ",".join("?" * len(ids))
        return [
            int(r[0])
            for r in self._query(  # type: ignore[attr-defined]
                f"SELECT image_id FROM labels WHERE {kind} IN ({marks})", ids
            )
        ]

    def _relabel(self, kind: Kind, mapping: dict[str, str | None]) -> None:
        """Replace label ``kind`` by ``mapping`` (None clears), keeping the old rows for undo."""
        now = time.time()
        for old, new in mapping.items():
            rows = self._query(  # type: ignore[attr-defined]
                f"SELECT image_id, coarse, fine, tightness, who, at FROM labels WHERE {kind} = ?",
                (old,),
            )
            for r in rows:
                self._relabelled.setdefault(int(r[0]), tuple(r[1:]))
            self._execute(  # type: ignore[attr-defined]
                f"UPDATE labels SET {kind} = ?, who = ?, at = ? WHERE {kind} = ?",
                (new, "taxonomy editor", now, old),
            )
        self._execute(  # type: ignore[attr-defined]
            "DELETE FROM labels WHERE coarse IS NULL AND fine IS NULL AND tightness IS NULL"
        )


def _names(tax: Taxonomy, kind: Kind, category_id: str) -> dict[str, str]:
    """The display-name table holding ``category_id``; raises for an unknown id."""
    if kind == "fine":
        if category_id not in tax.fine:
            raise TaxonomyError(f"unknown fine texture {category_id!r}")
        return tax.fine_names
    if not tax.has_coarse(category_id):
        raise TaxonomyError(f"unknown coarse category {category_id!r}")
    return tax.major_names if split_coarse(category_id)[1] is None else tax.minor_names
