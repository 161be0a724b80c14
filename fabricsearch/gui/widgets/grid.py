"""The thumbnail grid view shared by the library browser and the search results."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import (
    QItemSelection,
    QItemSelectionModel,
    QModelIndex,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QRectF,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from fabricsearch.gui.models import (
    ImageIdRole,
    RecordRole,
    SuggestionRole,
    ThumbnailModel,
    icon_grid_size,
)

FRAME_WIDTH = 3  # the selection frame around a thumbnail, in device-independent pixels
ICON_MARGIN = 4  # between the cell's edge and the thumbnail (room for the frame)
BADGE = 10  # the labelled / suggested / unlabelled dot beside the name

#: Badge colours: labelled (filled green), suggested by the model (filled blue), unlabelled
#: (a grey ring). Drawn beside the name, never over the picture.
BADGE_COLOURS = {
    "labelled": QColor(46, 139, 87),
    "suggested": QColor(52, 110, 200),
    "unlabelled": QColor(150, 150, 150),
}


def label_state(record: Any, suggestion: Any = None) -> str:
    if record.labelled:
        return "labelled"
    if suggestion is not None:
        return "suggested"
    return "unlabelled"


def paint_badge(painter: QPainter, rect: QRectF, record: Any, suggestion: Any = None) -> str:
    """The record's label state as a small dot in `rect`; returns the state."""
    state = label_state(record, suggestion)
    colour = BADGE_COLOURS[state]
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if state == "unlabelled":
        painter.setPen(QPen(colour, 1.5))
        painter.setBrush(Qt.BrushStyle.NoBrush)
    else:
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
    painter.drawEllipse(rect.adjusted(1, 1, -1, -1))
    painter.restore()
    return state


def fit_rect(box: QRectF, w: float, h: float) -> QRect:
    """A ``w`` × ``h`` picture centred in ``box``, scaled down (never up) to fit inside it
    with its aspect kept."""
    if w <= 0 or h <= 0:
        return box.toAlignedRect()
    scale = min(1.0, box.width() / w, box.height() / h)
    w, h = max(1, round(w * scale)), max(1, round(h * scale))
    return QRect(
        round(box.left() + (box.width() - w) / 2), round(box.top() + (box.height() - h) / 2), w, h
    )


class ThumbnailDelegate(QStyledItemDelegate):
    """A thumbnail with its name below; selection is a frame around the picture.

    The style's default draws the selection as a highlight over the icon (and tints the
    icon's pixmap), which turns a maroon fabric navy in a tool whose job is colour: here the
    pixels are drawn exactly as they are, selected or not."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        painter.save()
        picture = self.paint_frame_and_thumbnail(painter, opt, index)
        text = index.data(Qt.ItemDataRole.DisplayRole)
        rec = index.data(RecordRole)
        if isinstance(text, str) and text:
            cell = QRectF(opt.rect)
            line = QRectF(cell.left() + 2, picture.bottom() + 4, cell.width() - 4, 16)
            if rec is not None:
                badge = QRectF(line.left(), line.top() + 3, BADGE, BADGE)
                paint_badge(painter, badge, rec, index.data(SuggestionRole))
                line.adjust(BADGE + 2, 0, 0, 0)
            painter.setPen(opt.palette.text().color())
            painter.setFont(opt.font)
            elided = painter.fontMetrics().elidedText(
                text, Qt.TextElideMode.ElideMiddle, int(line.width())
            )
            painter.drawText(
                line, Qt.AlignmentFlag.AlignHCenter | Qt.AlignmentFlag.AlignTop, elided
            )
        painter.restore()

    @staticmethod
    def thumbnail_rect(opt: QStyleOptionViewItem) -> QRectF:
        """The square the thumbnail is fitted in: top of the cell, the view's icon size.

        Not ``opt.decorationSize`` once `initStyleOption` has run: that is the pixmap's own
        size, so a portrait thumbnail made its square as narrow as itself and then overflowed
        it, onto the row above and under its name (issue 24 item 9)."""
        cell = QRectF(opt.rect)
        view = opt.widget
        if isinstance(view, QAbstractItemView) and view.iconSize().isValid():
            px = view.iconSize().width()
        else:
            px = max(opt.decorationSize.width(), opt.decorationSize.height())
        px = min(px, max(1, int(cell.width()) - 2 * ICON_MARGIN))
        return QRectF(cell.left() + (cell.width() - px) / 2, cell.top() + ICON_MARGIN, px, px)

    def paint_frame_and_thumbnail(
        self,
        painter: QPainter,
        opt: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> QRectF:
        """Draw the thumbnail untouched and, when selected, a frame around it; returns the
        thumbnail's square."""
        box = self.thumbnail_rect(opt)
        pm = index.data(Qt.ItemDataRole.DecorationRole)
        picture = box.toAlignedRect()
        if isinstance(pm, QPixmap) and not pm.isNull():
            dpr = pm.devicePixelRatio() or 1.0
            picture = fit_rect(box, pm.width() / dpr, pm.height() / dpr)
            painter.drawPixmap(picture, pm)
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)
        focused = bool(opt.state & QStyle.StateFlag.State_HasFocus)
        if selected:
            colour = opt.palette.highlight().color()
            f = FRAME_WIDTH
            outer = picture.adjusted(-f, -f, f, f)
            # Four bands outside the picture: not one pixel of the fabric is painted over.
            for band in (
                QRect(outer.left(), outer.top(), outer.width(), f),
                QRect(outer.left(), picture.bottom() + 1, outer.width(), f),
                QRect(outer.left(), picture.top(), f, picture.height()),
                QRect(picture.right() + 1, picture.top(), f, picture.height()),
            ):
                painter.fillRect(band, colour)
        elif focused:
            pen = QPen(opt.palette.highlight().color(), 1, Qt.PenStyle.DotLine)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(picture.adjusted(-2, -2, 1, 1))
        return box

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        return icon_grid_size(option.decorationSize.width())


@dataclass(frozen=True)
class ViewState:
    """What the user sees of a grid, by image id: kept across a model reset (a reload)."""

    selected: list[int]
    current: int | None
    anchor: int | None  # the image whose place on screen is kept
    offset: int  # the anchor's top, in viewport pixels
    value: int  # the scroll bar's value (used when the anchor is gone)


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
        self.setItemDelegate(ThumbnailDelegate(self))
        # Thumbnails drag out as the original files (to a file manager, a mail, …).
        self.setDragEnabled(True)
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.doubleClicked.connect(self._on_activated)
        self.activated.connect(self._on_activated)
        # A scroll position to restore, or an image to bring into view, once the batched
        # layout has reached it (rows are laid out 500 at a time after a reset).
        self._pending_view: ViewState | None = None
        self._pending_show: int | None = None
        self._quiet = False
        self.verticalScrollBar().actionTriggered.connect(self._user_scrolled)
        self.set_thumb_size(128)

    def setModel(self, model: ThumbnailModel) -> None:  # type: ignore[override]
        old = self.selectionModel()
        super().setModel(model)
        if old is not None:  # Qt leaves the old one to us (it would keep the old model)
            old.deleteLater()
        self.selectionModel().selectionChanged.connect(self._emit_selection)
        model.modelReset.connect(self._emit_selection)

    # --- keeping the view across a reload --------------------------------------------------
    def view_state(self) -> ViewState:
        """The selection, the current image and the scroll position, by image id."""
        model = self.model()
        current = self.currentIndex()
        current_id = current.data(ImageIdRole) if current.isValid() else None
        anchor, offset = None, 0
        if model is not None and model.rowCount():
            viewport = self.viewport().rect()
            if current.isValid() and self.visualRect(current).intersects(viewport):
                anchor, offset = current_id, self.visualRect(current).top()
            else:
                grid = self.gridSize()
                top = self.indexAt(
                    viewport.topLeft() + QPoint(grid.width() // 2, grid.height() // 2)
                )
                if top.isValid():
                    anchor, offset = top.data(ImageIdRole), self.visualRect(top).top()
        return ViewState(
            self.selected_ids(), current_id, anchor, offset, self.verticalScrollBar().value()
        )

    def restore_view(self, state: ViewState) -> None:
        """Select the same images again and put the anchor image where it was on screen."""
        model = self.model()
        if model is None:
            return
        selection = QItemSelection()
        for image_id in state.selected:
            row = model.row_of(image_id)
            if row is not None:
                idx = model.index(row, 0)
                selection.select(idx, idx)
        sm = self.selectionModel()
        sm.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        row = model.row_of(state.current) if state.current is not None else None
        if row is not None:
            sm.setCurrentIndex(model.index(row, 0), QItemSelectionModel.SelectionFlag.NoUpdate)
        self._pending_view = state
        self._apply_pending()

    @contextmanager
    def keeping_view(self) -> Iterator[None]:
        """Reset the model inside this block: the selection, the current image and the scroll
        position survive it, by image id, and the selection is announced once (issue 24
        item 10: a watched folder's import reloaded the grid, which jumped near the top)."""
        state = self.view_state()
        self._quiet = True
        try:
            yield
            self.restore_view(state)
        finally:
            self._quiet = False
        self._emit_selection()

    def updateGeometries(self) -> None:  # noqa: N802 - Qt: called as the layout advances
        super().updateGeometries()
        self._apply_pending()

    def _apply_pending(self) -> None:
        model = self.model()
        if model is None or (self._pending_view is None and self._pending_show is None):
            return
        n = model.rowCount()
        laid_out = n == 0 or self.visualRect(model.index(n - 1, 0)).isValid()
        bar = self.verticalScrollBar()
        state = self._pending_view
        if state is not None:
            row = model.row_of(state.anchor) if state.anchor is not None else None
            target = None
            if row is not None:
                rect = self.visualRect(model.index(row, 0))
                if rect.isValid():
                    target = bar.value() + rect.top() - state.offset
            elif state.anchor is None or laid_out or state.value <= bar.maximum():
                target = state.value  # the anchor is gone: the same scroll position
            if target is None or (target > bar.maximum() and not laid_out):
                return  # not laid out that far yet: the next updateGeometries tries again
            bar.setValue(target)
            self._pending_view = None
        if self._pending_show is not None:
            row = model.row_of(self._pending_show)
            idx = model.index(row, 0) if row is not None else QModelIndex()
            if idx.isValid() and not self.visualRect(idx).isValid() and not laid_out:
                return
            self._pending_show = None
            if idx.isValid():
                self.scrollTo(idx)

    def _user_scrolled(self, *_args: object) -> None:
        # The user moved: what was pending from a reload no longer applies.
        self._pending_view = None
        self._pending_show = None

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802
        self._user_scrolled()
        super().keyPressEvent(event)

    def mousePressEvent(self, event: Any) -> None:  # noqa: N802
        self._user_scrolled()
        super().mousePressEvent(event)

    def wheelEvent(self, event: Any) -> None:  # noqa: N802
        self._user_scrolled()
        super().wheelEvent(event)

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
        model = self.model()
        ids = (model.index(r, 0).data(ImageIdRole) for r in rows)
        return [i for i in ids if i is not None]  # rows still loading have no id yet

    def select_ids(self, ids: list[int]) -> None:
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
            # Brought into view once laid out: just after a reset, a row past the first
            # batch has no place yet and scrollTo would do nothing.
            self._pending_show = first.data(ImageIdRole)
            self._apply_pending()

    def _emit_selection(self, *_args: object) -> None:
        if not self._quiet:
            self.selectionChangedIds.emit(self.selected_ids())

    def _on_activated(self, index) -> None:  # noqa: ANN001 - QModelIndex
        rec = index.data(RecordRole)
        if rec is not None:
            self.activatedId.emit(rec.id)
