"""Undoing a taxonomy edit after later edits reverses only that edit (or refuses, changing
nothing); merges and their undo are in the label audit; bad new ids are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.labels_csv import export_labels, import_labels
from fabricsearch.cli import main as cli_main
from fabricsearch.taxonomy import TaxonomyError
from tests.records_helpers import fake_library, ids_by_name


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    with fake_library(tmp_path, ["a.jpg", "b.jpg", "c.jpg"]) as lib:
        ids = ids_by_name(lib)
        lib.set_labels([ids["a.jpg"]], coarse="plaid/houndstooth", fine="twill")
        lib.set_labels([ids["b.jpg"]], coarse="plaid/houndstooth")
        lib.set_labels([ids["c.jpg"]], coarse="plaid", fine="plain")
        yield lib


def labels(lib: Library) -> dict[str, tuple]:
    return {r.path.name: (r.coarse, r.fine) for r in lib.images()}


def test_undo_merge_keeps_labels_and_categories_set_since(lib: Library, tmp_path: Path) -> None:
    ids = ids_by_name(lib)
    change = lib.taxonomy_merge("coarse", "plaid/houndstooth", "plaid/tartan")
    lib.set_labels([ids["a.jpg"]], coarse="solid/melange")  # relabelled since
    lib.set_labels([ids["b.jpg"]], fine="satin")  # only another field changed since
    lib.taxonomy_add("fine", "leno")  # added since, and used
    lib.set_labels([ids["c.jpg"]], fine="leno")
    assert lib.undo_taxonomy_change(change) == [ids["a.jpg"]]
    assert labels(lib) == {
        "a.jpg": ("solid/melange", "twill"),
        "b.jpg": ("plaid/houndstooth", "satin"),
        "c.jpg": ("plaid", "leno"),
    }
    tax = lib.taxonomy
    assert not tax.is_retired("plaid/houndstooth")
    assert "leno" in tax.active_fine()
    # Every label fits the taxonomy: export → import round-trips.
    out = tmp_path / "photos" / "labels.csv"
    export_labels(lib, out)
    rep = import_labels(lib, out)
    assert (rep.applied, rep.errors) == (3, [])


def test_merge_and_undo_are_audited(lib: Library) -> None:
    b = ids_by_name(lib)["b.jpg"]
    change = lib.taxonomy_merge("coarse", "plaid/houndstooth", "plaid/tartan")
    lib.undo_taxonomy_change(change)
    rows = [(h["field"], h["old"], h["new"]) for h in lib.label_history(b)][-2:]
    assert rows == [
        ("coarse", "plaid/houndstooth", "plaid/tartan"),
        ("coarse", "plaid/tartan", "plaid/houndstooth"),
    ]
    assert "taxonomy editor" in lib.label_history(b)[-1]["who"]


def test_undo_refused_when_a_category_it_added_is_used_since(lib: Library) -> None:
    c = ids_by_name(lib)["c.jpg"]
    change = lib.taxonomy_merge("coarse", "plaid", "stripe")  # creates stripe/houndstooth
    lib.set_labels([c], coarse="stripe/houndstooth")
    before_labels, before_tax = labels(lib), lib.taxonomy.to_dict()
    with pytest.raises(TaxonomyError, match="1 images are now labelled 'stripe/houndstooth'"):
        lib.undo_taxonomy_change(change)
    assert labels(lib) == before_labels
    assert lib.taxonomy.to_dict() == before_tax


def test_undo_add_removes_only_its_category(lib: Library) -> None:
    before = lib.taxonomy
    first = lib.taxonomy_add("fine", "leno")
    lib.taxonomy_add("fine", "crepe")
    lib.undo_taxonomy_change(first)  # not the last any more: retired, indices kept
    tax = lib.taxonomy
    assert tax.fine[-2:] == ["leno", "crepe"]
    assert tax.is_retired("leno", fine=True)
    assert "crepe" in tax.active_fine()
    last = lib.taxonomy_add("coarse", "plaid/madras")
    lib.undo_taxonomy_change(last)
    assert lib.taxonomy.minors == before.minors


@pytest.mark.parametrize("bad", ["line\nbreak", "tab\there", "nul\0"])
def test_control_characters_refused_in_new_ids(lib: Library, bad: str, capsys) -> None:
    with pytest.raises(TaxonomyError, match="invalid category id"):
        lib.taxonomy_add("fine", bad)
    with pytest.raises(TaxonomyError, match="invalid category id"):
        lib.taxonomy_add("coarse", f"plaid/{bad}")
    lib_dir = str(lib.folder)
    lib.close()
    assert cli_main(["taxonomy", "add", lib_dir, "fine", bad]) == 1
    assert "invalid category id" in capsys.readouterr().err
    with Library.open(lib_dir) as again:
        assert bad not in again.taxonomy.fine


def test_names_are_one_line(lib: Library) -> None:
    lib.taxonomy_add("fine", "leno", name="Leno\nweave")
    assert lib.taxonomy.fine_names["leno"] == "Leno weave"
    with pytest.raises(TaxonomyError, match="control"):
        lib.taxonomy_rename("fine", "leno", "Leno\0")
