"""Fabric metadata: validation, bulk set with undo values, CSV import/export, migration 2."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library, schema
from fabricsearch.catalogue.metadata import FIELDS, FabricMetadata, MetadataError
from fabricsearch.catalogue.metadata_csv import MetadataCsvError, export_metadata, import_metadata
from fabricsearch.cli import main as cli_main
from tests.records_helpers import fake_library, ids_by_name


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    with fake_library(tmp_path, ["a.jpg", "b.jpg", "c.jpg", "sub/d.jpg"]) as lib:
        yield lib


def test_bulk_set_returns_old_values_and_undo_restores(lib: Library) -> None:
    ids = ids_by_name(lib)
    a, b = ids["a.jpg"], ids["b.jpg"]
    first = lib.set_metadata([a], {"supplier": "Acme", "weight": 280, "tags": "wool, winter"})
    assert first == {a: {"supplier": None, "weight": None, "tags": None}}
    old = lib.set_metadata([a, b], {"supplier": "Beta Mills", "price": "12.50"}, who="anna")
    assert old == {a: {"supplier": "Acme", "price": None}, b: {"supplier": None, "price": None}}
    meta = lib.metadata([a, b, ids["c.jpg"]])
    assert meta[a] == FabricMetadata(
        supplier="Beta Mills", weight=280.0, price=12.5, tags=("wool", "winter")
    )
    assert meta[b] == FabricMetadata(supplier="Beta Mills", price=12.5)
    assert meta[ids["c.jpg"]].empty
    redo = lib.set_metadata_rows(old)  # undo
    assert lib.metadata([a])[a] == FabricMetadata(
        supplier="Acme", weight=280.0, tags=("wool", "winter")
    )
    assert lib.metadata([b])[b].empty
    assert lib.metadata_count() == 1  # b's row, empty again, is gone
    lib.set_metadata_rows(redo)  # redo
    assert lib.metadata([b])[b].supplier == "Beta Mills"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("weight", "280g", "not a number"),
        ("weight", 0, "more than 0"),
        ("width", "-150", "more than 0"),
        ("price", -1, "negative"),
        ("price", "inf", "not a number"),
        ("price", float("nan"), "not a number"),
        ("weight", True, "not a number"),
        ("supplier", 12, "not text"),
        ("colour", "red", "unknown metadata field"),
    ],
)
def test_bad_values_write_nothing(lib: Library, field: str, value: object, message: str) -> None:
    a = ids_by_name(lib)["a.jpg"]
    with pytest.raises(MetadataError, match=message):
        lib.set_metadata([a], {"supplier": "Acme", field: value})
    assert lib.metadata([a])[a].empty


def test_unknown_image_writes_nothing(lib: Library) -> None:
    a = ids_by_name(lib)["a.jpg"]
    with pytest.raises(KeyError):
        lib.set_metadata([a, 999], {"supplier": "Acme"})
    assert lib.metadata_count() == 0


def test_tags_are_trimmed_and_deduplicated(lib: Library) -> None:
    a = ids_by_name(lib)["a.jpg"]
    lib.set_metadata([a], {"tags": ["  soft ", "soft", "", "new  arrival"]})
    assert lib.metadata([a])[a].tags == ("soft", "new arrival")


def test_metadata_goes_with_removed_image(lib: Library) -> None:
    a = ids_by_name(lib)["a.jpg"]
    lib.set_metadata([a], {"article": "X-1"})
    lib.remove_images([a])
    assert lib.metadata_count() == 0


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_import_applies_good_rows_and_reports_bad_ones(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    ids = ids_by_name(lib)
    lib.set_metadata([ids["b.jpg"]], {"notes": "keep me", "season": "SS25"})
    csv = write(
        photos / "meta.csv",
        "Path,supplier,weight,season\n"
        "a.jpg,Acme,280,AW26\n"  # 2 good
        "b.jpg,Beta,,\n"  # 3 good: clears season and weight, keeps notes (no column)
        "c.jpg,Gamma,heavy,\n"  # 4 bad number
        "missing.jpg,Delta,100,\n"  # 5 not in library
        "a.jpg,Acme,300,\n"  # 6 repeated
        "sub/d.jpg,Epsilon,0,\n"  # 7 zero weight
        "c.jpg,Gamma\n",  # 8 too few cells
    )
    rep = import_metadata(lib, csv)
    assert rep.applied == 2
    assert rep.fields == ["supplier", "weight", "season"]
    reasons = {e["line"]: e["reason"] for e in rep.errors}
    assert sorted(reasons) == [4, 5, 6, 7, 8]
    assert "weight: 'heavy' is not a number" in reasons[4]
    assert "image not in the library" in reasons[5]
    assert "already given on line 2" in reasons[6]
    assert "more than 0" in reasons[7]
    assert "2 cells, expected 4" in reasons[8]
    meta = lib.metadata()
    assert meta[ids["a.jpg"]] == FabricMetadata(supplier="Acme", weight=280.0, season="AW26")
    assert meta[ids["b.jpg"]] == FabricMetadata(supplier="Beta", notes="keep me")
    assert ids["c.jpg"] not in meta
    # The report carries what was replaced: applying it undoes the import.
    lib.set_metadata_rows(rep.replaced)
    assert lib.metadata()[ids["b.jpg"]] == FabricMetadata(notes="keep me", season="SS25")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("supplier,weight", "no path column"),
        ("path,colour", "unknown columns colour"),
        ("path,notes,Notes", "appears twice"),
    ],
)
def test_csv_with_wrong_columns_is_refused(
    lib: Library, tmp_path: Path, header: str, message: str
) -> None:
    csv = write(tmp_path / "m.csv", header + "\n")
    with pytest.raises(MetadataCsvError, match=message):
        import_metadata(lib, csv)


def test_export_import_round_trip(lib: Library, tmp_path: Path) -> None:
    ids = ids_by_name(lib)
    lib.set_metadata_rows(
        {
            ids["a.jpg"]: {
                "article": "=HYPERLINK(1)",
                "supplier": 'Tëxtil Ünion, "Nord"',
                "composition": "80% wool, 20% silk",
                "weight": 0.1 + 0.2,
                "width": 150,
                "price": 12.5,
                "season": "AW26",
                "notes": "line one\nline two",
                "tags": "soft, -sale",
            },
            ids["d.jpg"]: {"price": 0},
        }
    )
    before = lib.metadata()
    out = tmp_path / "photos" / "export.csv"
    assert export_metadata(lib, out) == 2
    text = out.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "path," + ",".join(FIELDS)
    assert "'=HYPERLINK(1)" in text  # a spreadsheet will not run it
    assert "sub/d.jpg" in text  # relative to the CSV's folder
    lib.set_metadata(list(ids.values()), {f: None for f in FIELDS})
    assert lib.metadata_count() == 0
    rep = import_metadata(lib, out)
    assert rep.errors == []
    assert lib.metadata() == before


def test_cli_meta_import_and_export(lib: Library, tmp_path: Path, capsys) -> None:
    csv = write(tmp_path / "photos" / "m.csv", "path,article\na.jpg,A-1\nzz.jpg,B\n")
    lib_dir = str(lib.folder)
    lib.close()
    assert cli_main(["meta", "import", lib_dir, str(csv), "--json"]) == 1  # one bad row
    out = json.loads(capsys.readouterr().out)
    assert out["applied"] == 1
    assert out["errors"][0]["line"] == 3
    assert cli_main(["meta", "export", lib_dir, str(tmp_path / "out.csv")]) == 0
    assert "A-1" in (tmp_path / "out.csv").read_text(encoding="utf-8")
    assert cli_main(["meta", "import", lib_dir, str(tmp_path / "nothing.csv")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_migration_indexes_existing_images(tmp_path: Path, monkeypatch) -> None:
    """A catalogue of schema 1 gains the metadata table and a text index of its images."""
    db = tmp_path / "lib" / "catalogue.sqlite"
    with fake_library(tmp_path, ["wool_01.jpg"]) as lib:
        lib.set_labels(lib.image_ids(), coarse="plaid/tartan")
    conn = sqlite3.connect(db, isolation_level=None)
    # Every table and column of migrations 2 and later (metadata, text index, label audit, job
    # progress, the models' kind).
    conn.execute("ALTER TABLE models DROP COLUMN kind")  # migration 5
    for table in ("fabric_text", "metadata", "label_audit", "job_progress"):
        conn.execute(f"DROP TABLE IF EXISTS {table}")
    for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='trigger'").fetchall():
        conn.execute(f"DROP TRIGGER {name}")
    conn.execute("DELETE FROM schema_migrations WHERE version >= 2")
    conn.close()
    with Library.open(tmp_path / "lib") as lib:
        assert lib.schema_version() == schema.SCHEMA_VERSION
        assert lib.text_search("wool") == lib.image_ids()
        assert lib.text_search("coarse:tartan") == lib.image_ids()
