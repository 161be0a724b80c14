"""DSH-GANs: deep semantic hashing with GANs (comparable method; docs/methods.md, "DSH-GANs").

    C (one-hot coarse class, or 0 if unlabelled) ⊕ z ~ N(0, I) → G → synthetic image
    image → shared CNN (`networks.BaseNet`) → x ─┬─ hash stream     h = σ(Linear(x)) ∈ [0, 1]^K
                                                 ├─ adversary stream  logit P(real | x)
                                                 └─ classification    logits over c classes

Two stages inside one training run, switched by epoch (`stage1_epochs`, a buffer set by
`configure_optimizers` from ``stage1_fraction × epochs``):

stage 1  semi-supervised conditional GAN (§3.2): the discriminator is the shared CNN with its
         adversary and classification streams (labelled and unlabelled real images are
         "real"; only labelled ones and class-conditioned fakes get the class loss); the
         generator minimises l_c − l_a (non-saturating form). The hash stream is warmed up on
         detached features with the triplet loss (our decision, for early stopping).
stage 2  joint training (§3.6): real–synthetic triplets (x, G(C_y, z), G(C_y', z')) with
         y' ≠ y; the CNN minimises triplet + l_a + l_c (Eq. 8), the generator
         triplet − l_a + l_c (Eq. 9, non-saturating).

The bit is sign(2h − 1), i.e. h > 0.5 (§3.7). Class = coarse *minor* index; −1 = unlabelled.
Optimizers: [shared CNN + streams (train_cfg lr / weight decay), generator (Adam 2e-4, β1 0.5)].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fabricsearch.hashing import gan_blocks as gb
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
from fabricsearch.hashing.networks import DEFAULT_WIDTHS, BaseNet
from fabricsearch.hashing.registry import register_method

if TYPE_CHECKING:
    from fabricsearch.config import TrainConfig


@dataclass(frozen=True)
class DSHGANConfig(MethodConfig):
    widths: tuple[int, ...] = DEFAULT_WIDTHS  # shared CNN (BaseNet)
    feature_dim: int = 512
    n_classes: int = 64  # class slots c; must exceed every minor index (taxonomy has 15 now)
    noise_dim: int = 100  # z (DCGAN)
    gen_base: int = 32  # generator channels at full resolution; doubles per level upwards
    gen_max: int = 256
    gen_levels: int = 4  # upsamplings from the seed map (112 px → 7 px seed)
    margin: float = 1.0  # triplet margin (Eq. 3)
    gan_lr: float = 2e-4
    gan_beta1: float = 0.5
    stage1_fraction: float = 0.5
    warmup_hash: bool = True
    hash_bn: bool = True  # BatchNorm (no affine) on the hash stream's pre-sigmoid activations

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "widths": (1, MAX_WIDTH),
        "feature_dim": (1, MAX_DIM),
        "n_classes": (2, MAX_CLASSES),
        "noise_dim": (1, MAX_DIM),
        "gen_base": (1, MAX_WIDTH),
        "gen_max": (1, MAX_WIDTH),
        "gen_levels": (1, 8),
        "margin": (0.0, MAX_WEIGHT),
        "gan_lr": (0.0, MAX_WEIGHT),
        "gan_beta1": (0.0, 1.0),
        "stage1_fraction": (0.0, 1.0),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.widths) != 5:
            raise ValueError("widths must have five entries (BaseNet blocks)")
        if self.n_classes < 2:
            raise ValueError("n_classes must be at least 2 (triplets need another class)")
        if not 0.0 <= self.stage1_fraction < 1.0:
            raise ValueError("stage1_fraction must be in [0, 1)")


class ConditionalGenerator(nn.Module):
    """DCGAN generator G(C, z): (N, c) ⊕ (N, noise) → (N, 3, S, S) in [-2, 2] for any S.

    A linear layer makes the seed map, then `levels` transposed 3×3 stride-2 convolutions
    (BN + ReLU) double it to the exact side sequence of ceil-halving S."""

    def __init__(
        self,
        n_classes: int,
        noise_dim: int,
        size: int,
        base: int = 32,
        max_ch: int = 256,
        levels: int = 4,
    ) -> None:
        super().__init__()
        self.n_classes, self.noise_dim = n_classes, noise_dim
        sizes = [size]
        for _ in range(levels):
            sizes.append(gb.halve(sizes[-1]))
        self.sizes = sizes[::-1]  # seed … S
        ch = [min(base * 2**i, max_ch) for i in range(levels, -1, -1)]  # seed … full
        self.ch0 = ch[0]
        self.fc = nn.Linear(n_classes + noise_dim, ch[0] * self.sizes[0] ** 2)
        self.bn0 = nn.BatchNorm2d(ch[0])
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(ch[i], ch[i + 1], 3, stride=2, padding=1) for i in range(levels)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(ch[i + 1]) for i in range(levels))
        self.out = nn.Conv2d(ch[-1], 3, 3, padding=1)
        gb.init_dcgan(self)

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        s0 = self.sizes[0]
        h = self.fc(torch.cat([c.to(z.dtype), z], dim=1)).view(-1, self.ch0, s0, s0)
        h = F.relu(self.bn0(h))
        for i, (up, bn) in enumerate(zip(self.ups, self.bns, strict=True)):
            s = self.sizes[i + 1]
            h = F.relu(bn(up(h, output_size=[s, s])))
        return 2.0 * torch.tanh(self.out(h).float())  # normalised images lie in [-2, 2]


def one_hot_or_zero(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    """(N,) class index, −1 = unlabelled → (N, c) one-hot; unlabelled rows are zero (§3.2)."""
    if labels.numel() and int(labels.max()) >= n_classes:
        raise ValueError(
            f"class index {int(labels.max())} needs n_classes > {n_classes}; raise the method option"
        )
    out = torch.zeros(labels.shape[0], n_classes, device=labels.device)
    known = labels >= 0
    out[torch.arange(labels.shape[0], device=labels.device)[known], labels[known]] = 1.0
    return out


def sample_negative_classes(
    labels: torch.Tensor, seen: torch.Tensor, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Triplet construction: for each labelled anchor, a different class y' ≠ y drawn uniformly
    from the classes seen so far (`seen`: bool (c,)). → (anchor indices, negative classes).

    Anchors without a label, or whose class is the only one seen, get no triplet. Drawing
    only seen classes keeps G from being asked for classes it never learned."""
    seen = seen.to("cpu").bool()
    lab = labels.to("cpu")
    anchors, negs = [], []
    u = torch.rand(lab.shape[0], generator=generator)
    seen_idx = torch.nonzero(seen).flatten()
    for i, y in enumerate(lab.tolist()):
        if y < 0:
            continue
        others = seen_idx[seen_idx != y]
        if len(others) == 0:
            continue
        anchors.append(i)
        negs.append(int(others[min(int(u[i] * len(others)), len(others) - 1)]))
    return torch.tensor(anchors, dtype=torch.int64), torch.tensor(negs, dtype=torch.int64)


def triplet_ranking_loss(
    h: torch.Tensor, h_pos: torch.Tensor, h_neg: torch.Tensor, margin: float = 1.0
) -> torch.Tensor:
    """Eq. 3: mean of max(0, m − ‖h − h⁻‖² + ‖h − h⁺‖²) over triplets (h ∈ [0, 1]^K)."""
    if h.shape[0] == 0:
        return h.sum() * 0.0
    d_pos = (h.float() - h_pos.float()).pow(2).sum(dim=1)
    d_neg = (h.float() - h_neg.float()).pow(2).sum(dim=1)
    return F.relu(margin - d_neg + d_pos).mean()


@register_method("dshgan")
class DSHGAN(HashMethod):
    """Deep semantic hashing with a semi-supervised conditional GAN (triplet + adversary + class)."""

    Config = DSHGANConfig
    config: DSHGANConfig

    def __init__(self, config: DSHGANConfig) -> None:
        super().__init__(config)
        c = config
        self.base = BaseNet(c.widths, c.feature_dim)
        # From scratch all images start with nearly equal features, so σ(·) ≈ 0.5 for every
        # code and Eq. 3 is at its stationary point (equal codes → zero gradient); normalising
        # the pre-activations spreads the codes from the first step.
        self.hash_head = nn.Sequential(
            nn.Linear(c.feature_dim, c.bits),
            nn.BatchNorm1d(c.bits, affine=False) if c.hash_bn else nn.Identity(),
        )
        self.adv_head = nn.Linear(c.feature_dim, 1)
        self.cls_head = nn.Linear(c.feature_dim, c.n_classes)
        self.generator = ConditionalGenerator(
            c.n_classes, c.noise_dim, c.input_size, c.gen_base, c.gen_max, c.gen_levels
        )
        self.register_buffer("stage1_epochs", torch.tensor(1, dtype=torch.int64))
        # Classes met in training so far: negatives of triplets are drawn from these.
        self.register_buffer("class_seen", torch.zeros(c.n_classes, dtype=torch.bool))

    def base_network(self) -> BaseNet:
        return self.base

    # --- inference ----------------------------------------------------------------------
    def streams(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Shared features, h ∈ [0, 1]^K, adversary logit (N,), class logits (N, c)."""
        f = self.base(x)
        return {
            "feat": f,
            "h": torch.sigmoid(self.hash_head(f).float()),
            "adv": self.adv_head(f).float().squeeze(1),
            "cls": self.cls_head(f).float(),
        }

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.streams(x)

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        # 2h − 1 ∈ (−1, 1): sign ≥ 0 ⇔ h ≥ 0.5, the paper's threshold (§3.7).
        return 2.0 * torch.sigmoid(self.hash_head(self.base(x)).float()) - 1.0

    # --- training -----------------------------------------------------------------------
    def cnn_parameters(self) -> list[nn.Parameter]:
        return [
            *self.base.parameters(),
            *self.hash_head.parameters(),
            *self.adv_head.parameters(),
            *self.cls_head.parameters(),
        ]

    def configure_optimizers(self, train_cfg: TrainConfig) -> list[torch.optim.Optimizer]:
        c = self.config
        epochs = int(train_cfg.epochs)
        stage1 = int(math.floor(c.stage1_fraction * epochs))
        if c.stage1_fraction > 0 and epochs >= 2:
            stage1 = min(max(stage1, 1), epochs - 1)
        self.stage1_epochs.fill_(stage1)
        return [
            torch.optim.Adam(
                self.cnn_parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
            ),
            torch.optim.Adam(self.generator.parameters(), lr=c.gan_lr, betas=(c.gan_beta1, 0.999)),
        ]

    def in_stage1(self, ctx: TrainContext) -> bool:
        return ctx.epoch < int(self.stage1_epochs)

    def make_synthetic(
        self, minor: torch.Tensor, generator: torch.Generator | None
    ) -> dict[str, torch.Tensor]:
        """The batch's synthetic images: x⁺_i = G(C_i, z) for every real image i (C_i = 0 if
        unlabelled) and x⁻ = G(C_y', z') for every anchor with a negative class y'."""
        c = self.config
        dev = minor.device
        anchors, neg_cls = sample_negative_classes(minor, self.class_seen, generator)
        anchors, neg_cls = anchors.to(dev), neg_cls.to(dev)
        n, m = minor.shape[0], anchors.shape[0]
        cond = torch.cat(
            [one_hot_or_zero(minor, c.n_classes), one_hot_or_zero(neg_cls, c.n_classes)]
        )
        z = torch.randn(n + m, c.noise_dim, generator=generator).to(dev)
        fake = self.generator(cond, z)
        return {
            "fake": fake,  # (n + m): x⁺ for all n real images, then the m negatives
            "fake_cls": torch.cat([minor, neg_cls]),  # −1 where unconditioned
            "anchors": anchors,
        }

    def _losses(
        self,
        real: torch.Tensor,
        minor: torch.Tensor,
        syn: dict[str, torch.Tensor],
        fake: torch.Tensor,
        fool: bool,
    ) -> dict[str, torch.Tensor]:
        """l_a, l_c and the triplet loss for one pass of real ⊕ synthetic through the CNN.

        fool=False: the CNN's objective (real → real, synthetic → synthetic);
        fool=True: the generator's (synthetic → real)."""
        n = real.shape[0]
        out = self.streams(torch.cat([real, fake]))  # one pass: BatchNorm sees both sources
        adv, cls, h = out["adv"], out["cls"], out["h"]
        if fool:  # the generator's view: synthetic should pass as real and keep its class
            l_a = gb.g_loss(adv[n:])
            all_cls, logits = syn["fake_cls"], cls[n:]
        else:
            l_a = gb.d_loss(adv[:n], adv[n:])
            all_cls, logits = torch.cat([minor, syn["fake_cls"]]), cls
        l_c = losses.classification_loss(logits, all_cls)  # over the known classes only
        a = syn["anchors"]
        m = a.shape[0]
        h_real, h_syn = h[:n], h[n:]
        l_t = triplet_ranking_loss(h_real[a], h_syn[a], h_syn[n : n + m], self.config.margin)
        return {"adv": l_a, "cls": l_c, "triplet": l_t, "feat": out["feat"]}

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        c = self.config
        if len(ctx.optimizers) != 2:
            raise RuntimeError("DSH-GANs needs the two optimizers of configure_optimizers()")
        opt_cnn, opt_g = ctx.optimizers
        self.train()
        real = batch.images
        minor = batch.labels.minor
        if minor.numel() and int(minor.max()) >= c.n_classes:
            raise ValueError(f"class index {int(minor.max())} needs n_classes > {c.n_classes}")
        known = minor[minor >= 0]
        self.class_seen[known] = True
        stage1 = self.in_stage1(ctx)

        # --- shared CNN (discriminator) step: fakes detached -------------------------------
        with ctx.autocast():
            syn = self.make_synthetic(minor, ctx.generator)
            fake = syn["fake"]
            d = self._losses(real, minor, syn, fake.detach().to(real.dtype), fool=False)
            if stage1:
                # Semi-supervised GAN: l_a + l_c; the hash stream warms up on detached features.
                l_cnn = d["adv"] + d["cls"]
                if c.warmup_hash:
                    l_cnn = l_cnn + self._warmup_triplet(d["feat"].detach(), real.shape[0], syn)
            else:
                l_cnn = d["triplet"] + d["adv"] + d["cls"]  # Eq. 8
        ctx.backward_step(l_cnn, opt_cnn)

        # --- generator step: fool the (updated) CNN, keep classes and the ranking ----------
        with ctx.autocast():
            g = self._losses(real, minor, syn, fake, fool=True)
            l_g = g["adv"] + g["cls"]  # AC-GAN form of l_c − l_a
            if not stage1:
                l_g = l_g + g["triplet"]  # Eq. 9
        ctx.backward_step(l_g, opt_g)
        return {
            "triplet": float(d["triplet"].detach()),
            "adv": float(d["adv"].detach()),
            "cls": float(d["cls"].detach()),
            "g": float(l_g.detach()),
            "loss": float(l_cnn.detach()),
            "stage": 1.0 if stage1 else 2.0,
        }

    def _warmup_triplet(
        self, feats: torch.Tensor, n: int, syn: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Stage-1 triplet loss on detached shared features: trains only the hash layer."""
        h = torch.sigmoid(self.hash_head(feats).float())
        a = syn["anchors"]
        m = a.shape[0]
        return triplet_ranking_loss(h[:n][a], h[n:][a], h[n:][n : n + m], self.config.margin)

    def extra_metadata(self) -> dict[str, Any]:
        return {
            "bit_rule": "h = sigmoid(Linear(BaseNet(x))); bit = sign(2h - 1) (h > 0.5)",
            "stage1_epochs": int(self.stage1_epochs),
            "classes": "coarse minor index; -1 unlabelled",
        }
