"""The interface every hashing method implements, the training batch and the training context.

A method owns its networks, its losses and its optimisation step: `training_step` computes
the losses *and* performs backward/optimizer steps through helpers on `TrainContext`, so
methods with several optimizers (GANs, alternating schemes) fit the same trainer. Non-deep
methods (LSH, ITQ) accumulate features in `training_step` and fit in `finalize()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

if TYPE_CHECKING:
    from fabricsearch.config import TrainConfig


MAX_BITS = 4096
MIN_INPUT, MAX_INPUT = 8, 1024


@dataclass(frozen=True)
class MethodConfig:
    """Base of every method's frozen `Config`; subclasses add their own fields."""

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

    def __post_init__(self) -> None:
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
    """One training batch. `S` is the fine-grained similarity (Eq. 6) between its images."""

    images: torch.Tensor  # (N, 3, H, W) float, normalised
    labels: BatchLabels
    S: torch.Tensor  # (N, N) float32 in [0, 1]
    fabric_ids: torch.Tensor | None = None  # (N,) int64 library ids where known
    indices: torch.Tensor | None = None  # (N,) positions in the training data


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
      * `finalize()` is called once at the end of training.
    """

    name: ClassVar[str] = "base"
    Config: ClassVar[type[MethodConfig]] = MethodConfig
    #: False for methods without trainable weights before `finalize` (LSH, ITQ): the trainer
    #: then skips optimizers and early stopping.
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

    def finalize(self) -> None:
        """Called once after the last training step (fit non-deep methods here)."""

    def base_network(self) -> nn.Module | None:
        """The image feature extractor (`networks.BaseNet`) if the method has one."""
        return None

    def extra_metadata(self) -> dict[str, Any]:
        """Method-specific JSON saved in the checkpoint metadata."""
        return {}
