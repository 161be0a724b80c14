"""Labelling the selection: one undoable command per change; the window's `LibrarySession`
tells whoever shows labels (`labelsChanged`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from fabricsearch.errors import message_for
from fabricsearch.gui.commands import apply_labels, apply_tightness_step

if TYPE_CHECKING:
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import Shell


class LabellingController(QObject):
    def __init__(self, session: LibrarySession, shell: Shell) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell

    def _selected_ids(self) -> list[int] | None:
        if self.session.library is None:
            return None
        ids = [r.id for r in self.shell.selected_records()]
        if not ids:
            self.shell.status("Select images to label first.", 4000)
            return None
        return ids

    def _push(self, build: Any) -> bool:
        try:
            command = build()
        except Exception as exc:  # noqa: BLE001 - refused label: say why
            reason = message_for(exc, what="labelling")
            self.shell.sink.inform("Labels", f"Cannot set these labels: {reason}", warning=True)
            return False
        self.shell.undo_stack.push(command)
        self.shell.status(command.text(), 4000)
        return True

    def label_selection(self, changes: dict[str, Any]) -> bool:
        """Apply a label change to the selection as one undoable command."""
        ids = self._selected_ids()
        if ids is None:
            return False
        lib = self.session.library
        return self._push(lambda: apply_labels(lib, ids, changes, self.labels_changed))

    def step_tightness(self, delta: int) -> bool:
        """Move each selected image's tightness by `delta` % from its own value (one undo)."""
        ids = self._selected_ids()
        if ids is None:
            return False
        lib = self.session.library
        return self._push(lambda: apply_tightness_step(lib, ids, delta, self.labels_changed))

    def labels_changed(self, ids: list[int]) -> None:
        """Labels written (a command done, undone or redone): the session tells whoever
        shows them."""
        self.session.labels_changed(ids)
