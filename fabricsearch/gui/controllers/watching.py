"""Watched folders in the window: photos arriving in them are imported once they have
settled (`fabricsearch.watch.FolderWatcher`, run in a worker), then shown and searchable.
The folders are remembered per library."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:
    from fabricsearch.gui.controllers.library import LibraryController
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import Shell

log = logging.getLogger(__name__)

WRITING_GRACE_S = 30.0


class WatchController(QObject):
    batchImported = Signal(object)  # watch.WatchBatch, on the GUI thread
    problemFound = Signal(str)  # e.g. a link leaving the watched folders, on the GUI thread
    _batch = Signal(object)  # emitted from the worker thread; queued to the GUI thread
    _problem = Signal(str)  # likewise
    #: What the status bar's watch label shows: its text and tooltip.
    shownChanged = Signal(str, str)

    def __init__(self, session: LibrarySession, shell: Shell, libraries: LibraryController) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.libraries = libraries  # its records shown again after a batch; import workers
        self.settle: float | None = None  # None: the watcher's default (seconds)
        self.poll = False
        self.folders: list[Path] = []
        #: What the watcher refused since it (re)started (a link leaving the folders, …).
        self.problems: list[str] = []
        # When the watcher last reported work on the catalogue (set from its thread; None
        # once its batch is shown): the window's own import, not "another process".
        self._writing_since: float | None = None
        self._batch.connect(self._on_batch)
        self._problem.connect(self._on_problem)
        session.closed.connect(self._library_closed)

    def _library_closed(self) -> None:
        # The watcher was cancelled with every job of the library (`close_library`).
        self.folders = []
        self.shownChanged.emit("", "")

    def library_opened(self) -> None:
        lib = self.session.library
        self.folders = [] if lib is None else self.shell.settings.watched_folders(lib.folder)
        self.folders = [f for f in self.folders if f.is_dir()]
        self.restart()

    def set_folders(self, folders: list[Path | str]) -> None:
        """Watch these folders (and remember them for this library)."""
        lib = self.session.library
        if lib is None:
            return
        self.folders = [Path(f).expanduser().resolve() for f in folders]
        self.shell.settings.set_watched_folders(lib.folder, self.folders)
        self.restart()

    @property
    def running(self) -> bool:
        return self.shell.runner.running("watch")

    def stop(self) -> None:
        self.shell.runner.cancel("watch")

    def restart(self) -> None:
        from fabricsearch.services.watching import SETTLE_SECONDS, FolderWatcher

        self.stop()
        self.problems = []
        lib = self.session.library
        if lib is None or not self.folders or getattr(lib, "read_only", False):
            self._show_status()
            return
        try:
            watcher = FolderWatcher(
                lib,
                self.folders,
                settle=SETTLE_SECONDS if self.settle is None else self.settle,
                poll=self.poll,
                workers=self.libraries.import_workers,
                on_problem=self._problem.emit,
            )
        except (OSError, ValueError) as exc:
            self.shell.sink.inform("Watched folders", f"Cannot watch: {exc}", warning=True)
            return
        emit = self._batch.emit

        def writing(_p: Any) -> None:  # in the watcher's thread
            self._writing_since = time.monotonic()

        def run(progress: Any = None, cancel: Any = None) -> None:
            watcher.run(on_batch=emit, progress=writing, cancel=cancel)

        self.shell.runner.start(
            run,
            name="watch",
            slot="watch",
            on_failed=lambda m: self.shell.sink.inform(
                "Watched folders", f"Watching stopped: {m}", warning=True
            ),
        )
        self._show_status()

    def writing(self) -> bool:
        """Whether the watcher is importing into the catalogue now (its batch not yet shown):
        the library's poll then leaves the change to the batch's own reload rather than
        calling it a change "outside this window". A watcher silent for `WRITING_GRACE_S`
        (a catch-up that found nothing sends no batch) counts as done."""
        since = self._writing_since
        return since is not None and time.monotonic() - since < WRITING_GRACE_S

    def _on_batch(self, batch: Any) -> None:
        self._writing_since = None
        new = batch.added + batch.updated + batch.moved
        log.info("watched folder %s: %d new or changed photos", batch.folder, new)
        self.session.images_changed()  # the searcher's index is stale
        if new:
            self.shell.status(
                f"{new} new photo{'s' * (new != 1)} from {Path(batch.folder).name} imported",
                6000,
            )
        self.libraries.reload_records(then=lambda: self.batchImported.emit(batch))

    def _on_problem(self, message: str) -> None:
        """The watcher refused something (it goes on with the rest): say so where the user
        looks, not only in the log."""
        self.problems.append(message)
        self.shell.status(f"Watched folders: {message}", 10_000)
        self._show_status()
        self.problemFound.emit(message)

    def _show_status(self) -> None:
        n = len(self.folders)
        text = f"Watching {n} folder{'s' * (n != 1)}" if n else ""
        if n and self.problems:
            text += " ⚠"
        tip = [str(f) for f in self.folders]
        if self.problems:
            tip += ["", "Not watched:", *self.problems]
        self.shownChanged.emit(text, "\n".join(tip))

    def dialog(self) -> None:
        from fabricsearch.gui.dialogs.watch_dialog import WatchDialog

        if self.session.library is None:
            return
        dialog = WatchDialog(self.folders, self.shell.dialog_parent())
        dialog.accepted.connect(lambda: self.set_folders(dialog.folders()))
        self.shell.runner.last_dialog = dialog
        dialog.open()
