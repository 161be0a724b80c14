"""Help ▸ About: versions, compute device, library and log file paths."""

from __future__ import annotations

import platform
import sys
from pathlib import Path

import PySide6
from PySide6.QtCore import Qt, qVersion
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QLabel, QVBoxLayout, QWidget

import fabricsearch


def about_info(library_path: Path | None, log_path: Path | None) -> dict[str, str]:
    """What the About box shows (also useful for bug reports)."""
    try:
        import torch

        torch_version = torch.__version__
        device = f"CUDA: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "CPU"
    except ImportError:
        torch_version, device = "not installed", "CPU"
    return {
        "fabricsearch": fabricsearch.__version__,
        "Python": f"{platform.python_version()} ({sys.platform})",
        "Qt": f"{qVersion()} (PySide6 {PySide6.__version__})",
        "PyTorch": torch_version,
        "Device": device,
        "Library": str(library_path) if library_path else "—",
        "Log file": str(log_path) if log_path else "—",
    }


class AboutDialog(QDialog):
    def __init__(
        self, library_path: Path | None, log_path: Path | None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("About fabricsearch")
        self.info = about_info(library_path, log_path)
        title = QLabel(
            "<h3>fabricsearch</h3>Find fabrics by photo with deep variational and structural hashing."
        )
        title.setWordWrap(True)
        form = QFormLayout()
        for key, value in self.info.items():
            label = QLabel(value)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(key, label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(title)
        layout.addLayout(form)
        layout.addWidget(buttons)
