"""Issue 23: an import decodes each photo once; the network sees exactly today's pixels."""

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


@pytest.mark.parametrize(
    ("size", "fmt", "mode", "orientation"),
    [
        ((3000, 4000), "JPEG", "RGB", 1),  # 1/8 gives 500 px: between 448 and 512
        ((2000, 3000), "JPEG", "RGB", 6),
        ((1800, 2600), "JPEG", "L", 1),
        ((1800, 2600), "JPEG", "CMYK", 1),  # PIL's decoder: decoded twice
        ((900, 1300), "PNG", "RGB", 1),
        ((900, 1300), "PNG", "RGBA", 1),
        ((300, 420), "JPEG", "RGB", 3),  # smaller than both sides
    ],
)
def test_decode_pair_network_pixels_are_decode_for(size, fmt, mode, orientation):
    data = _encode(_photo(*size), fmt, mode, orientation)
    work, net, info = imaging.decode_pair(data, 512, 448)
    ref, ref_info = imaging.decode(data, max_side=448)
    assert np.array_equal(net, ref)
    assert info == ref_info
    assert max(work.shape[:2]) <= 512
    assert max(work.shape[:2]) >= min(max(ref.shape[:2]), 448)
    assert work.shape[0] / work.shape[1] == pytest.approx(ref.shape[0] / ref.shape[1], rel=0.02)


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
