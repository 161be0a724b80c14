"""Removing images from the library (never from disk) and relocating a moved folder.

Both are `Library` methods through `EditsMixin`. Removing a row takes its labels, metadata
and codes with it (foreign keys cascade); the photo file is not touched, and importing its
folder again adds it back as a new, unlabelled image. Before the rows go, everything about
them (image rows, labels, metadata, codes, label history) is written to a JSON file in the
library's ``removed/`` folder, committed only together with the removal;
`Library.restore_removed` (``fabricsearch restore LIB FILE``) puts them back, under the same
ids where those are free. Relocating points the rows under one
folder prefix at another (a folder moved on a shared drive) and checks, by content hash, that
each new file is the photo the row describes before it moves anything.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch.catalogue.authors import user_name
from fabricsearch.catalogue.db import Db
from fabricsearch.catalogue.errors import LibraryError
from fabricsearch.catalogue.images_store import ImagesStore
from fabricsearch.catalogue.models_store import ModelsStore
from fabricsearch.jobs import Cancelled, CancelToken, ProgressFn, report

#: The folder of a library (a team library: this computer's cache folder of it) where
#: `remove_paths` keeps what it removed.
REMOVED_DIR = "removed"
RECORD_FORMAT = "fabricsearch removed images"
RECORD_VERSION = 1
# fmt: off
_IMAGE_COLS = ("id", "path", "sha256", "size", "mtime", "width", "height", "added", "palette", "split")
_LABEL_COLS = ("coarse", "fine", "tightness", "who", "at")
_META_COLS = (
    "article", "supplier", "composition", "weight", "width", "price", "season", "notes", "tags",
    "who", "at",
)
_AUDIT_COLS = ("id", "image_id", "field", "old", "new", "who", "at")
# fmt: on


@dataclass
class RemoveReport:
    removed: list[dict[str, Any]] = field(default_factory=list)  # {"id", "path", "labelled"}
    not_found: list[str] = field(default_factory=list)  # asked-for paths with no image
    #: The file that puts the removed images back (`Library.restore_removed`); None when
    #: nothing was removed (or for a dry run).
    record: str | None = None

    @property
    def labelled(self) -> int:
        return sum(1 for r in self.removed if r["labelled"])

    def to_json(self) -> dict[str, Any]:
        return {
            "removed": list(self.removed),
            "not_found": list(self.not_found),
            "record": self.record,
        }


@dataclass
class RestoreReport:
    restored: list[dict[str, Any]] = field(default_factory=list)  # {"id", "path", "labelled"}
    renumbered: list[dict[str, int]] = field(default_factory=list)  # {"from", "to"}: id taken
    skipped: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}

    def to_json(self) -> dict[str, Any]:
        return {
            "restored": list(self.restored),
            "renumbered": list(self.renumbered),
            "skipped": list(self.skipped),
        }


@dataclass
class RemovalBatch:
    """One `remove_paths` as its ``removed/`` file describes it (`EditsMixin.removal_batches`)."""

    record: str  # the file, for `restore_removed`
    removed_at: float  # seconds since the epoch
    who: str | None
    paths: list[str]  # the removed images' paths, sorted
    labelled: int
    #: How many of them are in the library again now (restored, or imported again).
    back: int = 0

    @property
    def count(self) -> int:
        return len(self.paths)

    def to_json(self) -> dict[str, Any]:
        return {
            "record": self.record,
            "removed_at": self.removed_at,
            "who": self.who,
            "paths": list(self.paths),
            "labelled": self.labelled,
            "back": self.back,
        }


@dataclass
class RelocateReport:
    moved: list[dict[str, str]] = field(default_factory=list)  # {"from", "to"}
    missing: list[str] = field(default_factory=list)  # no file at the new path
    different: list[str] = field(default_factory=list)  # a file whose content differs
    taken: list[str] = field(default_factory=list)  # the new path is another image's

    def to_json(self) -> dict[str, Any]:
        return {
            "moved": list(self.moved),
            "missing": list(self.missing),
            "different": list(self.different),
            "taken": list(self.taken),
        }


def _prefix(path: str | os.PathLike[str]) -> str:
    # Not resolve(): the old folder is usually gone, and stored paths are already resolved.
    return os.path.normpath(os.path.abspath(os.path.expanduser(os.fspath(path))))


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix.rstrip(os.sep) + os.sep)


def _read_record(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{path} is not a record of removed images ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != RECORD_FORMAT:
        raise LibraryError(
            f"{path} is not a record of removed images (the files in a library's"
            f" {REMOVED_DIR}/ folder are)"
        )
    if int(doc.get("version", 0)) > RECORD_VERSION:
        raise LibraryError(f"{path} was written by a newer fabricsearch: update to restore it")
    return doc


def file_sha256(path: str) -> str | None:
    """sha256 of a regular file, or None when it cannot be read."""
    from fabricsearch import imaging

    try:
        data = imaging.read_bytes(Path(path))
    except (imaging.ImageError, OSError):
        return None
    return hashlib.sha256(data).hexdigest()


class EditsStore:
    """Removing (undoably), restoring and relocating images: `Library.remove_paths`,
    `restore_removed`, `removal_batches` and `relocate` delegate to it."""

    def __init__(
        self, db: Db, images: ImagesStore, models: ModelsStore, folder: Path, location: str
    ) -> None:
        self.db = db
        self.image_store = images
        self.model_store = models
        self.folder = folder  # its removed/ folder holds what was removed
        self.location = location  # named in a removal record

    def remove_paths(
        self, paths: Sequence[str | os.PathLike[str]], dry_run: bool = False
    ) -> RemoveReport:
        """Forget the images at ``paths`` (a file, or a folder: every image under it) in one
        transaction; the files stay on disk. Paths with no image are listed in ``not_found``.
        What is removed is first written to ``removed/<time>-<n>-images.json`` (``record``),
        which `restore_removed` puts back. ``dry_run``: only report what would be removed."""
        rep = RemoveReport()
        rows = [
            (i, self.image_store.from_db(p))
            for i, p in self.db.query("SELECT id, path FROM images ORDER BY path")
        ]
        chosen: dict[int, str] = {}
        for p in paths:
            target = _prefix(p)
            try:
                resolved = str(Path(target).resolve())  # stored paths have symlinks resolved
            except (OSError, RuntimeError):
                resolved = target
            hits = [(i, rp) for i, rp in rows if _under(rp, target) or _under(rp, resolved)]
            if not hits:
                rep.not_found.append(str(p))
            chosen.update(hits)
        if not chosen:
            return rep
        ids = sorted(chosen)
        if dry_run:
            records = self.image_store.images(ids)
        else:
            self.db.require_writable("remove images")
            with self.db.atomic():
                records = self.image_store.images(ids)
                # Written (and synced by the rename) before the rows go; removed again if
                # the removal does not commit.
                record = self._write_removal_record(ids, [str(p) for p in paths])
                try:
                    self.image_store.remove_images(ids)
                except BaseException:
                    record.unlink(missing_ok=True)
                    raise
            rep.record = str(record)
        rep.removed = [
            {"id": r.id, "path": str(r.path), "labelled": r.labelled}
            for r in sorted(records, key=lambda r: str(r.path))
        ]
        return rep

    def _write_removal_record(self, ids: list[int], asked: list[str]) -> Path:
        from fabricsearch import atomicio

        images = {
            int(r[0]): dict(zip(_IMAGE_COLS, r, strict=True))
            for r in self._rows_of("images", _IMAGE_COLS, "id", ids)
        }
        for img in images.values():
            img["path"] = self.image_store.from_db(img["path"])
            img["palette"] = base64.b64encode(bytes(img["palette"])).decode("ascii")
            img["labels"] = img["metadata"] = None
            img["codes"] = {}
        for r in self._rows_of("labels", ("image_id", *_LABEL_COLS), "image_id", ids):
            images[int(r[0])]["labels"] = dict(zip(_LABEL_COLS, r[1:], strict=True))
        for r in self._rows_of("metadata", ("image_id", *_META_COLS), "image_id", ids):
            images[int(r[0])]["metadata"] = dict(zip(_META_COLS, r[1:], strict=True))
        for r in self._rows_of("codes", ("image_id", "model_version", "code"), "image_id", ids):
            images[int(r[0])]["codes"][r[1]] = bytes(r[2]).hex()
        audit = [
            dict(zip(_AUDIT_COLS, r, strict=True))
            for r in self._rows_of("label_audit", _AUDIT_COLS, "image_id", ids)
        ]
        now = time.time()
        doc = {
            "format": RECORD_FORMAT,
            "version": RECORD_VERSION,
            "library": self.location,
            "removed_at": now,
            "who": user_name(),
            "asked": asked,
            "images": [images[i] for i in sorted(images)],
            "label_audit": sorted(audit, key=lambda a: a["id"]),
        }
        folder = self.folder / REMOVED_DIR
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{time.strftime('%Y%m%d-%H%M%S', time.localtime(now))}-{len(images)}-images"
        path, k = folder / f"{stem}.json", 1
        while path.exists():
            k += 1
            path = folder / f"{stem}-{k}.json"
        atomicio.write_text_atomic(path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
        return path

    def _rows_of(
        self, table: str, cols: Sequence[str], key: str, ids: Sequence[int]
    ) -> list[tuple[Any, ...]]:
        out: list[tuple[Any, ...]] = []
        for k in range(0, len(ids), 500):  # bounded parameter lists
            chunk = [int(i) for i in ids[k : k + 500]]
            marks = ", ".join("?" * len(chunk))
            out += self.db.query(
                f"SELECT {', '.join(cols)} FROM {table} WHERE {key} IN ({marks}) ORDER BY 1",
                chunk,
            )
        return out

    def restore_removed(self, record: str | os.PathLike[str]) -> RestoreReport:
        """Put back the images a `remove_paths` wrote to ``record`` (its ``removed/`` file), in
        one transaction: image rows (under the same ids where free), labels, metadata, codes of
        models the library still has, and label history rows it lacks. An image whose path or
        content is in the library again (re-imported since) is skipped and listed."""
        self.db.require_writable("restore images")
        doc = _read_record(Path(record))
        rep = RestoreReport()
        versions = {
            str(v): (int(b) + 7) // 8 for v, b in self.db.query("SELECT version, bits FROM models")
        }
        new_ids: dict[int, int] = {}
        touched: set[str] = set()
        with self.db.atomic():
            for img in doc["images"]:
                path = str(img["path"])
                try:
                    stored = self.image_store.to_db(path)
                except LibraryError as exc:
                    rep.skipped.append({"path": path, "reason": str(exc)})
                    continue
                reason = self._restore_conflict(stored, str(img["sha256"]))
                if reason:
                    rep.skipped.append({"path": path, "reason": reason})
                    continue
                old = int(img["id"])
                free = not self.db.query("SELECT 1 FROM images WHERE id = ?", (old,))
                cols = [c for c in _IMAGE_COLS if c != "id" or free]
                row = {**img, "path": stored, "palette": base64.b64decode(img["palette"])}
                new = int(
                    self.db.query(
                        f"INSERT INTO images ({', '.join(cols)})"
                        f" VALUES ({', '.join('?' * len(cols))}) RETURNING id",
                        [row[c] for c in cols],
                    )[0][0]
                )
                new_ids[old] = new
                if new != old:
                    rep.renumbered.append({"from": old, "to": new})
                for table, cols_of, values in (
                    ("labels", _LABEL_COLS, img.get("labels")),
                    ("metadata", _META_COLS, img.get("metadata")),
                ):
                    if values:
                        self.db.execute(
                            f"INSERT INTO {table} (image_id, {', '.join(cols_of)})"
                            f" VALUES (?, {', '.join('?' * len(cols_of))})",
                            [new, *(values.get(c) for c in cols_of)],
                        )
                for version, hexcode in (img.get("codes") or {}).items():
                    code = bytes.fromhex(hexcode)
                    if versions.get(version) == len(code):
                        self.db.execute(
                            "INSERT INTO codes (model_version, image_id, code) VALUES (?, ?, ?)",
                            (version, new, code),
                        )
                        touched.add(version)
                rep.restored.append({"id": new, "path": path, "labelled": bool(img.get("labels"))})
            for a in doc.get("label_audit", []):
                image_id = new_ids.get(int(a["image_id"]))
                if image_id is None or self.db.query(
                    "SELECT 1 FROM label_audit WHERE id = ?", (int(a["id"]),)
                ):
                    continue
                self.db.execute(
                    f"INSERT INTO label_audit ({', '.join(_AUDIT_COLS)})"
                    f" VALUES ({', '.join('?' * len(_AUDIT_COLS))})",
                    [a[c] if c != "image_id" else image_id for c in _AUDIT_COLS],
                )
            if rep.restored:
                self.db.backend.after_explicit_ids(self.db)
        for version in touched:
            self.model_store.drop_index_files(version)
        return rep

    def removal_batches(self) -> list[RemovalBatch]:
        """The removals whose records lie in the library's ``removed/`` folder, newest first,
        each with how many of its images are in the library again. Unreadable files are left
        out (they are not this library's records)."""
        folder = self.folder / REMOVED_DIR
        batches = []
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                doc = _read_record(path)
            except LibraryError:
                continue
            images = doc.get("images") or []
            hashes = [str(img.get("sha256")) for img in images]
            back = 0
            for k in range(0, len(hashes), 500):  # bounded parameter lists
                chunk = hashes[k : k + 500]
                back += int(
                    self.db.query(
                        "SELECT COUNT(DISTINCT sha256) FROM images"
                        f" WHERE sha256 IN ({', '.join('?' * len(chunk))})",
                        chunk,
                    )[0][0]
                )
            batches.append(
                RemovalBatch(
                    record=str(path),
                    removed_at=float(doc.get("removed_at") or path.stat().st_mtime),
                    who=doc.get("who"),
                    paths=sorted(str(img.get("path")) for img in images),
                    labelled=sum(1 for img in images if img.get("labels")),
                    back=back,
                )
            )
        batches.sort(key=lambda b: (b.removed_at, b.record), reverse=True)
        return batches

    def _restore_conflict(self, stored_path: str, sha256: str) -> str:
        rows = self.db.query("SELECT id FROM images WHERE path = ?", (stored_path,))
        if rows:
            return f"already in the library (id {rows[0][0]})"
        rows = self.db.query("SELECT path FROM images WHERE sha256 = ?", (sha256,))
        if rows:
            other = self.image_store.from_db(rows[0][0])
            return f"the same photo is in the library as {other}"
        return ""

    def relocate(
        self,
        old_prefix: str | os.PathLike[str],
        new_prefix: str | os.PathLike[str],
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> RelocateReport:
        """Point every image under ``old_prefix`` at the same relative path under
        ``new_prefix``, if the file there has the catalogued content (sha256). Reads every
        candidate first, then moves all verified rows in one transaction: cancelling (raises
        `jobs.Cancelled`) changes nothing. Rows whose new file is missing, holds other bytes,
        or is already another image's path stay where they are and are listed."""
        old, new = _prefix(old_prefix), _prefix(new_prefix)
        rep = RelocateReport()
        # Paths as this client sees them (a team library stores them relative to its root).
        absolute = self.image_store.from_db
        rows = [
            (int(i), absolute(p), sha)
            for i, p, sha in self.db.query("SELECT id, path, sha256 FROM images ORDER BY path")
            if _under(absolute(p), old)
        ]
        taken = {absolute(p): int(i) for i, p in self.db.query("SELECT id, path FROM images")}
        moving = {i for i, _p, _s in rows}
        plan: dict[int, tuple[str, str, os.stat_result]] = {}
        report(progress, "verify", 0, len(rows), "files")
        for k, (i, path, sha) in enumerate(rows):
            if cancel is not None and cancel.cancelled:
                raise Cancelled()
            target = new + path[len(old) :]
            if os.path.isfile(target):
                # The stored form (symlinks resolved, as an import stores it): a link path
                # stored here would make a later import of the real folder a duplicate.
                target = str(Path(target).resolve())
            owner = taken.get(target)
            if owner is not None and owner != i and owner not in moving:
                rep.taken.append(path)
            elif not os.path.isfile(target):
                rep.missing.append(path)
            elif file_sha256(target) != sha:
                rep.different.append(path)
            else:
                plan[i] = (path, target, os.stat(target))
            report(progress, "verify", k + 1, len(rows), "files")
        if plan:
            with self.db.atomic():
                # Out of the way first: with nested prefixes a target may be a mover's old path.
                for i in plan:
                    # \x01, not \0: PostgreSQL text cannot hold NUL (team libraries).
                    self.image_store.update_image(i, path=f"\x01relocating/{i}")
                for i, (_path, target, st) in plan.items():
                    self.image_store.update_image(
                        i, path=target, size=st.st_size, mtime=st.st_mtime
                    )
        rep.moved = [{"from": p, "to": t} for p, t, _st in plan.values()]
        return rep
