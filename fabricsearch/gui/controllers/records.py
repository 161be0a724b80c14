"""Fabric records (metadata) of the selection, undoable, and text search over them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QUndoCommand

from fabricsearch.errors import message_for

if TYPE_CHECKING:
    from fabricsearch.gui.main_window import MainWindow

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
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window

    def show_selection(self) -> None:
        w = self.w
        if w.library is None or not hasattr(w.library, "metadata"):
            w.metadata_panel.set_selection([], {})
            return
        ids = [r.id for r in w.selected_records()]
        w.metadata_panel.set_selection(ids, w.library.metadata(ids) if ids else {})

    def set_metadata(self, values: dict[str, Any]) -> bool:
        """Set `values` on every selected image as one undoable step."""
        w = self.w
        ids = [r.id for r in w.selected_records()]
        if w.library is None or not ids:
            w.statusBar().showMessage("Select images first.", 4000)
            return False
        try:
            replaced = w.library.set_metadata(ids, values)
        except Exception as exc:  # noqa: BLE001 - a refused value: say why
            reason = message_for(exc, what="setting a fabric record")
            log.info("fabric record refused: %s", reason)
            # Beside the field, the typed text kept to be corrected (a box that erased it
            # made the user type it all again).
            w.metadata_panel.show_problem(next(iter(values)), reason)
            w.statusBar().showMessage(f"Not set: {reason}", 6000)
            return False
        stored = w.library.metadata(ids)
        new = {i: {k: _stored(stored[i], k) for k in values} for i in ids}
        field = ", ".join(values)
        n = len(ids)
        command = SetMetadataCommand(self, replaced, new, f"{field} on {n} image{'s' * (n != 1)}")
        w.undo_stack.push(command)
        w.statusBar().showMessage(command.text(), 4000)
        self.after_write()
        return True

    def write_rows(self, rows: dict[int, dict[str, Any]]) -> None:
        if self.w.library is not None:
            self.w.library.set_metadata_rows(rows)
            self.after_write()

    def after_write(self) -> None:
        self.w.libraries.note_own_write()
        self.w.searching.invalidate_labels()
        self.show_selection()
        self.w.browser.refresh_text_filter()

    def text_ids(self, text: str) -> frozenset[int] | None:
        """Ids matching a text query (None: no query); raises the catalogue's error."""
        text = text.strip()
        if not text or self.w.library is None:
            return None
        return frozenset(self.w.library.text_search(text))


def _stored(meta: Any, field: str) -> Any:
    value = getattr(meta, field)
    return ", ".join(value) if isinstance(value, tuple) else value
