"""The per-call thread policy (issue 23): one thread for a query, the free cores for a batch,
applied to the calling thread only."""

from __future__ import annotations

import threading

import torch

from fabricsearch.threads import SMALL_BATCH, threads_for, torch_threads


def test_a_single_query_uses_one_thread_whatever_the_machine() -> None:
    assert threads_for(1, n_cores=16, busy=0.0) == 1
    assert threads_for(SMALL_BATCH - 1, n_cores=16, busy=0.0) == 1


def test_a_batch_uses_the_free_cores() -> None:
    assert threads_for(32, n_cores=8, busy=0.0) == 8
    assert threads_for(32, n_cores=8, busy=3.0) == 5
    assert threads_for(32, n_cores=2, busy=0.0) == 2  # quiet: measured 0.68× of one thread
    assert threads_for(32, n_cores=2, busy=1.0) == 1  # one busy process: two were 1.67×
    assert threads_for(32, n_cores=2, busy=9.0) == 1  # never below one
    assert threads_for(32, n_cores=1, busy=0.0) == 1
    assert threads_for(32, n_cores=4, busy=0.4) == 4


def test_torch_threads_is_per_call_and_per_thread() -> None:
    before = torch.get_num_threads()
    other = 1 if before != 1 else 2
    inside, checked = threading.Event(), threading.Event()
    seen: dict[str, int] = {}

    def worker() -> None:
        with torch_threads(other):
            seen["inside"] = torch.get_num_threads()
            inside.set()
            checked.wait(10)
        seen["after"] = torch.get_num_threads()

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(10)
    main_during = torch.get_num_threads()  # while the worker holds its setting
    checked.set()
    t.join()
    assert seen["inside"] == other
    assert main_during == before  # another thread's setting does not reach this one
    with torch_threads(other):
        assert torch.get_num_threads() == other
    assert torch.get_num_threads() == before


def test_the_import_sizes_its_decoders_to_the_free_cores(tmp_path, monkeypatch) -> None:
    from fabricsearch import threads
    from fabricsearch.catalogue import importer

    assert threads.free_cores(n_cores=2, busy=0.0) == 2
    assert threads.free_cores(n_cores=2, busy=1.0) == 1
    assert threads.free_cores(n_cores=8, busy=20.0) == 1
    seen: dict[str, int] = {}

    def fake_pool(paths, known, workers, cancel, net_size=0):  # type: ignore[no-untyped-def]
        seen["workers"] = workers
        return iter(())

    monkeypatch.setattr(importer, "_measure_pool", fake_pool)
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 0.0)
    monkeypatch.setattr(threads, "cores", lambda: 2)
    list(
        importer._measure_all(
            [str(tmp_path / f"{i}.jpg") for i in range(8)], frozenset(), None, None
        )
    )
    assert seen["workers"] == 2
    monkeypatch.setattr(threads, "busy_elsewhere", lambda: 1.5)  # one core busy elsewhere
    seen.clear()
    out = list(importer._measure_all([str(tmp_path / "x.jpg")] * 8, frozenset(), None, None))
    assert "workers" not in seen  # one free core: measured in this process, no pool
    assert len(out) == 8


def test_cv2_threads_is_applied_for_the_call_and_restored() -> None:
    import cv2

    from fabricsearch.threads import cv2_threads

    before = cv2.getNumThreads()
    other = 1 if before != 1 else 2
    with cv2_threads(other):
        assert cv2.getNumThreads() == other
    assert cv2.getNumThreads() == before


def test_one_blas_thread_sets_numpys_openblas_to_one_thread() -> None:
    """The window's process (`gui.app.create_app`): numpy's OpenBLAS at one thread. A fresh
    process: the setting is process-wide and permanent."""
    import subprocess
    import sys

    import pytest

    from fabricsearch.threads import _numpy_openblas

    if _numpy_openblas() is None:
        pytest.skip("numpy is not built on a bundled OpenBLAS here")
    code = (
        "from fabricsearch.threads import _numpy_openblas, one_blas_thread\n"
        "lib = _numpy_openblas()\n"
        "get = next(getattr(lib, n) for n in ('scipy_openblas_get_num_threads64_',\n"
        "    'scipy_openblas_get_num_threads', 'openblas_get_num_threads64_',\n"
        "    'openblas_get_num_threads') if hasattr(lib, n))\n"
        "assert one_blas_thread()\n"
        "assert get() == 1, get()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
