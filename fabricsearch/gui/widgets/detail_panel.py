"""Detail panel: the query and the selected image side by side, palettes and labels. A
rectangle drawn on the query searches with that region of the photo only."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import (
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui.widgets.palette import PaletteBar
from fabricsearch.services.search import SearchHit
from fabricsearch.taxonomy import Taxonomy


class ImageLabel(QLabel):
    """A QLabel that keeps an image scaled to its size (HiDPI-aware)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: QImage | None = None
        self.setMinimumSize(120, 120)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setStyleSheet("QLabel { background: palette(base); border: 1px solid palette(mid); }")

    def set_image(self, image: QImage | None) -> None:
        self._image = image if image is not None and not image.isNull() else None
        if self._image is None:
            self.clear()
        self._rescale()

    def has_image(self) -> bool:
        return self._image is not None

    def image(self) -> QImage | None:
        return self._image

    def picture_rect(self) -> QRectF:
        """Where the scaled picture lies inside the label (device-independent pixels)."""
        pm = self.pixmap()
        if self._image is None or pm is None or pm.isNull():
            return QRectF()
        dpr = pm.devicePixelRatio() or 1.0
        w, h = pm.width() / dpr, pm.height() / dpr
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self._image is None:
            return
        dpr = self.devicePixelRatioF()
        side_w, side_h = (
            max(1, int((self.width() - 4) * dpr)),
            max(1, int((self.height() - 4) * dpr)),
        )
        pm = QPixmap.fromImage(
            self._image.scaled(
                side_w,
                side_h,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        pm.setDevicePixelRatio(dpr)
        self.setPixmap(pm)


class RegionImageLabel(ImageLabel):
    """An ImageLabel on which a rectangle can be drawn with the mouse; the region is given in
    pixels of the original photo (`original_size`), as `Searcher.search(crop=...)` takes it."""

    regionDrawn = Signal(object)  # (x, y, w, h) in original pixels

    MIN_DRAG = 6  # smaller drags are clicks, not regions

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.original_size: tuple[int, int] | None = None
        self.region: tuple[int, int, int, int] | None = None  # the region searched with
        self._origin: QPoint | None = None
        self._drag: QRect | None = None
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("Draw a rectangle to search with that part of the photo only")

    def set_region(self, region: Any, original_size: tuple[int, int] | None) -> None:
        self.region = tuple(region) if region is not None else None
        self.original_size = original_size
        self.update()

    def to_original(self, rect: QRect) -> tuple[int, int, int, int] | None:
        pic = self.picture_rect()
        if pic.isEmpty() or self.original_size is None:
            return None
        r = QRectF(rect).intersected(pic)
        if r.isEmpty():
            return None
        ow, oh = self.original_size
        sx, sy = ow / pic.width(), oh / pic.height()
        x, y = round((r.left() - pic.left()) * sx), round((r.top() - pic.top()) * sy)
        w, h = round(r.width() * sx), round(r.height() * sy)
        x, y = min(max(0, x), ow - 1), min(max(0, y), oh - 1)
        return x, y, max(1, min(w, ow - x)), max(1, min(h, oh - y))

    def from_original(self, region: tuple[int, int, int, int]) -> QRectF:
        pic = self.picture_rect()
        if pic.isEmpty() or self.original_size is None:
            return QRectF()
        ow, oh = self.original_size
        x, y, w, h = region
        return QRectF(
            pic.left() + x * pic.width() / ow,
            pic.top() + y * pic.height() / oh,
            w * pic.width() / ow,
            h * pic.height() / oh,
        )

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if event.button() == Qt.MouseButton.LeftButton and self.has_image():
            self._origin = event.position().toPoint()
            self._drag = QRect(self._origin, self._origin)
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._origin is not None:
            self._drag = QRect(self._origin, event.position().toPoint()).normalized()
            self.update()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        if self._origin is not None and event.button() == Qt.MouseButton.LeftButton:
            rect = QRect(self._origin, event.position().toPoint()).normalized()
            self._origin, self._drag = None, None
            self.update()
            if rect.width() >= self.MIN_DRAG and rect.height() >= self.MIN_DRAG:
                region = self.to_original(rect)
                if region is not None:
                    self.regionDrawn.emit(region)
        super().mouseReleaseEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802
        super().paintEvent(event)
        shown = QRectF(self._drag) if self._drag is not None else None
        if shown is None and self.region is not None:
            shown = self.from_original(self.region)
        if shown is None or shown.isEmpty():
            return
        painter = QPainter(self)
        pic = self.picture_rect()
        # Dim what is left out, then frame the region: its own pixels stay untouched.
        dim = QColor(0, 0, 0, 110)
        for band in (
            QRectF(pic.left(), pic.top(), pic.width(), shown.top() - pic.top()),
            QRectF(pic.left(), shown.bottom(), pic.width(), pic.bottom() - shown.bottom()),
            QRectF(pic.left(), shown.top(), shown.left() - pic.left(), shown.height()),
            QRectF(shown.right(), shown.top(), pic.right() - shown.right(), shown.height()),
        ):
            if band.width() > 0 and band.height() > 0:
                painter.fillRect(band, dim)
        painter.setPen(QPen(QColor(255, 210, 0), 2, Qt.PenStyle.DashLine))
        painter.drawRect(shown)
        painter.end()


def size_text(n: int) -> str:
    """A file size as a person reads it: "850 KB", "2.4 MB" (1 KB = 1,024 bytes)."""
    if n < 1024 * 1024:
        return f"{max(1, round(n / 1024)) if n else 0} KB"
    if n < 1024**3:
        return f"{n / 1024**2:.1f} MB"
    return f"{n / 1024**3:.2f} GB"


def file_info_text(record: ImageRecord) -> str:
    """The file's date (modified or taken), size and pixel dimensions, from the catalogue
    (no disk access): "2026-11-03 14:22 · 2.4 MB · 3000 × 2000 px"."""
    import time

    parts = []
    if record.mtime:
        parts.append(time.strftime("%Y-%m-%d %H:%M", time.localtime(record.mtime)))
    parts.append(size_text(int(record.size)))
    parts.append(f"{record.width} × {record.height} px")
    return " · ".join(parts)


class PathLabel(QLabel):
    """A full path on one line, elided in the middle when narrow (the file name stays
    readable); the whole path is its tooltip. It never widens the window."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._full = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    def set_path(self, path: str) -> None:
        self._full = path
        self.setToolTip(path)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        fm = self.fontMetrics()
        return QSize(fm.horizontalAdvance("x" * 8), fm.height())

    def sizeHint(self) -> QSize:  # noqa: N802
        return self.minimumSizeHint()

    def resizeEvent(self, event: object) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(0, self.contentsRect().width())
        self.setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, width))


class _Side(QGroupBox):
    def __init__(
        self, title: str, parent: QWidget | None = None, image: ImageLabel | None = None
    ) -> None:
        super().__init__(title, parent)
        self.image = image if image is not None else ImageLabel()
        self.palette_bar = PaletteBar()
        self.coarse = QLabel("—")
        self.fine = QLabel("—")
        self.tightness = QLabel("—")
        self.extra = QLabel("")
        self.extra.setWordWrap(True)
        for lab in (self.coarse, self.fine, self.tightness, self.extra):
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            # "Plaid / check › Small lattice / gingham" wraps rather than widen the window.
            lab.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Coarse", self.coarse)
        form.addRow("Fine", self.fine)
        form.addRow("Tightness", self.tightness)
        layout = QVBoxLayout(self)
        layout.addWidget(self.image, 1)
        layout.addWidget(self.palette_bar)
        layout.addLayout(form)
        layout.addWidget(self.extra)


class DetailPanel(QWidget):
    """Query | selected image, each with its palette and labels; Open and Reveal buttons."""

    openRequested = Signal(int)
    revealRequested = Signal(int)
    regionSelected = Signal(object)  # (x, y, w, h) of the query photo, or None = whole photo
    loupeRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.taxonomy: Taxonomy | None = None
        self.record: ImageRecord | None = None
        self.query = _Side("Query", image=RegionImageLabel())
        self.selected = _Side("Selected")
        self.query.image.regionDrawn.connect(self.regionSelected)
        self.whole_button = QPushButton("Whole photo")
        self.whole_button.setToolTip("Search with the whole query photo again")
        self.whole_button.clicked.connect(lambda: self.regionSelected.emit(None))
        self.whole_button.setVisible(False)
        self.query.layout().addWidget(self.whole_button)
        self.open_button = QPushButton(
            self.style().standardIcon(QStyle.StandardPixmap.SP_FileIcon), "Open"
        )
        self.reveal_button = QPushButton(
            self.style().standardIcon(QStyle.StandardPixmap.SP_DirOpenIcon), "Reveal in folder"
        )
        self.open_button.clicked.connect(
            lambda: self.record and self.openRequested.emit(self.record.id)
        )
        self.reveal_button.clicked.connect(
            lambda: self.record and self.revealRequested.emit(self.record.id)
        )
        sides = QHBoxLayout()
        sides.addWidget(self.query)
        sides.addWidget(self.selected)
        self.loupe_button = QPushButton("Loupe")
        self.loupe_button.setToolTip("Compare query and selected image at 100 % (Ctrl+L)")
        self.loupe_button.clicked.connect(self.loupeRequested)
        buttons = QHBoxLayout()
        buttons.addWidget(self.loupe_button)
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.reveal_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(sides, 1)
        layout.addLayout(buttons)
        # The selected photo's file: full path, date, size and pixels (issue 24).
        self.file_path = PathLabel()
        self.file_info = QLabel()
        self.file_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.file_info.setWordWrap(True)
        self.selected.layout().addWidget(self.file_path)
        self.selected.layout().addWidget(self.file_info)
        self.query.setVisible(False)
        self.show_record(None)

    def set_query(
        self,
        image: QImage | None,
        palette: Any,
        name: str = "",
        coarse: str | None = None,
        fine: str | None = None,
        tightness: float | None = None,
        predicted: dict[str, Any] | None = None,
    ) -> None:
        """Show the query: its image, measured palette and whatever labels are known; where
        they are unknown, what the model predicts (marked as predicted, with its confidence)."""
        self.query.setVisible(image is not None)
        self.query.setTitle(f"Query · {name}" if name else "Query")
        self.query.image.set_image(image)
        self.query.palette_bar.set_palette(palette)
        self._show_labels(self.query, coarse, fine, tightness)
        known = coarse or fine or tightness is not None
        guessed = []
        tax = self.taxonomy
        if not known and predicted:
            pc, pf = predicted.get("coarse"), predicted.get("fine")
            if pc:
                text = tax.display_coarse(pc) if tax else pc
                conf = float(predicted.get("coarse_confidence") or 0.0)
                self.query.coarse.setText(f"{text}  (predicted, {conf:.0%})")
                guessed.append("coarse")
            if pf:
                text = tax.fine_names.get(pf, pf) if tax else pf
                conf = float(predicted.get("fine_confidence") or 0.0)
                self.query.fine.setText(f"{text}  (predicted, {conf:.0%})")
                guessed.append("fine")
        if known:
            extra = ""
        elif guessed:
            extra = "colour measured; texture predicted by the model"
        else:
            extra = "colour measured; labels unknown"
        self.query.extra.setText(extra)

    def set_query_region(self, region: Any, original_size: tuple[int, int] | None) -> None:
        """Show which part of the query photo was searched with (None: all of it)."""
        self.query.image.set_region(region, original_size)
        self.whole_button.setVisible(region is not None)
        if region is not None:
            x, y, w, h = region
            self.query.extra.setText(f"region {w} × {h} px at ({x}, {y})")

    def clear_query(self) -> None:
        self.set_query(None, None)
        self.set_query_region(None, None)

    def listen(self, session: Any) -> None:
        """Follow the window's `LibrarySession`: category names as its categories change (the
        selected record itself is shown again by the window on ``selectionChanged``), and the
        search shown: its query beside the selection."""
        session.taxonomyChanged.connect(self.set_taxonomy)
        session.resultsChanged.connect(self._results_changed)

    def _results_changed(self, outcome: Any) -> None:
        """``outcome``: a `SearchOutcome` (its query shown), or None (no query)."""
        if outcome is None:
            self.clear_query()
            return
        q, result = outcome.query, outcome.result
        self.set_query(
            outcome.preview,
            result.palette,
            q.name,
            q.coarse,
            q.fine,
            q.tightness,
            predicted=getattr(result, "predicted", None),
        )
        crop = outcome.request.crop if outcome.request else None
        self.set_query_region(crop, outcome.original_size)

    def set_taxonomy(self, tax: Taxonomy) -> None:
        self.taxonomy = tax

    def _show_labels(
        self, side: _Side, coarse: str | None, fine: str | None, tightness: float | None
    ) -> None:
        tax = self.taxonomy
        side.coarse.setText(tax.display_coarse(coarse) if tax else (coarse or "—"))
        side.fine.setText((tax.fine_names.get(fine, fine) if tax else fine) if fine else "—")
        side.tightness.setText("—" if tightness is None else f"{tightness:.0f} %")

    def show_record(
        self, record: ImageRecord | None, image: QImage | None = None, hit: SearchHit | None = None
    ) -> None:
        self.record = record
        self.open_button.setEnabled(record is not None)
        self.reveal_button.setEnabled(record is not None)
        side = self.selected
        if record is None:
            side.setTitle("Selected")
            side.image.set_image(None)
            side.image.setText("Select an image")
            side.palette_bar.set_palette(None)
            self.file_path.set_path("")
            self.file_info.setText("")
            for lab in (side.coarse, side.fine, side.tightness):
                lab.setText("—")
            side.extra.setText("")
            return
        side.setTitle(f"#{hit.rank} · {record.path.name}" if hit else record.path.name)
        side.image.set_image(image)
        if image is None:
            side.image.setText("loading…")
        side.palette_bar.set_palette(record.palette)
        self._show_labels(side, record.coarse, record.fine, record.tightness)
        self.file_path.set_path(str(record.path))
        self.file_info.setText(file_info_text(record))
        if hit is not None:
            from fabricsearch.gui.models import breakdown_text

            parts = [
                f"score {hit.score:.3f}",
                f"similarity {hit.similarity:.3f}",
                f"Hamming {hit.hamming}",
            ]
            if hit.feature_similarity is not None:
                mark = "same fabric" if hit.same_fabric else "features"
                parts.insert(0, f"{mark} {hit.feature_similarity:.2f}")
            for key, value in hit.breakdown.items():
                parts.append(f"{key} {breakdown_text(hit, key, value, '?')}")
            side.extra.setText(" · ".join(parts))
        else:
            side.extra.setText("")  # the pixels are in the file's details below

    def image_failed(self, image_id: int) -> None:
        """The selected image's thumbnail cannot be read: say so, not "loading…"."""
        if self.record is not None and self.record.id == image_id:
            self.selected.image.set_image(None)
            self.selected.image.setText("no preview: the photo cannot be read")

    def update_image(self, image_id: int, image: QImage) -> None:
        if (
            self.record is not None
            and self.record.id == image_id
            and not self.selected.image.has_image()
        ):
            self.selected.image.set_image(image)
