"""The page shown when no library is open: create or open one (or the demo library)."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QPushButton, QStyle, QVBoxLayout, QWidget


class WelcomePage(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel(
            "<h2>No fabric library is open</h2>"
            "A library is a folder holding the catalogue of your fabric photos, "
            "their labels and the trained search models."
        )
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.new_button = QPushButton(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogNewFolder), "New library…"
        )
        self.open_button = QPushButton(
            self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon), "Open library…"
        )
        self.demo_button = QPushButton("Open the demo library")
        # Why the last library could not be opened (damaged, newer, unreadable): shown here,
        # where the user chooses what to open instead.
        self.problem = QLabel()
        self.problem.setWordWrap(True)
        self.problem.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.problem.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.problem.setStyleSheet("color: #b00020; font-weight: bold;")
        self.problem.setVisible(False)
        # "Preparing the demo library… 40 %" while the demo builds in the background.
        self.preparing = QLabel()
        self.preparing.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preparing.setVisible(False)
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        layout.addWidget(self.title)
        layout.addWidget(self.problem)
        for b in (self.new_button, self.open_button, self.demo_button):
            b.setMinimumWidth(220)
            layout.addWidget(b, 0, Qt.AlignmentFlag.AlignHCenter)
        layout.addWidget(self.preparing)
        layout.addStretch(2)

    def show_preparing(self, text: str | None) -> None:
        """The demo's progress under its button (None: not preparing); the button waits."""
        self.preparing.setText(text or "")
        self.preparing.setVisible(text is not None)
        self.demo_button.setEnabled(text is None)
