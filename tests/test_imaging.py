"""imaging: decoding every pixel format to RGB uint8, EXIF orientation, size guard, thumbnails."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch import imaging


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width×height but holds almost no data (a 'bomb')."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )
    return path


def two_halves(w: int = 40, h: int = 20) -> np.ndarray:
    """Left half red, right half blue."""
    a = np.zeros((h, w, 3), np.uint8)
    a[:, : w // 2] = (255, 0, 0)
    a[:, w // 2 :] = (0, 0, 255)
    return a


def test_rgb_png_round_trip(tmp_path: Path, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, (17, 23, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    out = imaging.load_rgb(tmp_path / "a.png")
    assert out.dtype == np.uint8
    assert out.shape == (17, 23, 3)
    np.testing.assert_array_equal(out, a)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".webp"])
def test_other_formats_lossless(tmp_path: Path, rng: np.random.Generator, suffix: str) -> None:
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    kwargs = {"lossless": True} if suffix == ".webp" else {}
    Image.fromarray(a).save(tmp_path / f"a{suffix}", **kwargs)
    np.testing.assert_array_equal(imaging.load_rgb(tmp_path / f"a{suffix}"), a)


def test_greyscale_becomes_three_equal_channels(tmp_path: Path) -> None:
    g = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (5, 1))
    Image.fromarray(g, mode="L").save(tmp_path / "g.png")
    out = imaging.load_rgb(tmp_path / "g.png")
    assert out.shape == (5, 25, 3)
    for c in range(3):
        np.testing.assert_array_equal(out[:, :, c], g)


def test_16bit_greyscale_scaled_not_clipped(tmp_path: Path) -> None:
    import cv2

    g = np.array([[0, 257 * 10, 257 * 128, 65535]], dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "g16.png"), g)
    assert Image.open(tmp_path / "g16.png").mode.startswith("I")
    out = imaging.load_rgb(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[0, :, 0], [0, 10, 128, 255])


def test_16bit_rgb_tiff(tmp_path: Path) -> None:
    import cv2

    bgr16 = np.zeros((4, 4, 3), np.uint16)
    bgr16[..., 2] = 65535  # red in BGR order
    cv2.imwrite(str(tmp_path / "c16.tif"), bgr16)
    out = imaging.load_rgb(tmp_path / "c16.tif")
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.fromarray(two_halves()).convert("CMYK").save(tmp_path / "c.jpg", quality=95)
    assert Image.open(tmp_path / "c.jpg").mode == "CMYK"
    out = imaging.load_rgb(tmp_path / "c.jpg")
    assert out.shape == (20, 40, 3)
    assert out[10, 5, 0] > 200
    assert out[10, 5, 2] < 60
    assert out[10, 35, 2] > 200
    assert out[10, 35, 0] < 60


def test_alpha_composited_on_white(tmp_path: Path) -> None:
    a = np.zeros((4, 4, 4), np.uint8)
    a[:2] = (255, 0, 0, 255)  # opaque red
    a[2:] = (0, 0, 255, 0)  # fully transparent blue → white
    Image.fromarray(a, mode="RGBA").save(tmp_path / "a.png")
    out = imaging.load_rgb(tmp_path / "a.png")
    np.testing.assert_array_equal(out[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(out[3, 3], [255, 255, 255])


def test_grey_with_alpha(tmp_path: Path) -> None:
    la = np.zeros((2, 2, 2), np.uint8)
    la[0] = (0, 255)  # opaque black
    la[1] = (0, 0)  # transparent
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = imaging.load_rgb(tmp_path / "la.png")
    np.testing.assert_array_equal(out[0, 0], [0, 0, 0])
    np.testing.assert_array_equal(out[1, 1], [255, 255, 255])


def test_palette_image_with_transparency(tmp_path: Path) -> None:
    p = Image.new("P", (4, 4), 0)
    p.putpalette([0, 255, 0] + [255, 0, 0] + [0] * (254 * 3))
    p.putpixel((3, 3), 1)
    p.info["transparency"] = 0  # index 0 (green) transparent
    p.save(tmp_path / "p.png", transparency=0)
    out = imaging.load_rgb(tmp_path / "p.png")
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[3, 3], [255, 0, 0])


def test_exif_orientation_applied(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise
    Image.fromarray(two_halves(40, 20)).save(tmp_path / "o.jpg", exif=exif, quality=95)
    info = imaging.probe(tmp_path / "o.jpg")
    assert (info.width, info.height) == (20, 40)
    out = imaging.load_rgb(tmp_path / "o.jpg")
    assert out.shape == (40, 20, 3)
    # Rotating clockwise puts the left (red) half on top.
    assert out[5, 10, 0] > 200
    assert out[5, 10, 2] < 60
    assert out[35, 10, 2] > 200
    assert out[35, 10, 0] < 60


def test_jpeg_decoded_reduced_with_full_size_info(tmp_path: Path, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, (600, 1200, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "big.jpg")
    rgb, info = imaging.decode(tmp_path / "big.jpg", max_side=256)
    assert (info.width, info.height) == (1200, 600)
    assert max(rgb.shape[:2]) == 256
    assert rgb.shape == (128, 256, 3)


def test_thumbnail_longest_side(rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, (300, 100, 3), dtype=np.uint8)
    data = imaging.thumbnail_jpeg(a, 256)
    im = Image.open(io.BytesIO(data))
    assert im.format == "JPEG"
    assert im.size == (85, 256)
    small = imaging.thumbnail_jpeg(a[:50, :40], 256)  # never enlarged
    assert Image.open(io.BytesIO(small)).size == (40, 50)


# --- bad inputs ------------------------------------------------------------------------------
def test_zero_byte_file(tmp_path: Path) -> None:
    (tmp_path / "z.jpg").write_bytes(b"")
    with pytest.raises(imaging.ImageError, match="empty file"):
        imaging.load_rgb(tmp_path / "z.jpg")


def test_text_named_jpg(tmp_path: Path) -> None:
    (tmp_path / "t.jpg").write_text("this is not a photo\n")
    with pytest.raises(imaging.ImageError, match="not an image"):
        imaging.load_rgb(tmp_path / "t.jpg")


def test_truncated_jpeg(tmp_path: Path, rng: np.random.Generator) -> None:
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "t.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    with pytest.raises(imaging.ImageError, match="truncated"):
        imaging.load_rgb(tmp_path / "t.jpg")


@pytest.mark.parametrize(("w", "h"), [(100_000, 100_000), (10_000, 9_000)])
def test_huge_header_refused_before_decoding(tmp_path: Path, w: int, h: int) -> None:
    path = png_header_only(tmp_path / "huge.png", w, h)
    with pytest.raises(imaging.ImageError, match="too large") as err:
        imaging.probe(path)
    assert "not decoded" in str(err.value)
    with pytest.raises(imaging.ImageError, match="too large"):
        imaging.load_rgb(path)


def test_size_limit_is_configurable(tmp_path: Path) -> None:
    Image.new("RGB", (100, 100)).save(tmp_path / "a.png")
    assert imaging.probe(tmp_path / "a.png").width == 100
    with pytest.raises(imaging.ImageError, match="100×100"):
        imaging.probe(tmp_path / "a.png", max_pixels=5000)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(imaging.ImageError, match="not found"):
        imaging.load_rgb(tmp_path / "nope.png")


def test_non_ascii_path(tmp_path: Path) -> None:
    d = tmp_path / "Stoffe für Ärmel 布料"
    d.mkdir()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(d / "gewebe_ü.png")
    np.testing.assert_array_equal(imaging.load_rgb(d / "gewebe_ü.png")[0, 0], [10, 20, 30])


def test_is_image_path() -> None:
    assert imaging.is_image_path("a/B.JPG")
    assert imaging.is_image_path("x.tiff")
    assert not imaging.is_image_path("notes.txt")
    assert not imaging.is_image_path("thumbs.db")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_all_exif_orientations_match_pil(tmp_path: Path, orientation: int) -> None:
    from PIL import ImageOps

    a = np.zeros((24, 40, 3), np.uint8)
    a[:12, :20] = (255, 0, 0)  # a distinct colour in each quadrant
    a[:12, 20:] = (0, 255, 0)
    a[12:, :20] = (0, 0, 255)
    a[12:, 20:] = (255, 255, 0)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.jpg"
    Image.fromarray(a).save(path, exif=exif, quality=95)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB")).astype(int)
    got = imaging.load_rgb(path).astype(int)  # OpenCV fast path for complete JPEGs
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 8  # two libjpeg builds may differ by rounding


def test_jpeg_fast_path_agrees_with_pil_path(tmp_path: Path, rng: np.random.Generator) -> None:
    a = rng.integers(0, 256, (300, 500, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "a.jpg", quality=90)
    data = (tmp_path / "a.jpg").read_bytes()
    fast, info = imaging.decode(data, max_side=128)
    slow, _ = imaging.decode(data + b"trailing", max_side=128)  # no EOI at the end → PIL
    assert (info.width, info.height) == (500, 300)
    assert fast.shape == slow.shape == (77, 128, 3)
    assert np.abs(fast.astype(int) - slow.astype(int)).mean() < 3
