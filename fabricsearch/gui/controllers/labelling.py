"""Labelling the selection: one undoable command per change, next unlabelled image."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject

from fabricsearch.errors import message_for
from fabricsearch.gui.commands import apply_labels, apply_tightness_step

if TYPE_CHECKING:
    from fabricsearch.gui.main_window import MainWindow


class LabellingController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window

    def _selected_ids(self) -> list[int] | None:
        if self.w.library is None:
            return None
        ids = [r.id for r in self.w.selected_records()]
        if not ids:
            self.w.statusBar().showMessage("Select images to label first.", 4000)
            return None
        return ids

    def _push(self, build: Any) -> bool:
        try:
            command = build()
        except Exception as exc:  # noqa: BLE001 - refused label: say why
            reason = message_for(exc, what="labelling")
            self.w.sink.inform("Labels", f"Cannot set these labels: {reason}", warning=True)
            return False
        self.w.undo_stack.push(command)
        self.w.statusBar().showMessage(command.text(), 4000)
        return True

    def label_selection(self, changes: dict[str, Any]) -> bool:
        """Apply a label change to the selection as one undoable command."""
        ids = self._selected_ids()
        if ids is None:
            return False
        return self._push(lambda: apply_labels(self.w.library, ids, changes, self.labels_changed))

    def step_tightness(self, delta: int) -> bool:
        """Move each selected image's tightness by `delta` % from its own value (one undo)."""
        ids = self._selected_ids()
        if ids is None:
            return False
        return self._push(
            lambda: apply_tightness_step(self.w.library, ids, delta, self.labels_changed)
        )

    def labels_changed(self, ids: list[int]) -> None:
        w = self.w
        if w.library is None:
            return
        w.searching.invalidate_labels()
        w.libraries.note_own_write()
        records = w.library.images(ids)
        w.browser.update_records(records)
        if w.search_panel.model is not None:
            w.search_panel.update_records(records)
        w.on_selection(w.active_grid().selected_ids(), from_results=w.tabs.currentIndex() == 1)
        w.update_state()
        w.labelsChanged.emit(ids)

    def next_unlabelled(self) -> int | None:
        """Select the next unlabelled image in the library grid (after the current one)."""
        w = self.w
        if w.library is None or w.browser.model is None:
            return None
        if w.tabs.currentIndex() != 0:
            w.tabs.setCurrentIndex(0)
        current = w.browser.grid.currentIndex()
        image_id = w.browser.next_unlabelled_id(current.row() if current.isValid() else -1)
        if image_id is not None:
            w.browser.grid.select_ids([image_id])
            w.browser.grid.setFocus()
            return image_id
        w.statusBar().showMessage("Every image shown is labelled.", 4000)
        return None
