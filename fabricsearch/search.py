"""Query pipeline: image → colour + code → Hamming candidates → re-rank → explained results.

(Contract stub: dataclasses and signatures are stable; the implementation lands shortly.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class SearchError(Exception):
    """A query that cannot be answered (bad image, no model, ...), with a message for the user."""


@dataclass(frozen=True)
class SearchFilters:
    coarse_major: str | None = None  # e.g. "plaid"
    coarse_minor: str | None = None  # full id, e.g. "plaid/tartan"
    fine: str | None = None
    tightness_min: float | None = None
    tightness_max: float | None = None
    contains_colour: str | None = None  # one of colour.COLOUR_NAMES
    labelled_only: bool = False


@dataclass(frozen=True)
class QueryLabels:
    """What the user says about the query (optional); colour is always measured."""

    coarse: str | None = None
    fine: str | None = None
    tightness: float | None = None


@dataclass(frozen=True)
class SearchHit:
    image_id: int
    path: Path
    rank: int
    hamming: int
    similarity: float  # fine-grained S over the components known for both (re-rank score)
    breakdown: dict[str, float | None]  # colour, coarse, fine, tightness (None = unknown)
    coarse: str | None = None
    fine: str | None = None
    tightness: float | None = None


@dataclass(frozen=True)
class SearchResult:
    query: str
    model: str
    bits: int
    palette: np.ndarray  # the query's (10, 4) colour quantisation
    hits: list[SearchHit] = field(default_factory=list)
    elapsed_ms: dict[str, float] = field(default_factory=dict)  # decode, encode, search, rerank
