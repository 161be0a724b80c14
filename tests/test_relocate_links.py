"""Relocating onto a symlinked prefix stores the real paths, as an import would (issue 20,
low item): otherwise a later import of the real folder finds every photo a second time."""

from __future__ import annotations

import shutil
from pathlib import Path

from fabricsearch.catalogue import Library
from tests.records_helpers import fake_library, ids_by_name


def test_relocate_onto_a_symlinked_prefix_stores_real_paths(tmp_path: Path) -> None:
    with fake_library(tmp_path, ["a.jpg", "shelf/c.jpg", "shelf/d.jpg"]) as lib:
        ids = ids_by_name(lib)
        real = tmp_path / "real"
        real.mkdir()
        shutil.move(tmp_path / "photos" / "shelf", real / "shelf")
        link = tmp_path / "linked"
        link.symlink_to(real)
        rep = lib.relocate(tmp_path / "photos" / "shelf", link / "shelf")
        assert len(rep.moved) == 2
        assert {r["to"] for r in rep.moved} == {
            str((real / "shelf" / n).resolve()) for n in ("c.jpg", "d.jpg")
        }
        assert lib.get(ids["c.jpg"]).path == (real / "shelf" / "c.jpg").resolve()
        # What an import of the real folder looks up: the row, not a new duplicate.
        found = lib.find_by_path(real / "shelf" / "d.jpg")
        assert found is not None
        assert found.id == ids["d.jpg"]
    with Library.open(tmp_path / "lib") as again:
        assert all(not str(r.path).startswith(str(link)) for r in again.images())
