"""Taxonomy edits from the window, each one undoable step (its relabelling included)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand

from fabricsearch.errors import message_for

if TYPE_CHECKING:
    from fabricsearch.gui.controllers.library import LibraryController
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import RecordsView, Shell


class TaxonomyCommand(QUndoCommand):
    def __init__(
        self, controller: TaxonomyController, edit: Callable[[], Any], change: Any
    ) -> None:
        super().__init__(change.description)
        self.controller = controller
        self.edit = edit
        self.change = change
        self._applied = True  # done before push(), which calls redo() once

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.change = self.edit()
        self.controller.changed_taxonomy()

    def undo(self) -> None:
        from fabricsearch.services.records import TaxonomyError

        try:
            self.controller.session.library.undo_taxonomy_change(self.change)
        except TaxonomyError as exc:  # changed since (another window, the CLI, a colleague)
            self.controller.shell.sink.inform("Categories", str(exc), warning=True)
            self.setObsolete(True)  # the stack drops it: there is nothing to redo
            return
        self.controller.changed_taxonomy()


class TaxonomyController(QObject):
    taxonomyChanged = Signal()

    def __init__(
        self,
        session: LibrarySession,
        shell: Shell,
        libraries: LibraryController,
        records: RecordsView,
    ) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.libraries = libraries  # relabelled images read again after an edit
        self.records = records  # how many images each category labels
        self.dialog_: Any = None

    def dialog(self) -> Any:
        from fabricsearch.gui.dialogs.taxonomy_dialog import TaxonomyDialog

        if self.session.library is None:
            return None
        dialog = TaxonomyDialog(
            self.session.library.taxonomy, self.records.label_counts(), self.shell.dialog_parent()
        )
        dialog.editRequested.connect(self.edit)
        self.dialog_ = dialog
        self.shell.runner.last_dialog = dialog
        dialog.open()
        return dialog

    def edit(self, kind: str, action: str, args: tuple) -> bool:
        """`action` one of add / rename / merge / retire on the library's taxonomy."""
        lib = self.session.library
        if lib is None:
            return False
        method = {
            "add": lib.taxonomy_add,
            "rename": lib.taxonomy_rename,
            "merge": lib.taxonomy_merge,
            "retire": lib.taxonomy_retire,
        }[action]

        def do() -> Any:
            return method(kind, *args)

        try:
            change = do()
        except Exception as exc:  # noqa: BLE001 - refused (unknown id, in use, read-only)
            reason = message_for(exc, what=f"the category {action}")
            self.shell.sink.inform(
                "Categories", f"Cannot {action} {args[0]}: {reason}", warning=True
            )
            return False
        self.shell.undo_stack.push(TaxonomyCommand(self, do, change))
        self.changed_taxonomy()
        self.shell.status(change.description, 5000)
        return True

    def changed_taxonomy(self, then: Callable[[], None] | None = None) -> None:
        """New names and categories everywhere; relabelled images reloaded (then `then`)."""
        lib = self.session.library
        if lib is None:
            return
        self.session.set_taxonomy(lib.taxonomy)  # the panels and the searcher follow

        def refreshed() -> None:
            self.refresh_dialog()
            self.taxonomyChanged.emit()
            if then is not None:
                then()

        self.libraries.reload_records(then=refreshed)

    def refresh_dialog(self) -> None:
        """The Categories dialog, if open, shows the library's categories and counts now."""
        lib = self.session.library
        if self.dialog_ is not None and lib is not None:
            self.dialog_.set_taxonomy(lib.taxonomy, self.records.label_counts())
