"""Thumbnail zoom: the offered sizes as a small slider (the status bar) and the step that
Ctrl+= / Ctrl+− take through them."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QSlider, QWidget


def step_size(sizes: Sequence[int], current: int, step: int) -> int:
    """The offered size ``step`` places from ``current`` (clamped at both ends); a size not
    offered steps from the nearest one."""
    ordered = sorted(sizes)
    here = min(range(len(ordered)), key=lambda i: (abs(ordered[i] - current), ordered[i]))
    return ordered[max(0, min(len(ordered) - 1, here + step))]


class ZoomSlider(QSlider):
    """One notch per offered thumbnail size; `sizeChanged(px)` when the user moves it."""

    sizeChanged = Signal(int)

    def __init__(self, sizes: Sequence[int], parent: QWidget | None = None) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.sizes = sorted(sizes)
        self.setRange(0, len(self.sizes) - 1)
        self.setPageStep(1)
        self.setTickPosition(QSlider.TickPosition.TicksBelow)
        self.setTickInterval(1)
        self.setFixedWidth(90)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows stay with the grid
        self.setToolTip("Thumbnail size (Ctrl+= larger, Ctrl+− smaller)")
        self.valueChanged.connect(lambda i: self.sizeChanged.emit(self.sizes[i]))

    def px(self) -> int:
        """The thumbnail size shown."""
        return self.sizes[self.value()]

    def set_size(self, px: int) -> None:
        """Show ``px`` (the nearest offered size) without announcing it."""
        nearest = step_size(self.sizes, px, 0)
        self.blockSignals(True)
        self.setValue(self.sizes.index(nearest))
        self.blockSignals(False)
