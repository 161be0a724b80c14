"""Decoding photos into RGB arrays, a size guard that reads only the header, and thumbnails.

Every image that enters fabricsearch goes through `load_rgb`: EXIF orientation applied,
greyscale / 16-bit / CMYK / palette / alpha images turned into ``(H, W, 3) uint8`` RGB, alpha
composited on white (fabric photos cut out on a transparent background are shown on white
everywhere else in the app). Failures raise `ImageError` whose message is a reason a user can
act on ("truncated or corrupt image data", "too large: 100000×100000 pixels ...").
"""

from __future__ import annotations

import errno
import io
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fabricsearch import livefiles, safeio
from fabricsearch.errors import UserError

#: Refuse images with more pixels than this before decoding (80 megapixels: larger than any
#: camera we expect, small enough that a decode cannot exhaust a laptop's memory).
MAX_PIXELS = 80_000_000

#: Largest file read (bytes): a 16-bit RGB TIFF of `MAX_PIXELS` uncompressed is 480 MB. The
#: bound keeps a runaway source (a device, a file that keeps growing) from exhausting memory.
MAX_FILE_BYTES = 512 * 2**20

#: File suffixes the importer picks up (lower case).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})

#: Thumbnail sizes cached by the library (longest side in pixels; 512 for HiDPI screens).
THUMB_SIZES = (256, 512)


class ImageError(UserError):
    """An image that cannot be used; ``str(exc)`` is the reason for the user."""

    @property
    def reason(self) -> str:
        return str(self)


@dataclass(frozen=True)
class ImageInfo:
    """Header facts, read without decoding pixels. ``width``/``height`` are after EXIF rotation."""

    width: int
    height: int
    format: str
    mode: str


def is_image_path(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_bytes(path: str | os.PathLike[str], max_bytes: int | None = None) -> bytes:
    """The bytes of a regular file, at most ``max_bytes`` (default `MAX_FILE_BYTES`), with OS
    errors turned into `ImageError` reasons.

    Anything but a regular file is refused before reading: a FIFO would block forever and a
    device such as ``/dev/zero`` never ends (`safeio.read_regular_file`: checked before the
    open, opened non-blocking, checked again on the open descriptor)."""
    limit = MAX_FILE_BYTES if max_bytes is None else max_bytes
    if livefiles.is_held(path):
        # Opening and closing it here would drop this process's SQLite locks on it.
        raise ImageError("is a library's open catalogue, not a photo; not read")
    try:
        data = safeio.read_regular_file(path, limit)
    except safeio.NotRegularFileError as exc:
        if exc.is_dir:
            raise ImageError("is a directory, not a file") from exc
        raise ImageError(f"not a regular file ({exc.kind}); not read") from exc
    except safeio.FileTooLargeError as exc:
        raise ImageError(_too_big(exc.size, limit)) from exc
    except PermissionError as exc:
        raise ImageError("cannot read file: permission denied") from exc
    except FileNotFoundError as exc:
        raise ImageError("file not found") from exc
    except IsADirectoryError as exc:
        raise ImageError("is a directory, not a file") from exc
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ImageError("symbolic link loop") from exc
        raise ImageError(f"cannot read file: {exc.strerror or exc}") from exc
    if not data:
        raise ImageError("empty file (0 bytes)")
    return data


def _too_big(size: int, limit: int) -> str:
    return f"too large: file of {size / 2**20:.0f} MiB (limit {limit / 2**20:.0f} MiB); not read"


def _open(source: str | os.PathLike[str] | bytes) -> tuple[Image.Image, bytes]:
    data = read_bytes(source) if not isinstance(source, bytes) else source
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Image.open(io.BytesIO(data)), data
    except UnidentifiedImageError as exc:
        raise ImageError("not an image (unrecognised file format)") from exc
    except Image.DecompressionBombError as exc:
        # PIL refuses headers above 2 × its own limit before we see the size; our limit is
        # lower, so this is always "too large". Its message carries the pixel count.
        m = re.search(r"\((\d+) pixels\)", str(exc))
        mp = f"{int(m.group(1)) / 1e6:.0f} MP" if m else "over PIL's limit"
        raise ImageError(f"too large: {mp} (limit {MAX_PIXELS / 1e6:.0f} MP); not decoded") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"unreadable image header: {exc}") from exc


def _orientation(im: Image.Image) -> int:
    try:
        return int(im.getexif().get(0x0112, 1) or 1)
    except Exception:  # malformed EXIF must not make an otherwise good photo fail
        return 1


def _header_info(im: Image.Image) -> ImageInfo:
    w, h = im.size
    if _orientation(im) in (5, 6, 7, 8):  # rotated by 90°: width and height swap
        w, h = h, w
    return ImageInfo(width=w, height=h, format=im.format or "", mode=im.mode)


def _check_size(info: ImageInfo, max_pixels: int) -> None:
    if info.width <= 0 or info.height <= 0:
        raise ImageError(f"invalid image size {info.width}×{info.height}")
    if info.width * info.height > max_pixels:
        raise ImageError(
            f"too large: {info.width}×{info.height} pixels "
            f"({info.width * info.height / 1e6:.0f} MP, limit {max_pixels / 1e6:.0f} MP); not decoded"
        )


def probe(source: str | os.PathLike[str] | bytes, max_pixels: int = MAX_PIXELS) -> ImageInfo:
    """Read the header only (no pixel decoding) and check the size limit."""
    im, _ = _open(source)
    try:
        info = _header_info(im)
        _check_size(info, max_pixels)
        return info
    finally:
        im.close()


def _to_rgb_array(im: Image.Image) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # 16-bit greyscale: scale the full 16-bit range to 8 bits (PIL's convert() clips instead).
        a = np.asarray(im, dtype=np.float64)
        grey = np.clip(a / 257.0, 0, 255).round().astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(im, dtype=np.float64)
        scale = 255.0 if np.nanmax(a) <= 1.0 else 1.0  # 0–1 float images are common in TIFF
        grey = np.clip(np.nan_to_num(a) * scale, 0, 255).round().astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
        mode = im.mode
    elif mode in ("LA", "La", "PA", "RGBa") or (mode == "L" and "transparency" in im.info):
        im = im.convert("RGBA")
        mode = "RGBA"
    if mode == "RGBA":
        white = Image.new("RGBA", im.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, im).convert("RGB")
    elif mode != "RGB":
        im = im.convert("RGB")  # L, 1, CMYK (Adobe inverted CMYK handled by PIL), YCbCr, LAB
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


def decode(
    source: str | os.PathLike[str] | bytes,
    max_side: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> tuple[np.ndarray, ImageInfo]:
    """Decode to ``(H, W, 3) uint8`` RGB, also returning the full-size header info.

    With ``max_side`` the result's longest side is at most that; JPEGs are then decoded at a
    reduced DCT scale, which is several times faster for camera photos.
    """
    im, data = _open(source)
    try:
        info = _header_info(im)
        _check_size(info, max_pixels)
        if im.format == "JPEG" and im.mode in ("RGB", "L") and _ends_with_eoi(data):
            rgb = _decode_jpeg_cv2(data, im.size, max_side, _orientation(im))
            if rgb is not None:
                if max_side is not None and max(rgb.shape[:2]) > max_side:
                    rgb = resize_max_side(rgb, max_side)
                return rgb, info
        if max_side is not None and im.format == "JPEG":
            w, h = im.size
            scale = max_side / max(w, h)
            if scale < 1:
                # draft() picks the smallest DCT scale that keeps both sides >= the request,
                # so ask for the aspect-correct target, not a square.
                im.draft("RGB", (max(1, int(w * scale)), max(1, int(h * scale))))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im.load()
                oriented = ImageOps.exif_transpose(im) if _orientation(im) != 1 else im
        except OSError as exc:
            msg = str(exc)
            if "truncated" in msg or "broken data stream" in msg or "premature end" in msg.lower():
                raise ImageError("truncated or corrupt image data") from exc
            raise ImageError(f"cannot decode image: {msg}") from exc
        except (SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
            raise ImageError(f"cannot decode image: {exc}") from exc
        rgb = _to_rgb_array(oriented)
    finally:
        im.close()
    if max_side is not None and max(rgb.shape[:2]) > max_side:
        rgb = resize_max_side(rgb, max_side)
    return rgb, info


def decode_fine(
    source: str | os.PathLike[str] | bytes,
    fine_side: int,
    net_side: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> tuple[np.ndarray, np.ndarray | None, ImageInfo]:
    """The one decode of a photo → (fine RGB, network RGB, header info) (issue 23).

    The fine image is never area-resized: a JPEG is decoded at the coarsest DCT scale whose
    longest side is still at least ``fine_side``, other formats at full size, so the yarns of a
    fine check keep their own colours (`colour.quantise` samples its pixels itself; a 512 px
    resize of a 4000 px photo would blend orange and black yarns into one brown).
    The network image (with ``net_side``) is the fine image area-resized to a longest side of
    at most ``net_side`` (`resize_max_side`): never a second decode. This is the network's
    input recipe (`extract.decode_for` calls this), so import, query, training and encoding
    give the same pixels for the same file."""
    im, data = _open(source)
    try:
        info = _header_info(im)
        _check_size(info, max_pixels)
        fast = im.format == "JPEG" and im.mode in ("RGB", "L") and _ends_with_eoi(data)
        size, orientation = im.size, _orientation(im)
    finally:
        im.close()
    fine = _decode_jpeg_cv2(data, size, fine_side, orientation) if fast else None
    if fine is None:
        fine, _ = decode(data, max_side=None, max_pixels=max_pixels)
    if net_side is None:
        return fine, None, info
    return fine, resize_max_side(fine, net_side), info


def centre_square(rgb: np.ndarray, size: int) -> np.ndarray:
    """Resize the shorter side to `size` and centre-crop to a square → (size, size, 3) uint8
    (`hashing.data.prepare_image`; here so that import workers need no torch)."""
    import cv2

    rgb = np.asarray(rgb)
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.dtype != np.uint8:
        raise ValueError(f"expected uint8 RGB, got {rgb.dtype}")
    h, w = rgb.shape[:2]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    if (nh, nw) != (h, w):
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        rgb = cv2.resize(rgb, (nw, nh), interpolation=interp)
    top, left = (nh - size) // 2, (nw - size) // 2
    return np.ascontiguousarray(rgb[top : top + size, left : left + size, :3])


def _ends_with_eoi(data: bytes) -> bool:
    # libjpeg (via OpenCV) fills a truncated JPEG with grey and only warns; PIL raises. So the
    # fast path is taken only for files that end in the EOI marker (zero padding allowed);
    # anything else goes through PIL, which reports truncation.
    return data.rstrip(b"\0").endswith(b"\xff\xd9")


# PIL's exif_transpose operations as numpy views on (H, W, C) arrays.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a.transpose(1, 0, 2)[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


def _jpeg_scale(size: tuple[int, int], max_side: int | None) -> int:
    """The coarsest DCT scale (1, 2, 4, 8) whose longest side is still at least `max_side`."""
    if max_side is not None:
        for s in (8, 4, 2):
            if max(size) // s >= max_side:
                return s
    return 1


def _decode_jpeg_cv2(
    data: bytes, size: tuple[int, int], max_side: int | None, orientation: int
) -> np.ndarray | None:
    """JPEG decode with OpenCV's libjpeg-turbo at a reduced DCT scale (1/2, 1/4, 1/8).

    About twice as fast as PIL's decoder on this platform (benchmarks/bench_import.py), which
    matters because entropy decoding dominates import time. None when OpenCV cannot decode."""
    import cv2

    scale = _jpeg_scale(size, max_side)
    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[scale] | cv2.IMREAD_IGNORE_ORIENTATION
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    if bgr is None or bgr.ndim != 3:
        return None
    rgb = bgr[:, :, ::-1]
    if orientation in _ORIENT:
        rgb = _ORIENT[orientation](rgb)
    return np.ascontiguousarray(rgb)


def load_rgb(path: str | os.PathLike[str], max_side: int | None = None) -> np.ndarray:
    """Decode an image file to ``(H, W, 3) uint8`` RGB; raises `ImageError(reason)`."""
    return decode(path, max_side=max_side)[0]


def resize_max_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so that the longest side is ``max_side`` (never enlarges); area interpolation.

    While the image is at least twice the target and its sides are even, it is first halved
    (2×2 means: OpenCV's area resize of an exact integer factor), then area-resized the rest
    of the way: the same box filter within rounding, about 3× faster from a camera photo's
    fine decode (2000×1500 → 448 px: 8 against 28 ms, loaded), which the import and the query
    shrink for thumbnails and the network (issue 23)."""
    import cv2

    h, w = rgb.shape[:2]
    scale = max_side / max(h, w)
    if scale >= 1:
        return rgb
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    while rgb.shape[0] % 2 == 0 and rgb.shape[1] % 2 == 0 and max(rgb.shape[:2]) >= 2 * max_side:
        rgb = cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA)
    if rgb.shape[1::-1] == size:
        return rgb
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def thumbnail_jpeg(rgb: np.ndarray, size: int, quality: int = 85) -> bytes:
    """JPEG bytes of the image shrunk to ``size`` px on its longest side."""
    small = resize_max_side(rgb, size)
    buf = io.BytesIO()
    Image.fromarray(small).save(buf, format="JPEG", quality=quality, optimize=False)
    return buf.getvalue()
