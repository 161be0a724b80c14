"""Synthetic fabric generator: determinism, labels, and that the labels show in the pixels."""

from __future__ import annotations

import csv
import dataclasses
import json

import cv2
import numpy as np
import pytest

from fabricsearch import synth
from fabricsearch.jobs import Cancelled, CancelToken
from fabricsearch.taxonomy import Taxonomy

WHITE, BLACK = (235, 235, 235), (0, 0, 0)


def _grey(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float64).mean(axis=2)


def _canonical(spec: synth.FabricSpec, size: int = 96) -> np.ndarray:
    return synth.render(spec, np.random.default_rng(0), size, photo=False)


# --- API shape and determinism -----------------------------------------------------------
def test_supported_labels_are_taxonomy_ids() -> None:
    tax = Taxonomy.default()
    assert all(tax.has_coarse(c) and "/" in c for c in synth.SUPPORTED_COARSE)
    assert all(f in tax.fine for f in synth.SUPPORTED_FINE)
    majors = {c.split("/")[0] for c in synth.SUPPORTED_COARSE}
    assert majors == {"solid", "stripe", "plaid", "pattern"}


def test_random_specs_have_taxonomy_labels_and_valid_tightness() -> None:
    tax = Taxonomy.default()
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(150):
        spec = synth.random_spec(rng)
        tax.coarse_indices(spec.coarse)  # raises on an unknown id
        assert spec.fine in tax.fine
        assert 40.0 <= spec.tightness <= 95.0
        assert spec.tightness == round(spec.tightness, 1)  # the CSV writes one decimal
        seen.add(spec.coarse)
    assert seen == set(synth.SUPPORTED_COARSE)


@pytest.mark.parametrize("coarse", synth.SUPPORTED_COARSE)
def test_render_shape_dtype_every_class(coarse: str) -> None:
    rng = np.random.default_rng(2)
    spec = synth.random_spec(rng, coarse)
    assert spec.coarse == coarse
    for photo in (True, False):
        img = synth.render(spec, rng, 32, photo=photo)
        assert img.shape == (32, 32, 3)
        assert img.dtype == np.uint8
        assert img.std() > 0  # not a blank frame


def test_determinism_for_a_seed() -> None:
    a = synth.random_spec(np.random.default_rng(7))
    b = synth.random_spec(np.random.default_rng(7))
    assert a == b
    img1 = synth.render(a, np.random.default_rng(3), 40)
    img2 = synth.render(b, np.random.default_rng(3), 40)
    np.testing.assert_array_equal(img1, img2)
    x1, s1, f1 = synth.generate_batch(np.random.default_rng(5), 3, 2, 24)
    x2, s2, f2 = synth.generate_batch(np.random.default_rng(5), 3, 2, 24)
    np.testing.assert_array_equal(x1, x2)
    assert s1 == s2
    np.testing.assert_array_equal(f1, f2)


def test_generate_batch_groups_photos_by_fabric() -> None:
    images, specs, ids = synth.generate_batch(np.random.default_rng(0), 4, 3, 24)
    assert images.shape == (12, 24, 24, 3)
    assert images.dtype == np.uint8
    assert len(specs) == 12
    assert ids.dtype == np.int64
    np.testing.assert_array_equal(ids, np.repeat(np.arange(4), 3))
    for k in range(12):
        assert specs[k] == specs[(k // 3) * 3]


def test_random_spec_filters_and_forced_fine() -> None:
    rng = np.random.default_rng(4)
    for _ in range(10):
        assert synth.random_spec(rng, "plaid").coarse.startswith("plaid/")
        assert synth.random_spec(rng, fine="satin").fine == "satin"
        assert synth.random_spec(rng, fine="jacquard").coarse == "pattern/jacquard-figure"
    with pytest.raises(ValueError, match="no supported"):
        synth.random_spec(rng, "plaid/houndstooth", "satin")
    with pytest.raises(ValueError, match="no supported"):
        synth.random_spec(rng, "not-a-class")
    with pytest.raises(ValueError, match="unsupported fine"):
        synth.random_spec(rng, fine="knit")


def test_houndstooth_is_a_2_2_twill_with_4_and_4_colour_order() -> None:
    spec = synth.random_spec(np.random.default_rng(0), "plaid/houndstooth")
    assert spec.fine == "twill"
    w = np.array(spec.weave)
    assert w.shape == (4, 4)
    assert (w.sum(axis=0) == 2).all()
    assert (w.sum(axis=1) == 2).all()
    # every pick is the previous one shifted by one end: a twill line
    assert any((np.roll(w[0], s) == w[1]).all() for s in (1, -1))
    assert spec.warp_order == spec.weft_order == (0, 0, 0, 0, 1, 1, 1, 1)


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="coarse"):
        synth.FabricSpec("solid", "plain", 50.0)
    with pytest.raises(ValueError, match="fine"):
        synth.FabricSpec("solid/plain-dyed", "knit", 50.0)
    with pytest.raises(ValueError, match="tightness"):
        synth.FabricSpec("solid/plain-dyed", "plain", 100.0)
    spec = synth.FabricSpec("solid/plain-dyed", "satin", 50.0)
    assert spec.weave == synth.weave_matrix("satin")
    assert spec.weft_colours == spec.warp_colours


# --- tightness ---------------------------------------------------------------------------
@pytest.mark.parametrize("ratio", [0.8, 1.0, 1.2])
@pytest.mark.parametrize("tightness", [40.0, 67.5, 95.0])
def test_yarn_cover_solves_the_cover_factor(tightness: float, ratio: float) -> None:
    spec = synth.FabricSpec("solid/plain-dyed", "plain", tightness, cover_ratio=ratio)
    cw, cf = spec.yarn_cover()
    assert cw / cf == pytest.approx(ratio)
    assert synth.cover_factor(cw, cf) == pytest.approx(tightness)


def _plain(tightness: float) -> synth.FabricSpec:
    return synth.FabricSpec(
        "solid/plain-dyed",
        "plain",
        tightness,
        period=11.3,  # not a whole number of pixels, so pixel rounding averages out
        warp_colours=(WHITE,),
        gap_colour=BLACK,
    )


def test_tighter_weave_shows_less_gap_and_coverage_matches_label() -> None:
    fractions = {}
    for t in (45.0, 70.0, 92.0):
        grey = _grey(_canonical(_plain(t), 128))
        # gaps render near 35 (shadow plus stray fibres), yarn edges near 120, crowns 250
        covered = float((grey > 90).mean())
        fractions[t] = covered
        assert covered == pytest.approx(t / 100.0, abs=0.04)
    assert fractions[45.0] < fractions[70.0] < fractions[92.0]


# --- structure of the colour orders -------------------------------------------------------
def _profiles(img: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Colour profiles along x (column means) and along y (row means), each averaged over
    `window` pixels (one thread spacing) so that the weave itself (yarn crowns and gaps)
    cancels and only colour-order changes remain."""
    f = img.astype(np.float64)
    kernel = np.ones(window) / window

    def smooth(profile: np.ndarray) -> np.ndarray:
        return np.stack([np.convolve(profile[:, c], kernel, "valid") for c in range(3)], 1)

    return smooth(f.mean(axis=0)), smooth(f.mean(axis=1))


def _axis_variances(img: np.ndarray, window: int) -> tuple[float, float]:
    px, py = _profiles(img, window)
    return float(px.var(axis=0).sum()), float(py.var(axis=0).sum())


def _axis_ranges(img: np.ndarray, window: int) -> tuple[float, float]:
    px, py = _profiles(img, window)
    return float(np.ptp(px, axis=0).max()), float(np.ptp(py, axis=0).max())


@pytest.mark.parametrize(
    "coarse",
    ["stripe/bold-stripe", "stripe/pin-stripe", "stripe/multi-stripe", "stripe/inlaid-stripe"],
)
@pytest.mark.parametrize("seed", [0, 1])
def test_stripes_vary_along_one_axis(coarse: str, seed: int) -> None:
    spec = synth.random_spec(np.random.default_rng(seed), coarse)
    spec = dataclasses.replace(spec, orientation=0, period=8.0)  # 4 px per thread at 128
    across, along = _axis_variances(_canonical(spec, 128), 4)
    # yarn irregularity (thread shades, fibre noise) leaves a little variance along
    assert across > 4 * along
    turned = dataclasses.replace(spec, orientation=90)
    across, along = _axis_variances(_canonical(turned, 128), 4)
    assert along > 4 * across


@pytest.mark.parametrize(
    "coarse", ["plaid/gingham", "plaid/tartan", "plaid/window-pane", "plaid/houndstooth"]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_plaids_vary_along_both_axes(coarse: str, seed: int) -> None:
    # 4 px per thread over 64 threads: wide enough to hold a window-pane line or a tartan sett
    spec = dataclasses.replace(synth.random_spec(np.random.default_rng(seed), coarse), period=4.0)
    solid = dataclasses.replace(spec, coarse="solid/plain-dyed", warp_order=(0,), weft_order=(0,))
    base = max(_axis_ranges(_canonical(solid, 256), 4))
    along_x, along_y = _axis_ranges(_canonical(spec, 256), 4)
    assert along_x > 2 * base
    assert along_y > 2 * base


def _period_scale_variance(spec: synth.FabricSpec, size: int = 96) -> float:
    img = _canonical(spec, size).astype(np.float32)
    sigma = spec.period * size / synth.REFERENCE_SIZE  # one thread spacing, in pixels
    smooth = cv2.GaussianBlur(img, (0, 0), sigma)
    return float(smooth.reshape(-1, 3).var(axis=0).sum())


def test_solid_is_flat_at_the_yarn_scale_compared_with_a_plaid() -> None:
    rng = np.random.default_rng(13)
    for _ in range(3):
        solid = dataclasses.replace(synth.random_spec(rng, "solid/plain-dyed"), period=6.0)
        plaid = dataclasses.replace(synth.random_spec(rng, "plaid/gingham"), period=6.0)
        assert _period_scale_variance(solid) * 5 < _period_scale_variance(plaid)


def test_houndstooth_render_has_both_colours_in_blocks() -> None:
    spec = synth.FabricSpec(
        "plaid/houndstooth",
        "twill",
        95.0,
        period=8.0,
        warp_colours=((20, 20, 40), WHITE),
        warp_order=(0, 0, 0, 0, 1, 1, 1, 1),
        weave=synth.weave_matrix("twill", 0),
    )
    grey = _grey(_canonical(spec, 128))
    dark, light = (grey < 60).mean(), (grey > 150).mean()
    assert 0.3 < dark < 0.7
    assert 0.25 < light < 0.7
    # at the tooth scale (8 threads = 64 ref px = 32 px) the image is strongly patterned
    assert cv2.GaussianBlur(grey, (0, 0), 2.0).std() > 40


def test_printed_motifs_cover_a_share_of_the_cloth() -> None:
    rng = np.random.default_rng(14)
    for coarse in ("pattern/printed-dots", "pattern/printed-floral"):
        spec = synth.random_spec(rng, coarse)
        plain = dataclasses.replace(spec, print_kind="none")
        a, b = _canonical(spec, 128).astype(int), _canonical(plain, 128).astype(int)
        changed = (np.abs(a - b).sum(axis=2) > 60).mean()
        assert 0.01 < changed < 0.6


@pytest.mark.parametrize(
    "coarse", ["pattern/jacquard-figure", "pattern/dobby-figure", "stripe/inlaid-stripe"]
)
def test_figured_weaves_change_the_weave_not_only_the_colour(coarse: str) -> None:
    spec = synth.random_spec(np.random.default_rng(15), coarse)
    flat = dataclasses.replace(spec, figure="none")
    a, b = _canonical(spec, 128), _canonical(flat, 128)
    assert (np.abs(a.astype(int) - b.astype(int)).sum(axis=2) > 30).mean() > 0.02


# --- photos ------------------------------------------------------------------------------
def test_photos_of_a_fabric_differ_but_are_closer_than_other_fabrics() -> None:
    images, _, ids = synth.generate_batch(np.random.default_rng(21), 8, 2, 48)
    assert not np.array_equal(images[0], images[1])
    means = images.reshape(len(images), -1, 3).mean(axis=1)
    d = np.linalg.norm(means[:, None] - means[None], axis=2)
    same = ids[:, None] == ids[None]
    off_diag = ~np.eye(len(ids), dtype=bool)
    assert d[same & off_diag].mean() < 0.5 * d[~same].mean()


def test_photo_variation_differs_from_canonical_view() -> None:
    spec = synth.random_spec(np.random.default_rng(22), "plaid/tartan")
    rng = np.random.default_rng(0)
    a, b = synth.render(spec, rng, 48), synth.render(spec, rng, 48)
    c = synth.render(spec, rng, 48, photo=False)
    d = synth.render(spec, rng, 48, photo=False)
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(c, d)  # the canonical view ignores the rng


def test_solid_red_measures_mostly_red() -> None:
    colour = pytest.importorskip("fabricsearch.colour")
    spec = synth.FabricSpec(
        "solid/plain-dyed", "twill", 90.0, warp_colours=((200, 25, 30),), gap_colour=(60, 8, 10)
    )
    red = colour.COLOUR_NAMES.index("red")
    for photo in (False, True):
        img = synth.render(spec, np.random.default_rng(0), 64, photo=photo)
        assert colour.quantise(img)[red, 3] > 0.6


# --- dataset and CLI ---------------------------------------------------------------------
def test_write_dataset_progress_and_cancel(tmp_path) -> None:
    seen = []
    path = synth.write_dataset(
        tmp_path / "a", 5, 9, size=24, photos_per_fabric=2, fmt="png", progress=seen.append
    )
    assert seen[-1].done == 5
    assert seen[-1].total == 5
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 5
    assert all((tmp_path / "a" / r["path"]).is_file() for r in rows)
    # same seed, same set; a larger count extends a smaller one
    again = synth.write_dataset(tmp_path / "b", 7, 9, size=24, photos_per_fabric=2, fmt="png")
    rows_b = list(csv.DictReader(again.open()))
    assert rows_b[:5] == rows
    assert (tmp_path / "a" / rows[4]["path"]).read_bytes() == (
        tmp_path / "b" / rows[4]["path"]
    ).read_bytes()
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        synth.write_dataset(tmp_path / "c", 3, 0, size=24, cancel=token)
    with pytest.raises(ValueError, match="format"):
        synth.write_dataset(tmp_path / "d", 1, 0, fmt="gif")


def test_cli_synth_writes_images_and_labels(tmp_path, capsys) -> None:
    from fabricsearch.cli import main

    out = tmp_path / "set"
    code = main(
        [
            "synth",
            str(out),
            "--count",
            "6",
            "--seed",
            "2",
            "--size",
            "32",
            "--photos-per-fabric",
            "2",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["images"] == 6
    with open(summary["labels_csv"], newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["path", "coarse", "fine", "tightness"]
        rows = list(reader)
    assert len(rows) == 6
    tax = Taxonomy.default()
    for path, coarse, fine, tightness in rows:
        assert not path.startswith("/")
        assert "\\" not in path
        img = cv2.imread(str(out / path))
        assert img is not None
        assert img.shape == (32, 32, 3)
        assert tax.has_coarse(coarse)
        assert fine in tax.fine
        assert 40.0 <= float(tightness) <= 95.0
    # classes are cycled, so a small set still spans several categories
    assert len({r[1] for r in rows}) == 3


def test_runs_give_float_position_and_length() -> None:
    col = np.array([[1], [1], [0], [1], [1], [1], [0]], dtype=bool)
    pos, length = synth._runs(col, axis=0)
    assert pos[:, 0][col[:, 0]].tolist() == [0, 1, 0, 1, 2]
    assert length[:, 0][col[:, 0]].tolist() == [2, 2, 3, 3, 3]
