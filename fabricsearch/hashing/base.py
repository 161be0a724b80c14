"""The interface every hashing method implements, the training batch and the training context.

A method owns its networks, its losses and its optimisation step: `training_step` computes
the losses *and* performs backward/optimizer steps through helpers on `TrainContext`, so
methods with several optimizers (GANs, alternating schemes) fit the same trainer (the one loop,
`hashing.train.run_loop`). Methods without trainable weights (LSH, ITQ) are closed-form: the
trainer calls `fit` once with every row of their data instead of looping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import numbers
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from fabricsearch.errors import ConfigError

if TYPE_CHECKING:
    from fabricsearch.config import TrainConfig


MAX_BITS = 4096
MIN_INPUT, MAX_INPUT = 8, 1024
FEATURE_NORMS = ("sqrt-l2", "none")

# Caps shared by the methods' `BOUNDS`: far above any configuration that trains on this
# program's hardware, far below one that asks for gigabytes before a weight is read.
MAX_DIM = 16384  # feature, latent, hidden and noise dimensions
MAX_WIDTH = 4096  # channels of one convolution stage
MAX_CLASSES = 100_000  # class slots of a classification head
MAX_WEIGHT = 1e6  # loss weights, margins, temperatures
MAX_SEED = 2**63 - 1
#: Tuple fields (network widths): at least one entry, at most this many.
MAX_ITEMS = 16
MAX_TEXT = 64
#: Bounds of fields a `Config` subclass adds without declaring them (third-party methods).
DEFAULT_INT_BOUNDS = (0, 1_000_000)


@functools.cache
def _field_kinds(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def check_config_fields(cfg: MethodConfig) -> None:
    """Type and bounds of every field of a method `Config`, before anything is built from it:
    booleans are booleans, text is short text, numbers are finite and within
    `MethodConfig.field_bounds()` (tuples: 1–`MAX_ITEMS` entries, each within the bounds).
    Raises ValueError naming the field."""
    bounds = type(cfg).field_bounds()
    kinds = _field_kinds(type(cfg))
    for f in dataclasses.fields(cfg):
        name, value, kind = f.name, getattr(cfg, f.name), kinds.get(f.name)
        if kind is bool:
            if not isinstance(value, bool):
                raise ConfigError(f"{name} must be true or false, got {value!r:.40}")
        elif kind is str:
            if not isinstance(value, str) or len(value) > MAX_TEXT:
                raise ConfigError(f"{name} must be a short text, got {value!r:.40}")
        elif kind in (int, float):
            _check_number(name, value, kind, bounds.get(name))
        elif typing.get_origin(kind) is tuple:
            (inner, *_rest) = typing.get_args(kind) or (int,)
            if not isinstance(value, tuple) or not 1 <= len(value) <= MAX_ITEMS:
                size = len(value) if isinstance(value, (tuple, list, str)) else "no"
                raise ConfigError(f"{name} must be a list of 1 to {MAX_ITEMS} values, got {size}")
            for item in value:
                _check_number(name, item, inner, bounds.get(name))


def _check_number(name: str, value: Any, kind: Any, bound: tuple[float, float] | None) -> None:
    if isinstance(value, bool) or not isinstance(
        value, numbers.Integral if kind is int else numbers.Real
    ):
        what = "a whole number" if kind is int else "a number"
        raise ConfigError(f"{name} must be {what}, got {value!r:.40}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be a finite number, got {value!r}")
    lo, hi = (
        bound if bound is not None else DEFAULT_INT_BOUNDS if kind is int else (-math.inf, math.inf)
    )
    if not lo <= value <= hi:
        raise ConfigError(f"{name} must be between {lo:g} and {hi:g}, got {value:g}")


@dataclass(frozen=True)
class MethodConfig:
    """Base of every method's frozen `Config`; subclasses add their own fields.

    Every field is checked when a `Config` is made (`check_config_fields`), so a foreign or
    damaged model file, or a command-line option, is refused before a network is built from
    it: each class declares in `BOUNDS` the (lowest, highest) value of its numeric fields and
    of every entry of its tuple fields (merged along the class hierarchy)."""

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "bits": (8, MAX_BITS),
        "input_size": (MIN_INPUT, MAX_INPUT),
        "finetune_blocks": (0, 64),
        "feature_dropout": (0.0, 1.0),
    }

    bits: int = 64
    input_size: int = 112
    #: "compact" (BaseNet on pixels) or a pretrained backbone whose cached features are the
    #: method's input (hashing/backbones.py). Methods that need pixels refuse pretrained ones.
    backbone: str = "compact"
    #: 0: a pretrained backbone stays frozen and the input is its cached feature; k > 0: its
    #: last k MBConv blocks and head train with the method, on pixels (fine-tuning).
    finetune_blocks: int = 0
    #: How a pretrained feature enters the method: "sqrt-l2" (power + unit normalisation) or
    #: "none"; and the dropout on it during training (docs/backbones.md).
    feature_norm: str = "sqrt-l2"
    feature_dropout: float = 0.2

    @classmethod
    def field_bounds(cls) -> dict[str, tuple[float, float]]:
        """`BOUNDS` of this class and its bases (a subclass may narrow a base's bound)."""
        out: dict[str, tuple[float, float]] = {}
        for klass in reversed(cls.__mro__):
            out.update(vars(klass).get("BOUNDS", {}))
        return out

    def __post_init__(self) -> None:
        check_config_fields(self)
        if self.feature_norm not in FEATURE_NORMS:
            raise ValueError(
                f"feature_norm must be one of {', '.join(FEATURE_NORMS)}, got {self.feature_norm!r}"
            )
        if self.bits <= 0 or self.bits % 8:
            raise ValueError(f"bits must be a positive multiple of 8, got {self.bits}")
        # Bounds that keep a foreign or damaged model file from asking for terabytes.
        if self.bits > MAX_BITS:
            raise ValueError(f"bits must be at most {MAX_BITS}, got {self.bits}")
        if not MIN_INPUT <= self.input_size <= MAX_INPUT:
            raise ValueError(
                f"input_size must be between {MIN_INPUT} and {MAX_INPUT} px, got {self.input_size}"
            )
        from fabricsearch.hashing.backbones import BackboneError, get_spec

        try:
            spec = get_spec(self.backbone)
        except BackboneError as exc:
            raise ValueError(str(exc)) from None
        if self.finetune_blocks < 0 or (self.finetune_blocks and not spec.pretrained):
            raise ValueError("finetune_blocks needs a pretrained backbone and must be >= 0")


@dataclass
class BatchLabels:
    """`similarity.LabelArrays` as tensors on the training device (aligned with the batch)."""

    major: torch.Tensor  # (N,) int64, -1 unknown
    minor: torch.Tensor  # (N,) int64, -1 unknown
    fine: torch.Tensor  # (N,) int64, -1 unknown
    tightness: torch.Tensor  # (N,) float32, NaN unknown
    palette: torch.Tensor  # (N, 10, 4) float32

    def to(self, device: torch.device | str) -> BatchLabels:
        return BatchLabels(*(t.to(device) for t in self.as_tuple()))

    def as_tuple(self) -> tuple[torch.Tensor, ...]:
        return (self.major, self.minor, self.fine, self.tightness, self.palette)


@dataclass
class Batch:
    """One training batch. `S` is the fine-grained similarity (Eq. 6) between its images.

    Labelled sources (the library, synthetic fabrics) always give `labels` and `S`; the
    unlabelled two-view source of adaptation gives no labels, a measured `S` or none, and
    `groups`."""

    images: torch.Tensor  # (N, 3, H, W) float, normalised (or (N, D) cached features)
    labels: BatchLabels | None
    S: torch.Tensor | None  # (N, N) float32 in [0, 1]
    fabric_ids: torch.Tensor | None = None  # (N,) int64 library ids where known
    indices: torch.Tensor | None = None  # (N,) positions in the training data
    #: (N,) which items show the same instance (contrastive positives: photos of one generated
    #: fabric, views of one photo); None where the source has no instances.
    groups: torch.Tensor | None = None

    @property
    def samples(self) -> int:
        """Photos in the batch (two views of one photo count once): the unit of samples/s."""
        return len(self.indices) if self.indices is not None else len(self.images)


@dataclass
class TrainContext:
    """What the trainer lends a method during `training_step`.

    `backward_step` hides mixed precision: on CUDA it scales the loss with a GradScaler, on
    CPU/MPS it is a plain backward and step.
    """

    device: torch.device
    optimizers: list[torch.optim.Optimizer] = field(default_factory=list)
    amp: bool = False
    step: int = 0  # global optimisation step, counted by the trainer
    epoch: int = 0
    generator: torch.Generator | None = None  # seeded source for method-side sampling
    scaler: Any = None

    def __post_init__(self) -> None:
        if self.scaler is None:
            self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_enabled)

    @property
    def amp_enabled(self) -> bool:
        return self.amp and self.device.type == "cuda"

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """Mixed precision for the forward pass on CUDA; a no-op elsewhere."""
        if self.amp_enabled:
            with torch.autocast("cuda", dtype=torch.float16):
                yield
        else:
            yield

    def backward_step(
        self,
        loss: torch.Tensor,
        optimizer: torch.optim.Optimizer | None = None,
        retain_graph: bool = False,
        clip_norm: float | None = None,
    ) -> None:
        """zero_grad → (scaled) backward → optional clipping → step → scaler update."""
        opt = optimizer if optimizer is not None else self.optimizers[0]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward(retain_graph=retain_graph)
        if clip_norm is not None:
            self.scaler.unscale_(opt)
            params = [p for g in opt.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, clip_norm)
        self.scaler.step(opt)
        self.scaler.update()


class HashMethod(nn.Module):
    """Base class of all hashing methods. Subclasses set `Config` and register themselves.

    Contract:
      * `encode_continuous(x)` → (N, K) relaxed codes (values in about [-1, 1]);
      * `encode(x)` → (N, K) ±1 float (sign, 0 → +1), in eval mode without gradients;
      * `configure_optimizers(train_cfg)` → optimizers, stored by the trainer on the context;
      * `training_step(batch, ctx)` → dict of float loss terms (the method does its own steps);
      * `fit(inputs)` (methods with ``trainable = False`` only) → fitted in one call on every
        row of the data, given as chunks of un-augmented inputs;
      * `finalize()` is called once at the end of training.
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    #: False for closed-form methods without trainable weights (LSH, ITQ): the trainer then
    #: calls `fit` once on all the data instead of the training loop.
    trainable: ClassVar[bool] = True

    def __init__(self, config: MethodConfig) -> None:
        super().__init__()
        self.config = config

    @property
    def bits(self) -> int:
        return self.config.bits

    @property
    def input_size(self) -> int:
        return self.config.input_size

    #: Methods that can run on a pretrained backbone's cached features set this True.
    supports_features: ClassVar[bool] = False
    #: State-dict prefixes of layers sized by the library's labels (classification heads): a
    #: warm start from another library's checkpoint may lack them or have other sizes.
    label_head_prefixes: ClassVar[tuple[str, ...]] = ()

    @property
    def backbone(self) -> str:
        return self.config.backbone

    @property
    def on_features(self) -> bool:
        """True when the input is a pretrained backbone's feature (N, D), not pixels."""
        from fabricsearch.hashing.backbones import is_pretrained

        return is_pretrained(self.config.backbone) and not self.config.finetune_blocks

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Binary codes ±1 (sign of the relaxed code; exactly 0 maps to +1)."""
        with self.evaluating():
            u = self.encode_continuous(x).float()
        return torch.where(u >= 0, 1.0, -1.0)

    @contextlib.contextmanager
    def evaluating(self) -> Iterator[None]:
        """Eval mode (no dropout, no sampling, running batch-norm statistics) for the block,
        then the mode the method was in."""
        was_training = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(was_training)

    def configure_optimizers(self, train_cfg: TrainConfig) -> list[torch.optim.Optimizer]:
        """Default: one Adam over all parameters with the paper's lr and weight decay."""
        params = [p for p in self.parameters() if p.requires_grad]
        if not params:
            return []
        return [torch.optim.Adam(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay)]

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        raise NotImplementedError

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class probabilities per label kind ("minor", "fine": (N, C)) from classification heads
        where the method has them (DVSH); {} otherwise."""
        return {}

    def fit(self, inputs: Iterable[torch.Tensor]) -> None:
        """Closed-form fit on every row of the data in one call (``trainable = False``
        methods): `inputs` are the un-augmented inputs in chunks (a memory bound, not batches)."""
        raise NotImplementedError(f"{self.name} has trainable weights: train it with the loop")

    def finalize(self) -> None:
        """Called once after the last training step."""

    def base_network(self) -> nn.Module | None:
        """The image feature extractor (`networks.BaseNet`) if the method has one."""
        return None

    def extra_metadata(self) -> dict[str, Any]:
        """Method-specific JSON saved in the checkpoint metadata."""
        return {}
