"""Taxonomy editor: stable ids, relabelling in one transaction, retirement, undo."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.labels_csv import import_labels
from fabricsearch.cli import main as cli_main
from fabricsearch.taxonomy import Taxonomy, TaxonomyError
from tests.records_helpers import fake_library, ids_by_name


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    with fake_library(tmp_path, ["a.jpg", "b.jpg", "c.jpg", "d.jpg"]) as lib:
        ids = ids_by_name(lib)
        lib.set_labels([ids["a.jpg"]], coarse="plaid/tartan", fine="twill", tightness=40)
        lib.set_labels([ids["b.jpg"]], coarse="plaid/gingham")
        lib.set_labels([ids["c.jpg"]], coarse="plaid", fine="plain")
        lib.set_labels([ids["d.jpg"]], coarse="stripe/pin-stripe")
        yield lib


def labels(lib: Library) -> dict[str, tuple]:
    return {r.path.name: (r.coarse, r.fine, r.tightness) for r in lib.images()}


def test_add_and_rename_keep_ids_and_indices(lib: Library) -> None:
    before = lib.taxonomy
    lib.taxonomy_add("coarse", "plaid/madras", name="Madras")
    lib.taxonomy_add("fine", "leno", name="Leno weave")
    lib.taxonomy_rename("coarse", "plaid/tartan", "Scottish tartan")
    tax = lib.taxonomy
    assert tax.minors[: len(before.minors)] == before.minors  # appended only
    assert tax.minors[-1] == "plaid/madras"
    assert tax.minor_names["plaid/tartan"] == "Scottish tartan"
    assert tax.fine_names["leno"] == "Leno weave"
    assert labels(lib)["a.jpg"][0] == "plaid/tartan"
    with pytest.raises(TaxonomyError, match="already exists"):
        lib.taxonomy_add("coarse", "plaid/madras")
    with pytest.raises(TaxonomyError, match="unknown"):
        lib.taxonomy_rename("fine", "velvetish", "x")


def test_merge_minor_relabels_in_one_step_and_undo(lib: Library) -> None:
    before_labels, before_tax = labels(lib), lib.taxonomy.to_dict()
    change = lib.taxonomy_merge("coarse", "plaid/gingham", "plaid/tartan")
    assert labels(lib)["b.jpg"][0] == "plaid/tartan"
    assert len(change.relabelled) == 1
    tax = lib.taxonomy
    assert tax.is_retired("plaid/gingham")
    assert tax.current_id("plaid/gingham") == "plaid/tartan"
    assert "plaid/gingham" in tax.minors  # index kept for trained models
    assert "plaid/gingham" not in tax.active_minors()
    with pytest.raises(TaxonomyError, match="retired"):
        lib.set_labels([ids_by_name(lib)["c.jpg"]], coarse="plaid/gingham")
    assert lib.text_search("coarse:gingham") == []
    lib.undo_taxonomy_change(change)
    assert labels(lib) == before_labels
    assert lib.taxonomy.to_dict() == before_tax
    assert lib.text_search("coarse:gingham") == [ids_by_name(lib)["b.jpg"]]


def test_merge_major_moves_its_minors(lib: Library) -> None:
    change = lib.taxonomy_merge("coarse", "plaid", "stripe")
    assert labels(lib) == {
        "a.jpg": ("stripe/tartan", "twill", 40.0),
        "b.jpg": ("stripe/gingham", None, None),
        "c.jpg": ("stripe", "plain", None),
        "d.jpg": ("stripe/pin-stripe", None, None),
    }
    tax = lib.taxonomy
    assert tax.is_retired("plaid")
    assert tax.is_retired("plaid/tartan")
    assert "stripe/tartan" in tax.active_minors()
    assert len(change.relabelled) == 3
    # The stored form round-trips (the library reloads it from JSON).
    assert Taxonomy.from_dict(tax.to_dict()).retired_coarse == tax.retired_coarse
    with pytest.raises(TaxonomyError, match="part of"):
        lib.taxonomy_merge("coarse", "stripe", "stripe/tartan")


def test_merge_fine(lib: Library) -> None:
    lib.taxonomy_merge("fine", "plain", "twill")
    assert labels(lib)["c.jpg"][1] == "twill"
    assert lib.taxonomy.is_retired("plain", fine=True)


def test_retire_refuses_used_categories_unless_cleared(lib: Library, tmp_path: Path) -> None:
    with pytest.raises(TaxonomyError, match="1 images are labelled"):
        lib.taxonomy_retire("coarse", "stripe/pin-stripe")
    assert not lib.taxonomy.is_retired("stripe/pin-stripe")
    change = lib.taxonomy_retire("coarse", "stripe/pin-stripe", clear_labels=True)
    assert labels(lib)["d.jpg"] == (None, None, None)
    assert not lib.get(ids_by_name(lib)["d.jpg"]).labelled
    # A labels CSV naming it is refused per row (not the whole file).
    csv = tmp_path / "photos" / "l.csv"
    csv.write_text("path,coarse,fine,tightness\nd.jpg,stripe/pin-stripe,,\nb.jpg,solid,,\n")
    rep = import_labels(lib, csv)
    assert rep.applied == 1
    assert "retired" in rep.errors[0]["reason"]
    lib.undo_taxonomy_change(change)
    assert labels(lib)["d.jpg"][0] == "stripe/pin-stripe"


def test_cli_taxonomy(lib: Library, capsys) -> None:
    lib_dir = str(lib.folder)
    lib.close()
    assert (
        cli_main(
            ["taxonomy", "merge", lib_dir, "coarse", "plaid/gingham", "plaid/tartan", "--json"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["relabelled"] == 1
    assert cli_main(["taxonomy", "retire", lib_dir, "coarse", "stripe/pin-stripe"]) == 1
    assert "merge it into another category" in capsys.readouterr().err
    assert cli_main(["taxonomy", "add", lib_dir, "fine", "leno", "--name", "Leno"]) == 0
    assert cli_main(["taxonomy", "rename", lib_dir, "fine", "leno", "Leno weave"]) == 0
    capsys.readouterr()
    assert cli_main(["taxonomy", "show", lib_dir]) == 0
    out = capsys.readouterr().out
    assert "retired, merged into plaid/tartan" in out
    assert "Leno weave" in out
