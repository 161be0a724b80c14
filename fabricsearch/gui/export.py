"""Export a result list: CSV, and a contact sheet as PNG or PDF (QPainter / QPdfWriter); a
photo read for the clipboard.

The contact sheet is written in a worker: it uses QImage, QPainter and QPdfWriter only, which
Qt allows off the GUI thread (QPixmap and widgets it does not)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QMarginsF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QImage, QPageLayout, QPageSize, QPainter, QPdfWriter

from fabricsearch.catalogue import ImageRecord
from fabricsearch.gui.widgets.palette import paint_chips, palette_entries
from fabricsearch.jobs import CancelToken, ProgressFn, check, report
from fabricsearch.services.search import SearchHit

CSV_FIELDS = (
    "rank",
    "image_id",
    "path",
    "score",
    "similarity",
    "hamming",
    "colour_sim",
    "coarse_sim",
    "fine_sim",
    "tightness_sim",
    "coarse",
    "fine",
    "tightness",
    "main_colours",
)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def write_csv(
    path: Path,
    hits: Sequence[SearchHit],
    records: Sequence[ImageRecord],
    metadata: Mapping[int, Any] | None = None,
) -> None:
    """One row per hit, in rank order; labels as they are now (the records), then each
    fabric's record (`metadata`: image id → `FabricMetadata`) when given."""
    from fabricsearch.catalogue.metadata import FIELDS, FabricMetadata
    from fabricsearch.services.records import metadata_cells

    by_id = {r.id: r for r in records}
    with Path(path).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(CSV_FIELDS + (tuple(FIELDS) if metadata is not None else ()))
        for hit in hits:
            rec = by_id.get(hit.image_id)
            colours = palette_entries(rec.palette if rec else None, 0.05)
            b = hit.breakdown
            writer.writerow(
                [
                    hit.rank,
                    hit.image_id,
                    str(hit.path),
                    f"{hit.score:.4f}",
                    f"{hit.similarity:.4f}",
                    hit.hamming,
                    _fmt(b.get("colour")),
                    _fmt(b.get("coarse")),
                    _fmt(b.get("fine")),
                    _fmt(b.get("tightness")),
                    (rec.coarse if rec else hit.coarse) or "",
                    (rec.fine if rec else hit.fine) or "",
                    _tight(rec.tightness if rec else hit.tightness),
                    " ".join(f"{n}:{p:.2f}" for n, _c, p in colours),
                ]
                + (
                    metadata_cells(metadata.get(hit.image_id, FabricMetadata()))
                    if metadata is not None
                    else []
                )
            )


def read_full_image(
    path: Path, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> QImage:
    """Worker body of *Edit ▸ Copy image*: the photo at full size (a null image when it
    cannot be read), orientation applied as viewers show it."""
    from PySide6.QtGui import QImageReader

    check(cancel)
    reader = QImageReader(str(path))
    reader.setAutoTransform(True)
    return reader.read()


def _tight(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def sheet_captions(hits: Sequence[SearchHit], articles: Mapping[int, str] | None) -> list[str]:
    """The line under each result's thumbnail on the contact sheet, in rank order: its
    article number (what a supplier or a sample card is ordered by), else its file name."""
    articles = articles or {}
    return [(articles.get(h.image_id) or "").strip() or h.path.name for h in hits]


def write_contact_sheet(
    path: Path,
    hits: Sequence[SearchHit],
    records: Sequence[ImageRecord],
    load_image: Callable[[ImageRecord], QImage],
    title: str = "",
    query: QImage | None = None,
    columns: int = 5,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    articles: Mapping[int, str] | None = None,
) -> Path:
    """A printable grid of the results (query first) with rank, score, article number (the
    file name where there is none: `sheet_captions`) and colours; its path.

    The format follows the suffix: ``.pdf`` through QPdfWriter (A4), anything else as a PNG.
    Safe in a worker (`load_image` then runs there too); a cancel stops it before the file is
    written."""
    path = Path(path)
    by_id = {r.id: r for r in records}
    captions = sheet_captions(hits, articles)
    cells: list[tuple[QImage | None, str, str, ImageRecord | None]] = []
    if query is not None:
        cells.append((query, "Query", "", None))
    for k, hit in enumerate(hits):
        report(progress, "thumbnails", k, len(hits), "images")
        check(cancel)
        rec = by_id.get(hit.image_id)
        img = load_image(rec) if rec is not None else None
        cells.append((img, f"#{hit.rank}  score {hit.score:.2f}", captions[k], rec))
    report(progress, "write", 0, None, "pages")
    check(cancel)
    cell_w, cell_h, margin, header = 220, 290, 30, 60
    rows = (len(hits) + (1 if query is not None else 0) + columns - 1) // columns
    width = margin * 2 + columns * cell_w
    height = margin * 2 + header + max(rows, 1) * cell_h

    def paint(painter: QPainter) -> None:
        painter.fillRect(QRectF(0, 0, width, height), QColor("white"))
        font = QFont(painter.font())
        font.setPixelSize(20)
        font.setBold(True)
        painter.setFont(font)
        painter.setPen(QColor(40, 40, 40))
        painter.drawText(QRectF(margin, margin, width - 2 * margin, 30), title or "Search results")
        font.setPixelSize(13)
        font.setBold(False)
        painter.setFont(font)
        for i, (img, line1, line2, rec) in enumerate(cells):
            x = margin + (i % columns) * cell_w
            y = margin + header + (i // columns) * cell_h
            box = QRectF(x + 10, y, cell_w - 20, cell_w - 20)
            if img is not None and not img.isNull():
                scaled = img.scaled(
                    int(box.width()),
                    int(box.height()),
                    Qt.AspectRatioMode.KeepAspectRatio,
                    Qt.TransformationMode.SmoothTransformation,
                )
                painter.drawImage(
                    QRectF(
                        box.x() + (box.width() - scaled.width()) / 2,
                        box.y() + (box.height() - scaled.height()) / 2,
                        scaled.width(),
                        scaled.height(),
                    ),
                    scaled,
                )
            painter.setPen(QColor(40, 40, 40))
            painter.drawText(QRectF(box.x(), box.bottom() + 6, box.width(), 18), line1)
            painter.setPen(QColor(110, 110, 110))
            painter.drawText(
                QRectF(box.x(), box.bottom() + 24, box.width(), 18),
                Qt.AlignmentFlag.AlignLeft,
                painter.fontMetrics().elidedText(
                    line2, Qt.TextElideMode.ElideMiddle, int(box.width())
                ),
            )
            if rec is not None:
                paint_chips(
                    painter, QRectF(box.x(), box.bottom() + 46, box.width(), 10), rec.palette
                )

    if path.suffix.lower() == ".pdf":
        writer = QPdfWriter(str(path))
        writer.setPageSize(QPageSize(QPageSize.PageSizeId.A4))
        writer.setPageMargins(QMarginsF(10, 10, 10, 10), QPageLayout.Unit.Millimeter)
        writer.setResolution(150)
        writer.setTitle(title or "fabricsearch results")
        painter = QPainter(writer)
        if not painter.isActive():
            raise OSError(f"cannot write {path}")
        page = writer.pageLayout().paintRectPixels(writer.resolution())
        scale = min(page.width() / width, page.height() / height)
        painter.scale(scale, scale)
        paint(painter)
        painter.end()
    else:
        image = QImage(width, height, QImage.Format.Format_RGB32)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        paint(painter)
        painter.end()
        if not image.save(str(path), "PNG"):
            raise OSError(f"cannot write {path}")
    return path
