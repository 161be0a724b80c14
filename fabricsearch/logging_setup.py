"""Logging to a rotating file in the user's data folder (no Qt: the CLI uses it too).

The data folder follows each platform's convention, found by hand so that the core does not
need Qt's QStandardPaths:

* ``$FABRICSEARCH_DATA_DIR`` if set (tests point it at a temporary folder),
* Windows: ``%APPDATA%/fabricsearch``,
* macOS: ``~/Library/Application Support/fabricsearch``,
* otherwise ``$XDG_DATA_HOME/fabricsearch`` or ``~/.local/share/fabricsearch``.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path

APP_NAME = "fabricsearch"
DATA_DIR_ENV = "FABRICSEARCH_DATA_DIR"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"

_handler: logging.Handler | None = None


def data_dir() -> Path:
    """The per-user data folder (created on first use)."""
    override = os.environ.get(DATA_DIR_ENV)
    if override:
        folder = Path(override)
    elif sys.platform == "win32":
        base = os.environ.get("APPDATA") or str(Path.home() / "AppData" / "Roaming")
        folder = Path(base) / APP_NAME
    elif sys.platform == "darwin":
        folder = Path.home() / "Library" / "Application Support" / APP_NAME
    else:
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        folder = Path(base) / APP_NAME
    folder.mkdir(parents=True, exist_ok=True)
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
