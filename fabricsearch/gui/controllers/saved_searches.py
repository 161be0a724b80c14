"""Library ▸ Saved searches: the library grid's text filter and facet filters under a name,
stored in the library (`services.search.save_search`) so that teammates on a shared or team
library see them; choosing one shows the library grid filtered by it again. The menu is
filled each time it opens, so searches saved by another window appear."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QInputDialog, QMenu

from fabricsearch.errors import message_for

if TYPE_CHECKING:
    from fabricsearch.gui.controllers.library import LibraryController
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import RecordsView, Shell


class SavedSearchController(QObject):
    #: A saved search chosen: the library grid shows its text filter and facet filters.
    applied = Signal(str, object)

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
        self.libraries = libraries  # its own writes are not "changed outside this window"
        self.records = records  # the library grid's filters, saved under a name

    def searches(self) -> list[Any]:
        from fabricsearch.services.search import saved_searches

        lib = self.session.library
        if lib is None:
            return []
        try:
            return saved_searches(lib)
        except Exception:  # noqa: BLE001 - a team library out of reach: an empty menu
            return []

    def fill_menu(self, menu: QMenu) -> None:
        """The menu's entries: Save…, then one per saved search, then Delete…."""
        menu.clear()
        save = QAction("Save current filters…", menu)
        save.setToolTip("The library tab's text filter and facet filters, under a name")
        save.setEnabled(self.session.library is not None)
        save.triggered.connect(lambda _c=False: self.save())
        menu.addAction(save)
        items = self.searches()
        if items:
            menu.addSeparator()
        for s in items:
            action = QAction(s.name, menu)
            action.setToolTip(self._describe(s))
            action.setStatusTip(self._describe(s))
            action.triggered.connect(lambda _c=False, name=s.name: self.apply(name))
            menu.addAction(action)
        if items:
            menu.addSeparator()
            delete = QAction("Delete a saved search…", menu)
            delete.triggered.connect(lambda _c=False: self.delete())
            menu.addAction(delete)

    @staticmethod
    def _describe(s: Any) -> str:
        parts = [f"{k}: {v}" for k, v in s.filters.items()]
        if s.text:
            parts.insert(0, f"text: {s.text}")
        by = f" (saved by {s.who})" if s.who else ""
        return (", ".join(parts) or "no filter") + by

    def save(self, name: str | None = None) -> Any:
        """Save the library grid's filters under `name` (asked when None); the entry."""
        from fabricsearch.services.search import save_search

        lib = self.session.library
        if lib is None:
            return None
        text, filters = self.records.current_filters()
        if not filters and not text:
            self.shell.status(
                "Choose filters or type a text filter on the Library tab first.", 5000
            )
            return None
        if name is None:
            name, ok = QInputDialog.getText(
                self.shell.dialog_parent(), "Save search", "Name of this search:"
            )
            if not ok:
                return None
        try:
            entry = save_search(lib, name, text, filters)
        except Exception as exc:  # noqa: BLE001 - no name, a read-only library: say why
            reason = message_for(exc, what="saving the search")
            self.shell.sink.inform("Save search", f"Cannot save the search: {reason}", warning=True)
            return None
        self.libraries.note_own_write()
        self.shell.status(f"Saved the search “{entry.name}”", 4000)
        return entry

    def apply(self, name: str) -> bool:
        """Show the library grid filtered by the saved search `name`."""
        found = next((s for s in self.searches() if s.name == name), None)
        if found is None:
            self.shell.status(f"No saved search “{name}” (deleted?)", 5000)
            return False
        self.applied.emit(found.text, found.filters)
        self.shell.status(f"Showing the saved search “{found.name}”", 4000)
        return True

    def delete(self, name: str | None = None) -> bool:
        from fabricsearch.services.search import delete_saved_search

        lib = self.session.library
        if lib is None:
            return False
        if name is None:
            names = [s.name for s in self.searches()]
            if not names:
                return False
            name, ok = QInputDialog.getItem(
                self.shell.dialog_parent(), "Delete saved search", "Search:", names, 0, False
            )
            if not ok:
                return False
        try:
            deleted = delete_saved_search(lib, name)
        except Exception as exc:  # noqa: BLE001 - a read-only library: say why
            reason = message_for(exc, what="deleting the search")
            self.shell.sink.inform(
                "Delete saved search", f"Cannot delete it: {reason}", warning=True
            )
            return False
        self.libraries.note_own_write()
        return deleted
