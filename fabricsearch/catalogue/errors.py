"""The catalogue's errors, all `fabricsearch.errors.UserError`s (re-exported by
`fabricsearch.catalogue` and `catalogue.library`, where they were defined before)."""

from __future__ import annotations

from fabricsearch.errors import UserError


class LibraryError(UserError):
    """A library folder that cannot be used, with a message for the user."""


class NoLibraryThereError(LibraryError):
    """A team library's database that holds no library yet: one can be created there (the
    window offers it; the CLI says `fabricsearch init URL --photos-root DIR`)."""


class DamagedCatalogueError(LibraryError):
    """The catalogue file is empty, not SQLite, damaged, or newer than this fabricsearch.
    It is never repaired or overwritten automatically: the user restores it."""


class ReadOnlyLibraryError(LibraryError):
    """A change asked of a library that is open read-only."""


class DiskFullError(LibraryError):
    """SQLite found no room to write ("database or disk is full")."""


class MissingImageError(LibraryError, KeyError):
    """Image ids that are not in the catalogue (removed meanwhile, by another window or a
    colleague); a KeyError for the callers that catch one."""

    def __str__(self) -> str:  # KeyError's own would quote the message
        return str(self.args[0]) if self.args else "no such image"


__all__ = [
    "DamagedCatalogueError",
    "DiskFullError",
    "LibraryError",
    "MissingImageError",
    "NoLibraryThereError",
    "ReadOnlyLibraryError",
]
