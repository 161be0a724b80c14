"""Training a search model: train (+ evaluate + decide + publish + encode + activate), encode
with a stored model, evaluate, pretrain the shipped network, adapt the compact backbone, and
the registries a front end offers (methods, backbones, presets).

Every function imports its implementation when called (torch only then), and looks it up at
call time, so a test that replaces e.g. `hashing.train.train_library` replaces it here too."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fabricsearch.backbone_specs import COMPACT, DEFAULT_BACKBONE, BackboneError, is_pretrained
from fabricsearch.config import CODE_LENGTHS, FINETUNE_BLOCKS

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.config import AdaptConfig, PretrainConfig, TrainConfig
    from fabricsearch.hashing.base import HashMethod
    from fabricsearch.hashing.evaluate import EvalResult
    from fabricsearch.jobs import CancelToken, ProgressFn
    from fabricsearch.presets import Preset
    from fabricsearch.pretrain import PretrainResult

__all__ = [
    "AdaptConfig",
    "BackboneError",
    "CODE_LENGTHS",
    "COMPACT",
    "DEFAULT_BACKBONE",
    "FINETUNE_BLOCKS",
    "PretrainConfig",
    "adapt",
    "available_methods",
    "backbone_available",
    "backbone_labels",
    "check_method_config",
    "default_backbone_for",
    "describe_choice",
    "describe_preset",
    "encode",
    "evaluate",
    "get_method_class",
    "get_preset",
    "is_pretrained",
    "measured_step_seconds",
    "needs_labels",
    "parse_method_options",
    "preload_torch",
    "presets",
    "pretrain",
    "read_choice",
    "resolve_init",
    "stop_reason",
    "train",
    "warm_up_backbone",
]


def __getattr__(name: str) -> Any:
    """Types and constants, imported on first use."""
    if name == "AdaptConfig":
        from fabricsearch.config import AdaptConfig

        return AdaptConfig
    if name == "PretrainConfig":
        from fabricsearch.config import PretrainConfig

        return PretrainConfig
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- training -------------------------------------------------------------------------------


def train(
    lib: Library,
    cfg: TrainConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **options: Any,
) -> ModelInfo:
    """Train, evaluate, decide, publish, encode and (if it is better, or ``activate=True``)
    activate a model on ``lib`` (`hashing.train.train_library`; ``options``: its ``resume``,
    ``note`` and ``activate``, passed on only when given)."""
    from fabricsearch.hashing import train as impl

    return impl.train_library(lib, cfg, progress=progress, cancel=cancel, **options)


def measured_step_seconds(lib: Library, kind: str, gpu: bool) -> float | None:
    """Seconds per training step of this library's latest training of the kind
    (`config.run_kind`, on GPU or CPU), as recorded with its model (`config.step_metric`);
    None before any.
    Read from the catalogue: cheap enough for a dialog's opening."""
    import math

    from fabricsearch.config import step_metric

    key = step_metric(kind, gpu)
    for info in lib.models():  # newest first
        value = info.metrics.get(key)
        if isinstance(value, int | float) and math.isfinite(value) and value > 0:
            return float(value)
    return None


def stop_reason(info: ModelInfo) -> str:
    """Why the training of a model stopped before its last epoch ("stopped early at epoch 25
    of 30: …"), from its metadata; "" when it did every epoch or nothing was recorded."""
    from fabricsearch.hashing import checkpoint as ckpt
    from fabricsearch.hashing.train import describe_stop

    try:
        meta = ckpt.read_metadata(info.path)
    except (OSError, ValueError, ckpt.CheckpointError):
        return ""
    stop = meta.extra.get("stop")
    return describe_stop(stop) if isinstance(stop, dict) else ""


def check_method_config(cfg: TrainConfig) -> None:
    """The method's configuration as `train` builds it; a value it refuses raises ValueError."""
    from fabricsearch.hashing.train import method_config

    method_config(cfg)


def describe_choice(choice: dict[str, Any] | None) -> str:
    from fabricsearch.hashing.train import describe_choice as impl

    return impl(choice)


def read_choice(info: ModelInfo) -> dict[str, Any] | None:
    """The method choice recorded with a model trained with ``method="auto"``."""
    from fabricsearch.hashing.train import read_choice as impl

    return impl(info)


def resolve_init(name_or_path: str | Path | None, lib: Library | None = None) -> Path | None:
    """The checkpoint a training starts from (``"shipped"``, a path, or None: scratch)."""
    from fabricsearch.pretrain import resolve_init as impl

    return impl(name_or_path, lib)


# --- encoding and evaluating ----------------------------------------------------------------


def encode(
    lib: Library,
    version: str | None = None,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[ModelInfo, int]:
    """Encode every image with a stored model (the active one without ``version``); the model
    and the number of images encoded."""
    from fabricsearch.hashing import encode as impl
    from fabricsearch.hashing.device import resolve_device

    method, info, _ = impl.load_library_model(lib, version, device=resolve_device(device))
    ids, _packed = impl.encode_library(lib, method, info.version, progress=progress, cancel=cancel)
    return info, int(len(ids))


def evaluate(
    lib: Library, version: str | None = None, plots: bool = True
) -> tuple[EvalResult, ModelInfo, list[Path]]:
    """Evaluate a model's stored codes on the test split; its plots written beside it."""
    from fabricsearch.hashing.evaluate import evaluate_library, write_plots

    result, info = evaluate_library(lib, version)
    written = write_plots(result, lib.models_dir, info.version) if plots else []
    return result, info, written


# --- pretraining and adapting ---------------------------------------------------------------


def pretrain(
    cfg: PretrainConfig,
    out_dir: str | Path,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> PretrainResult:
    """Pretrain the shipped model on synthetic fabrics (`pretrain.pretrain`)."""
    from fabricsearch import pretrain as impl

    return impl.pretrain(cfg, out_dir, progress=progress, cancel=cancel)


def adapt(
    lib: Library,
    cfg: AdaptConfig,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    activate: bool | None = None,
) -> ModelInfo:
    """Adapt the compact backbone to the library's photos, label-free (`adapt.adapt_library`)."""
    from fabricsearch import adapt as impl

    return impl.adapt_library(lib, cfg, progress=progress, cancel=cancel, activate=activate)


# --- registries -----------------------------------------------------------------------------


def available_methods() -> list[str]:
    from fabricsearch.hashing.registry import available_methods as impl

    return impl()


def get_method_class(name: str) -> type[HashMethod]:
    """The method's class; an unknown name raises `UnknownMethodError` (a user error)."""
    from fabricsearch.hashing.registry import get_method_class as impl

    return impl(name)


def parse_method_options(method: str, items: list[str]) -> dict[str, Any]:
    from fabricsearch.hashing.registry import parse_method_options as impl

    return impl(method, items)


def needs_labels(method: str) -> bool:
    """Whether a method learns from labels (LSH and ITQ are fitted on images alone)."""
    from fabricsearch.hashing.registry import needs_labels as impl

    return impl(method)


def default_backbone_for(method: str) -> str:
    from fabricsearch.hashing.backbones import default_backbone_for as impl

    return impl(method)


def backbone_available(name: str) -> bool:
    """Whether an image network can be used here (a pretrained one: its weights found)."""
    from fabricsearch.hashing.backbones import backbone_available as impl

    return impl(name)


def backbone_labels() -> dict[str, str]:
    """Each image network's name in plain words, for a chooser (in the order offered)."""
    from fabricsearch.hashing.backbones import BACKBONE_LABELS

    return dict(BACKBONE_LABELS)


def preload_torch() -> bool:
    """Import torch without holding Python's interpreter lock while its libraries load
    (`torchload.import_torch`): for a background thread as a front end starts, so that the
    first import, whoever asks for it, does not pause the other threads. Whether torch is there."""
    from fabricsearch.torchload import import_torch

    return import_torch()


def one_blas_thread() -> bool:
    """numpy's linear algebra on one thread in this process (`threads.one_blas_thread`): for a
    front end whose GUI thread needs a core beside its workers. Whether it could."""
    from fabricsearch.threads import one_blas_thread as impl

    return impl()


def warm_up_backbone(name: str = DEFAULT_BACKBONE) -> None:
    """Load torch and the image network once, so that the first query does not wait
    (the window runs it in a background thread as it starts)."""
    from fabricsearch.hashing.backbones import warm_up

    preload_torch()  # torch's libraries first, without the interpreter lock
    warm_up(name)


def presets() -> dict[str, Preset]:
    """The training presets a front end offers, by key."""
    from fabricsearch.presets import presets as impl

    return impl()


def describe_preset(
    preset: Preset,
    labelled: int,
    missing_features: int = 0,
    gpu: bool = False,
    step_s: float | None = None,
    epochs: int | None = None,
) -> str:
    """A preset in plain words with its time estimate (`presets.describe`)."""
    from fabricsearch.presets import describe

    return describe(preset, labelled, missing_features, gpu, step_s, epochs)


def get_preset(key: str) -> Preset:
    from fabricsearch.presets import get_preset as impl

    return impl(key)
