"""The full-screen preview (Space on a grid) follows the grid's selection: ←/→ in it ask the
window to move the selection (`stepRequested`), and the detail panel, labels and records
follow as they do for a click. The window says where the image stands in the grid shown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui.widgets.preview import FullScreenPreview

if TYPE_CHECKING:
    from fabricsearch.gui.controllers.library import LibraryController
    from fabricsearch.gui.session import LibrarySession
    from fabricsearch.gui.shell import Shell


class PreviewController(QObject):
    stepRequested = Signal(int)  # ←/→: the selection of the grid shown moves by this many

    def __init__(self, session: LibrarySession, shell: Shell, libraries: LibraryController) -> None:
        super().__init__(session)
        self.session = session
        self.shell = shell
        self.libraries = libraries  # its thumbnail cache
        self.widget: FullScreenPreview | None = None

    def visible(self) -> bool:
        return self.widget is not None and self.widget.isVisible()

    def show(self, position: str = "") -> FullScreenPreview | None:
        """The first selected image full screen (None: nothing selected); ``position``: where
        it stands in the grid shown ("2 / 24")."""
        records = self.shell.selected_records()
        if not records:
            self.shell.status("Select an image to preview.", 4000)
            return None
        if self.widget is None:
            self.widget = FullScreenPreview(self.shell.dialog_parent())
            self.widget.stepRequested.connect(self.stepRequested)
        self._fill(records[0], position)
        self.widget.showFullScreen()
        self.widget.raise_()
        self.widget.activateWindow()
        return self.widget

    def selection_changed(self, record: ImageRecord, position: str = "") -> None:
        if self.visible():
            self._fill(record, position)

    def thumbnail_ready(self, image_id: int, image: QImage) -> None:
        if self.widget is not None:
            self.widget.update_image(image_id, image)

    def close(self) -> None:
        if self.widget is not None:
            self.widget.close()

    def _fill(self, record: ImageRecord, position: str) -> None:
        assert self.widget is not None
        cache: Any = self.libraries.cache
        image = cache.request_image(record) if cache is not None else None
        self.widget.show_record(record, image, position)
