"""Getters write nothing (issue 21 item 9): `Library.splits()` on rows without a stored split
computes the same deterministic value and leaves the catalogue as it was, also read-only; a
search leaves images without a code out and counts them (the service encodes them first)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

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


def _catalogue_bytes(lib: Library) -> bytes:
    wal = lib.db_path.with_name(lib.db_path.name + "-wal")
    return b"".join(p.read_bytes() for p in (lib.db_path, wal) if p.exists())


def test_a_search_writes_nothing_to_the_catalogue(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Images without a code under the active model are left out and counted, not encoded by
    the query; the service's step before a query (`ensure_codes`) encodes them."""
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library
    from fabricsearch.services.search import Searcher, ensure_codes
    from fabricsearch.synth import write_dataset

    photos = tmp_path / "photos"
    labels = write_dataset(photos, count=24, seed=5, size=48)
    folder = tmp_path / "lib"
    with Library.create(folder) as lib:
        import_folder(lib, photos, labels_csv=labels, workers=0)
        cfg = TrainConfig(bits=16, input_size=32, epochs=1, batch_size=8, patience=0, seed=0)
        version = train_library(lib, cfg).version
        ids, packed = lib.load_codes(version)
        lib.store_codes(version, ids[:-3].tolist(), packed[:-3])  # 3 images lose their code
        lost = lib.get(int(ids[-1]))
    with Library.open(folder) as lib:
        token, data = lib.change_token(), _catalogue_bytes(lib)
        searcher = Searcher(lib)
        first = searcher.search(lost.path, k=5)
        again = searcher.rerank(first.state, k=10, balance=0.9)
        assert (first.unsearchable, again.unsearchable) == (3, 3)
        assert lost.id not in {h.image_id for h in again.hits}
        assert lib.count_codes(version) == len(ids) - 3
        assert lib.change_token() == token
        assert _catalogue_bytes(lib) == data
    with Library.open(folder, read_only=True) as ro:
        searcher = Searcher(ro)
        assert searcher.search(lost.path, k=5).unsearchable == 3
        assert ensure_codes(searcher) == 3  # a read-only library is searched as it is
    from fabricsearch.catalogue.library import READ_ONLY_ENV
    from fabricsearch.cli import main

    monkeypatch.setenv(READ_ONLY_ENV, "1")
    assert main(["search", str(folder), str(lost.path), "-k", "3"]) == 0
    assert "3 photos have no code under the model yet" in capsys.readouterr().out
    monkeypatch.delenv(READ_ONLY_ENV)
    with Library.open(folder) as lib:
        searcher = Searcher(lib)
        assert ensure_codes(searcher) == 0
        hit = searcher.search(lost.path, k=5).hits[0]
        assert (hit.image_id, hit.exact, lib.count_codes(version)) == (lost.id, True, len(ids))
