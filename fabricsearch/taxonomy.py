"""Coarse and fine texture categories, by stable ids.

Coarse labels are ``major/minor`` ids (``plaid/tartan``); a label may also name only a major
(``plaid``) when the minor is not known. Fine labels are weave/structure ids (``twill``).
Integer indices (for arrays and training) follow the order in the taxonomy and are stable as
long as categories are only appended, which is the only change a company can make.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch.errors import UserError
from fabricsearch.resources import resource_path


class TaxonomyError(UserError, ValueError):
    """A label or taxonomy file that does not fit."""


@dataclass
class Taxonomy:
    version: int = 1
    majors: list[str] = field(default_factory=list)
    major_names: dict[str, str] = field(default_factory=dict)
    minors: list[str] = field(default_factory=list)  # "major/minor" ids
    minor_names: dict[str, str] = field(default_factory=dict)
    fine: list[str] = field(default_factory=list)
    fine_names: dict[str, str] = field(default_factory=dict)
    #: Retired categories (taxonomy editor): kept in the lists so integer indices stay
    #: valid, refused as new labels, hidden from pickers. Merged ones name their target.
    retired_coarse: dict[str, str | None] = field(default_factory=dict)  # id → merged into
    retired_fine: dict[str, str | None] = field(default_factory=dict)

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Taxonomy:
        tax = cls(version=int(data.get("version", 1)))
        try:
            for major in data["coarse"]:
                tax.add_major(major["id"], major.get("name"), stored=True)
                if major.get("retired"):
                    tax.retired_coarse[major["id"]] = major.get("merged_into")
                for minor in major.get("minors", []):
                    cid = f"{major['id']}/{minor['id']}"
                    tax.add_minor(cid, minor.get("name"), stored=True)
                    if minor.get("retired"):
                        tax.retired_coarse[cid] = minor.get("merged_into")
            for fine in data["fine"]:
                tax.add_fine(fine["id"], fine.get("name"), stored=True)
                if fine.get("retired"):
                    tax.retired_fine[fine["id"]] = fine.get("merged_into")
            order = data.get("minor_order")
            if order is not None:
                if sorted(order) != sorted(tax.minors):
                    raise TaxonomyError("malformed taxonomy: minor_order does not list the minors")
                tax.minors = list(order)
        except (KeyError, TypeError) as exc:
            raise TaxonomyError(f"malformed taxonomy: {exc}") from exc
        return tax

    @classmethod
    def load(cls, path: str | Path) -> Taxonomy:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))

    @classmethod
    def default(cls) -> Taxonomy:
        return cls.load(resource_path("taxonomy.json"))

    def to_dict(self) -> dict[str, Any]:
        def entry(d: dict[str, Any], retired: dict[str, str | None], cid: str) -> dict[str, Any]:
            if cid in retired:  # only then: an unedited taxonomy keeps its plain form
                d["retired"] = True
                if retired[cid] is not None:
                    d["merged_into"] = retired[cid]
            return d

        rc, rf = self.retired_coarse, self.retired_fine
        out: dict[str, Any] = {
            "version": self.version,
            "coarse": [
                entry(
                    {
                        "id": major,
                        "name": self.major_names.get(major, major),
                        "minors": [
                            entry(
                                {"id": m.split("/", 1)[1], "name": self.minor_names.get(m, m)},
                                rc,
                                m,
                            )
                            for m in self.minors
                            if m.split("/", 1)[0] == major
                        ],
                    },
                    rc,
                    major,
                )
                for major in self.majors
            ],
            "fine": [entry({"id": f, "name": self.fine_names.get(f, f)}, rf, f) for f in self.fine],
        }
        # Minors are listed under their majors, but their integer indices follow the order
        # they were added in: a minor added to an earlier major later must not shift them.
        grouped = [m for major in self.majors for m in self.minors_of(major)]
        if grouped != self.minors:
            out["minor_order"] = list(self.minors)
        return out

    # --- extension ----------------------------------------------------------------------
    # ``stored``: an id read back from a saved taxonomy, checked only as strictly as when it
    # was added (a library saved by an older version must still open).
    def add_major(self, major: str, name: str | None = None, *, stored: bool = False) -> None:
        if major not in self.majors:
            _check_id(major, stored)
            self.majors.append(major)
        self.major_names[major] = name or self.major_names.get(major) or major

    def add_minor(self, coarse_id: str, name: str | None = None, *, stored: bool = False) -> None:
        major, minor = split_coarse(coarse_id)
        if minor is None:
            raise TaxonomyError(f"{coarse_id!r} is not a major/minor id")
        if coarse_id not in self.minors:
            _check_id(minor, stored)  # before the major: a refused minor adds nothing
        self.add_major(major, stored=stored)
        if coarse_id not in self.minors:
            self.minors.append(coarse_id)
        self.minor_names[coarse_id] = name or self.minor_names.get(coarse_id) or minor

    def add_fine(self, fine_id: str, name: str | None = None, *, stored: bool = False) -> None:
        if fine_id not in self.fine:
            _check_id(fine_id, stored)
            self.fine.append(fine_id)
        self.fine_names[fine_id] = name or self.fine_names.get(fine_id) or fine_id

    # --- lookup -------------------------------------------------------------------------
    def has_coarse(self, coarse_id: str) -> bool:
        major, minor = split_coarse(coarse_id)
        if minor is None:
            return major in self.majors
        return coarse_id in self.minors

    def is_retired(self, category_id: str, fine: bool = False) -> bool:
        """Whether a coarse (or, with ``fine``, a fine) category was retired or merged."""
        if fine:
            return category_id in self.retired_fine
        major, _minor = split_coarse(category_id)
        return category_id in self.retired_coarse or major in self.retired_coarse

    def current_id(self, category_id: str, fine: bool = False) -> str | None:
        """The category a (possibly merged) id stands for now; None if retired unmerged."""
        retired = self.retired_fine if fine else self.retired_coarse
        seen: set[str] = set()
        while category_id in retired and category_id not in seen:
            seen.add(category_id)
            target = retired[category_id]
            if target is None:
                return None
            category_id = target
        return category_id

    def active_majors(self) -> list[str]:
        return [m for m in self.majors if m not in self.retired_coarse]

    def active_minors(self) -> list[str]:
        return [m for m in self.minors if not self.is_retired(m)]

    def active_fine(self) -> list[str]:
        return [f for f in self.fine if f not in self.retired_fine]

    def coarse_indices(self, coarse_id: str | None) -> tuple[int, int]:
        """(major index, minor index) for a coarse label; -1 where unknown. A retired
        category raises: no new label may use it."""
        if not coarse_id:
            return -1, -1
        major, minor = split_coarse(coarse_id)
        if self.is_retired(coarse_id if minor is None else f"{major}/{minor}"):
            raise TaxonomyError(f"coarse category {coarse_id!r} is retired")
        if major not in self.majors:
            raise TaxonomyError(f"unknown coarse category {coarse_id!r}")
        if minor is None:
            return self.majors.index(major), -1
        if coarse_id not in self.minors:
            raise TaxonomyError(f"unknown coarse category {coarse_id!r}")
        return self.majors.index(major), self.minors.index(coarse_id)

    def fine_index(self, fine_id: str | None) -> int:
        if not fine_id:
            return -1
        if fine_id not in self.fine:
            raise TaxonomyError(f"unknown fine texture {fine_id!r}")
        if fine_id in self.retired_fine:
            raise TaxonomyError(f"fine texture {fine_id!r} is retired")
        return self.fine.index(fine_id)

    def minors_of(self, major: str) -> list[str]:
        return [m for m in self.minors if m.split("/", 1)[0] == major]

    def display_coarse(self, coarse_id: str | None) -> str:
        if not coarse_id:
            return "—"
        major, minor = split_coarse(coarse_id)
        if minor is None:
            return self.major_names.get(major, major)
        return f"{self.major_names.get(major, major)} › {self.minor_names.get(coarse_id, minor)}"


def split_coarse(coarse_id: str) -> tuple[str, str | None]:
    """'plaid/tartan' → ('plaid', 'tartan'); 'plaid' → ('plaid', None)."""
    coarse_id = coarse_id.strip()
    if "/" in coarse_id:
        major, minor = coarse_id.split("/", 1)
        return major.strip(), minor.strip()
    return coarse_id, None


def _check_id(value: str, stored: bool = False) -> None:
    """An id is refused when empty, with a ``/``, with spaces around it or (a new one) with a
    line break, tab or other control character (it would break CSV rows and listings)."""
    if not value or "/" in value or value != value.strip():
        raise TaxonomyError(f"invalid category id {value!r}")
    if not stored and not value.isprintable():
        raise TaxonomyError(
            f"invalid category id {value!r}: no line breaks, tabs or control characters"
        )


def check_name(name: str) -> str:
    """A display name as stored: runs of spaces (line breaks, tabs) become one space;
    `TaxonomyError` when nothing is left or a control character remains."""
    name = " ".join(name.split())
    if not name:
        raise TaxonomyError("a category needs a non-empty name")
    if not name.isprintable():
        raise TaxonomyError(f"invalid category name {name!r}: no control characters")
    return name
