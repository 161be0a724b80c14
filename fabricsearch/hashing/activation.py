"""Which model is active: the rule a new model must pass to replace the active one, and an
activation that never leaves the active model without codes for some images.

The rule and its reasons are in docs/evaluation.md ("Activation").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from fabricsearch.jobs import CancelToken, ProgressFn, check

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.hashing.base import HashMethod
    from fabricsearch.hashing.evaluate import Assessment

log = logging.getLogger(__name__)

#: Rounds of "encode what is missing" before the final, locked round (see `activate_model`).
_ROUNDS = 3


@dataclass(frozen=True)
class ActivationDecision:
    """Whether a newly published model was made active, and why (one line for the user)."""

    activate: bool
    reason: str
    new_mAP: float | None = None
    active_version: str | None = None
    active_mAP: float | None = None
    queries: int = 0
    forced: bool = False

    def message(self) -> str:
        return self.reason if self.activate else f"not activated: {self.reason}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "activate": self.activate,
            "reason": self.reason,
            "new_mAP": self.new_mAP,
            "active_version": self.active_version,
            "active_mAP": self.active_mAP,
            "queries": self.queries,
            "forced": self.forced,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ActivationDecision:
        return cls(
            activate=bool(data.get("activate")),
            reason=str(data.get("reason", "")),
            new_mAP=data.get("new_mAP"),
            active_version=data.get("active_version"),
            active_mAP=data.get("active_mAP"),
            queries=int(data.get("queries") or 0),
            forced=bool(data.get("forced")),
        )


def decide_activation(
    new: Assessment,
    active: ModelInfo | None,
    active_assessment: Assessment | None,
    force: bool | None = None,
    label_free: bool = False,
) -> ActivationDecision:
    """The activation rule. `force` True/False overrides it (``--activate``; keep inactive).
    `label_free`: the new model was made without labels (LSH, ITQ, adaptation), which may be
    activated on a library with too few labels to judge it, if its codes are healthy."""
    from fabricsearch.hashing.evaluate import MAP_TOLERANCE

    common = {
        "new_mAP": new.mAP,
        "active_version": None if active is None else active.version,
        "active_mAP": None if active_assessment is None else active_assessment.mAP,
        "queries": new.queries,
    }
    if force is True:
        return ActivationDecision(True, "activated on request", forced=True, **common)
    if force is False:
        return ActivationDecision(False, "kept inactive on request", **common)
    problems = new.problems()
    if active is None:
        why = "; ".join(problems)
        reason = "no model was active" + (f" (but {why})" if why else "")
        return ActivationDecision(True, reason, **common)
    degenerate = [p for p in problems if p.startswith("its codes")]
    if degenerate:
        return ActivationDecision(False, degenerate[0], **common)
    if problems:
        if label_free:
            reason = (
                "made without labels and the library has too few labelled test images to "
                "compare it with the active model; its codes are healthy"
            )
            return ActivationDecision(True, reason, **common)
        return ActivationDecision(False, problems[0], **common)
    old = None if active_assessment is None else active_assessment.mAP
    assert new.mAP is not None  # a meaningful assessment has a mAP
    if old is None:
        reason = f"test mAP {new.mAP:.3f}; the active model {active.version} could not be evaluated"
        return ActivationDecision(True, reason, **common)
    if new.mAP >= old - MAP_TOLERANCE:
        reason = (
            f"test mAP {new.mAP:.3f} vs {old:.3f} of {active.version} "
            f"on the same {new.queries} test queries"
        )
        return ActivationDecision(True, reason, **common)
    reason = (
        f"test mAP {new.mAP:.3f} is below the active model's {old:.3f} ({active.version}) "
        f"on the same {new.queries} test queries"
    )
    return ActivationDecision(False, reason, **common)


def read_decision(info: ModelInfo) -> ActivationDecision | None:
    """The decision recorded with a published model (None for models published before the
    rule existed, or whose metadata cannot be read)."""
    from fabricsearch.hashing import checkpoint as ckpt

    try:
        meta = ckpt.read_metadata(info.path)
    except (OSError, ValueError, ckpt.CheckpointError):
        return None
    data = meta.extra.get("activation")
    return ActivationDecision.from_dict(data) if isinstance(data, dict) else None


def encode_ids(
    lib: Library,
    method: HashMethod,
    ids: Sequence[int],
    batch_size: int = 64,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode the images `ids` exactly as `encode.encode_library` does → (ids, packed).
    Images that can no longer be decoded are left out (logged)."""
    from fabricsearch.hashing.encode import encode_records

    records = lib.images(list(ids))
    return encode_records(lib, method, records, batch_size, progress, cancel, "encode new images")


def complete_codes(
    lib: Library,
    version: str,
    method: HashMethod,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    skip: set[int] | None = None,
) -> set[int]:
    """Give every image without a code under `version` one; returns the ids that could not be
    encoded (undecodable files). Images added meanwhile are picked up by the next call."""
    failed = set(skip or ())
    todo = [i for i in lib.ids_without_codes(version) if i not in failed]
    if not todo:
        return failed
    ids, packed = encode_ids(lib, method, todo, progress=progress, cancel=cancel)
    with lib.atomic():
        # Images deleted while we encoded must not be given codes (foreign key).
        alive = set(lib.image_ids()) if len(ids) else set()
        keep = np.array([int(i) in alive for i in ids.tolist()], dtype=bool)
        if keep.any():
            lib.add_codes(version, ids[keep].tolist(), packed[keep])
    return failed | (set(todo) - set(ids.tolist()))


def activate_model(
    lib: Library,
    version: str,
    method: HashMethod | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> int:
    """Make `version` active with a code for every image, whatever was imported meanwhile.

    Missing codes are encoded outside any transaction (imports can go on), a few rounds; the
    last round runs inside the transaction that activates the model, which holds the library's
    write lock, so no image can arrive between the final check and the activation: search
    never sees an active model with missing codes. Returns how many images could not be
    encoded (undecodable files; they are logged)."""
    if method is None:
        from fabricsearch.hashing.encode import load_library_model

        method, _info, _meta = load_library_model(lib, version)
    failed: set[int] = set()
    for _ in range(_ROUNDS):
        before = len(lib.ids_without_codes(version))
        if before <= len(failed):
            break
        failed = complete_codes(lib, version, method, progress, cancel, failed)
    check(cancel)
    with lib.atomic():
        failed = complete_codes(lib, version, method, None, None, failed)
        lib.set_active_model(version)
    if failed:
        log.warning("%d images could not be encoded with %s", len(failed), version)
    return len(failed)
