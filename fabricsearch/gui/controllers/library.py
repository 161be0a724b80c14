"""Opening and closing libraries, loading their records off the GUI thread, imports, labels
CSV, and noticing changes made by other processes (the CLI) in the open library."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEventLoop, QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import QFileDialog

from fabricsearch.catalogue import ImageRecord, Library, LibraryError, NoLibraryThereError
from fabricsearch.gui.browse_columns import BrowseColumns
from fabricsearch.gui.messages import plural
from fabricsearch.gui.models import ThumbnailCache
from fabricsearch.gui.workers import Worker
from fabricsearch.jobs import CancelToken, ProgressFn, report

if TYPE_CHECKING:
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import RecordsView, Shell

log = logging.getLogger(__name__)

#: How often the catalogue files are looked at for changes by another process.
WATCH_INTERVAL_MS = 1500
#: Records read when a library opens, before anything else: the first screen (issue 23).
FIRST_SCREEN = 512
LABELS_CSV_NAME = "labels.csv"
#: How often the grid shows what a running import has committed (it commits every second).
IMPORT_REFRESH_MS = 1500


def load_records(
    library: Any, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> list[ImageRecord]:
    """Every record of the library (the window no longer loads them all: `load_columns`)."""
    report(progress, "load", 0, None, "images")
    return library.images()


def load_columns(
    library: Any, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> BrowseColumns:
    """Worker body: what the grid filters and sorts on, every image as columns (one SELECT,
    no record per image; 1M images: seconds, where every record took 19-41 s and 1.5 GB)."""
    report(progress, "load", 0, None, "images")
    return BrowseColumns.load(library)


def record_key(r: ImageRecord) -> tuple[Any, ...]:
    """What the window shows of a record (palettes are arrays: compared by content hash)."""
    return (r.id, str(r.path), r.sha256, r.coarse, r.fine, r.tightness, r.labelled_at)


def catalogue_signature(lib: Library) -> tuple[object, ...]:
    """Changes whenever anyone commits: the catalogue file's stat, or a team library's newest
    rows (`Library.change_token`); polled, so two windows on one team library see each other's
    labels within `WATCH_INTERVAL_MS`."""
    return lib.change_token()


class LibraryController(QObject):
    recordsLoaded = Signal()  # the browser shows the library's current records
    externalChange = Signal(list)  # ids of records changed by another process
    libraryOpened = Signal(str)  # after the library's records are shown
    importEnded = Signal(object)  # ImportReport or None
    labelsImported = Signal(object)  # services.labels.LabelsReport
    #: Why the last open failed while no library is open ("" once one opens): the welcome
    #: page says it.
    openProblem = Signal(str)
    categoriesRefreshed = Signal()  # changed outside this window; the records read again

    def __init__(self, session: LibrarySession, shell: Shell, records: RecordsView) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.records = records  # the grid's columns, compared before and after a reload
        # Made after this controller (they use it), set by the window: the Categories
        # controller (labels with new categories) and the watched folders (their writes).
        self.categories: Any = None
        self.watching: Any = None
        self.session.labelsChanged.connect(lambda _ids: self.note_own_write())
        self.session.metadataChanged.connect(lambda _ids: self.note_own_write())
        self.cache: ThumbnailCache | None = None
        self.import_workers: int | None = None  # decoding processes (None = all cores)
        self.last_import_report: Any = None
        self.labels_dialog: Any = None  # the latest labels report (LabelsReportDialog)
        self._generation = 0
        self._signature: tuple[tuple[int, int], ...] | None = None
        self.opening: str | None = None  # the library being opened, as the user named it
        self._closes = 0  # close_library calls: an open that saw one meanwhile is dropped
        self.watch_timer = QTimer(self)
        self.watch_timer.setInterval(WATCH_INTERVAL_MS)
        self.watch_timer.timeout.connect(self.check_external_changes)

    @property
    def library(self) -> Library | None:
        """The open library (`LibrarySession.library`)."""
        return self.session.library

    # --- open / close -------------------------------------------------------------------
    def open_library(
        self, path: str | Path, create: bool = False, photos_root: str | Path | None = None
    ) -> bool:
        """Open (or create) a library and show it; its records arrive from a worker
        (`recordsLoaded`). False with a message if it cannot be used. `photos_root`: a new
        team library's (the folder its photos lie under)."""
        from fabricsearch.services.imports import create_library

        shell = self.shell
        if not (isinstance(path, str) and path.startswith(("postgresql://", "postgres://"))):
            path = Path(path).expanduser()  # else a team library's URL
        if not create and self._is_open(path):
            # Already open: nothing to do. (Opening it a second time used to touch the live
            # catalogue through a second descriptor; issue 20 item 1.)
            shell.status(f"{self.library.location} is already open", 5000)
            return True
        if self.opening is not None:
            shell.status(f"Still opening {self.opening}…", 5000)
            return False
        if shell.runner.running("train") and not shell.sink.confirm(
            "Open library",
            "A training is running in this library. Open another library and cancel it?",
        ):
            return False
        if self.importing and not shell.sink.confirm(
            "Open library",
            "An import is running in this library. Open another library and cancel it? The "
            "photos read so far stay imported; importing the folder again finishes it.",
        ):
            return False
        if isinstance(path, str):
            from fabricsearch.services.imports import display_url

            shown = display_url(path)  # a password typed into the URL stays out of sight
        else:
            shown = str(path)
        # The open runs in a worker (a team library's server may take its 10 s connect
        # timeout to answer); the window answers meanwhile and says what it waits for.
        self.opening = shown
        closes = self._closes
        shell.status(f"Opening {shown}…")
        try:
            if create:
                make = partial(create_library, path, photos_root=photos_root)
                lib = self._off_thread(make, "create-library")
            else:
                lib = self._open_asking_password(path)
        except (LibraryError, OSError) as exc:
            if isinstance(exc, NoLibraryThereError) and isinstance(path, str):
                # An empty team database: offer to create one there, once this open is over.
                shell.clear_status()
                QTimer.singleShot(0, partial(self.offer_new_team_library, path))
                return False
            if self.library is None:
                self.openProblem.emit(f"Cannot open {shown}:\n{exc}")
            shell.clear_status()
            shell.sink.inform("Open library", str(exc), warning=True)
            return False
        finally:
            self.opening = None
        shell.clear_status()
        if closes != self._closes:
            # The window closed (or closed its library) while this one was opening.
            log.info("dropped %s: the window closed while it opened", shown)
            lib.close()
            return False
        self.openProblem.emit("")
        self.close_library()
        self.cache = ThumbnailCache(lib, self)
        # A team library by its URL without the password (Settings strips one too); before
        # the widgets, which fill the Library menu's recent entries.
        shell.settings.add_recent_library(lib.folder if lib.team is None else lib.location)
        # The window points its panels (and the cache's thumbnails) at it, titled by it.
        self.session.open(lib)
        read_only = " (read-only)" if getattr(lib, "read_only", False) else ""
        log.info("opened library %s%s", lib.folder, read_only)
        if read_only:
            shell.status("Read-only library: search only, labels cannot change")
        self.show_first_screen(lib)
        self.reload_records(then=lambda: self.libraryOpened.emit(str(lib.folder)))
        self.watch_timer.start()
        return True

    def show_first_screen(self, lib: Library) -> None:
        """The count and the first screen's records at once (two small queries on the GUI
        thread); the columns for filters and sorts follow from a worker (issue 23)."""
        try:
            count = lib.count()
            first = lib.first_images(FIRST_SCREEN) if count else []
        except Exception:  # noqa: BLE001 - the worker's read says what is wrong
            log.debug("cannot read the first screen", exc_info=True)
            return
        self.session.show_first_screen(count, first)

    def _is_open(self, path: str | Path) -> bool:
        """Whether ``path`` names the library this window has open."""
        lib = self.library
        if lib is None or lib.closed:
            return False
        if isinstance(path, str):
            if lib.team is None:
                return False
            from fabricsearch.services.imports import display_url

            return display_url(path) == display_url(lib.location)
        if lib.team is not None:
            return False
        try:
            return path.resolve() == lib.folder.resolve()
        except OSError:
            return False

    def _open_asking_password(self, path: str | Path) -> Library:
        """`Library.open`; a team library whose server wants a password that libpq's own means
        (~/.pgpass, a service file, PGPASSWORD) did not supply asks for it (`ask_password`),
        once, and connects with it; it is kept in memory only (never in settings or logs)."""
        try:
            return self._off_thread(partial(Library.open, path), "open-library")
        except LibraryError as exc:
            if not isinstance(path, str) or "password" not in str(exc).lower():
                raise
            from urllib.parse import quote

            from fabricsearch.services.imports import display_url

            password = self.ask_password(display_url(path))
            if not password:
                raise
            sep = "&" if "?" in path else "?"
            url = f"{display_url(path)}{sep}password={quote(password, safe='')}"
            return self._off_thread(partial(Library.open, url), "open-library")

    def _off_thread(self, fn: Callable[[], Any], name: str) -> Any:
        """``fn()`` run in a worker while a local event loop keeps the window answering
        (issue 24: `Library.open` ran on the GUI thread); its result, or its exception raised
        here. Callers such as tests and scripts still get the outcome when the call returns;
        `opening` refuses a second open meanwhile."""
        outcome: list[tuple[bool, Any]] = []

        def work(progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> None:
            try:
                outcome.append((True, fn()))
            except Exception as exc:  # noqa: BLE001 - raised again on the GUI thread
                outcome.append((False, exc))

        loop = QEventLoop()
        # Deleted when done: each open's worker (holding the Library it opened) stayed.
        worker = Worker(work, name=name, parent=self, delete_when_done=True)
        worker.ended.connect(loop.quit, Qt.ConnectionType.QueuedConnection)
        worker.start()
        loop.exec()
        worker.wait()
        ok, value = outcome[0]
        if not ok:
            raise value
        return value

    def offer_new_team_library(self, url: str) -> bool:
        """Connect to team library… found an empty database: create a team library there
        (as `fabricsearch init URL --photos-root DIR` does), after asking, with the folder
        the team's photos lie under."""
        from fabricsearch.services.imports import display_url

        shown = display_url(url)
        if not self.shell.sink.confirm(
            "Connect to team library",
            f"{shown} holds no fabricsearch library yet.\n\nCreate a new team library there? "
            "You then choose the shared folder the team's photos lie under (each colleague "
            "maps it for their computer).",
        ):
            return False
        root = self.ask_photos_root(shown)
        if not root:
            return False
        return self.open_library(url, create=True, photos_root=root)

    def ask_photos_root(self, url: str) -> str | None:
        """The folder a new team library's photos lie under, from the user (None: cancelled)."""
        folder = QFileDialog.getExistingDirectory(
            self.shell.dialog_parent(),
            f"New team library {url}: the folder the team's photos lie under",
        )
        return folder or None

    def ask_password(self, url: str) -> str | None:
        """The password for ``url`` from the user (None: cancelled)."""
        from PySide6.QtWidgets import QInputDialog, QLineEdit

        text, ok = QInputDialog.getText(
            self.shell.dialog_parent(),
            "Team library password",
            f"Password for {url}:\n(kept for this session only; ~/.pgpass avoids the question)",
            QLineEdit.EchoMode.Password,
        )
        return text if ok and text else None

    def close_library(self) -> None:
        self._closes += 1
        self.watch_timer.stop()
        self._generation += 1  # records still loading belong to the old library
        self.shell.runner.cancel()
        if self.cache is not None:
            self.cache.stop()
            # Freed once the grids let it go (their models are replaced at the next open).
            self.cache.setParent(None)
        self.shell.undo_stack.clear()
        self.cache = None
        # Closes the handle; the search controller forgets its searches and history, the
        # window shows its welcome page (`closed`).
        self.session.close()

    @property
    def loading(self) -> bool:
        """Whether the records are being read (`LibrarySession.records_loading`)."""
        return self.session.records_loading

    def reload_records(self, then: Callable[[], None] | None = None) -> None:
        """Load every image's grid columns in a worker, then show them (and call `then`);
        records are read by page as the grid shows them."""
        lib = self.library
        if lib is None:
            return
        self._generation += 1
        generation = self._generation
        signature = catalogue_signature(lib)
        self.session.set_loading(True)

        def done(columns: BrowseColumns) -> None:
            if generation != self._generation:
                return
            self._signature = signature
            # An import's automatic head, another client's activation: read once here.
            self.session.refresh_active_model()
            self.session.columns_loaded(columns)  # the browser shows them
            self.recordsLoaded.emit()
            if then is not None:
                then()

        def failed(message: str) -> None:
            if generation == self._generation:
                self.session.set_loading(False)
                self.shell.sink.inform(
                    "Library", f"Cannot read the library: {message}", warning=True
                )

        self.shell.runner.start(
            partial(load_columns, lib),
            name="records",
            slot="records",
            on_finished=done,
            on_failed=failed,
        )

    # --- changes by other processes -------------------------------------------------------
    def note_own_write(self) -> None:
        """The window wrote (labels, a fabric record) and shows it already: take the catalogue
        as it is now as seen, so the poll does not reload every record after each edit. (A
        change by another process in the same second is then seen with its next change.)"""
        if self.library is not None and not self.loading and self._signature is not None:
            self._signature = catalogue_signature(self.library)

    def check_external_changes(self) -> bool:
        """If the catalogue changed on disk (the CLI, another window), reload the records and
        refresh what changed; the window's own writes find nothing to refresh."""
        lib = self.library
        if lib is not None:
            self.show_shared_training(lib)
        if lib is None or self.loading or self._signature is None:
            return False
        runner = self.shell.runner
        if runner.running("import") or (self.watching is not None and self.watching.writing()):
            return False  # the import's (or watched folder's batch's) end reloads anyway
        if runner.running("labels"):
            return False  # the window's own labels CSV: its end reloads and shows them
        if catalogue_signature(lib) == self._signature:
            return False
        categories = self.refresh_taxonomy(lib)
        before = self.records.columns()
        selected = self.session.selection

        def refreshed() -> None:
            if categories:
                self.categoriesRefreshed.emit()  # the Categories dialog, with its counts
            # Labels and content compared as columns (paths are not read: a record moved by
            # another process shows its new path when its row is next painted).
            changed = self.records.columns().changed_since(before)
            if not changed:
                return
            log.info("library changed by another process: %d records", len(changed))
            # Labels reloaded (the searcher reads them again on `recordsChanged`); added or
            # removed images update the open index incrementally at the next query (a new
            # active model reloads it: the searcher notices).
            self.session.records_changed()
            self.shell.reselect(selected)
            self.shell.status(
                f"{plural(len(changed), 'image')} changed outside this window: refreshed", 6000
            )
            self.externalChange.emit(changed)

        self.reload_records(then=refreshed)
        return True

    def refresh_taxonomy(self, lib: Library) -> bool:
        """Categories added, renamed or retired by another process (the CLI, another window)
        shown in the filters, the labelling panel and the Categories dialog; True when they
        had changed. The window's own edits show already and compare equal."""
        try:
            tax = lib.stored_taxonomy()
        except Exception:  # noqa: BLE001 - a lost connection: the next poll tries again
            log.debug("cannot read the taxonomy", exc_info=True)
            return False
        shown = self.session.taxonomy
        if shown is not None and tax.to_dict() == shown.to_dict():
            return False
        log.info("categories changed by another process")
        self.session.set_taxonomy(tax)  # the panels and the searcher follow
        # The label panel's boxes were refilled: the selection is shown again.
        self.session.select(self.session.selection, self.session.in_results)
        self.shell.status("Categories changed outside this window: refreshed", 6000)
        return True

    def show_shared_training(self, lib: Library) -> str | None:
        """A team library's training run by another client (or another window): "Training by
        ann@desk3 (pid 4711): 45 %" in the status bar, refreshed by each poll and gone a
        moment after it ends. This window's own training shows its own progress."""
        if lib.team is None or self.shell.runner.running("train"):
            return None
        try:
            p = lib.job_progress("training")
        except Exception:  # noqa: BLE001 - a lost connection: the next poll tries again
            log.debug("cannot read the training progress", exc_info=True)
            return None
        if p is None:
            return None
        done = f"{p['percent']} %" if p["percent"] is not None else p["stage"]
        text = f"Training by {p['who']}: {done}"
        self.shell.status(text, 2 * WATCH_INTERVAL_MS)
        return text

    # --- dialogs ----------------------------------------------------------------------------
    def new_library_dialog(self) -> None:
        """An empty folder, or one not made yet (`NewLibraryDialog` makes it)."""
        from fabricsearch.gui.dialogs.new_library_dialog import NewLibraryDialog

        dialog = NewLibraryDialog(self.shell.dialog_parent())
        dialog.fileSelected.connect(lambda folder: self.open_library(folder, create=True))
        self.shell.runner.last_dialog = dialog
        dialog.open()

    def open_library_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self.shell.dialog_parent(), "Open library")
        if folder:
            self.open_library(folder)

    def connect_team_library_dialog(self) -> None:
        """Library ▸ Connect to team library…: a postgresql:// URL (passwords from libpq's
        ~/.pgpass or service file, never typed here)."""
        from PySide6.QtWidgets import QInputDialog

        url, ok = QInputDialog.getText(
            self.shell.dialog_parent(),
            "Connect to team library",
            "Team library URL (postgresql://USER@HOST/DB)\n"
            "(an empty database: you are offered to create a team library there):",
        )
        if ok and url.strip():
            self.open_library(url.strip())

    # --- import -------------------------------------------------------------------------
    def import_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(
            self.shell.dialog_parent(), "Import a folder of fabric photos"
        )
        if folder:
            self.import_folder(folder)

    def import_folder(self, folder: str | Path, labels_csv: str | Path | None = None) -> Any:
        """Import in the background and return its worker (issue 24 item 8): the window stays
        usable, the status bar shows one progress for the whole import with Cancel
        (`import_bar`), and the grid shows the photos as the import commits them
        (`IMPORT_REFRESH_MS`); a report of failed files at the end, then ``importEnded``. A
        labels.csv in the folder is offered (its labels applied when the user agrees)."""
        from fabricsearch.services.imports import import_and_encode, import_plan

        if self.library is None:
            return None
        if self.importing:
            self.shell.sink.inform(
                "Import folder",
                "An import is running: wait for it to end (or cancel it in the status bar) "
                "before importing another folder.",
            )
            return None
        found = Path(folder) / LABELS_CSV_NAME
        if (
            labels_csv is None
            and found.is_file()
            and self.shell.sink.confirm(
                "Import folder",
                f"{Path(folder).name} holds {LABELS_CSV_NAME}. Apply its labels to the "
                "imported photos?",
            )
        ):
            labels_csv = found
        fn = partial(
            import_and_encode,
            self.library,
            folder,
            labels_csv=labels_csv,
            workers=self.import_workers,
        )
        worker = self.shell.runner.start(
            fn,
            name="import",
            slot="import",
            on_finished=lambda out: self._on_import_done(out, str(folder)),
            on_failed=self._on_import_failed,
            on_cancelled=lambda: self._on_import_failed("cancelled"),
        )
        self.import_bar.follow(worker, "Import", import_plan(self.library), f"Importing {folder}")
        self._import_refresh.start()
        return worker

    @property
    def importing(self) -> bool:
        return self.shell.runner.running("import")

    @property
    def import_bar(self) -> Any:
        """The running import in the status bar (`widgets.job_bar.JobBar`), made when first
        needed."""
        bar = getattr(self, "_import_bar", None)
        if bar is None:
            from fabricsearch.gui.widgets.job_bar import JobBar

            bar = self._import_bar = JobBar()
            self.shell.add_status_widget(bar)
            self._import_refresh = QTimer(self)
            self._import_refresh.setInterval(IMPORT_REFRESH_MS)
            self._import_refresh.timeout.connect(self.show_imported_so_far)
        return bar

    def show_imported_so_far(self) -> bool:
        """While an import runs: the photos it has committed since the grid was last read
        are shown (a reload of the columns in a worker, as any other); True if one began."""
        lib = self.library
        if lib is None or not self.importing:
            self._import_refresh.stop()
            return False
        if self.loading:
            return False  # the reload under way shows them, or the next tick does
        # A large library's columns take seconds to read: reloading takes at most a quarter
        # of the time, so a long import into a million photos is not slowed by its grid.
        now = time.monotonic()
        last_start, last_took = getattr(self, "_import_reloaded", (0.0, 0.0))
        if now - last_start < 4 * last_took:
            return False
        try:
            if catalogue_signature(lib) == self._signature:
                return False
        except Exception:  # noqa: BLE001 - a lost connection: the import's end says so
            log.debug("cannot look at the catalogue", exc_info=True)
            return False

        def shown() -> None:
            self._import_reloaded = (now, time.monotonic() - now)

        self._import_reloaded = (now, 0.0)
        self.reload_records(then=shown)
        return True

    def _on_import_done(self, outcome: Any, folder: str) -> None:
        from fabricsearch.gui.dialogs.import_report import ImportReportDialog

        report_ = outcome.report
        self.last_import_report = report_
        self.import_bar.job_ended()
        # New images join the open index at the next query; their labels are read now.
        self.session.records_changed()
        dialog = ImportReportDialog(report_, folder, self.shell.dialog_parent())
        self.shell.runner.last_dialog = dialog
        self.shell.sink.present(dialog)
        if getattr(report_, "labels", None) is not None and report_.labels.errors:
            self.show_labels_report(report_.labels)  # its labels.csv's refused rows
        self.reload_records(then=lambda: self.importEnded.emit(report_))

    def _on_import_failed(self, message: str) -> None:
        self.import_bar.job_ended()
        if message != "cancelled":
            self.shell.sink.inform("Import", f"The import failed: {message}", warning=True)
        self.reload_records(then=lambda: self.importEnded.emit(None))

    # --- labels CSV ---------------------------------------------------------------------------
    def import_labels_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self.shell.dialog_parent(), "Import labels CSV", "", "CSV (*.csv);;All files (*)"
        )
        if path:
            self.import_labels(path)

    def import_labels(self, path: str | Path) -> Any:
        """Apply a labels CSV (path,coarse,fine,tightness) in a worker; report what it did."""
        from fabricsearch.services.labels import import_labels

        if self.library is None:
            return None
        lib = self.library

        def work(progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Any:
            report(progress, "labels", 0, None, "rows")
            return import_labels(lib, path)

        def done(rep: Any) -> None:
            def shown() -> None:
                if rep.errors:
                    self.show_labels_report(rep)
                else:
                    applied = plural(rep.applied, "image")
                    text = f"Labels applied to {applied} from {Path(path).name}."
                    self.shell.sink.inform("Import labels", text)
                self.labelsImported.emit(rep)

            self.session.records_changed()  # the searcher reads the labels again
            self.reload_records(then=shown)

        return self.shell.runner.start(
            work,
            name="labels-import",
            slot="labels",
            dialog=f"Importing labels from {Path(path).name}",
            on_finished=done,
            on_failed=lambda m: self.shell.sink.inform(
                "Import labels", f"Cannot import {Path(path).name}: {m}", warning=True
            ),
        )

    def show_labels_report(self, rep: Any) -> Any:
        """The labels report (`LabelsReportDialog`): rows applied, rows refused grouped by why,
        and for categories the library lacks the button that adds them and applies their rows
        (`add_missing_categories`). ``rep``: a `LabelsReport`, of a labels CSV imported alone
        or with a folder."""
        from fabricsearch.gui.dialogs.labels_report import LabelsReportDialog
        from fabricsearch.services.labels import summarise_labels

        if self.library is None:
            return None
        tax = self.library.taxonomy
        dialog = LabelsReportDialog(summarise_labels(rep, tax), tax, self.shell.dialog_parent())
        dialog.library = self.library  # its rows belong to this library, not the next one
        dialog.addRequested.connect(lambda: self.add_missing_categories(dialog))
        self.labels_dialog = dialog
        self.shell.sink.present(dialog)
        return dialog

    def add_missing_categories(self, dialog: Any) -> Any:
        """The report's "Add these N categories and import", in a worker; then the report
        shows the rows applied and refused in all, and the new categories are offered
        everywhere (filters, labelling panel, the Categories dialog)."""
        from fabricsearch.services.labels import import_missing_categories

        lib = self.library
        if lib is None or getattr(dialog, "library", lib) is not lib:
            dialog.set_busy(False)
            return None
        summary = dialog.summary
        name = Path(summary.source).name

        def work(progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Any:
            report(progress, "labels", 0, None, "rows")
            return import_missing_categories(lib, summary)

        def done(rep: Any) -> None:
            tax = lib.taxonomy
            dialog.set_summary(summary.after(rep, tax), tax)
            self.categories.changed_taxonomy(then=lambda: self.labelsImported.emit(rep))

        def failed(message: str) -> None:
            dialog.set_busy(False)
            self.shell.sink.inform(
                "Import labels", f"Cannot import {name}: {message}", warning=True
            )

        return self.shell.runner.start(
            work,
            name="labels-import",
            slot="labels",
            dialog=f"Adding categories and importing labels from {name}",
            on_finished=done,
            on_failed=failed,
            on_cancelled=lambda: dialog.set_busy(False),
        )

    def export_labels_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self.shell.dialog_parent(), "Export labels CSV", "labels.csv", "CSV (*.csv)"
        )
        if path:
            self.export_labels(path)

    def export_labels(self, path: str | Path) -> int | None:
        from fabricsearch.services.labels import export_labels

        if self.library is None:
            return None
        try:
            n = export_labels(self.library, path)
        except OSError as exc:
            self.shell.sink.inform("Export labels", f"Cannot write {path}: {exc}", warning=True)
            return None
        self.shell.status(f"Saved the labels of {plural(n, 'image')} to {path}", 5000)
        return n

    # --- remove and relocate --------------------------------------------------------------------
    def relocate_dialog(self) -> None:
        records = self.shell.selected_records()
        if self.library is None or not records:
            self.shell.status("Select an image of the moved folder first.", 4000)
            return
        old = Path(records[0].path).parent
        new = QFileDialog.getExistingDirectory(self.shell.dialog_parent(), f"Where is {old} now?")
        if new:
            self.relocate(old, new)

    def relocate(self, old: str | Path, new: str | Path) -> Any:
        """Point the images under `old` at the same files under `new` (content checked), in a
        worker with a progress dialog; a report at the end."""
        lib = self.library
        if lib is None:
            return None

        def work(progress: ProgressFn | None = None, cancel: CancelToken | None = None) -> Any:
            return lib.relocate(old, new, progress=progress, cancel=cancel)

        def done(rep: Any) -> None:
            moved = len(rep.moved)
            lines = [
                f"{plural(moved, 'image')} now {'points' if moved == 1 else 'point'} into {new}."
            ]
            for what, items in (
                ("not found there", rep.missing),
                ("with other content there", rep.different),
                ("already in the library under the new path", rep.taken),
            ):
                if items:
                    lines.append(f"{len(items)} {what}")
            self.session.images_changed()
            self.reload_records(
                then=lambda: self.shell.sink.inform("Relocate", "\n".join(lines), not rep.moved)
            )

        return self.shell.runner.start(
            work,
            name="relocate",
            slot="relocate",
            dialog=f"Relocating {Path(old).name}",
            on_finished=done,
            on_failed=lambda m: self.shell.sink.inform("Relocate", f"Cannot relocate: {m}", True),
        )
