"""Taxonomy editor core: add, rename, merge and retire coarse and fine categories.

Ids are stable: a rename changes only the display name; a retired or merged category stays
in the taxonomy's lists (so the integer indices trained models use keep their meaning),
marked retired, refused as a new label and hidden from pickers (`Taxonomy.active_*`). A
merge relabels every image of the source with the target and retires the source; merging a
major moves its minors under the target major (``plaid/tartan`` → ``check/tartan``, created
if needed). Each edit is one transaction, writes a ``label_audit`` row per relabelled image and
returns a `TaxonomyChange` holding the taxonomy before and after and each relabelled image's
labels before and after.

`Library.undo_taxonomy_change` reverses only that edit, on the library as it is *now*: an image
is relabelled back only while its label is still what the edit set (a label set since stays),
and only the categories the edit added, renamed or retired are put back (categories added
since stay). When that cannot be done (an image is now labelled with a category the edit
added, or a label would go back to a category retired since) it refuses with
`TaxonomyError` and changes nothing.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from fabricsearch.catalogue.authors import audit_text, user_name
from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.taxonomy_store import TaxonomyStore
from fabricsearch.taxonomy import Taxonomy, TaxonomyError, check_name, split_coarse

Kind = Literal["coarse", "fine"]
_LABEL_COLUMNS = ("coarse", "fine", "tightness")
_EDITOR = "taxonomy editor"  # labels.who of a row the editor relabelled


@dataclass(frozen=True)
class TaxonomyChange:
    description: str
    before: dict[str, Any]  # Taxonomy.to_dict() before the edit
    after: dict[str, Any]
    #: image id → its labels row before the edit (coarse, fine, tightness, who, at)
    relabelled: dict[int, tuple[Any, ...]] = field(default_factory=dict)
    #: image id → its labels row right after the edit (None: no row, all fields unknown)
    relabelled_to: dict[int, tuple[Any, ...] | None] = field(default_factory=dict)
    #: the label field the edit rewrote ("coarse" or "fine"), None when it relabelled nothing
    label_field: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"description": self.description, "relabelled": len(self.relabelled)}


def _kind(kind: str) -> Kind:
    if kind not in ("coarse", "fine"):
        raise TaxonomyError(f"a category kind is 'coarse' or 'fine', not {kind!r}")
    return kind  # type: ignore[return-value]


class TaxonomyEditor:
    """The taxonomy editor of one catalogue: edits the stored taxonomy (`TaxonomyStore`) and
    relabels the images (``labels``, ``label_audit``) in one transaction; `Library`'s
    ``taxonomy_*`` methods delegate to it."""

    def __init__(self, db: Db, taxonomy: TaxonomyStore) -> None:
        self.db = db
        self.taxonomy_store = taxonomy
        self._relabelled: dict[int, tuple[Any, ...]] = {}
        self._relabel_field: str | None = None

    def taxonomy_add(self, kind: str, category_id: str, name: str | None = None) -> TaxonomyChange:
        """Add a category (``major``, ``major/minor`` or a fine id) with a display name."""
        kind = _kind(kind)
        name = check_name(name) if name is not None and name.strip() else None

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
        name = check_name(name)

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

    def undo_taxonomy_change(self, change: TaxonomyChange) -> list[int]:
        """Reverse ``change`` on the library as it is now (one transaction; see the module
        docstring). Returns the ids of the images it relabelled whose label was changed
        again since and so was left as it is. Raises `TaxonomyError` (nothing changed) when
        the edit cannot be reversed."""
        self.db.require_writable("undo a taxonomy edit")
        what = f"cannot undo {change.description}"
        with self.db.atomic():
            self.taxonomy_store.forget()  # the stored one: another client may have edited it
            tax = self.taxonomy_store.get()  # a copy
            added = _reverse_taxonomy(
                tax, Taxonomy.from_dict(change.before), Taxonomy.from_dict(change.after)
            )
            kept = self._restore_labels(change, tax, what)
            added_ids = {cid for _kind, cid in added}
            for kind, cid in added:
                _drop_added(tax, kind, cid, self._label_users(kind, [cid]), added_ids, what)
            self.db.put_meta("taxonomy", json.dumps(tax.to_dict()))
            self.taxonomy_store.forget()
        return kept

    # --- helpers --------------------------------------------------------------------------
    def _edit_taxonomy(self, edit: Any) -> TaxonomyChange:
        self.db.require_writable("edit the taxonomy")
        with self.db.atomic():
            self._relabelled = {}
            self._relabel_field = None
            self.taxonomy_store.forget()  # the stored one: another client may have edited it
            tax = self.taxonomy_store.get()  # a copy
            before = tax.to_dict()
            description = edit(tax)
            after = tax.to_dict()
            self.taxonomy_store.put(tax)
            relabelled, self._relabelled = self._relabelled, {}
            now_rows = self._label_rows(list(relabelled))
            relabelled_to = {i: now_rows.get(i) for i in relabelled}
        return TaxonomyChange(
            description, before, after, relabelled, relabelled_to, self._relabel_field
        )

    def _label_rows(self, ids: list[int]) -> dict[int, tuple[Any, ...]]:
        """image id → its labels row (coarse, fine, tightness, who, at); no row, no entry."""
        out: dict[int, tuple[Any, ...]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for r in self.db.query(
                "SELECT image_id, coarse, fine, tightness, who, at FROM labels"
                f" WHERE image_id IN ({','.join('?' * len(chunk))})",
                chunk,
            ):
                out[int(r[0])] = tuple(r[1:])
        return out

    def _restore_labels(self, change: TaxonomyChange, tax: Taxonomy, what: str) -> list[int]:
        """Put back the label field ``change`` rewrote on each image that still has the value
        the edit gave it (the whole row, who and when included, when nothing else changed
        since); returns the images left alone. Raises when a label would go back to a
        category ``tax`` (the taxonomy after the undo) does not offer."""
        col = change.label_field
        if col is None or not change.relabelled:
            return []
        ci = _LABEL_COLUMNS.index(col)
        ids = sorted(change.relabelled)
        current = self._label_rows(ids)
        existing = {
            int(r[0])
            for start in range(0, len(ids), 500)
            for r in self.db.query(
                "SELECT id FROM images WHERE id IN ({})".format(
                    ",".join("?" * len(ids[start : start + 500]))
                ),
                ids[start : start + 500],
            )
        }
        author, now = f"{user_name()} ({_EDITOR}, undo)", time.time()
        kept: list[int] = []
        for i in ids:
            if i not in existing:
                continue  # removed from the library since
            old, after, cur = change.relabelled[i], change.relabelled_to.get(i), current.get(i)
            cur_value = cur[ci] if cur is not None else None
            if cur_value != (after[ci] if after is not None else None):
                kept.append(i)  # labelled again since: that label stays
                continue
            value = old[ci]
            if value is not None and not _offered(tax, col, value):
                raise TaxonomyError(
                    f"{what}: image {i} would go back to {col} {value!r}, which was retired since"
                )
            row = old if cur == after else _with(cur, ci, value, now)
            self.db.execute(
                "INSERT INTO labels (image_id, coarse, fine, tightness, who, at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (image_id) DO UPDATE SET"
                " coarse = excluded.coarse, fine = excluded.fine,"
                " tightness = excluded.tightness, who = excluded.who, at = excluded.at",
                (i, *row),
            )
            self.db.execute(
                "INSERT INTO label_audit (image_id, field, old, new, who, at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (i, col, audit_text(cur_value), audit_text(value), author, now),
            )
        return kept

    def _label_users(self, kind: Kind, ids: list[str]) -> list[int]:
        marks = ",".join("?" * len(ids))
        return [
            int(r[0])
            for r in self.db.query(f"SELECT image_id FROM labels WHERE {kind} IN ({marks})", ids)
        ]

    def _relabel(self, kind: Kind, mapping: dict[str, str | None]) -> None:
        """Replace label ``kind`` by ``mapping`` (None clears), keeping the old rows for undo
        and writing one audit row per image."""
        self._relabel_field = kind
        now = time.time()
        author = f"{user_name()} ({_EDITOR})"
        for old, new in mapping.items():
            rows = self.db.query(
                f"SELECT image_id, coarse, fine, tightness, who, at FROM labels WHERE {kind} = ?",
                (old,),
            )
            for r in rows:
                self._relabelled.setdefault(int(r[0]), tuple(r[1:]))
            self.db.execute(
                f"UPDATE labels SET {kind} = ?, who = ?, at = ? WHERE {kind} = ?",
                (new, _EDITOR, now, old),
            )
            for r in sorted(rows, key=lambda r: int(r[0])):
                self.db.execute(
                    "INSERT INTO label_audit (image_id, field, old, new, who, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (int(r[0]), kind, old, new, author, now),
                )
        self.db.execute(
            "DELETE FROM labels WHERE coarse IS NULL AND fine IS NULL AND tightness IS NULL"
        )


def _offered(tax: Taxonomy, kind: str, value: str) -> bool:
    """Whether ``value`` is a current (known, not retired) category of ``kind``."""
    if kind == "fine":
        return value in tax.fine and value not in tax.retired_fine
    return tax.has_coarse(value) and not tax.is_retired(value)


def _with(row: tuple[Any, ...] | None, ci: int, value: Any, now: float) -> tuple[Any, ...]:
    """``row`` (None: all unknown) with label column ``ci`` set to ``value``."""
    cells = list(row[:3]) if row is not None else [None, None, None]
    cells[ci] = value
    return (*cells, _EDITOR, now)


def _reverse_taxonomy(tax: Taxonomy, before: Taxonomy, after: Taxonomy) -> list[tuple[Kind, str]]:
    """Undo in ``tax`` (the taxonomy now) what turned ``before`` into ``after``: retirements
    and names go back where they are still what the edit made them. Returns the categories
    the edit added (newest first), for `_drop_added` once the labels are back."""
    for kind in ("coarse", "fine"):
        now_r = tax.retired_fine if kind == "fine" else tax.retired_coarse
        b_r = before.retired_fine if kind == "fine" else before.retired_coarse
        a_r = after.retired_fine if kind == "fine" else after.retired_coarse
        for cid, target in a_r.items():
            if cid in b_r and b_r[cid] == target:
                continue  # not this edit's
            if cid not in now_r or now_r[cid] != target:
                continue  # changed again since: that change stays
            if cid in b_r:
                now_r[cid] = b_r[cid]
            else:
                del now_r[cid]
    for table in ("major_names", "minor_names", "fine_names"):
        now_n, b_n, a_n = (getattr(t, table) for t in (tax, before, after))
        for cid, name in a_n.items():
            if cid in b_n and b_n[cid] != name and now_n.get(cid) == name:
                now_n[cid] = b_n[cid]
    added: list[tuple[Kind, str]] = []
    for kind, attr in (("coarse", "majors"), ("coarse", "minors"), ("fine", "fine")):
        was = set(getattr(before, attr))
        added += [(kind, c) for c in reversed(getattr(after, attr)) if c not in was]  # type: ignore[misc]
    # Minors before their majors: a major the edit added goes once its minors are gone.
    added.sort(key=lambda kc: "/" not in kc[1] and kc[0] == "coarse")
    return added


def _drop_added(
    tax: Taxonomy, kind: Kind, cid: str, users: list[int], added: set[str], what: str
) -> None:
    """Take out category ``cid`` that the undone edit added: removed when nothing was added
    after it (indices stay as they were), else retired (later categories keep theirs).
    Refused when images are labelled with it now or a later edit built on it."""
    fine = kind == "fine"
    ids = tax.fine if fine else tax.minors if "/" in cid else tax.majors
    if cid not in ids:
        return
    if users:
        raise TaxonomyError(
            f"{what}: {len(users)} images are now labelled {cid!r}, which it added; "
            "relabel them first"
        )
    retired = tax.retired_fine if fine else tax.retired_coarse
    if any(target == cid for target in retired.values()) or retired.get(cid):
        raise TaxonomyError(f"{what}: {cid!r}, which it added, was merged since")
    if not fine and "/" not in cid and set(tax.minors_of(cid)) - added:
        raise TaxonomyError(f"{what}: categories were added under {cid!r} since")
    if ids[-1] == cid:
        ids.pop()
        names = tax.fine_names if fine else tax.minor_names if "/" in cid else tax.major_names
        names.pop(cid, None)
        retired.pop(cid, None)
    else:
        retired[cid] = None


def _names(tax: Taxonomy, kind: Kind, category_id: str) -> dict[str, str]:
    """The display-name table holding ``category_id``; raises for an unknown id."""
    if kind == "fine":
        if category_id not in tax.fine:
            raise TaxonomyError(f"unknown fine texture {category_id!r}")
        return tax.fine_names
    if not tax.has_coarse(category_id):
        raise TaxonomyError(f"unknown coarse category {category_id!r}")
    return tax.major_names if split_coarse(category_id)[1] is None else tax.minor_names
