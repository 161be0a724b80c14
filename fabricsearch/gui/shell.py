"""What a controller may ask of the window (issue 21): the window is a shell that holds the
widgets; controllers change the state in `session.LibrarySession`, whose signals the widgets
follow, and reach the window only through this narrow protocol. `MainWindow` implements it;
a test can hand a controller any object that does (`tests/test_gui_session_owner.py` checks
that converted controllers ask for nothing else)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from PySide6.QtGui import QUndoStack
    from PySide6.QtWidgets import QWidget

    from fabricsearch.catalogue import ImageRecord
    from fabricsearch.gui.jobs import JobRunner
    from fabricsearch.gui.messages import MessageSink
    from fabricsearch.gui.settings import Settings


class Shell(Protocol):
    """The window as a controller sees it."""

    sink: MessageSink  # messages and questions to the user
    runner: JobRunner  # every long job
    undo_stack: QUndoStack
    settings: Settings

    def status(self, text: str, ms: int = 0) -> None:
        """A line in the status bar (for ``ms`` milliseconds; 0: until the next)."""

    def clear_status(self) -> None: ...

    def dialog_parent(self) -> QWidget:
        """The widget a controller's dialogs belong to."""

    def selected_records(self) -> list[ImageRecord]:
        """The records selected in the grid shown (library or results)."""

    def open_image(self, image_id: int) -> None: ...

    def reselect(self, ids: list[int]) -> None:
        """Select ``ids`` again in the grid shown (its records were read again)."""

    def add_status_widget(self, widget: QWidget) -> None:
        """``widget`` at the start of the status bar (a running job's progress)."""


class RecordsView(Protocol):
    """What a controller reads of the library grid's records (read in bulk as columns by the
    browser, which shows and filters them)."""

    def all_labelled(self) -> bool: ...

    def label_counts(self) -> dict[str, int]: ...

    def count_all(self) -> int: ...

    def current_filters(self) -> tuple[str, dict[str, Any]]:
        """The library grid's text filter and facet filters (`BrowseFilter.to_dict`)."""

    def columns(self) -> Any:
        """The grid's columns (`BrowseColumns`) as shown now."""


class ResultsView(Protocol):
    """What the search controller reads of the results panel: the user's inputs of the next
    search, and the results shown (after the panel's facets) for an export."""

    def balance(self) -> float: ...

    def text(self) -> str: ...

    def top_n(self) -> int: ...

    def shown_hits(self) -> tuple[list[Any], list[ImageRecord]] | None: ...


#: The names a controller may use on its shell (a test checks the converted controllers).
SHELL_MEMBERS = frozenset(
    {
        "sink",
        "runner",
        "undo_stack",
        "settings",
        "status",
        "clear_status",
        "dialog_parent",
        "selected_records",
        "open_image",
        "reselect",
        "add_status_widget",
    }
)
