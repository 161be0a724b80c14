"""Labels CSV edge rules (issue 17, low items): rejected rows add no categories, tightness is a
plain ASCII number, exported cells never start like a spreadsheet formula."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import import_folder
from fabricsearch.catalogue.labels_csv import export_labels, import_labels


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a.png", "b.png", "c.png", "=cmd|' -c calc'!A0.png", "+1.png", "'x.png"):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / name)
    return folder


@pytest.fixture
def lib(tmp_path: Path, photos: Path) -> Library:
    with Library.create(tmp_path / "lib") as lib:
        import_folder(lib, photos, workers=0)
        yield lib


def test_rejected_rows_add_no_categories(lib: Library, photos: Path) -> None:
    before = lib.taxonomy.to_dict()
    (photos / "l.csv").write_text(
        "path,coarse,fine,tightness\n"
        "a.png,pattern/bubbly,,200\n"  # tightness out of range
        "b.png,solid,crepe,abc\n"  # tightness not a number
        "c.png,stripe,,10\n"
        "c.png,knitted,,20\n"  # repeated path
        "missing.png,woven,,\n"  # not in the library
        "a.png,stripe,bad/fine,\n"  # an invalid fine id: the coarse must not stay added
    )
    rep = import_labels(lib, photos / "l.csv", add_categories=True)
    assert rep.applied == 1
    assert [e["line"] for e in rep.errors] == [2, 3, 5, 6, 7]
    assert rep.added_categories == []
    assert lib.taxonomy.to_dict() == before


def test_accepted_rows_still_add_categories(lib: Library, photos: Path) -> None:
    (photos / "l.csv").write_text(
        "path,coarse,fine,tightness\na.png,pattern/bubbly,crepe,40\nb.png,pattern/bubbly,,\n"
    )
    rep = import_labels(lib, photos / "l.csv", add_categories=True)
    assert (rep.applied, rep.errors) == (2, [])
    assert rep.added_categories == ["pattern/bubbly", "crepe"]


@pytest.mark.parametrize("cell", ["5_0", "５０", "٥٠", "nan", "inf", "0x10", "50%", "5 0"])
def test_tightness_must_be_an_ascii_number(lib: Library, photos: Path, cell: str) -> None:
    (photos / "l.csv").write_text(f"path,coarse,fine,tightness\na.png,,,{cell}\n", "utf-8")
    rep = import_labels(lib, photos / "l.csv")
    assert rep.applied == 0
    assert rep.errors[0]["reason"] == f"tightness {cell!r} is not a number"


@pytest.mark.parametrize(("cell", "value"), [("50", 50.0), ("55.", 55.0), ("1e-05", 1e-05)])
def test_plain_numbers_accepted(lib: Library, photos: Path, cell: str, value: float) -> None:
    (photos / "l.csv").write_text(f"path,coarse,fine,tightness\na.png,,,{cell}\n")
    assert import_labels(lib, photos / "l.csv").applied == 1
    assert lib.find_by_path(photos / "a.png").tightness == value


def test_export_escapes_formula_cells_and_round_trips(lib: Library, photos: Path) -> None:
    lib.add_categories(["=HYPERLINK(x)"], ["@SUM(1)"])
    for i, rec in enumerate(lib.images()):
        lib.set_labels([rec.id], coarse="=HYPERLINK(x)", fine="@SUM(1)", tightness=float(i))
    labelled = {str(r.path): (r.coarse, r.fine, r.tightness) for r in lib.images()}
    out = photos / "export.csv"
    assert export_labels(lib, out) == 6
    with open(out, newline="", encoding="utf-8") as fh:
        cells = [c for row in csv.reader(fh) for c in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert "'=cmd|' -c calc'!A0.png" in cells
    assert "''x.png" in cells  # the escape character itself is escaped
    for rec in lib.images():
        lib.set_labels([rec.id], coarse=None, fine=None, tightness=None)
    rep = import_labels(lib, out)
    assert (rep.applied, rep.errors) == (6, [])
    assert {str(r.path): (r.coarse, r.fine, r.tightness) for r in lib.images()} == labelled
