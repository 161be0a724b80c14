"""Training data: an in-memory uint8 image cache, preprocessing and fabric-safe augmentation.

Every image is decoded once and stored square at a working size slightly above the network's
input size (shorter side resized, centre crop). Training takes random crops of random size
(small scale change), flips and 90° rotations from the cache; evaluation and encoding take the
centre crop. Colour is never jittered: colour is a label (§3.2).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from fabricsearch.errors import UserError
from fabricsearch.jobs import CancelToken, ProgressFn, check, report
from fabricsearch.similarity import LabelArrays

# Fixed normalisation (no dataset statistics, so a model is usable on any library).
MEAN = (0.5, 0.5, 0.5)
STD = (0.25, 0.25, 0.25)


class TrainingError(UserError, ValueError):
    """A training run that cannot start or go on for a reason the user can act on (too few
    labelled or decodable images, a method that cannot do what was asked)."""


def work_size_for(input_size: int) -> int:
    """Cached decode size: 15 % above the input so crops can move and scale a little."""
    return int(round(input_size * 1.15))


def default_loader(item: Any) -> np.ndarray:
    """An (H, W, 3) uint8 array is used as is; anything else is a path for `imaging.load_rgb`."""
    if isinstance(item, np.ndarray):
        return item
    from fabricsearch.imaging import load_rgb

    return load_rgb(item)


def prepare_image(rgb: np.ndarray, work_size: int) -> np.ndarray:
    """Resize the shorter side to `work_size` and centre-crop to a square → (W, W, 3) uint8."""
    from fabricsearch.imaging import centre_square

    return centre_square(rgb, work_size)


def build_cache(
    images: Sequence[Any],
    work_size: int,
    loader: Callable[[Any], np.ndarray] = default_loader,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    threads: int = 2,
) -> tuple[np.ndarray, np.ndarray]:
    """Decode every image once → (uint8 (N, W, W, 3), ok bool (N,)). Images that fail to decode
    (`imaging.ImageError`, `OSError`) are left black with ok = False so the caller can drop
    them. Decoding runs in a few threads (PIL and OpenCV release the GIL)."""
    from fabricsearch.imaging import ImageError

    n = len(images)
    cache = np.zeros((n, work_size, work_size, 3), dtype=np.uint8)
    ok = np.ones(n, dtype=bool)

    def one(i: int) -> None:
        try:
            cache[i] = prepare_image(loader(images[i]), work_size)
        except (ImageError, OSError):
            ok[i] = False

    report(progress, "decode images", 0, n, "img")
    chunk = 64
    with ThreadPoolExecutor(max_workers=max(1, threads)) as pool:
        for start in range(0, n, chunk):
            check(cancel)
            list(pool.map(one, range(start, min(n, start + chunk))))
            report(progress, "decode images", min(n, start + chunk), n, "img")
    return cache, ok


def to_tensor(
    batch: np.ndarray | torch.Tensor,
    mean: Sequence[float] = MEAN,
    std: Sequence[float] = STD,
) -> torch.Tensor:
    """uint8 (N, H, W, 3) → normalised float32 (N, 3, H, W) (the compact network's fixed
    normalisation by default; a pretrained backbone passes its own)."""
    t = torch.as_tensor(batch)
    if t.ndim == 3:
        t = t[None]
    t = t.permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, device=t.device).view(1, 3, 1, 1)
    s = torch.tensor(std, device=t.device).view(1, 3, 1, 1)
    return (t - m) / s


def center_crop(batch: np.ndarray, size: int) -> np.ndarray:
    """Centre crop of uint8 (N, W, W, 3) to (N, size, size, 3)."""
    w = batch.shape[1]
    if w == size:
        return batch
    o = (w - size) // 2
    return batch[:, o : o + size, o : o + size]


def preprocess(
    images: Sequence[np.ndarray], input_size: int, work_size: int | None = None
) -> torch.Tensor:
    """The inference view of RGB uint8 images: prepare at work size, centre crop, normalise."""
    ws = work_size or work_size_for(input_size)
    arr = np.stack([prepare_image(im, ws) for im in images])
    return to_tensor(center_crop(arr, input_size))


def augment(
    batch: np.ndarray, input_size: int, generator: torch.Generator, min_scale: float = 0.8
) -> torch.Tensor:
    """Random crop of random side in [min_scale·W, W] resized to `input_size`, random flips and
    90° rotations → normalised float (N, 3, S, S). Seeded by `generator` only."""
    n, w = batch.shape[0], batch.shape[1]
    x = to_tensor(batch)
    out = torch.empty((n, 3, input_size, input_size), dtype=torch.float32)
    lo = max(2, int(round(min_scale * w)))
    sides = torch.randint(lo, w + 1, (n,), generator=generator)
    u = torch.rand((n, 2), generator=generator)
    flips = torch.randint(0, 2, (n, 2), generator=generator)
    rots = torch.randint(0, 4, (n,), generator=generator)
    for i in range(n):
        s = int(sides[i])
        top = int(u[i, 0] * (w - s + 1))
        left = int(u[i, 1] * (w - s + 1))
        crop = x[i : i + 1, :, top : top + s, left : left + s]
        if s != input_size:
            crop = F.interpolate(
                crop, size=(input_size, input_size), mode="bilinear", align_corners=False
            )
        crop = crop[0]
        if flips[i, 0]:
            crop = crop.flip(2)
        if flips[i, 1]:
            crop = crop.flip(1)
        if rots[i]:
            crop = torch.rot90(crop, int(rots[i]), dims=(1, 2))
        out[i] = crop
    return out


@dataclass
class TrainingData:
    """Images + labels + split, independent of the catalogue.

    `images[i]` is anything `loader` understands (default: uint8 array or a path);
    `train_idx`/`val_idx`/`test_idx` index into it. `fabric_ids` are library ids if known.
    """

    images: Sequence[Any]
    labels: LabelArrays
    train_idx: np.ndarray
    val_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    test_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    fabric_ids: np.ndarray | None = None
    loader: Callable[[Any], np.ndarray] = default_loader
    fingerprint: str = ""  # set by the caller (e.g. from image hashes); else derived from labels
    #: (backbone, view_ids, progress, cancel) → (float32 (N, V, D), ok (N,)): cached pretrained
    #: features (the library sets it to its feature store); None computes them from `images`.
    features_fn: Callable[..., tuple[np.ndarray, np.ndarray]] | None = None

    def __post_init__(self) -> None:
        self.train_idx = np.asarray(self.train_idx, dtype=np.int64)
        self.val_idx = np.asarray(self.val_idx, dtype=np.int64)
        self.test_idx = np.asarray(self.test_idx, dtype=np.int64)
        if len(self.labels) != len(self.images):
            raise ValueError("labels and images differ in length")
        if len(self.train_idx) < 2:
            raise TrainingError("training needs at least two labelled training images")
        if not self.fingerprint:
            self.fingerprint = labels_fingerprint(self.labels, self.train_idx)


def labels_fingerprint(labels: LabelArrays, idx: np.ndarray, extra: Sequence[str] = ()) -> str:
    """A short stable hash of the training labels (and any extra strings, e.g. image hashes)."""
    h = hashlib.sha256()
    sub = labels.subset(np.asarray(idx, dtype=np.int64))
    for arr in (sub.major, sub.minor, sub.fine, sub.tightness, sub.palette):
        h.update(np.ascontiguousarray(arr).tobytes())
    for s in extra:
        h.update(s.encode())
    return h.hexdigest()[:16]
