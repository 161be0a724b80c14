"""Labels CSV naming categories the library lacks (issue 24 item 1): the refused rows grouped
by missing category and by rule, then the categories added at their column's level and only
those rows applied (services.labels)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import import_folder
from fabricsearch.services.labels import (
    import_labels,
    import_missing_categories,
    summarise_labels,
)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(7):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


@pytest.fixture
def lib(tmp_path: Path, photos: Path) -> Library:
    with Library.create(tmp_path / "lib") as lib:
        import_folder(lib, photos, workers=0)
        yield lib


CSV = (
    "path,coarse,fine,tightness\n"
    "0.png,plaid,twill,40\n"  # known: applied
    "1.png,banded/wide,,10\n"  # new major and minor (coarse)
    "2.png,banded/wide,slub,\n"  # the same coarse and a new fine
    "3.png,plaid/madras,,\n"  # a new minor of a known major
    "4.png,,slub,\n"  # the new fine alone
    "5.png,stripe,bad id,\n"  # a fine id that cannot be added (spaces are fine; see below)
    "6.png,plaid,,150\n"  # tightness out of range
    "nowhere.png,plaid,,\n"  # not in the library
    "nowhere2.png,plaid,,\n"
)


def test_refused_rows_grouped_by_missing_category_and_rule(lib: Library, photos: Path) -> None:
    (photos / "labels.csv").write_text(CSV, encoding="utf-8")
    rep = import_labels(lib, photos / "labels.csv")
    assert rep.applied == 1
    assert rep.source == str(photos / "labels.csv")
    s = summarise_labels(rep, lib.taxonomy)
    assert (s.applied, s.refused) == (1, 8)
    got = {(m.level, m.id): m.rows for m in s.missing}
    assert got == {
        ("coarse", "banded/wide"): 2,
        ("fine", "slub"): 2,
        ("coarse", "plaid/madras"): 1,
        ("fine", "bad id"): 1,
    }
    # "bad id" is a valid id (inner spaces are allowed): every missing category is addable.
    assert [m.addable for m in s.missing] == [True] * 4
    assert s.missing_rows == 5  # line 4 names two of them
    assert s.missing_lines == (3, 4, 5, 6, 7)
    assert {g.kind: len(g.rows) for g in s.others} == {"not-in-library": 2, "tightness": 1}
    assert s.others[0].reason == "photo not in the library"  # most rows first


def test_adding_the_missing_categories_applies_only_their_rows(lib: Library, photos: Path) -> None:
    (photos / "labels.csv").write_text(CSV, encoding="utf-8")
    first = summarise_labels(import_labels(lib, photos / "labels.csv"), lib.taxonomy)
    # A label set by hand after the first import is not overwritten by the second pass.
    zero = lib.find_by_path(photos / "0.png")
    lib.set_labels([zero.id], fine="satin")
    second = import_missing_categories(lib, first)
    assert second.applied == 5
    assert second.errors == []
    tax = lib.taxonomy
    assert "banded" in tax.majors  # coarse level
    assert "banded/wide" in tax.minors
    assert "plaid/madras" in tax.minors
    assert {"slub", "bad id"} <= set(tax.fine)  # fine level
    assert "slub" not in tax.majors
    assert "banded" not in tax.fine
    assert lib.get(zero.id).fine == "satin"
    two = lib.find_by_path(photos / "2.png")
    assert (lib.get(two.id).coarse, lib.get(two.id).fine) == ("banded/wide", "slub")

    total = first.after(second, lib.taxonomy)
    assert (total.applied, total.refused) == (6, 3)
    assert total.missing == ()
    assert {g.kind for g in total.others} == {"not-in-library", "tightness"}
    assert set(total.added_categories) >= {"banded", "banded/wide", "plaid/madras", "slub"}


def test_a_category_that_cannot_be_added_is_named_with_why(lib: Library, photos: Path) -> None:
    lib.taxonomy_retire("coarse", "stripe", True)
    (photos / "labels.csv").write_text(
        "path,coarse,fine,tightness\n0.png,stripe/new,,\n1.png,stripe/new,,\n2.png,,crepe,\n",
        encoding="utf-8",
    )
    s = summarise_labels(import_labels(lib, photos / "labels.csv"), lib.taxonomy)
    blocked = {m.id: m for m in s.missing}
    assert not blocked["stripe/new"].addable
    assert "retired" in blocked["stripe/new"].problem
    assert blocked["crepe"].addable
    assert s.missing_lines == (4,)  # only the row whose categories can all be added
    assert import_missing_categories(lib, s).applied == 1
    assert not lib.taxonomy.has_coarse("stripe/new")
