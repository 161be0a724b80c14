"""Encoding images to binary codes with a trained method, and whole libraries to stored codes."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fabricsearch.codes import pack_codes
from fabricsearch.hashing.base import HashMethod
from fabricsearch.hashing.data import center_crop, prepare_image, to_tensor, work_size_for
from fabricsearch.jobs import CancelToken, ProgressFn, check, report

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.hashing.checkpoint import CheckpointMeta

log = logging.getLogger(__name__)


def _device_of(method: HashMethod) -> torch.device:
    for p in method.parameters():
        return p.device
    for b in method.buffers():
        return b.device
    return torch.device("cpu")


@torch.no_grad()
def encode_tensor(method: HashMethod, x: torch.Tensor, batch_size: int = 64) -> np.ndarray:
    """Normalised (N, 3, S, S) float → ±1 float32 (N, K), in batches, on the method's device."""
    device = _device_of(method)
    out = []
    for start in range(0, x.shape[0], batch_size):
        out.append(method.encode(x[start : start + batch_size].to(device)).cpu())
    if not out:
        return np.zeros((0, method.bits), dtype=np.float32)
    return torch.cat(out).numpy().astype(np.float32)


def encode_cached(method: HashMethod, cache: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """uint8 (N, W, W, 3) cache at work size → ±1 codes of the centre crops."""
    out = []
    for start in range(0, cache.shape[0], batch_size):
        x = to_tensor(center_crop(cache[start : start + batch_size], method.input_size))
        out.append(encode_tensor(method, x, batch_size))
    if not out:
        return np.zeros((0, method.bits), dtype=np.float32)
    return np.concatenate(out)


def encode_images(
    method: HashMethod,
    images: Sequence[np.ndarray],
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> np.ndarray:
    """RGB uint8 images of any size → ±1 float32 codes (N, K). Same view as training's
    evaluation: shorter side to the work size, centre crop to the input size (on a pretrained
    backbone: its feature of the centre crop, `extract.input_tensor`)."""
    if method.on_features:
        from fabricsearch.hashing.extract import compute_features

        feats, _ = compute_features(
            list(images),
            method.backbone,
            device=_device_of(method),
            progress=progress,
            cancel=cancel,
            stage="encode",
        )
        return encode_tensor(method, torch.from_numpy(feats[:, 0].astype(np.float32)), batch_size)
    ws = work_size_for(method.input_size)
    out = []
    n = len(images)
    for start in range(0, n, batch_size):
        check(cancel)
        chunk = np.stack([prepare_image(im, ws) for im in images[start : start + batch_size]])
        out.append(encode_cached(method, chunk, batch_size))
        report(progress, "encode", min(n, start + batch_size), n, "img")
    if not out:
        return np.zeros((0, method.bits), dtype=np.float32)
    return np.concatenate(out)


def encode_library(
    lib: Library,
    method: HashMethod,
    version: str | None = None,
    store: bool = True,
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode every image of the library → (ids int64, packed uint8 (N, K/8)).

    Images that can no longer be decoded are skipped (logged). With `store` and a `version`,
    the codes replace that model's stored codes."""
    id_arr, packed = encode_records(lib, method, lib.images(), batch_size, progress, cancel)
    if store and version is not None:
        lib.store_codes(version, id_arr.tolist(), packed)
    return id_arr, packed


def encode_records(
    lib: Library,
    method: HashMethod,
    records: Sequence[Any],
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    stage: str = "encode",
) -> tuple[np.ndarray, np.ndarray]:
    """The one way library images become codes (training's evaluation view of each photo,
    `record_inputs`) → (ids int64, packed uint8). Images that can no longer be decoded are
    left out (logged)."""
    ids: list[int] = []
    codes: list[np.ndarray] = []
    for chunk_ids, x in record_inputs(lib, method, records, batch_size, progress, cancel, stage):
        codes.append(encode_tensor(method, x, batch_size))
        ids.extend(chunk_ids)
    packed = (
        pack_codes(np.concatenate(codes)) if codes else np.zeros((0, method.bits // 8), np.uint8)
    )
    return np.asarray(ids, dtype=np.int64), packed


def record_inputs(
    lib: Library,
    method: HashMethod,
    records: Sequence[Any],
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    stage: str = "encode",
) -> Iterator[tuple[list[int], torch.Tensor]]:
    """Library records → batches of (ids, network input): on a pretrained backbone the cached
    features (filled in where missing), on the compact network the photos decoded at a bounded
    size, prepared at work size and centre-cropped. Shared by encoding and label prediction,
    so both see the same input. Images that can no longer be decoded are skipped (logged)."""
    from fabricsearch.imaging import ImageError, load_rgb

    if method.on_features:
        feats, ok = library_features(
            lib, method.backbone, records, _device_of(method), progress, cancel
        )
        for rec, good in zip(records, ok, strict=True):
            if not good:
                log.warning("skipping %s: cannot be decoded", rec.path)
        good = np.flatnonzero(ok)
        for start in range(0, len(good), batch_size):
            check(cancel)
            idx = good[start : start + batch_size]
            x = torch.from_numpy(feats[idx].astype(np.float32))
            yield [records[i].id for i in idx], x
        return
    ws = work_size_for(method.input_size)
    n = len(records)
    skipped = 0
    t0 = time.perf_counter()
    report(progress, stage, 0, n, "img")
    for start in range(0, n, batch_size):
        check(cancel)
        chunk, chunk_ids = [], []
        for rec in records[start : start + batch_size]:
            try:
                # Decoding at a bounded size keeps huge scans fast; the network sees work size.
                rgb = load_rgb(rec.path, max_side=max(4 * ws, 512))
            except ImageError as exc:
                skipped += 1
                log.warning("skipping %s: %s", rec.path, exc)
                continue
            chunk.append(prepare_image(rgb, ws))
            chunk_ids.append(rec.id)
        if chunk:
            yield chunk_ids, to_tensor(center_crop(np.stack(chunk), method.input_size))
        done = min(n, start + batch_size)
        rate = done / max(time.perf_counter() - t0, 1e-9)
        report(progress, stage, done, n, "img", info={"img/s": rate, "skipped": skipped})


def library_features(
    lib: Library,
    backbone: str,
    records: Sequence[Any],
    device: str | torch.device = "cpu",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Cached centre-crop features of library records (computed and stored where missing)
    → (float16 (N, D), ok (N,))."""
    from fabricsearch.hashing.extract import ensure_features

    feats, ok = ensure_features(
        lib.folder,
        backbone,
        [r.path for r in records],
        [r.sha256 for r in records],
        device=device,
        progress=progress,
        cancel=cancel,
    )
    return feats[:, 0], ok


def find_model(lib: Library, version: str | None = None) -> ModelInfo:
    """The model `version` of the library, or the active one."""
    from fabricsearch.catalogue import LibraryError

    if version is None:
        info = lib.active_model()
        if info is None:
            raise LibraryError("the library has no trained model yet (run `fabricsearch train`)")
        return info
    for info in lib.models():
        if info.version == version:
            return info
    raise LibraryError(f"no model {version!r} in this library")


def load_library_model(
    lib: Library, version: str | None = None, device: str | torch.device = "cpu"
) -> tuple[HashMethod, ModelInfo, CheckpointMeta]:
    """Load a library model (active by default): (method in eval mode, ModelInfo, metadata).
    A team library's client downloads its files first (`Library.fetch_model`)."""
    from fabricsearch.hashing.checkpoint import load_checkpoint

    info = lib.fetch_model(find_model(lib, version).version)
    method, meta = load_checkpoint(info.path, device=device)
    return method, info, meta


def encode_speed(method: HashMethod, n: int = 128, batch_size: int = 32) -> dict[str, Any]:
    """Measure encoding throughput (images/s) on random input at the method's input size."""
    s = method.input_size
    x = torch.randn(n, 3, s, s)
    if method.on_features:
        from fabricsearch.hashing.backbones import get_spec

        x = torch.rand(n, get_spec(method.backbone).feature_dim)
    encode_tensor(method, x[:batch_size], batch_size)  # warm-up
    t0 = time.perf_counter()
    encode_tensor(method, x, batch_size)
    dt = time.perf_counter() - t0
    return {"images": n, "seconds": dt, "images_per_s": n / dt}
