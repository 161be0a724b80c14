"""The library's model versions: list them with their figures, activate one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.hashing.activation import ActivationDecision
    from fabricsearch.hashing.base import HashMethod
    from fabricsearch.hashing.evaluate import Assessment
    from fabricsearch.jobs import CancelToken, ProgressFn

__all__ = ["activate", "assess", "is_automatic", "model_rows", "read_decision"]


def activate(
    lib: Library,
    version: str,
    method: HashMethod | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> int:
    """Make ``version`` the search model, encoding what lacks its codes first
    (`hashing.activation.activate_model`); the number of images encoded."""
    from fabricsearch.hashing.activation import activate_model

    return activate_model(lib, version, method, progress=progress, cancel=cancel)


def is_automatic(model: ModelInfo) -> bool:
    """Whether the library may replace ``model`` on its own (the shipped model, an automatic
    head): such a model has seen no label."""
    from fabricsearch.autohead import is_automatic as impl

    return impl(model)


def read_decision(info: ModelInfo) -> ActivationDecision | None:
    """The activation decision recorded with a model (None: none recorded)."""
    from fabricsearch.hashing.activation import read_decision as impl

    return impl(info)


def assess(
    lib: Library, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> dict[str, Assessment | None]:
    """Every model evaluated now on the current test split (None: no stored codes); seconds
    per model on a large library, so the window runs it in a worker (`assess_models`: each
    report carries the models evaluated so far, a cancel stops between two models)."""
    from fabricsearch.hashing.evaluate import assess_models

    return assess_models(lib, progress=progress, cancel=cancel)


def model_rows(lib: Library) -> list[dict[str, Any]]:
    """Every model with its stored metrics, its evaluation now on the current test split
    (``test``: None without stored codes) and the activation decision recorded with it."""
    active = lib.active_model()
    assessed = assess(lib)
    rows = []
    for m in lib.models():
        decision = read_decision(m)
        test = assessed.get(m.version)
        rows.append(
            {
                "version": m.version,
                "method": m.method,
                "bits": m.bits,
                "kind": m.kind,
                "active": active is not None and m.version == active.version,
                "created": m.created,
                "metrics": m.metrics,
                "test": None if test is None else test.to_dict(),
                "activation": None if decision is None else decision.to_dict(),
                "path": str(m.path),
                "note": m.note,
            }
        )
    return rows
