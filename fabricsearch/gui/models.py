"""Qt item models over the library: a lazily loaded thumbnail grid and the search results.

Thumbnails come from the library's on-disk cache (``lib.thumbnail(record, 512)``) and are
decoded into QImages by a small QThreadPool; the GUI thread only scales them into QPixmaps
(QPixmap must not be touched off the GUI thread) kept in an LRU cache. The 512 px cache file
is used whatever the grid size so that icons stay sharp on HiDPI screens.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QMimeData,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
    QUrl,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap

from fabricsearch.catalogue import ImageRecord
from fabricsearch.services.search import SearchHit

log = logging.getLogger(__name__)

THUMB_SOURCE_SIZE = 512  # the cached thumbnail the icons are scaled from
PIXMAP_CACHE_ITEMS = 2000

ImageIdRole = Qt.ItemDataRole.UserRole + 1
RecordRole = Qt.ItemDataRole.UserRole + 2
HitRole = Qt.ItemDataRole.UserRole + 3
SuggestionRole = Qt.ItemDataRole.UserRole + 4


class _LoaderSignals(QObject):
    loaded = Signal(int, QImage)
    failed = Signal(int, str)


class _LoadThumb(QRunnable):
    def __init__(self, library: Any, record: ImageRecord, signals: _LoaderSignals) -> None:
        super().__init__()
        self.library = library
        self.record = record
        self.signals = signals
        self.setAutoDelete(True)

    def run(self) -> None:
        try:
            path = self.library.thumbnail(self.record, THUMB_SOURCE_SIZE)
            image = QImage(str(path))
            if image.isNull():
                raise OSError(f"cannot read thumbnail {path}")
        except Exception as exc:  # noqa: BLE001 - a broken thumbnail must not stop the grid
            log.debug("thumbnail for %s failed: %s", self.record.id, exc)
            self.signals.failed.emit(self.record.id, str(exc))
            return
        self.signals.loaded.emit(self.record.id, image)


class ThumbnailCache(QObject):
    """Loads thumbnails off the GUI thread and keeps an LRU of scaled QPixmaps.

    `pixmap(record)` returns the cached pixmap or None (and queues a load);
    `request_image(record)` does the same for the 512 px image the preview shows;
    `ready(image_id)` fires when one arrives (or its load failed: `failed`)."""

    ready = Signal(int)

    #: Full 512 px images kept (the preview's source; icons are kept as pixmaps).
    IMAGE_CACHE_ITEMS = 200

    def __init__(self, library: Any, parent: QObject | None = None, threads: int = 2) -> None:
        super().__init__(parent)
        self.library = library
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(threads)
        self._icon_px = 128
        self._dpr = 1.0
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._images: OrderedDict[int, QImage] = OrderedDict()  # full 512 px, small LRU
        self._pending: set[int] = set()
        self._urgent: set[int] = set()  # requested by the preview, queued first
        self._failed: set[int] = set()
        self._stopped = False
        self._signals = _LoaderSignals()
        self._signals.loaded.connect(self._on_loaded)
        self._signals.failed.connect(self._on_failed)

    def set_icon_size(self, px: int, dpr: float = 1.0) -> None:
        if (px, dpr) != (self._icon_px, self._dpr):
            self._icon_px, self._dpr = px, dpr
            self._pixmaps.clear()  # rescaled lazily from the QImage cache or reloaded

    def pixmap(self, record: ImageRecord) -> QPixmap | None:
        pm = self._pixmaps.get(record.id)
        if pm is not None:
            self._pixmaps.move_to_end(record.id)
            return pm
        image = self._images.get(record.id)
        if image is not None:
            return self._store(record.id, image)
        if record.id not in self._pending and record.id not in self._failed and not self._stopped:
            self._pending.add(record.id)
            self.pool.start(_LoadThumb(self.library, record, self._signals))
        return None

    def image(self, image_id: int) -> QImage | None:
        """The full 512 px thumbnail if it was loaded recently."""
        return self._images.get(image_id)

    def request_image(self, record: ImageRecord) -> QImage | None:
        """The 512 px image of ``record`` now, or None and a load queued ahead of the grid's
        icons; `ready` fires when it arrives. Its icon may still be cached after the image
        itself left the (smaller) image cache: `pixmap` then queues nothing, and a preview
        waiting on it waited for ever (issue 24 item 3)."""
        image = self._images.get(record.id)
        if image is not None:
            self._images.move_to_end(record.id)
            return image
        if record.id in self._failed or record.id in self._urgent or self._stopped:
            return None
        # Already queued for the grid, perhaps behind a screenful of icons: queued again,
        # first (the second load of the same file is cheap and harmless).
        self._pending.add(record.id)
        self._urgent.add(record.id)
        self.pool.start(_LoadThumb(self.library, record, self._signals), 1)
        return None

    def failed(self, image_id: int) -> bool:
        """Whether the thumbnail of ``image_id`` could not be read."""
        return image_id in self._failed

    def is_pending(self) -> bool:
        return bool(self._pending)

    def stop(self) -> None:
        """Drop queued loads and wait for running ones (before the library closes), and let
        the images go: a closed library's grid may still paint, but loads nothing more."""
        self._stopped = True
        self.pool.clear()
        self.pool.waitForDone(10_000)
        self._pending.clear()
        self._urgent.clear()
        # Up to IMAGE_CACHE_ITEMS images of 512 px (1 MB each) per library opened before.
        self._images.clear()
        self._pixmaps.clear()

    def _store(self, image_id: int, image: QImage) -> QPixmap:
        side = max(1, round(self._icon_px * self._dpr))
        scaled = image.scaled(
            side,
            side,
            Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.SmoothTransformation,
        )
        pm = QPixmap.fromImage(scaled)
        pm.setDevicePixelRatio(self._dpr)
        self._pixmaps[image_id] = pm
        while len(self._pixmaps) > PIXMAP_CACHE_ITEMS:
            self._pixmaps.popitem(last=False)
        return pm

    def _on_loaded(self, image_id: int, image: QImage) -> None:
        if self._stopped:  # a load that ended as the library closed
            return
        self._pending.discard(image_id)
        self._urgent.discard(image_id)
        self._images[image_id] = image
        self._images.move_to_end(image_id)
        while len(self._images) > self.IMAGE_CACHE_ITEMS:
            self._images.popitem(last=False)
        self._store(image_id, image)
        self.ready.emit(image_id)

    def _on_failed(self, image_id: int, _reason: str) -> None:
        if self._stopped:  # a load that failed as the library closed (its folder gone, say)
            return
        self._pending.discard(image_id)
        self._urgent.discard(image_id)
        self._failed.add(image_id)
        self.ready.emit(image_id)


def describe(suggestion: Any, taxonomy: Any = None) -> str:
    """'Plaid / check › Tartan 87 % · Twill 64 %' (names where the taxonomy is known)."""
    coarse = taxonomy.display_coarse(suggestion.coarse) if taxonomy else suggestion.coarse
    text = f"{coarse} {100 * suggestion.confidence:.0f} %"
    if suggestion.fine:
        fine = taxonomy.fine_names.get(suggestion.fine, suggestion.fine) if taxonomy else None
        text += f" · {fine or suggestion.fine} {100 * suggestion.fine_confidence:.0f} %"
    return text


def placeholder_pixmap(px: int, dpr: float = 1.0) -> QPixmap:
    side = max(1, round(px * dpr))
    pm = QPixmap(side, side)
    pm.fill(QColor(236, 236, 236))
    painter = QPainter(pm)
    painter.setPen(QColor(210, 210, 210))
    painter.drawRect(0, 0, side - 1, side - 1)
    painter.end()
    pm.setDevicePixelRatio(dpr)
    return pm


class ThumbnailModel(QAbstractListModel):
    """A flat list of library images for a QListView in icon mode.

    Rows are `ImageRecord`s; the decoration is loaded lazily through a `ThumbnailCache`."""

    def __init__(self, cache: ThumbnailCache, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.cache = cache
        self.taxonomy: Any = None  # the library's Taxonomy: tooltips show names, not ids
        self._records: list[ImageRecord] = []
        self._row_of: dict[int, int] = {}
        self._placeholder = placeholder_pixmap(128)
        self.suggestions: dict[int, Any] = {}  # image id → suggest.Suggestion
        cache.ready.connect(self._on_ready)

    def set_suggestions(self, suggestions: dict[int, Any]) -> None:
        self.suggestions = suggestions
        if self._records:
            self.dataChanged.emit(self.index(0), self.index(len(self._records) - 1))

    # --- content ------------------------------------------------------------------------
    def set_records(self, records: Sequence[ImageRecord]) -> None:
        self.beginResetModel()
        self._records = list(records)
        self._row_of = {r.id: i for i, r in enumerate(self._records)}
        self.endResetModel()

    def update_records(self, records: Sequence[ImageRecord]) -> None:
        """Replace rows whose image id is already shown (after labelling)."""
        for rec in records:
            row = self._row_of.get(rec.id)
            if row is not None:
                self._records[row] = rec
                idx = self.index(row)
                self.dataChanged.emit(idx, idx)

    def records(self) -> list[ImageRecord]:
        return list(self._records)

    def record(self, row: int) -> ImageRecord:
        return self._records[row]

    def row_of(self, image_id: int) -> int | None:
        return self._row_of.get(image_id)

    def set_icon_size(self, px: int, dpr: float = 1.0) -> None:
        self.cache.set_icon_size(px, dpr)
        self._placeholder = placeholder_pixmap(px, dpr)
        if self._records:
            self.dataChanged.emit(self.index(0), self.index(len(self._records) - 1))

    # --- QAbstractListModel -------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self._records)

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or index.row() >= len(self._records):
            return None
        rec = self._records[index.row()]
        if role == Qt.ItemDataRole.DecorationRole:
            return self.cache.pixmap(rec) or self._placeholder
        if role == Qt.ItemDataRole.DisplayRole:
            return self.display_text(index.row())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(rec)
        if role == ImageIdRole:
            return rec.id
        if role == RecordRole:
            return rec
        if role == SuggestionRole:
            return None if rec.labelled else self.suggestions.get(rec.id)
        return None

    def display_text(self, row: int) -> str:
        return self._records[row].path.name

    # --- dragging out: the original files -------------------------------------------------
    def flags(self, index: QModelIndex | QPersistentModelIndex) -> Qt.ItemFlag:
        flags = super().flags(index)
        return flags | Qt.ItemFlag.ItemIsDragEnabled if index.isValid() else flags

    def mimeTypes(self) -> list[str]:  # noqa: N802
        return ["text/uri-list", "text/plain"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:  # noqa: N802
        rows = sorted({i.row() for i in indexes if i.isValid()})
        paths = [str(self._records[r].path) for r in rows if r < len(self._records)]
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
        mime.setText("\n".join(paths))
        return mime

    def supportedDragActions(self) -> Qt.DropAction:  # noqa: N802
        return Qt.DropAction.CopyAction

    def tooltip(self, rec: ImageRecord) -> str:
        lines = [str(rec.path), f"{rec.width} × {rec.height}"]
        tax = self.taxonomy
        if rec.coarse:
            lines.append(f"coarse: {tax.display_coarse(rec.coarse) if tax else rec.coarse}")
        if rec.fine:
            lines.append(f"fine: {tax.fine_names.get(rec.fine, rec.fine) if tax else rec.fine}")
        if rec.tightness is not None:
            lines.append(f"tightness: {rec.tightness:.0f} %")
        if not rec.labelled:
            sug = self.suggestions.get(rec.id)
            lines.append("unlabelled" if sug is None else f"suggested: {describe(sug, tax)}")
        return "\n".join(lines)

    def _on_ready(self, image_id: int) -> None:
        row = self._row_of.get(image_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


_RECORD_ROLES = frozenset(
    {
        Qt.ItemDataRole.DecorationRole,
        Qt.ItemDataRole.DisplayRole,
        Qt.ItemDataRole.ToolTipRole,
        RecordRole,
        SuggestionRole,
    }
)


class LibraryModel(ThumbnailModel):
    """The library grid's rows: image ids (numpy), their records fetched by page as rows are
    painted and kept in a bounded cache (issue 23: a 1M-image library never loads every
    record). ``fetch(ids)`` returns the records of ``ids`` in that order (`Library.images`);
    a row whose record cannot be read (removed meanwhile) shows a placeholder.

    Rows are few until the library has loaded (its first screen): QListView lays out every
    row on the GUI thread, calling Python's `rowCount` about twice per row, which slowed
    the worker reading a 1M-image library from 5 s to 9.5 s."""

    PAGE = 256  # records fetched at once
    CACHE_RECORDS = 20_000  # records kept (a few screens either way at any thumbnail size)

    def __init__(
        self,
        cache: ThumbnailCache,
        fetch: Callable[[list[int]], list[ImageRecord]] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(cache, parent)
        self.fetch = fetch
        self._ids = np.zeros(0, np.int64)
        self._rows = 0
        self._order: np.ndarray | None = None  # argsort of _ids (row_of), made when needed
        self._sorted = self._ids  # _ids in ascending order
        self._cache: OrderedDict[int, ImageRecord] = OrderedDict()

    # --- content ------------------------------------------------------------------------
    def set_ids(self, ids: np.ndarray) -> None:
        """Show the images ``ids`` in this order."""
        self.beginResetModel()
        self._ids = np.asarray(ids, np.int64)
        self._rows = len(self._ids)
        self._order = None
        self.endResetModel()

    def set_records(self, records: Sequence[ImageRecord]) -> None:
        self.remember(records)
        self.set_ids(np.fromiter((r.id for r in records), np.int64, len(records)))

    def remember(self, records: Iterable[ImageRecord]) -> None:
        for rec in records:
            self._cache[rec.id] = rec
            self._cache.move_to_end(rec.id)
        while len(self._cache) > self.CACHE_RECORDS:
            self._cache.popitem(last=False)

    def forget(self) -> None:
        """Drop every cached record (the catalogue changed: they are read again)."""
        self._cache.clear()

    def update_records(self, records: Sequence[ImageRecord]) -> None:
        for rec in records:
            if rec.id in self._cache:
                self._cache[rec.id] = rec
            row = self.row_of(rec.id)
            if row is not None:
                idx = self.index(row)
                self.dataChanged.emit(idx, idx)

    def ids(self) -> np.ndarray:
        return self._ids

    def cached(self, image_id: int) -> ImageRecord | None:
        return self._cache.get(image_id)

    def records(self) -> list[ImageRecord]:
        """Every row's record (fetched: for small libraries, scripts and tests)."""
        return self.records_of([int(i) for i in self._ids])

    def records_of(self, ids: Sequence[int]) -> list[ImageRecord]:
        """Records of ``ids`` (from the cache, the rest fetched); ids gone are left out."""
        missing = [i for i in ids if i not in self._cache]
        got: dict[int, ImageRecord] = {}
        for start in range(0, len(missing), 5000):
            got.update((r.id, r) for r in self._fetch(missing[start : start + 5000]))
        if len(got) <= self.CACHE_RECORDS // 2:
            self.remember(got.values())
        out = []
        for i in ids:
            rec = self._cache.get(i) or got.get(i)
            if rec is not None:
                out.append(rec)
        return out

    def _fetch(self, ids: list[int]) -> list[ImageRecord]:
        if not ids or self.fetch is None:
            return []
        try:
            return self.fetch(ids)
        except KeyError:  # images removed meanwhile (a reload follows): one by one
            got = []
            for i in ids:
                try:
                    got += self.fetch([i])
                except KeyError:
                    continue
            return got
        except Exception:  # noqa: BLE001 - a closed library or a lost connection
            log.debug("cannot fetch %d records", len(ids), exc_info=True)
            return []

    def record(self, row: int) -> ImageRecord | None:  # type: ignore[override]
        """The record of ``row``, fetched with its page when not cached (None: not known)."""
        if not 0 <= row < len(self._ids):
            return None
        image_id = int(self._ids[row])
        rec = self._cache.get(image_id)
        if rec is not None:
            self._cache.move_to_end(image_id)
            return rec
        start = row - row % self.PAGE
        page = [int(i) for i in self._ids[start : start + self.PAGE] if int(i) not in self._cache]
        self.remember(self._fetch(page))
        return self._cache.get(image_id)

    def row_of(self, image_id: int) -> int | None:
        n = len(self._ids)
        if n == 0:
            return None
        if self._order is None:  # rows in id order (import order, a filter): no sort needed
            if bool(np.all(self._ids[1:] > self._ids[:-1])):
                self._order, self._sorted = np.zeros(0, np.int64), self._ids
            else:
                self._order = np.argsort(self._ids)
                self._sorted = self._ids[self._order]
        pos = int(np.searchsorted(self._sorted, image_id))
        if pos >= n or self._sorted[pos] != image_id:
            return None
        return int(self._order[pos]) if len(self._order) else pos

    # --- QAbstractListModel -------------------------------------------------------------
    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else self._rows

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid() or index.row() >= self._rows:
            return None
        if role == ImageIdRole:
            row = index.row()
            return int(self._ids[row]) if row < len(self._ids) else None
        if role not in _RECORD_ROLES:
            return None  # (fonts, alignment, …: no record read for them)
        rec = self.record(index.row())
        if rec is None:
            return self._placeholder if role == Qt.ItemDataRole.DecorationRole else None
        if role == Qt.ItemDataRole.DecorationRole:
            return self.cache.pixmap(rec) or self._placeholder
        if role == Qt.ItemDataRole.DisplayRole:
            return rec.path.name
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(rec)
        if role == RecordRole:
            return rec
        if role == SuggestionRole:
            return None if rec.labelled else self.suggestions.get(rec.id)
        return None

    def display_text(self, row: int) -> str:
        rec = self.record(row)
        return rec.path.name if rec is not None else ""

    def set_suggestions(self, suggestions: dict[int, Any]) -> None:
        self.suggestions = suggestions
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(self._rows - 1))

    def set_icon_size(self, px: int, dpr: float = 1.0) -> None:
        self.cache.set_icon_size(px, dpr)
        self._placeholder = placeholder_pixmap(px, dpr)
        if self._rows:
            self.dataChanged.emit(self.index(0), self.index(self._rows - 1))

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:  # noqa: N802
        rows = sorted({i.row() for i in indexes if i.isValid()})
        recs = [self.record(r) for r in rows]
        paths = [str(r.path) for r in recs if r is not None]
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(p) for p in paths])
        mime.setText("\n".join(paths))
        return mime

    def _on_ready(self, image_id: int) -> None:
        if image_id not in self._cache:
            return  # not on screen lately
        row = self.row_of(image_id)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])


class ResultsModel(ThumbnailModel):
    """Ranked search hits; rows carry both the hit and the image's record."""

    def __init__(self, cache: ThumbnailCache, parent: QObject | None = None) -> None:
        super().__init__(cache, parent)
        self._hits: list[SearchHit] = []

    def set_hits(self, hits: Sequence[SearchHit], records: Sequence[ImageRecord]) -> None:
        self._hits = list(hits)
        self.set_records(records)

    def hits(self) -> list[SearchHit]:
        return list(self._hits)

    def hit(self, row: int) -> SearchHit:
        return self._hits[row]

    def display_text(self, row: int) -> str:
        hit = self._hits[row]
        return f"#{hit.rank}  {hit.score:.2f}"

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if role == HitRole and index.isValid() and index.row() < len(self._hits):
            return self._hits[index.row()]
        return super().data(index, role)

    def tooltip(self, rec: ImageRecord) -> str:
        row = self._row_of.get(rec.id)
        text = super().tooltip(rec)
        if row is None:
            return text
        hit = self._hits[row]
        parts = [
            f"rank {hit.rank}",
            f"score {hit.score:.3f}",
            f"similarity {hit.similarity:.3f}",
            f"Hamming {hit.hamming}",
        ]
        if hit.feature_similarity is not None:
            mark = "same fabric" if hit.same_fabric else "features"
            parts.append(f"{mark} {hit.feature_similarity:.2f}")
        for key, value in hit.breakdown.items():
            parts.append(f"{key} {breakdown_text(hit, key, value, 'unknown')}")
        return text + "\n" + " · ".join(parts)


def breakdown_text(hit: SearchHit, key: str, value: float | None, unknown: str) -> str:
    """A component's value; a predicted label's as "~ predicted 64 %" (the confidence it
    weighs when it matches), never as a plain 1.00."""
    if value is None:
        return unknown
    if key in hit.predicted:
        return f"~ predicted {100 * value * hit.predicted[key]:.0f} %"
    return f"{value:.2f}"


def icon_grid_size(px: int, text_lines: int = 1, extra: int = 0) -> QSize:
    """Uniform grid cell for an icon of `px` pixels plus text lines below."""
    return QSize(px + 16, px + 8 + 16 * text_lines + extra)
