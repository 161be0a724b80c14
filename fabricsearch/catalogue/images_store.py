"""Images and the files an import could not use: the ``images`` and ``failed`` tables.

`ImagesStore` is one of the stores a `Library` is made of (docs/architecture.md, "Storage"):
it runs its statements through the library's `Db` and asks the backend for the stored form of
a photo's path (as given in a library folder; relative to the photos root in a team library).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.errors import MissingImageError
from fabricsearch.catalogue.labels_store import _LABELLED

#: Split fractions; an image's split comes from its content hash, so it is the same on every
#: machine and survives re-imports and moves.
SPLIT_FRACTIONS = (0.70, 0.15, 0.15)
PALETTE_SHAPE = (10, 4)


@dataclass(frozen=True)
class ImageRecord:
    id: int
    path: Path
    sha256: str
    size: int  # bytes
    mtime: float
    width: int
    height: int
    added: float  # unix time
    palette: np.ndarray  # (10, 4) float32, see docs/architecture.md
    coarse: str | None = None  # "major/minor" or "major"
    fine: str | None = None
    tightness: float | None = None  # percent
    labelled_by: str | None = None
    labelled_at: float | None = None

    @property
    def labelled(self) -> bool:
        return self.coarse is not None or self.fine is not None or self.tightness is not None


@dataclass(frozen=True)
class FailedFile:
    path: str
    reason: str
    time: float


def split_for_sha(sha256: str) -> str:
    """Deterministic train/val/test split from a content hash (70/15/15)."""
    # Re-hash with a fixed salt so the split is independent of anything else keyed by sha.
    h = hashlib.sha256(b"fabricsearch-split:" + sha256.encode("ascii")).digest()
    u = int.from_bytes(h[:8], "big") / 2.0**64
    if u < SPLIT_FRACTIONS[0]:
        return "train"
    if u < SPLIT_FRACTIONS[0] + SPLIT_FRACTIONS[1]:
        return "val"
    return "test"


def normalise_path(path: str | os.PathLike[str]) -> str:
    """The form paths are stored in: absolute, symlinks resolved."""
    return str(Path(path).expanduser().resolve())


_IMAGE_COLUMNS = (
    "i.id, i.path, i.sha256, i.size, i.mtime, i.width, i.height, i.added, i.palette,"
    " l.coarse, l.fine, l.tightness, l.who, l.at"
)


def _palette_blob(palette: np.ndarray) -> bytes:
    p = np.ascontiguousarray(palette, dtype=np.float32)
    if p.shape != PALETTE_SHAPE:
        raise ValueError(f"palette shape {p.shape} != {PALETTE_SHAPE}")
    return p.tobytes()


def _record(r: tuple[Any, ...]) -> ImageRecord:
    return ImageRecord(
        id=int(r[0]),
        path=Path(r[1]),
        sha256=r[2],
        size=int(r[3]),
        mtime=float(r[4]),
        width=int(r[5]),
        height=int(r[6]),
        added=float(r[7]),
        palette=np.frombuffer(r[8], dtype=np.float32).reshape(PALETTE_SHAPE).copy(),
        coarse=r[9],
        fine=r[10],
        tightness=None if r[11] is None else float(r[11]),
        labelled_by=r[12],
        labelled_at=None if r[13] is None else float(r[13]),
    )


class ImagesStore:
    """The images of one catalogue and the files its imports could not use."""

    def __init__(self, db: Db) -> None:
        self.db = db

    def count(self, labelled: bool | None = None) -> int:
        if labelled is None:
            return int(self.db.query("SELECT COUNT(*) FROM images")[0][0])
        # Counted in SQL (no list of ids): the labelled rows are found through `labels` alone.
        n = int(self.db.query(f"SELECT COUNT(*) FROM labels l WHERE {_LABELLED}")[0][0])
        return n if labelled else self.count() - n

    def image_ids(self, labelled: bool | None = None) -> list[int]:
        """Image ids in ascending order; optionally only labelled / unlabelled ones."""
        sql = "SELECT i.id FROM images i LEFT JOIN labels l ON l.image_id = i.id"
        if labelled is True:
            sql += f" WHERE {_LABELLED}"
        elif labelled is False:
            sql += f" WHERE NOT {_LABELLED} OR l.image_id IS NULL"
        return [r[0] for r in self.db.query(sql + " ORDER BY i.id")]

    def images(self, ids: Sequence[int] | None = None) -> list[ImageRecord]:
        """Records for ``ids`` in that order (all images by ascending id when None)."""
        base = f"SELECT {_IMAGE_COLUMNS} FROM images i LEFT JOIN labels l ON l.image_id = i.id"
        if ids is None:
            return [self.record(r) for r in self.db.query(base + " ORDER BY i.id")]
        ids = [int(i) for i in ids]
        by_id: dict[int, ImageRecord] = {}
        with self.db.lock:
            for start in range(0, len(ids), 500):  # stay under SQLite's variable limit
                chunk = ids[start : start + 500]
                marks = ",".join("?" * len(chunk))
                for r in self.db.query(base + f" WHERE i.id IN ({marks})", chunk):
                    by_id[r[0]] = self.record(r)
        missing = [i for i in ids if i not in by_id]
        if missing:
            raise MissingImageError(f"no images with ids {missing[:10]}")
        return [by_id[i] for i in ids]

    def first_images(self, limit: int) -> list[ImageRecord]:
        """The first ``limit`` records by ascending id (what a window shows first)."""
        base = f"SELECT {_IMAGE_COLUMNS} FROM images i LEFT JOIN labels l ON l.image_id = i.id"
        rows = self.db.query(base + " ORDER BY i.id LIMIT ?", (int(limit),))
        return [self.record(r) for r in rows]

    def image_column(self, column: str) -> tuple[np.ndarray, list[Any]]:
        """(ids, values) of one image column by ascending id: ``added``, ``mtime`` or ``path``
        (a sort key of the window's grid without a record per image)."""
        if column not in ("added", "mtime", "path"):
            raise ValueError(f"not a sortable image column: {column}")
        rows = self.db.query(f"SELECT id, {column} FROM images ORDER BY id")
        ids = np.fromiter((r[0] for r in rows), np.int64, len(rows))
        values = [r[1] for r in rows]
        if column == "path":
            values = list(self.db.backend.paths_from_db(values))
        return ids, values

    def find_by_path(self, path: str | os.PathLike[str]) -> ImageRecord | None:
        base = f"SELECT {_IMAGE_COLUMNS} FROM images i LEFT JOIN labels l ON l.image_id = i.id"
        rows = self.db.query(base + " WHERE i.path = ?", (self.to_db(normalise_path(path)),))
        return self.record(rows[0]) if rows else None

    def find_by_sha(self, sha256: str) -> ImageRecord | None:
        base = f"SELECT {_IMAGE_COLUMNS} FROM images i LEFT JOIN labels l ON l.image_id = i.id"
        rows = self.db.query(base + " WHERE i.sha256 = ?", (sha256,))
        return self.record(rows[0]) if rows else None

    # Importer API: used by catalogue.importer (same package), not by other packages.
    def file_states(self) -> dict[str, tuple[int, int, float, str]]:
        """path → (id, size, mtime, sha256) for every image."""
        rows = self.db.query("SELECT path, id, size, mtime, sha256 FROM images")
        return {self.from_db(r[0]): (r[1], r[2], r[3], r[4]) for r in rows}

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
        rows = self.db.query(
            "INSERT INTO images (path, sha256, size, mtime, width, height, added, palette, split)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (
                self.to_db(path),
                sha256,
                int(size),
                float(mtime),
                int(width),
                int(height),
                time.time(),
                _palette_blob(palette),
                split_for_sha(sha256),
            ),
        )
        return int(rows[0][0])

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
        sets: list[str] = []
        params: list[Any] = []
        for col, value in (
            ("path", None if path is None else self.to_db(path)),
            ("size", size),
            ("mtime", mtime),
            ("width", width),
            ("height", height),
        ):
            if value is not None:
                sets.append(f"{col} = ?")
                params.append(value)
        if palette is not None:
            sets.append("palette = ?")
            params.append(_palette_blob(palette))
        with self.db.atomic():
            if sha256 is not None:
                old = self.db.query("SELECT sha256 FROM images WHERE id = ?", (image_id,))
                if old and old[0][0] != sha256:
                    sets += ["sha256 = ?", "split = ?"]
                    params += [sha256, split_for_sha(sha256)]
                    self.db.execute("DELETE FROM codes WHERE image_id = ?", (image_id,))
            if sets:
                self.db.execute(
                    f"UPDATE images SET {', '.join(sets)} WHERE id = ?", [*params, image_id]
                )

    def remove_images(self, ids: Sequence[int]) -> None:
        """Forget images (labels and codes go with them; the files are not touched)."""
        with self.db.atomic():
            for i in ids:
                self.db.execute("DELETE FROM images WHERE id = ?", (int(i),))

    def record_failure(self, path: str, reason: str) -> None:
        self.db.execute(
            "INSERT INTO failed (path, reason, time) VALUES (?, ?, ?)"
            " ON CONFLICT (path) DO UPDATE SET reason = excluded.reason, time = excluded.time",
            (self.to_db(path, strict=False), reason, time.time()),
        )

    def clear_failure(self, path: str) -> None:
        self.db.execute("DELETE FROM failed WHERE path = ?", (self.to_db(path, strict=False),))

    def failed_files(self) -> list[FailedFile]:
        rows = self.db.query("SELECT path, reason, time FROM failed ORDER BY path")
        return [FailedFile(self.from_db(r[0]), r[1], r[2]) for r in rows]

    # --- paths ----------------------------------------------------------------------------
    def to_db(self, path: str | os.PathLike[str], strict: bool = True) -> str:
        """The stored form of a photo's path: as given in a library folder; relative to the
        photos root (POSIX separators) in a team library, so every client maps it to its
        own mount of the archive. ``strict``: refuse a path outside the root."""
        return self.db.backend.to_db(path, strict)

    def from_db(self, stored: str) -> str:
        return self.db.backend.from_db(stored)

    def record(self, r: tuple[Any, ...]) -> ImageRecord:
        rec = _record(r)
        path = self.db.backend.from_db(r[1])
        return rec if path == r[1] else dataclasses.replace(rec, path=Path(path))

    def check_photo_folder(self, folder: str | os.PathLike[str]) -> None:
        """Raise `LibraryError` when photos in ``folder`` cannot be catalogued here (a team
        library's photos must lie under its photos root)."""
        self.db.backend.check_photo_folder(folder)
