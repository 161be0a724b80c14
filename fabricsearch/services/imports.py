"""Creating a library and importing photos into it (+ features + the automatic head).

The implementation is `fabricsearch.workflows`, which stays below this layer because the
folder watcher and the demo library (operations the services call) import photos too."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fabricsearch.workflows import (
    ImportOutcome,
    create_library,
    encode_catalogued,
    import_and_encode,
    import_plan,
    model_advice,
)

if TYPE_CHECKING:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.jobs import CancelToken, ProgressFn

__all__ = [
    "ImportOutcome",
    "create_library",
    "display_url",
    "encode_catalogued",
    "fit_auto_head",
    "import_and_encode",
    "import_plan",
    "model_advice",
    "remeasure_colours",
    "wants_auto_head",
]


def remeasure_colours(
    lib: Library, progress: ProgressFn | None = None, cancel: CancelToken | None = None
) -> Any:
    """Measure every photo's colour palette again, as imports measure it now, and store the
    changed ones → `catalogue.importer.RemeasureReport` (docs/similarity.md, issue 24)."""
    from fabricsearch.catalogue.importer import remeasure_palettes

    return remeasure_palettes(lib, progress, cancel)


def wants_auto_head(lib: Library) -> bool:
    """Whether the label-free head should be (re)fitted for ``lib`` (`autohead`)."""
    from fabricsearch import autohead

    return autohead.wants_auto_head(lib)


def fit_auto_head(
    lib: Library,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    **kwargs: Any,
) -> ModelInfo | None:
    """Fit and publish the label-free head on the library's features (`autohead`)."""
    from fabricsearch import autohead

    return autohead.fit_auto_head(lib, progress=progress, cancel=cancel, **kwargs)


def display_url(url: str) -> str:
    """A library's PostgreSQL URL without its password, for messages and settings."""
    from fabricsearch.catalogue.postgres import display_url as impl

    return impl(url)
