"""Classical hashing baselines on hand-crafted features: LSH and ITQ (no deep training).

Both hash the `features.extract_features` vector (HSV colour histogram + riu2 LBP + Gabor
energy, 320 values) of the centre crop the trainer hands them:

* **lsh** (Charikar's sign random projections): b = sign((x − μ) W), W Gaussian, drawn from
  ``Config.seed`` when the method is built (so it encodes before any training); training only
  estimates the mean μ of the training features (centring makes every bit informative).
* **itq** (Gong & Lazebnik, CVPR 2011): PCA to K dimensions, then the orthogonal rotation R
  that minimises the quantisation error ‖sign(VR) − VR‖²_F, found by alternating
  B = sign(VR) and the orthogonal Procrustes solution R = U Wᵀ of Vᵀ B = U Σ Wᵀ (50
  iterations, as in the paper). Where K exceeds the number of training images the trailing
  principal directions carry no variance; they are still an orthonormal basis (from the
  eigendecomposition of the covariance), so the codes stay well defined.

Both are ``trainable = False`` (closed-form): the trainer calls `fit` once with every training
row, without augmentation (`hashing.train.train`), never through the minibatch loop, so no
ragged last batch is dropped. (`training_step` + `finalize` still accumulate and fit, for
callers that feed batches themselves.) Mean, projection and rotation are *buffers*, so the
safetensors checkpoint stores them and a loaded model gives the same codes. Before fitting, ITQ
behaves like LSH on a seeded orthonormal projection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from fabricsearch import features
from fabricsearch.hashing.base import (
    MAX_SEED,
    MAX_WEIGHT,
    Batch,
    HashMethod,
    MethodConfig,
    TrainContext,
)
from fabricsearch.hashing.data import MEAN, STD
from fabricsearch.hashing.registry import register_method


@dataclass(frozen=True)
class ClassicalConfig(MethodConfig):
    seed: int = 0  # random projection (LSH) / initial rotation (ITQ)
    colour_weight: float = 1.0
    lbp_weight: float = 1.0
    gabor_weight: float = 1.0

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {
        "seed": (0, MAX_SEED),
        "colour_weight": (0.0, MAX_WEIGHT),
        "lbp_weight": (0.0, MAX_WEIGHT),
        "gabor_weight": (0.0, MAX_WEIGHT),
    }

    def feature_config(self) -> features.FeatureConfig:
        return features.FeatureConfig(self.colour_weight, self.lbp_weight, self.gabor_weight)


@dataclass(frozen=True)
class ITQConfig(ClassicalConfig):
    iterations: int = 50  # Gong & Lazebnik §3: 50 iterations suffice

    BOUNDS: ClassVar[dict[str, tuple[float, float]]] = {"iterations": (0, 10_000)}

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.iterations < 0:
            raise ValueError("iterations must be >= 0")


def images_to_uint8(x: torch.Tensor) -> np.ndarray:
    """Normalised (N, 3, H, W) tensor (see `hashing.data.to_tensor`) → uint8 (N, H, W, 3) RGB."""
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    rgb = (x.detach().float() * std + mean).clamp(0.0, 1.0).mul(255.0).round()
    return rgb.to(torch.uint8).permute(0, 2, 3, 1).contiguous().cpu().numpy()


def random_orthogonal(n: int, k: int, generator: torch.Generator) -> torch.Tensor:
    """(n, k) matrix with orthonormal columns (k ≤ n), from a seeded Gaussian via QR."""
    g = torch.randn(n, k, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r))[None, :]  # sign fix: unique, seed-stable


def quantisation_error(v: np.ndarray | torch.Tensor) -> float:
    """‖sign(V) − V‖²_F (sign 0 → +1): what ITQ's rotation minimises."""
    t = torch.as_tensor(v, dtype=torch.float64)
    return float((torch.where(t >= 0, 1.0, -1.0) - t).pow(2).sum())


def itq_rotation(v: torch.Tensor, iterations: int, generator: torch.Generator) -> torch.Tensor:
    """ITQ: orthogonal (K, K) R minimising ‖sign(VR) − VR‖²_F for centred, projected V (N, K)."""
    v = v.to(torch.float64)
    k = v.shape[1]
    rot = random_orthogonal(k, k, generator)
    for _ in range(iterations):
        b = torch.where(v @ rot >= 0, 1.0, -1.0).to(torch.float64)
        u, _, wt = torch.linalg.svd(v.T @ b)  # Procrustes: max tr(Rᵀ Vᵀ B)
        rot = u @ wt
    return rot


def _input_dim(config: ClassicalConfig) -> int:
    from fabricsearch.hashing.backbones import get_spec

    spec = get_spec(config.backbone)
    return spec.feature_dim if spec.pretrained else features.feature_dim()


class _FeatureHash(HashMethod):
    """Shared part of LSH and ITQ: feature extraction, accumulation and the linear encoder."""

    Config = ClassicalConfig
    config: ClassicalConfig
    trainable = False
    supports_features = True

    def __init__(self, config: ClassicalConfig) -> None:
        super().__init__(config)
        d, k = _input_dim(config), config.bits
        gen = torch.Generator().manual_seed(config.seed)
        self.register_buffer("mean", torch.zeros(d))
        if torch.empty(0).is_meta:
            # Sizing a model file (`checkpoint._check_fits_file`): the shape is all that is
            # needed, and arithmetic on meta tensors imports torch._dynamo (1.5 s).
            projection = torch.empty(d, k)
        else:
            projection = self._initial_projection(d, k, gen).float()
        self.register_buffer("projection", projection)
        self.register_buffer("fitted", torch.zeros((), dtype=torch.int64))
        self._collected: list[np.ndarray] = []

    def _initial_projection(self, d: int, k: int, gen: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images → (N, D) float32 hand-crafted features on the input's device; on a
        pretrained backbone the input already is the (N, D) feature."""
        if self.on_features:
            from fabricsearch.hashing.networks import normalise_features

            return normalise_features(x.float(), self.config.feature_norm)
        feats = features.extract_features(images_to_uint8(x), self.config.feature_config())
        return torch.from_numpy(feats).to(x.device)

    def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x).to(self.mean.device)
        return (f - self.mean) @ self.projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.encode_continuous(x)

    def training_step(self, batch: Batch, ctx: TrainContext) -> dict[str, float]:
        feats = self.features(batch.images).cpu().numpy()
        self._collected.append(feats)
        return {"images": float(len(feats))}

    def fit(self, inputs: Iterable[torch.Tensor]) -> None:
        """Fit on every row of `inputs` (chunks of normalised images or cached features)."""
        feats = [self.features(x).cpu().numpy() for x in inputs]
        if not feats:
            raise ValueError(f"cannot fit {self.name} on no data")
        self._fit_features(np.concatenate(feats))

    def finalize(self) -> None:
        """Fit on the features accumulated by `training_step` (no-op if none were seen)."""
        if not self._collected:
            return
        collected, self._collected = self._collected, []
        self._fit_features(np.concatenate(collected))

    def _fit_features(self, feats: np.ndarray) -> None:
        x = torch.from_numpy(feats).to(torch.float64)
        bad = int((~torch.isfinite(x).all(dim=1)).sum())
        if bad:
            # A damaged input (a cached feature row of NaN) would fail deep inside the
            # PCA/SVD (a LinAlgError) or give NaN codes: refuse it plainly instead.
            raise ValueError(
                f"cannot fit {self.name}: {bad} of {len(x)} image features are not finite "
                "(NaN or infinity); the feature cache may be damaged"
            )
        mean = x.mean(dim=0)
        projection = self._fit(x - mean)
        device = self.mean.device
        self.mean.copy_(mean.float().to(device))
        self.projection.copy_(projection.float().to(device))
        self.fitted.fill_(1)

    def _fit(self, centred: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def extra_metadata(self) -> dict[str, Any]:
        if self.on_features:
            return {"features": f"{self.config.backbone} global-average-pooled feature"}
        return {"features": "HSV 16x4x4 histogram + riu2 LBP (8,1),(16,2) + Gabor energy 3x6"}


@register_method("lsh")
class LSH(_FeatureHash):
    """Sign random projections of centred hand-crafted features."""

    def _initial_projection(self, d: int, k: int, gen: torch.Generator) -> torch.Tensor:
        return torch.randn(d, k, generator=gen, dtype=torch.float64)

    def _fit(self, centred: torch.Tensor) -> torch.Tensor:
        return self.projection.detach().to(torch.float64).cpu()  # data-independent


@register_method("itq")
class ITQ(_FeatureHash):
    """PCA + iterative quantisation rotation on hand-crafted features."""

    Config = ITQConfig
    config: ITQConfig

    def __init__(self, config: ITQConfig) -> None:
        if config.bits > _input_dim(config):
            raise ValueError(
                f"ITQ needs bits <= feature dimension ({_input_dim(config)}), got {config.bits}"
            )
        super().__init__(config)
        # PCA basis and rotation are kept apart (their product is `projection`) for inspection.
        self.register_buffer("pca", self.projection.clone())
        self.register_buffer("rotation", torch.eye(config.bits))

    def _initial_projection(self, d: int, k: int, gen: torch.Generator) -> torch.Tensor:
        return random_orthogonal(d, k, gen)

    def _fit(self, centred: torch.Tensor) -> torch.Tensor:
        k = self.config.bits
        cov = centred.T @ centred / max(centred.shape[0] - 1, 1)
        evals, evecs = torch.linalg.eigh(cov)  # ascending
        order = torch.argsort(evals, descending=True)[:k]
        pca = evecs[:, order]
        # Eigenvector signs are arbitrary; fix them so a refit gives the same codes.
        pca = pca * torch.where(pca.sum(dim=0) >= 0, 1.0, -1.0).to(pca)[None, :]
        gen = torch.Generator().manual_seed(self.config.seed + 1)  # refits are reproducible
        rot = itq_rotation(centred @ pca, self.config.iterations, gen)
        self.pca.copy_(pca.float().to(self.pca.device))
        self.rotation.copy_(rot.float().to(self.rotation.device))
        return pca @ rot
