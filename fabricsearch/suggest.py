"""Label suggestions for unlabelled images, from the active model's classification heads.

`suggest_labels` predicts (``hashing.predict.predict_labels``) the coarse and fine labels of
every unlabelled image and keeps those whose coarse confidence reaches ``min_confidence``;
the rest are counted as ``unsuggested``. A prediction of a category merged in the taxonomy
editor is mapped to its target; one of a retired category is not suggested. The fine label
is suggested only when its own confidence reaches the threshold. `accept_suggestions`
applies them in one transaction and returns what undoes it.

`DEFAULT_MIN_CONFIDENCE` is measured by ``benchmarks/bench_suggest.py`` (dtd10, trained on
half of its labels): the lowest threshold at which ≥ 85 % of the suggestions are right.

A head always names one of the labelled classes, however unlike them a photo is (a plain solid
came out "crosshatched 95 %"). So, with at least `MIN_REFERENCE` labelled images, each image
is also compared with the labelled ones in the model's embedding (`predict.record_embeddings`):
one farther from its nearest labelled image than `FAMILIAR_PERCENTILE` % of the labelled
images are from theirs (leave one out) is *unfamiliar*: reported apart, never suggested nor
accepted. The confidence shown is calibrated: the head's probability, capped by the share of
the `VOTE_NEIGHBOURS` nearest labelled images that carry the label (with one prior vote for
and one against). docs/gui.md ("Suggestions you can trust").
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fabricsearch.errors import ConfigError, UserError
from fabricsearch.jobs import CancelToken, ProgressFn

if TYPE_CHECKING:
    from fabricsearch.catalogue import ImageRecord, Library

#: See the module docstring and docs/benchmarks.md (Suggestions).
DEFAULT_MIN_CONFIDENCE = 0.5
#: Labelled images (with an embedding) needed before images are checked against them: the
#: 95th percentile of fewer distances rests on one or two of them (docs/gui.md).
MIN_REFERENCE = 30
#: Labelled images compared with at most (a fixed sample of them beyond this).
MAX_REFERENCE = 4000
#: ... and on the compact network, whose labelled photos are decoded for every check.
MAX_PIXEL_REFERENCE = 800
#: An image farther from every labelled image than this percentile of the labelled images'
#: own nearest-neighbour distances (leave one out) is unlike any labelled fabric.
FAMILIAR_PERCENTILE = 95.0
#: Nearest labelled images whose labels calibrate the confidence.
VOTE_NEIGHBOURS = 10


@dataclass(frozen=True)
class Suggestion:
    image_id: int
    path: Path
    coarse: str
    confidence: float  # of the coarse label (calibrated where the library allows it)
    fine: str | None = None
    fine_confidence: float = 0.0
    # The head's own probability of the coarse label, before calibration.
    model_confidence: float = 0.0
    # Cosine distance to the nearest labelled image (None: not compared) and whether the image
    # is like the labelled ones (False: "none of these", never accepted).
    distance: float | None = None
    familiar: bool = True

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "coarse": self.coarse,
            "fine": self.fine,
            "confidence": round(self.confidence, 4),
            "fine_confidence": round(self.fine_confidence, 4),
            "model_confidence": round(self.model_confidence, 4),
        }
        if self.distance is not None:
            out["distance"] = round(self.distance, 4)
            out["familiar"] = self.familiar
        return out


@dataclass
class SuggestReport:
    suggestions: list[Suggestion] = field(default_factory=list)  # most confident first
    unsuggested: int = 0  # unlabelled images below the threshold (or not predictable)
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    model: str | None = None
    # Images unlike any labelled fabric: the head's guess, kept apart (never accepted).
    unfamiliar: list[Suggestion] = field(default_factory=list)
    # The distance beyond which an image is unfamiliar; None when too few labelled images.
    familiar_distance: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "suggestions": [s.to_json() for s in self.suggestions],
            "unsuggested": self.unsuggested,
            "unfamiliar": [s.to_json() for s in self.unfamiliar],
            "familiar_distance": (
                None if self.familiar_distance is None else round(self.familiar_distance, 4)
            ),
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
    known = _Neighbourhood.of(lib, method, records, progress, cancel)
    rep.familiar_distance = known.threshold if known is not None else None
    for p in preds:
        coarse = tax.current_id(p.coarse) if p.coarse else None
        if coarse is None or p.image_id is None:
            rep.unsuggested += 1
            continue
        fine = tax.current_id(p.fine, fine=True) if p.fine else None
        conf, fine_conf = p.coarse_confidence, p.fine_confidence
        distance, familiar = None, True
        if known is not None and p.image_id in known.row:
            distance, familiar, conf, fine_conf = known.judge(
                p.image_id, coarse, fine, conf, fine_conf
            )
        s = Suggestion(
            p.image_id,
            Path(p.path) if p.path is not None else Path(),
            coarse,
            conf,
            fine if fine is not None and fine_conf >= min_confidence else None,
            fine_conf if fine is not None and fine_conf >= min_confidence else 0.0,
            model_confidence=p.coarse_confidence,
            distance=distance,
            familiar=familiar,
        )
        if not familiar:
            rep.unfamiliar.append(s)
        elif conf < min_confidence:
            rep.unsuggested += 1
        else:
            rep.suggestions.append(s)
    rep.suggestions.sort(key=lambda s: (-s.confidence, str(s.path)))
    rep.unfamiliar.sort(key=lambda s: (-(s.distance or 0.0), str(s.path)))
    return rep


def _current(tax: Any, label: str | None, fine: bool) -> str | None:
    return tax.current_id(label, fine=fine) if label else None


@dataclass
class _Neighbourhood:
    """The labelled images in the model's embedding, and each target's nearest of them."""

    threshold: float  # familiar up to this cosine distance to the nearest labelled image
    row: dict[int, int]  # target image id → row of `nearest` / `neigh`
    nearest: np.ndarray  # (T,) distance to the nearest labelled image (itself excluded)
    neigh: np.ndarray  # (T, k) reference rows, nearest first
    coarse: list[str | None]  # per reference
    fine: list[str | None]

    @classmethod
    def of(
        cls,
        lib: Library,
        method: Any,
        targets: list[ImageRecord],
        progress: ProgressFn | None,
        cancel: CancelToken | None,
    ) -> _Neighbourhood | None:
        """None when there are too few labelled images to judge (nothing is checked then)."""
        from fabricsearch.hashing.predict import record_embeddings

        ref_ids = lib.image_ids(labelled=True)
        if len(ref_ids) < MIN_REFERENCE or not targets:
            return None
        # On pixels every labelled photo is decoded again: fewer of them.
        most = MAX_REFERENCE if method.on_features else MAX_PIXEL_REFERENCE
        if len(ref_ids) > most:  # a fixed sample: the same answer every time
            pick = np.random.default_rng(0).choice(len(ref_ids), most, replace=False)
            ref_ids = [ref_ids[i] for i in sorted(pick)]
        refs = lib.images(ref_ids)
        rids, r = record_embeddings(lib, refs, method, progress, cancel)
        if len(rids) < MIN_REFERENCE:
            return None
        tids, t = record_embeddings(lib, targets, method, progress, cancel)
        ref = r.numpy()
        by_id = {rec.id: rec for rec in refs}
        tax = lib.taxonomy
        k = min(VOTE_NEIGHBOURS, len(rids) - 1)
        # Leave one out: each labelled image's nearest other labelled image.
        loo, _ = _nearest(ref, ref, np.asarray(rids), np.asarray(rids), 1)
        threshold = float(np.percentile(loo[:, 0], FAMILIAR_PERCENTILE))
        dist, neigh = _nearest(t.numpy(), ref, np.asarray(tids), np.asarray(rids), k)
        return cls(
            threshold=threshold,
            row={image_id: i for i, image_id in enumerate(tids)},
            nearest=dist[:, 0],
            neigh=neigh,
            coarse=[_current(tax, by_id[i].coarse, False) for i in rids],
            fine=[_current(tax, by_id[i].fine, True) for i in rids],
        )

    def judge(
        self, image_id: int, coarse: str, fine: str | None, conf: float, fine_conf: float
    ) -> tuple[float, bool, float, float]:
        """(distance, familiar, calibrated coarse confidence, calibrated fine confidence)."""
        i = self.row[image_id]
        neigh = self.neigh[i]
        distance = float(self.nearest[i])
        conf = min(conf, _vote_share([self.coarse[j] for j in neigh], coarse))
        if fine is not None:
            fine_conf = min(fine_conf, _vote_share([self.fine[j] for j in neigh], fine))
        return distance, distance <= self.threshold, conf, fine_conf


def _vote_share(labels: list[str | None], label: str) -> float:
    """Share of the neighbours with a label of this kind that carry `label`, with one prior
    vote for and one against (10 of 10 → 0.92, none known → 0.5)."""
    voters = [x for x in labels if x is not None]
    return (sum(x == label for x in voters) + 1.0) / (len(voters) + 2.0)


def _nearest(
    x: np.ndarray, ref: np.ndarray, x_ids: np.ndarray, ref_ids: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine distances (N, k) and rows (N, k) of the k nearest of unit rows `ref` to each unit
    row of `x`, nearest first; a row never counts as its own neighbour (same image id)."""
    dist = np.empty((len(x), k), np.float32)
    rows = np.empty((len(x), k), np.int64)
    for start in range(0, len(x), 1024):
        sim = x[start : start + 1024] @ ref.T
        sim[x_ids[start : start + 1024, None] == ref_ids[None, :]] = -np.inf
        top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sim, top, axis=1), axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        rows[start : start + 1024] = top
        dist[start : start + 1024] = 1.0 - np.take_along_axis(sim, top, axis=1)
    return dist, rows


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
