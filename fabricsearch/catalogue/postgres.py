"""The PostgreSQL backend of a team library: a connection with `sqlite3.Connection`'s interface.

`Library` is written against one small connection interface — ``execute(sql, params)``
returning a cursor (``fetchall``, ``fetchone``, ``rowcount``), ``executemany``, ``close`` —
which `sqlite3.Connection` provides. `PgConnection` provides the same over psycopg 3, so the
Library's methods (and the ones other modules add to it) run unchanged on both engines.

The catalogue's SQL is written once, in forms both engines run unchanged (``INSERT … ON
CONFLICT (key) DO UPDATE SET c = excluded.c``, ``ON CONFLICT DO NOTHING``, ``RETURNING id``).
This module rewrites no SQL: the one adaptation is the placeholder style of the driver —
`parse` turns each ``?`` (or, with a mapping of parameters, each ``:name``, as `sqlite3`
binds them) outside string literals, quoted identifiers and comments into PostgreSQL's own
``$1``, ``$2``, …, and the statement is sent through a `psycopg.RawCursor`,
which passes the text to the server as it is (no ``%`` is special, with or without
parameters). SQLite-only forms (``INSERT OR …``, ``REPLACE INTO``, ``PRAGMA``, ``BEGIN
IMMEDIATE``/``EXCLUSIVE``/``DEFERRED``) are refused with `sqlite3.ProgrammingError`, never
translated. What differs between the engines beyond SQL is explicit: `PgConnection.check`
(SQLite's ``PRAGMA integrity_check``/``quick_check``) and `PgConnection.advance_identities`
(the id sequences after explicitly inserted ids); the Library calls them on a team library.

Errors are raised as the `sqlite3` exception classes (`IntegrityError`, `OperationalError`,
`DatabaseError`) with a ``sqlite_errorname`` where one applies (``SQLITE_FULL`` for a full
disk on the server, ``SQLITE_READONLY`` for a read-only transaction), so the code above has one
family of errors to handle. A connection lost outside a transaction (a server restart) is
re-opened and the statement retried; inside a transaction the transaction fails and the caller
sees `sqlite3.OperationalError`.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

#: Tables whose ``id`` the server assigns from a sequence (`PgConnection.advance_identities`).
IDENTITY_TABLES = ("images", "label_audit")
#: How long a lost connection is retried (a server restart takes a few seconds).
RECONNECT_SECONDS = 60.0

#: Word pairs that only SQLite accepts, and where to write them for both engines.
_SQLITE_ONLY_PAIRS = {
    ("INSERT", "OR"): "INSERT … ON CONFLICT (key) DO UPDATE SET … / ON CONFLICT DO NOTHING",
    ("REPLACE", "INTO"): "INSERT … ON CONFLICT (key) DO UPDATE SET c = excluded.c",
    ("BEGIN", "IMMEDIATE"): "BEGIN (Library.atomic chooses the form per engine)",
    ("BEGIN", "EXCLUSIVE"): "BEGIN (Library.atomic chooses the form per engine)",
    ("BEGIN", "DEFERRED"): "BEGIN",
}
_DOLLAR_TAG = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def display_url(url: str) -> str:
    """The URL without its password, in the user part or as a ``password=`` parameter (for
    messages, logs, settings)."""
    parts = urlsplit(url)
    query = parts.query
    if query:
        kept = [kv for kv in query.split("&") if kv.split("=", 1)[0].lower() != "password"]
        query = "&".join(kept)
    if parts.password is None and query == parts.query:
        return url
    netloc = parts.netloc
    if parts.password is not None:
        userinfo, _, hostport = netloc.rpartition("@")
        netloc = (
            f"{userinfo.split(':', 1)[0]}@{hostport}" if userinfo.split(":", 1)[0] else hostport
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@dataclass(frozen=True)
class Parsed:
    """One statement (or script) as the server gets it: ``?`` or ``:name`` → ``$n``, nothing
    else changed."""

    text: str
    #: How many ``?`` placeholders it holds.
    params: int
    #: The names of its ``:name`` placeholders, in the order of ``$1``, ``$2``, … (a name
    #: used twice is one parameter).
    names: tuple[str, ...] = ()


def _refuse(form: str, fix: str, sql: str) -> sqlite3.ProgrammingError:
    head = " ".join(sql.split())[:80]
    return sqlite3.ProgrammingError(
        f"SQLite-only form {form!r} in {head!r}: write it for both engines ({fix})"
    )


@functools.lru_cache(maxsize=1024)
def parse(sql: str, named: bool = False) -> Parsed:
    """Tokenize ``sql``: each ``?`` in code (not inside a string literal ``'…'``/``E'…'``/
    ``$tag$…$tag$``, a quoted identifier ``"…"`` or a ``--``/``/* */`` comment) becomes
    ``$1``, ``$2``, …; with ``named``, each ``:name`` in code does instead (``::`` casts are
    kept) and a ``?`` is refused; the rest is kept byte for byte. Raises
    `sqlite3.ProgrammingError` for an SQLite-only form (`_SQLITE_ONLY_PAIRS`, a statement
    starting with ``PRAGMA``) or an unterminated literal or comment."""
    out: list[str] = []
    n = 0
    names: dict[str, int] = {}  # :name → its $n
    i, end = 0, len(sql)
    prev_word: str | None = None  # the last word in code, if only blanks/comments follow it
    statement_start = True
    while i < end:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            j = sql.find("\n", i)
            j = end if j < 0 else j + 1
        elif ch == "/" and sql.startswith("/*", i):
            depth, j = 1, i + 2  # PostgreSQL's block comments nest
            while j < end and depth:
                if sql.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif sql.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            if depth:
                raise sqlite3.ProgrammingError(f"unterminated comment in {sql[:80]!r}")
        elif ch in "'\"":
            backslash = (
                ch == "'"
                and i > 0
                and sql[i - 1] in "eE"
                and (i == 1 or not (sql[i - 2].isalnum() or sql[i - 2] == "_"))
            )
            j = i + 1
            while True:
                if j >= end:
                    raise sqlite3.ProgrammingError(f"unterminated quote in {sql[:80]!r}")
                if backslash and sql[j] == "\\":
                    j += 2
                elif sql[j] == ch:
                    if sql.startswith(ch, j + 1):  # a doubled quote stands for itself
                        j += 2
                    else:
                        j += 1
                        break
                else:
                    j += 1
            prev_word, statement_start = None, False
        elif ch == "$" and (m := _DOLLAR_TAG.match(sql, i)) and not _word_before(sql, i):
            close = sql.find(m.group(0), m.end())
            if close < 0:
                raise sqlite3.ProgrammingError(f"unterminated {m.group(0)} quote in {sql[:80]!r}")
            j = close + len(m.group(0))
            prev_word, statement_start = None, False
        elif ch.isalpha() or ch == "_":
            j = i + 1
            while j < end and (sql[j].isalnum() or sql[j] in "_$"):
                j += 1
            word = sql[i:j].upper()
            if statement_start and word == "PRAGMA":
                raise _refuse("PRAGMA", "PgConnection.check or a SQLite-only branch", sql)
            fix = _SQLITE_ONLY_PAIRS.get((prev_word, word)) if prev_word else None
            if fix is not None:
                raise _refuse(f"{prev_word} {word}", fix, sql)
            prev_word, statement_start = word, False
        elif ch == "?":
            if named:
                raise sqlite3.ProgrammingError(
                    f"a ? placeholder in a statement given named parameters: {sql[:80]!r}"
                )
            n += 1
            out.append(f"${n}")
            i += 1
            prev_word, statement_start = None, False
            continue
        elif ch == ":" and sql.startswith("::", i):
            j = i + 2  # a cast, never a placeholder
            prev_word, statement_start = None, False
        elif named and ch == ":" and i + 1 < end and (sql[i + 1].isalpha() or sql[i + 1] == "_"):
            j = i + 2
            while j < end and (sql[j].isalnum() or sql[j] == "_"):
                j += 1
            number = names.setdefault(sql[i + 1 : j], len(names) + 1)
            out.append(f"${number}")
            i = j
            prev_word, statement_start = None, False
            continue
        else:
            j = i + 1
            if ch == ";":
                prev_word, statement_start = None, True
            elif not ch.isspace():
                prev_word, statement_start = None, False
        out.append(sql[i:j])
        i = j
    return Parsed("".join(out), n, tuple(names))


def _word_before(sql: str, i: int) -> bool:
    return i > 0 and (sql[i - 1].isalnum() or sql[i - 1] in "_$")


def _bindings(parsed: Parsed, params: Sequence[Any] | Mapping[str, Any]) -> list[Any] | None:
    if isinstance(params, Mapping):
        missing = [name for name in parsed.names if name not in params]
        if missing:  # sqlite3's message
            raise sqlite3.ProgrammingError(
                f"You did not supply a value for binding parameter :{missing[0]}."
            )
        return [params[name] for name in parsed.names] or None
    if parsed.names:
        raise sqlite3.ProgrammingError("named placeholders need a mapping of parameters")
    if len(params) != parsed.params:
        raise sqlite3.ProgrammingError(
            f"Incorrect number of bindings supplied. The current statement uses"
            f" {parsed.params}, and there are {len(params)} supplied."
        )
    return list(params) if params else None


class PgCursor:
    """What `Library` reads from a cursor."""

    #: `sqlite3.Cursor`'s attribute, never set here: write ``INSERT … RETURNING id``.
    lastrowid = None

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._rows[0] if self._rows else None

    def __iter__(self):  # noqa: ANN204 - iterator of rows
        return iter(self._rows)


class PgConnection:
    """A psycopg 3 connection with the `sqlite3.Connection` methods `Library` uses."""

    dialect = "postgresql"

    def __init__(self, url: str, read_only: bool = False) -> None:
        self.url = url
        self.read_only = read_only
        self._lock = threading.RLock()
        self._conn = self._open()

    def _open(self) -> Any:
        try:
            import psycopg
        except ImportError as exc:  # the optional extra
            raise sqlite3.OperationalError(
                'team libraries need psycopg: pip install "fabricsearch[team]"'
            ) from exc
        try:
            # RawCursor: the text goes to the server as it is, with $n placeholders.
            conn = psycopg.connect(
                self.url, autocommit=True, connect_timeout=10, cursor_factory=psycopg.RawCursor
            )
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        return conn

    # --- the sqlite3.Connection interface ----------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> PgCursor:
        """Run one statement (``?`` placeholders and a sequence, or ``:name`` placeholders and
        a mapping, as `sqlite3` takes them), or a script of several without parameters
        (psycopg sends a statement without parameters as a simple query)."""
        parsed = parse(sql, isinstance(params, Mapping))
        return self._run(parsed.text, _bindings(parsed, params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> PgCursor:
        rows = list(rows)
        parsed = parse(sql, bool(rows) and isinstance(rows[0], Mapping))
        batch = [_bindings(parsed, r) or [] for r in rows]
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.executemany(parsed.text, batch)
                    return PgCursor([], cur.rowcount)
            except Exception as exc:  # noqa: BLE001 - mapped to sqlite3's classes
                raise _as_sqlite_error(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # --- what differs between the engines beyond SQL ---------------------------------------
    def check(self) -> list[str]:
        """SQLite's ``PRAGMA integrity_check``/``quick_check`` here: ``["ok"]`` once the server
        answers (the server owns and checks its pages)."""
        self._run("SELECT 1", None)
        return ["ok"]

    def advance_identities(self, tables: Sequence[str] = IDENTITY_TABLES) -> None:
        """Move the id sequences of ``tables`` past their largest id (after rows inserted with
        explicit ids: a copy, a restored record); never moves one back."""
        for table in tables:
            if table not in IDENTITY_TABLES:
                raise ValueError(f"{table!r} has no identity column")
            seq = self._run(f"SELECT pg_get_serial_sequence('{table}', 'id')", None).fetchone()
            top = self._run(f"SELECT COALESCE(MAX(id), 0) FROM {table}", None).fetchone()
            if seq is None or top is None:
                raise sqlite3.DatabaseError(f"no sequence behind {table}.id")
            last, called = self._run(f"SELECT last_value, is_called FROM {seq[0]}", None)._rows[0]
            following = int(last) + 1 if called else int(last)
            if int(top[0]) >= following:
                self._run("SELECT setval($1::regclass, $2, true)", [seq[0], int(top[0])])

    # --- internals -----------------------------------------------------------------------
    def _run(self, text: str, params: list[Any] | None) -> PgCursor:
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            with self._lock:
                try:
                    with self._conn.cursor() as cur:
                        cur.execute(text, params)
                        rows = cur.fetchall() if cur.description is not None else []
                        return PgCursor(rows, cur.rowcount)
                except Exception as exc:  # noqa: BLE001 - mapped to sqlite3's classes
                    if not self._lost(exc):
                        raise _as_sqlite_error(exc) from exc
                    if self.transaction_open:
                        # The server rolled the transaction back: the caller must know.
                        self.transaction_open = False
                        self._reconnect_quietly()
                        raise _lost_error() from exc
                    if time.monotonic() > deadline:
                        raise _as_sqlite_error(exc) from exc
            time.sleep(0.5)  # the server is restarting: retry the statement
            self._reconnect_quietly()

    #: Set by `Library.atomic` between BEGIN and COMMIT/ROLLBACK: a connection lost then
    #: is reported rather than retried.
    transaction_open = False

    def _lost(self, exc: Exception) -> bool:
        from psycopg import errors

        return bool(self._conn.closed or self._conn.broken or isinstance(exc, errors.AdminShutdown))

    def _reconnect_quietly(self) -> None:
        import psycopg

        with self._lock:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            with contextlib.suppress(sqlite3.Error):
                self._conn = self._open()  # if the server is not back yet, the next try is


def _lost_error() -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(
        "the connection to the team library's server was lost; the change was not saved: retry"
    )
    exc.sqlite_errorname = "SQLITE_IOERR"  # type: ignore[attr-defined]
    return exc


def _as_sqlite_error(exc: Exception) -> Exception:
    import psycopg
    from psycopg import errors

    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, errors.IntegrityError):
        new: Exception = sqlite3.IntegrityError(msg)
        name = "SQLITE_CONSTRAINT"
    elif isinstance(exc, errors.DiskFull):
        new, name = sqlite3.OperationalError("database or disk is full"), "SQLITE_FULL"
    elif isinstance(exc, errors.ReadOnlySqlTransaction):
        new, name = sqlite3.OperationalError(msg), "SQLITE_READONLY"
    elif isinstance(exc, psycopg.OperationalError):
        new, name = sqlite3.OperationalError(msg), "SQLITE_CANTOPEN"
    elif isinstance(exc, psycopg.Error):
        new, name = sqlite3.DatabaseError(msg), "SQLITE_ERROR"
    else:
        return exc
    new.sqlite_errorname = name  # type: ignore[attr-defined]
    return new
