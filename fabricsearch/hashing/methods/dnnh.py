"""DNNH: simultaneous feature learning and hash coding (Lai et al., CVPR 2015).

    image → network-in-network sub-network (convs each followed by a 1×1 conv, ReLU, max-pool;
            last 1×1 conv gives s·K channels; global average pool)
          → divide-and-encode: K slices of length s, slice i → fc_i (s → 1, no bias, Eq. 4)
            → sigmoid(β c) (Eq. 5) → piece-wise threshold g_ε (Eq. 6) → F(I) ∈ [0, 1]^K
          → bit = sign(F(I) − 0.5) (§3.4)

Loss: the relaxed triplet ranking hinge (Eq. 2)
    ℓ = max(0, ‖b − b⁺‖² − ‖b − b⁻‖² + margin), margin = 1,
over triplets mined inside each batch from the fine-grained similarity S: every (a, p, n) with
a, p, n distinct and S[a, p] > S[a, n] + δ (δ = 0.05), averaged over the triplets (optionally a
seeded random subset of at most ``max_triplets``).

ε starts at 0.5 (where g is the identity on [0, 1]) and shrinks by 20 % every
``eps_decay_steps`` optimisation steps. The paper decays every 20 000 iterations; our runs are a
few hundred to a few thousand steps, so the default is 100 (see docs/methods.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from fabricsearch.hashing.base import (
    MAX_WEIGHT,
    MAX_WIDTH,
    Batch,
    HashMethod,
    MethodConfig,
    TrainContext,
)
from fabricsearch.hashing.registry import register_method


@dataclass(frozen=True)
class DNNHConfig(MethodConfig):
    # NIN stages (conv k×k → 1×1 conv, both ReLU, then 3×3/2 max-pool except after the last):
    # the paper's Table 1 uses 96/256/384/1024 channels at 256 px; a quarter of that fits the
    # 2-core CPU at 112 px.
    nin_widths: tuple[int, ...] = (32, 64, 96, 256)
    slice_len: int = 50  # s: each bit is encoded from its own slice of s features (§3.3)
    beta: float = 1.0  # sigmoid slope (Eq. 5); the paper gives no value
    eps_start: float = 0.5  # ε of the piece-wise threshold (§4.1)
    eps_decay: float = 0.8  # "decrease it by 20 %"
    eps_decay_steps: int = 100  # paper: 20 000 iterations
    margin: float = 1.0  # triplet hinge margin (Eq. 2)
    triplet_delta: float = 0.05  # S[a, p] must exceed S[a, n] by this to form a triplet
    max_triplets: int = 0  # 0 = every mined triplet

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "nin_widths": (1, MAX_WIDTH),
        "slice_len": (1, 1024),
        "beta": (0.0, MAX_WEIGHT),
        "eps_start": (0.0, 0.5),
        "eps_decay": (0.0, 1.0),
        "eps_decay_steps": (0, 10**9),
        "margin": (0.0, MAX_WEIGHT),
        "triplet_delta": (0.0, 1.0),
        "max_triplets": (0, 10**9),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.nin_widths) != 4:
            raise ValueError("DNNH's sub-network has four NIN stages (nin_widths of length 4)")
        if self.slice_len < 1:
            raise ValueError("slice_len must be >= 1")
        if not 0.0 < self.eps_start <= 0.5:
            raise ValueError("eps_start must be in (0, 0.5]")


def piecewise_threshold(s: torch.Tensor, eps: float) -> torch.Tensor:
    """Eq. 6: 0 below 0.5 − ε, s on [0.5 − ε, 0.5 + ε], 1 above 0.5 + ε.

    Gradients flow only through the middle piece, as in the paper's function."""
    lo, hi = 0.5 - eps, 0.5 + eps
    return torch.where(s < lo, torch.zeros_like(s), torch.where(s > hi, torch.ones_like(s), s))


def slice_lengths(in_dim: int, bits: int) -> list[int]:
    """Footnote 4: with in_dim = bits·s + c (0 ≤ c < bits) the first c slices get s + 1 features."""
    if in_dim < bits:
        raise ValueError(
            f"divide-and-encode needs at least one feature per bit ({in_dim} < {bits})"
        )
    s, c = divmod(in_dim, bits)
    return [s + 1] * c + [s] * (bits - c)


class DivideEncode(nn.Module):
    """Divide-and-encode module: (N, D) → (N, K) sigmoid outputs, bit i from slice i only."""

    def __init__(self, in_dim: int, bits: int, beta: float = 1.0) -> None:
        super().__init__()
        self.in_dim, self.bits, self.beta = in_dim, bits, float(beta)
        lengths = slice_lengths(in_dim, bits)
        longest = max(lengths)
        # Slices are laid out in a (K, longest) grid; a fixed mask zeroes the padding of the
        # shorter slices so each fc_i sees exactly its own features (Eq. 4, no bias).
        index = torch.zeros(bits, longest, dtype=torch.long)
        mask = torch.zeros(bits, longest)
        start = 0
        for i, n in enumerate(lengths):
            index[i, :n] = torch.arange(start, start + n)
            mask[i, :n] = 1.0
            start += n
        self.register_buffer("index", index, persistent=False)
        self.register_buffer("mask", mask, persistent=False)
        self.weight = nn.Parameter(torch.randn(bits, longest) / longest**0.5)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """c_i = W_i x⁽ⁱ⁾ for every slice → (N, K)."""
        slices = x[:, self.index]  # (N, K, longest)
        return (slices * (self.weight * self.mask)[None]).sum(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.beta * self.logits(x).float())


def triplet_mask(S: torch.Tensor, delta: float) -> torch.Tensor:
    """(N, N, N) bool: (a, p, n) distinct and S[a, p] > S[a, n] + delta."""
    n = S.shape[0]
    S = S.float()
    mask = S[:, :, None] > S[:, None, :] + delta
    eye = torch.eye(n, dtype=torch.bool, device=S.device)
    distinct = ~(eye[:, :, None] | eye[:, None, :] | eye[None, :, :])
    return mask & distinct


def triplet_loss(
    b: torch.Tensor,
    mask: torch.Tensor,
    margin: float = 1.0,
    max_triplets: int = 0,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, int]:
    """Eq. 2 averaged over the triplets in `mask` → (loss, number of triplets used)."""
    b = b.float()
    d = torch.cdist(b, b).pow(2)  # (N, N) squared Euclidean
    hinge = (d[:, :, None] - d[:, None, :] + margin).clamp(min=0.0)  # (a, p, n)
    idx = mask.nonzero(as_tuple=False)
    if idx.shape[0] == 0:
        return b.sum() * 0.0, 0
    if max_triplets and idx.shape[0] > max_triplets:
        pick = torch.randperm(idx.shape[0], generator=generator)[:max_triplets].to(idx.device)
        idx = idx[pick]
    values = hinge[idx[:, 0], idx[:, 1], idx[:, 2]]
    return values.mean(), int(idx.shape[0])


class NINSubNetwork(nn.Module):
    """Network-in-network feature extractor (Table 1, scaled down) → (N, out_channels)."""

    def __init__(self, widths: tuple[int, ...], out_channels: int) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths
        layers: list[nn.Module] = []

        def nin(cin: int, cout: int, k: int, stride: int, last_out: int | None = None) -> None:
            layers.extend(
                [
                    nn.Conv2d(cin, cout, k, stride, k // 2),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(inplace=True),
                ]
            )
            c2 = last_out if last_out is not None else cout
            layers.extend([nn.Conv2d(cout, c2, 1), nn.ReLU(inplace=True)])

        # 112 px: 5×5/2 → 56 → pool 28 → 28 → pool 14 → 14 → pool 7 → 7 → global average.
        nin(3, w1, 5, 2)
        layers.append(nn.MaxPool2d(3, 2, 1))
        nin(w1, w2, 5, 1)
        layers.append(nn.MaxPool2d(3, 2, 1))
        nin(w2, w3, 3, 1)
        layers.append(nn.MaxPool2d(3, 2, 1))
        nin(w3, w4, 3, 1, last_out=out_channels)
        self.features = nn.Sequential(*layers)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).float().mean(dim=(2, 3))


@register_method("dnnh")
class DNNH(HashMethod):
    """NIN sub-network + divide-and-encode + triplet ranking loss on S-mined triplets."""

    Config = DNNHConfig
    config: DNNHConfig

    def __init__(self, config: DNNHConfig) -> None:
        super().__init__(config)
        feat = config.slice_len * config.bits
        self.subnet = NINSubNetwork(config.nin_widths, feat)
        self.dem = DivideEncode(feat, config.bits, config.beta)
        self.register_buffer("eps", torch.tensor(float(config.eps_start)))

    def eps_at(self, step: int) -> float:
        """ε after `step` optimisation steps (20 % smaller every `eps_decay_steps`)."""
        c = self.config
        return c.eps_start * c.eps_decay ** (step // max(c.eps_decay_steps, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """F(I) ∈ [0, 1]^K: divide-and-encode output after the piece-wise threshold."""
        s = self.dem(self.subnet(x))
        return piecewise_threshold(s, float(self.eps))

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        # sign(F − 0.5) is the paper's quantisation; 2F − 1 keeps the relaxed code in [−1, 1].
        return 2.0 * self(x) - 1.0

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        c = self.config
        self.train()
        self.eps.fill_(self.eps_at(ctx.step))
        mask = triplet_mask(batch.S.to(batch.images.device), c.triplet_delta)
        with ctx.autocast():
            b = self(batch.images)
        loss, count = triplet_loss(b, mask, c.margin, c.max_triplets, ctx.generator)
        if count:
            ctx.backward_step(loss)
        return {"loss": float(loss.detach()), "triplets": float(count), "eps": float(self.eps)}

    def extra_metadata(self) -> dict[str, Any]:
        return {"bit_rule": "bit = sign(F(I) - 0.5), F = piecewise(sigmoid(beta * W_i x_i))"}
