"""Fabric records (metadata) of the selection, undoable, and text search over them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoCommand

from fabricsearch.errors import message_for

if TYPE_CHECKING:
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import Shell

log = logging.getLogger(__name__)


class SetMetadataCommand(QUndoCommand):
    """Metadata set on some images; undo writes back the values each one had."""

    def __init__(
        self,
        controller: RecordsController,
        replaced: dict[int, dict[str, Any]],
        new: dict[int, dict[str, Any]],
        text: str,
    ) -> None:
        super().__init__(text)
        self.controller = controller
        self.replaced = replaced
        self.new = new
        self._applied = True  # written before push(), which calls redo() once

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.controller.write_rows(self.new)

    def undo(self) -> None:
        self.controller.write_rows(self.replaced)


class RecordsController(QObject):
    #: The fabric records of the selection: their ids and `FabricMetadata` by id.
    selectionShown = Signal(list, object)
    #: A value refused: the field's name and why (the typed text stays to be corrected).
    problemFound = Signal(str, str)

    def __init__(self, session: LibrarySession, shell: Shell) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell

    def show_selection(self) -> None:
        lib = self.session.library
        if lib is None or not hasattr(lib, "metadata"):
            self.selectionShown.emit([], {})
            return
        ids = [r.id for r in self.shell.selected_records()]
        self.selectionShown.emit(ids, lib.metadata(ids) if ids else {})

    def set_metadata(self, values: dict[str, Any]) -> bool:
        """Set `values` on every selected image as one undoable step."""
        shell, lib = self.shell, self.session.library
        ids = [r.id for r in shell.selected_records()]
        if lib is None or not ids:
            shell.status("Select images first.", 4000)
            return False
        try:
            replaced = lib.set_metadata(ids, values)
        except Exception as exc:  # noqa: BLE001 - a refused value: say why
            reason = message_for(exc, what="setting a fabric record")
            log.info("fabric record refused: %s", reason)
            # Beside the field, the typed text kept to be corrected (a box that erased it
            # made the user type it all again).
            self.problemFound.emit(next(iter(values)), reason)
            shell.status(f"Not set: {reason}", 6000)
            return False
        stored = lib.metadata(ids)
        new = {i: {k: _stored(stored[i], k) for k in values} for i in ids}
        field = ", ".join(values)
        n = len(ids)
        command = SetMetadataCommand(self, replaced, new, f"{field} on {n} image{'s' * (n != 1)}")
        shell.undo_stack.push(command)
        shell.status(command.text(), 4000)
        self.after_write(ids)
        return True

    def write_rows(self, rows: dict[int, dict[str, Any]]) -> None:
        lib = self.session.library
        if lib is not None:
            lib.set_metadata_rows(rows)
            self.after_write(list(rows))

    def after_write(self, ids: list[int]) -> None:
        # The poll takes the catalogue as seen, the searcher and the library grid's text
        # filter read the records again (`metadataChanged`); the panel shows them.
        self.session.metadata_changed(ids)
        self.show_selection()

    def text_ids(self, text: str) -> frozenset[int] | None:
        """Ids matching a text query (None: no query); raises the catalogue's error."""
        text = text.strip()
        lib = self.session.library
        if not text or lib is None:
            return None
        return frozenset(lib.text_search(text))


def _stored(meta: Any, field: str) -> Any:
    value = getattr(meta, field)
    return ", ".join(value) if isinstance(value, tuple) else value
