"""Colour palette swatches: the HSV quantisation drawn as proportional bars or chips."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

from fabricsearch.colour import COLOUR_NAMES


def palette_colour(row: np.ndarray) -> QColor:
    """QColor of one palette row (OpenCV HSV: h 0–180, s and v 0–255)."""
    h, s, v = (float(x) for x in row[:3])
    return QColor.fromHsv(int(round(h * 2)) % 360, int(np.clip(s, 0, 255)), int(np.clip(v, 0, 255)))


def palette_entries(
    palette: np.ndarray | None, min_prop: float = 0.0
) -> list[tuple[str, QColor, float]]:
    """(name, colour, proportion) of present classes, largest first."""
    if palette is None:
        return []
    pal = np.asarray(palette, dtype=np.float32).reshape(len(COLOUR_NAMES), 4)
    out = [
        (COLOUR_NAMES[i], palette_colour(pal[i]), float(pal[i, 3]))
        for i in range(len(COLOUR_NAMES))
        if pal[i, 3] > min_prop
    ]
    out.sort(key=lambda e: -e[2])
    return out


def paint_chips(
    painter: QPainter, rect: QRectF, palette: np.ndarray | None, max_chips: int = 5
) -> None:
    """Draw the main colours as a proportional strip inside `rect` (used in result cells)."""
    entries = palette_entries(palette, 0.01)[:max_chips]
    total = sum(e[2] for e in entries)
    if not entries or total <= 0:
        return
    x = rect.left()
    painter.save()
    painter.setPen(Qt.PenStyle.NoPen)
    for _name, colour, prop in entries:
        w = rect.width() * prop / total
        painter.setBrush(colour)
        painter.drawRect(QRectF(x, rect.top(), w, rect.height()))
        x += w
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(QColor(0, 0, 0, 60), 1))
    painter.drawRect(rect)
    painter.restore()


class PaletteBar(QWidget):
    """The full quantisation as labelled swatches with their proportions."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._entries: list[tuple[str, QColor, float]] = []
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setMinimumHeight(44)

    def set_palette(self, palette: np.ndarray | None) -> None:
        self._entries = palette_entries(palette, 0.0)
        self.setToolTip(
            "\n".join(f"{name}: {prop:.0%}" for name, _c, prop in self._entries) or "no colours"
        )
        self.update()

    def entries(self) -> list[tuple[str, float]]:
        return [(name, prop) for name, _c, prop in self._entries]

    def sizeHint(self) -> QSize:
        return QSize(240, 44)

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        bar = QRectF(0.5, 0.5, self.width() - 1, 20)
        total = sum(e[2] for e in self._entries)
        if total <= 0:
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(bar, Qt.AlignmentFlag.AlignCenter, "—")
            return
        x = bar.left()
        fm = painter.fontMetrics()
        for name, colour, prop in self._entries:
            w = bar.width() * prop / total
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawRect(QRectF(x, bar.top(), w, bar.height()))
            label = f"{name} {prop:.0%}"
            if fm.horizontalAdvance(label) + 4 < w:
                painter.setPen(self.palette().text().color())
                painter.drawText(
                    QRectF(x, bar.bottom() + 2, w, fm.height()),
                    Qt.AlignmentFlag.AlignLeft,
                    label,
                )
            elif fm.horizontalAdvance(f"{prop:.0%}") + 2 < w:
                painter.setPen(self.palette().text().color())
                painter.drawText(
                    QRectF(x, bar.bottom() + 2, w, fm.height()),
                    Qt.AlignmentFlag.AlignLeft,
                    f"{prop:.0%}",
                )
            x += w
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.setPen(QPen(QColor(0, 0, 0, 70), 1))
        painter.drawRect(bar)
