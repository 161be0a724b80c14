"""DVSH: deep variational and structural hashing (§4) and its ablations of Table 3.

    image → BaseNet → r ─(variational)→ μ, log σ² → z = μ + σ ⊙ ε (training) / μ (inference)
          → (structural) hidden FC + ReLU → M = K blocks of length A = 2 → softmax per block
          → u_m = softmax(U_m)[0] − softmax(U_m)[1] ∈ (−1, 1) → bit_m = sign(u_m)

Loss (Eq. 18): λ1·KLD + λ2·L_q(u) + λ3·L_P(u, S) with λ1 = λ2 = 1e-3, λ3 = 1, plus the
discriminative classification term the paper's §5.3 says guides DVSH but Eq. 18 omits:
λ4·(CE(coarse minor) + CE(fine texture)) from linear heads on the base feature r, plus
λ5·(the same two cross-entropies from linear heads on the relaxed code u), over the labels each
image has (docs/dvsh.md, "Discriminative classification"). The heads exist only when the
trainer sets `num_minor`/`num_fine` from the training labels; encoding never uses them.

Ablations: dvsh1a (no variational module: z = r), dvsh1b (no structural module:
u = tanh(Linear(z))), dvsh2a (neither).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from fabricsearch.hashing import losses
from fabricsearch.hashing.base import (
    MAX_CLASSES,
    MAX_DIM,
    MAX_WEIGHT,
    MAX_WIDTH,
    Batch,
    HashMethod,
    MethodConfig,
    TrainContext,
)
from fabricsearch.hashing.networks import DEFAULT_WIDTHS, make_base
from fabricsearch.hashing.registry import register_method

# The code heads see u · 4: with u ∈ (−1, 1) and default init their logits would start near 0
# and the cross-entropy would barely move the codes for the first epochs.
CODE_LOGIT_SCALE = 4.0


@dataclass(frozen=True)
class DVSHConfig(MethodConfig):
    widths: tuple[int, ...] = DEFAULT_WIDTHS
    feature_dim: int = 512  # BaseNet output r
    latent_dim: int = 256  # z (variational module)
    hidden_dim: int = 512  # structural module's shared non-linear projection
    variational: bool = True
    structural: bool = True
    block_len: int = 2  # A; with M = K blocks, one bit per block
    lambda_kld: float = 1e-3  # λ1
    lambda_q: float = 1e-3  # λ2
    lambda_list: float = 1.0  # λ3
    tau: float = 0.0  # list-wise temperature; 0 → K / 8
    balance: str = "batch"  # "batch" (bi-half, per bit) | "code" (literal Eq. 15) | "none"
    lambda_cls: float = 20.0  # λ4, classification from the base feature r (0 = off)
    lambda_code_cls: float = 20.0  # λ5, classification from the relaxed code u (0 = off)
    num_minor: int = 0  # classes of the coarse-minor head (0 = no head; set by the trainer)
    num_fine: int = 0  # classes of the fine-texture head (0 = no head; set by the trainer)

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "widths": (1, MAX_WIDTH),
        "feature_dim": (1, MAX_DIM),
        "latent_dim": (1, MAX_DIM),
        "hidden_dim": (1, MAX_DIM),
        "block_len": (1, 16),
        "lambda_kld": (0.0, MAX_WEIGHT),
        "lambda_q": (0.0, MAX_WEIGHT),
        "lambda_list": (0.0, MAX_WEIGHT),
        "tau": (0.0, MAX_WEIGHT),
        "lambda_cls": (0.0, MAX_WEIGHT),
        "lambda_code_cls": (0.0, MAX_WEIGHT),
        "num_minor": (0, MAX_CLASSES),
        "num_fine": (0, MAX_CLASSES),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.block_len != 2:
            raise ValueError(
                "DVSH uses blocks of length A = 2 (one bit per block, K exact); see docs/dvsh.md"
            )
        if self.balance not in ("batch", "code", "none"):
            raise ValueError(f"unknown balance mode {self.balance!r}")


def dvsh_loss(
    out: dict[str, torch.Tensor],
    S: torch.Tensor | None,
    *,
    lambda_list: float = 1.0,
    lambda_q: float = 1e-3,
    lambda_kld: float = 1e-3,
    tau: float | None = None,
    balance: str = "batch",
    nested_bits: tuple[int, ...] = (),
    groups: torch.Tensor | None = None,
    lambda_nce: float = 0.0,
    nce_temperature: float = 0.2,
    nested_nce: bool = False,
) -> tuple[torch.Tensor, dict[str, float]]:
    """DVSH's objective (Eq. 18), written once for every way of training it, on a forward
    output (`u`, and `mu`/`logvar` when the variational module is on):

        λ_list·[L_P(u, S) + Σ_b L_P(u[:, :b], S)] + λ_nce·NT-Xent(u, groups) + λ_q·L_q(u) + λ_kld·KLD

    Supervised training (`DVSH.compute_losses`) gives S from labels and no `groups`;
    self-supervised training (`hashing.objectives.SelfSupervisedObjective`: synthetic
    pretraining, adaptation) adds instance discrimination over `groups` and the nested code
    prefixes `nested_bits` (list-wise always, contrastive when `nested_nce`). The list-wise term
    needs `S` and the contrastive one `groups`: either may be None. Returns (total, float terms;
    "loss" is the total)."""
    u = out["u"]
    terms: dict[str, float] = {}
    total = u.new_zeros((), dtype=torch.float32)
    if S is not None:
        l_list = losses.listwise_loss(u, S, tau=tau)
        for b in nested_bits:
            l_list = l_list + losses.listwise_loss(u[:, :b], S, tau=b / 8.0 if tau is None else tau)
        total = total + lambda_list * l_list
        terms["list"] = float(l_list.detach())
    if groups is not None and lambda_nce > 0:
        l_nce = losses.nt_xent_loss(u, groups, nce_temperature)
        if nested_nce:
            for b in nested_bits:
                l_nce = l_nce + losses.nt_xent_loss(u[:, :b], groups, nce_temperature)
        total = total + lambda_nce * l_nce
        terms["nce"] = float(l_nce.detach())
    l_q = losses.quantization_loss(u, balance=balance)
    total = total + lambda_q * l_q
    terms["quant"] = float(l_q.detach())
    if "mu" in out:
        l_kld = losses.kld_loss(out["mu"], out["logvar"])
        total = total + lambda_kld * l_kld
        terms["kld"] = float(l_kld.detach())
    terms["loss"] = float(total.detach())
    return total, terms


@register_method("dvsh")
class DVSH(HashMethod):
    """Deep variational and structural hashing with list-wise fine-grained similarity loss."""

    Config = DVSHConfig
    config: DVSHConfig
    supports_features = True
    label_head_prefixes = ("cls_minor.", "cls_fine.", "code_minor.", "code_fine.")

    def __init__(self, config: DVSHConfig) -> None:
        super().__init__(config)
        c = config
        self.base = make_base(
            c.backbone,
            c.widths,
            c.feature_dim,
            c.finetune_blocks,
            c.feature_norm,
            c.feature_dropout,
        )
        z_dim = c.feature_dim
        if c.variational:
            self.mu = nn.Linear(c.feature_dim, c.latent_dim)
            self.logvar = nn.Linear(c.feature_dim, c.latent_dim)
            # Start with small variance so early sampling noise does not swamp the features.
            nn.init.zeros_(self.logvar.weight)
            nn.init.constant_(self.logvar.bias, -4.0)
            z_dim = c.latent_dim
        # Batch normalisation of the code pre-activations (block logits, or the pre-tanh
        # values) keeps them at unit scale from the start: with default init they are ~0.05,
        # where u·u' has almost no gradient and the list-wise loss learns very slowly.
        if c.structural:
            self.struct_hidden = nn.Sequential(
                nn.Linear(z_dim, c.hidden_dim), nn.ReLU(inplace=True)
            )
            self.struct_blocks = nn.Linear(c.hidden_dim, c.bits * c.block_len)
            self.code_norm = nn.BatchNorm1d(c.bits * c.block_len)
        else:
            self.hash_layer = nn.Linear(z_dim, c.bits)
            self.code_norm = nn.BatchNorm1d(c.bits)
        self.cls_minor = nn.Linear(c.feature_dim, c.num_minor) if c.num_minor > 0 else None
        self.cls_fine = nn.Linear(c.feature_dim, c.num_fine) if c.num_fine > 0 else None
        self.code_minor = nn.Linear(c.bits, c.num_minor) if c.num_minor > 0 else None
        self.code_fine = nn.Linear(c.bits, c.num_fine) if c.num_fine > 0 else None

    def base_network(self) -> nn.Module:
        return self.base

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Relaxed codes `u` (N, K) plus `mu`/`logvar` when the variational module is on."""
        c = self.config
        out: dict[str, torch.Tensor] = {}
        r = self.base(x)
        out["r"] = r
        z = r
        if c.variational:
            mu = self.mu(r).float()
            logvar = self.logvar(r).float().clamp(-20.0, 10.0)
            out["mu"], out["logvar"] = mu, logvar
            # Eq. 9–10 in training; the mean at inference so codes are deterministic.
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        if c.structural:
            blocks = self.code_norm(self.struct_blocks(self.struct_hidden(z))).float()
            probs = blocks.view(-1, c.bits, c.block_len).softmax(dim=2)  # Eq. 13–14
            out["blocks"] = probs
            out["u"] = probs[..., 0] - probs[..., 1]
        else:
            out["u"] = torch.tanh(self.code_norm(self.hash_layer(z)).float())
        return out

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)["u"]

    def compute_losses(self, batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 18 (`dvsh_loss` with this model's weights) plus the classification terms."""
        c = self.config
        out = self(batch.images)
        u = out["u"]
        total, terms = dvsh_loss(
            out,
            batch.S,
            tau=c.tau or None,
            balance=c.balance,
            lambda_list=c.lambda_list,
            lambda_q=c.lambda_q,
            lambda_kld=c.lambda_kld,
        )
        del terms["loss"]
        for key, weight, feature, heads in (
            ("cls", c.lambda_cls, out["r"], (self.cls_minor, self.cls_fine)),
            # u ∈ (−1, 1): scaled so the fresh head's logits are not all ≈ 0 (docs/dvsh.md).
            (
                "code_cls",
                c.lambda_code_cls,
                u * CODE_LOGIT_SCALE,
                (self.code_minor, self.code_fine),
            ),
        ):
            if weight <= 0 or all(h is None for h in heads):
                continue
            x = feature.float()
            l_cls = x.new_zeros(())
            for head, target in zip(heads, (batch.labels.minor, batch.labels.fine), strict=True):
                if head is not None:
                    l_cls = l_cls + losses.classification_loss(head(x).float(), target)
            total = total + weight * l_cls
            terms[key] = float(l_cls.detach())
        terms["loss"] = float(total.detach())
        return total, terms

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        self.train()
        with ctx.autocast():
            total, terms = self.compute_losses(batch)
        ctx.backward_step(total)
        return terms

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Class probabilities from the classification heads (coarse minor, fine texture): the
        mean of the head on r and the head on the relaxed code u; empty without heads."""
        with self.evaluating():
            out = self(x)
        probs: dict[str, torch.Tensor] = {}
        u = out["u"].float() * CODE_LOGIT_SCALE
        r = out["r"].float()
        for key, on_r, on_u in (
            ("minor", self.cls_minor, self.code_minor),
            ("fine", self.cls_fine, self.code_fine),
        ):
            parts = [
                h(f).float().softmax(dim=1) for h, f in ((on_r, r), (on_u, u)) if h is not None
            ]
            if parts:
                probs[key] = torch.stack(parts).mean(dim=0)
        return probs

    def extra_metadata(self) -> dict[str, Any]:
        return {"bit_rule": "u = softmax(U_m)[0] - softmax(U_m)[1]; bit = sign(u)"}


@dataclass(frozen=True)
class DVSH1aConfig(DVSHConfig):
    variational: bool = False


@dataclass(frozen=True)
class DVSH1bConfig(DVSHConfig):
    structural: bool = False


@dataclass(frozen=True)
class DVSH2aConfig(DVSHConfig):
    variational: bool = False
    structural: bool = False


@register_method("dvsh1a")
class DVSH1a(DVSH):
    """Ablation: DVSH without the variational module (Table 3)."""

    Config = DVSH1aConfig


@register_method("dvsh1b")
class DVSH1b(DVSH):
    """Ablation: DVSH without the structural module (u = tanh of a linear layer)."""

    Config = DVSH1bConfig


@register_method("dvsh2a")
class DVSH2a(DVSH):
    """Ablation: DVSH without the variational and the structural module."""

    Config = DVSH2aConfig
