"""Watching a folder: new photos are imported and encoded once they have settled."""

from __future__ import annotations

from fabricsearch.watch import SETTLE_SECONDS, FolderWatcher

__all__ = ["SETTLE_SECONDS", "FolderWatcher"]
