"""A small line plot drawn with QPainter (loss curves, precision–recall, precision@k).

Deliberately minimal so the application needs no chart dependency."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

SERIES_COLOURS = ("#1f6fb2", "#d9822b", "#3a9b5c", "#b23a48", "#7f5fb2", "#6b6b6b")


def _nice(v: float) -> str:
    if v == 0 or not math.isfinite(v):
        return "0"
    if float(v).is_integer() and abs(v) < 1e6:
        return f"{int(v):,}"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


class LinePlot(QWidget):
    """Named series of (x, y) points with axes, bounds and a legend."""

    def __init__(
        self, title: str = "", x_label: str = "", y_label: str = "", parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.x_label = x_label
        self.y_label = y_label
        self.y_range: tuple[float, float] | None = None  # fixed range (e.g. 0–1) or auto
        self.x_range: tuple[float, float] | None = None
        self._series: dict[str, list[tuple[float, float]]] = {}
        self._markers: set[str] = set()
        self.setMinimumSize(240, 160)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def sizeHint(self) -> QSize:
        return QSize(420, 240)

    def clear(self) -> None:
        self._series.clear()
        self.update()

    def add_point(self, name: str, x: float, y: float) -> None:
        if math.isfinite(x) and math.isfinite(y):
            self._series.setdefault(name, []).append((float(x), float(y)))
            self.update()

    def set_series(
        self, name: str, xs: Sequence[float], ys: Sequence[float], markers: bool = False
    ) -> None:
        self._series[name] = [
            (float(x), float(y))
            for x, y in zip(xs, ys, strict=False)
            if math.isfinite(x) and math.isfinite(y)
        ]
        if markers:
            self._markers.add(name)
        self.update()

    def series(self, name: str) -> list[tuple[float, float]]:
        return list(self._series.get(name, []))

    def series_names(self) -> list[str]:
        return list(self._series)

    def _bounds(self) -> tuple[float, float, float, float]:
        pts = [p for s in self._series.values() for p in s]
        if self.x_range:
            x0, x1 = self.x_range
        else:
            x0 = min((p[0] for p in pts), default=0.0)
            x1 = max((p[0] for p in pts), default=1.0)
        if self.y_range:
            y0, y1 = self.y_range
        else:
            y0 = min((p[1] for p in pts), default=0.0)
            y1 = max((p[1] for p in pts), default=1.0)
            y0 = min(y0, 0.0) if y0 >= 0 and y0 < 0.25 * y1 else y0
        if x1 <= x0:
            x1 = x0 + 1
        if y1 <= y0:
            y1 = y0 + (abs(y0) or 1.0) * 0.1
        return x0, x1, y0, y1

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        pal = self.palette()
        painter.fillRect(self.rect(), pal.base())
        fm = painter.fontMetrics()
        left = fm.horizontalAdvance("0.000") + 12
        top = fm.height() + 8 if self.title else 8
        plot = QRectF(
            left, top, self.width() - left - 10, self.height() - top - fm.height() * 2 - 8
        )
        text = pal.text().color()
        muted = pal.placeholderText().color()
        if self.title:
            painter.setPen(text)
            painter.drawText(
                QRectF(0, 2, self.width(), fm.height() + 4),
                Qt.AlignmentFlag.AlignHCenter,
                self.title,
            )
        painter.setPen(QPen(muted, 1))
        painter.drawRect(plot)
        x0, x1, y0, y1 = self._bounds()

        def to_px(x: float, y: float) -> QPointF:
            return QPointF(
                plot.left() + (x - x0) / (x1 - x0) * plot.width(),
                plot.bottom() - (y - y0) / (y1 - y0) * plot.height(),
            )

        # grid and ticks at the bounds and middle
        for frac in (0.0, 0.5, 1.0):
            yv = y0 + frac * (y1 - y0)
            py = plot.bottom() - frac * plot.height()
            painter.setPen(
                QPen(QColor(muted.red(), muted.green(), muted.blue(), 60), 1, Qt.PenStyle.DotLine)
            )
            painter.drawLine(QPointF(plot.left(), py), QPointF(plot.right(), py))
            painter.setPen(muted)
            painter.drawText(
                QRectF(0, py - fm.height() / 2, left - 4, fm.height()),
                Qt.AlignmentFlag.AlignRight,
                _nice(yv),
            )
        for frac, align in ((0.0, Qt.AlignmentFlag.AlignLeft), (1.0, Qt.AlignmentFlag.AlignRight)):
            xv = x0 + frac * (x1 - x0)
            px = plot.left() + frac * plot.width()
            rect = QRectF(px - 60 if frac else px, plot.bottom() + 2, 60, fm.height())
            painter.drawText(rect, align, _nice(xv))
        if self.x_label:
            painter.drawText(
                QRectF(plot.left(), plot.bottom() + 2, plot.width(), fm.height()),
                Qt.AlignmentFlag.AlignHCenter,
                self.x_label,
            )
        # series
        legend_x = plot.left() + 6
        legend_y = plot.bottom() + fm.height() + 4
        for i, (name, pts) in enumerate(self._series.items()):
            colour = QColor(SERIES_COLOURS[i % len(SERIES_COLOURS)])
            painter.setPen(QPen(colour, 2 if i == 0 else 1.5))
            if len(pts) == 1 or name in self._markers:
                painter.setBrush(colour)
                for x, y in pts:
                    painter.drawEllipse(to_px(x, y), 2.5, 2.5)
                painter.setBrush(Qt.BrushStyle.NoBrush)
            if len(pts) > 1:
                path = QPainterPath(to_px(*pts[0]))
                for x, y in pts[1:]:
                    path.lineTo(to_px(x, y))
                painter.drawPath(path)
            painter.fillRect(QRectF(legend_x, legend_y + fm.height() / 2 - 2, 12, 4), colour)
            painter.setPen(text)
            label = name if not pts else f"{name} {_nice(pts[-1][1])}"
            painter.drawText(QPointF(legend_x + 16, legend_y + fm.ascent()), label)
            legend_x += 16 + fm.horizontalAdvance(label) + 14
        if not self._series:
            painter.setPen(muted)
            painter.drawText(plot, Qt.AlignmentFlag.AlignCenter, "waiting for data…")
