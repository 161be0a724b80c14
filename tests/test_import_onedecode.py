"""Issue 23: an import and a query decode each photo once (the fine decode the palette is
measured on); the network's pixels are area-resized from it, the same in every path."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fabricsearch import imaging
from fabricsearch.catalogue.importer import measure_file


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([(x * 255 // w), (y * 255 // h), ((x + y) % 23) * 11], axis=2)
    img = img + rng.normal(0, 8, (h, w, 1))
    return np.clip(img, 0, 255).astype(np.uint8)


def _encode(rgb: np.ndarray, fmt: str, mode: str = "RGB", orientation: int = 1) -> bytes:
    im = Image.fromarray(rgb).convert(mode)
    buf = io.BytesIO()
    if fmt == "PNG":
        im.save(buf, format=fmt)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        im.save(buf, format=fmt, exif=exif.tobytes(), quality=90)
    return buf.getvalue()


class _Decodes:
    """Counts the pixel decodes of `imaging` (libjpeg-turbo's fast path and `imaging.decode`,
    which is PIL's) while a test runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        fast, slow = imaging._decode_jpeg_cv2, imaging.decode

        def counted_fast(*a, **k):
            self.calls += 1
            return fast(*a, **k)

        def counted_slow(*a, **k):
            self.calls += 1
            return slow(*a, **k)

        monkeypatch.setattr(imaging, "_decode_jpeg_cv2", counted_fast)
        monkeypatch.setattr(imaging, "decode", counted_slow)


CASES = [
    ((3000, 4000), "JPEG", "RGB", 1),  # 1/2 DCT scale: 2000 px ≥ PALETTE_SIDE
    ((2000, 3000), "JPEG", "RGB", 6),
    ((1800, 2600), "JPEG", "L", 1),
    ((1800, 2600), "JPEG", "CMYK", 1),  # PIL's decoder, at full size
    ((900, 1300), "PNG", "RGB", 1),
    ((900, 1300), "PNG", "RGBA", 1),
    ((300, 420), "JPEG", "RGB", 3),  # smaller than both sides
]


@pytest.mark.parametrize(("size", "fmt", "mode", "orientation"), CASES)
def test_measure_file_decodes_each_photo_once(tmp_path, monkeypatch, size, fmt, mode, orientation):
    path = tmp_path / f"photo.{fmt.lower()}"
    path.write_bytes(_encode(_photo(*size), fmt, mode, orientation))
    decodes = _Decodes(monkeypatch)
    m = measure_file(str(path), frozenset(), net_size=224)
    assert not m.error
    assert decodes.calls == 1  # palette, thumbnails and the network's input from one decode
    assert m.net_input
    assert m.palette
    assert len(m.thumbs) == 2


@pytest.mark.parametrize(("size", "fmt", "mode", "orientation"), CASES)
def test_the_network_pixels_come_from_the_fine_decode(size, fmt, mode, orientation):
    from fabricsearch import colour
    from fabricsearch.hashing.extract import decode_for, net_pixels

    data = _encode(_photo(*size), fmt, mode, orientation)
    fine, net, info = imaging.decode_fine(data, colour.PALETTE_SIDE, 448)
    assert net is not None
    assert np.array_equal(net, imaging.resize_max_side(fine, 448))
    assert np.array_equal(net, net_pixels(fine, 224))
    assert np.array_equal(net, decode_for(data, 224))  # the one input recipe
    assert info == imaging.probe(data)
    assert max(net.shape[:2]) == min(448, max(info.width, info.height))


def test_a_camera_photo_is_decoded_at_the_palette_scale_not_twice(monkeypatch):
    from fabricsearch import colour

    data = _encode(_photo(3000, 4000), "JPEG")
    decodes = _Decodes(monkeypatch)
    fine, net, _ = imaging.decode_fine(data, colour.PALETTE_SIDE, 448)
    assert decodes.calls == 1
    assert fine.shape[:2] == (1500, 2000)  # the 1/2 DCT scale, never area-resized
    assert net is not None
    assert net.shape[:2] == (336, 448)


def test_resize_max_side_by_halves_is_the_area_resize_within_rounding():
    y, x = np.mgrid[0:1500, 0:2000]
    smooth = np.stack([x * 255 // 2000, y * 255 // 1500, (x + y) * 255 // 3500], 2)
    smooth = smooth.astype(np.uint8)
    for side in (448, 512, 256, 1999):
        got = imaging.resize_max_side(smooth, side)
        ref = cv2.resize(smooth, got.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert max(got.shape[:2]) == side
        assert np.abs(got.astype(int) - ref).mean() < 1.0
    odd = smooth[:1499, :1999]
    assert imaging.resize_max_side(odd, 448).shape[:2] == (336, 448)


def test_measure_file_returns_the_backbone_input(tmp_path: Path):
    from fabricsearch.hashing.data import prepare_image
    from fabricsearch.hashing.extract import decode_for

    path = tmp_path / "camera.jpg"
    cv2.imwrite(str(path), _photo(3000, 4000)[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    m = measure_file(str(path), frozenset(), net_size=224)
    assert not m.error
    square = np.frombuffer(m.net_input, np.uint8).reshape(224, 224, 3)
    assert np.array_equal(square, prepare_image(decode_for(str(path), 224), 224))
    plain = measure_file(str(path), frozenset())
    assert plain.net_input == b""
    assert plain.sha256 == m.sha256


def test_import_feeds_the_feature_cache(tmp_path: Path, monkeypatch):
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, backbone_available

    if not backbone_available(DEFAULT_BACKBONE):
        pytest.skip("pretrained backbone weights not installed")
    from fabricsearch import featurestore
    from fabricsearch.catalogue import Library
    from fabricsearch.featurefeed import FeatureFeed
    from fabricsearch.hashing import extract

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(5):
        cv2.imwrite(str(photos / f"p{i}.jpg"), _photo(600, 800, seed=i)[:, :, ::-1])
    lib = Library.create(tmp_path / "lib")
    with FeatureFeed(lib.folder, DEFAULT_BACKBONE) as feed:
        from fabricsearch.catalogue.importer import import_folder

        rep = import_folder(lib, photos, workers=0, features=feed)
        feed.close()
    assert rep.added == 5
    assert feed.done == 5
    records = lib.images()
    paths = [str(r.path) for r in records]
    shas = [r.sha256 for r in records]
    store = featurestore.store_for(lib.folder, DEFAULT_BACKBONE)
    assert (store.rows(shas) >= 0).all()
    fed = store.get(shas, views=False)
    expected, ok = extract.compute_features(paths, DEFAULT_BACKBONE)
    assert ok.all()
    np.testing.assert_allclose(fed, expected[:, 0].astype(np.float32), atol=2e-2, rtol=2e-2)

    # Nothing is decoded again for the features stage.
    def no_decode(*_a, **_k):
        raise AssertionError("decoded again")

    monkeypatch.setattr(extract, "decode_for", no_decode)
    feats, ok = extract.ensure_features(lib.folder, DEFAULT_BACKBONE, paths, shas)
    assert ok.all()
    assert feats.shape[0] == 5
    lib.close()


def test_a_query_decodes_once_and_gets_the_imported_code(tmp_path: Path, monkeypatch):
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, backbone_available

    if not backbone_available(DEFAULT_BACKBONE):
        pytest.skip("pretrained backbone weights not installed")
    from fabricsearch.search import Searcher
    from fabricsearch.workflows import create_library, import_and_encode

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(4):  # 1400 px JPEGs: the network's pixels are halved, then area-resized
        rgb = _photo(1000, 1400, seed=i)[:, :, ::-1]
        cv2.imwrite(str(photos / f"p{i}.jpg"), rgb, [cv2.IMWRITE_JPEG_QUALITY, 90])
    lib = create_library(tmp_path / "lib")
    try:
        import_and_encode(lib, photos, workers=0)
        searcher = Searcher(lib)
        searcher.prepare(photos / "p0.jpg")  # model and index loaded before counting
        decodes = _Decodes(monkeypatch)
        state = searcher.prepare(photos / "p2.jpg")
        assert decodes.calls == 1  # palette and network from the one decode
        assert state is not None
        result = searcher.search(photos / "p2.jpg", k=2)
        assert Path(result.hits[0].path).name == "p2.jpg"
        assert result.hits[0].hamming == 0  # the import's input recipe, pixel for pixel
    finally:
        lib.close()
