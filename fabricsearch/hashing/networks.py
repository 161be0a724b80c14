"""The base network of §4.1 (Figure 7): five convolutional blocks, two cross-layer shortcuts, one FC.

The paper defers the exact sizes to its reference [25], which is not available, so the sizes
here are our design (see docs/dvsh.md):

* block 1: 3×3 conv (stride 1) → BN → ReLU → 2×2 max-pool          (colour, fine texture)
* blocks 2–5: two 3×3 convs with BN/ReLU, then 2×2 max-pool (block 5: none, global pool after)
* shortcut 1 and 2: the outputs of blocks 1 and 2 are globally average- *and* std-pooled
  (first- and second-order statistics = colour and texture energy) and concatenated with the
  globally pooled block-5 output; this carries early colour/texture features to the FC
  layer without passing through three more non-linear stages (the "semantic gap" bridge);
* one FC layer (+ ReLU) to `feature_dim`.

Default widths (24, 48, 96, 160, 256) cost ≈ 0.25 GMAC at 112 px.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

DEFAULT_WIDTHS = (24, 48, 96, 160, 256)


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    ]


def _mean_std_pool(x: torch.Tensor) -> torch.Tensor:
    flat = x.flatten(2).float()
    mean = flat.mean(dim=2)
    std = (flat.var(dim=2, unbiased=False) + 1e-5).sqrt()
    return torch.cat([mean, std], dim=1)


class BaseNet(nn.Module):
    """Compact CNN with two cross-layer shortcuts. Input (N, 3, H, W) normalised, output (N, feature_dim)."""

    def __init__(self, widths: Sequence[int] = DEFAULT_WIDTHS, feature_dim: int = 512) -> None:
        super().__init__()
        if len(widths) != 5:
            raise ValueError("BaseNet has exactly five convolutional blocks")
        w1, w2, w3, w4, w5 = (int(w) for w in widths)
        self.widths = (w1, w2, w3, w4, w5)
        self.feature_dim = int(feature_dim)
        self.block1 = nn.Sequential(*_conv_bn_relu(3, w1), nn.MaxPool2d(2))
        self.block2 = nn.Sequential(*_conv_bn_relu(w1, w2), *_conv_bn_relu(w2, w2), nn.MaxPool2d(2))
        self.block3 = nn.Sequential(*_conv_bn_relu(w2, w3), *_conv_bn_relu(w3, w3), nn.MaxPool2d(2))
        self.block4 = nn.Sequential(*_conv_bn_relu(w3, w4), *_conv_bn_relu(w4, w4), nn.MaxPool2d(2))
        self.block5 = nn.Sequential(*_conv_bn_relu(w4, w5), *_conv_bn_relu(w5, w5))
        concat = 2 * w1 + 2 * w2 + w5
        self.fc = nn.Sequential(nn.Linear(concat, self.feature_dim), nn.ReLU(inplace=True))
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.Linear):
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.block1(x)
        f2 = self.block2(f1)
        f5 = self.block5(self.block4(self.block3(f2)))
        pooled = torch.cat(
            [_mean_std_pool(f1), _mean_std_pool(f2), f5.float().mean(dim=(2, 3))], dim=1
        )
        return self.fc(pooled)  # under CUDA autocast the Linear casts to half itself


class FeatureHead(nn.Module):
    """The base network on a frozen pretrained backbone: its cached pooled feature (N, D) →
    dropout → FC + ReLU → r (N, feature_dim). Plays BaseNet's role for the layers above it."""

    def __init__(
        self, in_dim: int, feature_dim: int = 512, dropout: float = 0.2, norm: str = "sqrt-l2"
    ) -> None:
        super().__init__()
        self.in_dim = int(in_dim)
        self.feature_dim = int(feature_dim)
        self.norm = norm
        self.fc = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(self.in_dim, self.feature_dim), nn.ReLU(inplace=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(normalise_features(x.float(), self.norm))


def normalise_features(x: torch.Tensor, norm: str = "sqrt-l2") -> torch.Tensor:
    """Pooled backbone features → the hashing input: "sqrt-l2" (square root, as the features
    are non-negative ReLU6 averages, then unit length: the power normalisation of CNN-feature
    retrieval) or "none". Measured in docs/backbones.md."""
    if norm == "none":
        return x
    if norm != "sqrt-l2":
        raise ValueError(f"unknown feature normalisation {norm!r}")
    x = x.clamp_min(0).sqrt()
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-6) * (x.shape[1] ** 0.5)


class FinetuneBase(nn.Module):
    """A pretrained backbone whose last `blocks` MBConv blocks and head train, then
    `FeatureHead`: pixels (normalised as `hashing.data.to_tensor` does) → r. The frozen part
    keeps its batch-norm statistics (eval mode) whatever the module's mode."""

    def __init__(
        self,
        backbone: str,
        blocks: int,
        feature_dim: int = 512,
        feature_norm: str = "sqrt-l2",
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        from fabricsearch.hashing.backbones import LITE_MEAN, LITE_STD, fresh_copy, get_spec
        from fabricsearch.hashing.data import MEAN, STD

        spec = get_spec(backbone)
        self.net = fresh_copy(backbone)
        n = len(self.net.blocks)
        self.blocks = max(1, min(int(blocks), n))
        self.frozen = [self.net.stem, *list(self.net.blocks)[: n - self.blocks]]
        for m in self.frozen:
            m.requires_grad_(False)
        # to_tensor's (x − 0.5) / 0.25 → the backbone's (x − 127/255) / (128/255)
        scale = torch.tensor(STD) / torch.tensor(LITE_STD)
        shift = (torch.tensor(MEAN) - torch.tensor(LITE_MEAN)) / torch.tensor(LITE_STD)
        self.register_buffer("in_scale", scale.view(1, 3, 1, 1), persistent=False)
        self.register_buffer("in_shift", shift.view(1, 3, 1, 1), persistent=False)
        self.head = FeatureHead(spec.feature_dim, feature_dim, dropout, feature_norm)
        self.feature_dim = self.head.feature_dim

    def train(self, mode: bool = True) -> FinetuneBase:
        super().train(mode)
        for m in self.frozen:
            m.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.in_scale + self.in_shift
        return self.head(self.net(x))


def make_base(
    backbone: str,
    widths: Sequence[int] = DEFAULT_WIDTHS,
    feature_dim: int = 512,
    finetune_blocks: int = 0,
    feature_norm: str = "sqrt-l2",
    dropout: float = 0.2,
) -> nn.Module:
    """`BaseNet` on pixels for the compact backbone; `FeatureHead` on cached features for a
    pretrained one (the method's input is then the backbone feature, see hashing/backbones.py);
    `FinetuneBase` on pixels when the last `finetune_blocks` blocks of a pretrained one train."""
    from fabricsearch.hashing.backbones import get_spec

    spec = get_spec(backbone)
    if not spec.pretrained:
        return BaseNet(widths, feature_dim)
    if finetune_blocks:
        return FinetuneBase(backbone, finetune_blocks, feature_dim, feature_norm, dropout)
    return FeatureHead(spec.feature_dim, feature_dim, dropout, feature_norm)
