"""Taxonomy editor core (being written)."""

from __future__ import annotations


class TaxonomyEditMixin:
    pass
