"""Import a folder of photos into a library: incremental, parallel, crash-safe.

Plan: walk the folder; a file whose path, size and mtime match the catalogue is unchanged and
is not read. Every other file goes to a process pool, whose workers read the bytes once, hash
them (sha256), decode at reduced size (a JPEG at the coarsest DCT scale of at least
`colour.PALETTE_SIDE` px), measure the colour palette on it and encode the 256/512 px
thumbnails. The main process alone writes: thumbnails first (atomic renames), then
rows in batched transactions. A kill at any moment leaves committed batches complete and
nothing of the current one; a re-run picks up the rest because finished files are unchanged.

Rows follow content: one catalogue row per distinct content (sha256), and after an import the
row at each path describes the bytes at that path. Labels, codes, thumbnails and the palette
belong to the content, so a renamed file keeps its labels wherever it went (also through
chains and cycles of renames), and a path that now holds other bytes never keeps the labels
of what it held before. A second path holding known content is a *duplicate* and not added.
Any cache keyed by image id therefore follows content too: an id never changes its content
(new content at a path gets a new row), and removing a row cascades.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import multiprocessing
import os
import threading
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from fabricsearch import imaging
from fabricsearch.catalogue.library import DB_NAME, Library, LibraryError, normalise_path
from fabricsearch.jobs import Cancelled, CancelToken, ProgressFn, report

#: Longest side decoded for palette and thumbnails; thumbnails need at most 512 px.
WORK_SIDE = max(imaging.THUMB_SIZES)
#: Rows per write transaction: big enough that commits are cheap, small enough that a kill
#: loses at most a few seconds of work and GUI readers never wait long for the lock.
BATCH_SIZE = 64
BATCH_SECONDS = 1.0
#: How often a worker checks that the importing process still exists.
PARENT_POLL_SECONDS = 0.5


@dataclass
class ImportReport:
    added: int = 0
    unchanged: int = 0
    moved: int = 0
    updated: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)  # {"path", "reason"}
    duplicates: list[dict[str, str]] = field(default_factory=list)  # {"path", "of"}
    # Labelled rows removed because their path now holds other content and theirs is gone.
    labels_dropped: list[dict[str, str]] = field(default_factory=list)  # {"path", "coarse", …}
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
        if self.labels_dropped:
            out["labels_dropped"] = list(self.labels_dropped)
        if self.labels is not None:
            out["labels"] = self.labels.to_json()
        if self.cancelled:
            out["cancelled"] = True
        return out


class FeatureSink(Protocol):
    """Takes the backbone inputs the import workers prepare (`featurefeed.FeatureFeed`)."""

    input_size: int

    def put(self, sha256: str, square: bytes) -> None: ...


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
    # The backbone's input (view 0), uint8 (S, S, 3) bytes, when the import feeds features.
    net_input: bytes = b""


# --- worker side ------------------------------------------------------------------------------
_KNOWN: frozenset[str] = frozenset()


def _init_worker(known: frozenset[str], parent: int | None = None) -> None:
    global _KNOWN
    _KNOWN = known
    if parent is not None:
        threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()
    # Each worker is one process; nested thread pools (OpenCV) would oversubscribe the cores.
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 is a hard dependency, but never fail a worker
        pass


def _exit_with_parent(parent: int) -> None:
    """End this worker once the importing process is gone (killed with SIGKILL, it cannot
    shut its pool down): a worker must never outlive the import that started it."""
    while True:
        time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent:
            os._exit(1)


def measure_file(path: str, known: frozenset[str] | None = None, net_size: int = 0) -> Measured:
    """Read, hash, decode (reduced), quantise and thumbnail one file; errors become reasons.

    One decode per photo (issue 23): `imaging.decode_fine` at `colour.PALETTE_SIDE` px (a
    large JPEG at a reduced DCT scale); the palette is measured on it and the thumbnails are
    area-resized from it. With ``net_size`` (a backbone's input size) the backbone's input is
    area-resized from it too: exactly `extract.decode_for` (longest side 2·``net_size``)
    centre-cropped by `hashing.data.prepare_image`, so the feature stage need not read and
    decode the file again."""
    from fabricsearch import colour

    known = _KNOWN if known is None else known
    try:
        st = os.stat(path)
        data = imaging.read_bytes(path)
        sha = hashlib.sha256(data).hexdigest()
        if sha in known:
            return Measured(path=path, sha256=sha, size=st.st_size, mtime=st.st_mtime, known=True)
        # The palette is measured on a decode fine enough to keep yarn colours apart (not on
        # the 512 px work image, where a fine orange/black check is one brown); docs/similarity.md.
        fine, net, info = imaging.decode_fine(
            data, colour.PALETTE_SIDE, 2 * net_size if net_size else None
        )
        palette = np.ascontiguousarray(colour.quantise(fine), dtype=np.float32)
        rgb = imaging.resize_max_side(fine, WORK_SIDE)
        del fine
        net_input = b""
        if net is not None:
            net_input = imaging.centre_square(net, net_size).tobytes()
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
            net_input=net_input,
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
#: The folders a library keeps inside itself; never imported, whatever folder is imported.
LIBRARY_SUBFOLDERS = ("thumbs", "models", "indexes")
#: Image formats we recognise but cannot decode: reported, so a folder of HEIC photos does not
#: import as "nothing" without a word.
UNSUPPORTED_SUFFIXES = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".gif": "GIF"}


def library_internal_folder(path: str | os.PathLike[str]) -> Path | None:
    """The library folder whose own ``thumbs/``, ``models/`` or ``indexes/`` holds ``path``
    (or is it), else None. Those files are the library's, never fabrics."""
    p = Path(path)
    for sub in (p, *p.parents):
        if sub.name in LIBRARY_SUBFOLDERS and (sub.parent / DB_NAME).is_file():
            return sub.parent
    return None


def _printable(path: str) -> str:
    """A path as text that can be stored and shown: undecodable bytes as ``\\xff``."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _valid_name(path: str) -> bool:
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are not UTF-8 arrive as lone surrogates
        return False
    return True


def scan_folder(
    folder: Path, exclude: Path | None = None
) -> tuple[list[str], list[dict[str, str]]]:
    """Image files under ``folder`` (recursive, sorted, normalised) and the entries that
    cannot be imported (unlistable folders, undecodable names, symlink loops, unsupported
    formats), each with a reason. One bad entry never stops the scan.

    The internal folders of any library met on the way (``exclude`` or a folder holding a
    catalogue) are skipped, and so is a file that resolves (symlink) into one."""
    files: set[str] = set()
    problems: list[dict[str, str]] = []

    def problem(path: str, reason: str) -> None:
        problems.append({"path": _printable(path), "reason": reason})

    def onerror(exc: OSError) -> None:
        problem(str(exc.filename), f"cannot list folder: {exc.strerror}")

    excluded = {str(exclude / d) for d in LIBRARY_SUBFOLDERS} if exclude is not None else set()
    for root, dirs, names in os.walk(folder, onerror=onerror):
        keep = []
        own = DB_NAME in names  # a library folder: its own subfolders are not photos
        for d in sorted(dirs):
            full = os.path.join(root, d)
            if full in excluded or (own and d in LIBRARY_SUBFOLDERS):
                continue
            if not _valid_name(full):
                problem(full, "folder name is not valid UTF-8; rename it to import its photos")
                continue
            keep.append(d)
        dirs[:] = keep
        for name in sorted(names):
            full = os.path.join(root, name)
            suffix = os.path.splitext(name)[1].lower()
            if suffix in UNSUPPORTED_SUFFIXES:
                fmt = UNSUPPORTED_SUFFIXES[suffix]
                problem(full, f"unsupported format ({fmt}); convert it to JPEG, PNG or TIFF")
                continue
            if not imaging.is_image_path(name):
                continue
            if not _valid_name(full):
                problem(full, "file name is not valid UTF-8; rename the file to import it")
                continue
            try:
                path = normalise_path(full)
            except RuntimeError:  # Python 3.11 resolve(): "Symlink loop from …"
                problem(full, "symbolic link loop")
                continue
            except OSError as exc:
                problem(full, f"cannot resolve path: {exc.strerror or exc}")
                continue
            if not _valid_name(path):  # a symlink to a file whose name is not UTF-8
                problem(full, "file name is not valid UTF-8; rename the file to import it")
                continue
            if library_internal_folder(path) is not None or any(
                path.startswith(e + os.sep) for e in excluded
            ):
                continue  # a symlink into a library's own files
            files.add(path)
    return sorted(files), problems


def import_folder(
    lib: Library,
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str] | None = None,
    add_categories: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    only: Collection[str | os.PathLike[str]] | None = None,
    features: FeatureSink | None = None,
) -> ImportReport:
    """Import (or re-import) every image under ``folder`` into ``lib`` (`_import_folder`).

    One import at a time per library, also across processes and the clients of a team
    library: a second one waits (progress stage ``wait``) and then sees the first one's rows,
    so two clients importing the same folder add nothing twice."""
    lib.require_writable("import photos")
    lib.check_photo_folder(Path(folder).expanduser().resolve())
    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(lib.exclusive("import"))
        except LibraryError:
            report(progress, "wait", 0, None, "", message="another import of this library")
            stack.enter_context(lib.exclusive("import", wait=True, cancel=cancel))
        return _import_folder(
            lib, folder, labels_csv, add_categories, workers, progress, cancel, only, features
        )


def _import_folder(
    lib: Library,
    folder: str | os.PathLike[str],
    labels_csv: str | os.PathLike[str] | None = None,
    add_categories: bool = False,
    workers: int | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    only: Collection[str | os.PathLike[str]] | None = None,
    features: FeatureSink | None = None,
) -> ImportReport:
    """Import (or re-import) every image under ``folder`` into ``lib``.

    ``only``: import just these files under ``folder`` (a watched folder's settled arrivals,
    `fabricsearch.watch`); a file among them that is a catalogued photo moved there is
    still recognised as a move.

    ``workers``: processes for decoding (None = the cores not busy with other work,
    `threads.free_cores`; 0 = in this process). With
    ``labels_csv`` the labels are applied after the images (see `labels_csv.import_labels`).

    ``features``: the workers also prepare each new photo's backbone input (of
    ``features.input_size``) from the same decode and hand it to ``features.put`` as it
    arrives, so the network runs while the import decodes (`workflows.import_and_encode`).

    Rows follow content: after an import, the row at each path describes the bytes now at
    that path, and a row's labels, codes, thumbnails and palette belong to its content
    (sha256), wherever that content moved (see `_reconcile`).

    Cancelling stops at the next file and raises `jobs.Cancelled` whose ``partial`` is the
    report of what was committed (new files measured so far); renames and content changes are
    applied only by an import that saw every file, so a re-run finishes the job.
    Raises `LibraryError` for a folder inside a library's own ``thumbs/``, ``models/`` or
    ``indexes/``."""
    lib.require_writable("import photos")
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    resolved = folder.resolve()
    owner = library_internal_folder(resolved)
    if owner is not None:
        raise LibraryError(
            f"{folder} is inside the library {owner}: its thumbnails and models are not "
            "fabrics; import the folder that holds your photos"
        )
    rep = ImportReport()
    report(progress, "scan", 0, None, "files", message=str(folder))
    files, problems = scan_folder(resolved, exclude=lib.folder)
    if only is not None:
        wanted = {normalise_path(p) for p in only} | {str(p) for p in only}
        files = [f for f in files if f in wanted]
        problems = [p for p in problems if p["path"] in wanted]
    rep.failed.extend(problems)

    states = lib.file_states()
    todo: list[str] = []
    unchanged: list[str] = []
    for path in files:
        state = states.get(path)
        if state is not None:
            try:
                st = os.stat(path)
            except OSError:
                todo.append(path)  # measured by a worker, which reports the reason
                continue
            if st.st_size == state[1] and st.st_mtime == state[2]:
                unchanged.append(path)
                continue
        todo.append(path)
    rep.unchanged = len(unchanged)
    report(progress, "scan", len(files), len(files), "files")

    writer = _Writer(lib, rep, states)
    total = len(todo)
    done = 0
    report(progress, "import", 0, total, "images")
    started = time.monotonic()
    try:
        net_size = features.input_size if features is not None else 0
        for measured in _measure_all(
            todo, frozenset(s[3] for s in states.values()), workers, cancel, net_size
        ):
            writer.add(measured)
            if features is not None and measured.net_input:
                features.put(measured.sha256, measured.net_input)
            done += 1
            rate = done / max(time.monotonic() - started, 1e-6)
            report(progress, "import", done, total, "images", info={"img/s": rate})
            if cancel is not None and cancel.cancelled:
                break
    finally:
        writer.flush()  # commit what is measured, also when interrupted (Ctrl-C) or cancelled
    if done < total and cancel is not None and cancel.cancelled:
        rep.cancelled = True
        waiting = total - rep.added - len(rep.failed) + len(problems)
        kept = f"{rep.added} new images were imported and kept" if rep.added else "none imported"
        raise Cancelled(
            f"{kept}; {waiting} files not yet imported: run the import again to finish",
            partial=rep,
        )
    _reconcile(lib, rep, writer, set(files), unchanged, states)
    if labels_csv is not None:
        from fabricsearch.catalogue.labels_csv import import_labels

        rep.labels = import_labels(lib, labels_csv, add_categories=add_categories)
    return rep


def _measure_all(
    paths: list[str],
    known: frozenset[str],
    workers: int | None,
    cancel: CancelToken | None,
    net_size: int = 0,
) -> Iterator[Measured]:
    if workers is None:
        # The cores actually free (threads.free_cores): on a busy laptop more decoders than
        # free cores only queue for them, and the feature feed's network shares them too.
        from fabricsearch.threads import free_cores

        workers = free_cores()
    workers = min(workers, len(paths))
    if workers <= 1 or len(paths) < 4:
        # Not worth starting processes (spawning costs ~1 s each) for a handful of files.
        for p in paths:
            if cancel is not None and cancel.cancelled:
                return
            yield measure_file(p, known, net_size)
        return
    yield from _measure_pool(paths, known, workers, cancel, net_size)


def _measure_pool(
    paths: list[str],
    known: frozenset[str],
    workers: int,
    cancel: CancelToken | None,
    net_size: int = 0,
) -> Iterator[Measured]:
    # spawn, not fork: the GUI calls this from a QThread in a process with other threads
    # (and maybe torch loaded), where fork can deadlock; spawn also matches macOS/Windows.
    ctx = multiprocessing.get_context("spawn")
    queue = list(reversed(paths))
    suspects: list[str] = []  # in flight when a worker died
    max_in_flight = workers * 4  # bounded, so thumbnails do not pile up in memory
    pool = cf.ProcessPoolExecutor(
        max_workers=workers, mp_context=ctx, initializer=_init_worker, initargs=(known, os.getpid())
    )
    pending: dict[cf.Future[Measured], str] = {}
    try:
        while queue or pending:
            while queue and len(pending) < max_in_flight:
                p = queue.pop()
                pending[pool.submit(measure_file, p, None, net_size)] = p
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
                    yield _measure_isolated(p, known, ctx, net_size)
                suspects.clear()
                pool = cf.ProcessPoolExecutor(
                    max_workers=workers,
                    mp_context=ctx,
                    initializer=_init_worker,
                    initargs=(known, os.getpid()),
                )
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _measure_isolated(path: str, known: frozenset[str], ctx: Any, net_size: int = 0) -> Measured:
    with cf.ProcessPoolExecutor(
        max_workers=1, mp_context=ctx, initializer=_init_worker, initargs=(known, os.getpid())
    ) as pool:
        try:
            return pool.submit(measure_file, path, None, net_size).result()
        except cf.process.BrokenProcessPool:
            return Measured(path=path, error="the image decoder crashed on this file")


class _Writer:
    """Collects measured files and writes them in batched transactions (main process only).

    Only what cannot conflict with anything is written while files are being measured: new
    content at a path without a row, and failures. Everything else (a known hash at a new
    path, new content at a path that has a row) waits in ``deferred`` for `_reconcile`,
    which needs the content of every path to decide where each row belongs."""

    def __init__(
        self, lib: Library, rep: ImportReport, states: dict[str, tuple[int, int, float, str]]
    ) -> None:
        self.lib = lib
        self.rep = rep
        self.taken = set(states)  # paths that have a row
        self.batch: list[Measured] = []
        self.deferred: dict[str, Measured] = {}  # path → measured (thumbnails already on disk)
        self.content: dict[str, str] = {}  # path → sha256 of every file measured without error
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
        self.content[m.path] = m.sha256
        if m.known or m.path in self.taken or lib.find_by_sha(m.sha256) is not None:
            self.deferred[m.path] = replace(m, thumbs=(), net_input=b"")
            return
        lib.clear_failure(m.path)
        _insert(lib, m)
        self.taken.add(m.path)
        rep.added += 1


def _insert(lib: Library, m: Measured) -> int:
    palette = np.frombuffer(m.palette, dtype=np.float32).reshape(10, 4)
    return lib.add_image(m.path, m.sha256, m.size, m.mtime, m.width, m.height, palette)


def _still_there(path: str, size: int, mtime: float) -> bool:
    """Whether a row's file outside this scan still looks like the catalogued one."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return st.st_size == size and st.st_mtime == mtime


def _reconcile(
    lib: Library,
    rep: ImportReport,
    writer: _Writer,
    scanned: set[str],
    unchanged: list[str],
    states: dict[str, tuple[int, int, float, str]],
) -> None:
    """Apply renames, duplicates and content changes in one transaction, so that each path's
    row describes the bytes at that path and each row keeps its content's labels and codes.

    For every content hash seen at a deferred path: its row stays where it is if its path
    still holds it (or lies outside the scan and looks untouched, or could not be read now);
    otherwise the row moves to the first path holding it. Other paths holding the same
    content are duplicates. Content without a row gets a new one. A row whose path now holds
    other content and whose own content is found nowhere is removed (its content is gone);
    if it was labelled, the report lists it in ``labels_dropped``. Renames may form chains and
    cycles (``mv A C; mv B A``), so moving rows first get a temporary path."""
    deferred = writer.deferred
    if not deferred:
        return
    content = dict(writer.content)
    for p in unchanged:
        content[p] = states[p][3]
    holders: dict[str, list[str]] = {}
    for p in sorted(content):
        holders.setdefault(content[p], []).append(p)

    with lib.atomic():
        rows = lib.file_states()  # fresh: another process may have written meanwhile
        by_sha = {v[3]: (v[0], p, v[1], v[2]) for p, v in rows.items()}
        moves: dict[int, str] = {}
        refresh: dict[int, str] = {}  # row id → deferred path whose size/mtime it takes
        inserts: list[Measured] = []
        for sha in sorted({m.sha256 for m in deferred.values()}):
            hs = holders[sha]
            row = by_sha.get(sha)
            if row is None:
                keep = hs[0]
                inserts.append(deferred[keep])
            else:
                rid, rpath, rsize, rmtime = row
                if rpath in hs:
                    keep = rpath
                elif rpath in content or (
                    rpath not in scanned and not _still_there(rpath, rsize, rmtime)
                ):
                    keep = hs[0]  # its old path holds other content now, or is gone
                    moves[rid] = keep
                else:
                    keep = rpath  # a copy outside the folder, or unreadable right now
                if keep in deferred:
                    refresh[rid] = keep
                    if rid not in moves:
                        rep.unchanged += 1  # touched: same bytes, new mtime
            for p in hs:
                if p != keep and p in deferred:
                    rep.duplicates.append({"path": p, "of": keep})

        gone = [
            v[0]
            for p, v in rows.items()
            if p in content and content[p] != v[3] and v[0] not in moves
        ]
        for rec in lib.images(gone) if gone else []:
            if rec.labelled:
                rep.labels_dropped.append(
                    {
                        "path": str(rec.path),
                        "coarse": rec.coarse or "",
                        "fine": rec.fine or "",
                        "tightness": "" if rec.tightness is None else repr(rec.tightness),
                    }
                )
        lib.remove_images(gone)
        for rid in moves:  # out of the way first: a target path may belong to another mover
            lib.update_image(rid, path=f"\0moving/{rid}")
        for rid, path in moves.items():
            lib.update_image(rid, path=path)
        rep.moved += len(moves)
        for rid, path in refresh.items():
            lib.update_image(rid, size=deferred[path].size, mtime=deferred[path].mtime)
        for m in inserts:
            if m.known:  # hashed as known, but that row has gone since: measure it now
                m = measure_file(m.path, frozenset())
                if m.error:
                    lib.record_failure(m.path, m.error)
                    rep.failed.append({"path": m.path, "reason": m.error})
                    continue
                for size, data in m.thumbs:
                    lib.write_thumbnail(m.sha256, size, data)
            _insert(lib, m)
            if m.path in rows:
                rep.updated += 1  # new content at a catalogued path
            else:
                rep.added += 1
        for p in deferred:
            lib.clear_failure(p)


# --- measuring the palettes again ----------------------------------------------------------
@dataclass
class RemeasureReport:
    """What `remeasure_palettes` did: palettes changed and left as they were, and the images
    it could not measure ({"path", "reason"})."""

    changed: int = 0
    unchanged: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"changed": self.changed, "unchanged": self.unchanged, "skipped": self.skipped}


def remeasure_palettes(
    lib: Library,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> RemeasureReport:
    """Measure every image's colour palette again from its file, as an import measures it now
    (`measure_file`: the finer decode of issue 24), and store those that changed.

    For libraries imported before palettes were measured on the finer decode (the catalogue
    keeps no measurement version). A file whose bytes changed since the import is skipped (its
    row describes the old content: import the folder again). Writes are batched; a cancel
    keeps the batches written and raises `Cancelled` with the report so far."""
    from fabricsearch import colour

    rep = RemeasureReport()
    records = lib.images()
    pending: list[tuple[int, np.ndarray]] = []

    def flush() -> None:
        with lib.atomic():
            for image_id, palette in pending:
                lib.update_image(image_id, palette=palette)
        pending.clear()

    for k, rec in enumerate(records):
        if cancel is not None and cancel.cancelled:
            flush()
            raise Cancelled(
                f"measured {k} of {len(records)} images; run it again to finish", partial=rep
            )
        m = measure_file(str(rec.path), frozenset())
        if m.error or m.sha256 != rec.sha256:
            reason = m.error or "the file changed since it was imported: import its folder again"
            rep.skipped.append({"path": str(rec.path), "reason": reason})
        else:
            palette = np.frombuffer(m.palette, np.float32).reshape(colour.N_COLOURS, 4)
            if np.allclose(palette, rec.palette, atol=1e-4):
                rep.unchanged += 1
            else:
                pending.append((rec.id, palette))
                rep.changed += 1
                if len(pending) >= BATCH_SIZE:
                    flush()
        report(progress, "colours", k + 1, len(records), "img")
    flush()
    return rep
