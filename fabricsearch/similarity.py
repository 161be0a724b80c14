"""Texture, tightness and fine-grained similarity (paper §3.1, §3.3, Eq. 5–6), batch forms.

Four components, each in [0, 1]:

* coarse texture S_ct: 1 same minor, 0.5 same major only, 0 different majors. When either
  minor is unknown but both majors are known, only majors are compared (0.5 or 0).
* fine texture S_ft: 1 same, 0 different.
* colour S_c: `colour.colour_similarity` of the two palettes.
* tightness S_w = max(0, 1 − |w1 − w2| / (α·η)), tightness in percent, α = 2, η = 20.

S (Eq. 6) is the mean of the components known for both images (colour is always known).
The same numbers come from the scalar reference (`fine_grained_pair`), the numpy matrices
(`fine_grained_matrix`, `fine_grained_components`) and the torch form used during training
(`fine_grained_torch`). Decisions are written down in docs/similarity.md.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fabricsearch import colour
from fabricsearch.taxonomy import Taxonomy

if TYPE_CHECKING:
    import torch

#: Tightness similarity: α = 2 % between adjacent levels, η = 20 levels (paper §3.3), so
#: tightness values (percent) 40 percentage points apart or more have similarity 0.
TIGHTNESS_ALPHA = 2.0
TIGHTNESS_ETA = 20.0
TIGHTNESS_SPAN = TIGHTNESS_ALPHA * TIGHTNESS_ETA

COMPONENTS: tuple[str, ...] = ("colour", "coarse", "fine", "tightness")


# --- label arrays ----------------------------------------------------------------------
@dataclass(frozen=True)
class ImageLabels:
    """The labels of one image, as plain values (the scalar reference form)."""

    major: int = -1
    minor: int = -1
    fine: int = -1
    tightness: float = math.nan
    palette: np.ndarray | None = None  # (10, 4); None or all-zero proportions: unknown


@dataclass(frozen=True)
class LabelArrays:
    """Aligned label arrays for N images: -1 / NaN mark unknown values.

    ``major`` int64 index into ``Taxonomy.majors``, ``minor`` int64 global index into
    ``Taxonomy.minors``, ``fine`` int64 index into ``Taxonomy.fine``, ``tightness`` float32
    percent, ``palette`` float32 ``(N, 10, 4)``.
    """

    major: np.ndarray
    minor: np.ndarray
    fine: np.ndarray
    tightness: np.ndarray
    palette: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.major)
        conv = {
            "major": np.asarray(self.major, dtype=np.int64).reshape(n),
            "minor": np.asarray(self.minor, dtype=np.int64).reshape(n),
            "fine": np.asarray(self.fine, dtype=np.int64).reshape(n),
            "tightness": np.asarray(self.tightness, dtype=np.float32).reshape(n),
            "palette": np.asarray(self.palette, dtype=np.float32).reshape(n, colour.N_COLOURS, 4),
        }
        for name, value in conv.items():
            object.__setattr__(self, name, value)

    @classmethod
    def empty(cls) -> LabelArrays:
        return cls(
            major=np.zeros(0, np.int64),
            minor=np.zeros(0, np.int64),
            fine=np.zeros(0, np.int64),
            tightness=np.zeros(0, np.float32),
            palette=np.zeros((0, colour.N_COLOURS, 4), np.float32),
        )

    @classmethod
    def from_records(
        cls,
        taxonomy: Taxonomy,
        coarse_ids: Sequence[str | None],
        fine_ids: Sequence[str | None],
        tightness: Sequence[float | None],
        palettes: Sequence[np.ndarray | None],
    ) -> LabelArrays:
        """Build from per-image lists; ``None`` (or "") is unknown. Coarse ids are
        ``major/minor`` or ``major``; unknown ids raise `taxonomy.TaxonomyError`."""
        n = len(coarse_ids)
        if not (len(fine_ids) == len(tightness) == len(palettes) == n):
            raise ValueError("coarse_ids, fine_ids, tightness and palettes differ in length")
        coarse = [taxonomy.coarse_indices(c) for c in coarse_ids]
        pal = np.zeros((n, colour.N_COLOURS, 4), dtype=np.float32)
        for i, p in enumerate(palettes):
            if p is not None:
                pal[i] = np.asarray(p, dtype=np.float32).reshape(colour.N_COLOURS, 4)
        return cls(
            major=np.array([c[0] for c in coarse], dtype=np.int64).reshape(n),
            minor=np.array([c[1] for c in coarse], dtype=np.int64).reshape(n),
            fine=np.array([taxonomy.fine_index(f) for f in fine_ids], dtype=np.int64).reshape(n),
            tightness=np.array(
                [math.nan if w is None else float(w) for w in tightness], dtype=np.float32
            ).reshape(n),
            palette=pal,
        )

    def __len__(self) -> int:
        return len(self.major)

    def subset(self, idx: Any) -> LabelArrays:
        """Rows ``idx`` (int, slice, index array or boolean mask) as a new LabelArrays."""
        if isinstance(idx, int | np.integer):
            idx = [int(idx)]
        return LabelArrays(
            major=self.major[idx],
            minor=self.minor[idx],
            fine=self.fine[idx],
            tightness=self.tightness[idx],
            palette=self.palette[idx],
        )

    __getitem__ = subset

    def record(self, i: int) -> ImageLabels:
        """Row ``i`` as plain values."""
        return ImageLabels(
            major=int(self.major[i]),
            minor=int(self.minor[i]),
            fine=int(self.fine[i]),
            tightness=float(self.tightness[i]),
            palette=self.palette[i].copy(),
        )

    @staticmethod
    def concat(parts: Sequence[LabelArrays]) -> LabelArrays:
        """All rows of ``parts``, in order."""
        if not parts:
            return LabelArrays.empty()
        return LabelArrays(
            major=np.concatenate([p.major for p in parts]),
            minor=np.concatenate([p.minor for p in parts]),
            fine=np.concatenate([p.fine for p in parts]),
            tightness=np.concatenate([p.tightness for p in parts]),
            palette=np.concatenate([p.palette for p in parts]),
        )

    def to_torch(self, device: Any = None) -> tuple[torch.Tensor, ...]:
        """``(major, minor, fine, tightness, palette)`` tensors for `fine_grained_torch`."""
        import torch

        return tuple(
            torch.as_tensor(x, device=device)
            for x in (self.major, self.minor, self.fine, self.tightness, self.palette)
        )


# --- scalar reference ------------------------------------------------------------------
def coarse_similarity(major1: int, minor1: int, major2: int, minor2: int) -> float:
    """S_ct; NaN when either major is unknown. With a minor unknown, majors only (0.5/0)."""
    if major1 < 0 or major2 < 0:
        return math.nan
    if major1 != major2:
        return 0.0
    if minor1 >= 0 and minor2 >= 0 and minor1 == minor2:
        return 1.0
    return 0.5


def fine_similarity(fine1: int, fine2: int) -> float:
    """S_ft; NaN when either is unknown."""
    if fine1 < 0 or fine2 < 0:
        return math.nan
    return 1.0 if fine1 == fine2 else 0.0


def tightness_similarity(w1: float, w2: float) -> float:
    """S_w = max(0, 1 − |w1 − w2| / (α·η)), tightness in percent; NaN when either is unknown."""
    if math.isnan(w1) or math.isnan(w2):
        return math.nan
    return max(0.0, 1.0 - abs(w1 - w2) / TIGHTNESS_SPAN)


def _palette_known(palette: np.ndarray | None) -> bool:
    return palette is not None and float(np.asarray(palette)[:, 3].sum()) > 0


def fine_grained_pair_components(x: ImageLabels, y: ImageLabels) -> dict[str, float]:
    """The four components for one pair (NaN where unknown for either image)."""
    if _palette_known(x.palette) and _palette_known(y.palette):
        s_c = colour.colour_similarity(x.palette, y.palette)
    else:
        s_c = math.nan
    return {
        "colour": s_c,
        "coarse": coarse_similarity(x.major, x.minor, y.major, y.minor),
        "fine": fine_similarity(x.fine, y.fine),
        "tightness": tightness_similarity(x.tightness, y.tightness),
    }


def fine_grained_pair(x: ImageLabels, y: ImageLabels) -> float:
    """Fine-grained similarity S (Eq. 6) of one pair: the mean of the known components;
    0 when none is known."""
    known = [v for v in fine_grained_pair_components(x, y).values() if not math.isnan(v)]
    return sum(known) / len(known) if known else 0.0


# --- numpy batch forms -----------------------------------------------------------------
def fine_grained_components(a: LabelArrays, b: LabelArrays) -> dict[str, np.ndarray]:
    """Component matrices ``(Na, Nb)`` float32 keyed by `COMPONENTS`, NaN where unknown."""
    nan = np.float32(np.nan)
    maj_a, maj_b = a.major[:, None], b.major[None, :]
    min_a, min_b = a.minor[:, None], b.minor[None, :]
    coarse_known = (maj_a >= 0) & (maj_b >= 0)
    same_minor = (min_a >= 0) & (min_a == min_b)
    coarse = np.where(maj_a == maj_b, np.where(same_minor, 1.0, 0.5), 0.0)
    coarse = np.where(coarse_known, coarse, nan).astype(np.float32)

    fa, fb = a.fine[:, None], b.fine[None, :]
    fine = np.where((fa >= 0) & (fb >= 0), (fa == fb).astype(np.float32), nan).astype(np.float32)

    wa = a.tightness.astype(np.float64)[:, None]
    wb = b.tightness.astype(np.float64)[None, :]
    tight = np.maximum(0.0, 1.0 - np.abs(wa - wb) / TIGHTNESS_SPAN).astype(np.float32)

    col = colour.colour_similarity_matrix(a.palette, b.palette)
    known_a = a.palette[:, :, 3].sum(axis=1) > 0
    known_b = b.palette[:, :, 3].sum(axis=1) > 0
    col = np.where(known_a[:, None] & known_b[None, :], col, nan).astype(np.float32)
    return {"colour": col, "coarse": coarse, "fine": fine, "tightness": tight}


def combine_components(
    components: dict[str, np.ndarray], weights: dict[str, float] | None = None
) -> np.ndarray:
    """Mean of the known (non-NaN) components; 0 where none is known.

    `weights` (component → weight, 1 where not given) makes it a weighted mean: a label the
    model *predicts* with confidence c weighs c, a label the user gives weighs 1 (search.py).
    Without weights this is Eq. 6 exactly."""
    stack = np.stack([components[k].astype(np.float64) for k in COMPONENTS])
    known = ~np.isnan(stack)
    w = np.ones(len(COMPONENTS), np.float64)
    if weights:
        w = np.array([float(weights.get(k, 1.0)) for k in COMPONENTS], np.float64)
    w = w.reshape((len(COMPONENTS),) + (1,) * (stack.ndim - 1))
    den = np.where(known, w, 0.0).sum(axis=0)
    total = np.where(known, w * np.nan_to_num(stack), 0.0).sum(axis=0)
    return np.where(den > 0, total / np.maximum(den, 1e-12), 0.0).astype(np.float32)


def fine_grained_matrix(a: LabelArrays, b: LabelArrays) -> np.ndarray:
    """Fine-grained similarity S (Eq. 6) of every pair → ``(Na, Nb)`` float32."""
    return combine_components(fine_grained_components(a, b))


def colour_mask(palette: np.ndarray, name: str, min_proportion: float = 0.05) -> np.ndarray:
    """Which palettes contain colour ``name`` with at least ``min_proportion``.

    ``palette`` (N, 10, 4) → bool (N,); a single (10, 4) palette → bool scalar array."""
    palette = np.asarray(palette)
    row = colour.colour_index(name)
    return palette[..., row, 3] >= min_proportion


# --- torch batch forms -----------------------------------------------------------------
def colour_similarity_torch(
    palette: torch.Tensor,
    other: torch.Tensor | None = None,
    sigma: float = colour.COLOUR_SIGMA,
    dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """S_C between palettes ``(N, 10, 4)`` and ``other (M, 10, 4)`` (default: themselves) →
    ``(N, M)`` float32 on the same device. No autograd graph is built."""
    import torch

    dtype = torch.float64 if dtype is None else dtype
    with torch.no_grad():
        p1 = _compact_torch(palette.detach().to(dtype))
        p2 = p1 if other is None else _compact_torch(other.detach().to(p1.device, dtype))
        e1, q1 = _embed_torch(p1), p1[..., 3]
        e2, q2 = _embed_torch(p2), p2[..., 3]
        k12 = _kernel_torch(e1, q1, e2, q2, sigma)
        if other is None:
            k1 = k2 = torch.diagonal(k12)
        else:
            k1 = _kernel_torch(e1[:, None], q1[:, None], e1[:, None], q1[:, None], sigma, True)
            k2 = _kernel_torch(e2[:, None], q2[:, None], e2[:, None], q2[:, None], sigma, True)
        norm = torch.sqrt(k1[:, None] * k2[None, :])
        s = torch.where(norm > 0, k12 / torch.where(norm > 0, norm, 1.0), 0.0)
        return s.clamp_(0.0, 1.0).to(torch.float32)


def _compact_torch(p: torch.Tensor) -> torch.Tensor:
    """Present classes first, truncated to the most any palette has (see
    `colour.compact_palettes`): absent classes add nothing to the kernel."""
    import torch

    q = p[..., 3]
    k = max(1, int((q > 0).sum(dim=1).max().item())) if len(p) else 1
    order = torch.argsort(-q, dim=1, stable=True)[:, :k]
    return torch.gather(p, 1, order[..., None].expand(-1, -1, 4))


def _embed_torch(p: torch.Tensor) -> torch.Tensor:
    import torch

    angle = p[..., 0] * (2.0 * math.pi / 180.0)
    s = p[..., 1] / 255.0
    return torch.stack([s * torch.cos(angle), s * torch.sin(angle), p[..., 2] / 255.0], dim=-1)


def _kernel_torch(
    e1: torch.Tensor,
    q1: torch.Tensor,
    e2: torch.Tensor,
    q2: torch.Tensor,
    sigma: float,
    diagonal: bool = False,
) -> torch.Tensor:
    """K between palettes: e (N, K, 3), q (N, K) → (N, M); with ``diagonal`` the inputs
    are (N, 1, K, ...) pairs and the result is K(x_n, x_n) → (N,)."""
    import torch

    if diagonal:
        e1, q1, e2, q2 = e1[:, 0], q1[:, 0], e2[:, 0], q2[:, 0]
        d2 = ((e1[:, :, None, :] - e2[:, None, :, :]) ** 2).sum(-1)  # (N, K, K)
        pa, pb = q1[:, :, None], q2[:, None, :]
        w = (1.0 - (pa - pb).abs()) * torch.minimum(pa, pb)
        return (torch.exp(d2 * (-0.5 / sigma**2)) * w).sum((1, 2))
    (n, c1), (m, c2) = e1.shape[:2], e2.shape[:2]
    # Squared distances between all N·10 and M·10 centres in the HSV cylinder (float64, so
    # the expanded form loses nothing that matters at the 1e-6 level).
    d2 = torch.cdist(e1.reshape(n * c1, 3), e2.reshape(m * c2, 3)).pow_(2)
    a = torch.exp(d2.mul_(-0.5 / sigma**2)).reshape(n, c1, m, c2)
    pa, pb = q1[:, :, None, None], q2[None, None, :, :]
    w = (1.0 - (pa - pb).abs()) * torch.minimum(pa, pb)  # (N, K, M, K)
    return torch.einsum("aibj,aibj->ab", a, w)


def fine_grained_torch(
    major: torch.Tensor,
    minor: torch.Tensor,
    fine: torch.Tensor,
    tightness: torch.Tensor,
    palette: torch.Tensor,
    other: Sequence[torch.Tensor] | None = None,
) -> torch.Tensor:
    """Fine-grained similarity S (Eq. 6) within a batch → ``(N, N)`` float32, or against
    ``other = (major, minor, fine, tightness, palette)`` of M images → ``(N, M)``.

    Same values as `fine_grained_matrix`; all tensors on one device; no autograd graph."""
    import torch

    with torch.no_grad():
        if other is None:
            o_major, o_minor, o_fine, o_tight, o_palette = major, minor, fine, tightness, palette
            col = colour_similarity_torch(palette)
        else:
            o_major, o_minor, o_fine, o_tight, o_palette = other
            col = colour_similarity_torch(palette, o_palette)
        nan = torch.tensor(float("nan"), dtype=torch.float32, device=col.device)

        maj_a, maj_b = major[:, None], o_major[None, :]
        min_a, min_b = minor[:, None], o_minor[None, :]
        same_minor = (min_a >= 0) & (min_a == min_b)
        coarse = torch.where(maj_a == maj_b, torch.where(same_minor, 1.0, 0.5), 0.0)
        coarse = torch.where((maj_a >= 0) & (maj_b >= 0), coarse.to(torch.float32), nan)

        fa, fb = fine[:, None], o_fine[None, :]
        fine_s = torch.where((fa >= 0) & (fb >= 0), (fa == fb).to(torch.float32), nan)

        wa = tightness.detach().to(torch.float64)[:, None]
        wb = o_tight.detach().to(torch.float64)[None, :]
        tight = (1.0 - (wa - wb).abs() / TIGHTNESS_SPAN).clamp(min=0.0).to(torch.float32)

        known_a = palette.detach()[..., 3].sum(-1) > 0
        known_b = o_palette.detach()[..., 3].sum(-1) > 0
        col = torch.where(known_a[:, None] & known_b[None, :], col, nan)

        stack = torch.stack([col, coarse, fine_s, tight]).to(torch.float64)
        known = ~torch.isnan(stack)
        count = known.sum(0)
        total = torch.where(known, stack, 0.0).sum(0)
        s = torch.where(count > 0, total / count.clamp(min=1), 0.0)
        return s.to(torch.float32)
