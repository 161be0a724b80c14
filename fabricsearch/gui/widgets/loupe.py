"""The loupe: the query and the selected image side by side at 100 % or 200 %, panning
together, to compare weave and yarn. Both photos are decoded at full size in a worker."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.jobs import CancelToken, ProgressFn, report

ZOOMS = (1, 2)


def _qimage(rgb: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def load_pair(
    query: Any,
    crop: Any,
    path: Any,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[QImage | None, QImage | None]:
    """Worker body: the query (its searched region when cropped) and the selected image, at
    their original resolution."""
    from fabricsearch.services.search import load_rgb

    report(progress, "decode", 0, 2, "images")
    left = None
    if query is not None:
        rgb = load_rgb(query.path) if query.path is not None else query.image
        if crop is not None:
            x, y, w, h = crop
            rgb = rgb[y : y + h, x : x + w]
        left = _qimage(rgb)
    right = _qimage(load_rgb(path)) if path is not None else None
    return left, right


class _Pane(QScrollArea):
    def __init__(self) -> None:
        super().__init__()
        self.label = QLabel()
        self.label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self.setWidget(self.label)
        self.setWidgetResizable(False)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.image: QImage | None = None
        self.setMinimumSize(240, 240)

    def show_image(self, image: QImage | None, zoom: int, text: str = "") -> None:
        self.image = image
        if image is None or image.isNull():
            self.label.setPixmap(QPixmap())
            self.label.setText(text)
            self.label.adjustSize()
            return
        # Nearest-neighbour: at 200 % each pixel of the photo is a 2 × 2 block, not a blur.
        scaled = image.scaled(
            image.width() * zoom,
            image.height() * zoom,
            Qt.AspectRatioMode.IgnoreAspectRatio,
            Qt.TransformationMode.FastTransformation,
        )
        pm = QPixmap.fromImage(scaled)
        pm.setDevicePixelRatio(self.devicePixelRatioF())  # 100 % = one photo pixel per pixel
        self.label.setPixmap(pm)
        self.label.adjustSize()


class LoupeWindow(QDialog):
    """Two scroll areas whose scroll bars follow each other."""

    def __init__(self, runner: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.setWindowTitle("Loupe")
        self.setModal(False)
        self.resize(1000, 620)
        self.zoom = 1
        self._loading = False
        self._key: Any = None
        self.left = _Pane()
        self.right = _Pane()
        self.left_title = QLabel("Query")
        self.right_title = QLabel("Selected")
        self.zoom_buttons = QButtonGroup(self)
        zoom_row = QHBoxLayout()
        zoom_row.addWidget(QLabel("Zoom"))
        for z in ZOOMS:
            b = QRadioButton(f"{100 * z} %")
            b.setChecked(z == self.zoom)
            self.zoom_buttons.addButton(b, z)
            zoom_row.addWidget(b)
        zoom_row.addStretch(1)
        zoom_row.addWidget(QLabel("Drag a scroll bar or scroll: both sides pan together."))
        self.zoom_buttons.idClicked.connect(self.set_zoom)
        grid = QGridLayout()
        grid.addWidget(self.left_title, 0, 0)
        grid.addWidget(self.right_title, 0, 1)
        grid.addWidget(self.left, 1, 0)
        grid.addWidget(self.right, 1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(zoom_row)
        layout.addLayout(grid, 1)
        for a, b in ((self.left, self.right), (self.right, self.left)):
            a.horizontalScrollBar().valueChanged.connect(b.horizontalScrollBar().setValue)
            a.verticalScrollBar().valueChanged.connect(b.verticalScrollBar().setValue)

    def ready(self) -> bool:
        return not self._loading

    def show_pair(self, query: Any, record: Any) -> None:
        """`query`: (QueryInput, crop) or None; `record`: the selected ImageRecord or None."""
        q, crop = query if query is not None else (None, None)
        path = record.path if record is not None else None
        key = (id(q), crop, path)
        if key == self._key:
            return
        self._key = key
        name = q.name if q is not None else "no query"
        self.left_title.setText(f"Query · {name}" + (" (region)" if crop else ""))
        self.right_title.setText(f"Selected · {record.path.name}" if record else "Selected")
        self._loading = True
        for pane in (self.left, self.right):
            pane.show_image(None, self.zoom, "loading…")

        def done(pair: tuple[QImage | None, QImage | None]) -> None:
            if key != self._key:
                return
            self._loading = False
            self.left.show_image(pair[0], self.zoom, "no query")
            self.right.show_image(pair[1], self.zoom, "no image selected")

        def failed(message: str) -> None:
            if key == self._key:
                self._loading = False
                self.right.show_image(None, self.zoom, f"cannot read: {message}")

        self.runner.start(
            lambda progress=None, cancel=None: load_pair(q, crop, path, progress, cancel),
            name="loupe",
            slot="loupe",
            replace=True,
            on_finished=done,
            on_failed=failed,
        )

    def set_zoom(self, zoom: int) -> None:
        """Zoom both sides, keeping the centre of the view where it was."""
        if zoom == self.zoom and self.left.image is not None:
            return
        bars = self.left.horizontalScrollBar(), self.left.verticalScrollBar()
        centre = [(b.value() + b.pageStep() / 2) / max(1, b.maximum() + b.pageStep()) for b in bars]
        self.zoom = zoom
        button = self.zoom_buttons.button(zoom)
        if button is not None:
            button.setChecked(True)
        self.left.show_image(self.left.image, zoom, "no query")
        self.right.show_image(self.right.image, zoom, "no image selected")
        for b, c in zip(bars, centre, strict=True):
            b.setValue(round(c * (b.maximum() + b.pageStep()) - b.pageStep() / 2))

    def centre(self) -> None:
        for b in (self.left.horizontalScrollBar(), self.left.verticalScrollBar()):
            b.setValue((b.maximum() + b.minimum()) // 2)
