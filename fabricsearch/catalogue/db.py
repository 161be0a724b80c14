"""The catalogue's connection: statements, transactions and the lock around them.

Threading: one connection per library, opened with ``check_same_thread=False`` and guarded
by a re-entrant lock. Every statement and every `atomic()` block holds the lock, so the GUI
thread can read while an import runs in a worker thread; the import writes in short batched
transactions, so readers wait milliseconds at most. (A connection per thread would allow
parallel readers, but SQLite serialises writers anyway and one connection is simpler to
close reliably.) Other processes may open the same library: WAL mode plus a busy timeout.

What differs between SQLite and PostgreSQL (the opening statement of a transaction, error
messages, what happens at close) is asked of the `Backend`. The stores (`models_store`,
`labels_store`, …) and `Library` run every statement through one `Db`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fabricsearch.catalogue.backend import Backend
from fabricsearch.catalogue.errors import LibraryError, ReadOnlyLibraryError


class Db:
    """One open catalogue connection, its lock and its transactions."""

    def __init__(
        self, conn: Any, backend: Backend, read_only: bool = False, where: Path | str = ""
    ) -> None:
        self._conn: Any = conn
        self.backend = backend
        #: Opened for search only: `require_writable` refuses every change.
        self.read_only = read_only
        self._where = where  # named in the read-only message
        self.lock = threading.RLock()
        self._depth = 0  # atomic() nesting
        # Caches of what a rolled-back block may have changed (`forget_on_rollback`); weak,
        # so a store that holds this Db makes no reference cycle with it.
        self._caches: weakref.WeakSet[Any] = weakref.WeakSet()

    def forget_on_rollback(self, cache: Any) -> None:
        """Call ``cache.forget()`` whenever a transaction (or a savepoint) rolls back."""
        self._caches.add(cache)

    # --- the connection ---------------------------------------------------------------------
    @property
    def conn(self) -> Any:
        """The open connection (`LibraryError` once closed)."""
        if self._conn is None:
            raise LibraryError("library is closed")
        return self._conn

    @property
    def closed(self) -> bool:
        return self._conn is None

    def close(self) -> None:
        with self.lock:
            if self._conn is not None:
                self.backend.before_close(self._conn)
                self._conn.close()
                self._conn = None
                self.backend.release()

    # --- statements -------------------------------------------------------------------------
    def run(self, fn: Any, *args: Any) -> Any:
        """Call a connection function, turning damage, a full disk and read-only refusals
        into `LibraryError`s with a message for the user."""
        try:
            return fn(*args)
        except sqlite3.Error as exc:
            new = self.backend.translate(exc)
            if new is exc:
                raise
            raise new from exc

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        with self.lock:
            return self.run(self.conn.execute, sql, params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        with self.lock:
            return self.run(self.conn.executemany, sql, rows)

    def query(
        self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()
    ) -> list[tuple[Any, ...]]:
        """The rows of ``sql``: ``?`` placeholders with a sequence, or ``:name`` with a mapping."""
        with self.lock:
            return self.run(lambda: self.conn.execute(sql, params).fetchall())

    def put_meta(self, key: str, value: str) -> None:
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self, key: str) -> str | None:
        rows = self.query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def require_writable(self, action: str) -> None:
        """Raise `ReadOnlyLibraryError` naming ``action`` when the library is read-only."""
        if self.read_only:
            raise ReadOnlyLibraryError(
                f"{self._where} is open read-only (search only): cannot {action}"
            )

    # --- transactions -----------------------------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A transaction (BEGIN IMMEDIATE … COMMIT on SQLite); nested blocks become
        savepoints.

        Holds the lock for its whole duration, so other threads see either none or all of it."""
        with self.lock:
            conn = self.conn
            if self._depth == 0:
                begin = self.backend.begin_statement(self.read_only)
                commit, rollback = "COMMIT", "ROLLBACK"
            else:
                name = f"sp{self._depth}"
                begin = f"SAVEPOINT {name}"
                commit, rollback = f"RELEASE {name}", f"ROLLBACK TO {name}; RELEASE {name}"
            self.run(conn.execute, begin)
            if self._depth == 0:
                self.backend.transaction_open(conn, True)
            self._depth += 1
            try:
                yield
            except BaseException:
                self._depth -= 1
                with contextlib.suppress(sqlite3.Error):  # a damaged or full disk: keep the cause
                    for stmt in rollback.split("; "):
                        conn.execute(stmt)
                for cache in list(self._caches):
                    cache.forget()
                if self._depth == 0:
                    self.backend.transaction_open(conn, False)
                raise
            self._depth -= 1
            try:
                self.run(conn.execute, commit)
            finally:
                if self._depth == 0:
                    self.backend.transaction_open(conn, False)
