"""Labels CSV: validation with line numbers, all-or-nothing per row, categories, round trip."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.labels_csv import LabelsCsvError, export_labels, import_labels
from fabricsearch.cli import main as cli_main


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    """A library with five catalogued (not real) images under tmp_path/photos."""
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    with Library.create(tmp_path / "lib") as lib:
        with lib.atomic():
            for i in range(5):
                path = photos / ("sub" if i >= 3 else "") / f"f{i}.jpg"
                path.write_bytes(b"x")
                sha = hashlib.sha256(str(i).encode()).hexdigest()
                lib.add_image(str(path.resolve()), sha, 1, 1.0, 8, 8, np.zeros((10, 4)))
        yield lib


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def labels_of(lib: Library) -> dict[str, tuple]:
    return {r.path.name: (r.coarse, r.fine, r.tightness) for r in lib.images() if r.labelled}


def test_good_rows_applied_bad_rows_reported_by_line(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    csv = write_csv(
        photos / "labels.csv",
        "path,coarse,fine,tightness\n"
        "f0.jpg,plaid/tartan,twill,40\n"  # line 2: good
        "f1.jpg,plaid/nonsense,twill,40\n"  # 3: unknown minor
        "missing.jpg,solid,,\n"  # 4: not in library
        "f2.jpg,solid,,101\n"  # 5: tightness out of range
        "\n"  # blank line skipped
        f"{(photos / 'sub' / 'f3.jpg').resolve()},stripe,,0\n"  # 7: absolute path, major only
        "sub/f4.jpg,,velvetish,\n"  # 8: unknown fine
        "f2.jpg,solid,,abc\n"  # 9: not a number
        "f0.jpg,solid,,\n"  # 10: repeated path
        "f1.jpg,,,100\n",  # 11: good: only tightness
    )
    rep = import_labels(lib, csv)
    assert rep.applied == 3
    reasons = {e["line"]: e["reason"] for e in rep.errors}
    assert sorted(reasons) == [3, 4, 5, 8, 9, 10]
    assert "unknown coarse category 'plaid/nonsense'" in reasons[3]
    assert "image not in the library" in reasons[4]
    assert "outside 0–100" in reasons[5]
    assert "unknown fine texture 'velvetish'" in reasons[8]
    assert "not a number" in reasons[9]
    assert "already labelled on line 2" in reasons[10]
    assert labels_of(lib) == {
        "f0.jpg": ("plaid/tartan", "twill", 40.0),
        "f3.jpg": ("stripe", None, 0.0),
        "f1.jpg": (None, None, 100.0),
    }
    assert lib.get(lib.find_by_path(photos / "f0.jpg").id).labelled_by == "csv:labels.csv"


def test_add_categories(lib: Library, tmp_path: Path) -> None:
    csv = write_csv(
        tmp_path / "photos" / "l.csv",
        "path,coarse,fine,tightness\nf0.jpg,pattern/bubbly,leno,\nf1.jpg,velvet,,\n",
    )
    rep = import_labels(lib, csv)
    assert rep.applied == 0
    assert len(rep.errors) == 2
    assert "pattern/bubbly" not in lib.taxonomy.minors  # nothing of a rejected row written
    rep = import_labels(lib, csv, add_categories=True)
    assert rep.applied == 2
    assert rep.errors == []
    assert rep.added_categories == ["pattern/bubbly", "velvet", "leno"]
    assert "pattern/bubbly" in lib.taxonomy.minors
    assert labels_of(lib) == {
        "f0.jpg": ("pattern/bubbly", "leno", None),
        "f1.jpg": ("velvet", None, None),
    }


@pytest.mark.parametrize(
    "header", ["path,coarse,fine", "file,coarse,fine,tightness", "path,coarse,fine,tightness,extra"]
)
def test_wrong_columns_clear_message(lib: Library, tmp_path: Path, header: str) -> None:
    csv = write_csv(tmp_path / "bad.csv", header + "\nf0.jpg,solid,,\n")
    with pytest.raises(LabelsCsvError, match="expected columns path,coarse,fine,tightness"):
        import_labels(lib, csv)
    assert labels_of(lib) == {}


def test_empty_and_binary_csv(lib: Library, tmp_path: Path) -> None:
    with pytest.raises(LabelsCsvError, match="empty"):
        import_labels(lib, write_csv(tmp_path / "e.csv", ""))
    (tmp_path / "b.csv").write_bytes(b"\xff\xfe\x00\x00garbage\x80")
    with pytest.raises(LabelsCsvError, match="not a UTF-8"):
        import_labels(lib, tmp_path / "b.csv")


def test_column_order_free_and_bom(lib: Library, tmp_path: Path) -> None:
    csv = tmp_path / "photos" / "o.csv"
    csv.write_bytes("\ufefftightness,fine,coarse,path\n12.5,satin,solid/melange,f2.jpg\n".encode())
    assert import_labels(lib, csv).applied == 1
    assert labels_of(lib) == {"f2.jpg": ("solid/melange", "satin", 12.5)}


def test_round_trip_export_import(lib: Library, tmp_path: Path) -> None:
    ids = lib.image_ids()
    lib.add_categories(["pattern/bubbly"])
    lib.set_labels([ids[0]], coarse="plaid/tartan", fine="twill", tightness=33.3)
    lib.set_labels([ids[1]], coarse="pattern/bubbly")
    lib.set_labels([ids[3]], tightness=0.1 + 0.2)  # not representable in few digits
    lib.set_labels([ids[4]], fine="knit", tightness=100.0)
    before = labels_of(lib)
    out = tmp_path / "photos" / "export.csv"
    assert export_labels(lib, out) == 4
    text = out.read_text()
    assert text.splitlines()[0] == "path,coarse,fine,tightness"
    assert "sub/f3.jpg" in text  # relative to the CSV's folder

    # Into a fresh library holding the same files: identical labels.
    with Library.create(tmp_path / "lib2") as lib2:
        with lib2.atomic():
            for r in lib.images():
                lib2.add_image(str(r.path), r.sha256, 1, 1.0, 8, 8, r.palette)
        rep = import_labels(lib2, out, add_categories=True)
        assert rep.errors == []
        assert labels_of(lib2) == before
    # Clearing and re-applying in the same library too.
    lib.set_labels(ids, coarse=None, fine=None, tightness=None)
    assert labels_of(lib) == {}
    import_labels(lib, out)
    assert labels_of(lib) == before
    # Exported elsewhere: absolute paths, still round-trips.
    other = tmp_path / "elsewhere" / "x.csv"
    other.parent.mkdir()
    export_labels(lib, other)
    assert str(tmp_path.resolve()) in other.read_text()
    lib.set_labels(ids, coarse=None, fine=None, tightness=None)
    import_labels(lib, other)
    assert labels_of(lib) == before


def test_cli_labels_import_export(
    lib: Library, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib_dir = str(lib.folder)
    lib.close()
    csv = write_csv(
        tmp_path / "photos" / "l.csv",
        "path,coarse,fine,tightness\nf0.jpg,pattern/bubbly,,\nf1.jpg,solid,,200\n",
    )
    assert cli_main(["labels", "import", lib_dir, str(csv)]) == 1
    out = capsys.readouterr().out
    assert "line 2" in out
    assert "line 3" in out
    assert cli_main(["labels", "import", lib_dir, str(csv), "--add-categories", "--json"]) == 1
    assert '"applied": 1' in capsys.readouterr().out
    exported = tmp_path / "photos" / "out.csv"
    assert cli_main(["labels", "export", lib_dir, str(exported)]) == 0
    assert exported.read_text().splitlines() == [
        "path,coarse,fine,tightness",
        "f0.jpg,pattern/bubbly,,",
    ]
    bad = write_csv(tmp_path / "bad.csv", "a,b\n")
    assert cli_main(["labels", "import", lib_dir, str(bad)]) == 1
    assert "expected columns" in capsys.readouterr().err


def test_cli_labels_import_groups_refused_rows(
    lib: Library, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Many rows naming one missing category read as one line with its row count and a few
    of its rows, not one line per row; other refusals are grouped by their rule."""
    lib_dir = str(lib.folder)
    paths = [str(r.path) for r in lib.images()]
    n = len(paths)
    lib.close()
    body = "".join(f"{p},pattern/slubby,,\n" for p in paths) + "nope.jpg,solid,,\n"
    csv = write_csv(tmp_path / "photos" / "g.csv", "path,coarse,fine,tightness\n" + body)
    assert cli_main(["labels", "import", lib_dir, str(csv)]) == 1
    out = capsys.readouterr().out
    assert f"{n} rows name categories this library lacks" in out
    assert f"coarse category pattern/slubby: {n} rows" in out
    assert "--add-categories" in out
    assert out.count("pattern/slubby") == 1  # one line for the category, not one per row
    assert f"line 2: {paths[0]}" in out
    if n > 3:
        assert f"… and {n - 3} more" in out
    assert "nope.jpg" in out  # the photo that is not in the library, in its own group
