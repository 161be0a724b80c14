"""Importing torch without stopping the other threads for long.

`import torch` loads torch's shared libraries (libtorch_cpu alone is hundreds of MB of code to
map and relocate) while holding Python's global interpreter lock: for 0.25 s on an idle machine
and 0.7 s or more on a loaded one, no other thread runs Python, a window's GUI thread included,
whichever thread imports. `import_torch` first maps those libraries with the C library's
``dlopen`` called through ctypes, which releases the lock for the call; the import that follows
finds them loaded and holds the lock only for short steps (≈0.1 s at most measured).

No Qt, no torch at import time: a front end calls `import_torch` in a background thread as it
starts (the window does, `services.training.preload_torch`)."""

from __future__ import annotations

import logging
import os
import sys
import threading
from importlib import util as importlib_util
from pathlib import Path

log = logging.getLogger(__name__)

#: torch's own libraries, in dependency order; each is mapped once (its dependencies with it).
LIBRARIES = ("libc10.so", "libtorch_cpu.so", "libtorch.so", "libtorch_python.so")

_lock = threading.Lock()


def preload_libraries() -> int:
    """Map torch's shared libraries without holding the interpreter lock; how many were
    mapped. Does nothing (0) where torch is already imported or not installed, and off Linux;
    a library that cannot be mapped is left to the import, which says why."""
    if "torch" in sys.modules or not sys.platform.startswith("linux"):
        return 0
    spec = importlib_util.find_spec("torch")
    if spec is None or spec.origin is None:
        return 0
    folder = Path(spec.origin).parent / "lib"
    import ctypes

    libc = ctypes.CDLL(None)  # a CDLL function call releases the GIL (a PyDLL one would not)
    dlopen = libc.dlopen
    dlopen.restype = ctypes.c_void_p
    dlopen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    mapped = 0
    for name in LIBRARIES:
        path = folder / name
        # RTLD_LOCAL, as the import itself loads them: the import's own loading then finds
        # them mapped by their name; nothing else resolves symbols against them.
        if path.is_file() and dlopen(os.fsencode(path), os.RTLD_NOW | os.RTLD_LOCAL):
            mapped += 1
    return mapped


def import_torch() -> bool:
    """Import torch, its libraries mapped first without the interpreter lock; whether torch
    is there. Safe from any thread, any number of times."""
    with _lock:
        if "torch" not in sys.modules:
            try:
                preload_libraries()
            except (OSError, AttributeError, ValueError) as exc:  # no dlopen: the plain import
                log.debug("torch's libraries not preloaded: %s", exc)
        try:
            import torch  # noqa: F401 - the import is the point
        except ImportError:
            return False
        return True
