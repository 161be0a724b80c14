"""Library: the catalogue of one fabric archive, and the folders beside it.

A `Library` is composed of a `Db` (catalogue/db.py: the connection, its lock and its
transactions; one connection per library, usable from any thread), a `Backend`
(catalogue/backend.py: what differs between a library folder on SQLite and a team library on
PostgreSQL) and stores that each own a few tables, each given the `Db` and what else it
needs: `ImagesStore` (images, failed files), `LabelsStore` (labels and their audit),
`TaxonomyStore`, `ModelsStore` (models, codes, model files), `MetadataStore` and text search,
`TaxonomyEditor`, `EditsStore` (remove, restore, relocate). Most methods here delegate to
them; opening and creating, locks, columns and label arrays, splits, thumbnails and `info`
are the library's own (docs/architecture.md, "Storage").
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fabricsearch import atomicio, livefiles
from fabricsearch.catalogue import schema
from fabricsearch.catalogue.backend import (
    Backend,
    SQLiteBackend,
    TeamBackend,
    damaged,
    translate_sqlite,
)
from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.edits import (
    EditsStore,
    RelocateReport,
    RemovalBatch,
    RemoveReport,
    RestoreReport,
)
from fabricsearch.catalogue.errors import (
    DamagedCatalogueError,
    DiskFullError,
    LibraryError,
    MissingImageError,
    ReadOnlyLibraryError,
)
from fabricsearch.catalogue.images_store import (
    PALETTE_SHAPE,
    FailedFile,
    ImageRecord,
    ImagesStore,
    normalise_path,
    split_for_sha,
)
from fabricsearch.catalogue.labels_store import UNSET, LabelsStore
from fabricsearch.catalogue.metadata import FabricMetadata, MetadataStore
from fabricsearch.catalogue.models_store import (
    MODEL_KINDS,
    REPLACEABLE_KINDS,
    ModelInfo,
    ModelsStore,
)
from fabricsearch.catalogue.taxonomy_edit import TaxonomyChange, TaxonomyEditor
from fabricsearch.catalogue.taxonomy_store import TaxonomyStore
from fabricsearch.catalogue.textsearch import TextQuery, text_search
from fabricsearch.taxonomy import Taxonomy, TaxonomyError, split_coarse

if TYPE_CHECKING:
    from fabricsearch.catalogue.postgres import PgConnection
    from fabricsearch.catalogue.team import TeamInfo
    from fabricsearch.jobs import CancelToken, ProgressFn
    from fabricsearch.similarity import LabelArrays

DB_NAME = "catalogue.sqlite"
#: Set to 1 to open every library read-only (search only), whatever its permissions.
READ_ONLY_ENV = "FABRICSEARCH_READ_ONLY"


class Library:
    """One fabric archive: ``catalogue.sqlite`` plus ``thumbs/``, ``models/``, ``indexes/``."""

    def __init__(
        self,
        folder: Path,
        conn: sqlite3.Connection | PgConnection,
        read_only: bool = False,
        team: TeamInfo | None = None,
    ) -> None:
        #: The library folder; for a team library, this client's cache folder of it
        #: (thumbnails, features, index and model files; docs/team-library.md).
        self.folder = folder
        self.db_path = folder / DB_NAME
        #: A team library's server, photos root and id; None for a library folder.
        self.team = team
        #: What the user names to open it again: the folder, or the URL (no password).
        self.location = team.url if team is not None else str(folder)
        #: Opened for search only (the folder or the catalogue is not writable, or asked for):
        #: every change raises `ReadOnlyLibraryError`.
        self.read_only = read_only
        # A read-only library keeps what search caches (thumbnails, index files) in a
        # per-user folder instead of its own.
        cache = _client_cache(folder) if read_only and team is None else folder
        self.thumbs_dir = cache / "thumbs"
        self.models_dir = folder / "models"
        self.indexes_dir = cache / "indexes"
        #: What differs between SQLite and PostgreSQL (catalogue/backend.py).
        self.backend: Backend = SQLiteBackend(self.db_path) if team is None else TeamBackend(team)
        #: The connection, its lock and its transactions (catalogue/db.py).
        self.db = Db(conn, self.backend, read_only, where=folder)
        # The stores this library is made of (docs/architecture.md, "Storage").
        self.taxonomy_store = TaxonomyStore(self.db)
        self.image_store = ImagesStore(self.db)
        self.model_store = ModelsStore(self.db, folder, self.models_dir, self.indexes_dir)
        self.label_store = LabelsStore(self.db, self.taxonomy_store.get)
        self.metadata_store = MetadataStore(self.db)
        self.taxonomy_editor = TaxonomyEditor(self.db, self.taxonomy_store)
        self.edits = EditsStore(self.db, self.image_store, self.model_store, folder, self.location)

    # --- opening and closing ------------------------------------------------------------
    @classmethod
    def create(
        cls,
        folder: str | os.PathLike[str],
        taxonomy: Taxonomy | None = None,
        photos_root: str | os.PathLike[str] | None = None,
    ) -> Library:
        """Create a new library in ``folder`` (which may exist, but must not hold a catalogue),
        or a team library at a ``postgresql://`` URL (``photos_root`` required: photos are
        stored relative to it)."""
        if _is_url(folder):
            from fabricsearch.catalogue import team

            return team.create_team(cls, str(folder), taxonomy, photos_root)
        folder = Path(folder).expanduser().resolve()
        if (folder / DB_NAME).exists():
            raise LibraryError(f"{folder} already holds a library")
        if folder.exists() and not folder.is_dir():
            raise LibraryError(f"{folder} is not a folder")
        folder.mkdir(parents=True, exist_ok=True)
        lib = cls(folder, _connect(folder / DB_NAME))
        try:
            lib._setup()
            with lib.atomic():
                tax = taxonomy if taxonomy is not None else Taxonomy.default()
                lib._put_meta("taxonomy", json.dumps(tax.to_dict()))
                lib._put_meta("created", repr(time.time()))
        except BaseException:
            lib.close()
            raise
        return lib

    @classmethod
    def open(
        cls,
        folder: str | os.PathLike[str],
        read_only: bool | None = None,
        photos_root: str | os.PathLike[str] | None = None,
    ) -> Library:
        """Open an existing library (a folder, or a team library's ``postgresql://`` URL;
        ``photos_root`` maps its photos on this client); raises `LibraryError` if it is not one.

        A damaged catalogue (0 bytes, not SQLite, failing SQLite's quick check, or written
        by a newer fabricsearch) raises `DamagedCatalogueError` and is left exactly as it
        is. ``read_only=None`` opens read-only when the folder or the catalogue is not
        writable (search works; changes raise `ReadOnlyLibraryError`)."""
        if _is_url(folder):
            from fabricsearch.catalogue import team

            return team.open_team(cls, str(folder), bool(read_only), photos_root)
        folder = Path(folder).expanduser().resolve()
        db = folder / DB_NAME
        if not db.is_file():
            raise LibraryError(f"{folder} is not a fabricsearch library (no {DB_NAME})")
        if read_only is None:
            read_only = os.environ.get(READ_ONLY_ENV, "") not in ("", "0") or not (
                os.access(folder, os.W_OK) and os.access(db, os.W_OK)
            )
        with livefiles.guard():  # no other thread opens or reads it between check and connect
            _check_catalogue_file(db)
            try:
                conn = _connect(db, read_only=read_only)
            except sqlite3.Error as exc:
                raise damaged(db, exc) from exc
            lib = cls(folder, conn, read_only=read_only)
        try:
            lib._check_schema()
            lib._setup()
        except sqlite3.DatabaseError as exc:
            lib.close()
            raise translate_sqlite(exc, db, folder) from exc
        except BaseException:
            lib.close()
            raise
        return lib

    def _check_schema(self) -> None:
        """Refuse a catalogue newer than this code or failing SQLite's quick check, before
        anything (a migration) could write to it."""
        with self._lock:
            have = schema.current_version(self._c)
            if have > schema.SCHEMA_VERSION:
                raise DamagedCatalogueError(
                    f"{self.db_path} was written by a newer fabricsearch (catalogue schema"
                    f" {have}; this version reads up to {schema.SCHEMA_VERSION}):"
                    " update fabricsearch to open it"
                )
            problems = self._open_check()
            if problems != ["ok"]:
                raise DamagedCatalogueError(
                    f"{self.db_path} is damaged ({problems[0]}); it was left unchanged:"
                    " restore it from a backup"
                )
            if self.read_only and have < schema.SCHEMA_VERSION:
                raise ReadOnlyLibraryError(
                    f"{self.folder} is read-only and its catalogue needs an upgrade (schema"
                    f" {have} → {schema.SCHEMA_VERSION}): open it once where it is writable"
                )

    def _open_check(self) -> list[str]:
        """The backend's check at open (`SQLiteBackend.open_check`: SQLite's quick check up to
        `QUICK_CHECK_MAX_BYTES`, the cheap part beyond; docs/library.md)."""
        return self.backend.open_check(self._c, self.db_path, QUICK_CHECK_MAX_BYTES)

    def _setup(self) -> None:
        with self._lock:
            if not self.read_only:
                self.backend.migrate(self._c)
                # Temp files a killed writer (or a version before atomicio) left behind.
                for d in (self.models_dir, self.indexes_dir):
                    atomicio.sweep_stale_temps(d)
        for d in (self.thumbs_dir, self.models_dir, self.indexes_dir):
            if self.read_only and d == self.models_dir:
                continue
            d.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def exclusive(
        self, name: str, wait: bool = False, poll_s: float = 0.2, cancel: Any = None
    ) -> Iterator[None]:
        """Hold the library's lock ``name`` (``"training"``, ``"import"``): one holder at a time
        across processes and, for a team library, across clients (a PostgreSQL advisory lock;
        a library folder uses a lock file). A holder that dies releases it (the server ends its
        session; the OS closes its file). Busy: raises `LibraryError` naming the holder, or with
        ``wait`` polls until free (``cancel``: a `jobs.CancelToken` that stops the wait)."""
        with self.backend.exclusive(self, name, wait, poll_s, cancel):
            yield

    def job_progress(self, name: str) -> dict[str, Any] | None:
        """The recorded progress of the job holding the lock ``name`` (``"training"``) on a
        team library, from whichever client runs it; None when none runs (or for a folder)."""
        return self.backend.job_progress(self, name)

    def change_token(self) -> tuple[Any, ...]:
        """A value that changes whenever anyone commits a change to the catalogue (another
        window, the CLI, another client of a team library); cheap enough to poll every second
        or two. A library folder: size and mtime of the catalogue and its WAL. A team library:
        the newest audit row, image, label, metadata and model (the server is not a file)."""
        return self.backend.change_token(self)

    def label_history(self, image_id: int | None = None) -> list[dict[str, Any]]:
        """Every recorded label change (oldest first), of one image or all: ``image_id, field,
        old, new, who, at`` (values as text; tightness as repr)."""
        return self.label_store.label_history(image_id)

    def require_writable(self, action: str) -> None:
        """Raise `ReadOnlyLibraryError` naming ``action`` when the library is read-only."""
        self.db.require_writable(action)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Library:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self.db.closed

    # --- low level: the connection (catalogue/db.py) ---------------------------------------
    @property
    def _c(self) -> Any:
        return self.db.conn

    @property
    def _lock(self) -> threading.RLock:
        return self.db.lock

    def atomic(self) -> AbstractContextManager[None]:
        """A transaction (BEGIN IMMEDIATE … COMMIT); nested blocks become savepoints.

        Holds the library lock for its whole duration, so other threads see either none or
        all of it."""
        return self.db.atomic()

    def _run(self, fn: Any, *args: Any) -> Any:
        return self.db.run(fn, *args)

    def _execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self.db.execute(sql, params)

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.db.query(sql, params)

    def _put_meta(self, key: str, value: str) -> None:
        self.db.put_meta(key, value)

    def _meta(self, key: str) -> str | None:
        return self.db.meta(key)

    def integrity_check(self) -> str:
        """``'ok'`` or SQLite's description of the damage."""
        with self._lock:
            return "\n".join(self._run(self.backend.integrity_check, self._c))

    def schema_version(self) -> int:
        with self._lock:
            return self.backend.schema_version(self._c)

    # --- taxonomy ---------------------------------------------------------------------------
    @property
    def taxonomy(self) -> Taxonomy:
        """The taxonomy stored in this library (a copy: change it via `add_categories`)."""
        return self.taxonomy_store.get()

    @property
    def _taxonomy(self) -> Taxonomy | None:
        """The cached taxonomy (None: read it again; `TaxonomyStore.cached`)."""
        return self.taxonomy_store.cached

    @_taxonomy.setter
    def _taxonomy(self, value: Taxonomy | None) -> None:
        self.taxonomy_store.cached = value

    def stored_taxonomy(self) -> Taxonomy:
        """The taxonomy as stored now, read again: another process (the CLI, another window,
        a team library's other clients) may have edited it since this one last read it."""
        with self._lock:
            self._taxonomy = None
        return self.taxonomy

    def add_categories(
        self, coarse_ids: Sequence[str] = (), fine_ids: Sequence[str] = ()
    ) -> list[str]:
        """Append categories to the stored taxonomy; returns the ids that were new.

        ``coarse_ids`` may be ``major/minor`` (the major is added too if needed) or ``major``."""
        if coarse_ids or fine_ids:
            self.require_writable("add categories")
        with self.atomic():
            tax = self.taxonomy
            new: list[str] = []
            for cid in coarse_ids:
                if tax.has_coarse(cid):
                    continue
                major, minor = split_coarse(cid)
                if minor is None:
                    tax.add_major(major)
                else:
                    if major not in tax.majors:
                        new.append(major)
                    tax.add_minor(f"{major}/{minor}")
                new.append(cid.strip())
            for fid in fine_ids:
                if fid not in tax.fine:
                    tax.add_fine(fid)
                    new.append(fid)
            if new:
                self.taxonomy_store.put(tax)
        return new

    # --- the taxonomy editor (catalogue/taxonomy_edit.py) ----------------------------------
    def taxonomy_add(self, kind: str, category_id: str, name: str | None = None) -> TaxonomyChange:
        """Add a category (``major``, ``major/minor`` or a fine id) with a display name."""
        return self.taxonomy_editor.taxonomy_add(kind, category_id, name)

    def taxonomy_rename(self, kind: str, category_id: str, name: str) -> TaxonomyChange:
        """Give a category a new display name (its id, and so every label, stays)."""
        return self.taxonomy_editor.taxonomy_rename(kind, category_id, name)

    def taxonomy_merge(self, kind: str, source: str, target: str) -> TaxonomyChange:
        """Relabel every image of ``source`` with ``target`` and retire ``source``."""
        return self.taxonomy_editor.taxonomy_merge(kind, source, target)

    def taxonomy_retire(
        self, kind: str, category_id: str, clear_labels: bool = False
    ) -> TaxonomyChange:
        """Retire a category (refused while images are labelled with it, unless
        ``clear_labels``)."""
        return self.taxonomy_editor.taxonomy_retire(kind, category_id, clear_labels)

    def undo_taxonomy_change(self, change: TaxonomyChange) -> list[int]:
        """Reverse ``change`` on the library as it is now (`TaxonomyEditor`); returns the
        images left alone because they were labelled again since."""
        return self.taxonomy_editor.undo_taxonomy_change(change)

    # --- images (catalogue/images_store.py) ----------------------------------------------
    def count(self, labelled: bool | None = None) -> int:
        return self.image_store.count(labelled)

    def image_ids(self, labelled: bool | None = None) -> list[int]:
        """Image ids in ascending order; optionally only labelled / unlabelled ones."""
        return self.image_store.image_ids(labelled)

    def images(self, ids: Sequence[int] | None = None) -> list[ImageRecord]:
        """Records for ``ids`` in that order (all images by ascending id when None)."""
        return self.image_store.images(ids)

    def get(self, image_id: int) -> ImageRecord:
        return self.images([image_id])[0]

    def first_images(self, limit: int) -> list[ImageRecord]:
        """The first ``limit`` records by ascending id (what a window shows first)."""
        return self.image_store.first_images(limit)

    def image_column(self, column: str) -> tuple[np.ndarray, list[Any]]:
        """(ids, values) of one image column by ascending id: ``added``, ``mtime`` or ``path``
        (a sort key of the window's grid without a record per image)."""
        return self.image_store.image_column(column)

    def find_by_path(self, path: str | os.PathLike[str]) -> ImageRecord | None:
        return self.image_store.find_by_path(path)

    def find_by_sha(self, sha256: str) -> ImageRecord | None:
        return self.image_store.find_by_sha(sha256)

    # Importer API: used by catalogue.importer (same package), not by other packages.
    def file_states(self) -> dict[str, tuple[int, int, float, str]]:
        """path → (id, size, mtime, sha256) for every image."""
        return self.image_store.file_states()

    def add_image(
        self,
        path: str,
        sha256: str,
        size: int,
        mtime: float,
        width: int,
        height: int,
        palette: np.ndarray,
    ) -> int:
        """Insert one image row (call inside `atomic()` for batches); returns its id."""
        return self.image_store.add_image(path, sha256, size, mtime, width, height, palette)

    def update_image(
        self,
        image_id: int,
        *,
        path: str | None = None,
        sha256: str | None = None,
        size: int | None = None,
        mtime: float | None = None,
        width: int | None = None,
        height: int | None = None,
        palette: np.ndarray | None = None,
    ) -> None:
        """Change stored facts of one image. New content (sha256) drops its stale hash codes."""
        self.image_store.update_image(
            image_id,
            path=path,
            sha256=sha256,
            size=size,
            mtime=mtime,
            width=width,
            height=height,
            palette=palette,
        )

    def remove_images(self, ids: Sequence[int]) -> None:
        """Forget images (labels and codes go with them; the files are not touched)."""
        self.image_store.remove_images(ids)

    def record_failure(self, path: str, reason: str) -> None:
        self.image_store.record_failure(path, reason)

    def clear_failure(self, path: str) -> None:
        self.image_store.clear_failure(path)

    def failed_files(self) -> list[FailedFile]:
        return self.image_store.failed_files()

    def _db_path_of(self, path: str | os.PathLike[str], strict: bool = True) -> str:
        return self.image_store.to_db(path, strict)

    def _path_from_db(self, stored: str) -> str:
        return self.image_store.from_db(stored)

    def _record(self, r: tuple[Any, ...]) -> ImageRecord:
        return self.image_store.record(r)

    def check_photo_folder(self, folder: str | os.PathLike[str]) -> None:
        """Raise `LibraryError` when photos in ``folder`` cannot be catalogued here (a team
        library's photos must lie under its photos root)."""
        self.image_store.check_photo_folder(folder)

    def label_times(self) -> list[float | None]:
        """When each labelled image's labels were last set (its `ImageRecord.labelled_at`)."""
        return self.label_store.label_times()

    # --- labels -----------------------------------------------------------------------------
    def set_labels(
        self,
        ids: Sequence[int],
        coarse: str | None = UNSET,
        fine: str | None = UNSET,
        tightness: float | None = UNSET,
        who: str | None = None,
    ) -> None:
        """Set the given label fields (None = unknown; UNSET = leave as is) on all ``ids``
        in one transaction, audited (`LabelsStore.set_labels`)."""
        self.label_store.set_labels(ids, coarse, fine, tightness, who)

    def label_arrays(self, ids: Sequence[int]) -> LabelArrays:
        """`similarity.LabelArrays` aligned with ``ids`` (labels and palettes); raises
        `KeyError` for an id that is not in the catalogue."""
        want = np.asarray([int(i) for i in ids], dtype=np.int64)
        if len(want) > _SCAN_ABOVE:  # one pass over the table beats thousands of IN lists
            cols = self.columns(paths=False)
            rows = np.searchsorted(cols.ids, want)
            found = rows < len(cols.ids)
            found[found] = cols.ids[rows[found]] == want[found]
            if not found.all():
                raise MissingImageError(f"no images with ids {want[~found][:10].tolist()}")
            return cols.take(rows).label_arrays(self.taxonomy)
        by_id: dict[int, tuple[Any, ...]] = {}
        base = (
            "SELECT i.id, i.palette, l.coarse, l.fine, l.tightness"
            " FROM images i LEFT JOIN labels l ON l.image_id = i.id"
        )
        with self._lock:
            unique = sorted(set(want.tolist()))
            for start in range(0, len(unique), 500):  # stay under SQLite's variable limit
                chunk = unique[start : start + 500]
                for r in self._query(
                    base + f" WHERE i.id IN ({','.join('?' * len(chunk))})", chunk
                ):
                    by_id[r[0]] = r
        missing = [i for i in want.tolist() if i not in by_id]
        if missing:
            raise MissingImageError(f"no images with ids {missing[:10]}")
        rows_ = [by_id[i] for i in want.tolist()]
        return _label_arrays(
            self.taxonomy,
            [r[2] for r in rows_],
            [r[3] for r in rows_],
            [None if r[4] is None else float(r[4]) for r in rows_],
            _palettes([r[1] for r in rows_]),
        )

    def columns(self, paths: bool = True) -> CatalogueColumns:
        """Every image as columns by ascending id, read in one statement (one snapshot): what
        search keeps in memory, without an `ImageRecord` per image (1M images: seconds, not
        minutes). ``paths=False`` leaves the paths out (empty list)."""
        sql = (
            f"SELECT i.id, {'i.path' if paths else 'NULL'}, i.sha256, i.palette,"
            " l.coarse, l.fine, l.tightness"
            " FROM images i LEFT JOIN labels l ON l.image_id = i.id ORDER BY i.id"
        )
        names: dict[Any, Any] = {None: None}  # one str object per distinct label value
        # Millions of short-lived row tuples would trigger the cyclic collector again and
        # again (a third of the time at 1M images); they hold no cycles.
        collecting = gc.isenabled()
        gc.disable()
        try:
            return self._columns(sql, paths, names)
        finally:
            if collecting:
                gc.enable()

    def _columns(self, sql: str, paths: bool, names: dict[Any, Any]) -> CatalogueColumns:
        ids: list[np.ndarray] = []
        path_col: list[str] = []
        shas: list[np.ndarray] = []
        pals: list[np.ndarray] = []
        coarse: list[str | None] = []
        fine: list[str | None] = []
        tight: list[float | None] = []
        with self._lock:
            cur = self._run(self._c.execute, sql)
            fetch = getattr(cur, "fetchmany", None)
            while True:
                chunk = self._run(fetch, _FETCH_ROWS) if fetch else self._run(cur.fetchall)
                if not chunk:
                    break
                cid, cpath, csha, cpal, cco, cfi, cti = zip(*chunk, strict=True)
                ids.append(np.fromiter(cid, np.int64, len(cid)))
                if paths:
                    path_col.extend(self.backend.paths_from_db(cpath))
                shas.append(_digests(csha))
                pals.append(_palettes(cpal))
                coarse.extend(map(names.setdefault, cco, cco))  # C loops, no frame per row
                fine.extend(map(names.setdefault, cfi, cfi))
                tight.extend(self.backend.numbers(cti))
                if not fetch:
                    break
        return CatalogueColumns(
            ids=np.concatenate(ids) if ids else np.zeros(0, np.int64),
            paths=path_col,
            sha=np.concatenate(shas) if shas else np.zeros((0, 32), np.uint8),
            palettes=np.concatenate(pals) if pals else np.zeros((0, *PALETTE_SHAPE), np.float32),
            coarse=coarse,
            fine=fine,
            tightness=tight,
        )

    def label_counts(self) -> dict[str, int]:
        """Labelled images per coarse category (``'—'`` for labelled but coarse unknown)."""
        return self.label_store.label_counts()

    # --- splits -----------------------------------------------------------------------------
    def splits(self) -> dict[int, str]:
        """Image id → ``train`` / ``val`` / ``test``. Stored with each row at insert; a row
        without one (a catalogue from before splits) gets the same deterministic value from
        its content hash. A getter: it writes nothing (works on a read-only library too)."""
        rows = self._query("SELECT id, split, sha256 FROM images ORDER BY id")
        return {int(i): split or split_for_sha(sha) for i, split, sha in rows}

    # --- thumbnails -------------------------------------------------------------------------
    def thumb_path(self, sha256: str, size: int = 256) -> Path:
        return self.thumbs_dir / sha256[:2] / f"{sha256}_{size}.jpg"

    def write_thumbnail(self, sha256: str, size: int, data: bytes) -> Path:
        """Write thumbnail bytes atomically (temp file + rename: never a half-written JPEG)."""
        path = self.thumb_path(sha256, size)
        path.parent.mkdir(parents=True, exist_ok=True)
        return atomicio.write_bytes_atomic(path, data)

    def thumbnail(self, record_or_id: ImageRecord | int, size: int = 256) -> Path:
        """Path of the cached JPEG thumbnail, regenerated from the original if missing."""
        from fabricsearch import imaging

        rec = record_or_id if isinstance(record_or_id, ImageRecord) else self.get(record_or_id)
        path = self.thumb_path(rec.sha256, size)
        if path.is_file():
            return path
        try:
            rgb = imaging.load_rgb(rec.path, max_side=size)
        except imaging.ImageError as exc:
            raise LibraryError(f"cannot make a thumbnail of {rec.path}: {exc}") from exc
        return self.write_thumbnail(rec.sha256, size, imaging.thumbnail_jpeg(rgb, size))

    # --- models and codes (catalogue/models_store.py) -------------------------------------
    def add_model(self, info: ModelInfo, activate: bool | None = None) -> None:
        """Record a trained model. It becomes active if ``activate`` is true, or (by default)
        when no model is active yet, so a first training run is searchable at once."""
        self.model_store.add_model(info, activate)

    def models(self) -> list[ModelInfo]:
        """All models, newest first (a getter: `ModelsStore.models`)."""
        return self.model_store.models()

    def active_model(self) -> ModelInfo | None:
        """The search model (None: none yet); a getter, like `models`."""
        return self.model_store.active_model()

    def fetch_model(self, version: str) -> ModelInfo:
        """The model ``version`` with its files on this machine (`ModelsStore.fetch_model`;
        may download: never on the GUI thread)."""
        return self.model_store.fetch_model(version)

    def sync_models(self) -> list[ModelInfo]:
        """Every model with its files on this machine (`fetch_model` of each), newest first."""
        return self.model_store.sync_models()

    def set_active_model(self, version: str) -> None:
        self.model_store.set_active_model(version)

    def remove_model(self, version: str) -> None:
        """Forget a model and its codes (the checkpoint file is left alone)."""
        self.model_store.remove_model(version)

    def store_codes(self, version: str, ids: Sequence[int], packed: np.ndarray) -> None:
        """Replace all codes of model ``version`` with ``packed`` (N, bits/8) uint8 for ``ids``."""
        self.model_store.store_codes(version, ids, packed)

    def load_codes(
        self, version: str, ids: Sequence[int] | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids int64 ascending, packed uint8 (N, bits/8)) for model ``version``; with ``ids``,
        only those images' codes (the ones that have one)."""
        return self.model_store.load_codes(version, ids)

    def add_codes(self, version: str, ids: Sequence[int], packed: np.ndarray) -> None:
        """Insert or replace the codes of ``ids`` under model ``version`` (others are kept)."""
        self.model_store.add_codes(version, ids, packed)

    def ids_without_codes(self, version: str) -> list[int]:
        """Ids (ascending) of the images that have no code under model ``version``."""
        return self.model_store.ids_without_codes(version)

    def count_codes(self, version: str) -> int:
        """How many images have a code under model ``version``."""
        return self.model_store.count_codes(version)

    # --- metadata and text search (catalogue/metadata.py, catalogue/textsearch.py) ----------
    def metadata(self, ids: Iterable[int] | None = None) -> dict[int, FabricMetadata]:
        """image id → its metadata; ids without any (or unknown ids) map to an empty record."""
        return self.metadata_store.metadata(ids)

    def set_metadata(
        self, ids: Sequence[int], values: Mapping[str, Any], who: str | None = None
    ) -> dict[int, dict[str, Any]]:
        """Set the same ``values`` (field → value; None clears) on every image of ``ids``;
        returns the values each replaced, for `set_metadata_rows` to undo."""
        return self.metadata_store.set_metadata(ids, values, who)

    def set_metadata_rows(
        self, rows: Mapping[int, Mapping[str, Any]], who: str | None = None
    ) -> dict[int, dict[str, Any]]:
        """Set different values per image (image id → {field: value}) in one transaction;
        returns the replaced values like `set_metadata` (so undoing an undo redoes)."""
        return self.metadata_store.set_metadata_rows(rows, who)

    def metadata_count(self) -> int:
        """How many images have at least one metadata field."""
        return self.metadata_store.metadata_count()

    def text_search(self, query: str | TextQuery) -> list[int]:
        """Ids (ascending) of the images matching every term of ``query``; raises
        `TextQueryError` for a query that cannot be understood."""
        return text_search(self.db, query)

    # --- removing, restoring, relocating (catalogue/edits.py) -----------------------------
    def remove_paths(
        self, paths: Sequence[str | os.PathLike[str]], dry_run: bool = False
    ) -> RemoveReport:
        """Forget the images at ``paths`` (files or folders) in one transaction, first
        writing them to ``removed/`` for `restore_removed` (`EditsStore.remove_paths`)."""
        return self.edits.remove_paths(paths, dry_run)

    def restore_removed(self, record: str | os.PathLike[str]) -> RestoreReport:
        """Put back the images a `remove_paths` wrote to ``record``, in one transaction."""
        return self.edits.restore_removed(record)

    def removal_batches(self) -> list[RemovalBatch]:
        """The removals recorded in ``removed/``, newest first."""
        return self.edits.removal_batches()

    def relocate(
        self,
        old_prefix: str | os.PathLike[str],
        new_prefix: str | os.PathLike[str],
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> RelocateReport:
        """Point every image under ``old_prefix`` at the same relative path under
        ``new_prefix`` where the file there has the catalogued content
        (`EditsStore.relocate`)."""
        return self.edits.relocate(old_prefix, new_prefix, progress, cancel)

    # --- summary ------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """Counts for ``fabricsearch info``: images, labelled per category, failures, models."""
        active = self.active_model()
        return {
            "folder": str(self.folder),
            "location": self.location,
            "team": self.team is not None,
            **({"photos_root": str(self.team.photos_root)} if self.team is not None else {}),
            "read_only": self.read_only,
            "schema_version": self.schema_version(),
            # A team library's training in progress (any client): stage, done, total,
            # percent, who, started; None when there is none (catalogue/jobprogress.py).
            "training": self.job_progress("training"),
            "images": self.count(),
            "labelled": self.count(labelled=True),
            "labelled_per_category": self.label_counts(),
            "splits": {
                s: int(n)
                for s, n in self._query(
                    "SELECT split, COUNT(*) FROM images WHERE split IS NOT NULL GROUP BY split"
                )
            },
            "failed": [
                {"path": f.path, "reason": f.reason, "time": f.time} for f in self.failed_files()
            ],
            "models": [
                {
                    "version": m.version,
                    "method": m.method,
                    "bits": m.bits,
                    "created": m.created,
                    "active": active is not None and m.version == active.version,
                    "metrics": m.metrics,
                }
                for m in self.models()
            ],
        }


_SQLITE_MAGIC = b"SQLite format 3\x00"


def _check_catalogue_file(db: Path) -> None:
    """Refuse, without writing, a catalogue that is empty or not an SQLite file: opening an
    empty file would silently create a new, empty catalogue in place of the lost one.

    A catalogue this process already holds open is only checked through `os.stat` (it is an
    SQLite file: a connection has it): a second descriptor of it, once closed, would drop
    the open connection's locks (`livefiles`). Call under `livefiles.guard`."""
    try:
        size = os.stat(db).st_size
    except OSError as exc:
        raise LibraryError(f"cannot read {db}: {exc.strerror or exc}") from exc
    if livefiles.is_held(db):
        head = _SQLITE_MAGIC if size else b""
    else:
        try:
            with open(db, "rb") as f:
                head = f.read(len(_SQLITE_MAGIC))
        except OSError as exc:
            raise LibraryError(f"cannot read {db}: {exc.strerror or exc}") from exc
    if not head:
        raise DamagedCatalogueError(
            f"{db} is empty (0 bytes): the catalogue was lost; it was left unchanged:"
            " restore it from a backup"
        )
    if head != _SQLITE_MAGIC:
        raise DamagedCatalogueError(
            f"{db} is damaged (not an SQLite file); it was left unchanged: restore it from a backup"
        )


def _client_cache(folder: Path) -> Path:
    """This user's cache folder for one library (thumbnails and index files of a library
    whose own folder cannot be written), in the user cache folder."""
    from fabricsearch.logging_setup import cache_folder

    key = hashlib.sha256(str(folder).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return cache_folder("libraries") / f"{folder.name}-{key}"


def _connect(db_path: Path, read_only: bool = False) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves (atomic()); the sqlite3 module's
    # implicit transactions would otherwise interleave with ours.
    if read_only:
        return _connect_read_only(db_path)
    conn = sqlite3.connect(
        str(db_path), timeout=30.0, isolation_level=None, check_same_thread=False
    )
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise LibraryError(f"cannot use WAL journal on {db_path} (got {mode})")
        # NORMAL in WAL mode: a crash of the process never corrupts or loses committed data;
        # only an OS crash/power loss may drop the last commits (never corrupts).
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=30000")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(db_path: Path) -> sqlite3.Connection:
    """``mode=ro``: SQLite itself refuses every write and the journal mode is not touched.
    A WAL catalogue in a folder we cannot write has no ``-shm`` file and none can be made;
    SQLite then opens it only as ``immutable`` (no locking: changes others make while it is
    open are not seen, which is what a read-only copy on a share or a CD is)."""
    from urllib.parse import quote

    base = "file:" + quote(str(db_path)) + "?mode=ro"
    for uri in (base, base + "&immutable=1"):
        conn = sqlite3.connect(
            uri, uri=True, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
            conn.execute("PRAGMA foreign_keys=ON")
            return conn
        except sqlite3.Error as exc:
            conn.close()
            if not str(getattr(exc, "sqlite_errorname", "")).startswith(
                ("SQLITE_READONLY", "SQLITE_CANTOPEN")
            ):
                raise
    raise LibraryError(f"cannot open {db_path} even read-only")


def _is_url(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


#: `Library.open` runs SQLite's quick check (it reads every page) on catalogues up to this
#: size; a larger one gets the cheap checks of `Library._open_check` (docs/library.md).
QUICK_CHECK_MAX_BYTES = 16 << 20
#: `label_arrays` reads the whole table above this many ids; `columns` fetches this many
#: rows at a time (bounded memory for the rows in flight).
_SCAN_ABOVE = 20_000
_FETCH_ROWS = 50_000


@dataclass(frozen=True)
class CatalogueColumns:
    """Every image of a catalogue as columns, rows by ascending id (`Library.columns`)."""

    ids: np.ndarray  # int64 (N,)
    paths: list[str]  # as `ImageRecord.path` (a str), empty when not asked for
    sha: np.ndarray  # uint8 (N, 32): the SHA-256 digests (`.tobytes().hex()`: the text)
    palettes: np.ndarray  # float32 (N, 10, 4)
    coarse: list[str | None]
    fine: list[str | None]
    tightness: list[float | None]

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, rows: np.ndarray) -> CatalogueColumns:
        idx = rows.tolist()
        return CatalogueColumns(
            ids=self.ids[rows],
            paths=[self.paths[i] for i in idx] if self.paths else [],
            sha=self.sha[rows],
            palettes=self.palettes[rows],
            coarse=[self.coarse[i] for i in idx],
            fine=[self.fine[i] for i in idx],
            tightness=[self.tightness[i] for i in idx],
        )

    def label_arrays(self, taxonomy: Taxonomy) -> LabelArrays:
        return _label_arrays(taxonomy, self.coarse, self.fine, self.tightness, self.palettes)


def _label_arrays(
    tax: Taxonomy,
    coarse: Sequence[str | None],
    fine: Sequence[str | None],
    tightness: Sequence[float | None],
    palettes: np.ndarray,
) -> LabelArrays:
    """`LabelArrays.from_records` computed once per distinct label value, not per row (the
    same taxonomy lookups, so the same indices and the same errors)."""
    from fabricsearch.similarity import LabelArrays

    def codes(values: Sequence[Any]) -> tuple[np.ndarray, list[Any]]:
        distinct = list(dict.fromkeys(values))
        where = {v: i for i, v in enumerate(distinct)}
        return np.fromiter(map(where.__getitem__, values), np.int64, len(values)), distinct

    n = len(coarse)
    if not (len(fine) == len(tightness) == len(palettes) == n):
        raise ValueError("coarse, fine, tightness and palettes differ in length")
    c_at, c_values = codes(coarse)
    c_idx = np.array([tax.coarse_indices(c) for c in c_values], np.int64).reshape(-1, 2)
    f_at, f_values = codes(fine)
    f_idx = np.array([tax.fine_index(f) for f in f_values], np.int64)
    return LabelArrays(
        major=c_idx[c_at, 0],
        minor=c_idx[c_at, 1],
        fine=f_idx[f_at],
        tightness=np.array(tightness, np.float64).astype(np.float32),  # None → NaN
        palette=np.asarray(palettes, np.float32).reshape(n, *PALETTE_SHAPE),
    )


def _palettes(blobs: Sequence[bytes]) -> np.ndarray:
    """Palette blobs → float32 (N, 10, 4) in one copy (a blob of another size raises, as in
    `_record`)."""
    size = 4 * PALETTE_SHAPE[0] * PALETTE_SHAPE[1]
    if set(map(len, blobs)) <= {size}:  # every blob one palette (a C loop)
        flat = np.frombuffer(b"".join(blobs), dtype=np.float32)
        return flat.reshape(len(blobs), *PALETTE_SHAPE).copy()
    return np.stack(
        [np.frombuffer(b, dtype=np.float32).reshape(PALETTE_SHAPE) for b in blobs]
    ).astype(np.float32)


def _digests(hexes: Sequence[str]) -> np.ndarray:
    """SHA-256 hex texts → uint8 (N, 32) digests in one conversion. A text that is not one
    (never written by fabricsearch) becomes 32 zero bytes: it matches no query."""
    joined = "".join(hexes)
    if len(joined) == 64 * len(hexes):
        try:
            return np.frombuffer(bytes.fromhex(joined), np.uint8).reshape(len(hexes), 32).copy()
        except ValueError:
            pass
    out = np.zeros((len(hexes), 32), np.uint8)
    for i, h in enumerate(hexes):
        with contextlib.suppress(ValueError, TypeError):
            if len(h) == 64:
                out[i] = np.frombuffer(bytes.fromhex(h), np.uint8)
    return out


__all__ = [
    "REPLACEABLE_KINDS",
    "UNSET",
    "DamagedCatalogueError",
    "DiskFullError",
    "ReadOnlyLibraryError",
    "FailedFile",
    "ImageRecord",
    "Library",
    "LibraryError",
    "MODEL_KINDS",
    "ModelInfo",
    "TaxonomyError",
    "normalise_path",
    "split_for_sha",
]
