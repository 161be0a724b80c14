"""Copy a whole library to a new one: a library folder into a team library and back.

``fabricsearch library copy SRC DEST`` moves an archive between backends with everything a
user made: images (same ids, so codes and caches keyed by id stay valid), labels, fabric
metadata, the label audit, models (rows, codes and files) and the failed-files list. Photo
paths are rewritten between the forms of the two backends: absolute in a folder, relative to
the photos root in a team library (a photo outside the destination's photos root stops the
copy before anything is written). DEST must not hold a library yet; the copy is one
transaction, so a failed or interrupted copy leaves DEST empty.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch.catalogue.library import Library, LibraryError
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
    ("models", ("version", "method", "bits", "path", "created", "metrics", "note", "active")),
    ("codes", ("model_version", "image_id", "code")),
    ("failed", ("path", "reason", "time")),
]  # fmt: skip
#: meta keys that belong to one library, not to its content.
OWN_META = ("uuid", "photos_root", "taxonomy")
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
    ``postgresql://`` URL; ``photos_root`` for a new team library, default: the source's)."""
    with Library.open(source, read_only=True) as src:
        if photos_root is None and src.team is not None:
            photos_root = src.team.recorded_root
        dest = Library.create(destination, taxonomy=src.taxonomy, photos_root=photos_root)
        try:
            rep = CopyReport(src.location, dest.location)
            _copy(src, dest, rep, progress, cancel)
        except BaseException:
            dest.close()
            _discard(destination)
            raise
        dest.close()
    return rep


def _copy(
    src: Library,
    dest: Library,
    rep: CopyReport,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> None:
    models = {m.version: m for m in src.models()}  # a team source downloads its files here
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
        if dest.team is not None:  # explicit ids: move the id sequences past them
            for table in ("images", "label_audit"):
                dest._query(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                    f" COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                )


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
    from fabricsearch.hashing.checkpoint import metadata_path

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


def _discard(destination: str | os.PathLike[str]) -> None:
    """Remove what a failed copy created (the transaction already left the rows out)."""
    if isinstance(destination, str) and destination.startswith(("postgresql://", "postgres://")):
        # The copy's rows were rolled back; forget the library itself (its uuid) so the
        # copy can be retried. The empty schema stays.
        import contextlib
        import sqlite3

        from fabricsearch.catalogue.postgres import PgConnection

        with contextlib.suppress(sqlite3.Error):
            conn = PgConnection(destination)
            try:
                conn.execute("DELETE FROM meta")
            finally:
                conn.close()
        return
    folder = Path(destination).expanduser().resolve()
    with_catalogue = folder / "catalogue.sqlite"
    if with_catalogue.exists():
        for name in ("catalogue.sqlite", "catalogue.sqlite-wal", "catalogue.sqlite-shm"):
            (folder / name).unlink(missing_ok=True)


__all__ = ["CopyReport", "LibraryError", "copy_library"]
