"""Frozen configuration dataclasses, written as JSON beside every model checkpoint.

Method-specific settings (network widths, loss weights) live in each method's own ``Config``
(see `fabricsearch.hashing.base.MethodConfig`); `TrainConfig` holds what the trainer needs and
passes ``bits``, ``input_size`` and ``method_options`` on to the method.
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
