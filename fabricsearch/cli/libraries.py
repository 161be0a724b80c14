"""Opening the library a command names: one place, so every command says the same things
(read-only, damaged) the same way."""

from __future__ import annotations

import sys
from typing import Any


def open_library(location: str) -> Any:
    """`Library.open(location)`; a library opened read-only says so on stderr (one line)."""
    from fabricsearch.catalogue import Library

    lib = Library.open(location)
    if lib.read_only:
        print(
            f"fabricsearch: {lib.location} is read-only: opened for search only",
            file=sys.stderr,
        )
    return lib
