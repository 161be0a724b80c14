"""Team libraries: the catalogue on a PostgreSQL server, shared by several clients.

A team library is a `Library` whose connection is a `postgres.PgConnection`; everything else
is what this module adds (docs/team-library.md says why each thing lives where it does):

* **Photos** are stored relative to a photos root. The server records the root given at
  ``init``; each client maps it for itself: ``photos_root=`` / ``--photos-root``, else
  ``$FABRICSEARCH_PHOTOS_ROOT``, else ``client.json`` in its cache folder (written by
  ``fabricsearch library map``), else the recorded root.
* **This client's cache folder** (``<data folder>/team/<library uuid>/``) is the library's
  `folder`: thumbnails, cached backbone features and Hamming index files, all rebuilt from
  the photos and the catalogue when missing, and the model files.
* **Model files** live in the server (``model_files``: bytes and SHA-256, uploaded in the
  same transaction that records the model); a client downloads them into its cache and
  checks the hash, so every client loads the same bytes. Listing models downloads nothing:
  `Library.fetch_model` does, before a model is loaded (search, encoding, activation).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import uuid as uuidlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any

from fabricsearch import atomicio
from fabricsearch.catalogue import postgres, schema_pg
from fabricsearch.catalogue.authors import user_name
from fabricsearch.catalogue.errors import (
    DamagedCatalogueError,
    LibraryError,
    NoLibraryThereError,
)
from fabricsearch.taxonomy import Taxonomy

if TYPE_CHECKING:
    from fabricsearch.catalogue.db import Db
    from fabricsearch.catalogue.library import Library, ModelInfo

PHOTOS_ROOT_ENV = "FABRICSEARCH_PHOTOS_ROOT"
CLIENT_FILE = "client.json"
#: The meta key of a team library that `library copy` has not finished (catalogue/copying.py).
UNFINISHED = "copy unfinished"


@dataclass
class TeamInfo:
    url: str  # without password
    uuid: str
    photos_root: Path  # this client's mount of the archive
    recorded_root: str  # the root recorded on the server at init
    _verified: dict[tuple[str, str], str] = field(default_factory=dict)

    # --- photo paths ---------------------------------------------------------------------
    def to_db(self, path: str, strict: bool = True) -> str:
        if not _is_absolute(path):
            return path.replace("\\", "/")
        try:
            return Path(path).relative_to(self.photos_root).as_posix()
        except ValueError:
            if strict:
                raise LibraryError(
                    f"{path} is outside the team library's photos root {self.photos_root}:"
                    " only photos under it can be shared (map the root with"
                    " --photos-root or `fabricsearch library map`)"
                ) from None
            return path

    def from_db(self, stored: str) -> str:
        if _is_absolute(stored):
            return stored
        return str(self.photos_root.joinpath(*PurePosixPath(stored).parts))

    # --- model files ---------------------------------------------------------------------
    def upload_model_files(self, lib: Library, info: ModelInfo) -> None:
        """`store_model_files` of a library's catalogue and model folder."""
        self.store_model_files(lib.db, lib.models_dir, info)

    def store_model_files(self, db: Db, models_dir: Path, info: ModelInfo) -> None:
        """Store the model's files (weights and the JSON beside them) in the server."""
        from fabricsearch.modelfiles import metadata_path

        weights = Path(info.path)
        for path in (weights, metadata_path(weights)):
            if not path.is_file():
                continue
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            db.execute(
                "INSERT INTO model_files (version, name, sha256, size, data)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (version, name) DO UPDATE"
                " SET sha256 = excluded.sha256, size = excluded.size, data = excluded.data",
                (info.version, path.name, digest, len(data), data),
            )
            self._verified[(info.version, path.name)] = digest
            if path.parent != models_dir:  # keep a verified copy in the cache too
                models_dir.mkdir(parents=True, exist_ok=True)
                atomicio.write_bytes_atomic(models_dir / path.name, data)

    def fetch_model_files(self, db: Db, models_dir: Path, version: str) -> None:
        """Download a model's files (weights and the JSON beside them) into this client's
        cache (``models_dir``) when missing or different from the server's bytes
        (`Library.fetch_model`; listing models downloads nothing). Nothing to do for a model
        recorded without files."""
        rows = db.query("SELECT name, sha256 FROM model_files WHERE version = ?", (version,))
        for name, digest in rows:
            target = models_dir / name
            if self._verified.get((version, name)) == digest and target.is_file():
                continue
            if target.is_file() and _sha256(target) == digest:
                self._verified[(version, name)] = digest
                continue
            data = db.query(
                "SELECT data FROM model_files WHERE version = ? AND name = ?", (version, name)
            )[0][0]
            data = bytes(data)
            if hashlib.sha256(data).hexdigest() != digest:
                raise DamagedCatalogueError(
                    f"model file {name} of {version} does not match its checksum on the server"
                )
            models_dir.mkdir(parents=True, exist_ok=True)
            atomicio.write_bytes_atomic(target, data)
            self._verified[(version, name)] = digest


def _is_absolute(path: str) -> bool:
    return PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_folder(library_uuid: str) -> Path:
    from fabricsearch.logging_setup import data_dir

    return data_dir() / "team" / library_uuid


def _connect(url: str, read_only: bool) -> postgres.PgConnection:
    import sqlite3

    try:
        return postgres.PgConnection(url, read_only=read_only)
    except sqlite3.Error as exc:
        raise LibraryError(f"cannot connect to {postgres.display_url(url)}: {exc}") from exc


def _meta(conn: postgres.PgConnection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def create_team(
    cls: type[Library],
    url: str,
    taxonomy: Taxonomy | None,
    photos_root: str | os.PathLike[str] | None,
    extra_meta: dict[str, str] | None = None,
) -> Library:
    """A new team library in the (empty) database at ``url``; ``extra_meta`` is written in
    the same transaction as its uuid (`copying` marks a copy unfinished so)."""
    if photos_root is None:
        raise LibraryError(
            "a team library needs a photos root (--photos-root DIR): the folder its photos"
            " lie under, which each client maps for itself"
        )
    conn = _connect(url, read_only=False)
    try:
        if schema_pg.current_version(conn) > 0 and _meta(conn, "uuid") is not None:
            raise LibraryError(f"{postgres.display_url(url)} already holds a library")
        schema_pg.migrate(conn)
        new = str(uuidlib.uuid4())
        tax = taxonomy if taxonomy is not None else Taxonomy.default()
        conn.execute("BEGIN")
        try:
            # Two clients creating at once: the first uuid wins, the second is refused.
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('uuid', ?) ON CONFLICT DO NOTHING", (new,)
            )
            if _meta(conn, "uuid") != new:
                raise LibraryError(f"{postgres.display_url(url)} already holds a library")
            for key, value in (
                ("taxonomy", json.dumps(tax.to_dict())),
                ("created", repr(time.time())),
                ("photos_root", str(photos_root)),
                *(extra_meta or {}).items(),
            ):
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?)"
                    " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, value),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    except BaseException:
        conn.close()
        raise
    return _library(cls, conn, url, new, False, photos_root)


def open_team(
    cls: type[Library],
    url: str,
    read_only: bool,
    photos_root: str | os.PathLike[str] | None,
) -> Library:
    """The team library at ``url``; `NoLibraryThereError` when there is none."""
    conn = _connect(url, read_only)
    try:
        have = schema_pg.current_version(conn)
        uuid = _meta(conn, "uuid") if have else None
        if uuid is None:
            raise NoLibraryThereError(
                f"{postgres.display_url(url)} holds no fabricsearch library: create one with"
                " `fabricsearch init URL --photos-root DIR`"
            )
        if have > schema_pg.SCHEMA_VERSION:
            raise DamagedCatalogueError(
                f"{postgres.display_url(url)} was written by a newer fabricsearch (catalogue"
                f" schema {have}; this version reads up to {schema_pg.SCHEMA_VERSION}):"
                " update fabricsearch to open it"
            )
        _refuse_unfinished_copy(conn, url)
    except BaseException:
        conn.close()
        raise
    return _library(cls, conn, url, uuid, read_only, photos_root)


def _refuse_unfinished_copy(conn: postgres.PgConnection, url: str) -> None:
    """A `library copy` into this database was stopped before its final commit: it holds an
    empty library that must not pass for the copy."""
    raw = _meta(conn, UNFINISHED)
    if raw is None:
        return
    try:
        note = json.loads(raw)
        source = f" of {note['source']}"
        when = f", started {time.ctime(float(note['started']))}"
    except (ValueError, TypeError, KeyError):
        source = when = ""
    raise LibraryError(
        f"{postgres.display_url(url)} holds an unfinished copy{source}{when}: `fabricsearch"
        " library copy` was interrupted; run the same copy again to start it over"
    )


def _library(
    cls: type[Library],
    conn: postgres.PgConnection,
    url: str,
    uuid: str,
    read_only: bool,
    photos_root: str | os.PathLike[str] | None,
) -> Library:
    folder = cache_folder(uuid)
    folder.mkdir(parents=True, exist_ok=True)
    recorded = _meta(conn, "photos_root") or "/"
    root = photos_root or os.environ.get(PHOTOS_ROOT_ENV) or _client_root(folder) or recorded
    info = TeamInfo(
        url=postgres.display_url(url),
        uuid=uuid,
        photos_root=Path(root).expanduser().resolve(),
        recorded_root=recorded,
    )
    lib = cls(folder, conn, read_only=read_only, team=info)
    try:
        lib._setup()
    except BaseException:
        lib.close()
        raise
    return lib


def _client_root(folder: Path) -> str | None:
    try:
        return json.loads((folder / CLIENT_FILE).read_text(encoding="utf-8")).get("photos_root")
    except (OSError, ValueError, AttributeError):
        return None


def map_photos_root(lib: Library, root: str | os.PathLike[str]) -> Path:
    """Remember where this client sees the team library's photos (its ``client.json``)."""
    if lib.team is None:
        raise LibraryError(f"{lib.location} is a library folder: its photo paths are absolute")
    path = Path(root).expanduser().resolve()
    atomicio.write_text_atomic(
        lib.folder / CLIENT_FILE, json.dumps({"photos_root": str(path)}, indent=2) + "\n"
    )
    lib.team.photos_root = path
    return path


def lock_key(library_uuid: str, name: str) -> int:
    """The advisory lock id of one named lock of one library (signed 64 bits)."""
    digest = hashlib.sha256(f"fabricsearch:{library_uuid}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def holder() -> str:
    return f"{user_name()}@{socket.gethostname()} (pid {os.getpid()})"


def describe_lock(lib: Library, name: str) -> str:
    raw: Any = lib._meta(f"lock:{name}")
    return f" (by {raw})" if raw else ""
