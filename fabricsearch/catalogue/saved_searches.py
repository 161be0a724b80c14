"""Saved searches: a named text filter and facet filters, kept in the library itself (its
``meta`` table, one JSON value) so that everyone who opens the library — a team library's
other computers too — sees the same list. Plain functions over a `Library`; a front end keeps
the meaning of the filter fields (the window's facets), this module only stores them."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fabricsearch.catalogue.library import Library

META_KEY = "saved_searches"
#: A name longer than this is cut (a menu entry, not a document).
MAX_NAME = 80


@dataclass(frozen=True)
class SavedSearch:
    name: str
    text: str = ""  # the text filter (`Library.text_search` syntax)
    filters: dict[str, Any] = field(default_factory=dict)  # facet name → value
    who: str | None = None
    at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "text": self.text,
            "filters": dict(self.filters),
            "who": self.who,
            "at": self.at,
        }


def _read(lib: Library) -> list[SavedSearch]:
    raw = lib._meta(META_KEY)  # noqa: SLF001 - the catalogue package's own table
    try:
        items = json.loads(raw) if raw else []
    except ValueError:
        return []  # a damaged value lists nothing rather than failing to open
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and str(item.get("name") or "").strip():
            out.append(
                SavedSearch(
                    name=str(item["name"]),
                    text=str(item.get("text") or ""),
                    filters=dict(item.get("filters") or {}),
                    who=item.get("who"),
                    at=float(item.get("at") or 0.0),
                )
            )
    return out


def saved_searches(lib: Library) -> list[SavedSearch]:
    """The library's saved searches, by name (case-insensitive)."""
    return sorted(_read(lib), key=lambda s: s.name.casefold())


def save_search(
    lib: Library, name: str, text: str = "", filters: dict[str, Any] | None = None
) -> SavedSearch:
    """Save (or replace, by name) a search; the stored entry."""
    from fabricsearch.catalogue.authors import user_name
    from fabricsearch.catalogue.errors import LibraryError

    name = " ".join(name.split())[:MAX_NAME]
    if not name:
        raise LibraryError("a saved search needs a name")
    lib.require_writable("save a search")
    entry = SavedSearch(name, text.strip(), dict(filters or {}), user_name(), time.time())
    with lib.atomic():  # read and write together: two savers do not lose each other's
        kept = [s for s in _read(lib) if s.name.casefold() != name.casefold()]
        _write(lib, [*kept, entry])
    return entry


def delete_saved_search(lib: Library, name: str) -> bool:
    """Forget a saved search; False when there is none by that name."""
    lib.require_writable("delete a saved search")
    with lib.atomic():
        items = _read(lib)
        kept = [s for s in items if s.name.casefold() != name.casefold()]
        if len(kept) == len(items):
            return False
        _write(lib, kept)
    return True


def _write(lib: Library, items: list[SavedSearch]) -> None:
    value = json.dumps([s.to_json() for s in items], ensure_ascii=False)
    lib._put_meta(META_KEY, value)  # noqa: SLF001 - the catalogue package's own table
