"""Helpers shared by CLI commands: tqdm progress bridge, JSON printing, error exits."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import json
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from fabricsearch.errors import UserError  # the one base class; re-exported for commands
from fabricsearch.jobs import CancelToken, Progress, ProgressFn

#: Exit code of an internal error (a bug; sysexits' EX_SOFTWARE): 1 is a user error.
INTERNAL_ERROR_EXIT = 70


T = TypeVar("T")


def build_config(cls: Callable[..., T], **values: Any) -> T:
    """A configuration dataclass from command-line values; a value it refuses (its
    ``__post_init__`` raises `ValueError`) becomes a `UserError`: a message and exit code 1."""
    try:
        return cls(**values)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def add_config_flags(
    parser: argparse.ArgumentParser,
    names: Sequence[str],
    helps: dict[str, str] | None = None,
    config: type | None = None,
) -> None:
    """One ``--flag-name`` per field in ``names`` of the dataclass ``config`` (`TrainConfig`
    unless given), typed and documented from the field; its default is None (= the
    dataclass's, shown in --help), so `config_values` tells what was given from what was
    not."""
    from fabricsearch.config import TrainConfig

    known = {f.name: f for f in dataclasses.fields(config or TrainConfig)}
    for name in names:
        f = known[name]
        default = f.default
        text = (helps or {}).get(name, name.replace("_", " "))
        if isinstance(default, bool):  # --name / --no-name (type=bool would take any text)
            parser.add_argument(
                "--" + name.replace("_", "-"),
                action=argparse.BooleanOptionalAction,
                default=None,
                help=f"{text} (default {'on' if default else 'off'})",
            )
            continue
        parser.add_argument(
            "--" + name.replace("_", "-"),
            type=type(default),
            default=None,
            help=f"{text} (default {default})",
        )


def config_values(args: argparse.Namespace, names: Sequence[str]) -> dict[str, Any]:
    """The configuration fields the user gave on the command line (not None)."""
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write("\n")


def fail(message: str, code: int = 1) -> int:
    print(f"fabricsearch: error: {message}", file=sys.stderr)
    return code


@contextmanager
def tqdm_progress(enabled: bool = True) -> Iterator[tuple[ProgressFn, CancelToken]]:
    """Yield (progress, cancel) for a long function; shows one tqdm bar per stage on stderr.

    Ctrl-C sets the cancel token first, so the work stops at a safe point. When stderr is not
    a terminal (a log file, a pipe) bars would fill it with carriage returns: plain lines are
    written instead, one when a stage starts, one when it ends, at most one every
    `LOG_LINE_SECONDS` in between."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}
    cancel = CancelToken()
    lines = _LineProgress() if not _is_terminal(sys.stderr) else None

    def progress(p: Progress) -> None:
        if not enabled:
            return
        if lines is not None:
            lines(p)
            return
        bar = bars.get(p.stage)
        if bar is None:
            for other in bars.values():
                other.close()
            bars.clear()
            bar = bars[p.stage] = tqdm(
                total=p.total, desc=p.stage, unit=p.unit, file=sys.stderr, dynamic_ncols=True
            )
        if p.total is not None and bar.total != p.total:
            bar.total = p.total
        bar.n = p.done
        if p.info:
            bar.set_postfix(
                {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in p.info.items()},
                refresh=False,
            )
        bar.refresh()

    # First Ctrl-C asks the work to stop at its next safe point; a second one interrupts hard.
    previous = None
    if threading.current_thread() is threading.main_thread():

        def on_sigint(signum: int, frame: Any) -> None:
            if cancel.cancelled:
                raise KeyboardInterrupt
            cancel.cancel()
            print("\ncancelling… (Ctrl-C again to abort at once)", file=sys.stderr)

        previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield progress, cancel
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)
        for bar in bars.values():
            bar.close()


#: Seconds between two progress lines of one stage when stderr is not a terminal.
LOG_LINE_SECONDS = 10.0


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


class _LineProgress:
    """Progress as whole lines, for logs: ``encode: 64/192 img``."""

    def __init__(self) -> None:
        self.stage = ""
        self.last = 0.0
        self.ended = False

    def __call__(self, p: Progress) -> None:
        now = time.monotonic()
        finished = p.total is not None and p.done >= p.total
        if p.stage == self.stage and (
            self.ended or not finished and now - self.last < LOG_LINE_SECONDS
        ):
            return
        total = f"/{p.total}" if p.total is not None else ""
        print(f"{p.stage}: {p.done}{total} {p.unit}", file=sys.stderr, flush=True)
        self.stage, self.last, self.ended = p.stage, now, finished


def run_command(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """The CLI's one error boundary. A `fabricsearch.errors.UserError` (a bad library,
    labels CSV, model file, device, method name, option value…) is its message on stderr in
    one line and exit code 1; so is an `OSError` (the file system refused; disk full says
    where to free space), its traceback logged. A cancelled job says what it kept
    (`jobs.Cancelled.user_message`) and exits 130; a second Ctrl-C exits 130; a closed pipe
    (``| head``) ends quietly. Anything else is a bug: its traceback goes to the log (to
    stderr when there is no log) and one line says "internal error" and where it is; exit
    code `INTERNAL_ERROR_EXIT`."""
    from fabricsearch.jobs import Cancelled

    try:
        return int(func(args) or 0)
    except UserError as exc:
        return fail(str(exc))
    except Cancelled as exc:
        print(f"fabricsearch: {exc.user_message()}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("fabricsearch: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``fabricsearch info --json | head``): not an error of ours.
        # Point stdout at devnull so the interpreter's final flush cannot raise again.
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141
    except OSError as exc:
        from fabricsearch.atomicio import disk_full_message, is_disk_full

        if is_disk_full(exc):
            return fail(disk_full_message(exc.filename))
        logging.getLogger("fabricsearch").warning("%s", exc, exc_info=exc)
        return fail(str(exc))
    except Exception as exc:  # noqa: BLE001 - the boundary: a bug, reported as one
        return internal_error(exc, getattr(args, "command", None))


def internal_error(exc: BaseException, command: str | None = None) -> int:
    """Report a bug: its traceback to the log file (to stderr when logging has no file), and
    one line saying so; returns `INTERNAL_ERROR_EXIT`."""
    import traceback

    from fabricsearch.errors import internal_error_message, log_location

    log = logging.getLogger("fabricsearch")
    where = f"fabricsearch {command}" if command else "fabricsearch"
    if log_location() is not None:
        log.critical("internal error in %s", where, exc_info=exc)
        message = internal_error_message(exc)
    else:  # no log file (a read-only home, a direct call): the traceback goes to stderr
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
        message = f"an internal error ({type(exc).__name__}); the traceback is above"
    print(f"fabricsearch: {message}", file=sys.stderr)
    return INTERNAL_ERROR_EXIT


def user_errors(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Decorator for command functions: runs them inside `run_command`, the one error
    boundary, also when a command is called directly (tests, other commands)."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        return run_command(func, args)

    return wrapper
