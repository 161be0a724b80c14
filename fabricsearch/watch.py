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

Deleted files are ignored (an unplugged drive is not a delete; `fabricsearch remove` is).
"""

from __future__ import annotations

import logging
import os
import queue
import time
from collections.abc import Callable, Sequence
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
    """What one import of settled files did."""

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
    `stop` (tests do, with their own ``clock``)."""

    def __init__(
        self,
        lib: Library,
        folders: Sequence[str | os.PathLike[str]],
        settle: float = SETTLE_SECONDS,
        poll: bool = False,
        workers: int | None = 0,
        clock: Callable[[], float] = time.monotonic,
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

    # --- events ---------------------------------------------------------------------------
    def start(self) -> None:
        """Start listening, then queue the photos that are new or changed since the last
        import (so files that arrived while nobody watched are caught up)."""
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer
        from watchdog.observers.polling import PollingObserver

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                if event.is_directory:
                    return
                for attr in ("dest_path", "src_path"):
                    path = getattr(event, attr, "")
                    if path and (attr == "dest_path" or event.event_type != "moved"):
                        watcher._events.put(os.fsdecode(path))

        self._observer = PollingObserver(timeout=TICK_SECONDS) if self.poll else Observer()
        for f in self.folders:
            self._observer.schedule(Handler(), str(f), recursive=True)
        self._observer.start()
        self._catch_up()

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=10)
            self._observer = None

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
        """One look: import the settled files, one batch per watched folder."""
        from fabricsearch.workflows import import_and_encode

        ready = self.settled()
        if not ready:
            return []
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
        return batches

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
