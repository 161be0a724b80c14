"""Label suggestions for unlabelled images, from the active model's classification heads.

`suggest_labels` predicts (``hashing.predict.predict_labels``) the coarse and fine labels of
every unlabelled image and keeps those whose coarse confidence reaches ``min_confidence``;
the rest are counted as ``unsuggested``. A prediction of a category merged in the taxonomy
editor is mapped to its target; one of a retired category is not suggested. The fine label
is suggested only when its own confidence reaches the threshold. `accept_suggestions`
applies them in one transaction and returns what undoes it.

`DEFAULT_MIN_CONFIDENCE` is measured by ``benchmarks/bench_suggest.py`` (dtd10, trained on
half of its labels): the lowest threshold at which ≥ 85 % of the suggestions are right.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fabricsearch.errors import ConfigError, UserError
from fabricsearch.jobs import CancelToken, ProgressFn

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library

#: See the module docstring and docs/benchmarks.md (Suggestions).
DEFAULT_MIN_CONFIDENCE = 0.5


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    path: Path
    coarse: str
    confidence: float  # of the coarse label
    fine: str | None = None
    fine_confidence: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "coarse": self.coarse,
            "fine": self.fine,
            "confidence": round(self.confidence, 4),
            "fine_confidence": round(self.fine_confidence, 4),
        }


@dataclass
class SuggestReport:
    suggestions: list[Suggestion] = field(default_factory=list)  # most confident first
    unsuggested: int = 0  # unlabelled images below the threshold (or not predictable)
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "suggestions": [s.to_json() for s in self.suggestions],
            "unsuggested": self.unsuggested,
            "min_confidence": self.min_confidence,
            "model": self.model,
        }


class SuggestError(UserError):
    """No suggestions can be made (no model, a model without classification heads)."""


def suggest_labels(
    lib: Library,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    ids: list[int] | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> SuggestReport:
    """Suggestions for the unlabelled images (or those of ``ids``, labelled or not)."""
    from fabricsearch.hashing.encode import load_library_model
    from fabricsearch.hashing.predict import can_predict, predict_labels

    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigError(f"min_confidence {min_confidence} is outside 0–1")
    if lib.active_model() is None:
        raise SuggestError("this library has no search model: train one on your labels first")
    method, info, _meta = load_library_model(lib)
    if not can_predict(method):
        raise SuggestError(
            f"the active model {info.version} has no classification heads to suggest labels "
            "with: train one on your labels (fabricsearch train LIB)"
        )
    records = lib.images(ids if ids is not None else lib.image_ids(labelled=False))
    preds = predict_labels(lib, records, method=method, progress=progress, cancel=cancel)
    tax = lib.taxonomy
    rep = SuggestReport(min_confidence=min_confidence, model=info.version)
    for p in preds:
        coarse = tax.current_id(p.coarse) if p.coarse else None
        if coarse is None or p.image_id is None or p.coarse_confidence < min_confidence:
            rep.unsuggested += 1
            continue
        fine = tax.current_id(p.fine, fine=True) if p.fine else None
        keep_fine = fine is not None and p.fine_confidence >= min_confidence
        rep.suggestions.append(
            Suggestion(
                p.image_id,
                Path(p.path) if p.path is not None else Path(),
                coarse,
                p.coarse_confidence,
                fine if keep_fine else None,
                p.fine_confidence if keep_fine else 0.0,
            )
        )
    rep.suggestions.sort(key=lambda s: (-s.confidence, str(s.path)))
    return rep


def accept_suggestions(
    lib: Library, suggestions: list[Suggestion], who: str = "suggestion"
) -> dict[int, tuple[str | None, str | None]]:
    """Apply suggestions (coarse, and fine where suggested) in one transaction. Returns each
    image's (coarse, fine) before, so ``lib.set_labels`` per image undoes it."""
    groups: dict[tuple[str, str | None], list[int]] = defaultdict(list)
    for s in suggestions:
        groups[(s.coarse, s.fine)].append(s.image_id)
    before = {r.id: (r.coarse, r.fine) for r in lib.images([s.image_id for s in suggestions])}
    with lib.atomic():
        for (coarse, fine), ids in groups.items():
            if fine is None:
                lib.set_labels(ids, coarse=coarse, who=who)
            else:
                lib.set_labels(ids, coarse=coarse, fine=fine, who=who)
    return before
