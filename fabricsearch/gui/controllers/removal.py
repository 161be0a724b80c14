"""Remove from library, undoably, and Library ▸ Recently removed….

`Library.remove_paths` keeps what it removes (rows, labels, records, codes, label history) in
the library's ``removed/`` folder. A removal from the window is a command on the window's undo
stack whose undo puts those back (`services.records.restore_removed`) and whose redo removes
the same photos again; the status bar offers Undo for a while after it. The dialog lists every
kept removal, older ones included, and restores the chosen one in a worker."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QUndoCommand
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from fabricsearch.errors import message_for
from fabricsearch.gui.messages import plural

if TYPE_CHECKING:
    from fabricsearch.gui.controllers.library import LibraryController
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import Shell

#: How long the status bar offers Undo after a removal.
UNDO_OFFER_MS = 20_000


class RemoveImagesCommand(QUndoCommand):
    """Images removed from the library: undo restores them from their ``removed/`` record,
    redo removes the same paths again (a new record)."""

    def __init__(
        self, controller: RemovalController, paths: list[str], record: str, n: int
    ) -> None:
        super().__init__(f"remove {plural(n, 'image')} from the library")
        self.controller = controller
        self.paths = list(paths)
        self.record = record
        self._applied = True  # removed before the push; push() calls redo() once

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.controller.remove_again(self)

    def undo(self) -> None:
        self.controller.restore_command(self)


class UndoNotice(QWidget):
    """ "Removed 2 images · Undo" in the status bar, for `UNDO_OFFER_MS`."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.button = QPushButton("Undo")
        self.button.setToolTip("Put the removed images back, with their labels (Ctrl+Z)")
        layout.addWidget(self.label)
        layout.addWidget(self.button)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.hide)
        self.hide()

    def offer(self, text: str) -> None:
        self.label.setText(text)
        self.show()
        self.timer.start(UNDO_OFFER_MS)


class RemovalController(QObject):
    def __init__(self, session: LibrarySession, shell: Shell, libraries: LibraryController) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.libraries = libraries  # the records read again after a change
        self.notice = UndoNotice()
        self.notice.button.clicked.connect(self.undo_offered)
        self._offered: RemoveImagesCommand | None = None
        self.dialog_: Any = None
        shell.undo_stack.indexChanged.connect(lambda _i: self._withdraw_offer())

    # --- remove ---------------------------------------------------------------------------
    def remove_selected(self) -> Any:
        """Forget the selected images (the files stay on disk), after asking; one undo step.
        The `RemoveReport`, or None when nothing was removed."""
        lib = self.session.library
        records = self.shell.selected_records()
        if lib is None or not records:
            self.shell.status("Select the images to remove first.", 4000)
            return None
        n = len(records)
        labelled = sum(1 for r in records if r.labelled)
        lost = f" {labelled} of them are labelled; their labels go with them." if labelled else ""
        if not self.shell.sink.confirm(
            "Remove from library",
            f"Remove {plural(n, 'image')} from the library? The files stay on disk.{lost} "
            "Edit ▸ Undo puts them back, and so does Library ▸ Recently removed… later.",
        ):
            return None
        paths = [str(r.path) for r in records]
        try:
            rep = lib.remove_paths(paths)
        except Exception as exc:  # noqa: BLE001 - e.g. a read-only library: say why
            reason = message_for(exc, what="removing images")
            self.shell.sink.inform("Remove from library", f"Cannot remove: {reason}", warning=True)
            return None
        if rep.record is None:
            return rep
        command = RemoveImagesCommand(self, paths, rep.record, len(rep.removed))
        self.shell.undo_stack.push(command)
        self._changed(clear_results=True)
        # Said once, by the offer (a status message beside it repeated it, cut short).
        self.shell.clear_status()
        self._offered = command
        self.notice.offer(f"Removed {plural(len(rep.removed), 'image')} from the library")
        return rep

    def undo_offered(self) -> None:
        """The status bar's Undo: undo the removal it offered if it is the latest step."""
        stack = self.shell.undo_stack
        if self._offered is not None and stack.command(stack.index() - 1) is self._offered:
            stack.undo()
        self._withdraw_offer()

    def _withdraw_offer(self) -> None:
        stack = self.shell.undo_stack
        if self._offered is None or stack.command(stack.index() - 1) is not self._offered:
            self._offered = None
            self.notice.hide()

    def remove_again(self, command: RemoveImagesCommand) -> None:
        lib = self.session.library
        if lib is None:
            return
        try:
            rep = lib.remove_paths(command.paths)
        except Exception as exc:  # noqa: BLE001 - a read-only library, a lost connection
            reason = message_for(exc, what="removing images")
            self.shell.sink.inform(
                "Redo", f"Cannot remove the images again: {reason}", warning=True
            )
            return
        if rep.record is not None:
            command.record = rep.record
        self._changed(clear_results=True)
        self.shell.status(
            f"Removed {plural(len(rep.removed), 'image')} from the library again", 6000
        )

    def restore_command(self, command: RemoveImagesCommand) -> None:
        from fabricsearch.services.records import restore_removed

        lib = self.session.library
        if lib is None:
            return
        try:
            # Codes come back from the record; a model trained since encodes them at the
            # next search (`ensure_codes`), so nothing heavy runs on this thread.
            rep, _encoded = restore_removed(lib, command.record, encode=False)
        except Exception as exc:  # noqa: BLE001 - a read-only library, a deleted record
            reason = message_for(exc, what="restoring images")
            self.shell.sink.inform("Undo", f"Cannot put the images back: {reason}", warning=True)
            return
        self._changed()
        self._say_restored(rep)
        if rep.renumbered:
            # Earlier steps name the images by their old ids: they would now touch others.
            QTimer.singleShot(0, self.shell.undo_stack.clear)

    # --- recently removed -----------------------------------------------------------------
    def dialog(self) -> Any:
        """Library ▸ Recently removed…: every kept removal, newest first (read in a worker:
        each record holds every removed image's rows, megabytes for a large removal)."""
        from fabricsearch.gui.dialogs.removed_dialog import RecentlyRemovedDialog

        if self.session.library is None:
            return None
        dialog = RecentlyRemovedDialog([], self.shell.dialog_parent())
        dialog.restoreRequested.connect(self.restore_batch)
        self.dialog_ = dialog
        self.shell.runner.last_dialog = dialog
        dialog.open()
        self._list_batches()
        return dialog

    def _list_batches(self, select: str | None = None) -> None:
        from fabricsearch.services.records import removal_batches

        lib, dialog = self.session.library, self.dialog_
        if lib is None or dialog is None:
            return
        dialog.set_reading(True)

        def done(batches: list[Any]) -> None:
            if self.dialog_ is dialog and self.session.library is lib:
                dialog.set_batches(batches)
                if select is not None:
                    dialog.select_record(select)

        self.shell.runner.start(
            lambda progress=None, cancel=None: removal_batches(lib),
            name="removed-list",
            slot="removed-list",
            replace=True,
            on_finished=done,
            on_failed=lambda m: self.shell.sink.inform("Recently removed", m, warning=True),
        )

    def restore_batch(self, record: str) -> Any:
        """Put back one kept removal in a worker (it encodes what a newer model lacks); the
        records are reloaded and the dialog refreshed at the end. The worker."""
        from fabricsearch.services.records import restore_removed

        lib = self.session.library
        if lib is None:
            return None

        def done(outcome: Any) -> None:
            rep, _encoded = outcome
            self._changed()
            self._say_restored(rep)
            if self.session.library is lib:
                self._list_batches(select=record)

        return self.shell.runner.start(
            partial(restore_removed, lib, record),
            name="restore",
            slot="restore",
            on_finished=done,
            on_failed=lambda m: self.shell.sink.inform(
                "Restore", f"Cannot restore: {m}", warning=True
            ),
        )

    # --- shared ---------------------------------------------------------------------------
    def _changed(self, clear_results: bool = False) -> None:
        self.session.images_changed()  # the searcher's index is stale
        if clear_results:
            self.session.clear_results()  # the results name images that are gone
        self.libraries.reload_records()

    def _say_restored(self, rep: Any) -> None:
        text = f"Put back {plural(len(rep.restored), 'image')}"
        if rep.skipped:
            text += f"; {len(rep.skipped)} already in the library"
        self.shell.status(text, 6000)
