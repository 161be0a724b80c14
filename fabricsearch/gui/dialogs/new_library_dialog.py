"""Library ▸ New…: choose a folder for a new library, an empty one or one not made yet.

Qt's folder picker refuses a typed name that does not exist ("Directory not found"), so a new
library could only go into a folder made beforehand in a file manager. This picker (Qt's own
widget dialog, whose `accept` can be extended) makes the typed folder, parents included, and
then accepts it."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


class NewLibraryDialog(QFileDialog):
    def __init__(self, parent: QWidget | None = None, start: str | Path = "") -> None:
        super().__init__(
            parent, "New library: choose an empty folder or type a new folder's name", str(start)
        )
        self.setFileMode(QFileDialog.FileMode.Directory)
        self.setOption(QFileDialog.Option.ShowDirsOnly, True)
        # The native dialogs do not call `accept` below; Qt's own does, on every platform.
        self.setOption(QFileDialog.Option.DontUseNativeDialog, True)
        self.setLabelText(QFileDialog.DialogLabel.Accept, "Create library")
        self.problem = ""  # why the typed folder could not be made

    def accept(self) -> None:
        chosen = self.selectedFiles()
        if chosen:
            folder = Path(chosen[0])
            if not folder.exists():
                try:
                    folder.mkdir(parents=True)
                except OSError as exc:
                    self.problem = f"Cannot create {folder}: {exc.strerror or exc}"
                    QMessageBox.warning(self, "New library", self.problem)
                    return
        super().accept()
