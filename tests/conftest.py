"""Shared fixtures: offscreen Qt, seeding, small generated data."""

from __future__ import annotations

import atexit
import os
import random
import shutil
import tempfile

import numpy as np
import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Logs, settings and the demo library of the tests go to a throwaway folder, never the user's.
if "FABRICSEARCH_DATA_DIR" not in os.environ:
    _data_dir = tempfile.mkdtemp(prefix="fabricsearch-tests-")
    os.environ["FABRICSEARCH_DATA_DIR"] = _data_dir
    atexit.register(shutil.rmtree, _data_dir, ignore_errors=True)


def seed_everything(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch
    except ImportError:
        return
    torch.manual_seed(seed)
    # Tiny test networks run faster on one thread, and CI's two cores are shared by workers.
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    seed_everything(0)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
