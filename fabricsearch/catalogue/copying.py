"""Copy a whole library to a new one: a library folder into a team library and back.

``fabricsearch library copy SRC DEST`` moves an archive between backends with everything a
user made: images (same ids, so codes and caches keyed by id stay valid), labels, fabric
metadata, the label audit, models (rows, codes and files) and the failed-files list. Photo
paths are rewritten between the forms of the two backends: absolute in a folder, relative to
the photos root in a team library (a photo outside the destination's photos root stops the
copy before anything is written). DEST must not hold a library yet.

A copy stopped at any point (an error, Ctrl-C, ``kill -9``, a power cut) never leaves
something that looks like a finished library, and running it again starts it over:

* **a folder**: the library is built in a hidden folder beside DEST (``.NAME.copying``) and
  renamed to DEST at the end (into an existing DEST folder: its parts are moved in, the
  catalogue last), so DEST holds no catalogue until the copy is complete. A rerun clears what
  an interrupted one left there; a lock on that folder keeps two copies apart.
* **a team library**: the rows are one transaction, and the library is created with a
  ``copy unfinished`` meta key that the same final transaction deletes. Opening a library that
  still has it says it is an unfinished copy; a rerun forgets it and starts over (a PostgreSQL
  advisory lock keeps two copies into one database apart).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch.catalogue.library import DB_NAME, Library, LibraryError
from fabricsearch.catalogue.team import UNFINISHED
from fabricsearch.jobs import CancelToken, ProgressFn, check, report

#: (table, columns) in the order rows must be written (foreign keys).
TABLES: list[tuple[str, tuple[str, ...]]] = [
    ("images", ("id", "path", "sha256", "size", "mtime", "width", "height", "added", "palette", "split")),
    ("labels", ("image_id", "coarse", "fine", "tightness", "who", "at")),
    (
        "metadata",
        (
            "image_id", "article", "supplier", "composition", "weight", "width", "price",
            "season", "notes", "tags", "who", "at",
        ),
    ),
    ("label_audit", ("id", "image_id", "field", "old", "new", "who", "at")),
    (
        "models",
        ("version", "method", "bits", "path", "created", "metrics", "note", "active", "kind"),
    ),
    ("codes", ("model_version", "image_id", "code")),
    ("failed", ("path", "reason", "time")),
]  # fmt: skip
#: The meta key of a team library whose copy has not finished (catalogue/team.py refuses to
#: open it); written with the library's uuid, deleted by the copy's final transaction.
#: meta keys that belong to one library, not to its content.
OWN_META = ("uuid", "photos_root", "taxonomy", UNFINISHED)
BATCH = 2000


@dataclass
class CopyReport:
    source: str
    destination: str
    rows: dict[str, int] = field(default_factory=dict)
    model_files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "destination": self.destination,
            "rows": self.rows,
            "model_files": self.model_files,
        }


def copy_library(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    photos_root: str | os.PathLike[str] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> CopyReport:
    """Copy the library at ``source`` into a new library at ``destination`` (a folder or a
    ``postgresql://`` URL; ``photos_root`` for a new team library, default: the source's).
    Interrupted at any point, ``destination`` is no library (a folder) or one that refuses to
    open as an unfinished copy (a team library), and the same call again starts it over."""
    with Library.open(source, read_only=True) as src:
        if _is_url(destination):
            if photos_root is None and src.team is not None:
                photos_root = src.team.recorded_root
            return _copy_to_team(src, str(destination), photos_root, progress, cancel)
        return _copy_to_folder(src, Path(destination), progress, cancel)


def staging_folder(destination: str | os.PathLike[str]) -> Path:
    """Where a copy into the folder ``destination`` is built before it is renamed."""
    final = Path(destination).expanduser().resolve()
    return final.with_name(f".{final.name}.copying")


def _copy_to_folder(
    src: Library, destination: Path, progress: ProgressFn | None, cancel: CancelToken | None
) -> CopyReport:
    final = destination.expanduser().resolve()
    if (final / DB_NAME).exists():
        raise LibraryError(f"{final} already holds a library")
    if final.exists() and not final.is_dir():
        raise LibraryError(f"{final} is not a folder")
    staging = staging_folder(final)
    with _locked(staging, final):
        _empty(staging)  # what an interrupted copy left
        try:
            dest = Library.create(staging, taxonomy=src.taxonomy)
            try:
                rep = CopyReport(src.location, str(final))
                _copy(src, dest, rep, progress, cancel)
            finally:
                dest.close()
            for name in (f"{DB_NAME}-wal", f"{DB_NAME}-shm"):  # empty after a clean close
                (staging / name).unlink(missing_ok=True)
            _move_into_place(staging, final)
        except BaseException:
            with contextlib.suppress(OSError):
                _empty(staging)
                staging.rmdir()
            raise
        with contextlib.suppress(OSError):
            staging.rmdir()  # still there when DEST existed (its parts were moved in)
    return rep


@contextmanager
def _locked(staging: Path, final: Path) -> Iterator[None]:
    """One copy at a time into ``final``: an exclusive lock on ``.NAME.copying.lock`` beside
    the staging folder (`locks`, Windows too; released by the OS when the copy dies, so a rerun
    after a kill finds it free; removed when the copy ends)."""
    from fabricsearch import locks

    staging.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(locks.hold(staging.with_name(staging.name + ".lock"), remove=True))
        except locks.LockBusy:
            raise LibraryError(f"another `library copy` into {final} is running") from None
        if (final / DB_NAME).exists():  # made by a copy that finished while we waited to look
            raise LibraryError(f"{final} already holds a library")
        staging.mkdir(exist_ok=True)
        yield


def _empty(folder: Path) -> None:
    for entry in list(folder.iterdir()) if folder.is_dir() else []:
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _move_into_place(staging: Path, final: Path) -> None:
    """Give the finished copy its name: rename the staging folder to ``final``, or, when
    ``final`` is a folder that already holds something, move each part in, the catalogue
    last (until then ``final`` is no library)."""
    if (final / DB_NAME).exists():
        raise LibraryError(f"{final} already holds a library")
    if final.is_dir() and not any(final.iterdir()):
        final.rmdir()
    if not final.exists():
        os.rename(staging, final)
        return
    for entry in sorted(staging.iterdir()):
        if entry.name != DB_NAME:
            _merge(entry, final / entry.name)
    _publish(staging / DB_NAME, final / DB_NAME)


def _merge(src: Path, dst: Path) -> None:
    if src.is_dir() and not src.is_symlink() and dst.is_dir():
        for child in sorted(src.iterdir()):
            _merge(child, dst / child.name)
        src.rmdir()
    else:
        os.replace(src, dst)


def _publish(catalogue: Path, target: Path) -> None:
    """The step that makes the copy a library."""
    os.replace(catalogue, target)


def _copy_to_team(
    src: Library,
    url: str,
    photos_root: str | os.PathLike[str] | None,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> CopyReport:
    from fabricsearch.catalogue import team

    guard = team._connect(url, read_only=False)
    try:
        # Held on its own connection for the whole copy; the server drops it when we die.
        if not guard.execute("SELECT pg_try_advisory_lock(?)", (_team_lock(),)).fetchone()[0]:
            raise LibraryError(
                f"another `library copy` into {team.postgres.display_url(url)} is running"
            )
        _forget_unfinished(guard)
        note = json.dumps({"source": src.location, "started": time.time(), "by": team.holder()})
        dest = team.create_team(
            Library, url, src.taxonomy, photos_root, extra_meta={UNFINISHED: note}
        )
        try:
            rep = CopyReport(src.location, dest.location)
            _copy(src, dest, rep, progress, cancel)
        except BaseException:
            dest.close()
            _discard(url)
            raise
        dest.close()
    finally:
        guard.close()
    return rep


def _team_lock() -> int:
    from fabricsearch.catalogue import team

    return team.lock_key("", "library copy")


def _forget_unfinished(conn: Any) -> None:
    """An interrupted copy into this database: forget it (its rows were never committed) so
    the copy starts over. A finished library is left alone (the create refuses it)."""
    from fabricsearch.catalogue import schema_pg, team

    if schema_pg.current_version(conn) == 0 or team._meta(conn, UNFINISHED) is None:
        return
    if conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]:
        return  # not what a copy leaves: never delete a library with images
    conn.execute("DELETE FROM meta")


def _copy(
    src: Library,
    dest: Library,
    rep: CopyReport,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> None:
    models = {m.version: m for m in src.sync_models()}  # a team source downloads its files
    total = sum(_count(src, t) for t, _cols in TABLES)
    done = 0
    with dest.atomic():
        for table, cols in TABLES:
            rows = src._query(f"SELECT {', '.join(cols)} FROM {table} ORDER BY 1")
            rows = [_convert(src, dest, table, cols, r) for r in rows]
            marks = ", ".join("?" * len(cols))
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({marks})"
            for start in range(0, len(rows), BATCH):
                check(cancel)
                with dest._lock:
                    dest._run(dest._c.executemany, sql, rows[start : start + BATCH])
                done += len(rows[start : start + BATCH])
                report(progress, "copy", done, total, "rows")
            rep.rows[table] = len(rows)
            if table == "models":
                rep.model_files = _copy_model_files(dest, models)
        for key, value in src._query("SELECT key, value FROM meta"):
            if key not in OWN_META and not key.startswith("lock:"):
                dest._put_meta(key, value)
        # A team library opens only once this commits (with everything above).
        dest._execute("DELETE FROM meta WHERE key = ?", (UNFINISHED,))
        dest.backend.after_explicit_ids(dest.db)  # rows were copied with their ids


def _count(lib: Library, table: str) -> int:
    return int(lib._query(f"SELECT COUNT(*) FROM {table}")[0][0])


def _convert(
    src: Library, dest: Library, table: str, cols: tuple[str, ...], row: tuple[Any, ...]
) -> tuple[Any, ...]:
    r = list(row)
    if table in ("images", "failed"):
        k = cols.index("path")
        absolute = src._path_from_db(r[k])
        r[k] = dest._db_path_of(absolute, strict=table == "images")
    elif table == "models":
        k = cols.index("path")
        r[k] = f"models/{Path(r[k]).name}"
    for k, v in enumerate(r):
        if isinstance(v, memoryview):
            r[k] = bytes(v)
    return tuple(r)


def _copy_model_files(dest: Library, models: dict[str, Any]) -> int:
    from fabricsearch.modelfiles import metadata_path

    n = 0
    dest.models_dir.mkdir(parents=True, exist_ok=True)
    for info in models.values():
        files = [p for p in (Path(info.path), metadata_path(Path(info.path))) if p.is_file()]
        if dest.team is not None:
            dest.team.upload_model_files(dest, info)
        else:
            for p in files:
                if p.resolve() != (dest.models_dir / p.name).resolve():
                    shutil.copyfile(p, dest.models_dir / p.name)
        n += len(files)
    return n


def _discard(url: str) -> None:
    """Forget a team library whose copy failed (its rows were rolled back): its uuid and
    meta, so the copy can be retried. The empty schema stays."""
    import sqlite3

    from fabricsearch.catalogue.postgres import PgConnection

    with contextlib.suppress(sqlite3.Error):
        conn = PgConnection(url)
        try:
            conn.execute("DELETE FROM meta")
        finally:
            conn.close()


def _is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


__all__ = ["UNFINISHED", "CopyReport", "LibraryError", "copy_library", "staging_folder"]
