"""HSV colour quantisation (paper §3.2, Table 1) and colour similarity (Eq. 2–4).

A *palette* is a float32 array ``(10, 4)``: one row per class in `COLOUR_NAMES` order,
columns ``h (0–180), s (0–255), v (0–255), proportion``. Classes that are absent, or that
cover less than `MIN_PROPORTION` of the image, have proportion 0 and centre 0; the
proportions of a palette sum to 1. Decisions (gap rule, circular hue mean, working
resolution, the exact similarity formula) are written down in docs/similarity.md.

Pure numpy/OpenCV: no torch here (the torch batch form lives in `similarity`).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import cv2
import numpy as np

COLOUR_NAMES: tuple[str, ...] = (
    "black",
    "grey",
    "white",
    "red",
    "orange",
    "yellow",
    "green",
    "cyan",
    "blue",
    "purple",
)
N_COLOURS = len(COLOUR_NAMES)
BLACK, GREY, WHITE, RED, ORANGE, YELLOW, GREEN, CYAN, BLUE, PURPLE = range(N_COLOURS)

#: Classes covering less than this fraction of the pixels are dropped (paper: 1 %).
MIN_PROPORTION = 0.01
#: Pixels quantisation looks at (512 × 512); larger photos are sampled, see `working_pixels`.
WORKING_PIXELS = 512 * 512
#: Longest side, at least, of the decode a palette is measured on (import and query): a JPEG
#: is decoded at the coarsest DCT scale that keeps this many pixels, never area-resized below
#: it, so the yarns of a fine check keep their own colours (docs/similarity.md, issue 24).
PALETTE_SIDE = 1536
#: Width of the Gaussian weight over centre distance in the unit HSV cylinder (see docs).
COLOUR_SIGMA = 0.25

# Table 1 thresholds (OpenCV HSV: H 0–180, S and V 0–255), as intended by the paper.
V_BLACK_MAX = 46  # V <= 46 → black, whatever H and S
S_ACHROMATIC_MAX = 43  # S <= 43 (and V > 46) → grey or white
V_GREY_MAX = 220  # achromatic with V > 220 → white (this also closes the 30 < S <= 43 gap)

# Hue ranges of the chromatic classes (inclusive), red wraps around 180.
_HUE_RANGES: tuple[tuple[int, int, int], ...] = (
    (RED, 0, 10),
    (ORANGE, 11, 25),
    (YELLOW, 26, 34),
    (GREEN, 35, 77),
    (CYAN, 78, 99),
    (BLUE, 100, 124),
    (PURPLE, 125, 155),
    (RED, 156, 180),
)


def _build_hue_lut() -> np.ndarray:
    lut = np.empty(256, dtype=np.uint8)
    lut[:] = RED  # OpenCV never yields H > 179 for 8-bit images; treat it as red (wraps)
    for cls, lo, hi in _HUE_RANGES:
        lut[lo : hi + 1] = cls
    return lut


def _build_value_lut() -> np.ndarray:
    lut = np.full(256, GREY, dtype=np.uint8)
    lut[: V_BLACK_MAX + 1] = BLACK
    lut[V_GREY_MAX + 1 :] = WHITE
    return lut


_HUE_LUT = _build_hue_lut()
_VALUE_LUT = _build_value_lut()
# Hue angle tables for the circular mean: OpenCV hue h maps to angle 2πh/180.
_HUE_ANGLE = 2.0 * np.pi * np.arange(256, dtype=np.float64) / 180.0
_HUE_COS = np.cos(_HUE_ANGLE)
_HUE_SIN = np.sin(_HUE_ANGLE)
_LEVELS = np.arange(256, dtype=np.float64)


# --- quantisation ----------------------------------------------------------------------
def classify_hsv(hsv: np.ndarray) -> np.ndarray:
    """Class index (uint8, `COLOUR_NAMES` order) of every OpenCV HSV pixel in ``hsv (..., 3)``.

    Every pixel gets exactly one class: black if V <= 46; otherwise achromatic if S <= 43
    (white if V > 220, else grey); otherwise the chromatic class of its hue.
    """
    hsv = np.asarray(hsv)
    if hsv.dtype != np.uint8 or hsv.shape[-1] != 3:
        raise ValueError(f"expected uint8 HSV (..., 3), got {hsv.dtype} {hsv.shape}")
    return _classify_planes(hsv[..., 0], hsv[..., 1], hsv[..., 2])


def _classify_planes(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    achromatic = (s <= S_ACHROMATIC_MAX) | (v <= V_BLACK_MAX)
    return np.where(achromatic, _VALUE_LUT[v], _HUE_LUT[h])


@functools.lru_cache(maxsize=8)
def _sample_indices(n_pixels: int, n_samples: int) -> np.ndarray:
    # Fixed seed: the same image always gives the same palette. Sorted for cache-friendly
    # gathering. Uniform random positions have no period, so they cannot alias with the
    # periodic yarn structure of a weave the way a strided subsample can.
    rng = np.random.default_rng(0x5EED)
    idx = np.sort(rng.integers(0, n_pixels, size=n_samples, dtype=np.int64))
    idx.setflags(write=False)
    return idx


def working_pixels(rgb: np.ndarray, max_pixels: int | None = WORKING_PIXELS) -> np.ndarray:
    """The pixels quantisation looks at, as ``(P, 1, 3)`` uint8: all of them, or for larger
    images a fixed pseudo-random sample of ``max_pixels`` original pixels.

    Sampling, unlike resizing, keeps every sampled colour as it is in the photo (no blending
    of neighbouring yarns), so the palette estimates the full-resolution one.
    """
    flat = rgb.reshape(-1, 3)
    if max_pixels is not None and len(flat) > max_pixels:
        flat = flat[_sample_indices(len(flat), max_pixels)]
    return np.ascontiguousarray(flat).reshape(-1, 1, 3)


def quantise(rgb: np.ndarray, max_pixels: int | None = WORKING_PIXELS) -> np.ndarray:
    """Quantise an RGB image (uint8 ``(H, W, 3)``) into a palette: float32 ``(10, 4)``.

    Rows follow `COLOUR_NAMES`; columns are the class centre ``h, s, v`` (Eq. 1, hue
    averaged on the circle) and the class proportion. Classes under `MIN_PROPORTION` are
    dropped (proportion and centre 0) and the rest renormalised to sum to 1. Images with
    more than ``max_pixels`` pixels are quantised on a fixed random sample of that many of
    their pixels (``None``: every pixel); see `working_pixels`.
    """
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise ValueError("empty image")
    hsv = cv2.cvtColor(working_pixels(rgb, max_pixels), cv2.COLOR_RGB2HSV)
    h, sat, val = (plane.reshape(-1) for plane in cv2.split(hsv))
    cls = _classify_planes(h, sat, val)
    # One 256-bin histogram per class and channel (uint16 keys class·256 + value): integer
    # bincounts are much faster than weighted ones, and exact. The hue histogram also gives
    # the circular mean with only 10×256 trig values.
    key = cls.astype(np.uint16) << 8
    hue_hist, sat_hist, val_hist = (
        np.bincount(key | plane, minlength=N_COLOURS * 256).reshape(N_COLOURS, 256)
        for plane in (h, sat, val)
    )
    counts = hue_hist.sum(axis=1).astype(np.float64)
    sum_cos = hue_hist @ _HUE_COS
    sum_sin = hue_hist @ _HUE_SIN
    sum_s = sat_hist @ _LEVELS
    sum_v = val_hist @ _LEVELS
    return _assemble(counts, sum_cos, sum_sin, sum_s, sum_v)


def _assemble(
    counts: np.ndarray,
    sum_cos: np.ndarray,
    sum_sin: np.ndarray,
    sum_s: np.ndarray,
    sum_v: np.ndarray,
) -> np.ndarray:
    total = counts.sum()
    proportion = counts / total
    keep = proportion >= MIN_PROPORTION
    proportion = np.where(keep, proportion, 0.0)
    proportion /= proportion.sum()  # at least one of 10 classes holds >= 10 %
    safe = np.maximum(counts, 1.0)
    hue = np.degrees(np.arctan2(sum_sin, sum_cos)) / 2.0  # angle back to OpenCV 0–180
    hue = np.mod(hue, 180.0)
    hue = np.where(np.isclose(hue, 180.0), 0.0, hue)
    palette = np.zeros((N_COLOURS, 4), dtype=np.float64)
    palette[:, 0] = hue
    palette[:, 1] = sum_s / safe
    palette[:, 2] = sum_v / safe
    palette[~keep, :3] = 0.0
    palette[:, 3] = proportion
    return palette.astype(np.float32)


def palette_report(palette: np.ndarray) -> list[dict[str, Any]]:
    """The classes present in a palette as ``{"name", "centre_hsv", "proportion"}`` dicts,
    sorted by proportion, descending (ties in `COLOUR_NAMES` order)."""
    palette = _check_palette(palette)
    rows = [i for i in range(N_COLOURS) if palette[i, 3] > 0]
    rows.sort(key=lambda i: (-float(palette[i, 3]), i))
    return [
        {
            "name": COLOUR_NAMES[i],
            "centre_hsv": [round(float(x), 2) for x in palette[i, :3]],
            "proportion": round(float(palette[i, 3]), 6),
        }
        for i in rows
    ]


def quantise_report(rgb: np.ndarray) -> list[dict[str, Any]]:
    """`palette_report` of `quantise` of an RGB image."""
    return palette_report(quantise(rgb))


def colour_index(name: str) -> int:
    """Row of a colour class by name; raises ValueError for an unknown name."""
    try:
        return COLOUR_NAMES.index(name.strip().lower())
    except ValueError:
        raise ValueError(
            f"unknown colour {name!r}; expected one of {', '.join(COLOUR_NAMES)}"
        ) from None


# --- similarity ------------------------------------------------------------------------
#
# S_C(C1, C2) = K(C1, C2) / sqrt(K(C1, C1) K(C2, C2)),
# K(C1, C2)   = Σ_i Σ_j a_ij (1 − |p_i − p_j|) min(p_i, p_j)            (Eq. 2 and 4)
# a_ij        = exp(−‖e(x_i) − e(x_j)‖² / (2 σ²))                        (Eq. 3, as intended)
# e(h, s, v)  = (s' cos 2πh/180, s' sin 2πh/180, v'),  s' = s/255, v' = v/255
#
# e places a centre in the HSV cylinder (hue as angle), so hue is circular and the hue of
# unsaturated colours matters little. K is a positive-definite kernel, so the normalised
# S_C lies in [0, 1] and is 1 for identical palettes. See docs/similarity.md.


def hsv_embed(centres: np.ndarray) -> np.ndarray:
    """Cartesian HSV-cylinder coordinates ``(..., 3)`` of OpenCV HSV centres ``(..., 3)``."""
    centres = np.asarray(centres, dtype=np.float64)
    angle = centres[..., 0] * (2.0 * np.pi / 180.0)
    s = centres[..., 1] / 255.0
    v = centres[..., 2] / 255.0
    return np.stack([s * np.cos(angle), s * np.sin(angle), v], axis=-1)


def _check_palette(palette: np.ndarray) -> np.ndarray:
    palette = np.asarray(palette)
    if palette.shape[-2:] != (N_COLOURS, 4):
        raise ValueError(f"expected palette (..., {N_COLOURS}, 4), got {palette.shape}")
    return palette


def colour_similarity(p1: np.ndarray, p2: np.ndarray, sigma: float = COLOUR_SIGMA) -> float:
    """Colour similarity S_C of two palettes (scalar reference form), in [0, 1].

    0 when either palette is empty (all proportions 0)."""
    p1 = _check_palette(p1).astype(np.float64)
    p2 = _check_palette(p2).astype(np.float64)

    def kernel(x: np.ndarray, y: np.ndarray) -> float:
        total = 0.0
        for i in range(N_COLOURS):
            pi = x[i, 3]
            if pi <= 0:
                continue
            for j in range(N_COLOURS):
                pj = y[j, 3]
                if pj <= 0:
                    continue
                d2 = _centre_distance_sq(x[i, :3], y[j, :3])
                a = math.exp(-d2 / (2.0 * sigma * sigma))
                total += a * (1.0 - abs(pi - pj)) * min(pi, pj)
        return total

    k11, k22 = kernel(p1, p1), kernel(p2, p2)
    if k11 <= 0 or k22 <= 0:
        return 0.0
    return float(min(1.0, kernel(p1, p2) / math.sqrt(k11 * k22)))


def _centre_distance_sq(c1: np.ndarray, c2: np.ndarray) -> float:
    """Squared distance of two centres in the HSV cylinder, written in polar form."""
    s1, s2 = c1[1] / 255.0, c2[1] / 255.0
    dv = (c1[2] - c2[2]) / 255.0
    dtheta = (c1[0] - c2[0]) * (2.0 * math.pi / 180.0)
    return s1 * s1 + s2 * s2 - 2.0 * s1 * s2 * math.cos(dtheta) + dv * dv


def _pair_kernel(
    e1: np.ndarray, q1: np.ndarray, e2: np.ndarray, q2: np.ndarray, sigma: float
) -> np.ndarray:
    """K for every pair: e (N, K, 3) embeddings, q (N, K) proportions → (N1, N2)."""
    # Expanded form in float64: cancellation error ~1e-16, far below the 1e-6 we promise.
    n1 = np.einsum("aik,aik->ai", e1, e1)
    n2 = np.einsum("bjk,bjk->bj", e2, e2)
    # The three coordinates' products written out: einsum's generic loop over a length-3 axis
    # took 9 of 18 ms for 14 query palettes × 1,000 candidates; element-wise, each pair's value
    # is computed alike whatever the block size (no BLAS), as the instant re-rank requires.
    x, y = e1[:, None, :, None, :], e2[None, :, None, :, :]
    dot = x[..., 0] * y[..., 0] + x[..., 1] * y[..., 1] + x[..., 2] * y[..., 2]
    d2 = np.maximum(n1[:, None, :, None] + n2[None, :, None, :] - 2.0 * dot, 0.0)
    a = np.exp(d2 * (-0.5 / (sigma * sigma)))
    pa, pb = q1[:, None, :, None], q2[None, :, None, :]
    return np.einsum("abij,abij->ab", a, (1.0 - np.abs(pa - pb)) * np.minimum(pa, pb))


def self_kernel(palettes: np.ndarray, sigma: float = COLOUR_SIGMA) -> np.ndarray:
    """K(C, C) for each palette in ``(N, 10, 4)`` → ``(N,)`` float64."""
    palettes = _check_palette(palettes).reshape(-1, N_COLOURS, 4).astype(np.float64)
    e = hsv_embed(palettes[..., :3])
    q = palettes[..., 3]
    diff = e[:, :, None, :] - e[:, None, :, :]
    a = np.exp(np.einsum("nijk,nijk->nij", diff, diff) * (-0.5 / (sigma * sigma)))
    pa, pb = q[:, :, None], q[:, None, :]
    return np.einsum("nij,nij->n", a, (1.0 - np.abs(pa - pb)) * np.minimum(pa, pb))


def compact_palettes(palettes: np.ndarray) -> np.ndarray:
    """``(N, K, 4)`` with each palette's present classes first (largest share first) and K
    the most classes any palette has. Absent classes contribute nothing to K(·,·), so this
    cuts the 10×10 centre pairs to K×K (typical photos have 3–6 colours)."""
    order = np.argsort(-palettes[..., 3], axis=1, kind="stable")
    k = max(1, int((palettes[..., 3] > 0).sum(axis=1).max(initial=0)))
    return np.take_along_axis(palettes, order[:, :k, None], axis=1)


def colour_similarity_matrix(
    p1: np.ndarray,
    p2: np.ndarray,
    sigma: float = COLOUR_SIGMA,
    block: int = 1 << 14,
) -> np.ndarray:
    """S_C between every palette of ``p1 (N, 10, 4)`` and ``p2 (M, 10, 4)`` → ``(N, M)`` float32.

    Computed in float64 in blocks of about ``block`` palette pairs to bound memory."""
    p1 = _check_palette(p1).reshape(-1, N_COLOURS, 4).astype(np.float64)
    p2 = _check_palette(p2).reshape(-1, N_COLOURS, 4).astype(np.float64)
    n, m = len(p1), len(p2)
    out = np.zeros((n, m), dtype=np.float32)
    if n == 0 or m == 0:
        return out
    k1, k2 = self_kernel(p1, sigma), self_kernel(p2, sigma)
    p1, p2 = compact_palettes(p1), compact_palettes(p2)
    e1, q1 = hsv_embed(p1[..., :3]), p1[..., 3]
    e2, q2 = hsv_embed(p2[..., :3]), p2[..., 3]
    rows = max(1, min(n, block // max(1, m)))
    cols = max(1, min(m, block // rows))
    for r0 in range(0, n, rows):
        r1 = min(n, r0 + rows)
        for c0 in range(0, m, cols):
            c1 = min(m, c0 + cols)
            k = _pair_kernel(e1[r0:r1], q1[r0:r1], e2[c0:c1], q2[c0:c1], sigma)
            norm = np.sqrt(np.outer(k1[r0:r1], k2[c0:c1]))
            with np.errstate(divide="ignore", invalid="ignore"):
                s = np.where(norm > 0, k / np.where(norm > 0, norm, 1.0), 0.0)
            out[r0:r1, c0:c1] = np.clip(s, 0.0, 1.0)
    return out


# --- a colour comparison that survives a camera -----------------------------------------
#
# A photo of an archive fabric taken with another camera differs from the archive photo by the
# camera's white balance and exposure: to a good approximation a gain per RGB channel (von
# Kries) and a tone curve (gamma). Such a shift moves pixels across the Table 1 thresholds
# (a warm cast turns light greys into "orange"), and S_C penalises the split proportions hard.
# So the query is quantised as it is *and* under a small grid of plausible camera corrections
# (warm ↔ cool gains × three tone curves), each with the paper's quantisation unchanged, and a
# candidate's colour similarity is the best S_C over them. Gains stay within what white
# balance does (±12 % on red and blue), so a red colourway never becomes a blue one.
# Measured in benchmarks/bench_same_fabric.py and tests/test_similarity.py; docs/search.md.

#: Warm ↔ cool steps of the correction grid: red × STEP^t, blue × STEP^−t.
CAMERA_WB_STEP = 1.06
CAMERA_WB_STEPS = (-2, -1, 0, 1, 2)
#: Tone curves of the grid: v' = v^γ on 0–1 values (γ < 1 brightens).
CAMERA_GAMMAS = (1.0, 0.85, 1.0 / 0.85)
#: Pixels sampled for each corrected quantisation (the uncorrected palette uses the usual ones).
#: 16,384: a class proportion of 0.1 varies by ±0.002 between samples; the same-fabric
#: benchmark gives the same figures as with 65,536 on both sets, and the 13 corrected palettes
#: of a query take 15 ms instead of 39 ms (docs/benchmarks.md, "Query latency").
CAMERA_PIXELS = 1 << 14


def camera_corrections() -> list[tuple[float, float, float, float]]:
    """The correction grid as (red gain, green gain, blue gain, gamma); the identity first."""
    out = [(1.0, 1.0, 1.0, 1.0)]
    for gamma in CAMERA_GAMMAS:
        for t in CAMERA_WB_STEPS:
            g = (CAMERA_WB_STEP**t, 1.0, CAMERA_WB_STEP ** (-t), gamma)
            if g != out[0]:
                out.append(g)
    return out


def correct_pixels(rgb: np.ndarray, gains: tuple[float, float, float], gamma: float) -> np.ndarray:
    """RGB uint8 with the tone curve v^γ, then the channel gains applied (clipped to 0–255)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    lut = np.stack(
        [np.clip(np.rint(255.0 * g * x**gamma), 0, 255).astype(np.uint8) for g in gains], axis=-1
    )
    out = np.empty_like(rgb)
    for c in range(3):
        out[..., c] = lut[rgb[..., c], c]
    return out


def camera_palettes(rgb: np.ndarray, max_pixels: int = CAMERA_PIXELS) -> np.ndarray:
    """Palettes ``(G, 10, 4)`` of an RGB photo under every `camera_corrections` entry: row 0 is
    `quantise(rgb)` itself, the others quantise a fixed pixel sample after the correction."""
    base = quantise(rgb)
    pixels = working_pixels(np.asarray(rgb), max_pixels)
    out = [base]
    for r, g, b, gamma in camera_corrections()[1:]:
        out.append(quantise(correct_pixels(pixels, (r, g, b), gamma), max_pixels=None))
    return np.stack(out)


def camera_tolerant_similarity(
    query_palettes: np.ndarray, palettes: np.ndarray, sigma: float = COLOUR_SIGMA
) -> np.ndarray:
    """S_C of each of ``palettes (M, 10, 4)`` to the query under its best camera correction:
    ``query_palettes (G, 10, 4)`` from `camera_palettes` → ``(M,)`` float32."""
    s = colour_similarity_matrix(query_palettes, palettes, sigma)
    return s.max(axis=0) if len(s) else np.zeros(len(palettes), np.float32)
