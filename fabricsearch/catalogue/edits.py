"""Removing images from the library (never from disk) and relocating a moved folder.

Both are `Library` methods through `EditsMixin`. Removing a row takes its labels, metadata
and codes with it (foreign keys cascade); the photo file is not touched, and importing its
folder again adds it back as a new, unlabelled image. Relocating points the rows under one
folder prefix at another (a folder moved on a shared drive) and checks, by content hash, that
each new file is the photo the row describes before it moves anything.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fabricsearch.jobs import Cancelled, CancelToken, ProgressFn, report


@dataclass
class RemoveReport:
    removed: list[dict[str, Any]] = field(default_factory=list)  # {"id", "path", "labelled"}
    not_found: list[str] = field(default_factory=list)  # asked-for paths with no image

    def to_json(self) -> dict[str, Any]:
        return {"removed": list(self.removed), "not_found": list(self.not_found)}


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


def file_sha256(path: str) -> str | None:
    """sha256 of a regular file, or None when it cannot be read."""
    from fabricsearch import imaging

    try:
        data = imaging.read_bytes(Path(path))
    except (imaging.ImageError, OSError):
        return None
    return hashlib.sha256(data).hexdigest()


class EditsMixin:
    """`Library.remove_paths` and `Library.relocate` (uses `atomic`, `_query`, `images`)."""

    def remove_paths(self, paths: Sequence[str | os.PathLike[str]]) -> RemoveReport:
        """Forget the images at ``paths`` (a file, or a folder: every image under it) in one
        transaction; the files stay on disk. Paths with no image are listed in ``not_found``."""
        rep = RemoveReport()
        rows = [
            (i, self._path_from_db(p))  # type: ignore[attr-defined]
            for i, p in self._query("SELECT id, path FROM images ORDER BY path")  # type: ignore[attr-defined]
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
        with self.atomic():  # type: ignore[attr-defined]
            records = self.images(ids)  # type: ignore[attr-defined]
            self.remove_images(ids)  # type: ignore[attr-defined]
        rep.removed = [
            {"id": r.id, "path": str(r.path), "labelled": r.labelled}
            for r in sorted(records, key=lambda r: str(r.path))
        ]
        return rep

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
        absolute = self._path_from_db  # type: ignore[attr-defined]
        rows = [
            (int(i), absolute(p), sha)
            for i, p, sha in self._query("SELECT id, path, sha256 FROM images ORDER BY path")  # type: ignore[attr-defined]
            if _under(absolute(p), old)
        ]
        taken = {absolute(p): int(i) for i, p in self._query("SELECT id, path FROM images")}  # type: ignore[attr-defined]
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
            with self.atomic():  # type: ignore[attr-defined]
                # Out of the way first: with nested prefixes a target may be a mover's old path.
                for i in plan:
                    # \x01, not \0: PostgreSQL text cannot hold NUL (team libraries).
                    self.update_image(i, path=f"\x01relocating/{i}")  # type: ignore[attr-defined]
                for i, (_path, target, st) in plan.items():
                    self.update_image(i, path=target, size=st.st_size, mtime=st.st_mtime)  # type: ignore[attr-defined]
        rep.moved = [{"from": p, "to": t} for p, t, _st in plan.values()]
        return rep
