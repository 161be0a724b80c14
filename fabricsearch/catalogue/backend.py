"""What differs between the two engines a `Library` runs on, behind one `Backend` protocol.

* `SQLiteBackend`: a library folder. ``catalogue.sqlite`` in WAL mode; transactions take the
  write lock up front (``BEGIN IMMEDIATE``); named locks are lock files; a change is seen by
  the catalogue file's size and mtime; photo paths are stored absolute; model files lie in
  ``models/``; the open check is SQLite's quick check.
* `TeamBackend`: a team library on a PostgreSQL server (`catalogue.team`). Plain ``BEGIN``
  (row locks); named locks are advisory locks shared by every client; a change is seen in
  the newest rows; photo paths are stored relative to the photos root; model files live in
  the server and are downloaded into this client's cache; the running job's progress is
  kept in the catalogue for the other clients (`catalogue.jobprogress`).

The library, its stores and its mixins call the backend instead of asking which engine they
run on. SQL is shared where both engines run the same text: `catalogue.postgres` runs those
statements on PostgreSQL (see there for the forms it accepts; it rewrites none). SQL that
differs between the engines is written once per engine and chosen by `Backend.engine`
(text search: `catalogue.textsearch.QUERY_BUILDERS`).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fabricsearch import atomicio, livefiles
from fabricsearch.catalogue import jobprogress, schema, schema_pg, team
from fabricsearch.catalogue.errors import (
    DamagedCatalogueError,
    DiskFullError,
    LibraryError,
    ReadOnlyLibraryError,
)

if TYPE_CHECKING:
    from fabricsearch.catalogue.db import Db
    from fabricsearch.catalogue.library import Library, ModelInfo
    from fabricsearch.catalogue.postgres import PgConnection
    from fabricsearch.catalogue.team import TeamInfo


class Backend(Protocol):
    """The engine-specific part of a library (one instance per open `Library`)."""

    #: True for a catalogue shared by clients on a server (a team library).
    shared: bool
    #: The SQL engine ("sqlite" | "postgresql"): picks the SQL written for each engine.
    engine: str

    def schema_version(self, conn: Any) -> int:
        """The catalogue's schema version (0: none yet)."""
        ...

    def migrate(self, conn: Any) -> list[int]:
        """Apply the engine's missing migrations; the versions applied."""
        ...

    def begin_statement(self, read_only: bool) -> str:
        """The statement that opens an outermost transaction."""
        ...

    def transaction_open(self, conn: Any, is_open: bool) -> None:
        """Told when an outermost transaction begins and ends."""
        ...

    def open_check(self, conn: Any, db_path: Path, quick_check_max_bytes: int) -> list[str]:
        """``["ok"]`` or the problems found when the library is opened."""
        ...

    def integrity_check(self, conn: Any) -> list[str]:
        """``["ok"]`` or every problem a full check finds."""
        ...

    def exclusive(
        self, lib: Library, name: str, wait: bool, poll_s: float, cancel: Any
    ) -> AbstractContextManager[None]:
        """Hold the library's lock ``name`` across processes (and clients)."""
        ...

    def change_token(self, lib: Library) -> tuple[Any, ...]:
        """A value that changes whenever anyone commits a change."""
        ...

    def before_close(self, conn: Any) -> None:
        """Last words on the connection before it is closed."""
        ...

    def release(self) -> None:
        """Give up what the backend holds in this process (the library is closed)."""
        ...

    def to_db(self, path: str | os.PathLike[str], strict: bool = True) -> str:
        """The stored form of a photo's path (``strict``: refuse one outside the root)."""
        ...

    def from_db(self, stored: str) -> str:
        """A stored photo path as this machine sees it."""
        ...

    def paths_from_db(self, stored: Sequence[str]) -> Iterable[str]:
        """`from_db` of many paths (the stored sequence itself where nothing changes)."""
        ...

    def numbers(self, values: Sequence[Any]) -> Iterable[float | None]:
        """A REAL column's values as floats (None stays None)."""
        ...

    def check_photo_folder(self, folder: str | os.PathLike[str]) -> None:
        """Raise `LibraryError` when photos in ``folder`` cannot be catalogued here."""
        ...

    def store_model_files(self, db: Db, models_dir: Path, info: ModelInfo) -> None:
        """Keep a just-recorded model's files where every user of the library finds them
        (inside the transaction that records it)."""
        ...

    def fetch_model_files(self, db: Db, models_dir: Path, version: str) -> None:
        """Bring the model's files onto this machine when they are not here."""
        ...

    def served_models(self, db: Db) -> frozenset[str]:
        """Versions whose files the backend serves into this machine's ``models/``."""
        ...

    def translate(self, exc: sqlite3.Error) -> BaseException:
        """A `LibraryError` for an error the user can act on; others unchanged."""
        ...

    def job_progress(self, lib: Library, name: str) -> dict[str, Any] | None:
        """The recorded progress of the job holding the lock ``name``, if recorded."""
        ...

    def after_explicit_ids(self, db: Db) -> None:
        """Rows were inserted with explicit ids (removed images put back, a library copied):
        move the id sequences past them."""
        ...


class SQLiteBackend:
    """A library folder: ``catalogue.sqlite`` beside thumbnails, models and indexes."""

    shared = False
    engine = "sqlite"

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        # While the connection is open nothing else in this process may open and close the
        # catalogue file (that drops SQLite's POSIX locks on it; `livefiles`).
        self._held: Any = livefiles.hold(db_path)

    def schema_version(self, conn: sqlite3.Connection) -> int:
        return schema.current_version(conn)

    def migrate(self, conn: sqlite3.Connection) -> list[int]:
        return schema.migrate(conn)

    def begin_statement(self, read_only: bool) -> str:
        # A read-only connection cannot take the write lock up front; its blocks only read,
        # and a write inside one fails as ReadOnlyLibraryError.
        return "BEGIN" if read_only else "BEGIN IMMEDIATE"

    def transaction_open(self, conn: Any, is_open: bool) -> None:
        pass

    def open_check(
        self, conn: sqlite3.Connection, db_path: Path, quick_check_max_bytes: int
    ) -> list[str]:
        """SQLite's quick check of a catalogue up to ``quick_check_max_bytes`` (it reads
        every page: zeroed or torn pages are found at open rather than in the middle of a
        job). A larger one (100k images: 60 MB, 0.3 s; 1M: seconds) gets the cheap part only:
        the small tables checked in full, the file's size against its page count (a cut copy)
        and the first and last rows of the large tables; damage elsewhere is refused when it
        is read (`DamagedCatalogueError`), and `integrity_check` (``fabricsearch info
        --check``) reads everything on demand. See docs/library.md."""
        c = conn
        if file_size(db_path) <= quick_check_max_bytes:
            return [r[0] for r in c.execute("PRAGMA quick_check(5)").fetchall()]
        page_size = int(c.execute("PRAGMA page_size").fetchone()[0])
        pages = int(c.execute("PRAGMA page_count").fetchone()[0])
        free = int(c.execute("PRAGMA freelist_count").fetchone()[0])
        size = file_size(db_path)
        # Committed pages not yet copied back from the WAL may lie beyond the file's end.
        wal = file_size(db_path.with_name(db_path.name + "-wal"))
        if free > pages or (wal == 0 and size < pages * page_size):
            return [f"the file holds {size} bytes, its header promises {pages * page_size}"]
        tables = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        problems: list[str] = []
        for name in tables:
            if name in _LARGE_TABLES or name.startswith("fabric_text"):
                continue
            quoted = name.replace('"', '""')
            problems += [r[0] for r in c.execute(f'PRAGMA quick_check("{quoted}")').fetchall()]
        problems = [p for p in problems if p != "ok"]
        for sql in _EDGE_READS:
            c.execute(sql).fetchall()  # a damaged page raises SQLITE_CORRUPT
        return problems or ["ok"]

    def integrity_check(self, conn: sqlite3.Connection) -> list[str]:
        return [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]

    def exclusive(
        self, lib: Library, name: str, wait: bool, poll_s: float, cancel: Any
    ) -> AbstractContextManager[None]:
        return _file_lock(lib.folder / f".{name}.lock", name, lib.location, wait, poll_s, cancel)

    def change_token(self, lib: Library) -> tuple[Any, ...]:
        out: list[Any] = []
        for p in (self.db_path, self.db_path.with_name(self.db_path.name + "-wal")):
            try:
                st = os.stat(p)
                out.append((st.st_mtime_ns, st.st_size))
            except OSError:
                out.append((0, 0))
        return tuple(out)

    def before_close(self, conn: Any) -> None:
        # Fold the WAL back so the folder is a single self-contained file at rest.
        with contextlib.suppress(sqlite3.Error):
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def release(self) -> None:
        livefiles.release(self._held)
        self._held = None

    def to_db(self, path: str | os.PathLike[str], strict: bool = True) -> str:
        return str(path)

    def from_db(self, stored: str) -> str:
        return stored

    def paths_from_db(self, stored: Sequence[str]) -> Iterable[str]:
        return stored

    def numbers(self, values: Sequence[Any]) -> Iterable[float | None]:
        return values  # a REAL column: floats already

    def check_photo_folder(self, folder: str | os.PathLike[str]) -> None:
        pass

    def store_model_files(self, db: Db, models_dir: Path, info: ModelInfo) -> None:
        pass  # the files are in the library folder already

    def fetch_model_files(self, db: Db, models_dir: Path, version: str) -> None:
        pass

    def served_models(self, db: Db) -> frozenset[str]:
        return frozenset()

    def translate(self, exc: sqlite3.Error) -> BaseException:
        return translate_sqlite(exc, self.db_path, self.db_path.parent)

    def job_progress(self, lib: Library, name: str) -> dict[str, Any] | None:
        # A library folder's windows notice changes by the catalogue file's size and mtime;
        # a row written every second would make them reload every poll (jobprogress.py).
        return None

    def after_explicit_ids(self, db: Db) -> None:
        pass  # INTEGER PRIMARY KEY: the next id is past the largest one already


class TeamBackend:
    """A team library: the catalogue on a PostgreSQL server (`catalogue.team`)."""

    shared = True
    engine = "postgresql"

    def __init__(self, info: TeamInfo) -> None:
        self.team = info

    def schema_version(self, conn: PgConnection) -> int:
        return schema_pg.current_version(conn)

    def migrate(self, conn: PgConnection) -> list[int]:
        return schema_pg.migrate(conn)

    def begin_statement(self, read_only: bool) -> str:
        return "BEGIN"  # row locks, no IMMEDIATE

    def transaction_open(self, conn: PgConnection, is_open: bool) -> None:
        # A lost connection inside a transaction must not be reopened silently (postgres.py).
        conn.transaction_open = is_open

    def open_check(
        self, conn: PgConnection, db_path: Path, quick_check_max_bytes: int
    ) -> list[str]:
        return conn.check()

    def integrity_check(self, conn: PgConnection) -> list[str]:
        return conn.check()

    @contextmanager
    def exclusive(
        self, lib: Library, name: str, wait: bool, poll_s: float, cancel: Any
    ) -> Iterator[None]:
        key = team.lock_key(self.team.uuid, name)
        while not lib.db.query("SELECT pg_try_advisory_lock(?)", (key,))[0][0]:
            if not wait:
                raise LibraryError(
                    f"a {name} is already running in {lib.location}"
                    f"{team.describe_lock(lib, name)}: one at a time per library"
                )
            check_cancel(cancel)
            time.sleep(poll_s)
        try:
            with contextlib.suppress(LibraryError):  # shown to others; best effort
                lib.db.put_meta(f"lock:{name}", f"{team.holder()} since {time.ctime()}")
            yield
        finally:
            with contextlib.suppress(LibraryError, sqlite3.Error):
                lib.db.execute("DELETE FROM meta WHERE key = ?", (f"lock:{name}",))
            with contextlib.suppress(LibraryError, sqlite3.Error):
                lib.db.query("SELECT pg_advisory_unlock(?)", (key,))

    def change_token(self, lib: Library) -> tuple[Any, ...]:
        # The server is not a file: the newest audit row, image, label, metadata and model.
        return tuple(
            lib.db.query(
                "SELECT (SELECT COALESCE(MAX(id), 0) FROM label_audit),"
                " (SELECT COUNT(*) FROM images), (SELECT COALESCE(MAX(added), 0) FROM images),"
                " (SELECT COALESCE(MAX(at), 0) FROM labels), (SELECT COUNT(*) FROM metadata),"
                " (SELECT COALESCE(MAX(at), 0) FROM metadata),"
                " (SELECT COUNT(*) FROM models), (SELECT value FROM meta WHERE key = 'taxonomy')"
            )[0]
        )

    def before_close(self, conn: Any) -> None:
        pass

    def release(self) -> None:
        pass

    def to_db(self, path: str | os.PathLike[str], strict: bool = True) -> str:
        # Relative to the photos root (POSIX separators), so every client maps it to its
        # own mount of the archive.
        return self.team.to_db(str(path), strict)

    def from_db(self, stored: str) -> str:
        return self.team.from_db(stored)

    def paths_from_db(self, stored: Sequence[str]) -> Iterable[str]:
        return (self.team.from_db(p) for p in stored)

    def numbers(self, values: Sequence[Any]) -> Iterable[float | None]:
        return (None if v is None else float(v) for v in values)  # the server may give Decimals

    def check_photo_folder(self, folder: str | os.PathLike[str]) -> None:
        self.team.to_db(str(folder), strict=True)

    def store_model_files(self, db: Db, models_dir: Path, info: ModelInfo) -> None:
        self.team.store_model_files(db, models_dir, info)

    def fetch_model_files(self, db: Db, models_dir: Path, version: str) -> None:
        self.team.fetch_model_files(db, models_dir, version)

    def served_models(self, db: Db) -> frozenset[str]:
        return frozenset(r[0] for r in db.query("SELECT DISTINCT version FROM model_files"))

    def translate(self, exc: sqlite3.Error) -> BaseException:
        name = getattr(exc, "sqlite_errorname", "") or ""
        where = self.team.url
        if name == "SQLITE_FULL":
            return DiskFullError(f"disk full: free space on the server of {where} and retry")
        if name.startswith("SQLITE_READONLY"):
            return ReadOnlyLibraryError(f"{where} is open read-only: it cannot be changed")
        if name in ("SQLITE_CANTOPEN", "SQLITE_IOERR"):
            return LibraryError(f"team library {where}: {exc}")
        return exc

    def job_progress(self, lib: Library, name: str) -> dict[str, Any] | None:
        return jobprogress.read(lib, name)

    def after_explicit_ids(self, db: Db) -> None:
        # Rows put back with their old ids leave the identity sequences behind them.
        with db.lock:
            db.run(db.conn.advance_identities)


def translate_sqlite(exc: sqlite3.Error, db: Path, folder: Path) -> BaseException:
    """A `LibraryError` for SQLite errors the user can act on (damage, a full disk, a
    read-only catalogue); other errors unchanged."""
    name = getattr(exc, "sqlite_errorname", "") or ""
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")):
        return damaged(db, exc)
    if name == "SQLITE_FULL" or (
        name.startswith("SQLITE_IOERR") and atomicio.failed_for_space(exc, db)
    ):
        # A full disk often surfaces as "disk I/O error" (the WAL cannot grow).
        return DiskFullError(atomicio.disk_full_message(db))
    if name.startswith("SQLITE_READONLY"):
        return ReadOnlyLibraryError(
            f"{folder} is open read-only (search only): it cannot be changed"
        )
    return exc


def damaged(db: Path, exc: sqlite3.Error) -> DamagedCatalogueError:
    return DamagedCatalogueError(
        f"{db} is damaged ({exc}); it was left unchanged: restore it from a backup"
    )


@contextmanager
def _file_lock(
    path: Path, name: str, where: str, wait: bool, poll_s: float, cancel: Any
) -> Iterator[None]:
    from fabricsearch import locks

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(
                locks.hold(path, wait=wait, poll_s=poll_s, on_wait=lambda: check_cancel(cancel))
            )
        except locks.LockBusy as busy:
            by = busy.holder
            raise LibraryError(
                f"a {name} is already running in {where}{f' (by {by})' if by else ''}:"
                " one at a time per library"
            ) from None
        except OSError:  # a read-only folder: nothing in it can change anyway
            pass
        yield


def check_cancel(cancel: Any) -> None:
    if cancel is not None:
        from fabricsearch.jobs import check

        check(cancel)


def file_size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


#: Tables that grow with the images; the open check of a large catalogue reads their edges only.
_LARGE_TABLES = frozenset({"images", "labels", "codes", "metadata", "label_audit"})
_EDGE_READS = (
    "SELECT min(id), max(id) FROM images",
    "SELECT min(image_id), max(image_id) FROM labels",
    "SELECT * FROM codes ORDER BY model_version, image_id LIMIT 1",
    "SELECT * FROM codes ORDER BY model_version DESC, image_id DESC LIMIT 1",
)
