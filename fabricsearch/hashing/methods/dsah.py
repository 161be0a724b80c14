"""DSaH: deep saliency hashing (Jin et al., 2019), with the fine-grained similarity of §3 as labels.

    x → attention FCN (FCN-16s-style fusion of a stride-8 and a stride-16 score map, upsampled)
      → saliency map, min–max normalised per image to [0, 1] (Eq. 3)
      → saliency image y = Salmap ⊙ x (Eq. 4)
    hashing network (BaseNet, as DVSH, + linear hashing layer + tanh) → μ (on x), μ' (on y)
    bit = sign(Hash(Attention(x))) (Eq. 16)

Losses, per batch, with ŝ_ij = (μ_iᵀμ_j + K) / 2K ∈ (0, 1) estimating the pairwise label S_ij:

* semantic (Eq. 6/7):  J_sem = mean_ij (S_ij − ŝ_ij)², on original (μ) and saliency (μ') pairs;
* saliency (Eq. 8/9):  d_ij = K (S_ij − ŝ_ij)², d'_ij the same on μ';
  J_sal = mean_ij max(m − d_ij + d'_ij, 0) / K with m = K/4;
* quantisation (Eq. 10): J_reg = mean_i ‖μ_i − sign(μ_i)‖₁ / K (+ the same on μ').

Alternating optimisation (Algorithm 1, attention first, §4.3) inside every training step:

1. attention step: J_att = α J_sal + λ J_sem_sal + J_reg_sal (Eq. 13), only the attention
   network's optimizer steps (the hashing network's parameters are frozen for this pass);
2. hashing step: J_hash = λ (J_sem_ori + J_sem_sal) + J_reg_ori + J_reg_sal (Eq. 12) with the
   saliency images detached, only the hashing network's optimizer steps.

λ = 30, α = 40 (§4.3). The pairwise label S_ij comes from the fine-grained similarity; see
``DSaHConfig.similar`` and docs/methods.md for what "similar" means here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fabricsearch.hashing.base import (
    MAX_BITS,
    MAX_DIM,
    MAX_WEIGHT,
    MAX_WIDTH,
    Batch,
    HashMethod,
    MethodConfig,
    TrainContext,
)
from fabricsearch.hashing.networks import DEFAULT_WIDTHS, BaseNet
from fabricsearch.hashing.registry import register_method

SIMILAR_MODES = ("label", "threshold", "graded")


@dataclass(frozen=True)
class DSaHConfig(MethodConfig):
    widths: tuple[int, ...] = DEFAULT_WIDTHS  # hashing network (BaseNet, as DVSH; paper: VGG-16)
    feature_dim: int = 512
    attention_widths: tuple[int, ...] = (16, 32, 48, 64)  # FCN stages at strides 2, 4, 8, 16
    lambda_sem: float = 30.0  # λ
    alpha_sal: float = 40.0  # α
    margin_bits: float = 0.0  # m; 0 → K / 4 (§4.3)
    # Pairwise label S_ij of Eq. 5: "label" = same coarse minor and (where both known) same
    # fine texture, as the evaluation's relevance; "threshold" = S ≥ similar_threshold;
    # "graded" = S itself (a soft label in [0, 1]).
    similar: str = "label"
    similar_threshold: float = 0.5
    attention_lr_scale: float = 1.0  # attention optimizer lr = train lr × this

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "widths": (1, MAX_WIDTH),
        "feature_dim": (1, MAX_DIM),
        "attention_widths": (1, MAX_WIDTH),
        "lambda_sem": (0.0, MAX_WEIGHT),
        "alpha_sal": (0.0, MAX_WEIGHT),
        "margin_bits": (0.0, MAX_BITS),
        "similar_threshold": (0.0, 1.0),
        "attention_lr_scale": (0.0, MAX_WEIGHT),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.similar not in SIMILAR_MODES:
            raise ValueError(f"similar must be one of {SIMILAR_MODES}, got {self.similar!r}")
        if len(self.attention_widths) != 4:
            raise ValueError("the attention network has four stages (attention_widths of length 4)")

    @property
    def margin(self) -> float:
        return self.margin_bits if self.margin_bits > 0 else self.bits / 4.0


def minmax_normalise(sal: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 3 per image: (N, 1, H, W) → (sal − min) / (max − min) in [0, 1].

    A constant map (max = min) becomes all ones, i.e. the image passes unchanged."""
    flat = sal.flatten(1)
    lo = flat.min(dim=1).values.view(-1, 1, 1, 1)
    hi = flat.max(dim=1).values.view(-1, 1, 1, 1)
    span = hi - lo
    out = (sal - lo) / span.clamp(min=eps)
    return torch.where(span > eps, out, torch.ones_like(sal))


def pair_estimate(mu: torch.Tensor) -> torch.Tensor:
    """ŝ_ij = (μ_iᵀ μ_j + K) / 2K, the code-side estimate of the pairwise label."""
    mu = mu.float()
    k = mu.shape[1]
    return (mu @ mu.T + k) / (2.0 * k)


def semantic_loss(mu: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 6/7: mean over pairs i ≠ j of (S_ij − ŝ_ij)²."""
    n = mu.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=mu.device)
    return (target.float() - pair_estimate(mu)).pow(2)[off].mean()


def quadruple_saliency_loss(d: torch.Tensor, d_sal: torch.Tensor, margin: float) -> torch.Tensor:
    """Eq. 9 for (N, N) pair distances: mean over i ≠ j of max(m − d_ij + d'_ij, 0)."""
    n = d.shape[0]
    off = ~torch.eye(n, dtype=torch.bool, device=d.device)
    return (margin - d + d_sal).clamp(min=0.0)[off].mean()


def pair_distance_bits(mu: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Eq. 8 in bit units: d_ij = K (S_ij − ŝ_ij)², so that the margin m = K/4 is comparable."""
    k = mu.shape[1]
    return k * (target.float() - pair_estimate(mu)).pow(2)


def quantisation_l1(mu: torch.Tensor) -> torch.Tensor:
    """Eq. 10 with b = sign(μ): mean over images of ‖μ − b‖₁ / K."""
    mu = mu.float()
    b = torch.where(mu >= 0, 1.0, -1.0).to(mu)
    return (mu - b).abs().mean()


def pairwise_labels(batch: Batch, mode: str, threshold: float) -> torch.Tensor:
    """The pairwise label matrix S_ij of Eq. 5 from the batch (see `DSaHConfig.similar`)."""
    S = batch.S.float()
    if mode == "graded":
        return S
    if mode == "threshold":
        return (threshold <= S).float()
    lab = batch.labels
    minor, major, fine = lab.minor.to(S.device), lab.major.to(S.device), lab.fine.to(S.device)
    qm, dm = minor[:, None], minor[None, :]
    qM, dM = major[:, None], major[None, :]
    qf, df = fine[:, None], fine[None, :]
    minor_known = (qm >= 0) & (dm >= 0)
    major_known = (qM >= 0) & (dM >= 0)
    fine_known = (qf >= 0) & (df >= 0)
    coarse = torch.where(
        minor_known, qm == dm, torch.where(major_known, qM == dM, fine_known & (qf == df))
    )
    fine_ok = torch.where(fine_known, qf == df, torch.ones_like(fine_known))
    return (coarse & fine_ok).float()


class AttentionFCN(nn.Module):
    """Small fully convolutional saliency network with FCN-16s-style skip fusion → (N, 1, H, W)."""

    def __init__(self, widths: tuple[int, ...]) -> None:
        super().__init__()
        w1, w2, w3, w4 = widths

        def stage(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                nn.BatchNorm2d(cout),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            )

        self.s1, self.s2, self.s3, self.s4 = (
            stage(3, w1),
            stage(w1, w2),
            stage(w2, w3),
            stage(w3, w4),
        )
        self.score8 = nn.Conv2d(w3, 1, 1)  # stride-8 score (the "pool4" skip of FCN-16s)
        self.score16 = nn.Conv2d(w4, 1, 1)  # stride-16 score

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f3 = self.s3(self.s2(self.s1(x)))
        f4 = self.s4(f3)
        s8 = self.score8(f3)
        fused = s8 + F.interpolate(
            self.score16(f4), size=s8.shape[-2:], mode="bilinear", align_corners=False
        )
        return F.interpolate(fused, size=x.shape[-2:], mode="bilinear", align_corners=False).float()


class HashingNet(nn.Module):
    """BaseNet + hashing layer + tanh → binary-like codes μ in (−1, 1)^K."""

    def __init__(self, widths: tuple[int, ...], feature_dim: int, bits: int) -> None:
        super().__init__()
        self.base = BaseNet(widths, feature_dim)
        self.hash = nn.Linear(feature_dim, bits)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.hash(self.base(x)).float())


@register_method("dsah")
class DSaH(HashMethod):
    """Attention network + hashing network trained alternately (attention first)."""

    Config = DSaHConfig
    config: DSaHConfig

    def __init__(self, config: DSaHConfig) -> None:
        super().__init__(config)
        self.attention = AttentionFCN(config.attention_widths)
        self.hashing = HashingNet(config.widths, config.feature_dim, config.bits)

    def base_network(self) -> BaseNet:
        return self.hashing.base

    def saliency_map(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, H, W) saliency in [0, 1] (Eq. 2–3)."""
        return minmax_normalise(self.attention(x))

    def saliency_image(self, x: torch.Tensor) -> torch.Tensor:
        """Eq. 4. Inputs are normalised (mean 0), so suppressed pixels become the neutral
        normalisation mean (mid grey) rather than black."""
        return self.saliency_map(x) * x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.hashing(self.saliency_image(x))

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)  # Eq. 16: codes of the saliency image

    def configure_optimizers(self, train_cfg: Any) -> list[torch.optim.Optimizer]:
        """[attention optimizer, hashing optimizer] (Adam with the trainer's lr/weight decay)."""
        c = self.config
        att = torch.optim.Adam(
            self.attention.parameters(),
            lr=train_cfg.lr * c.attention_lr_scale,
            weight_decay=train_cfg.weight_decay,
        )
        hsh = torch.optim.Adam(
            self.hashing.parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
        )
        return [att, hsh]

    def _targets(self, batch: Batch) -> torch.Tensor:
        return pairwise_labels(batch, self.config.similar, self.config.similar_threshold).to(
            batch.images.device
        )

    def attention_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        """Step 1 (Eq. 13): update the attention network only."""
        c = self.config
        target = self._targets(batch)
        x = batch.images
        self.hashing.requires_grad_(False)
        try:
            with ctx.autocast():
                with torch.no_grad():
                    mu = self.hashing(x)
                mu_sal = self.hashing(self.saliency_image(x))
            d = pair_distance_bits(mu, target)
            d_sal = pair_distance_bits(mu_sal, target)
            j_sal = quadruple_saliency_loss(d, d_sal, c.margin) / c.bits
            j_sem = semantic_loss(mu_sal, target)
            j_reg = quantisation_l1(mu_sal)
            loss = c.alpha_sal * j_sal + c.lambda_sem * j_sem + j_reg
            ctx.backward_step(loss, ctx.optimizers[0])
        finally:
            self.hashing.requires_grad_(True)
        return {"att_loss": float(loss.detach()), "sal": float(j_sal.detach())}

    def hashing_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        """Step 2 (Eq. 12): update the hashing network only (saliency images fixed)."""
        c = self.config
        target = self._targets(batch)
        x = batch.images
        with ctx.autocast():
            with torch.no_grad():
                y = self.saliency_image(x)
            mu = self.hashing(x)
            mu_sal = self.hashing(y)
        j_sem = semantic_loss(mu, target)
        j_sem_sal = semantic_loss(mu_sal, target)
        j_reg = quantisation_l1(mu) + quantisation_l1(mu_sal)
        loss = c.lambda_sem * (j_sem + j_sem_sal) + j_reg
        ctx.backward_step(loss, ctx.optimizers[1])
        return {
            "hash_loss": float(loss.detach()),
            "sem": float(j_sem.detach()),
            "sem_sal": float(j_sem_sal.detach()),
            "quant": float(j_reg.detach()),
        }

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        self.train()
        terms = self.attention_step(batch, ctx)
        terms.update(self.hashing_step(batch, ctx))
        terms["loss"] = terms["att_loss"] + terms["hash_loss"]
        return terms

    def extra_metadata(self) -> dict[str, Any]:
        return {"bit_rule": "bit = sign(tanh(Hash(Salmap * x)))", "similar": self.config.similar}
