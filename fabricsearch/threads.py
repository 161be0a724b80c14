"""How many CPU threads torch uses for one call: a policy per call, not a process setting.

Measured (docs/benchmarks.md, "Thread policy"; `benchmarks/bench_threads.py`): for a single
query image two threads were 0.83× the time of one on the quiet 2-core machine (20 against
24 ms: nobody notices) but 8× slower beside one busy process (the issue measured 6.3–6.9×): a
second thread mostly waits for a core. Batches (import, encoding) do gain from more threads,
but only from cores that are actually free. So:

* one image (a query): one thread;
* a batch: the cores not busy with other work (`os.getloadavg`, this process's own work
  excluded as far as it can be), at least one. Measured on the 2-core machine: for a batch of
  32, two threads were 0.68× the time of one when it was quiet and 1.67× beside one busy
  process (OpenMP's workers spin while they wait for a core), so the count follows the load.

`torch_threads(n)` applies ``n`` for the duration of a call in the calling thread only: with
OpenMP the thread count is a per-thread setting, so a query in the window's worker thread does
not change the pool of a training running in another. numpy's OpenBLAS has only a
process-wide count: the window's process sets it to one (`one_blas_thread`). Leaf module: no
project imports.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

#: A batch below this many images is encoded like a single query (one thread).
SMALL_BATCH = 4


def cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def busy_elsewhere() -> float:
    """Runnable tasks on this machine that are not ours (1-minute load average minus one for
    this process's own work; 0 where the OS has no load average)."""
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    return max(0.0, load - 1.0)


def free_cores(n_cores: int | None = None, busy: float | None = None) -> int:
    """The cores not busy with other work now, at least one (module docstring)."""
    n_cores = cores() if n_cores is None else n_cores
    busy = busy_elsewhere() if busy is None else busy
    return max(1, min(n_cores, int(n_cores - busy + 0.5)))


def threads_for(images: int, n_cores: int | None = None, busy: float | None = None) -> int:
    """Threads for encoding ``images`` images now (see the module docstring)."""
    if images < SMALL_BATCH:
        return 1
    return free_cores(n_cores, busy)


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the body with ``n`` torch intra-op threads in this thread, then restore."""
    import torch

    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def cv2_threads(n: int) -> Iterator[None]:
    """Run the body with OpenCV's thread pool at ``n`` threads, then restore (a process-wide
    setting). Decoding threads that run beside torch's use one: OpenCV's own pool for each
    resize fought the network's threads (features of 12 camera JPEGs: 12.4 img/s with one
    OpenCV thread against 11.3 with two, loaded 2-core machine, docs/benchmarks.md)."""
    import cv2

    before = cv2.getNumThreads()
    if n == before:
        yield
        return
    cv2.setNumThreads(n)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


#: The thread-count functions of the OpenBLAS numpy's wheels bundle, by the names its builds
#: export (scipy-openblas's 64-bit build first).
_OPENBLAS_SET = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)


def _numpy_openblas() -> Any:
    """numpy's OpenBLAS as a ctypes library (already loaded by numpy), or None."""
    import ctypes
    from pathlib import Path

    import numpy

    here = Path(numpy.__file__).parent
    for folder in (here.parent / "numpy.libs", here / ".dylibs"):
        for path in sorted(folder.glob("*openblas*")) if folder.is_dir() else ():
            try:
                return ctypes.CDLL(str(path))
            except OSError:
                continue
    return None


def one_blas_thread() -> bool:
    """Make numpy's linear algebra (OpenBLAS) use one thread in this process, for good; True
    if it could. For the window's process: with two, OpenBLAS's second thread spins on the
    other core while an import's worker refits the feature sketch, and the GUI thread waited
    0.4-0.76 s at a time for a core (2-core machine, load 1.5; 0.17-0.19 s with one thread,
    docs/gui.md). A process-wide setting, unlike `torch_threads`: OpenBLAS has no per-thread
    count."""
    try:
        lib = _numpy_openblas()
    except Exception:  # noqa: BLE001 - another BLAS, or none: nothing to limit
        return False
    for name in _OPENBLAS_SET if lib is not None else ():
        fn = getattr(lib, name, None)
        if fn is not None:
            fn(1)
            return True
    return False


__all__ = [
    "SMALL_BATCH",
    "cores",
    "cv2_threads",
    "free_cores",
    "one_blas_thread",
    "threads_for",
    "torch_threads",
]
