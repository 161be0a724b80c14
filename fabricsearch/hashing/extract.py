"""The feature extractor: a photo → its pretrained-backbone feature, and the library's features
kept in its feature store (`fabricsearch.featurestore`, which only stores).

`input_tensor` / `decode_for` + `hashing.data.prepare_image` are the one input recipe of a
pretrained backbone: the same photo gives the same tensor in training, encoding, import and
search (view 0 is the centre crop of the shorter side resized to the backbone's input size;
the photo's one decode, at least `colour.PALETTE_SIDE` px and for a large JPEG at a reduced
DCT scale, is area-resized to a longest side of twice that first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from fabricsearch.featurestore import MAIN_VIEWS, store_for
from fabricsearch.jobs import CancelToken, ProgressFn, check, report
from fabricsearch.threads import cv2_threads, threads_for, torch_threads

log = logging.getLogger(__name__)


def view_images(square: np.ndarray, view_ids: Sequence[int] = MAIN_VIEWS) -> np.ndarray:
    """Views (see `VIEW_NAMES`) of one prepared square (S, S, 3) → (len(view_ids), S, S, 3)."""
    import cv2

    s = square.shape[0]
    out = []
    for v in view_ids:
        if v == 0:
            out.append(square)
        elif v == 1:
            out.append(square[:, ::-1])
        elif v == 2:
            m = int(round(s * 0.1))
            zoom = np.ascontiguousarray(square[m : s - m, m : s - m])
            out.append(cv2.resize(zoom, (s, s), interpolation=cv2.INTER_LINEAR))
        elif v == 3:
            out.append(np.rot90(square))
        else:
            raise ValueError(f"unknown view {v}")
    return np.stack([np.ascontiguousarray(v) for v in out])


def input_tensor(rgb: np.ndarray, backbone: str) -> torch.Tensor:
    """The one input recipe: an RGB photo → the backbone's (1, 3, S, S) input (view 0)."""
    from fabricsearch.hashing.backbones import LITE_MEAN, LITE_STD, get_spec
    from fabricsearch.hashing.data import prepare_image, to_tensor

    size = get_spec(backbone).input_size
    return to_tensor(prepare_image(rgb, size)[None], LITE_MEAN, LITE_STD)


def decode_for(path: Any, size: int) -> np.ndarray:
    """Decode a photo for a backbone of input `size` (an RGB array passes through): the
    photo's one decode, `imaging.decode_fine` at `colour.PALETTE_SIDE` (a large JPEG at a
    reduced DCT scale), area-resized to a longest side of at most 2·size (`net_pixels`). The
    import worker and the query derive the network's pixels from that same decode, so every
    path (training, encoding, import, query) gets the same pixels."""
    if isinstance(path, np.ndarray):
        return path
    from fabricsearch.colour import PALETTE_SIDE
    from fabricsearch.imaging import decode_fine

    return net_pixels(decode_fine(path, PALETTE_SIDE)[0], size)


def net_pixels(fine: np.ndarray, size: int) -> np.ndarray:
    """The network's pixels from a photo's fine decode (`imaging.decode_fine`'s first array):
    what `decode_for` returns for the file, without decoding it again (the query's path; the
    import worker's `imaging.decode_fine(…, net_side=2·size)` is this same resize)."""
    from fabricsearch.imaging import resize_max_side

    return resize_max_side(fine, 2 * size)


@torch.inference_mode()
def compute_features(
    items: Sequence[Any],
    backbone: str,
    view_ids: Sequence[int] = MAIN_VIEWS,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    loader: Callable[[Any], np.ndarray] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    sink: Callable[[list[int], np.ndarray], None] | None = None,
    stage: str = "features",
) -> tuple[np.ndarray, np.ndarray]:
    """Backbone features of photos (paths or RGB arrays) → (float16 (N, V, dim), ok (N,)) for
    the V views `view_ids`.

    Decoding runs in two threads ahead of the network; `sink(indices, feats)` receives each
    finished batch (the store appends it, so a killed run keeps what it computed)."""
    from fabricsearch.hashing.backbones import get_spec, load_backbone
    from fabricsearch.hashing.data import prepare_image
    from fabricsearch.imaging import ImageError

    spec = get_spec(backbone)
    dev = torch.device(device)
    net = load_backbone(backbone, dev, fused=True)
    size = spec.input_size
    n = len(items)
    views = len(view_ids)
    out = np.zeros((n, views, spec.feature_dim), dtype=np.float16)
    ok = np.ones(n, dtype=bool)
    load = loader or (lambda item: decode_for(item, size))

    def prep(i: int) -> np.ndarray | None:
        try:
            return view_images(prepare_image(load(items[i]), size), view_ids)
        except (ImageError, OSError, ValueError):
            return None

    report(progress, stage, 0, n, "img")
    # One torch thread for a query, the free cores for a batch, in this thread only
    # (fabricsearch/threads.py: more threads were several times slower on a busy laptop);
    # the decoding threads' OpenCV calls run single-threaded beside it (`cv2_threads`).
    with (
        torch_threads(threads_for(n)),
        cv2_threads(1),
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        starts = list(range(0, n, batch_size))
        pending = pool.map(lambda s: [prep(i) for i in range(s, min(n, s + batch_size))], starts)
        for start, prepared in zip(starts, pending, strict=True):
            check(cancel)
            idx = list(range(start, min(n, start + batch_size)))
            good = [j for j, p in zip(idx, prepared, strict=True) if p is not None]
            for j, p in zip(idx, prepared, strict=True):
                if p is None:
                    ok[j] = False
            if good:
                arr = np.concatenate([p for p in prepared if p is not None])
                f = forward_batch(net, arr, dev, views)
                out[good] = f
                if sink is not None:
                    sink(good, f)
            report(progress, stage, idx[-1] + 1, n, "img")
    return out, ok


def forward_batch(
    net: torch.nn.Module, squares: np.ndarray, device: torch.device, views: int = 1
) -> np.ndarray:
    """The network pass of the input recipe: prepared squares uint8 ``(N·views, S, S, 3)``
    → float16 features ``(N, views, dim)`` (normalised as the ImageNet weights expect,
    channels-last, mixed precision on CUDA). Every feature is computed here: the import's
    `featurefeed` and `compute_features` give the same feature for the same photo."""
    from fabricsearch.hashing.backbones import LITE_MEAN, LITE_STD
    from fabricsearch.hashing.data import to_tensor

    with torch.inference_mode():
        x = (
            to_tensor(squares, LITE_MEAN, LITE_STD)
            .to(device)
            .contiguous(memory_format=torch.channels_last)
        )
        with torch.autocast("cuda", dtype=torch.float16, enabled=device.type == "cuda"):
            f = net(x).float()
        return f.view(len(squares) // views, views, -1).cpu().numpy().astype(np.float16)


def ensure_features(
    library_folder: str | os.PathLike[str],
    backbone: str,
    paths: Sequence[Any],
    shas: Sequence[str],
    view_ids: Sequence[int] = MAIN_VIEWS,
    device: torch.device | str = "cpu",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Features of the library images (paths + content hashes) for `view_ids`, computing and
    caching the missing ones → (float16 (N, V, dim), ok (N,)); ok is False where a photo no
    longer decodes (its rows are zero). The centre view and the training views are kept in
    two stores, so encoding never pays for the training views."""
    view_ids = tuple(view_ids)
    main = tuple(v for v in view_ids if v in MAIN_VIEWS)
    extra = tuple(v for v in view_ids if v not in MAIN_VIEWS)
    groups = [g for g in (main, extra) if g]
    parts, ok = [], np.ones(len(shas), dtype=bool)
    for group in groups:
        feats, ok_g = _ensure_group(
            library_folder, backbone, paths, shas, group, device, progress, cancel
        )
        parts.append(feats)
        ok &= ok_g
    out = np.concatenate(parts, axis=1)
    order = [v for g in groups for v in g]
    return out[:, [order.index(v) for v in view_ids]], ok


def _ensure_group(
    library_folder: str | os.PathLike[str],
    backbone: str,
    paths: Sequence[Any],
    shas: Sequence[str],
    view_ids: tuple[int, ...],
    device: torch.device | str,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> tuple[np.ndarray, np.ndarray]:
    store = store_for(library_folder, backbone, view_ids)
    rows = store.rows(shas)
    missing = np.flatnonzero(rows < 0)
    ok = np.ones(len(shas), dtype=bool)
    if len(missing):
        miss_paths = [paths[i] for i in missing]
        miss_shas = [shas[i] for i in missing]

        def sink(idx: list[int], f: np.ndarray) -> None:
            store.add([miss_shas[i] for i in idx], f)

        stage = "features" if view_ids == MAIN_VIEWS else "training views"
        feats_m, ok_m = compute_features(
            miss_paths,
            backbone,
            view_ids,
            device,
            progress=progress,
            cancel=cancel,
            sink=sink,
            stage=stage,
        )
        # A feature that is not finite is not stored (`FeatureStore.add`): the photo counts
        # as one that does not decode.
        finite = np.isfinite(feats_m).all(axis=(1, 2))
        if (ok_m & ~finite).any():
            log.warning("%d photos gave features that are not finite", int((ok_m & ~finite).sum()))
        ok[missing] = ok_m & finite
    out = np.zeros((len(shas), len(view_ids), store.dim), dtype=np.float16)
    good = np.flatnonzero(ok)
    if len(good):
        out[good] = store.get([shas[i] for i in good], dtype=np.float16)
    return out, ok
