"""Training presets in plain words, with a time estimate from the library's size and the device.

* **Quick** — the pretrained network stays as it is; DVSH's layers train on the cached features
  (seconds to a minute: what to do after every labelling session).
* **Thorough** — also fine-tunes the last blocks of the network on augmented photos (minutes on
  a GPU, an hour or more on a laptop CPU).

The estimates come from measured rates (docs/benchmarks.md, "Pretrained backbone"; 2-core CPU):
a training step on cached features ≈ 25 ms, a photo's feature ≈ 1/25 s, fine-tuning ≈ 6 photos/s
forward and backward; on a CUDA GPU roughly ten to thirty times faster. They are rounded and
meant as "seconds, minutes or hours", not promises.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from fabricsearch.errors import ConfigError

#: Seconds per unit, measured on the 2-core development CPU (see the module docstring).
CPU_STEP_S = 0.025
CPU_FEATURE_S = 1 / 25
CPU_FINETUNE_IMAGE_S = 1 / 6
GPU_SPEEDUP = {"step": 10.0, "feature": 15.0, "finetune": 30.0}


@dataclass(frozen=True)
class Preset:
    key: str
    title: str
    description: str
    changes: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields it sets


def _presets() -> dict[str, Preset]:
    from fabricsearch.hashing.backbones import DEFAULT_BACKBONE

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
            {"method": "dvsh", "backbone": DEFAULT_BACKBONE, "finetune": 3, "epochs": 15},
        ),
    }


def presets() -> dict[str, Preset]:
    return _presets()


def get_preset(key: str) -> Preset:
    found = _presets().get(key)
    if found is None:
        raise ConfigError(f"unknown preset {key!r} (presets: {', '.join(_presets())})")
    return found


def estimate_seconds(
    preset: Preset, labelled: int, missing_features: int = 0, gpu: bool = False
) -> float:
    """Rough wall time of a training with `preset` on `labelled` images, `missing_features`
    of which have no cached feature yet."""
    ch = preset.changes
    epochs = int(ch.get("epochs", 30))
    steps_per_epoch = max(1, labelled // 32)
    features = missing_features * CPU_FEATURE_S / (GPU_SPEEDUP["feature"] if gpu else 1.0)
    if ch.get("finetune"):
        per_image = CPU_FINETUNE_IMAGE_S / (GPU_SPEEDUP["finetune"] if gpu else 1.0)
        return features + epochs * labelled * per_image
    steps = max(600, epochs * steps_per_epoch)
    # Early stopping usually ends a large library's run at about half the epochs.
    if labelled >= 500:
        steps = max(600, steps // 2)
    return features + steps * CPU_STEP_S / (GPU_SPEEDUP["step"] if gpu else 1.0)


def plain_duration(seconds: float) -> str:
    """ "about 20 s", "about 3 min", "about 2 h" (rounded up to a friendly figure)."""
    if seconds < 60:
        return f"about {max(5, int(math.ceil(seconds / 5.0)) * 5)} s"
    if seconds < 3600:
        return f"about {int(math.ceil(seconds / 60.0))} min"
    return f"about {seconds / 3600.0:.1f} h".replace(".0 h", " h")


def describe(preset: Preset, labelled: int, missing_features: int = 0, gpu: bool = False) -> str:
    """ "Quick — about 20 s: …" for the retrain dialog and `train --preset`."""
    eta = plain_duration(estimate_seconds(preset, labelled, missing_features, gpu))
    device = "on the GPU" if gpu else "on this computer's CPU"
    return f"{preset.title} — {eta} {device}: {preset.description}"
