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

from fabricsearch.resources import resource_path


class TaxonomyError(ValueError):
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

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Taxonomy:
        tax = cls(version=int(data.get("version", 1)))
        try:
            for major in data["coarse"]:
                tax.add_major(major["id"], major.get("name"))
                for minor in major.get("minors", []):
                    tax.add_minor(f"{major['id']}/{minor['id']}", minor.get("name"))
            for fine in data["fine"]:
                tax.add_fine(fine["id"], fine.get("name"))
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
        return {
            "version": self.version,
            "coarse": [
                {
                    "id": major,
                    "name": self.major_names.get(major, major),
                    "minors": [
                        {"id": m.split("/", 1)[1], "name": self.minor_names.get(m, m)}
                        for m in self.minors
                        if m.split("/", 1)[0] == major
                    ],
                }
                for major in self.majors
            ],
            "fine": [{"id": f, "name": self.fine_names.get(f, f)} for f in self.fine],
        }

    # --- extension ----------------------------------------------------------------------
    def add_major(self, major: str, name: str | None = None) -> None:
        _check_id(major)
        if major not in self.majors:
            self.majors.append(major)
        self.major_names[major] = name or self.major_names.get(major) or major

    def add_minor(self, coarse_id: str, name: str | None = None) -> None:
        major, minor = split_coarse(coarse_id)
        if minor is None:
            raise TaxonomyError(f"{coarse_id!r} is not a major/minor id")
        _check_id(minor)
        self.add_major(major)
        if coarse_id not in self.minors:
            self.minors.append(coarse_id)
        self.minor_names[coarse_id] = name or self.minor_names.get(coarse_id) or minor

    def add_fine(self, fine_id: str, name: str | None = None) -> None:
        _check_id(fine_id)
        if fine_id not in self.fine:
            self.fine.append(fine_id)
        self.fine_names[fine_id] = name or self.fine_names.get(fine_id) or fine_id

    # --- lookup -------------------------------------------------------------------------
    def has_coarse(self, coarse_id: str) -> bool:
        major, minor = split_coarse(coarse_id)
        if minor is None:
            return major in self.majors
        return coarse_id in self.minors

    def coarse_indices(self, coarse_id: str | None) -> tuple[int, int]:
        """(major index, minor index) for a coarse label; -1 where unknown."""
        if not coarse_id:
            return -1, -1
        major, minor = split_coarse(coarse_id)
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


def _check_id(value: str) -> None:
    if not value or "/" in value or value != value.strip():
        raise TaxonomyError(f"invalid category id {value!r}")
