"""Labels: the labels CSV in and out, and label suggestions from the search model.

A labels CSV naming categories the library lacks has those rows refused (the rest is applied);
`summarise_labels` groups the refused rows (one entry per missing category with its row count,
the other refusals by the rule they broke) and `import_missing_categories` adds the missing
categories, each at the level of the CSV column naming it, and applies the rows refused for
lacking them: the window's "Add these N categories and import", after an import of the CSV
alone or of a folder holding one."""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass
from typing import Any

from fabricsearch.catalogue.labels_csv import (
    REFUSAL_KINDS,
    LabelsCsvError,
    LabelsReport,
    export_labels,
    import_labels,
)
from fabricsearch.suggest import (
    DEFAULT_MIN_CONFIDENCE,
    SuggestError,
    accept_suggestions,
    suggest_labels,
)
from fabricsearch.taxonomy import Taxonomy, TaxonomyError, split_coarse

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "LabelsCsvError",
    "LabelsReport",
    "LabelsSummary",
    "MissingCategory",
    "RefusedGroup",
    "SuggestError",
    "accept_suggestions",
    "export_labels",
    "import_labels",
    "import_missing_categories",
    "suggest_labels",
    "summarise_labels",
]


@dataclass(frozen=True)
class MissingCategory:
    """A category the CSV names and the library lacks: its level is the CSV column naming it
    ("coarse": ``major`` or ``major/minor``; "fine"), ``rows`` the rows refused for it."""

    level: str
    id: str
    rows: int
    problem: str = ""  # why it cannot be added ("" when it can)

    @property
    def addable(self) -> bool:
        return not self.problem


@dataclass(frozen=True)
class RefusedGroup:
    """Rows refused for one rule (`labels_csv.REFUSAL_KINDS`), with that rule in words."""

    kind: str
    reason: str
    rows: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class LabelsSummary:
    """A labels import as a person reads it: rows applied, rows refused grouped by why."""

    source: str  # the CSV file
    applied: int
    errors: tuple[dict[str, Any], ...]  # every refused row, as in `LabelsReport.errors`
    missing: tuple[MissingCategory, ...]  # most rows first
    others: tuple[RefusedGroup, ...]  # refusals for other reasons, most rows first
    missing_lines: tuple[int, ...]  # rows refused only for categories that can be added
    added_categories: tuple[str, ...] = ()

    @property
    def refused(self) -> int:
        return len(self.errors)

    @property
    def missing_rows(self) -> int:
        """Rows refused for naming categories the library lacks (a row naming two counts once)."""
        return sum(1 for e in self.errors if e.get("kind") == "missing-category")

    @property
    def addable(self) -> list[MissingCategory]:
        return [m for m in self.missing if m.addable]

    def after(self, second: LabelsReport, taxonomy: Taxonomy) -> LabelsSummary:
        """This import followed by `import_missing_categories`' ``second``: applied counted
        together, the rows still refused (the first's other refusals and any of the second)."""
        retried = set(self.missing_lines)
        kept = [
            e
            for e in self.errors
            if not (e.get("kind") == "missing-category" and _line(e) in retried)
        ]
        return _summary(
            self.source,
            self.applied + second.applied,
            [*kept, *second.errors],
            taxonomy,
            [*self.added_categories, *second.added_categories],
        )


def summarise_labels(report: LabelsReport, taxonomy: Taxonomy) -> LabelsSummary:
    """Group ``report``'s refused rows: one `MissingCategory` per category the library lacks
    (checked against ``taxonomy``, the library's now, for whether it can be added) and one
    `RefusedGroup` per other rule broken."""
    return _summary(report.source, report.applied, report.errors, taxonomy, report.added_categories)


def import_missing_categories(
    lib: Any, summary: LabelsSummary, who: str | None = None
) -> LabelsReport:
    """Add the categories ``summary`` found missing, each at its CSV column's level (in the
    same transaction as the labels), and apply the rows refused only for lacking them; the
    other rows are not read again. Rows refused now (the CSV changed since) are reported."""
    if not summary.missing_lines:
        return LabelsReport(source=summary.source)
    return import_labels(
        lib, summary.source, add_categories=True, who=who, lines=summary.missing_lines
    )


def _line(error: dict[str, Any]) -> int:
    return int(error.get("line") or 0)


def _summary(
    source: str | os.PathLike[str],
    applied: int,
    errors: list[dict[str, Any]] | tuple[dict[str, Any], ...],
    taxonomy: Taxonomy,
    added: list[str] | tuple[str, ...],
) -> LabelsSummary:
    counts: Counter[tuple[str, str]] = Counter()
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for e in errors:
        if e.get("kind") == "missing-category" and e.get("missing"):
            counts.update((str(level), str(cid)) for level, cid in e["missing"])
        else:
            by_kind.setdefault(str(e.get("kind") or "other"), []).append(e)
    problems = {key: _cannot_add(taxonomy, *key) for key in counts}
    missing = tuple(
        MissingCategory(level, cid, n, problems[(level, cid)])
        for (level, cid), n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    lines = tuple(
        _line(e)
        for e in errors
        if e.get("kind") == "missing-category"
        and e.get("missing")
        and not any(problems[(str(lv), str(c))] for lv, c in e["missing"])
    )
    others = tuple(
        RefusedGroup(kind, REFUSAL_KINDS.get(kind, "other reasons"), tuple(rows))
        for kind, rows in sorted(by_kind.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    )
    return LabelsSummary(
        source=str(source),
        applied=applied,
        errors=tuple(errors),
        missing=missing,
        others=others,
        missing_lines=lines,
        added_categories=tuple(added),
    )


def _cannot_add(taxonomy: Taxonomy, level: str, cid: str) -> str:
    """Why ``cid`` cannot be added at ``level`` ("" when it can), tried on a copy."""
    trial = Taxonomy.from_dict(taxonomy.to_dict())
    try:
        if level == "fine":
            if cid in trial.retired_fine:
                return f"fine texture {cid!r} is retired"
            trial.add_fine(cid)
        else:
            major, minor = split_coarse(cid)
            if trial.is_retired(cid) or major in trial.retired_coarse:
                return f"coarse category {major!r} is retired"
            if minor is None:
                trial.add_major(major)
            else:
                trial.add_minor(cid)
    except TaxonomyError as exc:
        return str(exc)
    return ""
