"""A full-screen preview of one photo (Space on a grid): ←/→ move through the grid, Esc or
Space close it. The cached 512 px thumbnail shows at once; the photo itself, decoded at the
screen's size off the GUI thread, replaces it when read."""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import QObject, QRectF, QRunnable, QSize, Qt, QThreadPool, Signal
from PySide6.QtGui import QColor, QImage, QImageReader, QKeyEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QWidget

from fabricsearch.catalogue import ImageRecord

log = logging.getLogger(__name__)

CAPTION_HEIGHT = 36  # the strip below the photo: name, position, size


class _OriginalSignals(QObject):
    loaded = Signal(int, QImage)  # generation, image


class _LoadOriginal(QRunnable):
    """Decode a photo no larger than ``target`` (orientation applied), off the GUI thread."""

    def __init__(
        self, path: Path, target: QSize, generation: int, signals: _OriginalSignals
    ) -> None:
        super().__init__()
        self.path, self.target, self.generation, self.signals = path, target, generation, signals

    def run(self) -> None:
        reader = QImageReader(str(self.path))
        reader.setAutoTransform(True)
        size = reader.size()
        if size.isValid() and (
            size.width() > self.target.width() or size.height() > self.target.height()
        ):
            reader.setScaledSize(size.scaled(self.target, Qt.AspectRatioMode.KeepAspectRatio))
        image = reader.read()
        if image.isNull():
            log.debug("preview cannot read %s: %s", self.path, reader.errorString())
            return
        self.signals.loaded.emit(self.generation, image)


class FullScreenPreview(QWidget):
    """The photo on black, fitted to the screen, with its name and place in the grid below."""

    stepRequested = Signal(int)  # -1: the previous image of the grid, +1: the next

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("Preview — fabricsearch")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.record: ImageRecord | None = None
        self.caption = ""
        self._image: QImage | None = None
        self._original = False  # the photo itself is shown (not its thumbnail)
        self._generation = 0
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        self._signals = _OriginalSignals()
        self._signals.loaded.connect(self._on_original)

    # --- content ------------------------------------------------------------------------
    def show_record(self, record: ImageRecord, image: QImage | None, position: str = "") -> None:
        """Show ``record``: ``image`` (its thumbnail, None while it loads) at once, the photo
        when decoded. ``position``: "12 / 340"."""
        self.record = record
        self._image = image if image is not None and not image.isNull() else None
        self._original = False
        parts = [record.path.name, position, f"{record.width} × {record.height} px"]
        self.caption = "   ·   ".join(p for p in parts if p)
        self.setWindowTitle(f"{record.path.name} — fabricsearch")
        self._generation += 1
        self.pool.clear()  # an older photo still queued is no longer wanted
        self.pool.start(
            _LoadOriginal(Path(record.path), self._target(), self._generation, self._signals)
        )
        self.update()

    def update_image(self, image_id: int, image: QImage) -> None:
        """A thumbnail arrived: shown if it is this record's and nothing better is."""
        if self.record is not None and self.record.id == image_id and self._image is None:
            self._image = image
            self.update()

    def image(self) -> QImage | None:
        return self._image

    def shows_original(self) -> bool:
        return self._original

    def stop(self) -> None:
        self._generation += 1
        self.pool.clear()

    def _target(self) -> QSize:
        screen = self.screen()
        size = screen.size() if screen is not None else QSize(1920, 1080)
        dpr = self.devicePixelRatioF()
        return QSize(round(size.width() * dpr), round(size.height() * dpr))

    def _on_original(self, generation: int, image: QImage) -> None:
        if generation == self._generation:
            self._image, self._original = image, True
            self.update()

    # --- keys, painting -------------------------------------------------------------------
    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Up, Qt.Key.Key_PageUp, Qt.Key.Key_Backspace):
            self.stepRequested.emit(-1)
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Down, Qt.Key.Key_PageDown):
            self.stepRequested.emit(1)
        elif key in (Qt.Key.Key_Escape, Qt.Key.Key_Space):
            self.close()
        else:
            super().keyPressEvent(event)

    def closeEvent(self, event: object) -> None:  # noqa: N802
        self.stop()
        super().closeEvent(event)

    def picture_rect(self) -> QRectF:
        """Where the photo is drawn: fitted above the caption, aspect kept, centred."""
        if self._image is None:
            return QRectF()
        area = QRectF(self.rect()).adjusted(8, 8, -8, -CAPTION_HEIGHT)
        dpr = self._image.devicePixelRatio() or 1.0
        w, h = self._image.width() / dpr, self._image.height() / dpr
        scale = min(area.width() / w, area.height() / h)
        if not self._original:
            scale = min(scale, 2.0)  # a 512 px thumbnail blown up further only blurs
        w, h = w * scale, h * scale
        return QRectF(
            area.left() + (area.width() - w) / 2, area.top() + (area.height() - h) / 2, w, h
        )

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(16, 16, 16))
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        if self._image is not None:
            painter.drawImage(self.picture_rect(), self._image)
        else:
            painter.setPen(QColor(170, 170, 170))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "loading…")
        painter.setPen(QColor(230, 230, 230))
        strip = QRectF(0, self.height() - CAPTION_HEIGHT, self.width(), CAPTION_HEIGHT)
        text = f"{self.caption}      ←/→ previous/next · Esc closes"
        painter.drawText(strip, Qt.AlignmentFlag.AlignCenter, text)
        painter.end()
