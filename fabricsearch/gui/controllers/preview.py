"""The full-screen preview (Space on a grid) follows the grid's selection: ←/→ in it move the
selection, and the detail panel, labels and records follow as they do for a click."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject
from PySide6.QtGui import QImage

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui.models import ImageIdRole
from fabricsearch.gui.widgets.preview import FullScreenPreview

if TYPE_CHECKING:
    from fabricsearch.gui.main_window import MainWindow


class PreviewController(QObject):
    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self.w = window
        self.widget: FullScreenPreview | None = None

    def visible(self) -> bool:
        return self.widget is not None and self.widget.isVisible()

    def show(self) -> FullScreenPreview | None:
        """The first selected image full screen (None: nothing selected)."""
        records = self.w.selected_records()
        if not records:
            self.w.statusBar().showMessage("Select an image to preview.", 4000)
            return None
        if self.widget is None:
            self.widget = FullScreenPreview(self.w)
            self.widget.stepRequested.connect(self.step)
        self._fill(records[0])
        self.widget.showFullScreen()
        self.widget.raise_()
        self.widget.activateWindow()
        return self.widget

    def step(self, step: int) -> None:
        """Select the image ``step`` places from the current one in the grid shown."""
        grid = self.w.active_grid()
        model = grid.model()
        if model is None or not model.rowCount():
            return
        current = grid.currentIndex()
        row = current.row() if current.isValid() else 0
        row = max(0, min(model.rowCount() - 1, row + step))
        image_id = model.index(row, 0).data(ImageIdRole)
        if image_id is not None:
            grid.select_ids([image_id])  # on_selection fills the preview

    def selection_changed(self, record: ImageRecord) -> None:
        if self.visible():
            self._fill(record)

    def thumbnail_ready(self, image_id: int, image: QImage) -> None:
        if self.widget is not None:
            self.widget.update_image(image_id, image)

    def close(self) -> None:
        if self.widget is not None:
            self.widget.close()

    def _fill(self, record: ImageRecord) -> None:
        assert self.widget is not None
        cache: Any = self.w.cache
        image = cache.request_image(record) if cache is not None else None
        grid = self.w.active_grid()
        model = grid.model()
        row = model.row_of(record.id) if model is not None else None
        position = f"{row + 1} / {model.rowCount()}" if row is not None else ""
        self.widget.show_record(record, image, position)
