"""The library's taxonomy, stored as JSON under the ``taxonomy`` meta key, and its cache.

`TaxonomyStore` is one of the stores a `Library` is made of (docs/architecture.md,
"Storage"). The parsed taxonomy is cached; a rolled-back transaction forgets it (it may have
been changed inside), and so does `Library.stored_taxonomy` (another process may have edited
it). Readers get a copy, never the cached object.
"""

from __future__ import annotations

import json

from fabricsearch.catalogue.db import Db
from fabricsearch.taxonomy import Taxonomy


class TaxonomyStore:
    """One catalogue's taxonomy."""

    def __init__(self, db: Db) -> None:
        self.db = db
        #: The parsed stored taxonomy; None: read it again on the next `get`.
        self.cached: Taxonomy | None = None
        db.forget_on_rollback(self)

    def get(self) -> Taxonomy:
        """A copy of the stored taxonomy (the default one when none is stored)."""
        with self.db.lock:
            if self.cached is None:
                raw = self.db.meta("taxonomy")
                self.cached = Taxonomy.from_dict(json.loads(raw)) if raw else Taxonomy.default()
            return Taxonomy.from_dict(self.cached.to_dict())

    def forget(self) -> None:
        self.cached = None

    def put(self, taxonomy: Taxonomy) -> None:
        """Store ``taxonomy`` (call inside the transaction that checked it)."""
        self.db.put_meta("taxonomy", json.dumps(taxonomy.to_dict()))
        self.cached = taxonomy
