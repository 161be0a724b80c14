"""Detail panel: the query and the selected image side by side, palettes and labels."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage, QPixmap
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
from fabricsearch.search import SearchHit
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


class _Side(QGroupBox):
    def __init__(self, title: str, parent: QWidget | None = None) -> None:
        super().__init__(title, parent)
        self.image = ImageLabel()
        self.palette_bar = PaletteBar()
        self.coarse = QLabel("—")
        self.fine = QLabel("—")
        self.tightness = QLabel("—")
        self.extra = QLabel("")
        self.extra.setWordWrap(True)
        for lab in (self.coarse, self.fine, self.tightness, self.extra):
            lab.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
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

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.taxonomy: Taxonomy | None = None
        self.record: ImageRecord | None = None
        self.query = _Side("Query")
        self.selected = _Side("Selected")
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
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.reveal_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(sides, 1)
        layout.addLayout(buttons)
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
    ) -> None:
        """Show the query: its image, measured palette and whatever labels are known."""
        self.query.setVisible(image is not None)
        self.query.setTitle(f"Query · {name}" if name else "Query")
        self.query.image.set_image(image)
        self.query.palette_bar.set_palette(palette)
        self._show_labels(self.query, coarse, fine, tightness)
        self.query.extra.setText(
            "" if coarse or fine or tightness is not None else "colour measured; labels unknown"
        )

    def clear_query(self) -> None:
        self.set_query(None, None)

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
        if hit is not None:
            parts = [
                f"score {hit.score:.3f}",
                f"similarity {hit.similarity:.3f}",
                f"Hamming {hit.hamming}",
            ]
            for key, value in hit.breakdown.items():
                parts.append(f"{key} {'?' if value is None else f'{value:.2f}'}")
            side.extra.setText(" · ".join(parts))
        else:
            side.extra.setText(f"{record.width} × {record.height} px")

    def update_image(self, image_id: int, image: QImage) -> None:
        if (
            self.record is not None
            and self.record.id == image_id
            and not self.selected.image.has_image()
        ):
            self.selected.image.set_image(image)
