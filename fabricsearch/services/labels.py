"""Labels: the labels CSV in and out, and label suggestions from the search model."""

from __future__ import annotations

from fabricsearch.catalogue.labels_csv import LabelsCsvError, export_labels, import_labels
from fabricsearch.suggest import (
    DEFAULT_MIN_CONFIDENCE,
    SuggestError,
    accept_suggestions,
    suggest_labels,
)

__all__ = [
    "DEFAULT_MIN_CONFIDENCE",
    "LabelsCsvError",
    "SuggestError",
    "accept_suggestions",
    "export_labels",
    "import_labels",
    "suggest_labels",
]
