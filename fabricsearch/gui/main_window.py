"""The main window: a thin shell that wires the panels, menus, workers and the undo stack.

No search, import or training code lives here: each long job is a core function run by a
`workers.Worker`; each panel is its own module under `widgets/`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QKeySequence,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord, Library, LibraryError
from fabricsearch.gui import desktop
from fabricsearch.gui.commands import apply_labels, apply_tightness_step
from fabricsearch.gui.dropping import QueryInput, can_accept, query_from_mime
from fabricsearch.gui.models import ThumbnailCache
from fabricsearch.gui.settings import THUMB_SIZES, Settings
from fabricsearch.gui.widgets.detail_panel import DetailPanel
from fabricsearch.gui.widgets.label_panel import LabelPanel
from fabricsearch.gui.widgets.library_browser import LibraryBrowser
from fabricsearch.gui.widgets.search_panel import SearchPanel
from fabricsearch.gui.workers import Worker, stop_all_workers
from fabricsearch.jobs import CancelToken, ProgressFn, check, report
from fabricsearch.workflows import create_library, model_advice

log = logging.getLogger(__name__)

IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.tif *.tiff *.bmp *.webp);;All files (*)"
PREVIEW_SIDE = 768


@dataclass
class SearchOutcome:
    """What a search worker hands back to the GUI thread."""

    result: Any  # search.SearchResult
    records: list[ImageRecord]
    preview: QImage | None
    query: QueryInput


def rgb_to_qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def run_search(
    library: Any,
    searcher: Any,
    query: QueryInput,
    k: int,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SearchOutcome:
    """Worker body: search, then fetch the hits' records and a preview of the query."""
    from fabricsearch import imaging

    report(progress, "search", 0, None, "queries", message=query.name)
    from fabricsearch.search import QueryLabels

    labels = QueryLabels(coarse=query.coarse, fine=query.fine, tightness=query.tightness)
    result = searcher.search(query.source, k=k, query_labels=labels)
    check(cancel)
    records = library.images([h.image_id for h in result.hits]) if result.hits else []
    try:
        rgb = (
            imaging.load_rgb(query.path, max_side=PREVIEW_SIDE)
            if query.path is not None
            else imaging.resize_max_side(query.image, PREVIEW_SIDE)
        )
        preview: QImage | None = rgb_to_qimage(rgb)
    except Exception:  # noqa: BLE001 - the preview is a nicety; results still show
        preview = None
    return SearchOutcome(result, records, preview, query)


def load_records(
    library: Any, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> list:
    report(progress, "load", 0, None, "images")
    return library.images()


class WelcomePage(QWidget):
    """Shown when no library is open: create or open one."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        title = QLabel(
            "<h2>No fabric library is open</h2>"
            "A library is a folder holding the catalogue of your fabric photos, "
            "their labels and the trained search models."
        )
        title.setWordWrap(True)
        title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.new_button = QPushButton(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogNewFolder), "New library…"
        )
        self.open_button = QPushButton(
            self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon), "Open library…"
        )
        self.demo_button = QPushButton("Open the demo library")
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(title)
        for b in (self.new_button, self.open_button, self.demo_button):
            b.setMinimumWidth(220)
            layout.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addStretch(2)


class MainWindow(QMainWindow):
    libraryOpened = Signal(str)
    searchFinished = Signal(object)  # SearchOutcome
    searchFailed = Signal(str)
    labelsChanged = Signal(list)
    importEnded = Signal(object)  # ImportReport or None
    trainingEnded = Signal(str)  # finished | failed | cancelled
    modelChanged = Signal()

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or Settings()
        self.library: Library | None = None
        self.cache: ThumbnailCache | None = None
        self._searcher: Any = None
        self._search_generation = 0
        self.search_worker: Worker | None = None
        self.train_worker: Worker | None = None
        self.train_dialog: QWidget | None = None  # the latest training's progress window
        self.import_worker: Worker | None = None
        self.last_import_report: Any = None
        self.last_dialog: QWidget | None = None  # most recent modeless dialog (tests, screenshots)
        self.train_config_overrides: dict[str, Any] = {}  # tests: tiny models
        self.import_workers: int | None = None  # decoding processes for imports (None = all cores)
        self.interactive = True  # False in tests / screenshots: no modal message boxes
        self.messages: list[str] = []  # what would have been shown (for tests)
        self.query: QueryInput | None = None
        self.undo_stack = QUndoStack(self)

        self.setWindowTitle("fabricsearch")
        self.setAcceptDrops(True)
        self.resize(1360, 860)

        self.browser = LibraryBrowser()
        self.search_panel = SearchPanel()
        self.detail = DetailPanel()
        self.label_panel = LabelPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(
            self.browser, self.style().standardIcon(QStyle.StandardPixmap.SP_DirIcon), "Library"
        )
        self.tabs.addTab(
            self.search_panel,
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView),
            "Search results",
        )
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.addWidget(self.detail)
        self.right.addWidget(self.label_panel)
        self.right.setStretchFactor(0, 3)
        self.right.setStretchFactor(1, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(self.right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        self.splitter.setSizes([820, 540])
        self.right.setSizes([600, 260])
        self.welcome = WelcomePage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.splitter)
        self.setCentralWidget(self.stack)

        self.count_label = QLabel()
        self.model_label = QLabel()
        self.advice_label = QLabel()
        self.advice_label.setStyleSheet("color: palette(mid);")
        self.statusBar().addPermanentWidget(self.advice_label)
        self.statusBar().addPermanentWidget(self.count_label)
        self.statusBar().addPermanentWidget(self.model_label)
        # While a training runs (its window may be hidden): what it is doing; a click shows it.
        self.training_button = QPushButton()
        self.training_button.setFlat(True)
        self.training_button.setToolTip("Show the training's progress window")
        self.training_button.clicked.connect(self.show_training)
        self.training_button.setVisible(False)
        self.statusBar().addPermanentWidget(self.training_button)

        self._build_menus()
        self.addActions(self.label_panel.shortcut_actions)
        self._connect()
        self._restore_settings()
        self._update_state()

    # --- construction -------------------------------------------------------------------
    def _action(
        self,
        menu: Any,
        text: str,
        slot: Callable[[], Any],
        shortcut: Any = None,
        icon: QStyle.StandardPixmap | None = None,
    ) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if icon is not None:
            action.setIcon(self.style().standardIcon(icon))
        action.triggered.connect(lambda _checked=False: slot())
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        sp = QStyle.StandardPixmap
        file_menu = bar.addMenu("&File")
        self.search_action = self._action(
            file_menu, "Search by photo…", self.choose_query, "Ctrl+F", sp.SP_FileDialogContentsView
        )
        self.paste_action = self._action(
            file_menu, "Search by pasted image", self.paste_query, QKeySequence.StandardKey.Paste
        )
        self.similar_action = self._action(
            file_menu, "Find similar to selected image", self.find_similar, "Ctrl+Shift+F"
        )
        file_menu.addSeparator()
        self.export_csv_action = self._action(file_menu, "Export results as CSV…", self.export_csv)
        self.export_sheet_action = self._action(
            file_menu, "Export contact sheet…", self.export_sheet
        )
        file_menu.addSeparator()
        self._action(file_menu, "Quit", self.close, QKeySequence.StandardKey.Quit)

        edit = bar.addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "Redo")
        redo.setShortcut(QKeySequence.StandardKey.Redo)
        edit.addAction(undo)
        edit.addAction(redo)
        self.undo_action, self.redo_action = undo, redo
        edit.addSeparator()
        self.next_action = self._action(edit, "Next unlabelled", self.next_unlabelled)
        self.next_action.setShortcut(QKeySequence("N"))  # also in the label panel's help
        self._action(edit, "Select all", self._select_all, QKeySequence.StandardKey.SelectAll)

        lib_menu = bar.addMenu("&Library")
        self._action(
            lib_menu,
            "New library…",
            self.new_library_dialog,
            QKeySequence.StandardKey.New,
            sp.SP_FileDialogNewFolder,
        )
        self._action(
            lib_menu,
            "Open library…",
            self.open_library_dialog,
            QKeySequence.StandardKey.Open,
            sp.SP_DirOpenIcon,
        )
        self.recent_menu = lib_menu.addMenu("Open recent")
        lib_menu.addSeparator()
        self.import_action = self._action(
            lib_menu, "Import folder…", self.import_folder_dialog, "Ctrl+I", sp.SP_DialogOpenButton
        )

        model_menu = bar.addMenu("&Model")
        self.train_action = self._action(
            model_menu, "Retrain on new samples…", self.retrain_dialog, None, sp.SP_BrowserReload
        )
        self.training_action = self._action(model_menu, "Training progress…", self.show_training)
        self.training_action.setEnabled(False)
        self.evaluate_action = self._action(model_menu, "Evaluate…", self.evaluate)
        self.versions_action = self._action(model_menu, "Versions…", self.show_versions)
        self.adapt_action = self._action(
            model_menu, "Adapt to this library…", self.adapt_dialog, None, sp.SP_BrowserReload
        )

        view = bar.addMenu("&View")
        size_menu = view.addMenu("Thumbnail size")
        group = QActionGroup(self)
        self.size_actions: dict[int, QAction] = {}
        for px, name in zip(THUMB_SIZES, ("Small", "Medium", "Large", "Extra large"), strict=True):
            action = QAction(f"{name} ({px} px)", self, checkable=True)
            action.triggered.connect(lambda _c=False, p=px: self.set_thumb_size(p))
            group.addAction(action)
            size_menu.addAction(action)
            self.size_actions[px] = action

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Labelling shortcuts", self.show_shortcuts)
        self._action(help_menu, "About fabricsearch", self.show_about)
        self.menus_needing_library = [
            self.search_action,
            self.paste_action,
            self.similar_action,
            self.import_action,
            self.train_action,
            self.evaluate_action,
            self.versions_action,
        ]

    def _connect(self) -> None:
        self.browser.selectionChangedIds.connect(
            lambda ids: self._on_selection(ids, from_results=False)
        )
        self.search_panel.selectionChangedIds.connect(
            lambda ids: self._on_selection(ids, from_results=True)
        )
        self.browser.activatedId.connect(self.open_image)
        for grid in (self.browser.grid, self.search_panel.grid):
            grid.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
            grid.addAction(self.similar_action)
        self.search_panel.activatedId.connect(self.open_image)
        self.search_panel.exportCsvRequested.connect(self.export_csv)
        self.search_panel.exportSheetRequested.connect(self.export_sheet)
        self.search_panel.kChanged.connect(self._on_k_changed)
        self.tabs.currentChanged.connect(
            lambda _i: self._on_selection(
                self.active_grid().selected_ids(), from_results=self.tabs.currentIndex() == 1
            )
        )
        self.detail.openRequested.connect(self.open_image)
        self.detail.revealRequested.connect(self.reveal_image)
        self.label_panel.labelRequested.connect(self.label_selection)
        self.label_panel.tightnessStepRequested.connect(self.step_tightness)
        self.label_panel.nextUnlabelledRequested.connect(self.next_unlabelled)
        self.welcome.new_button.clicked.connect(self.new_library_dialog)
        self.welcome.open_button.clicked.connect(self.open_library_dialog)
        self.welcome.demo_button.clicked.connect(self.open_demo_library)
        self.welcome.demo_button.setVisible(demo_available())

    def _restore_settings(self) -> None:
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        for name, splitter in (("main", self.splitter), ("right", self.right)):
            s = self.settings.splitter_state(name)
            if s is not None:
                splitter.restoreState(s)
        self.set_thumb_size(self.settings.thumb_size, save=False)
        self._fill_recent()

    # --- library ------------------------------------------------------------------------
    def open_library(self, path: str | Path, create: bool = False) -> bool:
        """Open (or create) a library and show it; False with a message if it can't be used."""
        path = Path(path).expanduser()
        if self.training_running() and not self.confirm(
            "Open library",
            "A training is running in this library. Open another library and cancel it?",
        ):
            return False
        try:
            lib = create_library(path) if create else Library.open(path)
        except (LibraryError, OSError) as exc:
            self.show_message("Open library", str(exc), warning=True)
            return False
        self.close_library()
        self.library = lib
        self.cache = ThumbnailCache(lib, self)
        self.cache.ready.connect(self._on_thumbnail_ready)
        self.browser.set_cache(self.cache)
        self.search_panel.set_cache(self.cache)
        self.set_thumb_size(self.settings.thumb_size, save=False)
        self.browser.set_taxonomy(lib.taxonomy)
        for model in (self.browser.model, self.search_panel.model):
            model.taxonomy = lib.taxonomy
        self.detail.taxonomy = lib.taxonomy
        self.label_panel.set_taxonomy(lib.taxonomy)
        self.addActions(self.label_panel.shortcut_actions)
        self.browser.set_records(lib.images())
        self.settings.add_recent_library(lib.folder)
        self._fill_recent()
        self.setWindowTitle(f"{lib.folder.name} — fabricsearch")
        self.stack.setCurrentWidget(self.splitter)
        self.tabs.setCurrentIndex(0)
        self._update_state()
        log.info("opened library %s", lib.folder)
        self.libraryOpened.emit(str(lib.folder))
        return True

    def close_library(self) -> None:
        for w in (self.search_worker, self.train_worker, self.import_worker):
            if w is not None and w.running:
                w.cancel()
                w.wait()
        if self.cache is not None:
            self.cache.stop()
        self.undo_stack.clear()
        if self.library is not None:
            self.library.close()
        self.library = None
        self._searcher = None
        self.cache = None
        self._clear_search()
        self.stack.setCurrentWidget(self.welcome)
        self._update_state()

    def reload_records(self) -> None:
        if self.library is not None:
            self.browser.set_records(self.library.images())
            self._update_state()

    def new_library_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New library: choose an empty folder")
        if folder:
            self.open_library(folder, create=True)

    def open_library_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open library")
        if folder:
            self.open_library(folder)

    def open_demo_library(self) -> None:
        path = ensure_demo_library()
        if path is not None:
            self.open_library(path)

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_libraries():
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.open_library(p))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    # --- import -------------------------------------------------------------------------
    def import_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Import a folder of fabric photos")
        if folder:
            self.import_folder(folder)

    def import_folder(
        self, folder: str | Path, labels_csv: str | Path | None = None
    ) -> Worker | None:
        """Import in a worker with a progress dialog; a report of failed files at the end."""
        from fabricsearch.gui.dialogs.progress_dialog import JobProgressDialog
        from fabricsearch.workflows import import_and_encode

        if self.library is None:
            return None
        fn = partial(
            import_and_encode,
            self.library,
            folder,
            labels_csv=labels_csv,
            workers=self.import_workers,
        )
        worker = Worker(fn, name="import", parent=self)
        dialog = JobProgressDialog(worker, f"Importing {Path(folder).name}", self)
        self.import_worker = worker
        self.last_dialog = dialog
        worker.finished.connect(lambda rep: self._on_import_done(rep, str(folder)))
        worker.failed.connect(lambda msg: self._on_import_failed(msg))
        worker.cancelled.connect(lambda: self._on_import_failed("cancelled"))
        worker.start()
        dialog.open()
        return worker

    def _on_import_done(self, outcome: Any, folder: str) -> None:
        from fabricsearch.gui.dialogs.import_report import ImportReportDialog

        report_ = outcome.report

        self.last_import_report = report_
        if self._searcher is not None:
            self._searcher.invalidate()  # new images: reload the index on the next query
        self.reload_records()
        dialog = ImportReportDialog(report_, folder, self)
        self.last_dialog = dialog
        if self.interactive:
            dialog.open()
        self.importEnded.emit(report_)

    def _on_import_failed(self, message: str) -> None:
        self.reload_records()
        if message != "cancelled":
            self.show_message("Import", f"The import failed: {message}", warning=True)
        self.importEnded.emit(None)

    # --- search -------------------------------------------------------------------------
    def searcher(self) -> Any:
        if self._searcher is None:
            from fabricsearch.search import Searcher

            self._searcher = Searcher(self.library)
        return self._searcher

    def choose_query(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by photo", "", IMAGE_FILTER)
        if path:
            self.search(QueryInput(name=Path(path).name, path=Path(path)))

    def paste_query(self) -> None:
        mime = QGuiApplication.clipboard().mimeData()
        if mime is None or not can_accept(mime):
            self.statusBar().showMessage("The clipboard holds no image.", 5000)
            return
        self.search(query_from_mime(mime))

    def find_similar(self, image_id: int | None = None) -> Worker | None:
        """Search with a library image as the query, its labels included."""
        if self.library is None:
            return None
        if image_id is None:
            records = self.selected_records()
            if not records:
                self.statusBar().showMessage("Select an image first.", 4000)
                return None
            rec = records[0]
        else:
            rec = self.library.get(image_id)
        query = QueryInput(
            name=rec.path.name,
            path=rec.path,
            coarse=rec.coarse,
            fine=rec.fine,
            tightness=rec.tightness,
        )
        return self.search(query)

    def search_mime(self, mime: QMimeData) -> Worker | None:
        return self.search(query_from_mime(mime))

    def search(self, query: QueryInput) -> Worker | None:
        """Run a search off the GUI thread; results arrive in the search panel."""
        if not query.ok:
            self._clear_search(query.error or "Nothing to search for.")
            self.statusBar().showMessage(query.error or "", 8000)
            self.searchFailed.emit(query.error or "")
            return None
        if self.library is None:
            self.show_message("Search", "Open a library first.")
            return None
        self._search_generation += 1
        generation = self._search_generation
        if self.search_worker is not None and self.search_worker.running:
            self.search_worker.cancel()
        fn = partial(
            run_search, self.library, self.searcher(), query, self.search_panel.k_spin.value()
        )
        worker = Worker(fn, name="search", parent=self)
        worker.finished.connect(lambda out: self._on_search_done(out, generation))
        worker.failed.connect(lambda msg: self._on_search_failed(msg, generation))
        self.search_worker = worker
        self.search_panel.set_busy(query.name)
        self.tabs.setCurrentWidget(self.search_panel)
        self.statusBar().showMessage(f"Searching for fabrics like {query.name}…")
        worker.start()
        return worker

    def _on_k_changed(self, _k: int) -> None:
        if self.query is not None and self.library is not None:
            self.search(self.query)  # the list shown is always the top N asked for

    def _on_search_done(self, outcome: SearchOutcome, generation: int) -> None:
        if generation != self._search_generation:
            return  # a newer query replaced this one
        self.query = outcome.query
        result = outcome.result
        self.search_panel.set_result(result, outcome.records, outcome.query.name)
        if outcome.preview is not None:
            from PySide6.QtGui import QPixmap

            self.search_panel.set_query_pixmap(QPixmap.fromImage(outcome.preview))
        q = outcome.query
        self.detail.set_query(
            outcome.preview, result.palette, q.name, q.coarse, q.fine, q.tightness
        )
        self.tabs.setCurrentWidget(self.search_panel)
        self._on_selection(self.search_panel.grid.selected_ids(), from_results=True)
        self._update_state()  # the File menu's exports follow the results
        self.statusBar().showMessage(f"{len(result.hits)} results", 5000)
        self.searchFinished.emit(outcome)

    def _clear_search(self, message: str | None = None) -> None:
        """Forget the query and its results (and ignore a search still running): nothing of
        another library or an earlier query stays on screen or goes into an export."""
        self._search_generation += 1
        self.query = None
        if message is None:
            self.search_panel.clear()
        else:
            self.search_panel.clear(message)
        self.detail.clear_query()
        if self.tabs.currentIndex() == 1:
            self.detail.show_record(None)
            self.label_panel.set_selection([])
        self._update_state()

    def _on_search_failed(self, message: str, generation: int) -> None:
        if generation != self._search_generation:
            return
        self._clear_search(f"Search failed: {message}")
        self.statusBar().showMessage(f"Search failed: {message}", 8000)
        self.searchFailed.emit(message)

    # drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if can_accept(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        event.acceptProposedAction()
        self.search_mime(event.mimeData())

    # --- export -------------------------------------------------------------------------
    def export_csv(self, path: str | Path | None = None) -> Path | None:
        from fabricsearch.gui.export import write_csv

        result = self.search_panel.result
        if result is None or not result.hits or self.search_panel.model is None:
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export results as CSV", "results.csv", "CSV (*.csv)"
            )
            if not path:
                return None
        write_csv(Path(path), result.hits, self.search_panel.model.records())
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return Path(path)

    def export_sheet(self, path: str | Path | None = None) -> Path | None:
        from fabricsearch.gui.export import write_contact_sheet

        result = self.search_panel.result
        if (
            result is None
            or not result.hits
            or self.library is None
            or self.search_panel.model is None
        ):
            return None
        if path is None:
            path, _ = QFileDialog.getSaveFileName(
                self, "Export contact sheet", "results.pdf", "PDF (*.pdf);;PNG image (*.png)"
            )
            if not path:
                return None
        lib = self.library

        def load(rec: ImageRecord) -> QImage:
            try:
                return QImage(str(lib.thumbnail(rec, 256)))
            except Exception:  # noqa: BLE001 - a missing original leaves a blank cell
                return QImage()

        name = self.query.name if self.query else "query"
        write_contact_sheet(
            Path(path),
            result.hits,
            self.search_panel.model.records(),
            load,
            title=f"Fabrics like {name}",
            query=self.detail.query.image._image,
        )
        self.statusBar().showMessage(f"Saved {path}", 5000)
        return Path(path)

    # --- selection, detail, labelling ---------------------------------------------------
    def active_grid(self) -> Any:
        return self.search_panel.grid if self.tabs.currentIndex() == 1 else self.browser.grid

    def selected_records(self) -> list[ImageRecord]:
        if self.library is None:
            return []
        grid = self.active_grid()
        model = grid.model()
        if model is None:
            return []
        out = []
        for image_id in grid.selected_ids():
            row = model.row_of(image_id)
            if row is not None:
                out.append(model.record(row))
        return out

    def _on_selection(self, ids: list[int], from_results: bool) -> None:
        if (self.tabs.currentIndex() == 1) != from_results:
            return
        records = self.selected_records()
        self.label_panel.set_selection(records)
        if not records:
            self.detail.show_record(None)
            return
        rec = records[0]
        hit = None
        if from_results and self.search_panel.model is not None:
            row = self.search_panel.model.row_of(rec.id)
            hit = self.search_panel.model.hit(row) if row is not None else None
        image = self.cache.image(rec.id) if self.cache is not None else None
        if image is None and self.cache is not None:
            self.cache.pixmap(rec)  # queue the load; _on_thumbnail_ready fills it in
        self.detail.show_record(rec, image, hit)

    def _on_thumbnail_ready(self, image_id: int) -> None:
        if self.cache is None:
            return
        image = self.cache.image(image_id)
        if image is not None:
            self.detail.update_image(image_id, image)

    def label_selection(self, changes: dict[str, Any]) -> bool:
        """Apply a label change to the selection as one undoable command."""
        if self.library is None:
            return False
        ids = [r.id for r in self.selected_records()]
        if not ids:
            self.statusBar().showMessage("Select images to label first.", 4000)
            return False
        try:
            command = apply_labels(self.library, ids, changes, self._labels_changed)
        except Exception as exc:  # noqa: BLE001 - refused label: say why
            self.show_message("Labels", f"Cannot set these labels: {exc}", warning=True)
            return False
        self.undo_stack.push(command)
        self.statusBar().showMessage(command.text(), 4000)
        return True

    def step_tightness(self, delta: int) -> bool:
        """Move each selected image's tightness by `delta` % from its own value (one undo)."""
        if self.library is None:
            return False
        ids = [r.id for r in self.selected_records()]
        if not ids:
            self.statusBar().showMessage("Select images to label first.", 4000)
            return False
        try:
            command = apply_tightness_step(self.library, ids, delta, self._labels_changed)
        except Exception as exc:  # noqa: BLE001 - refused label: say why
            self.show_message("Labels", f"Cannot set these labels: {exc}", warning=True)
            return False
        self.undo_stack.push(command)
        self.statusBar().showMessage(command.text(), 4000)
        return True

    def _labels_changed(self, ids: list[int]) -> None:
        if self.library is None:
            return
        if self._searcher is not None:
            self._searcher.invalidate_labels()  # the re-ranking reads labels from memory
        records = self.library.images(ids)
        self.browser.update_records(records)
        if self.search_panel.model is not None:
            self.search_panel.model.update_records(records)
        self._on_selection(
            self.active_grid().selected_ids(), from_results=self.tabs.currentIndex() == 1
        )
        self._update_state()
        self.labelsChanged.emit(ids)

    def next_unlabelled(self) -> int | None:
        """Select the next unlabelled image in the library grid (after the current one)."""
        if self.library is None or self.browser.model is None:
            return None
        if self.tabs.currentIndex() != 0:
            self.tabs.setCurrentIndex(0)
        records = self.browser.visible_records()
        current = self.browser.grid.currentIndex()
        start = current.row() + 1 if current.isValid() else 0
        n = len(records)
        for i in range(n):
            rec = records[(start + i) % n]
            if not rec.labelled:
                self.browser.grid.select_ids([rec.id])
                self.browser.grid.setFocus()
                return rec.id
        self.statusBar().showMessage("Every image shown is labelled.", 4000)
        return None

    def _select_all(self) -> None:
        self.active_grid().selectAll()

    def open_image(self, image_id: int) -> None:
        if self.library is not None:
            desktop.open_file(self.library.get(image_id).path)

    def reveal_image(self, image_id: int) -> None:
        if self.library is not None:
            desktop.reveal_in_folder(self.library.get(image_id).path)

    # --- models -------------------------------------------------------------------------
    def base_train_config(self) -> Any:
        from fabricsearch.config import TrainConfig

        return dataclasses.replace(TrainConfig(), **self.train_config_overrides)

    def retrain_dialog(self) -> None:
        from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

        if self.library is None:
            return
        dialog = TrainOptionsDialog(
            self.browser.all_records(), self.library.active_model(), self.base_train_config(), self
        )
        self.last_dialog = dialog
        dialog.accepted.connect(lambda: self.start_training(dialog.config()))
        dialog.open()

    def start_training(self, config: Any) -> Worker | None:
        """Train in a worker with the live progress window; the new model becomes active."""
        from fabricsearch.gui.dialogs.train_dialog import TrainingProgressDialog
        from fabricsearch.hashing.train import train_library

        if self.library is None:
            return None
        if self.train_worker is not None and self.train_worker.running:
            self.show_message("Training", "A training is already running.")
            return None
        worker = Worker(partial(train_library, self.library, config), name="train", parent=self)
        dialog = TrainingProgressDialog(worker, config, self)
        self.train_dialog = dialog
        self.last_dialog = dialog
        worker.finished.connect(lambda _info: self._on_training_ended("finished"))
        worker.failed.connect(lambda _m: self._on_training_ended("failed"))
        worker.cancelled.connect(lambda: self._on_training_ended("cancelled"))
        self.train_worker = worker
        worker.progress.connect(self._show_training_progress)
        self.training_button.setText("Training…")
        self.training_button.setVisible(True)
        self.training_action.setEnabled(True)
        worker.start()
        dialog.show()
        return worker

    def training_running(self) -> bool:
        return self.train_worker is not None and self.train_worker.running

    def show_training(self) -> None:
        """Bring back the latest training's progress window (also after Run in background)."""
        if self.train_dialog is not None:
            self.train_dialog.show()
            self.train_dialog.raise_()
            self.train_dialog.activateWindow()

    def _show_training_progress(self, p: Any) -> None:
        info = p.info or {}
        if "epoch" in info and info.get("epochs"):
            text = f"Training: epoch {info['epoch']} of {info['epochs']}"
        elif p.total:
            text = f"Training: {p.stage} {100 * p.done // max(1, p.total)} %"
        else:
            text = f"Training: {p.stage}"
        self.training_button.setText(text)

    def adapt_dialog(self) -> None:
        if self.library is None:
            return
        answer = QMessageBox.question(
            self,
            "Adapt to this library",
            "Tune the search model to this library's own photos, without labels "
            "(self-supervised). This takes a few minutes on a laptop CPU; the current model "
            "stays available under Model ▸ Versions.",
        )
        if answer == QMessageBox.StandardButton.Yes:
            self.start_adapt()

    def start_adapt(self, config: Any = None) -> Worker | None:
        """Self-supervised adaptation in a worker; the adapted model becomes active."""
        from fabricsearch.adapt import AdaptConfig, adapt_library
        from fabricsearch.gui.dialogs.progress_dialog import JobProgressDialog

        if self.library is None:
            return None
        if self.train_worker is not None and self.train_worker.running:
            self.show_message("Adapt", "A training is already running.")
            return None
        fn = partial(adapt_library, self.library, config or AdaptConfig())
        worker = Worker(fn, name="adapt", parent=self)
        dialog = JobProgressDialog(worker, "Adapting the model to this library", self)
        self.last_dialog = dialog
        worker.finished.connect(
            lambda info: (self._report_adapted(info), self._on_training_ended("finished"))
        )
        worker.failed.connect(
            lambda m: (
                self.show_message("Adapt", f"Adaptation failed: {m}", warning=True),
                self._on_training_ended("failed"),
            )
        )
        worker.cancelled.connect(lambda: self._on_training_ended("cancelled"))
        self.train_worker = worker
        worker.start()
        dialog.open()
        return worker

    def _report_adapted(self, info: Any) -> None:
        from fabricsearch.hashing.activation import read_decision

        decision = read_decision(info)
        if decision is not None and not decision.activate:
            self.show_message(
                "Adapt",
                f"The adapted model {info.version} was saved but not activated: "
                f"{decision.reason}. The previous model stays active; Model ▸ Versions can "
                "switch to it.",
            )

    def _on_training_ended(self, outcome: str) -> None:
        self.training_button.setVisible(False)
        if (
            self.train_dialog is not None
            and not self.train_dialog.isVisible()
            and getattr(self.train_dialog, "worker", None) is self.train_worker
        ):
            self.show_training()  # it ran in the background: show how it ended
        if outcome == "finished":
            self._searcher = None  # the searcher also notices; start clean anyway
            self.modelChanged.emit()
        self._update_state()
        self.trainingEnded.emit(outcome)

    def show_versions(self) -> None:
        from fabricsearch.gui.dialogs.versions_dialog import VersionsDialog

        if self.library is None:
            return
        dialog = VersionsDialog(self.library, self)
        dialog.activeChanged.connect(lambda _v: (self._update_state(), self.modelChanged.emit()))
        self.last_dialog = dialog
        dialog.open()

    def evaluate(self) -> Worker | None:
        from fabricsearch.gui.dialogs.evaluate_dialog import EvaluateDialog, evaluate_active_model

        if self.library is None:
            return None
        active = self.library.active_model()
        if active is None:
            self.show_message("Evaluate", "There is no model yet: train one with Model ▸ Retrain.")
            return None
        worker = Worker(partial(evaluate_active_model, self.library), name="evaluate", parent=self)
        dialog = EvaluateDialog(worker, active.version, self)
        self.last_dialog = dialog
        worker.start()
        dialog.open()
        return worker

    # --- misc ---------------------------------------------------------------------------
    def set_thumb_size(self, px: int, save: bool = True) -> None:
        self.browser.grid.set_thumb_size(px)
        self.search_panel.set_thumb_size(px)
        if px in self.size_actions:
            self.size_actions[px].setChecked(True)
        if save:
            self.settings.thumb_size = px

    def show_shortcuts(self) -> None:
        self.show_message("Labelling shortcuts", self.label_panel.shortcut_help())

    def show_about(self) -> None:
        from fabricsearch.gui.dialogs.about_dialog import AboutDialog
        from fabricsearch.logging_setup import current_log_file

        dialog = AboutDialog(
            self.library.folder if self.library else None, current_log_file(), self
        )
        self.last_dialog = dialog
        dialog.open()

    def show_message(self, title: str, text: str, warning: bool = False) -> None:
        self.messages.append(text)
        log.log(logging.WARNING if warning else logging.INFO, "%s: %s", title, text)
        if not self.interactive:
            self.statusBar().showMessage(text, 8000)
            return
        box = QMessageBox(
            QMessageBox.Icon.Warning if warning else QMessageBox.Icon.Information,
            title,
            text,
            QMessageBox.StandardButton.Ok,
            self,
        )
        box.open()

    def _update_state(self) -> None:
        lib = self.library
        for action in self.menus_needing_library:
            action.setEnabled(lib is not None)
        has_results = self.search_panel.result is not None and bool(self.search_panel.result.hits)
        self.export_csv_action.setEnabled(has_results)
        self.export_sheet_action.setEnabled(has_results)
        if lib is None:
            self.count_label.setText("No library")
            self.model_label.setText("")
            self.advice_label.setText("")
            return
        records = self.browser.all_records()
        labelled = sum(1 for r in records if r.labelled)
        self.count_label.setText(f"{len(records):,} images · {labelled:,} labelled")
        active = lib.active_model()
        self.model_label.setText(
            f"Model: {active.version} ({active.method}, {active.bits} bits)"
            if active
            else "Model: none (train one)"
        )
        # An empty library needs photos first; advice about (re)training would mislead.
        advice = (
            model_advice(lib)
            if records
            else "No photos yet: Library ▸ Import folder… (Ctrl+I) adds a folder."
        )
        self.model_label.setToolTip(advice)
        self.advice_label.setText(advice)
        self.evaluate_action.setEnabled(active is not None)

    def confirm(self, title: str, text: str) -> bool:
        """Ask a yes/no question (scripted runs and tests: yes)."""
        if not self.interactive:
            return True
        answer = QMessageBox.question(
            self,
            title,
            text,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.training_running() and not self.confirm(
            "Quit",
            "A training is running. Quit and cancel it? The current model stays active.",
        ):
            event.ignore()
            return
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.settings.save_splitter_state("main", self.splitter.saveState())
        self.settings.save_splitter_state("right", self.right.saveState())
        self.settings.sync()
        stop_all_workers()
        self.close_library()
        super().closeEvent(event)


def demo_available() -> bool:
    try:
        from fabricsearch import demo  # noqa: F401
    except ImportError:
        return False
    return hasattr(demo, "ensure_demo_library")


def ensure_demo_library() -> Path | None:
    """The lead's demo library, if `fabricsearch.demo` exists."""
    try:
        from fabricsearch.demo import ensure_demo_library as ensure
    except ImportError:
        return None
    return Path(ensure())


def process_events_until(predicate: Callable[[], bool], timeout_ms: int = 30_000) -> bool:
    """Spin the event loop until `predicate()` (used by --screenshot and --self-test)."""
    from PySide6.QtCore import QDeadlineTimer, QEventLoop

    deadline = QDeadlineTimer(timeout_ms)
    app = QApplication.instance()
    while not predicate():
        if deadline.hasExpired():
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        from PySide6.QtCore import QThread

        QThread.msleep(5)
    return True
