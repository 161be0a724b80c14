"""Self-supervised adaptation of a hashing model to a library's own, unlabelled images.

A company's archive looks different from the synthetic fabrics the shipped model learnt from
(real yarns, lighting, scanners). `adapt_library` fine-tunes the whole network, starting from
the active model (or the shipped pretrained one), with a SimCLR-style contrastive objective:
two augmented views of each archive photo are positives, every other photo of the batch is a
negative, and NT-Xent is applied to the hash layer's relaxed codes, so what is learnt is
exactly what the Hamming ranking uses. A list-wise term (Eq. 16–17) orders each batch by the
similarity of hand-crafted descriptors (colour histogram, LBP, Gabor energy; `features`): with
no labels, that measured similarity is the best stand-in for the paper's S, and it teaches the
codes which *different* photos are alike, which instance discrimination alone never does. The
bi-half quantisation term keeps bits balanced and near ±1 (and DVSH's KL term keeps its latent
regular).

Views change what does *not* identify a fabric: position, crop and scale, rotation (any angle,
plus mirror), lighting level and gradient, and focus (blur). Hue and saturation are never
jittered, because colour is a label (§3.2): a view must not turn navy into purple.

Training runs the one loop of `hashing.train.run_loop`: this module is its data source
(`TwoViewBatches`: two `fabric_views` of each photo, the descriptor similarity as S) and its
objective is `hashing.objectives.SelfSupervisedObjective` (DVSH's `dvsh_loss` plus NT-Xent, on
the nested prefixes too).

The run is versioned like training ("adapted-<time>-<method>-<bits>"), saved through
`hashing.checkpoint`, and recorded, encoded and activated only at the very end; a cancelled or
failed run leaves the previous model active and untouched.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from fabricsearch import features
from fabricsearch.config import AdaptConfig
from fabricsearch.hashing import checkpoint as ckpt
from fabricsearch.hashing.base import Batch, HashMethod
from fabricsearch.hashing.data import MEAN, STD, build_cache, work_size_for
from fabricsearch.hashing.device import resolve_device
from fabricsearch.hashing.objectives import SelfSupervisedObjective
from fabricsearch.hashing.schedule import LRSchedule
from fabricsearch.jobs import CancelToken, ProgressFn, check, report
from fabricsearch.pretrain import load_pretrained, pretrained_version

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo

log = logging.getLogger(__name__)

ADAPTED_PREFIX = "adapted-"


# --- fabric-appropriate views ------------------------------------------------------------------
def _gaussian_kernels(sigmas: torch.Tensor, radius: int) -> torch.Tensor:
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x[None, :] / sigmas.clamp_min(1e-3)[:, None]) ** 2)
    return k / k.sum(dim=1, keepdim=True)  # (N, 2r + 1)


def fabric_views(
    batch: np.ndarray,
    input_size: int,
    generator: torch.Generator,
    min_scale: float = AdaptConfig.min_scale,
    max_blur: float = AdaptConfig.max_blur,
    light: float = AdaptConfig.light,
) -> torch.Tensor:
    """uint8 (N, W, W, 3) → one random view per image, normalised float (N, 3, S, S).

    Crop position and scale, any rotation and a mirror (one affine resampling, reflection at
    the border — fabric is close to stationary), a uniform brightness factor and a linear
    lighting gradient (the same on R, G and B, so hue and saturation are unchanged), and a
    Gaussian blur on half of the views. Seeded by `generator` only."""
    n = batch.shape[0]
    x = torch.as_tensor(batch).permute(0, 3, 1, 2).float().div_(255.0)
    g = generator
    scale = min_scale + (1.0 - min_scale) * torch.rand(n, generator=g)
    angle = 2 * math.pi * torch.rand(n, generator=g)
    mirror = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    shift = (torch.rand((n, 2), generator=g) * 2 - 1) * (1 - scale)[:, None]
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack(
        [
            torch.stack([cos * mirror, -sin, shift[:, 0]], dim=1),
            torch.stack([sin * mirror, cos, shift[:, 1]], dim=1),
        ],
        dim=1,
    )
    grid = F.affine_grid(theta, [n, 3, input_size, input_size], align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    # Lighting: exposure × (1 + gradient along a random direction); one factor for all channels.
    exposure = 1.0 + light * (2 * torch.rand(n, generator=g) - 1)
    direction = 2 * math.pi * torch.rand(n, generator=g)
    strength = light * torch.rand(n, generator=g)
    c = torch.linspace(-1.0, 1.0, input_size)
    yy, xx = torch.meshgrid(c, c, indexing="ij")
    ramp = torch.cos(direction)[:, None, None] * xx + torch.sin(direction)[:, None, None] * yy
    gain = exposure[:, None, None] * (1.0 + strength[:, None, None] * ramp)
    out = (out * gain[:, None]).clamp_(0.0, 1.0)

    # Focus: separable Gaussian blur on about half of the views.
    blur = torch.rand(n, generator=g) < 0.5
    sigmas = 0.1 + (max_blur - 0.1) * torch.rand(n, generator=g)
    if bool(blur.any()) and max_blur > 0.1:
        radius = max(1, int(math.ceil(2 * max_blur)))
        idx = torch.nonzero(blur).flatten()
        k = _gaussian_kernels(sigmas[idx], radius)  # (B, K)
        sub = out[idx]  # (B, 3, S, S)
        b = sub.shape[0]
        # Depthwise conv with one kernel per (image, channel): fold the batch into channels.
        w = k.repeat_interleave(3, dim=0)  # (3B, K)
        flat = sub.reshape(1, 3 * b, input_size, input_size)
        flat = F.pad(flat, (radius, radius, radius, radius), mode="reflect")
        flat = F.conv2d(flat, w[:, None, None, :], groups=3 * b)
        flat = F.conv2d(flat, w[:, None, :, None], groups=3 * b)
        out[idx] = flat.reshape(b, 3, input_size, input_size)

    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (out - mean) / std


# --- the starting model ----------------------------------------------------------------------
def _adaptable(method: HashMethod) -> bool:
    return method.trainable and any(p.requires_grad for p in method.parameters())


def load_start_model(lib: Library, start: str = "active") -> tuple[HashMethod, str]:
    """(method in float32, description of where it came from) for `AdaptConfig.start`.

    "active" uses the active model when it has trainable weights, else the shipped pretrained
    model; "pretrained" always the shipped one; anything else is a model file."""
    from pathlib import Path

    from fabricsearch.catalogue import LibraryError

    key = (start or "active").strip().lower()
    if key == "active":
        info = lib.active_model()
        if info is not None:
            info = lib.fetch_model(info.version)  # a team library's client downloads it
            method, _meta = ckpt.load_checkpoint(info.path)
            if _adaptable(method):
                return method.float(), info.version
            log.info(
                "active model %s has no trainable weights; using the shipped model", info.version
            )
        key = "pretrained"
    if key == "pretrained":
        try:
            method, _meta = load_pretrained()
        except ckpt.CheckpointError as exc:
            raise LibraryError(
                f"no model to adapt: the shipped pretrained model cannot be loaded ({exc})"
            ) from exc
        return method, pretrained_version()
    method, _meta = ckpt.load_checkpoint(Path(start).expanduser())
    if not _adaptable(method):
        raise LibraryError(f"{start} has no trainable weights to adapt")
    return method.float(), str(start)


def new_adapted_version(lib: Library, method: str, bits: int) -> str:
    from fabricsearch.hashing.train import unique_model_version

    return unique_model_version(lib, method, bits, prefix=ADAPTED_PREFIX)


# --- adaptation --------------------------------------------------------------------------------
DESCRIBE_CHUNK = 256


def describe(
    images: np.ndarray, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> torch.Tensor:
    """Unit-length hand-crafted descriptors (N, D) of a uint8 cache, in chunks (cancellable);
    their dot products are the similarity the list-wise term orders each batch by."""
    n = images.shape[0]
    out = []
    for start in range(0, n, DESCRIBE_CHUNK):
        check(cancel)
        out.append(features.extract_features(images[start : start + DESCRIBE_CHUNK]))
        report(progress, "describe", min(start + DESCRIBE_CHUNK, n), n, "image")
    return torch.from_numpy(np.concatenate(out).astype(np.float32))


class TwoViewBatches:
    """The data source of adaptation for `hashing.train.run_loop`: each epoch a seeded
    permutation of the unlabelled photos; each batch two `fabric_views` of `batch_size` photos
    (the two views of a photo form one contrastive group) and, with `descriptors`, their
    measured similarity as S (a photo's two views: similarity 1). No labels."""

    def __init__(
        self,
        images: np.ndarray,
        cfg: AdaptConfig,
        input_size: int,
        device: torch.device,
        descriptors: torch.Tensor | None = None,
    ) -> None:
        self.images, self.cfg, self.input_size, self.device = images, cfg, input_size, device
        self.descriptors = descriptors
        n = images.shape[0]
        self.batch_size = min(cfg.batch_size, n)
        self.steps_per_epoch = max(1, n // self.batch_size)
        self._perm = np.arange(n)

    def begin_epoch(self, generator: torch.Generator) -> None:
        self._perm = torch.randperm(self.images.shape[0], generator=generator).numpy()

    def batch(self, i: int, generator: torch.Generator) -> Batch:
        c, bs = self.cfg, self.batch_size
        idx = np.sort(self._perm[i * bs : (i + 1) * bs])
        raw = self.images[idx]
        v1 = fabric_views(raw, self.input_size, generator, c.min_scale, c.max_blur, c.light)
        v2 = fabric_views(raw, self.input_size, generator, c.min_scale, c.max_blur, c.light)
        S = None
        if self.descriptors is not None:
            f = self.descriptors[idx]
            S = (f @ f.T).repeat(2, 2).to(self.device)
        return Batch(
            images=torch.cat([v1, v2]).to(self.device, non_blocking=True),
            labels=None,
            S=S,
            indices=torch.as_tensor(idx),
            groups=torch.arange(len(idx), device=self.device).repeat(2),
        )


def adapt_objective(cfg: AdaptConfig, bits: int) -> SelfSupervisedObjective:
    """DVSH's objective with the adaptation weights: NT-Xent between the two views (and on the
    nested prefixes below `bits`), list-wise on the descriptor similarity when `lambda_list`."""
    return SelfSupervisedObjective(
        nested_bits=tuple(b for b in cfg.nested_bits if 0 < b < bits),
        nested_nce=True,
        lambda_list=cfg.lambda_list,
        lambda_nce=cfg.lambda_nce,
        nce_temperature=cfg.temperature,
        lambda_q=cfg.lambda_q,
        lambda_kld=cfg.lambda_kld,
    )


def adapt_method(
    method: HashMethod,
    images: np.ndarray,
    cfg: AdaptConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> list[dict[str, float]]:
    """Contrastive fine-tuning of `method` in place on a uint8 cache (N, W, W, 3) at work size,
    through the one training loop (constant learning rate). Returns per-epoch mean loss terms.
    Raises `jobs.Cancelled`."""
    from fabricsearch.hashing.train import LoopPlan, run_loop, seeded, training_context

    device = resolve_device(cfg.device)
    gen = seeded(cfg.seed)
    method.to(device)
    objective = adapt_objective(cfg, method.bits)
    ctx = training_context(method, objective, cfg, device, cfg.amp, gen)
    if images.shape[0] < 2:
        raise ValueError("adaptation needs at least two images")
    descriptors = describe(images, progress, cancel) if cfg.lambda_list > 0 else None
    source = TwoViewBatches(images, cfg, method.input_size, device, descriptors)
    plan = LoopPlan(
        stage="adapt",
        epochs=cfg.epochs,
        steps_per_epoch=source.steps_per_epoch,
        batch_size=source.batch_size,
        schedule=LRSchedule("constant"),
        max_steps=cfg.max_steps,
        epoch_keys=("epoch",),
    )
    state = run_loop(method, ctx, source, plan, objective, progress=progress, cancel=cancel)
    method.eval()
    return state.history


def adapt_library(
    lib: Library,
    cfg: AdaptConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    activate: bool | None = None,
) -> ModelInfo:
    """Adapt a model to the library's images, save it, re-encode the library and record the
    new model ("adapted-…") — only at the very end — activating it under the activation rule
    of `hashing.activation` (`activate` True forces). Raises `jobs.Cancelled`."""
    from fabricsearch.catalogue import LibraryError
    from fabricsearch.hashing.train import publish_model

    t0 = time.perf_counter()
    method, origin = load_start_model(lib, cfg.start)
    records = lib.images()
    if cfg.splits:
        splits = lib.splits()
        records = [r for r in records if splits.get(r.id) in cfg.splits]
    if cfg.max_images and len(records) > cfg.max_images:
        pick = np.random.default_rng(cfg.seed).choice(len(records), cfg.max_images, replace=False)
        records = [records[i] for i in sorted(pick)]
    if len(records) < 2:
        raise LibraryError("adaptation needs at least two images in the library")
    cache, ok = build_cache(
        [r.path for r in records],
        work_size_for(method.input_size),
        progress=progress,
        cancel=cancel,
    )
    cache = cache[ok]
    if len(cache) < 2:
        raise LibraryError("fewer than two images of the library could be decoded")
    history = adapt_method(method, cache, cfg, progress, cancel)
    adapt_time = time.perf_counter() - t0

    return publish_model(
        lib,
        method,
        new_adapted_version(lib, method.name, method.bits),
        metrics={"adapt_time_s": adapt_time, "adapt_images": float(len(cache))},
        train_config=cfg.to_dict(),
        fingerprint=f"self-supervised:{len(cache)} images",
        extra={
            "adapted_from": origin,
            "history": history,
            "device": str(resolve_device(cfg.device)),
        },
        note=f"self-supervised adaptation of {origin} to this library",
        progress=progress,
        cancel=cancel,
        activate=activate,
        label_free=True,
        kind="adapted",
    )
