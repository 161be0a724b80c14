"""Turn what the user drops or pastes (files, browser images, clipboard) into a search query."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QMimeData, QUrl
from PySide6.QtGui import QImage

from fabricsearch.services.search import is_image_path

OFFLINE_MESSAGE = (
    "This image is on the web and fabricsearch works offline, so it cannot fetch it. "
    "Save the image to a file first, then drop the file here."
)


@dataclass(frozen=True)
class QueryInput:
    """A query image: a file path or decoded pixels, or an error message for the user."""

    name: str = ""
    path: Path | None = None
    image: np.ndarray | None = None  # (H, W, 3) uint8 RGB
    error: str | None = None
    # What is known about the query (e.g. "Find similar" on a labelled library image): used
    # by the re-ranking, so texture and tightness join colour in the explanation.
    coarse: str | None = None
    fine: str | None = None
    tightness: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and (self.path is not None or self.image is not None)

    @property
    def source(self) -> Path | np.ndarray:
        if self.path is not None:
            return self.path
        assert self.image is not None
        return self.image


def qimage_to_rgb(image: QImage) -> np.ndarray:
    """Copy a QImage into an (H, W, 3) uint8 RGB array."""
    img = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = img.width(), img.height(), img.bytesPerLine()
    buf = np.frombuffer(img.constBits(), dtype=np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).copy()


def _from_url(url: QUrl) -> QueryInput | None:
    if url.isLocalFile():
        path = Path(url.toLocalFile())
        if path.is_dir():
            return QueryInput(name=path.name, error=f"{path.name} is a folder, not a photo.")
        return QueryInput(name=path.name, path=path)
    if url.scheme() in ("http", "https", "ftp"):
        return QueryInput(name=url.fileName() or url.host(), error=OFFLINE_MESSAGE)
    return None


def can_accept(mime: QMimeData) -> bool:
    """Whether a drag carries something we could turn into a query (for dragEnterEvent)."""
    return mime.hasUrls() or mime.hasImage() or _text_url(mime) is not None


def _text_url(mime: QMimeData) -> QUrl | None:
    if not mime.hasText():
        return None
    text = mime.text().strip().splitlines()[0].strip() if mime.text().strip() else ""
    text = text.strip('"').strip("'")  # a path copied from a file manager may be quoted
    url = QUrl(text)
    if url.scheme() in ("file", "http", "https"):
        return url
    # A plain path copied as text (a terminal, a spreadsheet of file names).
    path = Path(text).expanduser() if text else None
    if path is not None and path.is_absolute() and path.is_file():
        return QUrl.fromLocalFile(str(path))
    return None


def query_from_mime(mime: QMimeData) -> QueryInput:
    """Pick the best query from a drop or the clipboard.

    Local files win; a browser drag usually carries both the page URL and the image data, so
    image data wins over a web URL, and a web URL alone cannot be fetched offline."""
    web: QueryInput | None = None
    if mime.hasUrls():
        for url in mime.urls():
            q = _from_url(url)
            if q is None:
                continue
            if q.path is not None and (is_image_path(q.path) or q.path.exists()):
                return q
            if q.error == OFFLINE_MESSAGE:
                web = web or q
            elif q.error:
                return q
    if mime.hasImage():
        image = mime.imageData()
        if isinstance(image, QImage) and not image.isNull():
            name = web.name if web is not None else "pasted image"
            return QueryInput(name=name, image=qimage_to_rgb(image))
    url = _text_url(mime)
    if url is not None:
        q = _from_url(url)
        if q is not None:
            return q
    if web is not None:
        return web
    return QueryInput(error="Drop a photo of a fabric (an image file) to search.")
