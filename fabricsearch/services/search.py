"""Searching a library: the searcher, its filters and errors, crops, palettes, encoding
the images that lack a code under the search model (`ensure_codes` before a query: a query
writes nothing; `encode_missing` for all of them), and the library's saved searches.

`fabricsearch.search` needs numpy and OpenCV: its names are imported on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fabricsearch.catalogue.saved_searches import (
    SavedSearch,
    delete_saved_search,
    save_search,
    saved_searches,
)
from fabricsearch.catalogue.textsearch import TextQueryError

if TYPE_CHECKING:
    import numpy as np

    from fabricsearch.catalogue import Library
    from fabricsearch.imaging import ImageError
    from fabricsearch.jobs import CancelToken, ProgressFn
    from fabricsearch.search import (
        BALANCE_DEFAULT,
        QueryLabels,
        Searcher,
        SearchError,
        SearchFilters,
        SearchHit,
        SearchResult,
        StaleQueryError,
    )

__all__ = [
    "BALANCE_DEFAULT",
    "ImageError",
    "QueryLabels",
    "SavedSearch",
    "SearchError",
    "SearchFilters",
    "SearchHit",
    "SearchResult",
    "Searcher",
    "StaleQueryError",
    "TextQueryError",
    "colour_report",
    "decode_image",
    "delete_saved_search",
    "encode_missing",
    "ensure_codes",
    "is_image_path",
    "load_for_palette",
    "load_rgb",
    "palette_report",
    "parse_crop",
    "parse_text_query",
    "resize_max_side",
    "save_search",
    "saved_searches",
]

# What a front end shows of a search (hits, results, the default balance) comes from here too.
_FROM_SEARCH = (
    "BALANCE_DEFAULT",
    "QueryLabels",
    "SearchError",
    "SearchFilters",
    "SearchHit",
    "SearchResult",
    "Searcher",
    "StaleQueryError",
)


def __getattr__(name: str) -> Any:
    if name in _FROM_SEARCH:
        from fabricsearch import search

        return getattr(search, name)
    if name == "ImageError":
        from fabricsearch.imaging import ImageError

        return ImageError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def parse_text_query(text: str) -> None:
    """Check that a text filter can be understood (no database read); raises
    `TextQueryError` with a message for the user when it cannot."""
    from fabricsearch.catalogue.textsearch import parse_query

    parse_query(text)


def parse_crop(text: str) -> tuple[int, int, int, int]:
    """``x,y,w,h`` → a crop box; a malformed one raises `SearchError`."""
    from fabricsearch.search import parse_crop as impl

    return impl(text)


def encode_missing(
    lib: Library,
    version: str | None = None,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
    chunk: int = 0,
) -> int:
    """Encode the images with no code under ``version`` (the active model); how many
    (`search.encode_missing`)."""
    from fabricsearch import search

    return search.encode_missing(lib, version, progress=progress, cancel=cancel, chunk=chunk)


def ensure_codes(
    searcher: Searcher,
    progress: ProgressFn | None = None,
    cancel: CancelToken | None = None,
) -> int:
    """The step before a query, the one that writes: give the images the searcher cannot
    find yet (no code under the active model) their code when they are few
    (`search.MAX_INLINE_ENCODE`; more are left to `encode_missing`), so that the query finds
    them. The query itself writes nothing. Returns how many images stay unsearchable."""
    return searcher.complete_codes(progress=progress, cancel=cancel)


def palette_report(palette: np.ndarray) -> list[dict[str, Any]]:
    """A palette as rows a front end shows (`colour.palette_report`)."""
    from fabricsearch.colour import palette_report as impl

    return impl(palette)


def is_image_path(path: Any) -> bool:
    """Whether ``path`` names a photo by its suffix (`imaging.is_image_path`)."""
    from fabricsearch.imaging import is_image_path as impl

    return impl(path)


def decode_image(path: Any, max_side: int | None = None) -> tuple[np.ndarray, Any]:
    """A photo decoded (reduced to ``max_side``) and its `imaging` decode info."""
    from fabricsearch import imaging

    return imaging.decode(path, max_side=max_side)


def resize_max_side(rgb: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so that the longest side is ``max_side`` (never enlarges)."""
    from fabricsearch import imaging

    return imaging.resize_max_side(rgb, max_side)


def load_rgb(path: Any) -> np.ndarray:
    """A photo decoded to RGB uint8 at full resolution; `imaging.ImageError` if it cannot be."""
    from fabricsearch import imaging

    return imaging.load_rgb(path)


def load_for_palette(path: Any) -> np.ndarray:
    """A photo decoded as the importer decodes it for its palette (`imaging.decode_fine`), so
    `fabricsearch colour` reports what the library stores; `imaging.ImageError` if it cannot be."""
    from fabricsearch import imaging
    from fabricsearch.colour import PALETTE_SIDE

    return imaging.decode_fine(path, PALETTE_SIDE)[0]


def colour_report(rgb: np.ndarray) -> list[dict[str, Any]]:
    """A photo's HSV colour classes with centres and shares (`colour.quantise_report`)."""
    from fabricsearch.colour import quantise_report

    return quantise_report(rgb)
