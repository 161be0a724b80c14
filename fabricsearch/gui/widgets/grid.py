"""The thumbnail grid view shared by the library browser and the search results."""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import QAbstractItemView, QListView, QWidget

from fabricsearch.gui.models import RecordRole, ThumbnailModel, icon_grid_size


class ThumbnailGrid(QListView):
    """QListView in icon mode with uniform cells (smooth over 100,000 images)."""

    selectionChangedIds = Signal(list)  # image ids in selection order
    activatedId = Signal(int)  # double-click / Enter

    def __init__(self, parent: QWidget | None = None, text_lines: int = 1, extra: int = 0) -> None:
        super().__init__(parent)
        self._text_lines = text_lines
        self._extra = extra
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.setSpacing(4)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.doubleClicked.connect(self._on_activated)
        self.activated.connect(self._on_activated)
        self.set_thumb_size(128)

    def setModel(self, model: ThumbnailModel) -> None:  # type: ignore[override]
        super().setModel(model)
        self.selectionModel().selectionChanged.connect(self._emit_selection)
        model.modelReset.connect(self._emit_selection)

    def set_thumb_size(self, px: int) -> None:
        self.setIconSize(QSize(px, px))
        self.setGridSize(icon_grid_size(px, self._text_lines, self._extra))
        model = self.model()
        if isinstance(model, ThumbnailModel):
            model.set_icon_size(px, self.devicePixelRatioF())

    def selected_ids(self) -> list[int]:
        sm = self.selectionModel()
        if sm is None:
            return []
        rows = sorted(i.row() for i in sm.selectedIndexes())
        return [self.model().index(r, 0).data(RecordRole).id for r in rows]

    def select_ids(self, ids: list[int]) -> None:
        from PySide6.QtCore import QItemSelection, QItemSelectionModel

        model = self.model()
        selection = QItemSelection()
        first = None
        for image_id in ids:
            row = model.row_of(image_id)
            if row is None:
                continue
            idx = model.index(row, 0)
            selection.select(idx, idx)
            first = first or idx
        flags = QItemSelectionModel.SelectionFlag.ClearAndSelect
        self.selectionModel().select(selection, flags)
        if first is not None:
            self.selectionModel().setCurrentIndex(first, QItemSelectionModel.SelectionFlag.NoUpdate)
            self.scrollTo(first)

    def _emit_selection(self, *_args: object) -> None:
        self.selectionChangedIds.emit(self.selected_ids())

    def _on_activated(self, index) -> None:  # noqa: ANN001 - QModelIndex
        rec = index.data(RecordRole)
        if rec is not None:
            self.activatedId.emit(rec.id)
