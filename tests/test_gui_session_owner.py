# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""The window's state has one owner and the controllers do not hold the window (issue 21):
converted controllers take ``(session, shell, …)``, ask the shell only for what `shell.Shell`
names, and a search or an active model reaches its listeners through the session's signals,
with or without a window around it."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    N_IMAGES,
    fabric_folder,
    gui_env,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

from fabricsearch.gui.shell import SHELL_MEMBERS

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

CONTROLLERS = Path(__file__).resolve().parents[1] / "fabricsearch/gui/controllers"
#: Controllers that take the session and a shell, never the window: all of them.
CONVERTED = (
    "demo.py",
    "labelling.py",
    "library.py",
    "opening.py",
    "preview.py",
    "records.py",
    "removal.py",
    "saved_searches.py",
    "search.py",
    "suggestions.py",
    "taxonomy.py",
    "training.py",
    "watching.py",
)
#: References from the controllers into the window (`self.w…`): 237 before the session took
#: the search, the history, the active model and the records' loading (issue 21); none now.
WINDOW_REFERENCES_AT_MOST = 0
WINDOW_REF = re.compile(r"self\.(w|window)\b")


def _tree(name: str) -> ast.Module:
    return ast.parse((CONTROLLERS / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", CONVERTED)
def test_a_converted_controller_never_holds_the_window(name: str) -> None:
    tree = _tree(name)
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)}
    imported = {
        a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names
    } | {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "MainWindow" not in names | imported
    assert "fabricsearch.gui.main_window" not in imported
    assert not any(isinstance(s, str) and "MainWindow" in s for s in strings)
    stored = {
        t.attr
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        for t in n.targets
        if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "self"
    }
    assert not stored & {"w", "window"}
    inits = [
        f
        for c in ast.walk(tree)
        if isinstance(c, ast.ClassDef) and c.name.endswith("Controller")
        for f in c.body
        if isinstance(f, ast.FunctionDef) and f.name == "__init__"
    ]
    assert inits
    for init in inits:
        args = [a.arg for a in init.args.args]
        assert args[1:3] == ["session", "shell"], args
        assert "window" not in args


@pytest.mark.parametrize("name", CONVERTED)
def test_a_converted_controller_asks_the_shell_only_for_what_it_names(name: str) -> None:
    asked = set()
    for node in ast.walk(_tree(name)):
        if not isinstance(node, ast.Attribute):
            continue
        owner = node.value
        if (isinstance(owner, ast.Name) and owner.id == "shell") or (
            isinstance(owner, ast.Attribute)
            and owner.attr == "shell"
            and isinstance(owner.value, ast.Name)
            and owner.value.id == "self"
        ):
            asked.add(node.attr)
    assert asked, "the controller uses its shell"
    assert asked <= SHELL_MEMBERS, asked - SHELL_MEMBERS


def test_every_controller_is_held_to_it() -> None:
    # A new controller module joins CONVERTED (and so takes the session and a shell).
    assert sorted(p.name for p in CONTROLLERS.glob("*.py") if p.name != "__init__.py") == sorted(
        CONVERTED
    )


def test_the_controllers_reach_into_the_window_less_and_less() -> None:
    counts = {
        p.name: len(WINDOW_REF.findall(p.read_text(encoding="utf-8")))
        for p in CONTROLLERS.glob("*.py")
    }
    assert sum(counts.values()) <= WINDOW_REFERENCES_AT_MOST, counts


class _Shell:
    """A shell without a window: what a controller may ask for, recorded."""

    def __init__(self, parent) -> None:
        from PySide6.QtGui import QUndoStack

        from fabricsearch.gui.jobs import JobRunner
        from fabricsearch.gui.messages import RecordingSink
        from fabricsearch.gui.settings import Settings

        self._parent = parent
        self.sink = RecordingSink()
        self.runner = JobRunner(parent)
        self.undo_stack = QUndoStack(parent)
        self.settings = Settings()
        self.lines: list[str] = []

    def status(self, text: str, ms: int = 0) -> None:
        self.lines.append(text)

    def clear_status(self) -> None:
        self.lines.append("")

    def dialog_parent(self):
        return self._parent

    def selected_records(self) -> list:
        return []

    def open_image(self, image_id: int) -> None:
        pass


class _Inputs:
    def balance(self) -> float:
        return 0.5

    def text(self) -> str:
        return ""

    def top_n(self) -> int:
        return 5

    def shown_hits(self):
        return None


def test_a_search_reaches_its_listeners_through_the_session_without_a_window(
    qtbot, gui_env, trained_library_path: Path
) -> None:
    from PySide6.QtWidgets import QWidget

    from fabricsearch.catalogue import Library
    from fabricsearch.gui.controllers.search import SearchController
    from fabricsearch.gui.session import LibrarySession

    parent = QWidget()
    qtbot.addWidget(parent)
    session = LibrarySession(parent)
    shell = _Shell(parent)
    searching = SearchController(session, shell, _Inputs())
    lib = Library.open(trained_library_path)
    session.open(lib)
    assert session.active_model is not None
    assert session.active_model.version == lib.active_model().version

    history: list[int] = []
    session.historyChanged.connect(lambda: history.append(len(session.history)))
    rec = lib.images()[2]
    with qtbot.waitSignal(session.resultsChanged, timeout=60_000) as shown:
        assert searching.find_similar(rec.id) is not None
    outcome = shown.args[0]
    assert outcome is session.outcome
    assert 0 < len(outcome.result.hits) <= 5
    assert session.query.path == rec.path
    assert history == [1]
    assert shell.lines[-1] == f"{len(outcome.result.hits)} results"
    assert searching._searcher is not None

    # Results cleared through the session (a removal does so) while a search runs: that
    # search shows nothing when it ends.
    worker = searching.find_similar(rec.id)
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        session.clear_results("Removed")
    assert session.outcome is None
    assert session.results_note == "Removed"
    assert history == [1]

    # Another active model (here: the same one, read again after a training): the searcher
    # is made anew, without anyone calling the search controller.
    with qtbot.waitSignal(session.activeModelChanged) as changed:
        session.refresh_active_model(announce=True)
    assert changed.args[0].version == session.active_model.version
    assert searching._searcher is None
    # Read again without a change: nobody is told.
    with qtbot.assertNotEmitted(session.activeModelChanged):
        session.refresh_active_model()

    with qtbot.waitSignal(session.resultsChanged) as cleared:
        session.close()
    assert cleared.args == [None]
    assert session.outcome is None
    assert session.history == []
    assert session.active_model is None
    assert history[-1] == 0


def test_the_window_follows_the_sessions_search_and_model_signals(
    window, trained_library_path: Path, qtbot
) -> None:
    # The window is every controller's shell: it has all a controller may ask for.
    assert [m for m in sorted(SHELL_MEMBERS) if not hasattr(window, m)] == []
    assert open_library(window, trained_library_path)
    session = window.session
    active = window.library.active_model()
    assert session.active_model.version == active.version
    assert active.version in window.model_label.text()
    rec = window.browser.all_records()[1]
    window.search_panel.k_spin.setValue(N_IMAGES)
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as finished:
        window.searching.find_similar(rec.id)
    assert finished.args[0] is session.outcome
    assert window.search_panel.result is session.outcome.result
    assert window.tabs.currentWidget() is window.search_panel
    assert window.export_csv_action.isEnabled()
    assert window.detail.query.title() == f"Query · {rec.path.name}"
    assert window.search_panel.recent_button.isEnabled()

    # The session's word alone clears every panel (no controller call).
    session.clear_results("Nothing here")
    assert window.search_panel.result is None
    assert window.search_panel.summary.text() == "Nothing here"
    assert not window.export_csv_action.isEnabled()
    assert window.query is None

    with qtbot.waitSignal(window.modelChanged):
        session.refresh_active_model(announce=True)
    assert active.version in window.model_label.text()
