"""Persistent user settings (QSettings): last and recent libraries, window state, thumbnail size."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

ORGANISATION = "fabricsearch"
APPLICATION = "fabricsearch"
MAX_RECENT = 8
THUMB_SIZES = (96, 128, 160, 224)
DEFAULT_THUMB_SIZE = 128


class Settings:
    """Typed access to the application's QSettings (INI format, so tests can redirect it
    with ``QSettings.setPath(QSettings.IniFormat, QSettings.UserScope, tmp_path)``)."""

    def __init__(self, organisation: str = ORGANISATION, application: str = APPLICATION) -> None:
        self._qs = QSettings(
            QSettings.Format.IniFormat, QSettings.Scope.UserScope, organisation, application
        )

    @property
    def file_name(self) -> str:
        return self._qs.fileName()

    def sync(self) -> None:
        self._qs.sync()

    # --- libraries ----------------------------------------------------------------------
    @property
    def last_library(self) -> Path | None:
        value = self._qs.value("library/last", "")
        return Path(value) if value else None

    @last_library.setter
    def last_library(self, path: Path | None) -> None:
        self._qs.setValue("library/last", str(path) if path else "")

    def recent_libraries(self) -> list[Path | str]:
        """Library folders (paths) and team libraries (``postgresql://`` URLs, strings: a
        `Path` would fold the ``//``), newest first."""
        value = self._qs.value("library/recent", [])
        if isinstance(value, str):  # QSettings returns a bare string for one-item lists
            value = [value]
        return [v if _is_url(v) else Path(v) for v in value or [] if v]

    def add_recent_library(self, path: Path | str) -> None:
        """Put a library first in the recent list. A team library's URL is saved without its
        password (libpq's ~/.pgpass, a service file or the window's prompt supplies it); only
        a folder becomes the library reopened at start (a server may be out of reach)."""
        if _is_url(path):
            from fabricsearch.services.imports import display_url

            entry: Path | str = display_url(str(path))
        else:
            entry = Path(path).resolve()
        recent = [p for p in self.recent_libraries() if p != entry]
        recent.insert(0, entry)
        self._qs.setValue("library/recent", [str(p) for p in recent[:MAX_RECENT]])
        if isinstance(entry, Path):
            self.last_library = entry

    # --- window -------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        value = self._qs.value("window/geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self._qs.value("window/state")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self._qs.setValue("window/geometry", geometry)
        self._qs.setValue("window/state", state)

    def splitter_state(self, name: str) -> QByteArray | None:
        value = self._qs.value(f"window/splitter/{name}")
        return value if isinstance(value, QByteArray) else None

    def save_splitter_state(self, name: str, state: QByteArray) -> None:
        self._qs.setValue(f"window/splitter/{name}", state)

    # --- browser ------------------------------------------------------------------------
    @property
    def thumb_size(self) -> int:
        try:
            size = int(self._qs.value("browser/thumb_size", DEFAULT_THUMB_SIZE))
        except (TypeError, ValueError):
            return DEFAULT_THUMB_SIZE
        return size if size in THUMB_SIZES else DEFAULT_THUMB_SIZE

    @thumb_size.setter
    def thumb_size(self, size: int) -> None:
        self._qs.setValue("browser/thumb_size", int(size))

    # --- Open with… -----------------------------------------------------------------------
    @property
    def open_with_program(self) -> str | None:
        """The program last chosen in *Open with…* (used when the desktop has no viewer)."""
        value = self._qs.value("open/with_program", "")
        return str(value) if value else None

    @open_with_program.setter
    def open_with_program(self, program: str | None) -> None:
        self._qs.setValue("open/with_program", program or "")

    # --- watched folders, per library ---------------------------------------------------------
    def watched_folders(self, library: Path | str) -> list[Path]:
        value = self._qs.value(_watch_key(library), [])
        if isinstance(value, str):  # QSettings returns a one-item list as a plain string
            value = [value]
        return [Path(v) for v in value or [] if v]

    def set_watched_folders(self, library: Path | str, folders: list[Path]) -> None:
        self._qs.setValue(_watch_key(library), [str(f) for f in folders])


def _is_url(value: object) -> bool:
    return isinstance(value, str) and value.startswith(("postgresql://", "postgres://"))


def _watch_key(library: Path | str) -> str:
    import hashlib

    # The library's location as a key without the slashes QSettings treats as groups.
    return "watched/" + hashlib.sha1(str(library).encode("utf-8")).hexdigest()[:16]
