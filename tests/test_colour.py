"""HSV colour quantisation (Table 1), the `colour` command and colour similarity (Eq. 2–4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from fabricsearch import colour
from fabricsearch.cli import main as cli_main

HYP = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- helpers -----------------------------------------------------------------------------
def solid(rgb: tuple[int, int, int], size: int = 32) -> np.ndarray:
    img = np.zeros((size, size, 3), dtype=np.uint8)
    img[:] = rgb
    return img


def save_png(tmp_path: Path, img: np.ndarray, name: str = "img.png") -> str:
    path = tmp_path / name
    Image.fromarray(img).save(path)
    return str(path)


def cli_colours(path: str, capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert cli_main(["colour", path, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    return data["colours"]


def classify_scalar(h: int, s: int, v: int) -> int:
    """Table 1 as intended, written as a plain if-chain (the oracle for `classify_hsv`)."""
    if v <= 46:
        return colour.BLACK
    if s <= 43:
        return colour.WHITE if v >= 221 else colour.GREY
    for cls, lo, hi in [
        (colour.RED, 0, 10),
        (colour.ORANGE, 11, 25),
        (colour.YELLOW, 26, 34),
        (colour.GREEN, 35, 77),
        (colour.CYAN, 78, 99),
        (colour.BLUE, 100, 124),
        (colour.PURPLE, 125, 155),
        (colour.RED, 156, 180),
    ]:
        if lo <= h <= hi:
            return cls
    raise AssertionError(f"unclassified {(h, s, v)}")


def circular_hue_distance(h1: float, h2: float) -> float:
    d = abs(h1 - h2) % 180.0
    return min(d, 180.0 - d)


def make_palette(entries: dict[str, tuple[float, float, float, float]]) -> np.ndarray:
    """Palette from {name: (h, s, v, proportion)}; proportions are normalised."""
    pal = np.zeros((10, 4), dtype=np.float32)
    for name, row in entries.items():
        pal[colour.colour_index(name)] = row
    pal[:, 3] /= pal[:, 3].sum()
    return pal


@st.composite
def palettes(draw: st.DrawFn, max_colours: int = 4) -> np.ndarray:
    k = draw(st.integers(1, max_colours))
    rows = draw(st.lists(st.integers(0, 9), min_size=k, max_size=k, unique=True))
    pal = np.zeros((10, 4), dtype=np.float32)
    for r in rows:
        pal[r, 0] = draw(st.floats(0, 179.99))
        pal[r, 1] = draw(st.floats(0, 255))
        pal[r, 2] = draw(st.floats(50, 200))  # room for the V shifts below
        pal[r, 3] = draw(st.floats(0.02, 1.0))
    pal[:, 3] /= pal[:, 3].sum()
    return pal


# --- the CLI: the acceptance checks ---------------------------------------------
def test_cli_pure_red_is_all_red(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    colours = cli_colours(save_png(tmp_path, solid((255, 0, 0))), capsys)
    assert [c["name"] for c in colours] == ["red"]
    assert colours[0]["proportion"] == pytest.approx(1.0)
    assert colours[0]["centre_hsv"] == pytest.approx([0.0, 255.0, 255.0])


def test_cli_half_red_half_blue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    img = solid((255, 0, 0))
    img[:, 16:] = (0, 0, 255)
    colours = cli_colours(save_png(tmp_path, img), capsys)
    shares = {c["name"]: c["proportion"] for c in colours}
    assert set(shares) == {"red", "blue"}
    assert shares["red"] == pytest.approx(0.5, abs=0.01)
    assert shares["blue"] == pytest.approx(0.5, abs=0.01)
    assert sum(shares.values()) == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize(
    ("rgb", "name"),
    [((128, 128, 128), "grey"), ((255, 255, 255), "white"), ((0, 0, 0), "black")],
)
def test_cli_achromatic(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], rgb: tuple[int, int, int], name: str
) -> None:
    colours = cli_colours(save_png(tmp_path, solid(rgb)), capsys)
    assert [c["name"] for c in colours] == [name]
    assert colours[0]["proportion"] == pytest.approx(1.0)


def test_cli_sorted_descending_and_sums_to_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    img = solid((255, 255, 255), 40)
    img[:20] = (0, 160, 0)  # green 50 %
    img[20:30] = (0, 0, 0)  # black 25 %
    img[30:34] = (255, 255, 0)  # yellow 10 %, white the remaining 15 %
    colours = cli_colours(save_png(tmp_path, img), capsys)
    assert [c["name"] for c in colours] == ["green", "black", "white", "yellow"]
    props = [c["proportion"] for c in colours]
    assert props == sorted(props, reverse=True)
    assert sum(props) == pytest.approx(1.0, abs=1e-6)
    assert props[0] == pytest.approx(0.5, abs=1e-6)


def test_cli_table_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["colour", save_png(tmp_path, solid((0, 0, 255)))]) == 0
    out = capsys.readouterr().out
    assert "blue" in out
    assert "100.0%" in out


@pytest.mark.parametrize("content", [None, b"", b"this is not an image"])
def test_cli_unreadable_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None
) -> None:
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    assert cli_main(["colour", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "error" in captured.err
    assert "bad.png" in captured.err


# --- classification (Table 1) ----------------------------------------------------------
def test_classify_every_hsv_value_against_the_table() -> None:
    """All 180×256×256 OpenCV HSV values: exactly the intended table, gap → white."""
    h, s, v = np.meshgrid(
        np.arange(180, dtype=np.uint8),
        np.arange(256, dtype=np.uint8),
        np.arange(256, dtype=np.uint8),
        indexing="ij",
    )
    cls = colour.classify_hsv(np.stack([h, s, v], axis=-1))
    h, s, v = h.astype(int), s.astype(int), v.astype(int)
    chroma = (s > 43) & (v > 46)
    expected_regions = {
        colour.BLACK: v <= 46,
        colour.GREY: (s <= 43) & (v > 46) & (v <= 220),
        colour.WHITE: (s <= 30) & (v >= 221),
        colour.RED: chroma & ((h <= 10) | (h >= 156)),
        colour.ORANGE: chroma & (h >= 11) & (h <= 25),
        colour.YELLOW: chroma & (h >= 26) & (h <= 34),
        colour.GREEN: chroma & (h >= 35) & (h <= 77),
        colour.CYAN: chroma & (h >= 78) & (h <= 99),
        colour.BLUE: chroma & (h >= 100) & (h <= 124),
        colour.PURPLE: chroma & (h >= 125) & (h <= 155),
    }
    covered = np.zeros(cls.shape, dtype=np.int32)
    for k, region in expected_regions.items():
        assert np.all(cls[region] == k), colour.COLOUR_NAMES[k]
        covered += region
    assert covered.max() == 1  # the intended table never overlaps
    gap = covered == 0
    # The only gap: light, faintly tinted pixels (30 < S <= 43, V > 220) → white.
    assert np.array_equal(gap, (s > 30) & (s <= 43) & (v > 220) & (v > 46))
    assert np.all(cls[gap] == colour.WHITE)


@HYP
@given(st.integers(0, 179), st.integers(0, 255), st.integers(0, 255))
def test_classify_matches_scalar_oracle(h: int, s: int, v: int) -> None:
    got = colour.classify_hsv(np.array([h, s, v], dtype=np.uint8))
    assert int(got) == classify_scalar(h, s, v)


# --- quantise --------------------------------------------------------------------------
def quantise_oracle(rgb: np.ndarray) -> np.ndarray:
    """Eq. 1 per pixel in plain Python: class, circular hue mean, mean S and V, 1 % drop."""
    hsv = cv2.cvtColor(rgb, cv2.COLOR_RGB2HSV).reshape(-1, 3)
    members: dict[int, list[tuple[int, int, int]]] = {}
    for h, s, v in hsv.tolist():
        members.setdefault(classify_scalar(h, s, v), []).append((h, s, v))
    n = len(hsv)
    pal = np.zeros((10, 4))
    for k, px in members.items():
        if len(px) / n < 0.01:
            continue
        c = sum(math.cos(math.radians(2 * h)) for h, _, _ in px)
        si = sum(math.sin(math.radians(2 * h)) for h, _, _ in px)
        hue = (math.degrees(math.atan2(si, c)) / 2) % 180
        pal[k] = [hue, np.mean([p[1] for p in px]), np.mean([p[2] for p in px]), len(px)]
    pal[:, 3] /= pal[:, 3].sum()
    return pal


@HYP
@given(hnp.arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12), st.just(3))))
def test_quantise_matches_oracle(rgb: np.ndarray) -> None:
    got = colour.quantise(rgb)
    want = quantise_oracle(rgb)
    assert got.dtype == np.float32
    assert got.shape == (10, 4)
    np.testing.assert_allclose(got[:, 3], want[:, 3], atol=1e-6)
    np.testing.assert_allclose(got[:, 1:3], want[:, 1:3], atol=1e-3)
    for k in range(10):
        if want[k, 3] > 0:
            assert circular_hue_distance(got[k, 0], want[k, 0]) < 1e-3
    assert got[:, 3].sum() == pytest.approx(1.0, abs=1e-6)


def test_red_hue_mean_is_circular() -> None:
    # Hues 2 and 178 (both red) must average to ~0, not to 90 (cyan).
    hsv = np.zeros((8, 8, 3), dtype=np.uint8)
    hsv[..., 1:] = 255
    hsv[:, :4, 0] = 2
    hsv[:, 4:, 0] = 178
    rgb = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    pal = colour.quantise(rgb)
    assert pal[colour.RED, 3] == pytest.approx(1.0)
    assert circular_hue_distance(float(pal[colour.RED, 0]), 0.0) <= 1.0


def test_small_classes_dropped_and_rest_renormalised() -> None:
    img = solid((255, 0, 0), 40)  # 1600 px
    img[0, :8] = (0, 0, 255)  # 8 px = 0.5 % blue: dropped
    img[1:, :20] = (0, 200, 0)  # 780 px green
    pal = colour.quantise(img)
    assert pal[colour.BLUE].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert pal[:, 3].sum() == pytest.approx(1.0, abs=1e-6)
    assert pal[colour.GREEN, 3] == pytest.approx(780 / 1592, abs=1e-6)
    assert pal[colour.RED, 3] == pytest.approx(812 / 1592, abs=1e-6)


def test_exactly_one_percent_is_kept() -> None:
    img = solid((255, 0, 0), 10)
    img[0, 0] = (0, 0, 255)  # 1 of 100 px
    assert colour.quantise(img)[colour.BLUE, 3] == pytest.approx(0.01)


@pytest.mark.parametrize("period", [2, 3, 4])
def test_large_image_sampled_without_blending_or_aliasing(period: int) -> None:
    # 1-px blue yarns every `period` px: resizing would blend them into red/purple and a
    # strided subsample could alias onto one colour; the sample must keep the shares.
    img = np.zeros((40, 2400, 3), dtype=np.uint8)
    img[:, :] = (255, 0, 0)
    img[:, period - 1 :: period] = (0, 0, 255)
    small = 1000
    assert img.shape[0] * img.shape[1] > small
    full = colour.quantise(img, max_pixels=None)
    sampled = colour.quantise(img, max_pixels=small)
    assert full[colour.BLUE, 3] == pytest.approx(1 / period)
    np.testing.assert_allclose(sampled[:, 3], full[:, 3], atol=0.06)
    np.testing.assert_allclose(sampled[:, :3], full[:, :3], atol=1e-3)
    # Deterministic: the same image always gives the same palette.
    np.testing.assert_array_equal(sampled, colour.quantise(img.copy(), max_pixels=small))


def test_default_working_sample_is_close_to_full_resolution(rng: np.random.Generator) -> None:
    img = rng.integers(0, 256, (600, 600, 3), dtype=np.uint8)  # 360k px > 262k sample
    assert img.shape[0] * img.shape[1] > colour.WORKING_PIXELS
    full = colour.quantise(img, max_pixels=None)
    sampled = colour.quantise(img)
    np.testing.assert_allclose(sampled[:, 3], full[:, 3], atol=0.005)


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
    ],
)
def test_quantise_rejects_bad_input(bad: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected|empty"):
        colour.quantise(bad)


def test_report_sorted_and_named() -> None:
    img = solid((255, 255, 0), 10)
    img[:3] = (0, 0, 0)
    rep = colour.quantise_report(img)
    assert [r["name"] for r in rep] == ["yellow", "black"]
    assert [r["proportion"] for r in rep] == pytest.approx([0.7, 0.3])
    assert rep == colour.palette_report(colour.quantise(img))


def test_colour_index_rejects_unknown() -> None:
    assert colour.colour_index("Grey") == colour.GREY
    with pytest.raises(ValueError, match="unknown colour"):
        colour.colour_index("magenta")


# --- colour similarity -----------------------------------------------------------------
@HYP
@given(palettes(), palettes())
def test_similarity_symmetric_and_bounded(p1: np.ndarray, p2: np.ndarray) -> None:
    s12 = colour.colour_similarity(p1, p2)
    assert s12 == pytest.approx(colour.colour_similarity(p2, p1), abs=1e-12)
    assert 0.0 <= s12 <= 1.0


@HYP
@given(palettes())
def test_similarity_identical_is_one(p: np.ndarray) -> None:
    assert colour.colour_similarity(p, p.copy()) == pytest.approx(1.0, abs=1e-9)


@HYP
@given(palettes(), st.floats(1.0, 50.0))
def test_similarity_below_one_when_shifted(p: np.ndarray, dv: float) -> None:
    shifted = p.copy()
    shifted[:, 2] += dv  # every centre darker/brighter by dv: a different palette
    assert colour.colour_similarity(p, shifted) < 1.0 - 1e-6


@HYP
@given(
    st.floats(0, 179.99),
    st.floats(60, 255),
    st.floats(50, 200),
    st.floats(0.5, 40),
    st.floats(0.5, 40),
    st.sampled_from([0, 1, 2]),
)
def test_similarity_falls_as_a_colour_moves_away(
    h: float, s: float, v: float, d1: float, d2: float, channel: int
) -> None:
    """One-colour palettes: similarity decreases strictly with the shift (hue wraps)."""
    near, far = sorted([d1, d2])
    if far - near < 0.1:
        far = near + 0.1
    base = make_palette({"red": (h, s, v, 1.0)})

    def shifted(d: float) -> np.ndarray:
        p = base.copy()
        p[colour.RED, channel] += d
        if channel == 0:
            p[colour.RED, 0] %= 180.0
        return p

    s_near = colour.colour_similarity(base, shifted(near))
    s_far = colour.colour_similarity(base, shifted(far))
    assert 1.0 > s_near > s_far >= 0.0


def test_similarity_hue_wraps_around() -> None:
    at_2 = make_palette({"red": (2, 255, 255, 1)})
    at_178 = make_palette({"red": (178, 255, 255, 1)})
    at_90 = make_palette({"cyan": (90, 255, 255, 1)})
    at_6 = make_palette({"red": (6, 255, 255, 1)})
    # 2 and 178 are 4 hue steps apart across 0, just like 2 and 6.
    assert colour.colour_similarity(at_2, at_178) == pytest.approx(
        colour.colour_similarity(at_2, at_6), abs=1e-6
    )
    assert colour.colour_similarity(at_2, at_178) > 0.8
    assert colour.colour_similarity(at_2, at_90) < 1e-6


def test_similarity_examples() -> None:
    red = make_palette({"red": (0, 255, 255, 1)})
    orange = make_palette({"orange": (15, 255, 255, 1)})
    blue = make_palette({"blue": (120, 255, 255, 1)})
    red_blue = make_palette({"red": (0, 255, 255, 1), "blue": (120, 255, 255, 1)})
    assert colour.colour_similarity(red, blue) < 1e-3
    assert 0.05 < colour.colour_similarity(red, orange) < 0.3  # neighbours, clearly different
    # Half the colours shared: K = (1 − |1 − 0.5|)·0.5 = 0.25, K(red, red) = 1, and
    # K(red_blue, red_blue) = 0.5 + 0.5 (+ a red–blue cross term of ~1e-16).
    assert colour.colour_similarity(red, red_blue) == pytest.approx(0.25, abs=1e-6)
    # Nearby hues count across class borders: red at 10 vs orange at 11 is nearly the same.
    r10 = make_palette({"red": (10, 200, 200, 1)})
    o11 = make_palette({"orange": (11, 200, 200, 1)})
    assert colour.colour_similarity(r10, o11) > 0.95


def test_similarity_of_empty_palette_is_zero() -> None:
    red = make_palette({"red": (0, 255, 255, 1)})
    assert colour.colour_similarity(red, np.zeros((10, 4), np.float32)) == 0.0


@HYP
@given(st.lists(palettes(), min_size=1, max_size=5), st.lists(palettes(), min_size=1, max_size=5))
def test_similarity_matrix_matches_scalar(a: list[np.ndarray], b: list[np.ndarray]) -> None:
    got = colour.colour_similarity_matrix(np.stack(a), np.stack(b))
    want = np.array([[colour.colour_similarity(x, y) for y in b] for x in a])
    assert got.dtype == np.float32
    assert got.shape == (len(a), len(b))
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_similarity_matrix_blocks_agree(rng: np.random.Generator) -> None:
    pals = np.stack([colour.quantise(rng.integers(0, 256, (6, 6, 3), np.uint8)) for _ in range(9)])
    whole = colour.colour_similarity_matrix(pals, pals)
    blocked = colour.colour_similarity_matrix(pals, pals, block=4)
    np.testing.assert_allclose(whole, blocked, atol=1e-7)
    assert colour.colour_similarity_matrix(pals[:0], pals).shape == (0, 9)
