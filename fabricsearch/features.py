"""Hand-crafted image features for the classical hashing baselines (LSH, ITQ).

One vector per image, three blocks, all computed for a whole batch at once (numpy/OpenCV):

* **colour**: joint HSV histogram, 16 hue × 4 saturation × 4 value bins (OpenCV HSV ranges);
* **LBP**: rotation-invariant uniform LBP (``riu2``, Ojala et al. 2002) at (P, R) = (8, 1) and
  (16, 2) with bilinear sampling, P + 2 bins each;
* **Gabor**: energy (magnitude of the even/odd pair) at 3 wavelengths × 6 orientations; per
  wavelength the mean and the standard deviation of the energy over the image, each *sorted
  over orientations* so that rotating the image (which permutes the orientations) does not
  change the vector while the anisotropy (how directional the texture is) is kept.

Histograms are L1-normalised then square-rooted (Hellinger map, so Euclidean distance between
features behaves like the Bhattacharyya distance between histograms); the Gabor block is
L2-normalised; each block is then weighted and the whole vector L2-normalised to unit length.

Every block is invariant to the eight 90° rotations and flips of a square image (the colour
histogram trivially; riu2 codes by construction, because those symmetries map LBP sampling
points onto sampling points; Gabor by the orientation sort, since the orientation set is
closed under them). That matches training, which augments with exactly those symmetries.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

HUE_BINS, SAT_BINS, VAL_BINS = 16, 4, 4
LBP_SCALES: tuple[tuple[int, float], ...] = ((8, 1.0), (16, 2.0))
GABOR_WAVELENGTHS: tuple[float, ...] = (4.0, 8.0, 16.0)
GABOR_ORIENTATIONS = 6  # multiples of 30°: closed under 90° rotation and reflection


@dataclass(frozen=True)
class FeatureConfig:
    """Block weights of the concatenated feature (each block has unit L2 norm before weighting)."""

    colour_weight: float = 1.0
    lbp_weight: float = 1.0
    gabor_weight: float = 1.0


def colour_dim() -> int:
    return HUE_BINS * SAT_BINS * VAL_BINS


def lbp_dim() -> int:
    return sum(p + 2 for p, _ in LBP_SCALES)


def gabor_dim() -> int:
    return 2 * GABOR_ORIENTATIONS * len(GABOR_WAVELENGTHS)


def feature_dim() -> int:
    """Length of the vector returned by `extract_features` (256 + 28 + 36 = 320)."""
    return colour_dim() + lbp_dim() + gabor_dim()


def _as_batch(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[3] != 3:
        raise ValueError(f"expected RGB images (N, H, W, 3), got shape {images.shape}")
    if images.dtype != np.uint8:
        raise ValueError(f"expected uint8 images, got {images.dtype}")
    return np.ascontiguousarray(images)


def _hellinger(hist: np.ndarray) -> np.ndarray:
    total = hist.sum(axis=1, keepdims=True)
    return np.sqrt(hist / np.maximum(total, 1e-12))


def colour_histogram(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB → (N, 256) Hellinger-mapped joint HSV histogram (unit L2 norm)."""
    images = _as_batch(images)
    n, h, w, _ = images.shape
    # One cvtColor call over the stacked batch: the conversion is per pixel.
    hsv = cv2.cvtColor(images.reshape(n * h, w, 3), cv2.COLOR_RGB2HSV).reshape(n, h * w, 3)
    hb = np.minimum(hsv[..., 0].astype(np.int64) * HUE_BINS // 180, HUE_BINS - 1)
    sb = hsv[..., 1].astype(np.int64) * SAT_BINS // 256
    vb = hsv[..., 2].astype(np.int64) * VAL_BINS // 256
    bins = (hb * SAT_BINS + sb) * VAL_BINS + vb
    flat = (np.arange(n)[:, None] * colour_dim() + bins).ravel()
    hist = np.bincount(flat, minlength=n * colour_dim()).reshape(n, colour_dim())
    return _hellinger(hist.astype(np.float64))


def _grey(images: np.ndarray) -> np.ndarray:
    n, h, w, _ = images.shape
    grey = cv2.cvtColor(images.reshape(n * h, w, 3), cv2.COLOR_RGB2GRAY).reshape(n, h, w)
    return grey.astype(np.float64) / 255.0


def _lbp_riu2(grey: np.ndarray, points: int, radius: float) -> np.ndarray:
    """riu2 LBP histogram (N, P + 2) of grey (N, H, W) float, on the interior of each image."""
    n, h, w = grey.shape
    m = int(np.ceil(radius)) + 1  # same margin on every side keeps the region square-symmetric
    centre = grey[:, m : h - m, m : w - m]
    ch, cw = centre.shape[1:]
    if ch <= 0 or cw <= 0:
        raise ValueError(f"image too small for LBP radius {radius}")
    angles = 2.0 * np.pi * np.arange(points) / points
    # Rounded like scikit-image so that cos(π/2) is exactly 0 and symmetric points coincide.
    dys = np.round(-radius * np.sin(angles), 9)
    dxs = np.round(radius * np.cos(angles), 9)
    bits = np.empty((points, n, ch, cw), dtype=bool)
    for p, (dy, dx) in enumerate(zip(dys, dxs, strict=True)):
        y0, x0 = int(np.floor(dy)), int(np.floor(dx))
        fy, fx = dy - y0, dx - x0

        def shifted(oy: int, ox: int) -> np.ndarray:
            return grey[:, m + oy : m + oy + ch, m + ox : m + ox + cw]

        value = (1 - fy) * (1 - fx) * shifted(y0, x0)
        if fx:
            value = value + (1 - fy) * fx * shifted(y0, x0 + 1)
        if fy:
            value = value + fy * (1 - fx) * shifted(y0 + 1, x0)
        if fx and fy:
            value = value + fy * fx * shifted(y0 + 1, x0 + 1)
        # A small tolerance makes flat regions robust to interpolation rounding.
        bits[p] = value >= centre - 1e-9
    ones = bits.sum(axis=0)
    transitions = (bits != np.roll(bits, 1, axis=0)).sum(axis=0)
    code = np.where(transitions <= 2, ones, points + 1).astype(np.int64)
    nb = points + 2
    flat = (np.arange(n)[:, None, None] * nb + code).ravel()
    return np.bincount(flat, minlength=n * nb).reshape(n, nb).astype(np.float64)


def lbp_histograms(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 → (N, 28) concatenated riu2 LBP histograms, each Hellinger-mapped
    (so the block has L2 norm √2 before the block normalisation in `extract_features`)."""
    grey = _grey(_as_batch(images))
    blocks = [_hellinger(_lbp_riu2(grey, p, r)) for p, r in LBP_SCALES]
    return np.concatenate(blocks, axis=1)


def _gabor_bank(wavelength: float) -> list[tuple[np.ndarray, np.ndarray]]:
    sigma = 0.56 * wavelength  # one-octave bandwidth
    half = int(np.ceil(2.5 * sigma))
    size = 2 * half + 1
    bank = []
    for k in range(GABOR_ORIENTATIONS):
        theta = np.pi * k / GABOR_ORIENTATIONS
        even = cv2.getGaborKernel(
            (size, size), sigma, theta, wavelength, 1.0, 0.0, ktype=cv2.CV_64F
        )
        odd = cv2.getGaborKernel(
            (size, size), sigma, theta, wavelength, 1.0, np.pi / 2, ktype=cv2.CV_64F
        )
        even -= even.mean()  # zero DC: the energy measures texture, not brightness
        bank.append((even, odd))
    return bank


def gabor_energy(images: np.ndarray) -> np.ndarray:
    """(N, H, W, 3) uint8 → (N, 36) orientation-sorted Gabor energy statistics (unit L2 norm)."""
    grey = _grey(_as_batch(images))
    n, h, w = grey.shape
    feats = []
    for wavelength in GABOR_WAVELENGTHS:
        bank = _gabor_bank(wavelength)
        r = bank[0][0].shape[0] // 2
        # Reflect-pad every image by the kernel radius and stack them vertically, so one
        # filter2D call filters the whole batch without images bleeding into each other.
        padded = np.pad(grey, ((0, 0), (r, r), (r, r)), mode="reflect")
        ph, pw = padded.shape[1:]
        mosaic = np.ascontiguousarray(padded.reshape(n * ph, pw)).astype(np.float32)
        means, stds = [], []
        for even, odd in bank:
            re = cv2.filter2D(
                mosaic, cv2.CV_32F, even.astype(np.float32), borderType=cv2.BORDER_REFLECT
            )
            im = cv2.filter2D(
                mosaic, cv2.CV_32F, odd.astype(np.float32), borderType=cv2.BORDER_REFLECT
            )
            energy = np.sqrt(re.astype(np.float64) ** 2 + im.astype(np.float64) ** 2)
            energy = energy.reshape(n, ph, pw)[:, r : r + h, r : r + w]
            means.append(energy.mean(axis=(1, 2)))
            stds.append(energy.std(axis=(1, 2)))
        feats.append(-np.sort(-np.stack(means, axis=1), axis=1))
        feats.append(-np.sort(-np.stack(stds, axis=1), axis=1))
    out = np.concatenate(feats, axis=1)
    norm = np.linalg.norm(out, axis=1, keepdims=True)
    # A textureless image has only float rounding left as energy: keep it zero, not amplified.
    return np.where(norm > 1e-6, out / np.maximum(norm, 1e-12), 0.0)


def extract_features(images: np.ndarray, config: FeatureConfig | None = None) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB (or one (H, W, 3) image) → float32 (N, `feature_dim()`), unit L2 norm.

    Blocks in order colour | LBP | Gabor, each scaled to unit norm then by its weight."""
    cfg = config or FeatureConfig()
    images = _as_batch(images)
    blocks = []
    for block, weight in (
        (colour_histogram(images), cfg.colour_weight),
        (lbp_histograms(images), cfg.lbp_weight),
        (gabor_energy(images), cfg.gabor_weight),
    ):
        norm = np.maximum(np.linalg.norm(block, axis=1, keepdims=True), 1e-12)
        blocks.append(weight * block / norm)
    out = np.concatenate(blocks, axis=1)
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out.astype(np.float32)
