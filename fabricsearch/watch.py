"""Watched folders: import new and changed photos as they arrive, and make them searchable.

`FolderWatcher` listens to file-system events with ``watchdog`` (inotify, FSEvents,
ReadDirectoryChangesW; ``poll=True`` uses its polling observer, for network shares whose
changes the OS never reports) and keeps the photos it heard of in ``pending``. A file is
imported only once its size and modification time have stayed the same for ``settle``
seconds, so a photo still being copied is waited for. Settled files are imported per watched
folder with `workflows.import_and_encode` (``only=`` those files), which encodes them with the
active model and refits the label-free head when that is the active model. The importer's
rules apply: content already catalogued is recognised as a move or a duplicate and a file
whose size and mtime match the catalogue is not read, so nothing is imported twice.

Every catalogued photo must be searchable: the first `tick` also encodes, with the active model,
every catalogued image that has none of its codes (`workflows.encode_catalogued`), which an
import or a watcher killed or stopped during its encoding left behind; each import encodes
every image lacking a code, not only its own.

Only real folders under the watched ones are watched: a sub-folder that is a symbolic link is
never followed (its target, when inside a watched folder, is watched there anyway); one whose
target lies outside is reported once (logged, and told to ``on_problem``), so a link to ``/``
cannot make the polling observer walk the whole file system.

Deleted files are ignored (an unplugged drive is not a delete; `fabricsearch remove` is).
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fabricsearch.jobs import CancelToken, ProgressFn

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library

log = logging.getLogger(__name__)

#: Seconds a file's size and mtime must stay unchanged before it is imported.
SETTLE_SECONDS = 2.0
#: Longest wait between two looks at the pending files while events are quiet.
TICK_SECONDS = 0.5


@dataclass
class WatchBatch:
    """What one import of settled files did. A batch with no ``folder`` and no ``files`` is
    the catch-up encode of photos already catalogued (`FolderWatcher.catch_up_codes`); its
    ``failed`` lists the images that still cannot be encoded."""

    folder: str
    files: list[str]
    added: int = 0
    updated: int = 0
    moved: int = 0
    unchanged: int = 0
    encoded: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)
    duplicates: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "folder": self.folder,
            "files": list(self.files),
            "added": self.added,
            "updated": self.updated,
            "moved": self.moved,
            "unchanged": self.unchanged,
            "encoded": self.encoded,
            "failed": list(self.failed),
            "duplicates": list(self.duplicates),
        }


class FolderWatcher:
    """Watches ``folders`` for photos and imports them into ``lib`` once they settle.

    Drive it with `run` (until cancelled), or call `start`, then `tick` repeatedly, then
    `stop` (tests do, with their own ``clock``). ``on_problem`` hears, once each, of what is
    not watched and why (a sub-folder that is a link leaving the watched folders)."""

    def __init__(
        self,
        lib: Library,
        folders: Sequence[str | os.PathLike[str]],
        settle: float = SETTLE_SECONDS,
        poll: bool = False,
        workers: int | None = 0,
        clock: Callable[[], float] = time.monotonic,
        on_problem: Callable[[str], None] | None = None,
    ) -> None:
        self.lib = lib
        self.folders = [Path(f).expanduser().resolve() for f in folders]
        for f in self.folders:
            if not f.is_dir():
                raise FileNotFoundError(f"{f} is not a folder")
        self.settle = float(settle)
        self.poll = poll
        self.workers = workers
        self.clock = clock
        #: path → (size, mtime_ns, time that state was first seen)
        self.pending: dict[str, tuple[int, int, float]] = {}
        self._events: queue.Queue[str] = queue.Queue()
        self._observer: Any = None
        self.on_problem = on_problem
        #: Sub-folders that are links leaving the watched folders → their target (not watched).
        self.refused_links: dict[str, str] = {}
        self._links_seen: set[str] = set()
        self._codes_due = True  # the first tick encodes the catalogued images lacking codes

    # --- events ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start listening, then queue the photos that are new or changed since the last
        import (so files that arrived while nobody watched are caught up)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserverVFS

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.is_directory:
                    return
                for attr in ("dest_path", "src_path"):
                    path = getattr(event, attr, "")
                    if path and (attr == "dest_path" or event.event_type != "moved"):
                        watcher._events.put(os.fsdecode(path))

        for f in self.folders:
            self._check_links(f)
        if self.poll:
            # The polling snapshot lists folders with `_real_entries`: links to folders are
            # not descended into (the default follows them, a link to / walks everything).
            self._observer = PollingObserverVFS(
                os.stat, self._real_entries, polling_interval=TICK_SECONDS
            )
        else:
            self._observer = Observer()  # inotify & co. do not follow links to folders
        for f in self.folders:
            self._observer.schedule(Handler(), str(f), recursive=True)
        self._observer.start()
        self._catch_up()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None

    # --- links ----------------------------------------------------------------------------
    def _real_entries(self, root: str | None) -> Iterator[os.DirEntry[str]]:
        """``os.scandir(root)`` without the links to folders (reported when they leave the
        watched folders): what the polling observer walks."""
        with os.scandir(root) as it:
            entries = list(it)
        return iter([e for e in entries if not self._is_folder_link(e)])

    def _is_folder_link(self, entry: os.DirEntry[str]) -> bool:
        try:
            if not (entry.is_symlink() and entry.is_dir()):
                return False
        except OSError:
            return False
        self._link_found(entry.path)
        return True

    def _check_links(self, folder: Path) -> None:
        """Report the links to folders outside the watched ones under ``folder`` (walked
        without following any link)."""
        stack = [str(folder)]
        while stack:
            try:
                with os.scandir(stack.pop()) as it:
                    entries = list(it)
            except OSError:
                continue
            for e in entries:
                try:
                    if self._is_folder_link(e):
                        continue
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                except OSError:
                    continue

    def _link_found(self, path: str) -> None:
        """A sub-folder that is a link: never followed; reported once when its target lies
        outside every watched folder."""
        if path in self._links_seen:
            return
        self._links_seen.add(path)
        target = os.path.realpath(path)
        if any(Path(target).is_relative_to(f) for f in self.folders):
            log.debug("not following %s: a link to %s, watched there", path, target)
            return
        self.refused_links[path] = target
        message = (
            f"not watching {path}: it is a link to {target}, outside the watched folders "
            "(watch that folder itself to import its photos)"
        )
        log.warning(message)
        if self.on_problem is not None:
            self.on_problem(message)

    def _catch_up(self) -> None:
        from fabricsearch.catalogue.importer import scan_folder

        states = self.lib.file_states()
        for folder in self.folders:
            files, _problems = scan_folder(folder, exclude=self.lib.folder)
            for p in files:
                if not self._matches_catalogue(p, states):
                    self._see(p)

    def _wanted(self, path: str) -> bool:
        from fabricsearch.catalogue.importer import library_internal_folder
        from fabricsearch.imaging import is_image_path

        name = os.path.basename(path)
        return (
            is_image_path(name)
            and not name.startswith(".")  # editors' and copiers' temporary files
            and library_internal_folder(path) is None
        )

    def _see(self, path: str) -> None:
        """Note the file's current size and mtime (restarting its wait if they changed)."""
        try:
            st = os.stat(path)
        except OSError:
            self.pending.pop(path, None)  # gone again (a temporary file, a delete)
            return
        now = self.clock()
        old = self.pending.get(path)
        if old is None or (old[0], old[1]) != (st.st_size, st.st_mtime_ns):
            self.pending[path] = (st.st_size, st.st_mtime_ns, now)

    def _matches_catalogue(self, path: str, states: dict[str, tuple[int, int, float, str]]) -> bool:
        state = states.get(path)
        if state is None:
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        return st.st_size == state[1] and st.st_mtime == state[2]

    # --- work -----------------------------------------------------------------------------
    def settled(self) -> list[str]:
        """Drain the event queue, re-check every pending file, and return (and forget) those
        whose size and mtime have not changed for ``settle`` seconds."""
        while True:
            try:
                path = self._events.get_nowait()
            except queue.Empty:
                break
            if os.path.islink(path) and os.path.isdir(path):
                self._link_found(path)  # a folder replaced by a link (inotify reports a file)
                continue
            try:
                path = str(Path(path).resolve())
            except (OSError, RuntimeError):
                continue
            if self._wanted(path):
                self._see(path)
        now = self.clock()
        ready = []
        for path in sorted(self.pending):
            self._see(path)
            entry = self.pending.get(path)
            if entry is not None and now - entry[2] >= self.settle:
                ready.append(path)
                del self.pending[path]
        return ready

    def tick(
        self, progress: ProgressFn | None = None, cancel: CancelToken | None = None
    ) -> list[WatchBatch]:
        """One look: import the settled files, one batch per watched folder; on the first
        look, also make the catalogued images that have no code searchable (`catch_up_codes`:
        an import encodes every image lacking a code anyway)."""
        from fabricsearch.workflows import import_and_encode

        ready = self.settled()
        if ready:
            states = self.lib.file_states()
            ready = [p for p in ready if not self._matches_catalogue(p, states)]
        batches = []
        for folder in self.folders:
            mine = [p for p in ready if Path(p).is_relative_to(folder)]
            ready = [p for p in ready if p not in set(mine)]
            if not mine:
                continue
            outcome = import_and_encode(
                self.lib, folder, workers=self.workers, progress=progress, cancel=cancel, only=mine
            )
            rep = outcome.report
            batches.append(
                WatchBatch(
                    str(folder),
                    mine,
                    added=rep.added,
                    updated=rep.updated,
                    moved=rep.moved,
                    unchanged=rep.unchanged,
                    encoded=outcome.encoded,
                    failed=list(rep.failed),
                    duplicates=list(rep.duplicates),
                )
            )
        if self._codes_due and not batches:
            caught_up = self.catch_up_codes(progress, cancel)
            if caught_up is not None:
                batches.append(caught_up)
        self._codes_due = False
        return batches

    def catch_up_codes(
        self, progress: ProgressFn | None = None, cancel: CancelToken | None = None
    ) -> WatchBatch | None:
        """Encode, with the active model, every catalogued image that has no code under it
        (what an import or watcher killed or stopped during its encoding left unsearchable);
        None when none lacked one."""
        from fabricsearch.workflows import encode_catalogued

        encoded = encode_catalogued(self.lib, progress=progress, cancel=cancel)
        active = self.lib.active_model()
        if active is None:  # no model and none can be fitted: nothing is searchable yet
            return None
        left = self.lib.ids_without_codes(active.version)
        if not encoded and not left:
            return None
        failed = [{"path": str(self.lib.get(i).path), "reason": "cannot be encoded"} for i in left]
        log.info("caught up: encoded %d catalogued images; %d cannot be", encoded, len(left))
        return WatchBatch("", [], encoded=encoded, failed=failed)

    def wait(self, timeout: float) -> None:
        """Block until an event arrives or ``timeout`` seconds pass (the loop's pace)."""
        try:
            path = self._events.get(timeout=timeout)
        except queue.Empty:
            return
        self._events.put(path)

    def run(
        self,
        on_batch: Callable[[WatchBatch], None] | None = None,
        progress: ProgressFn | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        """Watch until ``cancel`` is set; ``on_batch`` hears of every import."""
        self.start()
        try:
            while cancel is None or not cancel.cancelled:
                for batch in self.tick(progress, cancel):
                    if on_batch is not None:
                        on_batch(batch)
                self.wait(min(TICK_SECONDS, max(self.settle / 4, 0.05)))
        finally:
            self.stop()
