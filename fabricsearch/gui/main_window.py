"""The main window: a thin shell that builds the panels and menus and wires them to the
controllers (`controllers/`), which hold what the window does. Long jobs run through one
`JobRunner`; messages to the user go to an injected `MessageSink`."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

from PySide6.QtCore import QMimeData, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QActionGroup,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QImage,
    QImageReader,
    QImageWriter,
    QKeySequence,
    QUndoStack,
)
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QStyle,
    QTabWidget,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui import desktop
from fabricsearch.gui.controllers.demo import DemoController
from fabricsearch.gui.controllers.labelling import LabellingController
from fabricsearch.gui.controllers.library import LibraryController
from fabricsearch.gui.controllers.opening import OpenController
from fabricsearch.gui.controllers.preview import PreviewController
from fabricsearch.gui.controllers.records import RecordsController
from fabricsearch.gui.controllers.removal import RemovalController
from fabricsearch.gui.controllers.saved_searches import SavedSearchController
from fabricsearch.gui.controllers.search import SearchController
from fabricsearch.gui.controllers.suggestions import SuggestionController
from fabricsearch.gui.controllers.taxonomy import TaxonomyController
from fabricsearch.gui.controllers.training import TrainingController
from fabricsearch.gui.controllers.watching import WatchController
from fabricsearch.gui.dropping import can_accept
from fabricsearch.gui.jobs import JobRunner
from fabricsearch.gui.messages import DialogSink, MessageSink, plural
from fabricsearch.gui.models import ImageIdRole
from fabricsearch.gui.session import LibrarySession
from fabricsearch.gui.settings import THUMB_SIZES, Settings
from fabricsearch.gui.widgets.detail_panel import DetailPanel
from fabricsearch.gui.widgets.flow import ElidedLabel
from fabricsearch.gui.widgets.label_panel import LabelPanel
from fabricsearch.gui.widgets.library_browser import LibraryBrowser
from fabricsearch.gui.widgets.metadata_panel import MetadataPanel
from fabricsearch.gui.widgets.search_panel import SearchPanel
from fabricsearch.gui.widgets.welcome import WelcomePage
from fabricsearch.gui.widgets.zoom import ZoomSlider, step_size
from fabricsearch.gui.workers import stop_all_workers
from fabricsearch.services.imports import model_advice

log = logging.getLogger(__name__)

#: Room kept for the window frame (borders, title bar) before it is known: pixels (w, h).
FRAME_ALLOWANCE = (16, 40)


class MainWindow(QMainWindow):
    libraryOpened = Signal(str)  # after the library's records are shown
    searchFinished = Signal(object)  # controllers.search.SearchOutcome
    searchFailed = Signal(str)
    labelsChanged = Signal(list)
    labelsImported = Signal(object)  # catalogue.labels_csv.LabelsReport
    importEnded = Signal(object)  # ImportReport or None
    trainingEnded = Signal(str)  # finished | failed | cancelled
    modelChanged = Signal()

    def __init__(
        self,
        settings: Settings | None = None,
        sink: MessageSink | None = None,
        train_config: Any = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        # Image format plugins are created here, on the GUI thread, once per process. Created
        # first in a worker (the contact sheet's PDF engine asks QImageWriter for them), Qt
        # moves each to the GUI thread under a lock the GUI thread may hold while it waits for
        # Python's interpreter lock, which that worker holds: both waited for ever (seen in the
        # suite). Created here, a worker finds them made and takes no lock.
        QImageReader.supportedImageFormats()
        QImageWriter.supportedImageFormats()
        self.settings = settings or Settings()
        self.sink: MessageSink = sink if sink is not None else DialogSink(self)
        self.runner = JobRunner(self)
        self.undo_stack = QUndoStack(self)
        # The open library's state; controllers and panels listen to it (issue 21 item 5).
        self.session = LibrarySession(self)
        self.labelling = LabellingController(self.session, self)
        self.records = RecordsController(self.session, self)
        self.opening = OpenController(self.session, self)  # the desktop's viewer, or Open with…
        self.loupe: Any = None

        self.setWindowTitle("fabricsearch")
        self.setAcceptDrops(True)
        self.resize(1360, 860)
        self._build_widgets()
        self._build_controllers(train_config)
        self._build_menus()
        self._shortcut_actions = list(self.label_panel.shortcut_actions)
        self.addActions(self._shortcut_actions)
        self._connect()
        self._restore_settings()
        self.update_state()

    # --- what tests, scripts and dialogs reach for -----------------------------------------
    @property
    def library(self) -> Any:
        return self.session.library

    @property
    def cache(self) -> Any:
        return self.libraries.cache

    @property
    def query(self) -> Any:
        return self.session.query

    @property
    def last_dialog(self) -> Any:
        return self.runner.last_dialog

    @property
    def train_dialog(self) -> Any:
        return self.training.dialog

    @property
    def search_worker(self) -> Any:
        return self.runner.worker("search")

    def open_library(self, path: Any, create: bool = False) -> bool:
        return self.libraries.open_library(path, create)

    def close_library(self) -> None:
        self.libraries.close_library()

    def search(self, query: Any, crop: Any = None) -> Any:
        return self.searching.search(query, crop)

    # --- what controllers ask of the window (`shell.Shell`) --------------------------------
    def status(self, text: str, ms: int = 0) -> None:
        self.statusBar().showMessage(text, ms)

    def clear_status(self) -> None:
        self.statusBar().clearMessage()

    def dialog_parent(self) -> QWidget:
        return self

    def reselect(self, ids: list[int]) -> None:
        self.active_grid().select_ids(ids)

    def add_status_widget(self, widget: QWidget) -> None:
        self.statusBar().insertPermanentWidget(0, widget)

    # --- construction -------------------------------------------------------------------
    def _build_widgets(self) -> None:
        sp = QStyle.StandardPixmap
        self.browser = LibraryBrowser()
        self.search_panel = SearchPanel()
        self.detail = DetailPanel()
        self.label_panel = LabelPanel()
        self.metadata_panel = MetadataPanel()
        self.edit_tabs = QTabWidget()
        self.edit_tabs.addTab(self.label_panel, "Labels")
        self.edit_tabs.addTab(self.metadata_panel, "Fabric record")
        self.tabs = QTabWidget()
        self.tabs.addTab(self.browser, self.style().standardIcon(sp.SP_DirIcon), "Library")
        self.tabs.addTab(
            self.search_panel,
            self.style().standardIcon(sp.SP_FileDialogContentsView),
            "Search results",
        )
        self.right = QSplitter(Qt.Orientation.Vertical)
        self.right.addWidget(self.detail)
        self.right.addWidget(self.edit_tabs)
        self.right.setStretchFactor(0, 3)
        self.right.setStretchFactor(1, 1)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.addWidget(self.tabs)
        self.splitter.addWidget(self.right)
        self.splitter.setStretchFactor(0, 3)
        self.splitter.setStretchFactor(1, 2)
        # The grid gets four columns of medium thumbnails at 1280 px (issue 24 screenshots).
        self.splitter.setSizes([880, 480])
        self.right.setSizes([600, 260])
        self.welcome = WelcomePage()
        self.stack = QStackedWidget()
        self.stack.addWidget(self.welcome)
        self.stack.addWidget(self.splitter)
        self.setCentralWidget(self.stack)

        # The status bar's longer lines are elided (whole in their tooltips): they never
        # widen the window beyond a small screen (issue 24).
        self.count_label = QLabel()
        self.model_label = ElidedLabel()
        self.advice_label = ElidedLabel()
        self.watch_label = ElidedLabel()
        self.statusBar().addPermanentWidget(self.watch_label)
        self.statusBar().addPermanentWidget(self.advice_label)
        self.statusBar().addPermanentWidget(self.count_label)
        self.statusBar().addPermanentWidget(self.model_label)
        self.zoom_slider = ZoomSlider(THUMB_SIZES)
        self.zoom_slider.sizeChanged.connect(self.set_thumb_size)
        self.statusBar().addPermanentWidget(self.zoom_slider)
        # While a training runs (its window may be hidden): what it is doing; a click shows it.
        self.training_button = QPushButton()
        self.training_button.setFlat(True)
        self.training_button.setToolTip("Show the training's progress window")
        self.training_button.setVisible(False)
        self.statusBar().addPermanentWidget(self.training_button)

    def _build_controllers(self, train_config: Any) -> None:
        """The controllers that take the session and this window as their shell (`Shell`),
        with the panels they read (never write: the panels follow the session)."""
        session, browser = self.session, self.browser
        self.libraries = LibraryController(session, self, browser)
        self.searching = SearchController(session, self, self.search_panel)
        self.suggesting = SuggestionController(session, self, browser)
        self.watching = WatchController(session, self, self.libraries)
        self.categories = TaxonomyController(session, self, self.libraries, browser)
        self.training = TrainingController(session, self, browser, train_config)
        self.demo = DemoController(session, self, self.libraries)
        self.removal = RemovalController(session, self, self.libraries)  # undoably
        self.previewing = PreviewController(session, self, self.libraries)  # full screen
        # Library ▸ Saved searches
        self.saved_searches = SavedSearchController(session, self, self.libraries, browser)
        # Made after them (they use it), told of them: new categories, watched folders' writes.
        self.libraries.categories = self.categories
        self.libraries.watching = self.watching
        # "Removed 2 images · Undo": the status bar's first permanent widget.
        self.add_status_widget(self.removal.notice)

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
        s, lib, tr = self.searching, self.libraries, self.training
        file_menu = bar.addMenu("&File")
        # Ctrl+F is the text search, as everywhere else; a photo is Ctrl+Shift+F (issue 24).
        self.search_action = self._action(
            file_menu,
            "Search by photo…",
            s.choose_query,
            "Ctrl+Shift+F",
            sp.SP_FileDialogContentsView,
        )
        self.paste_action = self._action(
            file_menu, "Search by pasted image", s.paste_query, QKeySequence.StandardKey.Paste
        )
        self.similar_action = self._action(
            file_menu, "Find similar to selected image", s.find_similar, "Ctrl+Alt+F"
        )
        self.open_with_action = self._action(
            file_menu, "Open with…", lambda: self.opening.open_with()
        )
        self.back_action = self._action(file_menu, "Previous search", s.back, "Alt+Left")
        self.forward_action = self._action(file_menu, "Next search", s.forward, "Alt+Right")
        self.recent_searches_menu = file_menu.addMenu("Recent searches")
        file_menu.addSeparator()
        self.export_csv_action = self._action(file_menu, "Export results as CSV…", s.export_csv)
        self.export_sheet_action = self._action(file_menu, "Export contact sheet…", s.export_sheet)
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
        self.copy_image_action = self._action(
            edit, "Copy image", self.copy_image, QKeySequence.StandardKey.Copy
        )
        self.copy_path_action = self._action(edit, "Copy path", self.copy_paths, "Ctrl+Shift+C")
        edit.addSeparator()
        self.next_action = self._action(edit, "Next unlabelled", self.next_unlabelled)
        self.next_action.setShortcut(QKeySequence("N"))  # also in the label panel's help
        sug = self.suggesting
        self.next_unsure_action = self._action(
            edit, "Next unlabelled, least confident first", self.next_least_confident, "Shift+N"
        )
        # Enter on a grid: accept the ghost labels (or open the image when there are none).
        self.accept_action = self._action(edit, "Accept suggestion", sug.accept_or_open)
        self.accept_action.setShortcuts([QKeySequence("Return"), QKeySequence("Enter")])
        self.accept_all_action = self._action(
            edit,
            "Accept suggestions above the confidence",
            lambda: sug.accept(self.label_panel.min_confidence.value() / 100.0),
            "Shift+Return",
        )
        for action in (self.accept_action, self.accept_all_action):
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._action(edit, "Select all", self._select_all, QKeySequence.StandardKey.SelectAll)
        edit.addSeparator()
        self.find_text_action = self._action(
            edit, "Find by text (records, names, labels)", self.focus_text_search, "Ctrl+F"
        )

        lib_menu = bar.addMenu("&Library")
        self._action(
            lib_menu,
            "New library…",
            lib.new_library_dialog,
            QKeySequence.StandardKey.New,
            sp.SP_FileDialogNewFolder,
        )
        self._action(
            lib_menu,
            "Open library…",
            lib.open_library_dialog,
            QKeySequence.StandardKey.Open,
            sp.SP_DirOpenIcon,
        )
        self.connect_team_action = self._action(
            lib_menu, "Connect to team library…", lib.connect_team_library_dialog
        )
        self.recent_menu = lib_menu.addMenu("Open recent")
        # Filled as it opens: searches a teammate saved in the library appear.
        self.saved_menu = lib_menu.addMenu("Saved searches")
        self.saved_menu.aboutToShow.connect(lambda: self.saved_searches.fill_menu(self.saved_menu))
        lib_menu.addSeparator()
        self.import_action = self._action(
            lib_menu, "Import folder…", lib.import_folder_dialog, "Ctrl+I", sp.SP_DialogOpenButton
        )
        self.remove_action = self._action(
            lib_menu,
            "Remove from library…",
            self.removal.remove_selected,
            QKeySequence.StandardKey.Delete,
        )
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self.removed_action = self._action(
            lib_menu, "Recently removed…", lambda: self.removal.dialog()
        )
        self.relocate_action = self._action(lib_menu, "Relocate moved folder…", lib.relocate_dialog)
        self.watch_action = self._action(
            lib_menu, "Watched folders…", lambda: self.watching.dialog()
        )
        self.taxonomy_action = self._action(
            lib_menu, "Categories…", lambda: self.categories.dialog()
        )
        self.import_labels_action = self._action(
            lib_menu, "Import labels CSV…", lib.import_labels_dialog
        )
        self.export_labels_action = self._action(
            lib_menu, "Export labels CSV…", lib.export_labels_dialog
        )

        model_menu = bar.addMenu("&Model")
        self.train_action = self._action(
            model_menu, "Retrain on new samples…", tr.retrain_dialog, None, sp.SP_BrowserReload
        )
        self.training_action = self._action(model_menu, "Training progress…", tr.show_training)
        self.training_action.setEnabled(False)
        self.evaluate_action = self._action(model_menu, "Evaluate…", tr.evaluate)
        self.versions_action = self._action(model_menu, "Versions…", tr.show_versions)
        self.adapt_action = self._action(
            model_menu, "Adapt to this library…", tr.adapt_dialog, None, sp.SP_BrowserReload
        )

        view = bar.addMenu("&View")
        self.loupe_action = self._action(
            view, "Loupe: query and selected at 100 %", self.show_loupe, "Ctrl+L"
        )
        size_menu = view.addMenu("Thumbnail size")
        group = QActionGroup(self)
        self.size_actions: dict[int, QAction] = {}
        for px, name in zip(THUMB_SIZES, ("Small", "Medium", "Large", "Extra large"), strict=True):
            action = QAction(f"{name} ({px} px)", self, checkable=True)
            action.triggered.connect(lambda _c=False, p=px: self.set_thumb_size(p))
            group.addAction(action)
            size_menu.addAction(action)
            self.size_actions[px] = action
        size_menu.addSeparator()
        self.zoom_in_action = self._action(size_menu, "Larger", lambda: self.zoom_thumbs(1))
        self.zoom_in_action.setShortcuts([QKeySequence("Ctrl+="), QKeySequence("Ctrl++")])
        self.zoom_out_action = self._action(
            size_menu, "Smaller", lambda: self.zoom_thumbs(-1), "Ctrl+-"
        )
        # Space on a grid (not in a text field, where it types a space).
        self.preview_action = self._action(view, "Full-screen preview", self.show_preview, "Space")
        self.preview_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "Labelling shortcuts", self.show_shortcuts)
        self._action(help_menu, "About fabricsearch", self.show_about)
        self.menus_needing_library = [
            self.search_action,
            self.find_text_action,
            self.paste_action,
            self.similar_action,
            self.import_action,
            self.watch_action,
            self.taxonomy_action,
            self.remove_action,
            self.removed_action,
            self.open_with_action,
            self.relocate_action,
            self.import_labels_action,
            self.export_labels_action,
            self.train_action,
            self.evaluate_action,
            self.versions_action,
        ]

    def _connect(self) -> None:
        s, lab, session = self.searching, self.labelling, self.session
        # The panels follow the session themselves (categories, changed labels); then the
        # window: the selection shown again, the status bar, and its own signals.
        for panel in (self.browser, self.search_panel, self.detail, self.label_panel):
            panel.listen(session)
        session.opened.connect(self._library_opened)
        for loaded in (session.firstScreen, session.loadingChanged, session.columnsLoaded):
            loaded.connect(lambda *_a: self.update_state())  # the count in the status bar
        session.closed.connect(self.library_closed_widgets)
        session.taxonomyChanged.connect(self._taxonomy_shown)
        session.selectionChanged.connect(self.on_selection)
        session.labelsChanged.connect(lambda _ids: self.refresh_selection())
        session.labelsChanged.connect(lambda _ids: self.update_state())
        session.labelsChanged.connect(self.labelsChanged)
        self.browser.selectionChangedIds.connect(lambda ids: self._grid_selected(ids, False))
        self.search_panel.selectionChangedIds.connect(lambda ids: self._grid_selected(ids, True))
        self.browser.activatedId.connect(self.open_image)
        for grid in (self.browser.grid, self.search_panel.grid):
            grid.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
            for action in (
                self.preview_action,
                self.open_with_action,
                self.similar_action,
                self.copy_image_action,
                self.copy_path_action,
                self.accept_action,
                self.accept_all_action,
                self.remove_action,
            ):
                grid.addAction(action)
        self.search_panel.activatedId.connect(self.open_image)
        self.search_panel.exportCsvRequested.connect(s.export_csv)
        self.search_panel.exportSheetRequested.connect(s.export_sheet)
        self.search_panel.kChanged.connect(lambda _k: s.rerun())
        self.search_panel.balanceChanged.connect(lambda _b: s.rerun())
        self.search_panel.backRequested.connect(s.back)
        self.search_panel.forwardRequested.connect(s.forward)
        self.search_panel.historyRequested.connect(s.go_to)
        session.historyChanged.connect(self._fill_history)
        session.searchStarted.connect(self._search_started)
        session.resultsChanged.connect(self._results_shown)
        session.textFilterChecked.connect(self._text_checked)
        session.searchFailed.connect(self.searchFailed)
        session.activeModelChanged.connect(lambda _info: self.update_state())
        session.activeModelChanged.connect(lambda _info: self.modelChanged.emit())
        self.tabs.currentChanged.connect(lambda _i: self.refresh_selection())
        self.detail.openRequested.connect(self.open_image)
        self.detail.revealRequested.connect(self.reveal_image)
        self.detail.regionSelected.connect(s.search_region)
        self.detail.loupeRequested.connect(self.show_loupe)
        self.label_panel.labelRequested.connect(lab.label_selection)
        self.label_panel.tightnessStepRequested.connect(lab.step_tightness)
        self.label_panel.nextUnlabelledRequested.connect(self.next_unlabelled)
        self.label_panel.acceptRequested.connect(lambda: self.suggesting.accept())
        self.label_panel.acceptAllRequested.connect(self.suggesting.accept)
        lib = self.libraries
        lib.recordsLoaded.connect(self.suggesting.refresh)
        lib.libraryOpened.connect(self.libraryOpened)
        lib.importEnded.connect(self.importEnded)
        lib.labelsImported.connect(self.labelsImported)
        lib.openProblem.connect(self._show_open_problem)
        lib.categoriesRefreshed.connect(self.categories.refresh_dialog)
        self.libraryOpened.connect(lambda _p: self.watching.library_opened())
        self.watching.shownChanged.connect(self._show_watching)
        self.metadata_panel.metadataRequested.connect(self.records.set_metadata)
        self.records.selectionShown.connect(self.metadata_panel.set_selection)
        self.records.problemFound.connect(self.metadata_panel.show_problem)
        self.browser.set_text_search(self.records.text_ids)
        self.search_panel.textChanged.connect(lambda _t: s.rerun())
        self.modelChanged.connect(self.suggesting.refresh)
        self.labelsChanged.connect(self.suggesting.labels_changed)
        self.suggesting.changed.connect(self._show_suggestions)
        self.suggesting.selectionSuggestion.connect(self.label_panel.set_suggestion)
        self.training_button.clicked.connect(self.training.show_training)
        self.training.progressShown.connect(self.training_button.setText)
        self.training.runningChanged.connect(self._training_running)
        self.training.ended.connect(lambda _o: self.update_state())
        self.training.ended.connect(self.trainingEnded)
        self.demo.preparing.connect(lambda text: self.welcome.show_preparing(text or None))
        self.demo.problemFound.connect(self._show_open_problem)
        self.saved_searches.applied.connect(self._show_saved_search)
        self.previewing.stepRequested.connect(self.step_selection)
        self.welcome.new_button.clicked.connect(self.libraries.new_library_dialog)
        self.welcome.open_button.clicked.connect(self.libraries.open_library_dialog)
        # Built in the background on first use (`controllers.demo`); opened when ready.
        self.welcome.demo_button.clicked.connect(lambda: self.demo.prepare())
        from fabricsearch.gui.scripted import demo_available

        self.welcome.demo_button.setVisible(demo_available())

    def _restore_settings(self) -> None:
        geometry = self.settings.geometry()
        if geometry is not None:
            self.restoreGeometry(geometry)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)
        for name, splitter in (("main", self.splitter), ("right", self.right)):
            st = self.settings.splitter_state(name)
            if st is not None:
                splitter.restoreState(st)
        self.set_thumb_size(self.settings.thumb_size, save=False)
        self._fill_recent()
        self.fit_to_screen()

    def fit_to_screen(self) -> None:
        """Open no larger than the screen's free area, and on it: a 1280×800 laptop (or
        2560×1600 at 200 %) shows the whole window, also when the saved geometry came from a
        larger monitor (issue 24)."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        if screen is None:
            return
        free = screen.availableGeometry()
        # The title bar and borders lie outside resize(); before the first show they are
        # unknown, so leave room for a usual frame.
        frame = self.frameGeometry().size() - self.geometry().size()
        fw = frame.width() if self.isVisible() else FRAME_ALLOWANCE[0]
        fh = frame.height() if self.isVisible() else FRAME_ALLOWANCE[1]
        width = max(1, min(self.width(), free.width() - fw))
        height = max(1, min(self.height(), free.height() - fh))
        if (width, height) != (self.width(), self.height()):
            self.resize(width, height)
        x = min(max(self.x(), free.left()), max(free.left(), free.right() + 1 - width - fw))
        y = min(max(self.y(), free.top()), max(free.top(), free.bottom() + 1 - height - fh))
        if (x, y) != (self.x(), self.y()):
            self.move(x, y)

    # --- the library's widgets ------------------------------------------------------------
    def _library_opened(self, lib: Any) -> None:
        self.cache.ready.connect(self.on_thumbnail_ready)
        self.library_opened_widgets(lib, self.cache)
        if lib.team is not None:
            self.setWindowTitle(f"{lib.location} — fabricsearch")
        self.browser.set_library(lib)

    def _show_saved_search(self, text: str, filters: dict[str, Any]) -> None:
        self.tabs.setCurrentIndex(0)
        self.browser.show_filters(text, filters)

    def _training_running(self, running: bool) -> None:
        self.training_button.setVisible(running)
        if running:
            self.training_action.setEnabled(True)

    def _show_open_problem(self, text: str) -> None:
        if text:
            self.welcome.problem.setText(text)
        self.welcome.problem.setVisible(bool(text))

    def library_opened_widgets(self, lib: Any, cache: Any) -> None:
        """Point every panel at a newly opened library (its records follow)."""
        self.browser.set_cache(cache)
        self.search_panel.set_cache(cache)
        self.set_thumb_size(self.settings.thumb_size, save=False)
        self.session.set_taxonomy(lib.taxonomy)
        self.browser.set_records([], loading=True)
        self._fill_recent()
        read_only = " (read-only)" if getattr(lib, "read_only", False) else ""
        self.setWindowTitle(f"{lib.folder.name}{read_only} — fabricsearch")
        self.stack.setCurrentWidget(self.splitter)
        self.tabs.setCurrentIndex(0)
        self.update_state()

    def set_taxonomy(self, tax: Any) -> None:
        """Category names and pickers everywhere: `LibrarySession.set_taxonomy`."""
        self.session.set_taxonomy(tax)

    def _taxonomy_shown(self, _tax: Any) -> None:
        # The label panel (listening before the window) has made its shortcut actions anew.
        for action in self._shortcut_actions:
            self.removeAction(action)
        self._shortcut_actions = list(self.label_panel.shortcut_actions)
        self.addActions(self._shortcut_actions)

    def library_closed_widgets(self) -> None:
        self.suggesting.clear()
        if self.loupe is not None:
            self.loupe.close()
        self.previewing.close()
        self.stack.setCurrentWidget(self.welcome)
        self.update_state()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_libraries():
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _c=False, p=path: self.open_library(p))
        self.recent_menu.setEnabled(bool(self.recent_menu.actions()))

    def _fill_history(self) -> None:
        # The results panel (listening before the window) has its history already.
        s, session = self.searching, self.session
        self.back_action.setEnabled(session.can_go_back())
        self.forward_action.setEnabled(session.can_go_forward())
        self.recent_searches_menu.clear()
        for i, action in reversed(list(enumerate(self.search_panel.history_actions(self)))):
            action.triggered.connect(lambda _c=False, i=i: s.go_to(i))
            self.recent_searches_menu.addAction(action)
        self.recent_searches_menu.setEnabled(bool(session.history))

    # --- the search shown (the panels follow the session themselves) ----------------------
    def _search_started(self, _name: str, _busy: bool) -> None:
        self.tabs.setCurrentWidget(self.search_panel)

    def _clear_results_selection(self) -> None:
        if self.tabs.currentIndex() == 1:
            self.detail.show_record(None)
            self.label_panel.set_selection([])

    def _results_shown(self, outcome: Any) -> None:
        if outcome is None:
            self._clear_results_selection()
            self.update_state()
            return
        self.tabs.setCurrentWidget(self.search_panel)
        self.refresh_selection()  # the results grid's, through the session
        self.update_state()  # the File menu's exports follow the results
        self.searchFinished.emit(outcome)

    def _text_checked(self, _error: str, refused: bool) -> None:
        if refused:  # no matches shown, and why: nothing of them stays selected
            self._clear_results_selection()
            self.update_state()

    def _show_watching(self, text: str, tip: str) -> None:
        self.watch_label.setText(text)
        self.watch_label.setToolTip(tip)

    # --- drag and drop --------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802
        if can_accept(event.mimeData()) and event.source() is None:
            event.acceptProposedAction()
        else:
            event.ignore()  # our own thumbnails dragged out are not a new query

    def dragMoveEvent(self, event: Any) -> None:  # noqa: N802
        event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802
        event.acceptProposedAction()
        self.searching.search_mime(event.mimeData())

    # --- selection, detail ----------------------------------------------------------------
    def active_grid(self) -> Any:
        return self.search_panel.grid if self.tabs.currentIndex() == 1 else self.browser.grid

    def selected_records(self) -> list[ImageRecord]:
        if self.library is None:
            return []
        grid = self.active_grid()
        model = grid.model()
        if model is None:
            return []
        if hasattr(model, "records_of"):  # the library grid: read in bulk, not by page
            return model.records_of(grid.selected_ids())
        out = []
        for image_id in grid.selected_ids():
            row = model.row_of(image_id)
            rec = model.record(row) if row is not None else None
            if rec is not None:
                out.append(rec)
        return out

    def _grid_selected(self, ids: list[int], from_results: bool) -> None:
        # The grid not shown keeps its own selection; the shown one's is the session's.
        if (self.tabs.currentIndex() == 1) == from_results:
            self.session.select(ids, from_results)

    def refresh_selection(self) -> None:
        """The shown grid's selection again (another tab, labels changed)."""
        self.session.select(self.active_grid().selected_ids(), self.tabs.currentIndex() == 1)

    def on_selection(self, ids: list[int], from_results: bool) -> None:
        if (self.tabs.currentIndex() == 1) != from_results:
            return
        records = self.selected_records()
        self.label_panel.set_selection(records)
        if not records:
            self.detail.show_record(None)
            self.suggesting.show_for_selection()
            self.records.show_selection()
            return
        rec = records[0]
        hit = None
        if from_results and self.search_panel.model is not None:
            row = self.search_panel.model.row_of(rec.id)
            hit = self.search_panel.model.hit(row) if row is not None else None
        # None: a load is queued and on_thumbnail_ready fills the preview in.
        image = self.cache.request_image(rec) if self.cache is not None else None
        self.detail.show_record(rec, image, hit)
        if self.previewing.visible():  # where it stands is looked up only then
            self.previewing.selection_changed(rec, self.shown_position(rec.id))
        if image is None and self.cache is not None and self.cache.failed(rec.id):
            self.detail.image_failed(rec.id)
        self.suggesting.show_for_selection()
        self.records.show_selection()
        if self.loupe is not None and self.loupe.isVisible():
            self.loupe.show_pair(self._loupe_query(), rec)

    def on_thumbnail_ready(self, image_id: int) -> None:
        if self.cache is None:
            return
        image = self.cache.image(image_id)
        if image is not None:
            self.detail.update_image(image_id, image)
            self.previewing.thumbnail_ready(image_id, image)
        elif self.cache.failed(image_id):
            self.detail.image_failed(image_id)

    def next_unlabelled(self) -> int | None:
        """Select the next unlabelled image in the library grid (after the current one)."""
        if self.library is None or self.browser.model is None:
            return None
        if self.tabs.currentIndex() != 0:
            self.tabs.setCurrentIndex(0)
        current = self.browser.grid.currentIndex()
        image_id = self.browser.next_unlabelled_id(current.row() if current.isValid() else -1)
        if image_id is not None:
            self.browser.grid.select_ids([image_id])
            self.browser.grid.setFocus()
            return image_id
        self.statusBar().showMessage("Every image shown is labelled.", 4000)
        return None

    def shown_position(self, image_id: int) -> str:
        """Where ``image_id`` stands in the grid shown: "2 / 24" ("" when it is not there)."""
        model = self.active_grid().model()
        row = model.row_of(image_id) if model is not None else None
        return f"{row + 1} / {model.rowCount()}" if row is not None else ""

    def show_preview(self) -> Any:
        """Space: the first selected image full screen, where it stands in the grid."""
        records = self.selected_records()
        return self.previewing.show(self.shown_position(records[0].id) if records else "")

    def step_selection(self, step: int) -> None:
        """Select the image ``step`` places from the current one in the grid shown (the
        full-screen preview's ←/→; on_selection fills the preview)."""
        grid = self.active_grid()
        model = grid.model()
        if model is None or not model.rowCount():
            return
        current = grid.currentIndex()
        row = current.row() if current.isValid() else 0
        row = max(0, min(model.rowCount() - 1, row + step))
        image_id = model.index(row, 0).data(ImageIdRole)
        if image_id is not None:
            grid.select_ids([image_id])

    def next_least_confident(self) -> int | None:
        """Select the unlabelled image shown whose suggestion is least confident (none first)."""
        if self.library is None or self.browser.model is None:
            return None
        if self.tabs.currentIndex() != 0:
            self.tabs.setCurrentIndex(0)
        image_id = self.browser.least_confident_unlabelled_id()
        if image_id is None:
            self.statusBar().showMessage("Every image shown is labelled.", 4000)
            return None
        self.browser.grid.select_ids([image_id])
        self.browser.grid.setFocus()
        return image_id

    def _show_suggestions(self) -> None:
        suggestions = self.suggesting.suggestions
        self.browser.set_suggestions(suggestions)
        if self.search_panel.model is not None:
            self.search_panel.model.set_suggestions(suggestions)

    def _select_all(self) -> None:
        self.active_grid().selectAll()

    def focus_text_search(self) -> QWidget | None:
        """Ctrl+F: the text field of the tab shown (library or results), its text selected."""
        if self.library is None:
            return None
        field = (
            self.search_panel.text_edit if self.tabs.currentIndex() == 1 else self.browser.text_edit
        )
        field.setFocus(Qt.FocusReason.ShortcutFocusReason)
        field.selectAll()
        return field

    def open_image(self, image_id: int) -> None:
        if self.library is not None:
            self.opening.open(image_id)

    def reveal_image(self, image_id: int) -> None:
        if self.library is not None:
            self._say_if_false(
                desktop.reveal_in_folder(self.library.get(image_id).path), "Reveal in folder"
            )

    def _say_if_false(self, ok: Any, what: str) -> None:
        if ok is False:
            self.sink.inform(what, "No application is set up to open this file.", warning=True)

    def copy_paths(self) -> list[str]:
        """The selected images' paths on the clipboard (text and file URLs)."""
        paths = [str(r.path) for r in self.selected_records()]
        if paths:
            mime = QMimeData()
            mime.setText("\n".join(paths))
            mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
            QGuiApplication.clipboard().setMimeData(mime)
            self.statusBar().showMessage(f"Copied {len(paths)} path(s)", 4000)
        return paths

    def copy_image(self) -> Any:
        """The first selected image, full size, on the clipboard: decoded in a worker (a
        camera photo took 0.3 s on the GUI thread, a large TIFF seconds); the worker, or None
        when nothing is selected."""
        from fabricsearch.gui.export import read_full_image

        records = self.selected_records()
        if not records:
            return None
        rec = records[0]
        # The cached 512 px preview, should the original be unreadable (moved, offline).
        fallback = self.cache.image(rec.id) if self.cache is not None else None

        def done(image: QImage) -> None:
            if image.isNull() and fallback is not None:
                image = fallback
            if image.isNull():
                self.statusBar().showMessage(f"Cannot read {rec.path.name}", 5000)
                return
            QGuiApplication.clipboard().setImage(image)
            self.statusBar().showMessage(f"Copied {rec.path.name}", 4000)

        self.statusBar().showMessage(f"Copying {rec.path.name}…")
        return self.runner.start(
            partial(read_full_image, rec.path),
            name="copy-image",
            slot="copy-image",
            replace=True,
            on_finished=done,
            on_failed=lambda message: self.statusBar().showMessage(message, 5000),
        )

    def _loupe_query(self) -> Any:
        o = self.session.outcome
        if o is None:
            return None
        return o.query, (o.request.crop if o.request else None)

    def show_loupe(self) -> Any:
        """Query and selected image side by side at 100 % (or 200 %), panning together."""
        from fabricsearch.gui.widgets.loupe import LoupeWindow

        records = self.selected_records()
        if not records and self._loupe_query() is None:
            self.statusBar().showMessage("Search, then select a result to compare.", 4000)
            return None
        if self.loupe is None:
            self.loupe = LoupeWindow(self.runner, self)
        self.loupe.show_pair(self._loupe_query(), records[0] if records else None)
        self.loupe.show()
        self.loupe.raise_()
        return self.loupe

    # --- misc ---------------------------------------------------------------------------
    def set_thumb_size(self, px: int, save: bool = True) -> None:
        self.browser.grid.set_thumb_size(px)
        self.search_panel.set_thumb_size(px)
        if px in self.size_actions:
            self.size_actions[px].setChecked(True)
        self.zoom_slider.set_size(px)
        if save:
            self.settings.thumb_size = px

    def zoom_thumbs(self, step: int) -> int:
        """Ctrl+= / Ctrl+−: the next larger or smaller thumbnail size."""
        px = step_size(THUMB_SIZES, self.browser.grid.iconSize().width(), step)
        self.set_thumb_size(px)
        return px

    def show_shortcuts(self) -> None:
        from fabricsearch.gui.shortcuts import shortcut_help

        text = shortcut_help(self.label_panel.shortcut_help(), self.menuBar())
        self.sink.inform("Labelling shortcuts", text)

    def show_about(self) -> None:
        from fabricsearch.gui.dialogs.about_dialog import AboutDialog
        from fabricsearch.logging_setup import current_log_file

        dialog = AboutDialog(
            self.library.folder if self.library else None, current_log_file(), self
        )
        self.runner.last_dialog = dialog
        dialog.open()

    def update_state(self) -> None:
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
        count, labelled = self.browser.count_all(), self.browser.count_labelled()
        if self.session.records_loading and not count:
            self.count_label.setText("Loading the library…")
        elif labelled is None:  # counted; the labels are still being read
            self.count_label.setText(f"{plural(count, 'image')} · reading labels…")
        else:
            self.count_label.setText(f"{plural(count, 'image')} · {labelled:,} labelled")
        active = self.session.active_model
        self.model_label.setText(
            f"Model: {active.version} ({active.method}, {active.bits} bits)"
            if active
            else "Model: none (train one)"
        )
        # An empty library needs photos first; advice about (re)training would mislead.
        advice = (
            model_advice(lib)
            if count or self.session.records_loading
            else "No photos yet: Library ▸ Import folder… (Ctrl+I) adds a folder."
        )
        self.model_label.setToolTip(advice)
        self.advice_label.setText(advice)
        self.evaluate_action.setEnabled(active is not None)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802
        if self.training.running() and not self.sink.confirm(
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
