"""TSN: texture-synthesis-guided hashing (comparable method; paper in docs/methods.md, "TSN").

Two stages inside one training run, switched by epoch (`stage1_epochs`, a buffer set by
`configure_optimizers` from ``stage1_fraction × epochs``):

stage 1  texture synthesis GAN: the generator expands the centre K/2 × K/2 patch of each
         training image to K × K (= 2× its input), trained with
         L_G = L_adv + γ1·L_style + γ2·L_L1 (Eq. 1; γ1 = 100, γ2 = 1) against a patch
         discriminator. The style loss uses Gram matrices of a fixed random CNN (no VGG-19
         offline). Meanwhile the hashing head is warmed up on the (detached) generator
         features so that validation and early stopping see meaningful codes (our decision).
stage 2  generator and discriminator frozen (eval mode, no optimizer steps); the hashing head
         reads the generator's multi-scale encoder/decoder activations of the K × K input,
         weighs each scale with channel-wise attention (Eq. 2), combines them progressively
         with strided convolutions (Eq. 3–4) and is trained with the DSDH loss (Eq. 5):
         pairwise likelihood J + classification loss, plus DSDH's quantisation term. Random
         K × K crops of the synthesised 2K × 2K expansions are appended to every batch as
         extra samples with their source's labels (the paper's data augmentation).

Optimizers: [hashing head (train_cfg lr / weight decay), generator, discriminator (Adam
2e-4, β1 = 0.5)].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from fabricsearch.hashing import gan_blocks as gb
from fabricsearch.hashing.base import (
    MAX_CLASSES,
    MAX_DIM,
    MAX_SEED,
    MAX_WEIGHT,
    MAX_WIDTH,
    Batch,
    HashMethod,
    MethodConfig,
    TrainContext,
)
from fabricsearch.hashing.registry import register_method

if TYPE_CHECKING:
    from fabricsearch.config import TrainConfig


@dataclass(frozen=True)
class TSNConfig(MethodConfig):
    gen_base: int = 32  # generator channels at full resolution; doubles per level
    gen_max: int = 256  # cap on generator channels
    gen_levels: int = 3  # strided downsamplings in the encoder (112 px → 14 px)
    res_blocks: int = 2  # residual blocks at the bottleneck
    disc_widths: tuple[int, ...] = (32, 64, 128, 256)
    style_widths: tuple[int, ...] = (32, 64, 128, 256)  # the random style network
    style_seed: int = 1234
    feature_dim: int = 256  # d, output of the progressive combination
    attention: bool = True  # False: the paper's "No CA" ablation
    gamma_style: float = 100.0  # γ1 (Eq. 1, §4.2)
    gamma_l1: float = 1.0  # γ2
    gan_lr: float = 2e-4
    gan_beta1: float = 0.5
    stage1_fraction: float = 0.5  # share of the epochs spent training the synthesis GAN
    warmup_head: bool = True  # train the hashing head on detached features during stage 1
    synth_augment: bool = True  # stage 2: add crops of synthesised expansions to each batch
    n_classes: int = 64  # coarse (minor) class slots of the classifier; ≥ taxonomy minors
    n_fine_classes: int = 32  # fine (weave) class slots
    cls_weight: float = 1.0  # μ of DSDH (ν of TSN Eq. 5)
    w_reg: float = 0.1  # ν of DSDH: ‖W‖² on the linear classifier
    quant_weight: float = 55.0  # η of DSDH: ‖b − u‖²
    ref_set_size: int = 5000  # DSDH sums J over this many items per anchor (CIFAR-10 setting)
    dcc_iters: int = 2  # discrete cyclic coordinate descent sweeps over the bits per batch

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "gen_base": (1, MAX_WIDTH),
        "gen_max": (1, MAX_WIDTH),
        "gen_levels": (1, 8),
        "res_blocks": (0, 64),
        "disc_widths": (1, MAX_WIDTH),
        "style_widths": (1, MAX_WIDTH),
        "style_seed": (0, MAX_SEED),
        "feature_dim": (1, MAX_DIM),
        "gamma_style": (0.0, MAX_WEIGHT),
        "gamma_l1": (0.0, MAX_WEIGHT),
        "gan_lr": (0.0, MAX_WEIGHT),
        "gan_beta1": (0.0, 1.0),
        "stage1_fraction": (0.0, 1.0),
        "n_classes": (1, MAX_CLASSES),
        "n_fine_classes": (1, MAX_CLASSES),
        "cls_weight": (0.0, MAX_WEIGHT),
        "w_reg": (0.0, MAX_WEIGHT),
        "quant_weight": (0.0, MAX_WEIGHT),
        "ref_set_size": (1, 10_000_000),
        "dcc_iters": (0, 1000),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.gen_levels < 1:
            raise ValueError("gen_levels must be at least 1")
        if not 0.0 <= self.stage1_fraction < 1.0:
            raise ValueError("stage1_fraction must be in [0, 1)")
        if self.n_classes < 1 or self.n_fine_classes < 1:
            raise ValueError("n_classes and n_fine_classes must be positive")


def _bn_relu(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]


class _ResBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=1),
            *_bn_relu(c),
            nn.Conv2d(c, c, 3, padding=1),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.body(x))


class _Up(nn.Module):
    """Transposed 3×3 stride-2 convolution to an exact output side (inverts `gb.halve`)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.ConvTranspose2d(cin, cout, 3, stride=2, padding=1)
        self.post = nn.Sequential(*_bn_relu(cout))

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        return self.post(self.conv(x, output_size=list(size)))


class TextureGenerator(nn.Module):
    """Encoder–decoder that expands a K × K patch to 2K × 2K (any K ≥ 1).

    Encoder activations e_0 (K), e_1 (K/2), …, e_L; decoder activations d_L (bottleneck),
    …, d_0 (K) and d_top (2K): e_i and d_i have equal shapes, as TSN's pairing needs.
    """

    def __init__(
        self, base: int = 32, max_ch: int = 256, levels: int = 3, res_blocks: int = 2
    ) -> None:
        super().__init__()
        self.channels = [min(base * 2**i, max_ch) for i in range(levels + 1)]
        ch = self.channels
        self.enc = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(3, ch[0], 3, padding=1), *_bn_relu(ch[0]))]
        )
        for i in range(1, levels + 1):
            self.enc.append(
                nn.Sequential(nn.Conv2d(ch[i - 1], ch[i], 3, stride=2, padding=1), *_bn_relu(ch[i]))
            )
        self.bottleneck = nn.Sequential(*[_ResBlock(ch[-1]) for _ in range(res_blocks)])
        self.dec = nn.ModuleList([_Up(ch[i], ch[i - 1]) for i in range(levels, 0, -1)])
        self.top = _Up(ch[0], ch[0])  # the extra deconvolution to 2K × 2K
        self.out = nn.Conv2d(ch[0], 3, 3, padding=1)
        gb.init_dcgan(self)

    def features(
        self, x: torch.Tensor
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]:
        """(encoder e_0..e_L, decoder d_0..d_L, top decoder activation at 2K)."""
        enc = []
        h = x
        for layer in self.enc:
            h = layer(h)
            enc.append(h)
        h = self.bottleneck(h)
        dec = [h]  # d_L
        for j, up in enumerate(self.dec):
            target = enc[len(enc) - 2 - j]
            h = up(h, (target.shape[2], target.shape[3]))
            dec.append(h)
        dec.reverse()  # d_0 .. d_L
        top = self.top(h, (2 * x.shape[2], 2 * x.shape[3]))
        return enc, dec, top

    def synthesize(self, top: torch.Tensor) -> torch.Tensor:
        # Images are normalised with mean 0.5, std 0.25, i.e. they lie in [-2, 2].
        return 2.0 * torch.tanh(self.out(top).float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, K, K) → (N, 3, 2K, 2K) in the normalised image range [-2, 2]."""
        return self.synthesize(self.features(x)[2])


class ProgressiveHashHead(nn.Module):
    """Channel-wise attention per scale + progressive strided combination (TSN §3.2–3.3).

    CA_top(d_top) → strided conv → F_0; then per level i: F ⊕ Conv1×1(CA_i(e_i ⊕ d_i)) →
    strided conv → next level; after the last level global average pooling gives d features,
    a linear layer gives the relaxed code u (DSDH: linear output, pulled to ±1 by ‖b − u‖²).
    """

    def __init__(
        self, channels: list[int], feature_dim: int, bits: int, attention: bool = True
    ) -> None:
        super().__init__()
        c0 = channels[0]
        self.ca_top = gb.ChannelAttention(c0) if attention else nn.Identity()
        self.stride_top = nn.Sequential(nn.Conv2d(c0, c0, 3, stride=2, padding=1), *_bn_relu(c0))
        self.ca = nn.ModuleList(
            [gb.ChannelAttention(2 * c) if attention else nn.Identity() for c in channels]
        )
        # 1×1 convolution with half the depth of its input (e_i ⊕ d_i has 2c channels).
        self.mix = nn.ModuleList(
            [nn.Sequential(nn.Conv2d(2 * c, c, 1), *_bn_relu(c)) for c in channels]
        )
        outs = [*channels[1:], feature_dim]
        self.strided = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(2 * c, o, 3, stride=2, padding=1), *_bn_relu(o))
                for c, o in zip(channels, outs, strict=True)
            ]
        )
        self.hash = nn.Linear(feature_dim, bits)

    def forward(
        self, enc: list[torch.Tensor], dec: list[torch.Tensor], top: torch.Tensor
    ) -> torch.Tensor:
        f = self.stride_top(self.ca_top(top))
        for i, (e, d) in enumerate(zip(enc, dec, strict=True)):
            m = self.mix[i](self.ca[i](torch.cat([e, d], dim=1)))
            f = self.strided[i](torch.cat([f, m], dim=1))
        pooled = f.float().mean(dim=(2, 3))
        return self.hash(pooled).float()


# --- DSDH loss (Li et al. 2017), as TSN §3.4 uses it ------------------------------------------
def dsdh_pairwise_likelihood(u: torch.Tensor, S: torch.Tensor) -> torch.Tensor:
    """J = mean over ordered pairs i ≠ j of log(1 + e^Θ_ij) − s_ij Θ_ij, Θ_ij = ½ u_iᵀu_j.

    `S` ∈ [0, 1] acts as a soft pair label (DSDH's s_ij ∈ {0, 1})."""
    u = u.float()
    n = u.shape[0]
    if n < 2:
        return u.sum() * 0.0
    theta = 0.5 * (u @ u.T)
    nll = F.softplus(theta) - S.float() * theta
    off = ~torch.eye(n, dtype=torch.bool, device=u.device)
    return nll[off].mean()


@torch.no_grad()
def dsdh_discrete_codes(
    u: torch.Tensor, y: torch.Tensor, W: torch.Tensor, mu: float, eta: float, iters: int = 2
) -> torch.Tensor:
    """DSDH's B-step by discrete cyclic coordinate descent, restricted to the batch.

    Minimises μ‖Y − Wᵀb‖² + η‖b − u‖² over b ∈ {±1}^K for every item (u: (N, K), y: (N, C),
    W: (K, C)). Bit k is set to sign(p_k − b'ᵀW'w_k) with P = WY + (η/μ)U, one bit at a time.
    """
    u = u.float()
    W = W.float()
    b = torch.where(u >= 0, 1.0, -1.0)
    if mu <= 0:
        return b
    P = y.float() @ W.T + (eta / mu) * u  # (N, K)
    G = W @ W.T  # (K, K): couplings between bits through the classifier
    k = u.shape[1]
    for _ in range(iters):
        for i in range(k):
            # b'ᵀW'w_k = Σ_{j≠k} b_j (W Wᵀ)_{jk}
            q = b @ G[:, i] - b[:, i] * G[i, i]
            b[:, i] = torch.where(P[:, i] - q >= 0, 1.0, -1.0)
    return b


def class_targets(
    minor: torch.Tensor, fine: torch.Tensor, n_minor: int, n_fine: int
) -> torch.Tensor:
    """Multi-hot (N, n_minor + n_fine): one-hot coarse class ⊕ one-hot fine class (zeros if
    unknown). Raises when a label does not fit the configured number of slots."""
    for name, lab, n in (("n_classes", minor, n_minor), ("n_fine_classes", fine, n_fine)):
        if lab.numel() and int(lab.max()) >= n:
            raise ValueError(
                f"label index {int(lab.max())} needs {name} > {n}; raise the method option"
            )
    y = torch.zeros(minor.shape[0], n_minor + n_fine, device=minor.device)
    rows = torch.arange(minor.shape[0], device=minor.device)
    known = minor >= 0
    y[rows[known], minor[known]] = 1.0
    known = fine >= 0
    y[rows[known], n_minor + fine[known]] = 1.0
    return y


@register_method("tsn")
class TSN(HashMethod):
    """Texture-synthesis-network-guided deep hashing (DSDH loss on multi-scale GAN features)."""

    Config = TSNConfig
    config: TSNConfig

    def __init__(self, config: TSNConfig) -> None:
        super().__init__(config)
        c = config
        self.generator = TextureGenerator(c.gen_base, c.gen_max, c.gen_levels, c.res_blocks)
        self.discriminator = gb.PatchDiscriminator(c.disc_widths)
        gb.init_dcgan(self.discriminator)
        self.style_net = gb.RandomStyleNet(c.style_widths, c.style_seed)
        self.head = ProgressiveHashHead(self.generator.channels, c.feature_dim, c.bits, c.attention)
        self.classifier = nn.Linear(c.bits, c.n_classes + c.n_fine_classes, bias=False)  # Wᵀ
        # Epochs of stage 1; set from the training config in `configure_optimizers`. A buffer,
        # so a checkpoint or a resumed run knows where the switch is.
        self.register_buffer("stage1_epochs", torch.tensor(1, dtype=torch.int64))

    # --- inference ----------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        enc, dec, top = self.generator.features(x)
        return self.head(enc, dec, top)

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        return self(x)

    # --- training -----------------------------------------------------------------------
    def hash_parameters(self) -> list[nn.Parameter]:
        return [*self.head.parameters(), *self.classifier.parameters()]

    def configure_optimizers(self, train_cfg: TrainConfig) -> list[torch.optim.Optimizer]:
        c = self.config
        epochs = int(train_cfg.epochs)
        stage1 = int(math.floor(c.stage1_fraction * epochs))
        if c.stage1_fraction > 0 and epochs >= 2:
            stage1 = min(max(stage1, 1), epochs - 1)  # both stages get at least one epoch
        self.stage1_epochs.fill_(stage1)
        betas = (c.gan_beta1, 0.999)
        return [
            torch.optim.Adam(
                self.hash_parameters(), lr=train_cfg.lr, weight_decay=train_cfg.weight_decay
            ),
            torch.optim.Adam(self.generator.parameters(), lr=c.gan_lr, betas=betas),
            torch.optim.Adam(self.discriminator.parameters(), lr=c.gan_lr, betas=betas),
        ]

    def in_stage1(self, ctx: TrainContext) -> bool:
        return ctx.epoch < int(self.stage1_epochs)

    def gan_step(self, images: torch.Tensor, ctx: TrainContext) -> dict[str, float]:
        """One discriminator and one generator update on (centre K/2 patch → K image) pairs.

        The input is the *centre* patch of its target, as in Zhou et al. (the paper's [56]):
        with a random position the L1 target would be ambiguous and blur."""
        c = self.config
        _, opt_g, opt_d = ctx.optimizers
        self.generator.train()
        self.discriminator.train()
        k = images.shape[2] // 2
        target = images[:, :, : 2 * k, : 2 * k]
        o = k // 2
        patch = target[:, :, o : o + k, o : o + k]
        with ctx.autocast():
            fake = self.generator(patch)
            logits = self.discriminator(torch.cat([target, fake.detach()]))
            l_d = gb.d_loss(logits[: len(target)], logits[len(target) :])
        ctx.backward_step(l_d, opt_d)
        with ctx.autocast():
            l_adv = gb.g_loss(self.discriminator(fake))
            l_style = gb.style_loss(self.style_net(fake), self.style_net(target))
            l_l1 = F.l1_loss(fake.float(), target.float())
            l_g = l_adv + c.gamma_style * l_style + c.gamma_l1 * l_l1
        ctx.backward_step(l_g, opt_g)
        return {
            "d": float(l_d.detach()),
            "g_adv": float(l_adv.detach()),
            "style": float(l_style.detach()),
            "l1": float(l_l1.detach()),
        }

    def synthesize_crops(
        self, images: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """Random K × K crops of the frozen generator's 2K × 2K expansions (augmentation)."""
        n, _, h, w = images.shape
        big = self.generator(images)
        pos = torch.randint(0, h + 1, (n, 2), generator=generator)
        return torch.stack(
            [
                big[i, :, int(p[0]) : int(p[0]) + h, int(p[1]) : int(p[1]) + w]
                for i, p in enumerate(pos)
            ]
        )

    def hash_losses(
        self, u: torch.Tensor, S: torch.Tensor, y: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """DSDH in per-pair mean form: J + (η/N)·‖b − u‖² for the network and
        μ·‖y − Wᵀb‖² + (ν/N)·‖W‖² for the classifier, with b from DCC (η/μ as in DSDH).

        DSDH sums J over the whole training set (N items) for each anchor; dividing the
        per-sample terms by N = `ref_set_size` keeps its balance with J averaged over pairs."""
        c = self.config
        n_ref = float(c.ref_set_size)
        W = self.classifier.weight.T  # (K, C)
        b = dsdh_discrete_codes(
            u.detach(), y, W.detach(), c.cls_weight, c.quant_weight, c.dcc_iters
        )
        l_j = dsdh_pairwise_likelihood(u, S)
        l_q = (b - u).pow(2).sum(dim=1).mean()
        l_c = (y - self.classifier(b)).pow(2).sum(dim=1).mean()
        l_w = W.pow(2).sum()
        total = l_j + (c.quant_weight / n_ref) * l_q + c.cls_weight * l_c + (c.w_reg / n_ref) * l_w
        terms = {
            "pair": float(l_j.detach()),
            "quant": float(l_q.detach()),
            "cls": float(l_c.detach()),
        }
        return total, terms

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        c = self.config
        if len(ctx.optimizers) != 3:
            raise RuntimeError("TSN needs the three optimizers of configure_optimizers()")
        opt_h = ctx.optimizers[0]
        self.train()
        terms: dict[str, float] = {}
        stage1 = self.in_stage1(ctx)
        if stage1:
            terms.update(self.gan_step(batch.images, ctx))
            if not c.warmup_head:
                return {**terms, "stage": 1.0}
        labels = batch.labels
        images, S = batch.images, batch.S
        minor, fine = labels.minor, labels.fine
        # The generator only provides features here: frozen, eval-mode BatchNorm (as at encode).
        self.generator.eval()
        self.discriminator.eval()
        with torch.no_grad(), ctx.autocast():
            if not stage1 and c.synth_augment:
                synth = self.synthesize_crops(images, ctx.generator).to(images.dtype)
                images = torch.cat([images, synth])
                S = S.repeat(2, 2)  # a crop of an expansion has its source's labels
                minor, fine = minor.repeat(2), fine.repeat(2)
            enc, dec, top = self.generator.features(images)
        y = class_targets(minor, fine, c.n_classes, c.n_fine_classes)
        with ctx.autocast():
            u = self.head(enc, dec, top)
            total, hterms = self.hash_losses(u, S, y)
        ctx.backward_step(total, opt_h)
        terms.update(hterms)
        terms["loss"] = float(total.detach())
        terms["stage"] = 1.0 if stage1 else 2.0
        return terms

    def extra_metadata(self) -> dict[str, Any]:
        return {
            "bit_rule": "u = Linear(progressive CA features of the TSN generator); bit = sign(u)",
            "style_net": "fixed random CNN (seed in config), non-persistent",
            "stage1_epochs": int(self.stage1_epochs),
        }
