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
