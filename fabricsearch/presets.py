"""Training presets in plain words, with a time estimate from the library's size and the device.

* **Quick** — the pretrained network stays as it is; DVSH's layers train on the cached features
  (seconds to a minute: what to do after every labelling session).
* **Thorough** — also fine-tunes the last blocks of the network on augmented photos (minutes on
  a GPU, an hour or more on a laptop CPU).

The estimate counts the training steps the library's size makes (its training split in batches
of `TrainConfig.batch_size`, for the configured epochs, at least `min_steps`, twice where the simple head is trained
beside DVSH) and multiplies them by this computer's seconds per step as the library's last
training measured it (`config.step_metric`, recorded with every trained model). Before any
training it falls back on rates measured on the 2-core development CPU (docs/benchmarks.md, "Pretrained
backbone"): a training step on cached features ≈ 25 ms, a photo's feature ≈ 1/25 s,
fine-tuning ≈ 6 photos/s forward and backward; on a CUDA GPU roughly ten to thirty times
faster. Early stopping may end a run sooner; the estimate does not guess that. They are rounded
and meant as "seconds, minutes or hours", not promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fabricsearch.catalogue.images_store import SPLIT_FRACTIONS
from fabricsearch.config import FINETUNE_BLOCKS, TrainConfig
from fabricsearch.errors import ConfigError

#: Seconds per unit, measured on the 2-core development CPU (see the module docstring).
CPU_STEP_S = 0.025
CPU_FEATURE_S = 1 / 25
CPU_FINETUNE_IMAGE_S = 1 / 6
GPU_SPEEDUP = {"step": 10.0, "feature": 15.0, "finetune": 30.0}
#: What `hashing.train` does with a library's labelled images (TrainConfig's defaults and the
#: catalogue's train/val/test split), read from where they are set.
BATCH_SIZE = TrainConfig.batch_size
MIN_STEPS = TrainConfig.min_steps
TRAIN_SHARE, VAL_SHARE = SPLIT_FRACTIONS[0], SPLIT_FRACTIONS[1]
MIN_VAL_FOR_CHOICE = TrainConfig.min_val_for_early_stop  # the simple head is also trained


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    description: str
    changes: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields it sets


def _presets() -> dict[str, Preset]:
    from fabricsearch.backbone_specs import DEFAULT_BACKBONE

    return {
        "quick": Preset(
            "quick",
            "Quick",
            "the pretrained network stays as it is; only the search layers train, on features "
            "computed once per photo",
            {"method": "dvsh", "backbone": DEFAULT_BACKBONE, "finetune": 0},
        ),
        "thorough": Preset(
            "thorough",
            "Thorough",
            "also fine-tunes the network's last blocks on your photos; GPU recommended",
            {
                "method": "dvsh",
                "backbone": DEFAULT_BACKBONE,
                "finetune": FINETUNE_BLOCKS,
                "epochs": 15,
            },
        ),
    }


def presets() -> dict[str, Preset]:
    return _presets()


def get_preset(key: str) -> Preset:
    found = _presets().get(key)
    if found is None:
        raise ConfigError(f"unknown preset {key!r} (presets: {', '.join(_presets())})")
    return found


def training_steps(preset: Preset, labelled: int, epochs: int | None = None) -> int:
    """The training steps a run of `preset` on `labelled` images takes at most (every
    compared method included)."""
    ch = preset.changes
    epochs = int(ch.get("epochs", TrainConfig.epochs)) if epochs is None else epochs
    train_images = max(2, int(labelled * TRAIN_SHARE))
    steps = epochs * max(1, train_images // BATCH_SIZE)
    if ch.get("finetune"):
        return steps
    steps = max(MIN_STEPS, steps)  # short epochs on cached features are stretched
    if labelled * VAL_SHARE >= MIN_VAL_FOR_CHOICE:
        steps *= 2  # the simple head trains beside DVSH; the better one is kept
    return steps


def estimate_seconds(
    preset: Preset,
    labelled: int,
    missing_features: int = 0,
    gpu: bool = False,
    step_s: float | None = None,
    epochs: int | None = None,
) -> float:
    """Rough wall time of a training with `preset` on `labelled` images, `missing_features`
    of which have no cached feature yet. `step_s`: this computer's measured seconds per step
    for runs of this kind (`config.step_metric`); None: the development CPU's rates."""
    ch = preset.changes
    features = missing_features * CPU_FEATURE_S / (GPU_SPEEDUP["feature"] if gpu else 1.0)
    steps = training_steps(preset, labelled, epochs)
    if step_s is None and ch.get("finetune"):
        per_image = CPU_FINETUNE_IMAGE_S / (GPU_SPEEDUP["finetune"] if gpu else 1.0)
        step_s = BATCH_SIZE * per_image
    elif step_s is None:
        step_s = CPU_STEP_S / (GPU_SPEEDUP["step"] if gpu else 1.0)
    return features + steps * step_s


def plain_duration(seconds: float) -> str:
    """ "about 20 s", "about 3 min", "about 2 h" (rounded up to a friendly figure)."""
    if seconds <= 55:  # beyond, "about 60 s" would read oddly: "about 1 min"
        return f"about {max(5, int(math.ceil(seconds / 5.0)) * 5)} s"
    if seconds < 3600:
        return f"about {int(math.ceil(seconds / 60.0))} min"
    return f"about {seconds / 3600.0:.1f} h".replace(".0 h", " h")


def describe(
    preset: Preset,
    labelled: int,
    missing_features: int = 0,
    gpu: bool = False,
    step_s: float | None = None,
    epochs: int | None = None,
) -> str:
    """ "Quick — about 2 min on this computer's CPU (measured): …" for the retrain dialog;
    "measured" when `step_s` came from this library's last training of the kind."""
    eta = plain_duration(estimate_seconds(preset, labelled, missing_features, gpu, step_s, epochs))
    device = "on the GPU" if gpu else "on this computer's CPU"
    basis = " (at the last training's speed)" if step_s is not None else ""
    return f"{preset.title} — {eta} {device}{basis}: {preset.description}"
