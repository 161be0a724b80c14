"""Building blocks shared by the GAN-based comparable methods (TSN, DSH-GANs).

* `gram_matrix` and `RandomStyleNet`: the style (Gram) loss without a downloaded VGG-19;
* `ChannelAttention`: TSN's channel-wise attention (Eq. 2);
* `PatchDiscriminator`: a small fully convolutional real/fake classifier;
* adversarial loss helpers (non-saturating BCE on logits) and DCGAN initialisation.

Every strided convolution here is 3×3 with stride 2 and padding 1, so a side s becomes
ceil(s / 2) for any s ≥ 1; the matching transposed convolutions take an explicit
``output_size`` and therefore invert it exactly for odd sides too (no input-size constraint).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def halve(size: int) -> int:
    """Side after a 3×3 stride-2 padding-1 convolution."""
    return (size + 1) // 2


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) → (N, C, C) Gram matrices averaged over the H·W positions."""
    n, c, h, w = features.shape
    f = features.float().reshape(n, c, h * w)
    return f @ f.transpose(1, 2) / float(h * w)


def style_loss(feats_a: Sequence[torch.Tensor], feats_b: Sequence[torch.Tensor]) -> torch.Tensor:
    """Gatys et al.'s E_l = Σ (G − A)² / (4 N² M²) per layer (N channels, M positions, G and A
    summed over positions), i.e. ¼ · mean of the squared difference of position-averaged Gram
    matrices; equal weights over layers, then averaged over the batch."""
    terms = [
        0.25 * F.mse_loss(gram_matrix(a), gram_matrix(b))
        for a, b in zip(feats_a, feats_b, strict=True)
    ]
    return torch.stack(terms).mean()


class RandomStyleNet(nn.Module):
    """A fixed random-weight CNN whose ReLU activations feed the Gram (style) loss.

    Why not VGG-19: no pretrained weights can be downloaded offline. Gram statistics of
    random multi-scale filters are known to capture texture well enough for synthesis
    (Ustyuzhaninov et al. 2017, "What does it take to generate natural textures?"), while the
    GAN's own discriminator features would move during training and let the generator chase
    a changing target. The weights are drawn from `seed` with a private CPU generator, so
    they are a pure function of the config: they are kept as non-persistent buffers (not
    learned, not in checkpoints) and are identical after every construction.
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256), seed: int = 1234) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(int(seed))
        cin = 3
        self.n_layers = len(widths)
        for i, cout in enumerate(widths):
            # Kaiming-normal scale keeps the activation variance roughly constant with depth,
            # so equal per-layer style weights are sensible (VGG's hand-tuned ones are not).
            std = (2.0 / (cin * 9)) ** 0.5
            self.register_buffer(
                f"w{i}", torch.randn(cout, cin, 3, 3, generator=gen) * std, persistent=False
            )
            cin = cout

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        h = x.float()
        for i in range(self.n_layers):
            if i:
                h = F.avg_pool2d(h, 2, ceil_mode=True)
            h = F.relu(F.conv2d(h, getattr(self, f"w{i}"), padding=1))
            feats.append(h)
        return feats


class ChannelAttention(nn.Module):
    """TSN Eq. 2: A_c = softmax(W_c q + b) with q the global average pool of each channel.

    The output is x · A_c · C: the softmax weights sum to 1, so without the factor C a
    uniform attention would shrink activations by 1/C; with it, uniform attention is the
    identity (our decision; the paper multiplies by A_c only).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, channels)  # a 1×1 convolution on the pooled vector
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)  # start as identity (uniform attention)

    def weights(self, x: torch.Tensor) -> torch.Tensor:
        q = x.float().mean(dim=(2, 3))
        return torch.softmax(self.fc(q).float(), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.weights(x) * x.shape[1]
        return x * a[:, :, None, None].to(x.dtype)


class PatchDiscriminator(nn.Module):
    """Fully convolutional real/fake classifier (DCGAN style: strided convs, LeakyReLU 0.2).

    Returns one logit per image (mean of the patch logits)."""

    def __init__(self, widths: Sequence[int] = (32, 64, 128, 256)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for i, cout in enumerate(widths):
            layers.append(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=i == 0))
            if i:
                layers.append(nn.BatchNorm2d(cout))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            cin = cout
        layers.append(nn.Conv2d(cin, 1, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).float().mean(dim=(1, 2, 3))


def d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator loss −log D(real) − log(1 − D(fake)), means over each set."""
    real = F.binary_cross_entropy_with_logits(
        real_logits.float(), torch.ones_like(real_logits.float())
    )
    fake = F.binary_cross_entropy_with_logits(
        fake_logits.float(), torch.zeros_like(fake_logits.float())
    )
    return real + fake


def g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss −log D(fake) (Goodfellow et al.'s practical form)."""
    return F.binary_cross_entropy_with_logits(
        fake_logits.float(), torch.ones_like(fake_logits.float())
    )


def init_dcgan(module: nn.Module, std: float = 0.02) -> None:
    """Weights and biases of every (transposed) convolution ~ N(0, 0.02) (both papers);
    normalisation layers N(1, 0.02) / 0 as in DCGAN."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.normal_(m.bias, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
