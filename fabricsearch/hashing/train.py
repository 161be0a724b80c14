"""Training: a catalogue-free core loop (`train`) and the library workflow (`train_library`).

`train` decodes every image once into a uint8 cache, then for each epoch shuffles the training
split with a seeded generator, augments (crops, scale, flips, 90° rotations; never colour),
computes the fine-grained similarity S (Eq. 6) of each batch on the device and hands a `Batch`
to the method's `training_step`. Validation mAP (val queries against the other val images)
drives early stopping; the best weights are kept. With `out_dir`, resume state is written after
every epoch (``<out_dir>/train-<method>-<bits>.partial.pt``).

`train_library` trains on the library's labelled train/val images, saves the checkpoint,
encodes the whole library, evaluates on the test split and then, in one transaction, records
the model, stores its codes and makes it active. A cancelled or failed run changes nothing.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from fabricsearch.config import TrainConfig
from fabricsearch.errors import UserError
from fabricsearch.hashing import checkpoint as ckpt
from fabricsearch.hashing.base import Batch, BatchLabels, HashMethod, TrainContext
from fabricsearch.hashing.data import (
    TrainingData,
    augment,
    build_cache,
    center_crop,
    labels_fingerprint,
    to_tensor,
    work_size_for,
)
from fabricsearch.hashing.device import resolve_device
from fabricsearch.hashing.encode import encode_cached, encode_tensor
from fabricsearch.hashing.metrics import evaluate_codes
from fabricsearch.hashing.registry import create_method, needs_labels
from fabricsearch.hashing.schedule import lr_factor
from fabricsearch.jobs import CancelToken, ProgressFn, check, report

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    method: HashMethod  # best weights loaded, eval mode, on the training device
    config: TrainConfig
    history: list[dict[str, Any]] = field(default_factory=list)  # one dict per epoch
    best_epoch: int = -1
    best_val_map: float = float("nan")
    steps: int = 0
    train_time_s: float = 0.0
    fingerprint: str = ""
    stopped_early: bool = False
    skipped_images: int = 0
    partial_path: Path | None = None
    device: str = "cpu"


def partial_path_for(out_dir: str | Path, cfg: TrainConfig) -> Path:
    return Path(out_dir) / f"train-{cfg.method}-{cfg.bits}.partial.pt"


def with_class_counts(cfg: TrainConfig, labels: Any) -> TrainConfig:
    """Fill ``num_minor``/``num_fine`` (classification heads, see methods/dvsh.py) from the
    training labels for methods that have them, unless the caller set them."""
    import dataclasses

    from fabricsearch.hashing.registry import method_config_class

    names = {f.name for f in dataclasses.fields(method_config_class(cfg.method))}
    options = dict(cfg.method_options)
    for key, arr in (("num_minor", labels.minor), ("num_fine", labels.fine)):
        if key in names and key not in options:
            arr = np.asarray(arr)
            options[key] = int(arr.max()) + 1 if arr.size and int(arr.max()) >= 0 else 0
    if options == dict(cfg.method_options):
        return cfg
    return dataclasses.replace(cfg, method_options=options)


def _lr_factor(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Training's multiplier: 1 (constant) or a cosine decay to 0 over the run, no warm-up."""
    if cfg.lr_schedule == "constant":
        return 1.0
    return lr_factor(step, total_steps, warmup_frac=0.0, floor=0.0)


def build_method(cfg: TrainConfig) -> HashMethod:
    """Create the configured method (bits, input size and options from `cfg`) and apply `init`."""
    options = dict(cfg.method_options)
    options.setdefault("backbone", cfg.backbone)
    if cfg.finetune:
        options.setdefault("finetune_blocks", cfg.finetune)
    method = create_method(cfg.method, bits=cfg.bits, input_size=_input_size(cfg), **options)
    if cfg.finetune and not (method.supports_features and method.trainable):
        raise ValueError(
            f"{cfg.method} cannot fine-tune a pretrained backbone (DVSH and its ablations can)"
        )
    if method.on_features and not method.supports_features:
        raise ValueError(
            f"{cfg.method} needs pixels and runs only on the compact backbone "
            f"(--backbone compact); see docs/backbones.md"
        )
    if cfg.init and cfg.init != "scratch":
        if _load_whole_if_same_kind(method, cfg):
            return method
        base = method.base_network()
        if base is None:
            raise ValueError(f"method {cfg.method!r} has no base network to initialise")
        ckpt.load_base_weights(base, cfg.init)
    return method


def _load_whole_if_same_kind(method: HashMethod, cfg: TrainConfig) -> bool:
    """A full checkpoint of the same method and code length initialises every layer (hash head
    included), so labels refine a pretrained or adapted model instead of a fresh head."""
    try:
        meta = ckpt.read_metadata(cfg.init)
    except ckpt.CheckpointError:
        return False  # a bare BaseNet weights file
    if meta.method != method.name or meta.bits != method.bits:
        return False
    state = ckpt.load_tensors(cfg.init)
    own = method.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    # Classification heads depend on the library's categories: they may differ or be absent.
    core = [k for k in own if not k.startswith(method.label_head_prefixes)]
    if any(k not in usable for k in core):
        return False  # another architecture (widths): fall back to the base network only
    method.load_state_dict({k: v.to(own[k].dtype) for k, v in usable.items()}, strict=False)
    return True


def _config_key(cfg: TrainConfig) -> str:
    return json.dumps(cfg.to_dict(), sort_keys=True)


class ImageSource:
    """Training input from decoded pixels (the compact backbone): augmented crops of the cache."""

    def __init__(self, cache: np.ndarray, input_size: int) -> None:
        self.cache, self.input_size = cache, input_size

    def train_batch(self, idx: np.ndarray, augmented: bool, gen: torch.Generator) -> torch.Tensor:
        raw = self.cache[idx]
        if augmented:
            return augment(raw, self.input_size, gen)
        return to_tensor(center_crop(raw, self.input_size))

    def encode(self, method: HashMethod, idx: np.ndarray) -> np.ndarray:
        return encode_cached(method, self.cache[idx])


class FeatureSource:
    """Training input from cached backbone features (N, V, D): view 0 is the centre crop; with
    augmentation each image of a batch takes one of its V views at random."""

    def __init__(self, feats: np.ndarray) -> None:
        # Kept in the store's float16 (half the memory of 100k features); batches are float32.
        self.feats = torch.from_numpy(np.ascontiguousarray(feats, dtype=np.float16))

    def train_batch(self, idx: np.ndarray, augmented: bool, gen: torch.Generator) -> torch.Tensor:
        i = torch.as_tensor(idx)
        if augmented and self.feats.shape[1] > 1:
            v = torch.randint(0, self.feats.shape[1], (len(idx),), generator=gen)
            return self.feats[i, v].float()
        return self.feats[i, 0].float()

    def encode(self, method: HashMethod, idx: np.ndarray) -> np.ndarray:
        return encode_tensor(method, self.feats[torch.as_tensor(idx), 0].float())


def _input_size(cfg: TrainConfig) -> int:
    """Pixels the network sees: the backbone's own size when fine-tuning a pretrained one."""
    from fabricsearch.hashing.backbones import get_spec, is_pretrained

    if cfg.finetune and is_pretrained(cfg.backbone):
        return get_spec(cfg.backbone).input_size
    return cfg.input_size


def training_source(
    data: TrainingData,
    cfg: TrainConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[ImageSource | FeatureSource, np.ndarray]:
    """The input of training: cached features for a pretrained backbone, decoded pixels for the
    compact one → (source, ok per image)."""
    from fabricsearch.featurestore import AUG_VIEWS, MAIN_VIEWS, compute_features
    from fabricsearch.hashing.backbones import is_pretrained

    if not is_pretrained(cfg.backbone) or cfg.finetune:
        size = _input_size(cfg)
        cache, ok = build_cache(data.images, work_size_for(size), data.loader, progress, cancel)
        return ImageSource(cache, size), ok
    view_ids = MAIN_VIEWS + AUG_VIEWS if cfg.feature_views and cfg.augment else MAIN_VIEWS
    device = resolve_device(cfg.device)
    if data.features_fn is not None:
        feats, ok = data.features_fn(cfg.backbone, view_ids, progress, cancel)
    else:
        feats, ok = compute_features(
            data.images,
            cfg.backbone,
            view_ids,
            device,
            loader=data.loader,
            progress=progress,
            cancel=cancel,
        )
    return FeatureSource(feats), ok


def _validate(
    method: HashMethod, source: ImageSource | FeatureSource, data: TrainingData, val_idx: np.ndarray
) -> float:
    codes = source.encode(method, val_idx)
    labels = data.labels.subset(val_idx)
    return evaluate_codes(codes, codes, labels, labels, ks=(10,), exclude_self=True).mAP


def train(
    data: TrainingData,
    cfg: TrainConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    out_dir: str | Path | None = None,
    resume: bool = False,
) -> TrainResult:
    """Train `cfg.method` on `data`; seeded and reproducible on CPU. Raises `jobs.Cancelled`."""
    from fabricsearch.similarity import fine_grained_torch

    t_start = time.perf_counter()
    cfg = with_class_counts(cfg, data.labels)
    device = resolve_device(cfg.device)
    torch.manual_seed(cfg.seed)  # weight init and the method's own sampling (reparameterisation)
    gen = torch.Generator().manual_seed(cfg.seed + 1)  # shuffling and augmentation
    method = build_method(cfg).to(device)
    ctx = TrainContext(device=device, amp=cfg.amp, generator=gen)
    ctx.optimizers = method.configure_optimizers(cfg) if method.trainable else []
    for opt in ctx.optimizers:
        for group in opt.param_groups:
            group.setdefault("base_lr", group["lr"])

    source, ok = training_source(data, cfg, progress, cancel)
    train_idx = data.train_idx[ok[data.train_idx]]
    val_idx = data.val_idx[ok[data.val_idx]]
    skipped = int((~ok).sum())
    if len(train_idx) < 2:
        raise ValueError("fewer than two training images could be decoded")
    full = BatchLabels(*data.labels.to_torch(device))
    fabric_ids = torch.as_tensor(data.fabric_ids) if data.fabric_ids is not None else None

    bs = min(cfg.batch_size, len(train_idx))
    steps_per_epoch = len(train_idx) // bs  # drop the ragged last batch
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    epochs = cfg.epochs if method.trainable else 1
    patience, val_every = cfg.patience, max(cfg.val_every, 1)
    if isinstance(source, FeatureSource) and method.trainable:
        stretched = max(epochs, -(-cfg.min_steps // max(steps_per_epoch, 1)))
        # As many validations as the configured epochs would have had, not one per short epoch.
        val_every = max(val_every, -(-stretched // epochs))
        epochs = stretched
        if len(val_idx) < cfg.min_val_for_early_stop:
            patience = 0  # too few validation images to judge: the full budget
    total_steps = epochs * steps_per_epoch
    do_val = len(val_idx) >= 2

    history: list[dict[str, Any]] = []
    best_val, best_epoch, bad = -1.0, -1, 0
    best_state: dict[str, torch.Tensor] | None = None
    start_epoch = 0
    partial = partial_path_for(out_dir, cfg) if out_dir is not None else None
    if resume and partial is not None and partial.exists():
        state = ckpt.load_partial(partial)
        if state.get("config") != _config_key(cfg) or state.get("fingerprint") != data.fingerprint:
            raise ckpt.CheckpointError(
                "the interrupted run used other settings or other training images; "
                "start a new run without --resume"
            )
        method.load_state_dict(state["model"])
        for opt, s in zip(ctx.optimizers, state["optimizers"], strict=True):
            opt.load_state_dict(s)
        ctx.scaler.load_state_dict(state["scaler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, ctx.step = int(state["epoch"]), int(state["step"])
        best_val, best_epoch, bad = (
            float(state["best_val"]),
            int(state["best_epoch"]),
            int(state["bad"]),
        )
        best_state = state.get("best_state") or None
        history = json.loads(state["history"])
        log.info("resuming at epoch %d", start_epoch)

    stopped_early = False
    seen, t_loop = 0, time.perf_counter()
    for epoch in range(start_epoch, epochs):
        ctx.epoch = epoch
        method.train()
        perm = torch.randperm(len(train_idx), generator=gen).numpy()
        sums: dict[str, float] = {}
        for step in range(steps_per_epoch):
            check(cancel)
            idx = train_idx[perm[step * bs : (step + 1) * bs]]
            images = source.train_batch(idx, cfg.augment and method.trainable, gen)
            idx_t = torch.as_tensor(idx, device=device)
            labels = BatchLabels(*(t[idx_t] for t in full.as_tuple()))
            S = fine_grained_torch(*labels.as_tuple())
            batch = Batch(
                images=images.to(device, non_blocking=True),
                labels=labels,
                S=S,
                fabric_ids=fabric_ids[idx] if fabric_ids is not None else None,
                indices=torch.as_tensor(idx),
            )
            factor = _lr_factor(cfg, ctx.step, total_steps)
            for opt in ctx.optimizers:
                for group in opt.param_groups:
                    group["lr"] = group["base_lr"] * factor
            terms = method.training_step(batch, ctx)
            ctx.step += 1
            seen += len(idx)
            for k, v in terms.items():
                sums[k] = sums.get(k, 0.0) + float(v)
            elapsed = time.perf_counter() - t_loop
            rate = seen / max(elapsed, 1e-9)
            remaining = (total_steps - ctx.step) * bs / max(rate, 1e-9)
            info = {
                "epoch": epoch + 1,
                "epochs": epochs,  # after stretching to `min_steps` on features
                **terms,
                "samples/s": rate,
                "eta_s": remaining,
            }
            if best_epoch >= 0:
                info["val_mAP"] = best_val
            report(progress, "train", ctx.step, total_steps, "step", info=info)

        record: dict[str, Any] = {"epoch": epoch + 1, "step": ctx.step}
        record.update({k: v / max(steps_per_epoch, 1) for k, v in sums.items()})
        last = epoch == epochs - 1
        if method.trainable and do_val and ((epoch + 1) % val_every == 0 or last):
            check(cancel)
            val_map = _validate(method, source, data, val_idx)
            record["val_mAP"] = val_map
            if val_map > best_val:
                best_val, best_epoch, bad = val_map, epoch + 1, 0
                best_state = copy.deepcopy(
                    {k: v.detach().cpu() for k, v in method.state_dict().items()}
                )
            else:
                bad += 1
            report(
                progress,
                "train",
                ctx.step,
                total_steps,
                "step",
                info={"epoch": epoch + 1, "val_mAP": val_map},
            )
        history.append(record)
        log.info("epoch %s", record)
        if partial is not None and method.trainable:
            ckpt.save_partial(
                partial,
                {
                    "config": _config_key(cfg),
                    "fingerprint": data.fingerprint,
                    "model": method.state_dict(),
                    "optimizers": [o.state_dict() for o in ctx.optimizers],
                    "scaler": ctx.scaler.state_dict(),
                    "generator": gen.get_state(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch": epoch + 1,
                    "step": ctx.step,
                    "best_val": best_val,
                    "best_epoch": best_epoch,
                    "bad": bad,
                    "best_state": best_state or {},
                    "history": json.dumps(history),
                },
            )
        if patience and method.trainable and do_val and bad >= patience:
            stopped_early = True
            break

    method.finalize()
    if best_state is not None:
        method.load_state_dict(best_state)
    if not method.trainable and do_val:
        best_val = _validate(method, source, data, val_idx)
        best_epoch = 1
    method.eval()
    return TrainResult(
        method=method,
        config=cfg,
        history=history,
        best_epoch=best_epoch,
        best_val_map=best_val if best_epoch >= 0 else float("nan"),
        steps=ctx.step,
        train_time_s=time.perf_counter() - t_start,
        fingerprint=data.fingerprint,
        stopped_early=stopped_early,
        skipped_images=skipped,
        partial_path=partial,
        device=str(device),
    )


# --- the library workflow -------------------------------------------------------------------
def library_training_data(
    lib: Library, labelled_only: bool = True, fit_all: bool = False
) -> TrainingData:
    """The library's labelled images (every image if not `labelled_only`; unknown labels are
    −1) with their stored train/val/test split (`fit_all`: every image is a training image,
    for label-free fits that use no label and so cannot leak the test split)."""
    ids = lib.image_ids(labelled=True) if labelled_only else lib.image_ids()
    if len(ids) < 2:
        if labelled_only:
            raise ValueError(
                "the library needs labelled images to train (see `fabricsearch labels`)"
            )
        raise ValueError("the library needs at least two images to train")
    records = lib.images(ids)
    labels = lib.label_arrays(ids)
    splits = lib.splits()
    split = np.array([splits.get(i, "train") for i in ids])
    train_idx = np.flatnonzero(split == "train")
    if fit_all:
        train_idx = np.arange(len(ids), dtype=np.int64)
        split = np.full(len(ids), "train")
    fingerprint = labels_fingerprint(
        labels, train_idx, extra=[records[i].sha256 for i in train_idx]
    )

    def features_fn(backbone, view_ids, progress=None, cancel=None):  # type: ignore[no-untyped-def]
        from fabricsearch.featurestore import ensure_features

        return ensure_features(
            lib.folder,
            backbone,
            [r.path for r in records],
            [r.sha256 for r in records],
            view_ids,
            progress=progress,
            cancel=cancel,
        )

    return TrainingData(
        images=[r.path for r in records],
        labels=labels,
        train_idx=train_idx,
        val_idx=np.flatnonzero(split == "val"),
        test_idx=np.flatnonzero(split == "test"),
        fabric_ids=np.asarray(ids, dtype=np.int64),
        fingerprint=fingerprint,
        features_fn=features_fn,
    )


def unique_model_version(lib: Library, method: str, bits: int, prefix: str = "") -> str:
    """``<prefix><time>-<method>-<bits>``, with ``-2``, ``-3``… if taken in the library or on disk."""
    base = f"{prefix}{time.strftime('%Y%m%d-%H%M%S')}-{method}-{bits}"
    taken = {m.version for m in lib.models()}
    version, n = base, 2
    while version in taken or (lib.models_dir / f"{version}.safetensors").exists():
        version, n = f"{base}-{n}", n + 1
    return version


def new_version(cfg: TrainConfig, lib: Library) -> str:
    return unique_model_version(lib, cfg.method, cfg.bits)


def train_library(
    lib: Library,
    cfg: TrainConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    resume: bool = False,
    note: str = "",
    activate: bool | None = None,
) -> ModelInfo:
    """`_train_library` holding the library's training lock: one training at a time per
    library, across processes and a team library's clients (`LibraryError` names the one
    running)."""
    from fabricsearch.catalogue import jobprogress

    lib.require_writable("train a model")
    # Its progress recorded in the catalogue for a team library's other clients.
    with lib.exclusive("training"), jobprogress.recording(lib, "training", progress) as shared:
        return _train_library(lib, cfg, shared, cancel, resume, note, activate)


def _train_library(
    lib: Library,
    cfg: TrainConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    resume: bool = False,
    note: str = "",
    activate: bool | None = None,
) -> ModelInfo:
    """Train on the library, save the checkpoint, encode every image, evaluate it and the
    active model on the test split, then record + store codes (only at the very end) and
    activate it if it passes the activation rule (`activate` True forces, False never;
    `hashing.activation.read_decision(info)` says what happened and why).
    Methods without trainable weights (LSH, ITQ) need no labels: they are fitted on every image
    of the train split, labelled or not."""
    lib.require_writable("train a model")
    label_free = not needs_labels(cfg.method)
    data = library_training_data(lib, labelled_only=not label_free)
    lib.models_dir.mkdir(parents=True, exist_ok=True)
    result = train(data, cfg, progress, cancel, out_dir=lib.models_dir, resume=resume)
    info = publish_model(
        lib,
        result.method,
        new_version(cfg, lib),
        metrics={"val_mAP": result.best_val_map, "train_time_s": result.train_time_s},
        train_config=result.config.to_dict(),
        fingerprint=result.fingerprint,
        extra={"history": result.history, "best_epoch": result.best_epoch, "device": result.device},
        note=note,
        progress=progress,
        cancel=cancel,
        activate=activate,
        label_free=label_free,
    )
    if result.partial_path is not None:
        result.partial_path.unlink(missing_ok=True)
    return info


def _active_codes(
    lib: Library,
    active: ModelInfo,
    progress: ProgressFn | None,
    cancel: CancelToken | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The active model's codes, first completed for images that lack one (so both models are
    compared on the same images; it also repairs the active model for search)."""
    from fabricsearch.hashing.activation import complete_codes
    from fabricsearch.hashing.checkpoint import CheckpointError
    from fabricsearch.hashing.encode import load_library_model

    if lib.ids_without_codes(active.version):
        try:
            method, _, _ = load_library_model(lib, active.version)
        except (CheckpointError, OSError) as exc:
            log.warning("cannot complete the codes of the active model %s: %s", active.version, exc)
        else:
            complete_codes(lib, active.version, method, progress, cancel)
    return lib.load_codes(active.version)


class DivergedTrainingError(UserError, ValueError):
    """Training left weights that are not finite numbers: nothing is published."""


def _refuse_non_finite(method: HashMethod) -> None:
    """A run whose weights became NaN or infinite (a learning rate far too high) would publish
    a model file that no loader accepts (`checkpoint` refuses non-finite weights): stop here,
    before anything is written, with a message the user can act on."""
    bad = [
        name
        for name, t in method.state_dict().items()
        if t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]
    if bad:
        raise DivergedTrainingError(
            f"training diverged: {len(bad)} weight tensors are not finite numbers (e.g. "
            f"{bad[0]}); nothing was saved and the active model stays. Train again with a "
            "lower learning rate (--lr)"
        )


def publish_model(
    lib: Library,
    method: HashMethod,
    version: str,
    *,
    metrics: dict[str, float],
    train_config: dict[str, Any],
    fingerprint: str,
    extra: dict[str, Any],
    note: str,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    activate: bool | None = None,
    label_free: bool = False,
    kind: str = "trained",
) -> ModelInfo:
    """Encode every image with a freshly trained or adapted `method`, evaluate it and the
    active model on the same test queries and database, save ``<models>/<version>.safetensors``
    (+ JSON, with the activation decision), record the model with its codes in one
    transaction, then activate it if the rule of `activation.decide_activation` says so
    (`activate` True forces it, False keeps it inactive) — with a code for every image,
    including images imported meanwhile. `metrics` (the run's own, e.g. time) are stored with
    the test metrics; NaN values (e.g. no validation split) are left out. A cancelled or
    failed run deletes the files and leaves the library as it was. `kind`: the model's
    `catalogue.MODEL_KINDS` entry (the label-free head and adaptation say theirs)."""
    from fabricsearch.catalogue import ModelInfo
    from fabricsearch.hashing.activation import activate_model, decide_activation
    from fabricsearch.hashing.encode import encode_library
    from fabricsearch.hashing.evaluate import assess_library_codes

    lib.models_dir.mkdir(parents=True, exist_ok=True)
    path = lib.models_dir / f"{version}.safetensors"
    _refuse_non_finite(method)
    recorded = False
    try:
        check(cancel)
        ids, packed = encode_library(lib, method, store=False, progress=progress, cancel=cancel)
        active = lib.active_model()
        active_assessment = None
        common: set[int] | None = None
        if active is not None:
            active_ids, active_packed = _active_codes(lib, active, progress, cancel)
            if len(active_ids):  # else it cannot be evaluated; judge the new model alone
                common = set(ids.tolist()) & set(active_ids.tolist())
                active_assessment = assess_library_codes(
                    lib, active_ids, active_packed, active.bits, only=common
                )
        assessment = assess_library_codes(lib, ids, packed, method.bits, only=common)
        decision = decide_activation(
            assessment, active, active_assessment, force=activate, label_free=label_free
        )
        metrics = {**metrics, **assessment.metrics()}
        metrics = {k: v for k, v in metrics.items() if v == v}
        meta = ckpt.build_metadata(
            method,
            train_config=train_config,
            taxonomy_version=getattr(lib.taxonomy, "version", None),
            training_fingerprint=fingerprint,
            metrics=metrics,
            version=version,
        )
        meta.extra.update(extra)
        meta.extra["activation"] = decision.to_dict()
        meta.extra["test_assessment"] = assessment.to_dict()
        if active_assessment is not None:
            meta.extra["active_assessment"] = active_assessment.to_dict()
        ckpt.save_checkpoint(path, method, meta)
        check(cancel)
        info = ModelInfo(
            version=version,
            method=method.name,
            bits=method.bits,
            path=path,
            created=meta.created,
            metrics=metrics,
            note=note,
            kind=kind,
        )
        with lib.atomic():
            lib.add_model(info, activate=False)
            lib.store_codes(version, ids.tolist(), packed)
        recorded = True
        log.info("model %s: %s", version, decision.message())
        if decision.activate:
            activate_model(lib, version, method, progress=progress, cancel=cancel)
    except BaseException:
        if recorded:
            lib.remove_model(version)
        for p in (path, ckpt.metadata_path(path)):
            p.unlink(missing_ok=True)
        raise
    return info
