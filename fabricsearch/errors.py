"""The one base class of errors meant for the user, and how a boundary reports an exception
(docs/architecture.md, "Errors").

A `UserError` says what went wrong in words the user can act on (a library that is not one,
a damaged catalogue, a bad option value, a model file that cannot be loaded, a training run
that diverged…). The boundaries — the CLI's `cli.common.run_command`, the GUI's workers and
the window's "say why" handlers — show its message as it is. An `OSError` (the file system
refused: no permission, no such file, disk full) is shown too, its traceback logged. Every
other exception is a bug: the boundary says "internal error" and writes the traceback to the
log instead of dressing it up as advice.

Errors that existing callers catch as ``ValueError`` (or ``KeyError``, ``RuntimeError``)
derive from both (``class TaxonomyError(UserError, ValueError)``), so those callers keep
working.
"""

from __future__ import annotations

import logging
from pathlib import Path

log = logging.getLogger(__name__)


class UserError(Exception):
    """An error with a message for the user; anything else reaching a boundary is a bug."""


class ConfigError(UserError, ValueError):
    """A setting or value the user chose that is outside what is allowed (a training option,
    a code length, a tightness of 150): its message names the setting and the allowed range.
    Also a `ValueError`, which is what callers of the configuration classes catch."""


def is_user_error(exc: BaseException) -> bool:
    """True for errors whose own message is what the user should read (`UserError`,
    `OSError`); False for bugs."""
    return isinstance(exc, (UserError, OSError))


def log_location() -> Path | None:
    """The log file the traceback of an internal error goes to (None: logging not set up)."""
    from fabricsearch.logging_setup import current_log_file

    return current_log_file()


def internal_error_message(exc: BaseException) -> str:
    """One line for a bug: what kind of error, and where its traceback is."""
    where = log_location()
    place = f"details in the log: {where}" if where is not None else "details in the log"
    return f"an internal error ({type(exc).__name__}); {place}"


def message_for(exc: BaseException, logger: logging.Logger | None = None, what: str = "") -> str:
    """What a boundary shows for `exc`, after logging it: a user error's own message (logged
    in one line; an `OSError` with its traceback), or — for anything else, a bug — the
    `internal_error_message`, its traceback written to the log. `what`: the task that failed,
    for the log."""
    logger = logger or log
    label = what or "a task"
    if isinstance(exc, UserError):
        logger.info("%s refused: %s", label, exc)
        return str(exc) or type(exc).__name__
    if isinstance(exc, OSError):
        logger.warning("%s failed: %s", label, exc, exc_info=exc)
        return str(exc) or type(exc).__name__
    logger.error("internal error in %s", label, exc_info=exc)
    return internal_error_message(exc)


__all__ = [
    "UserError",
    "internal_error_message",
    "is_user_error",
    "log_location",
    "message_for",
]
