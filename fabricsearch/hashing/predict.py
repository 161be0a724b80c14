"""Predicted labels from the active model's classification heads.

DVSH trains linear heads for the coarse minor category and the fine texture (docs/dvsh.md);
they are not used for codes, but they say what a photo probably is. Search explains a dropped
photo with them (``"query": {"predicted": …}``) and labelling suggests them for unlabelled
images (`fabricsearch labels suggest`). The confidence is the predicted class's probability
(the mean of the head on the base feature and the head on the relaxed code).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from fabricsearch.jobs import CancelToken, ProgressFn

if TYPE_CHECKING:
    from fabricsearch.catalogue import ImageRecord, Library
    from fabricsearch.hashing.base import HashMethod
    from fabricsearch.taxonomy import Taxonomy


@dataclass(frozen=True)
class Prediction:
    image_id: int | None
    path: Path | None
    coarse: str | None  # "major/minor" id
    coarse_confidence: float
    fine: str | None
    fine_confidence: float

    @property
    def confidence(self) -> float:
        """The coarse prediction's confidence (what suggestions are ranked and cut by)."""
        return self.coarse_confidence

    def to_json(self, taxonomy: Taxonomy | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "coarse": self.coarse,
            "coarse_confidence": round(self.coarse_confidence, 4),
            "fine": self.fine,
            "fine_confidence": round(self.fine_confidence, 4),
            "confidence": round(self.confidence, 4),
        }
        if self.path is not None:
            out = {"path": str(self.path), **out}
        return out


def can_predict(method: HashMethod) -> bool:
    c = method.config
    return int(getattr(c, "num_minor", 0) or 0) > 0 or int(getattr(c, "num_fine", 0) or 0) > 0


def _decode(
    probs: dict[str, torch.Tensor], taxonomy: Taxonomy, i: int
) -> tuple[str | None, float, str | None, float]:
    coarse, cc, fine, fc = None, 0.0, None, 0.0
    if "minor" in probs:
        p = probs["minor"][i]
        j = int(p.argmax())
        if j < len(taxonomy.minors):
            coarse, cc = taxonomy.minors[j], float(p[j])
    if "fine" in probs:
        p = probs["fine"][i]
        j = int(p.argmax())
        if j < len(taxonomy.fine):
            fine, fc = taxonomy.fine[j], float(p[j])
    return coarse, cc, fine, fc


def predict_inputs(
    method: HashMethod, x: torch.Tensor, taxonomy: Taxonomy, batch_size: int = 256
) -> list[tuple[str | None, float, str | None, float]]:
    """Network inputs (features or pixels) → (coarse, confidence, fine, confidence) each."""
    out = []
    for start in range(0, x.shape[0], batch_size):
        probs = method.predict(x[start : start + batch_size])
        out.extend(_decode(probs, taxonomy, i) for i in range(min(batch_size, x.shape[0] - start)))
    return out


def predict_labels(
    lib: Library,
    records: Sequence[ImageRecord],
    method: HashMethod | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> list[Prediction]:
    """Predictions of the active model (or `method`) for library images, in `records` order.
    Images that cannot be decoded get no prediction (coarse and fine None, confidence 0)."""
    from fabricsearch.hashing.encode import load_library_model, record_inputs

    if method is None:
        method, _info, _meta = load_library_model(lib)
    taxonomy = lib.taxonomy
    empty = (None, 0.0, None, 0.0)
    found: dict[int, tuple[str | None, float, str | None, float]] = {}
    if can_predict(method) and records:
        # The same input as encoding (cached features, or the decoded photo's centre crop).
        for ids, x in record_inputs(lib, method, records, 256, progress, cancel, "predict"):
            found.update(zip(ids, predict_inputs(method, x, taxonomy), strict=True))
    return [Prediction(rec.id, rec.path, *found.get(rec.id, empty)) for rec in records]


@torch.no_grad()
def record_embeddings(
    lib: Library,
    records: Sequence[ImageRecord],
    method: HashMethod,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[list[int], torch.Tensor]:
    """Unit-length embeddings of library images, for "is this like the labelled fabrics?"
    (`suggest`): on a pretrained backbone its cached feature (what every head sees, and a
    space the labels did not shape), on the compact network the relaxed code. → (ids, (N, D)
    float32); images that cannot be decoded are left out."""
    from fabricsearch.hashing.encode import record_inputs

    ids: list[int] = []
    rows: list[torch.Tensor] = []
    with method.evaluating():
        for batch_ids, x in record_inputs(lib, method, records, 256, progress, cancel, "compare"):
            z = x if method.on_features else method.encode_continuous(x)
            rows.append(torch.nn.functional.normalize(z.float().flatten(1), dim=1))
            ids.extend(batch_ids)
    if not rows:
        return [], torch.zeros(0, 0)
    return ids, torch.cat(rows)
