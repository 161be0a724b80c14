"""Getters write nothing (issue 21 item 9): `Library.splits()` on rows without a stored split
computes the same deterministic value and leaves the catalogue as it was, also read-only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.library import split_for_sha


def test_splits_is_a_pure_getter(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    with Library.create(folder) as lib, lib.atomic():
        shas = [hashlib.sha256(f"{i}".encode()).hexdigest() for i in range(30)]
        ids = [
            lib.add_image(f"/p/{i}.png", sha, 1, 1.0, 8, 8, np.zeros((10, 4), np.float32))
            for i, sha in enumerate(shas)
        ]
        lib._execute("UPDATE images SET split = NULL WHERE id % 2 = 0")
    with Library.open(folder) as lib:
        before = lib.change_token()
        splits = lib.splits()
        assert splits == {i: split_for_sha(sha) for i, sha in zip(ids, shas, strict=True)}
        assert lib._query("SELECT COUNT(*) FROM images WHERE split IS NULL")[0][0] == 15
        assert lib.change_token() == before
    with Library.open(folder, read_only=True) as ro:
        assert ro.splits() == splits
