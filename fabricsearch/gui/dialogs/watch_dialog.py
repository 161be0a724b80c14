"""Choose the folders the window watches for new photos."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class WatchDialog(QDialog):
    def __init__(self, folders: list[Path], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Watched folders")
        self.setMinimumWidth(480)
        note = QLabel(
            "New and changed photos in these folders (and their sub-folders) are imported as "
            "they arrive, once they have stopped changing for a moment, and become searchable. "
            "Photos deleted from a folder stay in the library."
        )
        note.setWordWrap(True)
        self.list = QListWidget()
        self.list.addItems([str(f) for f in folders])
        self.add_button = QPushButton("Add folder…")
        self.remove_button = QPushButton("Stop watching")
        self.add_button.clicked.connect(self._add)
        self.remove_button.clicked.connect(self._remove)
        row = QHBoxLayout()
        row.addWidget(self.add_button)
        row.addWidget(self.remove_button)
        row.addStretch(1)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(note)
        layout.addWidget(self.list)
        layout.addLayout(row)
        layout.addWidget(buttons)

    def add_folder(self, folder: str | Path) -> None:
        if str(folder) not in self.folders_text():
            self.list.addItem(str(folder))

    def folders_text(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def folders(self) -> list[Path]:
        return [Path(t) for t in self.folders_text()]

    def _add(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Watch a folder for new photos")
        if folder:
            self.add_folder(folder)

    def _remove(self) -> None:
        for item in self.list.selectedItems():
            self.list.takeItem(self.list.row(item))
