"""Import a folder of photos into a library: incremental, parallel, crash-safe.

Plan: walk the folder; a file whose path, size and mtime match the catalogue is unchanged and
is not read. Every other file goes to a process pool, whose workers read the bytes once, hash
them (sha256), decode at reduced size (≤ 512 px), measure the colour palette and encode the
256/512 px thumbnails. The main process alone writes: thumbnails first (atomic renames), then
rows in batched transactions. A kill at any moment leaves committed batches complete and
nothing of the current one; a re-run picks up the rest because finished files are unchanged.

Identity is the content hash: one catalogue row per distinct content. A known hash at a new
path whose old path is gone is a *move* (path updated; labels and codes kept); if the old path
still exists the new file is a *duplicate* copy and is not added.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import multiprocessing
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fabricsearch import imaging
from fabricsearch.catalogue.library import Library, normalise_path
from fabricsearch.jobs import CancelToken, ProgressFn, report

#: Longest side decoded for palette and thumbnails; thumbnails need at most 512 px.
WORK_SIDE = max(imaging.THUMB_SIZES)
#: Rows per write transaction: big enough that commits are cheap, small enough that a kill
#: loses at most a few seconds of work and GUI readers never wait long for the lock.
BATCH_SIZE = 64
BATCH_SECONDS = 1.0


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    moved: int = 0
    updated: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    duplicates: list[dict[str, str]] = field(default_factory=list)  # {"path", "of"}
    labels: Any = None  # labels_csv.LabelsReport when --labels was given
    cancelled: bool = False

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "added": self.added,
            "unchanged": self.unchanged,
            "moved": self.moved,
            "updated": self.updated,
            "failed": list(self.failed),
            "duplicates": list(self.duplicates),
        }
        if self.labels is not None:
            out["labels"] = self.labels.to_json()
        if self.cancelled:
            out["cancelled"] = True
        return out


@dataclass(frozen=True)
class Measured:
    """What a worker returns for one file (picklable)."""

    path: str
    sha256: str = ""
    size: int = 0
    mtime: float = 0.0
    width: int = 0
    height: int = 0
    palette: bytes = b""
    thumbs: tuple[tuple[int, bytes], ...] = ()
    error: str = ""
    known: bool = False  # content already in the catalogue: nothing decoded


# --- worker side ------------------------------------------------------------------------------
_KNOWN: frozenset[str] = frozenset()


def _init_worker(known: frozenset[str]) -> None:
    global _KNOWN
    _KNOWN = known
    # Each worker is one process; nested thread pools (OpenCV) would oversubscribe the cores.
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 is a hard dependency, but never fail a worker
        pass


def measure_file(path: str, known: frozenset[str] | None = None) -> Measured:
    """Read, hash, decode (reduced), quantise and thumbnail one file; errors become reasons."""
    from fabricsearch import colour

    known = _KNOWN if known is None else known
    try:
        st = os.stat(path)
        data = imaging.read_bytes(path)
        sha = hashlib.sha256(data).hexdigest()
        if sha in known:
            return Measured(path=path, sha256=sha, size=st.st_size, mtime=st.st_mtime, known=True)
        rgb, info = imaging.decode(data, max_side=WORK_SIDE)
        palette = np.ascontiguousarray(colour.quantise(rgb), dtype=np.float32)
        thumbs = tuple((s, imaging.thumbnail_jpeg(rgb, s)) for s in imaging.THUMB_SIZES)
        return Measured(
            path=path,
            sha256=sha,
            size=st.st_size,
            mtime=st.st_mtime,
            width=info.width,
            height=info.height,
            palette=palette.tobytes(),
            thumbs=thumbs,
        )
    except imaging.ImageError as exc:
        return Measured(path=path, error=str(exc))
    except MemoryError:
        return Measured(path=path, error="out of memory while decoding")
    except OSError as exc:
        return Measured(path=path, error=f"cannot read file: {exc.strerror or exc}")
    except Exception as exc:  # a decoder bug must not stop the import
        return Measured(path=path, error=f"cannot decode image: {type(exc).__name__}: {exc}")


# --- main side ------------------------------------------------------------------------------
def scan_folder(
    folder: Path, exclude: Path | None = None
) -> tuple[list[str], list[dict[str, str]]]:
    """Image files under ``folder`` (recursive, sorted, normalised) and unreadable folders."""
    files: list[str] = []
    problems: list[dict[str, str]] = []

    def onerror(exc: OSError) -> None:
        problems.append(
            {"path": str(exc.filename), "reason": f"cannot list folder: {exc.strerror}"}
        )

    excluded = str(exclude) if exclude is not None else None
    for root, dirs, names in os.walk(folder, onerror=onerror):
        # Never import the library's own thumbnails when the library sits inside the folder.
        dirs[:] = sorted(d for d in dirs if excluded is None or os.path.join(root, d) != excluded)
        for name in sorted(names):
            if imaging.is_image_path(name):
                files.append(normalise_path(os.path.join(root, name)))
    return files, problems


def import_folder(
    lib: Library,
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str] | None = None,
    add_categories: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> ImportReport:
    """Import (or re-import) every image under ``folder`` into ``lib``.

    ``workers``: processes for decoding (None = all cores; 0 = in this process). With
    ``labels_csv`` the labels are applied after the images (see `labels_csv.import_labels`).
    Cancelling stops at the next file: what was measured is committed and the report comes
    back with ``cancelled`` set (no `jobs.Cancelled` is raised: the partial report is useful)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    rep = ImportReport()
    report(progress, "scan", 0, None, "files", message=str(folder))
    files, problems = scan_folder(folder.resolve(), exclude=lib.folder)
    rep.failed.extend(problems)

    states = lib.file_states()
    todo: list[str] = []
    for path in files:
        state = states.get(path)
        if state is not None:
            try:
                st = os.stat(path)
            except OSError:
                todo.append(path)  # measured by a worker, which reports the reason
                continue
            if st.st_size == state[1] and st.st_mtime == state[2]:
                rep.unchanged += 1
                continue
        todo.append(path)
    report(progress, "scan", len(files), len(files), "files")

    writer = _Writer(lib, rep, states, set(files))
    total = len(todo)
    done = 0
    report(progress, "import", 0, total, "images")
    started = time.monotonic()
    try:
        for measured in _measure_all(
            todo, frozenset(s[3] for s in states.values()), workers, cancel
        ):
            writer.add(measured)
            done += 1
            rate = done / max(time.monotonic() - started, 1e-6)
            report(progress, "import", done, total, "images", info={"img/s": rate})
            if cancel is not None and cancel.cancelled:
                break
    finally:
        writer.flush()  # commit what is measured, also when interrupted (Ctrl-C) or cancelled
    rep.cancelled = done < total and cancel is not None and cancel.cancelled
    if labels_csv is not None and not rep.cancelled:
        from fabricsearch.catalogue.labels_csv import import_labels

        rep.labels = import_labels(lib, labels_csv, add_categories=add_categories)
    return rep


def _measure_all(
    paths: list[str], known: frozenset[str], workers: int | None, cancel: CancelToken | None
) -> Iterator[Measured]:
    if workers is None:
        workers = os.cpu_count() or 1
    workers = min(workers, len(paths))
    if workers <= 1 or len(paths) < 4:
        # Not worth starting processes (spawning costs ~1 s each) for a handful of files.
        for p in paths:
            if cancel is not None and cancel.cancelled:
                return
            yield measure_file(p, known)
        return
    yield from _measure_pool(paths, known, workers, cancel)


def _measure_pool(
    paths: list[str], known: frozenset[str], workers: int, cancel: CancelToken | None
) -> Iterator[Measured]:
    # spawn, not fork: the GUI calls this from a QThread in a process with other threads
    # (and maybe torch loaded), where fork can deadlock; spawn also matches macOS/Windows.
    ctx = multiprocessing.get_context("spawn")
    queue = list(reversed(paths))
    suspects: list[str] = []  # in flight when a worker died
    max_in_flight = workers * 4  # bounded, so thumbnails do not pile up in memory
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(known,)
    )
    pending: dict[cf.Future[Measured], str] = {}
    try:
        while queue or pending:
            while queue and len(pending) < max_in_flight:
                p = queue.pop()
                pending[pool.submit(measure_file, p)] = p
            if cancel is not None and cancel.cancelled:
                return
            finished, _ = cf.wait(pending, timeout=0.5, return_when=cf.FIRST_COMPLETED)
            for fut in finished:
                p = pending.pop(fut)
                try:
                    result = fut.result()
                except cf.process.BrokenProcessPool:
                    # A decoder crashed its worker (segfault, OOM kill): every file in flight
                    # fails with it. Retry those one by one in isolation, then carry on.
                    suspects.append(p)
                    continue
                yield result
            if suspects and not pending:
                pool.shutdown(wait=True, cancel_futures=True)
                for p in suspects:
                    if cancel is not None and cancel.cancelled:
                        return
                    yield _measure_isolated(p, known, ctx)
                suspects.clear()
                pool = cf.ProcessPoolExecutor(
                    max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(known,)
                )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _measure_isolated(path: str, known: frozenset[str], ctx: Any) -> Measured:
    with cf.ProcessPoolExecutor(
        max_workers=1, mp_context=ctx, initializer=_init_worker, initargs=(known,)
    ) as pool:
        try:
            return pool.submit(measure_file, path).result()
        except cf.process.BrokenProcessPool:
            return Measured(path=path, error="the image decoder crashed on this file")


class _Writer:
    """Collects measured files and writes them in batched transactions (main process only)."""

    def __init__(
        self,
        lib: Library,
        rep: ImportReport,
        states: dict[str, tuple[int, int, float, str]],
        present: set[str],
    ) -> None:
        self.lib = lib
        self.rep = rep
        self.states = states
        self.present = present
        self.batch: list[Measured] = []
        self.last = time.monotonic()

    def add(self, m: Measured) -> None:
        self.batch.append(m)
        if len(self.batch) >= BATCH_SIZE or time.monotonic() - self.last > BATCH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.batch:
            return
        batch, self.batch = self.batch, []
        # Thumbnails first: a row is only committed once its thumbnails are on disk; an orphan
        # thumbnail after a kill is harmless (same content → same file name next time).
        for m in batch:
            for size, data in m.thumbs:
                self.lib.write_thumbnail(m.sha256, size, data)
        with self.lib.atomic():
            for m in batch:
                self._write(m)
        self.last = time.monotonic()

    def _write(self, m: Measured) -> None:
        lib, rep = self.lib, self.rep
        if m.error:
            lib.record_failure(m.path, m.error)
            rep.failed.append({"path": m.path, "reason": m.error})
            return
        lib.clear_failure(m.path)
        here = self.states.get(m.path)  # a row at this path already
        same = lib.find_by_sha(m.sha256)  # a row with this content already
        if same is not None:
            if here is not None and here[0] == same.id:
                # Touched but identical content: refresh size/mtime so it is skipped next time.
                lib.update_image(same.id, size=m.size, mtime=m.mtime)
                rep.unchanged += 1
                return
            old = str(same.path)
            if old not in self.present and not os.path.exists(old):
                if here is not None:
                    # This path's previous content was overwritten by the moved file: the
                    # row describing content that no longer exists anywhere goes.
                    lib.remove_images([here[0]])
                lib.update_image(same.id, path=m.path, size=m.size, mtime=m.mtime)
                self.states.pop(old, None)
                self.states[m.path] = (same.id, m.size, m.mtime, m.sha256)
                rep.moved += 1
            else:
                rep.duplicates.append({"path": m.path, "of": old})
            return
        if m.known:  # hashed as known by the worker, but that row has gone since: measure now
            m = measure_file(m.path, frozenset())
            if m.error:
                self._write(m)
                return
            for size, data in m.thumbs:
                lib.write_thumbnail(m.sha256, size, data)
        palette = np.frombuffer(m.palette, dtype=np.float32).reshape(10, 4)
        if here is not None:
            lib.update_image(
                here[0],
                sha256=m.sha256,
                size=m.size,
                mtime=m.mtime,
                width=m.width,
                height=m.height,
                palette=palette,
            )
            rep.updated += 1
        else:
            image_id = lib.add_image(m.path, m.sha256, m.size, m.mtime, m.width, m.height, palette)
            self.states[m.path] = (image_id, m.size, m.mtime, m.sha256)
            rep.added += 1
