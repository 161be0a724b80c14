"""Text search over fabric records: metadata fields, file name, path and labels (SQLite FTS5).

A query is a list of terms, all of which must match (AND):

* ``wool`` — a free word: any text field, the file name or a label starts a word with it;
* ``supplier:Acme``, ``composition:"merino wool"`` — a field: that field holds those words
  in that order (quoted for several); the last word may be the start of a longer one, so
  ``supplier:acm`` finds "Acme Textiles";
* ``weight:200..300``, ``price:..12.5``, ``width:150`` — a number field: a range (either end
  may be left open) or one value.

Fields: article, supplier, composition, season, notes, tags, name (the file name), path
(folders included), coarse, fine, and the numbers weight, width, price. The parser
(`parse_query`) is plain Python; the SQL is written once per engine (`sqlite_query`,
`postgresql_query`, with named parameters), and `text_search` runs the one its library's
engine names.
"""

from __future__ import annotations

import re
import shlex
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field

from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.errors import LibraryError
from fabricsearch.catalogue.metadata import NUMBER_FIELDS, MetadataError, parse_number
from fabricsearch.errors import UserError

#: Text fields of the ``fabric_text`` index (migration 2), as a query names them.
TEXT_FIELDS = (
    "article",
    "supplier",
    "composition",
    "season",
    "notes",
    "tags",
    "name",
    "path",
    "coarse",
    "fine",
)
ALIASES = {"file": "name", "filename": "name", "tag": "tags", "note": "notes", "label": "coarse"}
#: Free words look in every column but the full path: a folder name such as "tmp" or "photos"
#: would otherwise match everything.
FREE_COLUMNS = tuple(f for f in TEXT_FIELDS if f != "path")
_WORD = re.compile(r"\w+", re.UNICODE)


class TextQueryError(UserError, ValueError):
    """A text query that cannot be understood, with a message for the user."""


@dataclass(frozen=True)
class TextQuery:
    terms: list[tuple[str | None, str]] = field(default_factory=list)  # (field or None, words)
    ranges: list[tuple[str, float | None, float | None]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.terms and not self.ranges


def parse_query(text: str) -> TextQuery:
    """``supplier:Acme composition:wool soft`` → `TextQuery`; raises `TextQueryError`."""
    try:
        tokens = shlex.split(text)
    except ValueError as exc:  # "No closing quotation"
        raise TextQueryError(f"cannot read the search text {text!r}: {exc}") from None
    q = TextQuery()
    for tok in tokens:
        name, sep, value = tok.partition(":")
        if not sep:
            q.terms.append((None, _words(tok, tok)))
            continue
        key = ALIASES.get(name.strip().lower(), name.strip().lower())
        if key in NUMBER_FIELDS:
            q.ranges.append(_range(key, value))
        elif key in TEXT_FIELDS:
            q.terms.append((key, _words(value, tok)))
        else:
            fields = ", ".join((*TEXT_FIELDS, *NUMBER_FIELDS))
            raise TextQueryError(f"unknown field {name!r} in {tok!r}; fields: {fields}")
    if q.empty:
        raise TextQueryError("the search text is empty")
    return q


def _words(value: str, tok: str) -> str:
    words = _WORD.findall(value)
    if not words:
        raise TextQueryError(f"nothing to search for in {tok!r} (no letters or digits)")
    return " ".join(words)


def _range(key: str, value: str) -> tuple[str, float | None, float | None]:
    lo_text, dots, hi_text = value.partition("..")
    try:
        lo = parse_number(key, lo_text)
        hi = parse_number(key, hi_text) if dots else lo
    except MetadataError as exc:
        raise TextQueryError(f"{exc} (a range is MIN..MAX, e.g. {key}:200..300)") from None
    if lo is None and hi is None:
        raise TextQueryError(f"{key}: give a value or a range MIN..MAX, e.g. {key}:200..300")
    if lo is not None and hi is not None and lo > hi:
        raise TextQueryError(f"{key}: the range {lo:g}..{hi:g} is empty")
    return key, lo, hi


#: A team library's columns for each text field (the file name: after the last / or \\).
_PG_COLUMNS = {
    **{f: f"m.{f}" for f in ("article", "supplier", "composition", "season", "notes", "tags")},
    "name": "regexp_replace(i.path, '^.*[/\\\\]', '')",
    "path": "i.path",
    "coarse": "l.coarse",
    "fine": "l.fine",
}


def fts_expression(q: TextQuery) -> str | None:
    """The FTS5 MATCH expression of the text terms (None when there are only ranges).

    Each term is a quoted phrase (so no word is read as FTS syntax) whose last word may be a
    prefix: ``supplier:acm`` finds "Acme Textiles"."""
    parts = []
    for key, words in q.terms:
        cols = key if key is not None else " ".join(FREE_COLUMNS)
        phrase = '"' + words.replace('"', '""') + '"'
        parts.append(f"{{{cols}}} : {phrase} *")
    return " AND ".join(parts) or None


def text_search(db: Db, query: str | TextQuery) -> list[int]:
    """Ids (ascending) of the images matching every term of ``query`` (`Library.text_search`);
    raises `TextQueryError` for a query that cannot be understood. The SQL is the engine's own
    (`QUERY_BUILDERS`): SQLite searches its FTS5 index; PostgreSQL, which has none, matches the
    columns with ``~*`` (the same rule)."""
    q = parse_query(query) if isinstance(query, str) else query
    build = QUERY_BUILDERS.get(db.backend.engine)
    if build is None:  # a new engine gets its own builder, not another engine's SQL
        raise LibraryError(f"text search has no SQL for the engine {db.backend.engine!r}")
    sql, params = build(q)
    return [int(r[0]) for r in db.query(sql, params)]


#: Named parameters of a query: ``:match``, ``:t0``…, ``:lo0``/``:hi0``…
Params = dict[str, object]


def sqlite_query(q: TextQuery) -> tuple[str, Params]:
    """SQLite's SQL for ``q``: the text terms as one FTS5 MATCH on ``fabric_text``
    (`fts_expression`), the number ranges on ``metadata``."""
    where: list[str] = []
    params: Params = {}
    expr = fts_expression(q)
    if expr is not None:
        where.append("i.id IN (SELECT rowid FROM fabric_text WHERE fabric_text MATCH :match)")
        params["match"] = expr
    _range_conditions(q, where, params)
    sql = (
        "SELECT i.id FROM images i LEFT JOIN metadata m ON m.image_id = i.id"
        f" WHERE {' AND '.join(where)} ORDER BY i.id"
    )
    return sql, params


def _strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _accent_fold_table() -> tuple[str, str]:
    """Latin letters with diacritics and their plain letters (``ê`` → ``e``), for
    PostgreSQL's ``translate`` (no ``unaccent`` extension is assumed on the server)."""
    src, dst = [], []
    for code in range(0xC0, 0x250):
        c = chr(code)
        base = _strip_accents(c)
        if base != c and len(base) == 1 and base.isascii() and base.isalpha():
            src.append(c)
            dst.append(base)
    return "".join(src), "".join(dst)


_FOLD_FROM, _FOLD_TO = _accent_fold_table()


def postgresql_query(q: TextQuery) -> tuple[str, Params]:
    """PostgreSQL's SQL for ``q`` (no FTS5 index): each text term is one case-insensitive
    regular expression (``~*``) over its columns with accents folded away, as the FTS5 index
    does (``remove_diacritics``), the number ranges on ``metadata``."""
    where: list[str] = []
    params: Params = {}
    for n, (key, words) in enumerate(q.terms):
        cols = [key] if key is not None else list(FREE_COLUMNS)
        # The same rule as the FTS5 phrase: words in order, each starting a word, the last
        # one possibly a prefix; "crepe" finds "Crêpe" and "crêpe" finds "crepe".
        params[f"t{n}"] = r"\m" + r"\W+".join(_strip_accents(words).split())
        where.append(
            "("
            + " OR ".join(
                f"translate({_PG_COLUMNS[c]}, :fold_from, :fold_to) ~* :t{n}" for c in cols
            )
            + ")"
        )
    if q.terms:
        params["fold_from"], params["fold_to"] = _FOLD_FROM, _FOLD_TO
    _range_conditions(q, where, params)
    sql = (
        "SELECT i.id FROM images i LEFT JOIN metadata m ON m.image_id = i.id"
        " LEFT JOIN labels l ON l.image_id = i.id"
        f" WHERE {' AND '.join(where)} ORDER BY i.id"
    )
    return sql, params


def _range_conditions(q: TextQuery, where: list[str], params: Params) -> None:
    # Both engines: the number columns are plain columns of ``metadata`` (names from
    # NUMBER_FIELDS, checked by the parser).
    for n, (key, lo, hi) in enumerate(q.ranges):
        if lo is not None:
            where.append(f"m.{key} >= :lo{n}")
            params[f"lo{n}"] = lo
        if hi is not None:
            where.append(f"m.{key} <= :hi{n}")
            params[f"hi{n}"] = hi


#: The text search's SQL for each engine (`Backend.engine`).
QUERY_BUILDERS: dict[str, Callable[[TextQuery], tuple[str, Params]]] = {
    "sqlite": sqlite_query,
    "postgresql": postgresql_query,
}
