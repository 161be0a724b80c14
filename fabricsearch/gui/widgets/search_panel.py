"""Search results: the query, a ranked thumbnail grid with scores and a compact explanation."""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QFont, QPainter, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QStyle,
    QStyleOptionViewItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.gui.models import HitRole, RecordRole, ResultsModel, ThumbnailCache
from fabricsearch.gui.widgets.grid import ThumbnailDelegate, ThumbnailGrid
from fabricsearch.gui.widgets.palette import paint_chips
from fabricsearch.search import SearchHit, SearchResult

EXTRA_HEIGHT = 30  # chip strip + explanation line below the score
PROMPT = (
    "Drop a photo of a fabric anywhere on the window, paste one "
    "(Ctrl+V) or use File ▸ Search by photo…"
)


def explanation(hit: SearchHit) -> str:
    """'colour 92 · texture 80 · tight 95' from the re-ranking breakdown (unknown parts left out)."""
    b = hit.breakdown
    parts = []
    if b.get("colour") is not None:
        parts.append(f"colour {100 * b['colour']:.0f}")
    texture = [b[k] for k in ("coarse", "fine") if b.get(k) is not None]
    if texture:
        parts.append(f"texture {100 * sum(texture) / len(texture):.0f}")
    if b.get("tightness") is not None:
        parts.append(f"tight {100 * b['tightness']:.0f}")
    return " · ".join(parts) or f"Hamming {hit.hamming}"


def search_time_ms(result: SearchResult) -> float:
    """The search's wall time: its "total" when measured (the stages are parts of it)."""
    times = result.elapsed_ms
    if "total" in times:
        return float(times["total"])
    return float(sum(times.values()))


class ResultDelegate(ThumbnailDelegate):
    """Thumbnail, rank and score, the main colours as chips, and the match explanation;
    selection is a frame around the thumbnail (never drawn over its pixels)."""

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        hit: SearchHit | None = index.data(HitRole)
        rec = index.data(RecordRole)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        painter.save()
        box = self.paint_frame_and_thumbnail(painter, opt, index)
        r = QRectF(opt.rect).adjusted(4, 4, -4, -4)
        y = box.bottom() + 4
        text_colour = opt.palette.text().color()
        painter.setPen(text_colour)
        if hit is not None:
            bold = QFont(opt.font)
            bold.setBold(True)
            painter.setFont(bold)
            painter.drawText(
                QRectF(r.left(), y, r.width(), 16), Qt.AlignmentFlag.AlignLeft, f"#{hit.rank}"
            )
            painter.drawText(
                QRectF(r.left(), y, r.width(), 16),
                Qt.AlignmentFlag.AlignRight,
                f"{hit.score:.2f}",
            )
            y += 18
            if rec is not None:
                paint_chips(painter, QRectF(r.left(), y, r.width(), 8), rec.palette)
            y += 11
            small = QFont(opt.font)
            small.setPointSizeF(max(6.5, opt.font.pointSizeF() * 0.85))
            painter.setFont(small)
            painter.setPen(opt.palette.placeholderText().color())
            text = painter.fontMetrics().elidedText(
                explanation(hit), Qt.TextElideMode.ElideRight, int(r.width())
            )
            painter.drawText(QRectF(r.left(), y, r.width(), 16), Qt.AlignmentFlag.AlignLeft, text)
        painter.restore()

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        px = option.decorationSize.width()
        return QSize(px + 56, px + 8 + 18 + EXTRA_HEIGHT)


class SearchPanel(QWidget):
    """Query summary, export buttons and the ranked result grid."""

    selectionChangedIds = Signal(list)
    activatedId = Signal(int)
    exportCsvRequested = Signal()
    exportSheetRequested = Signal()
    kChanged = Signal(int)

    def __init__(self, cache: ThumbnailCache | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.result: SearchResult | None = None
        self.model: ResultsModel | None = None
        self.grid = ThumbnailGrid(self, text_lines=1, extra=EXTRA_HEIGHT)
        self.grid.setItemDelegate(ResultDelegate(self.grid))

        self.query_thumb = QLabel()
        self.query_thumb.setFixedSize(48, 48)
        self.query_thumb.setScaledContents(False)
        self.summary = QLabel(PROMPT)
        self.summary.setWordWrap(True)
        self.k_spin = QSpinBox()
        self.k_spin.setRange(5, 500)
        self.k_spin.setValue(40)
        self.k_spin.setPrefix("top ")
        self.k_spin.setToolTip("Number of results")
        self.k_spin.setKeyboardTracking(False)  # search again on Enter or a step, not per digit
        self.k_spin.valueChanged.connect(self.kChanged)
        self.csv_button = QToolButton()
        self.csv_button.setText("CSV…")
        self.csv_button.setToolTip("Export the result list as CSV")
        self.csv_button.setIcon(
            self.style().standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton)
        )
        self.csv_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.sheet_button = QToolButton()
        self.sheet_button.setText("Contact sheet…")
        self.sheet_button.setToolTip("Export the results as a contact sheet (PNG or PDF)")
        self.sheet_button.setIcon(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileDialogContentsView)
        )
        self.sheet_button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.csv_button.clicked.connect(self.exportCsvRequested)
        self.sheet_button.clicked.connect(self.exportSheetRequested)
        self._set_export_enabled(False)

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.query_thumb)
        top.addWidget(self.summary, 1)
        top.addWidget(self.k_spin)
        top.addWidget(self.csv_button)
        top.addWidget(self.sheet_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.grid, 1)
        self.grid.selectionChangedIds.connect(self.selectionChangedIds)
        self.grid.activatedId.connect(self.activatedId)
        if cache is not None:
            self.set_cache(cache)

    def set_cache(self, cache: ThumbnailCache) -> None:
        self.model = ResultsModel(cache, self)
        self.grid.setModel(self.model)
        self.set_thumb_size(self.grid.iconSize().width())

    def set_thumb_size(self, px: int) -> None:
        self.grid.set_thumb_size(px)
        self.grid.setGridSize(QSize(px + 56 + 8, px + 8 + 18 + EXTRA_HEIGHT + 8))

    def clear(self, message: str = PROMPT) -> None:
        """No results (a new library, a failed search): nothing left to export or select."""
        self.result = None
        if self.model is not None:
            self.model.set_hits([], [])
        self.query_thumb.clear()
        self.summary.setText(message)
        self._set_export_enabled(False)

    def set_busy(self, name: str) -> None:
        self.summary.setText(f"Searching for fabrics like {name}…")

    def set_message(self, text: str) -> None:
        self.summary.setText(text)

    def set_query_pixmap(self, pm: QPixmap | None) -> None:
        if pm is None or pm.isNull():
            self.query_thumb.clear()
            return
        self.query_thumb.setPixmap(
            pm.scaled(
                48,
                48,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )

    def set_result(self, result: SearchResult, records: list, name: str) -> None:
        self.result = result
        assert self.model is not None
        self.model.set_hits(result.hits, records)
        total_ms = search_time_ms(result)
        self.summary.setText(
            f"<b>{len(result.hits)}</b> fabrics like <b>{name}</b> · model {result.model} "
            f"({result.bits} bits) · {total_ms:.0f} ms"
        )
        self._set_export_enabled(bool(result.hits))
        if result.hits:
            self.grid.select_ids([result.hits[0].image_id])

    def _set_export_enabled(self, on: bool) -> None:
        self.csv_button.setEnabled(on)
        self.sheet_button.setEnabled(on)
