"""Logging to a rotating file in the user's data folder (no Qt: the CLI uses it too), and the
per-user folders themselves.

Folders follow each platform's convention through `platformdirs` (the field's standard; the
core does not need Qt's QStandardPaths):

* data (log, demo library, team libraries' client folders): ``$FABRICSEARCH_DATA_DIR`` if set
  (tests point it at a temporary folder), else ``%APPDATA%\\fabricsearch`` (Windows),
  ``~/Library/Application Support/fabricsearch`` (macOS), ``$XDG_DATA_HOME/fabricsearch`` or
  ``~/.local/share/fabricsearch`` (Linux and other Unix);
* caches (converted network weights, caches of read-only libraries): ``$FABRICSEARCH_CACHE_DIR``
  if set, else the data folder when ``$FABRICSEARCH_DATA_DIR`` is set (everything stays in the
  one folder given), else ``%LOCALAPPDATA%\\fabricsearch\\Cache``, ``~/Library/Caches/fabricsearch``,
  ``$XDG_CACHE_HOME/fabricsearch`` or ``~/.cache/fabricsearch``.

Older versions found the data folder by hand and kept the caches inside it. A data folder
they made where platformdirs now points elsewhere (macOS with ``$XDG_DATA_HOME`` set) is used
as it is; an old cache folder inside the data folder is moved to the cache folder on first use
(one rename), or used where it is when it cannot be moved (another volume, in use).
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from platformdirs.api import PlatformDirsABC

APP_NAME = "fabricsearch"
DATA_DIR_ENV = "FABRICSEARCH_DATA_DIR"
CACHE_DIR_ENV = "FABRICSEARCH_CACHE_DIR"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
#: Cache folders by name, and the folder an older version kept each in (inside the data folder).
CACHE_FOLDERS = {"libraries": "cache", "weights": "weights"}

_handler: logging.Handler | None = None


def _platform_dirs() -> PlatformDirsABC:
    """platformdirs' folders for this OS (picked here, not at import, so a test can switch)."""
    if sys.platform == "win32":
        from platformdirs.windows import Windows as Dirs
    elif sys.platform == "darwin":
        from platformdirs.macos import MacOS as Dirs
    else:
        from platformdirs.unix import Unix as Dirs
    # Roaming: %APPDATA%, where every earlier version kept its data on Windows.
    return Dirs(APP_NAME, appauthor=False, roaming=True)


def _legacy_data_dir() -> Path:
    """Where versions before platformdirs put the data folder."""
    if sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        return Path(base) / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / APP_NAME


def data_dir() -> Path:
    """The per-user data folder (created on first use)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        folder = Path(override)
    else:
        folder = Path(_platform_dirs().user_data_dir)
        legacy = _legacy_data_dir()
        if legacy != folder and legacy.is_dir() and not folder.exists():
            folder = legacy  # an older version's data folder: keep using it
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_dir() -> Path:
    """The per-user cache folder (created on first use): what is in it can be rebuilt."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        folder = Path(override)
    elif os.environ.get(DATA_DIR_ENV):
        return data_dir()
    else:
        folder = Path(_platform_dirs().user_cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def cache_folder(name: str) -> Path:
    """The cache folder ``name`` (`CACHE_FOLDERS`: ``"libraries"``, ``"weights"``), not created.

    An older version's copy inside the data folder is moved here on first use; when it cannot
    be moved (another volume, files in use on Windows) it is used where it is."""
    folder = cache_dir() / name
    if os.environ.get(CACHE_DIR_ENV):  # caches were put somewhere on purpose: no adoption
        return folder
    old = data_dir() / CACHE_FOLDERS[name]
    if old == folder or folder.exists() or not old.is_dir():
        return folder
    try:
        os.rename(old, folder)
    except OSError:
        if folder.exists():  # another process moved it first
            return folder
        return old
    return folder


def log_file() -> Path:
    """Path of the application log file."""
    return data_dir() / "fabricsearch.log"


def setup_logging(verbose: bool = False) -> Path:
    """Send the `fabricsearch` loggers to the log file (1 MB × 3, rotating); returns its path.

    Calling it again (a second window, a test) replaces the handler rather than adding one,
    and follows a changed data folder."""
    global _handler
    path = log_file()
    logger = logging.getLogger(APP_NAME)
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler.close()
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=1_000_000, backupCount=3, encoding="utf-8"
    )
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    _handler = handler
    return path


def current_log_file() -> Path | None:
    """The file logging currently goes to, or None when `setup_logging` was not called."""
    if isinstance(_handler, logging.FileHandler):
        return Path(_handler.baseFilename)
    return None


def install_crash_logging() -> None:
    """Write uncaught exceptions (main thread and worker threads) to the log file before the
    default handler runs, so a crash leaves a readable trace; the library itself is protected by
    its transactions."""
    import threading

    log = logging.getLogger(APP_NAME)
    previous = sys.excepthook
    previous_thread = threading.excepthook

    def hook(exc_type: type[BaseException], exc: BaseException, tb: object) -> None:
        if not issubclass(exc_type, KeyboardInterrupt):
            log.critical("uncaught exception", exc_info=(exc_type, exc, tb))  # type: ignore[arg-type]
        previous(exc_type, exc, tb)  # type: ignore[arg-type]

    def thread_hook(args: threading.ExceptHookArgs) -> None:
        log.critical(
            "uncaught exception in thread %s",
            args.thread.name if args.thread else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),  # type: ignore[arg-type]
        )
        previous_thread(args)

    sys.excepthook = hook
    threading.excepthook = thread_hook
