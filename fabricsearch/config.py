"""Frozen configuration dataclasses, written as JSON beside every model checkpoint.

Method-specific settings (network widths, loss weights) live in each method's own ``Config``
(see `fabricsearch.hashing.base.MethodConfig`); `TrainConfig` holds what the trainer needs and
passes ``bits``, ``input_size`` and ``method_options`` on to the method. `PretrainConfig`
(synthetic pretraining) and `AdaptConfig` (self-supervised adaptation) live here too, so a
front end builds its flags and dialogs from their fields without importing torch.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field, fields
from typing import Any, TypeVar

from fabricsearch.errors import ConfigError

T = TypeVar("T")

#: How many of a pretrained network's last blocks are fine-tuned when fine-tuning is asked
#: for without a number (the thorough preset, ``train --finetune``, the window's check box).
FINETUNE_BLOCKS = 3
#: The code lengths a front end offers (`TrainConfig.bits` accepts any positive multiple of 8).
CODE_LENGTHS = (32, 64, 128, 256)
#: How many results a search returns unless asked (`Searcher.search`, ``search -k``); the
#: window asks for a screenful of its own (its "top N" box, 40).
SEARCH_RESULTS = 20


@dataclass(frozen=True)
class TrainConfig:
    """How to train one hashing model. Defaults follow §5.1 of the DVSH paper."""

    method: str = "dvsh"
    bits: int = 64
    input_size: int = 112  # network input, px (square)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 5e-5
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N | mps
    amp: bool = True  # mixed precision where the device is CUDA
    patience: int = 5  # epochs without val mAP improvement before stopping; 0 = never stop early
    val_every: int = 1  # epochs between validations
    max_steps_per_epoch: int = 0  # 0 = the whole training split each epoch
    init: str = "scratch"  # "scratch" or a path to BaseNet weights / a full checkpoint
    augment: bool = True
    lr_schedule: str = "cosine"  # "cosine" (decay to 0 over the run) | "constant"
    #: "compact" trains BaseNet on pixels; a pretrained backbone (the CLI's and the window's
    #: default, `hashing.backbones.DEFAULT_BACKBONE`) stays frozen and the method trains on its
    #: cached features.
    backbone: str = "compact"
    #: > 0: fine-tune the last this many blocks of the pretrained backbone with the method, on
    #: augmented pixels (slow on a CPU; mixed precision on CUDA). 0: frozen, cached features.
    finetune: int = 0
    #: On cached features steps cost milliseconds: train at least this many steps (a library
    #: with few labels otherwise stops after a handful), and stop early only when at least
    #: `min_val_for_early_stop` validation images make the validation mAP worth following.
    min_steps: int = 600
    min_val_for_early_stop: int = 50
    feature_views: bool = (
        False  # also train on cached mirrored/zoomed/rotated views (measured: no gain)
    )
    #: With the default method (DVSH on a frozen pretrained backbone) and at least
    #: `min_val_for_early_stop` validation images, `train_library` also trains the simple
    #: supervised head (methods/head.py, seconds) and keeps the one with the higher validation
    #: mAP (docs/dvsh.md, "DVSH or the simple head"). False: DVSH alone.
    compare_head: bool = True
    method_options: dict[str, Any] = field(default_factory=dict)  # overrides of the method Config

    def __post_init__(self) -> None:
        if self.bits <= 0 or self.bits % 8:
            raise ConfigError(f"bits must be a positive multiple of 8, got {self.bits}")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (the list-wise loss needs pairs)")
        if not 16 <= self.input_size <= 1024:
            raise ConfigError(f"input_size must be between 16 and 1024 px, got {self.input_size}")
        if self.bits > 4096:
            raise ConfigError(f"bits must be at most 4096, got {self.bits}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ConfigError(
                f"lr_schedule must be 'cosine' or 'constant', got {self.lr_schedule!r}"
            )
        if self.epochs < 1:
            raise ConfigError("epochs must be at least 1")
        from fabricsearch.backbone_specs import BackboneError, get_spec

        try:
            get_spec(self.backbone)
        except BackboneError as exc:
            raise ConfigError(str(exc)) from None

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        return config_from_dict(cls, data)


@dataclass(frozen=True)
class PretrainConfig:
    """Synthetic pretraining settings. Defaults are the CPU budget of the shipped model."""

    steps: int = 300
    seed: int = 0
    bits: int = 64
    nested_bits: tuple[int, ...] = (32,)  # prefixes trained to be codes of their own
    input_size: int = 64  # network input, px; the encoder uses the same size
    batch_fabrics: int = 16  # fabrics per step; × photos_per_fabric images
    photos_per_fabric: int = 2
    lr: float = 1e-3
    weight_decay: float = 5e-5
    warmup_frac: float = 0.05  # linear warm-up, then cosine decay to 5 % of lr
    lambda_list: float = 1.0
    # The list-wise loss sums over the n − 1 ranked items (≈ n·log n) while NT-Xent is a mean
    # (≈ log n); λ_nce = 10 gives both a comparable share of the gradient at n = 32.
    lambda_nce: float = 10.0
    nce_temperature: float = 0.2
    lambda_q: float = 1e-3
    lambda_kld: float = 1e-3
    method: str = "dvsh"
    method_options: dict[str, Any] = field(default_factory=dict)
    device: str = "auto"
    amp: bool = True  # mixed precision where the device is CUDA
    half_weights: bool = True  # store the checkpoint in float16 (half the file size)
    eval_fabrics: int = 60  # held-out synthetic fabrics (× photos) for the final mAP; 0 = none

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ConfigError("steps must be at least 1")
        if self.bits <= 0 or self.bits % 8:
            raise ConfigError(f"bits must be a positive multiple of 8, got {self.bits}")
        for b in self.nested_bits:
            if not 0 < b < self.bits or b % 8:
                raise ConfigError(f"nested bits must be multiples of 8 below {self.bits}, got {b}")
        if self.photos_per_fabric < 2:
            raise ConfigError("instance discrimination needs photos_per_fabric >= 2")
        if self.batch_fabrics < 2:
            raise ConfigError("batch_fabrics must be at least 2")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PretrainConfig:
        return config_from_dict(cls, data)


@dataclass(frozen=True)
class AdaptConfig:
    """Self-supervised adaptation settings."""

    epochs: int = 3
    batch_size: int = 32  # images per step; the network sees 2 × batch_size views
    lr: float = 3e-4
    weight_decay: float = 5e-5
    max_steps: int = 0  # 0 = epochs × (images // batch_size)
    max_images: int = 0  # 0 = all; else a seeded random subset (very large archives)
    splits: tuple[str, ...] = ()  # () = every image; else only these stored splits
    start: str = "active"  # "active" (else the shipped model) | "pretrained" | a model file
    temperature: float = 0.2
    # Code prefixes kept good codes of their own (those below the model's bits).
    nested_bits: tuple[int, ...] = (32,)
    lambda_nce: float = 1.0
    # List-wise loss on the hand-crafted descriptor similarity (0 = contrastive only).
    lambda_list: float = 1.0
    lambda_q: float = 1e-3
    lambda_kld: float = 1e-3
    min_scale: float = 0.55  # smallest crop side as a fraction of the cached image
    max_blur: float = 1.2  # largest Gaussian blur sigma, px at input size
    light: float = 0.2  # brightness factor in [1 − light, 1 + light]; gradient up to light
    seed: int = 0
    device: str = "auto"
    amp: bool = True  # mixed precision where the device is CUDA

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise ConfigError("epochs must be at least 1")
        if self.batch_size < 2:
            raise ConfigError("batch_size must be at least 2 (contrastive negatives)")
        if not 0.1 <= self.min_scale <= 1.0:
            raise ConfigError("min_scale must be in [0.1, 1]")
        for s in self.splits:
            if s not in ("train", "val", "test"):
                raise ValueError(f"unknown split {s!r}")

    def to_dict(self) -> dict[str, Any]:
        return config_to_dict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptConfig:
        return config_from_dict(cls, data)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A frozen dataclass → JSON-ready dict (tuples become lists)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def config_from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Build `cls` from a dict, ignoring unknown keys (newer files) and restoring tuples."""
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            continue
        if isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


#: Kinds of training run, by what a step costs: the search layers on cached features of a
#: frozen pretrained network, those layers with the network's last blocks fine-tuned on
#: photos, or the compact network trained on pixels.
RUN_KINDS = ("features", "finetune", "pixels")


def run_kind(finetune: int, backbone: str) -> str:
    """The `RUN_KINDS` entry of a training with these settings."""
    from fabricsearch.backbone_specs import is_pretrained

    if finetune:
        return "finetune"
    return "features" if is_pretrained(backbone) else "pixels"


def step_metric(kind: str, gpu: bool) -> str:
    """The model metric holding a training's measured seconds per step, for runs of its kind
    (`run_kind`; "features_step_s_cpu", "finetune_step_s_gpu", …): what `presets` estimates
    the next one from."""
    return f"{kind}_step_s_{'gpu' if gpu else 'cpu'}"


def replace(cfg: T, **changes: Any) -> T:
    """`dataclasses.replace` re-exported so callers need one import."""
    return dataclasses.replace(cfg, **changes)  # type: ignore[type-var]
