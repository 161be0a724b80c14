"""The PostgreSQL backend of a team library: a connection that speaks the catalogue's SQL.

`Library` is written against one small connection interface — ``execute(sql, params)``
returning a cursor (``fetchall``, ``fetchone``, ``lastrowid``, ``rowcount``), ``executemany``,
``close`` — which `sqlite3.Connection` provides. `PgConnection` provides the same over
psycopg 3, so the Library's methods (and the ones other modules add to it) run unchanged on
both engines. The catalogue's SQL is the common subset of SQLite and PostgreSQL; the few
SQLite forms it uses are rewritten here, in one place:

* ``?`` placeholders → ``%s`` (a literal ``%`` is doubled);
* ``INSERT OR REPLACE INTO t (…)`` → ``INSERT … ON CONFLICT (primary key) DO UPDATE`` and
  ``INSERT OR IGNORE`` → ``ON CONFLICT DO NOTHING``;
* ``INSERT INTO images …`` gets ``RETURNING id`` (``cursor.lastrowid``);
* ``BEGIN IMMEDIATE`` → ``BEGIN``; ``PRAGMA integrity_check`` / ``quick_check`` ask the server
  (always "ok": the server owns its pages), other PRAGMAs do nothing.

Errors are raised as the `sqlite3` exception classes (`IntegrityError`, `OperationalError`,
`DatabaseError`) with a ``sqlite_errorname`` where one applies (``SQLITE_FULL`` for a full
disk on the server, ``SQLITE_READONLY`` for a read-only transaction), so the code above has one
family of errors to handle. A connection lost outside a transaction (a server restart) is
re-opened and the statement retried; inside a transaction the transaction fails and the caller
sees `sqlite3.OperationalError`.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

URL_SCHEMES = ("postgresql://", "postgres://")

#: Primary keys, for rewriting ``INSERT OR REPLACE``.
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "meta": ("key",),
    "failed": ("path",),
    "codes": ("model_version", "image_id"),
    "labels": ("image_id",),
    "metadata": ("image_id",),
    "models": ("version",),
    "model_files": ("version", "name"),
    "job_progress": ("name",),
}
#: Tables whose id the server assigns (``INSERT`` gets ``RETURNING id``).
IDENTITY_TABLES = ("images", "label_audit")
#: How long a lost connection is retried (a server restart takes a few seconds).
RECONNECT_SECONDS = 60.0

_REPLACE = re.compile(
    r"^\s*INSERT\s+OR\s+REPLACE\s+INTO\s+(\w+)\s*\(([^)]*)\)(.*)$", re.IGNORECASE | re.DOTALL
)
_IGNORE = re.compile(r"^\s*INSERT\s+OR\s+IGNORE\s+INTO\s+(.*)$", re.IGNORECASE | re.DOTALL)
_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+(\w+)\b", re.IGNORECASE)


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


def translate(sql: str) -> str:
    """The PostgreSQL form of one catalogue statement (see the module docstring)."""
    m = _REPLACE.match(sql)
    if m:
        table, cols, rest = m.group(1), m.group(2), m.group(3)
        names = [c.strip() for c in cols.split(",")]
        keys = PRIMARY_KEYS[table.lower()]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in names if c not in keys)
        action = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        sql = f"INSERT INTO {table} ({cols}){rest} ON CONFLICT ({', '.join(keys)}) {action}"
    else:
        m = _IGNORE.match(sql)
        if m:
            sql = f"INSERT INTO {m.group(1)} ON CONFLICT DO NOTHING"
    return _placeholders(sql)


def _placeholders(sql: str) -> str:
    out: list[str] = []
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:
                quote = None
            out.append("%%" if ch == "%" else ch)
        elif ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            out.append("%s")
        elif ch == "%":
            out.append("%%")
        else:
            out.append(ch)
    return "".join(out)


class PgCursor:
    """What `Library` reads from a cursor."""

    def __init__(self, rows: list[tuple[Any, ...]], rowcount: int, lastrowid: int | None):
        self._rows = rows
        self.rowcount = rowcount
        self.lastrowid = lastrowid

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
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise _as_sqlite_error(exc) from exc
        if self.read_only:
            conn.execute("SET default_transaction_read_only = on")
        return conn

    # --- the sqlite3.Connection interface ----------------------------------------------------
    def execute(self, sql: str, params: Sequence[Any] = ()) -> PgCursor:
        head = sql.lstrip()[:24].upper()
        if head.startswith("PRAGMA"):
            if "INTEGRITY_CHECK" in head or "QUICK_CHECK" in head:
                return PgCursor([("ok",)], 1, None)
            return PgCursor([], 0, None)
        if head.startswith("BEGIN"):
            sql = "BEGIN"
        text = translate(sql)
        m = _INSERT.match(text)
        returning = (
            m is not None and m.group(1).lower() in IDENTITY_TABLES and "RETURNING" not in text
        )
        if returning:
            text += " RETURNING id"
        return self._run(text, params, returning)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> PgCursor:
        text = translate(sql)
        rows = list(rows)
        with self._lock:
            try:
                with self._conn.cursor() as cur:
                    cur.executemany(text, rows)
                    return PgCursor([], cur.rowcount, None)
            except Exception as exc:  # noqa: BLE001 - mapped to sqlite3's classes
                raise self._mapped(exc) from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self._conn.info.transaction_status != TransactionStatus.IDLE

    # --- internals -----------------------------------------------------------------------
    def _run(self, text: str, params: Sequence[Any], returning: bool) -> PgCursor:
        deadline = time.monotonic() + RECONNECT_SECONDS
        while True:
            with self._lock:
                try:
                    with self._conn.cursor() as cur:
                        cur.execute(text, list(params) if params else None)
                        rows = cur.fetchall() if cur.description is not None else []
                        lastrowid = int(rows[0][0]) if returning and rows else None
                        return PgCursor(rows, cur.rowcount, lastrowid)
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
