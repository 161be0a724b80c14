"""Labels and metadata CSVs that cannot be read as such are refused by line with a clear
message (core error type; the CLI prints it, exit 1, no traceback) and change nothing: NUL
bytes, pipes and devices, oversized files and cells, unclosed quotes that swallow rows, short
rows; absurd numbers are refused per row."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library, labels_csv
from fabricsearch.catalogue.labels_csv import LabelsCsvError, import_labels
from fabricsearch.catalogue.metadata import MetadataError
from fabricsearch.catalogue.metadata_csv import MetadataCsvError, import_metadata
from fabricsearch.cli import main as cli_main
from tests.records_helpers import fake_library, ids_by_name

NAMES = ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "f.jpg"]
LABELS_HEADER = "path,coarse,fine,tightness\n"


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    with fake_library(tmp_path, NAMES) as lib:
        yield lib


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8", newline="")
    return path


def unchanged(lib: Library) -> bool:
    return not any(r.labelled for r in lib.images()) and lib.metadata_count() == 0


def cli(lib: Library, *args: str) -> int:
    lib.close()
    return cli_main([args[0], "import", str(lib.folder), *args[1:]])


@pytest.mark.parametrize("kind", ["labels", "meta"])
def test_nul_byte_refused_with_its_line(lib: Library, tmp_path: Path, kind: str, capsys) -> None:
    header = LABELS_HEADER if kind == "labels" else "path,notes\n"
    cell = ",solid,," if kind == "labels" else ",x"
    csv = write(tmp_path / "photos" / "n.csv", f"{header}a.jpg{cell}\nb\0.jpg{cell}\n")
    error = LabelsCsvError if kind == "labels" else MetadataCsvError
    do = import_labels if kind == "labels" else import_metadata
    with pytest.raises(error, match="line 3: holds a NUL byte"):
        do(lib, csv)
    assert unchanged(lib)
    assert cli(lib, kind, str(csv)) == 1
    err = capsys.readouterr().err
    assert "NUL byte" in err
    assert "Traceback" not in err


def test_devices_folders_and_pipes_refused_without_waiting(lib: Library, tmp_path: Path) -> None:
    if os.path.exists("/dev/null"):  # a device, as /dev/zero (which would fill the memory)
        with pytest.raises(LabelsCsvError, match="not a regular file"):
            import_labels(lib, "/dev/null")
    with pytest.raises(MetadataCsvError, match="is a folder"):
        import_metadata(lib, tmp_path / "photos")
    if not hasattr(os, "mkfifo"):
        return
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    errors: list[Exception] = []

    def run() -> None:
        try:
            import_labels(lib, fifo)
        except Exception as exc:  # noqa: BLE001 - looked at below
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "import_labels waited on a FIFO"
    assert "not a regular file" in str(errors[0])


def test_size_and_cell_bounds(lib: Library, tmp_path: Path, monkeypatch, capsys) -> None:
    big = write(tmp_path / "photos" / "big.csv", LABELS_HEADER + "a.jpg,solid,,\n" * 20)
    monkeypatch.setattr(labels_csv, "MAX_CSV_BYTES", 100)
    with pytest.raises(LabelsCsvError, match="larger than"):
        import_labels(lib, big)
    monkeypatch.undo()
    huge = write(tmp_path / "photos" / "huge.csv", f"path,notes\na.jpg,x\nb.jpg,{'x' * 200_000}\n")
    with pytest.raises(MetadataCsvError, match="line 3: .*field limit"):
        import_metadata(lib, huge)
    assert unchanged(lib)


def test_unclosed_quote_does_not_swallow_rows(lib: Library, tmp_path: Path, capsys) -> None:
    photos = tmp_path / "photos"
    # The note on line 2 is closed only on line 5: rows b–d were taken into it.
    meta = write(
        photos / "m.csv",
        'path,article,notes\na.jpg,A,"unclosed note\nb.jpg,B,x\nc.jpg,C,y\nd.jpg,D,z"\n'
        "e.jpg,E,w\nf.jpg,F,v\n",
    )
    with pytest.raises(MetadataCsvError, match="line 2: a quoted cell runs on to line 5.*b.jpg"):
        import_metadata(lib, meta)
    # A quote never closed, or one followed by more text: reported on the line it opens.
    never = write(photos / "e.csv", 'path,notes\na.jpg,ok\nb.jpg,"open\nc.jpg,x\n')
    with pytest.raises(MetadataCsvError, match="line 3: .*closing quote"):
        import_metadata(lib, never)
    labels = write(
        photos / "l.csv",
        LABELS_HEADER + 'a.jpg,solid,"plain,\nb.jpg,solid,,\nc.jpg,solid,plain",\nd.jpg,solid,,\n',
    )
    with pytest.raises(LabelsCsvError, match="line 2: a quoted cell runs on to line 4"):
        import_labels(lib, labels)
    assert unchanged(lib)
    assert cli(lib, "meta", str(meta)) == 1
    err = capsys.readouterr().err
    assert "closing quote missing" in err
    assert "Traceback" not in err
    with Library.open(lib.folder) as again:
        assert unchanged(again)
        # A real note over several lines (as export writes it) still imports.
        note = "line one\nline two, and more\nsee b.jpg"
        ok = write(photos / "ok.csv", f'path,notes\na.jpg,"{note}"\n')
        assert import_metadata(again, ok).applied == 1
        assert again.metadata()[ids_by_name(again)["a.jpg"]].notes == note


def test_short_row_with_path_not_first(lib: Library, tmp_path: Path, capsys) -> None:
    csv = write(tmp_path / "photos" / "s.csv", "article,path\nA\nB,b.jpg\n")
    rep = import_metadata(lib, csv)
    assert rep.applied == 1
    assert rep.errors == [{"line": 2, "path": "", "reason": "1 cells, expected 2"}]
    assert cli(lib, "meta", str(csv)) == 1
    assert "line 2: : 1 cells, expected 2" in capsys.readouterr().out


def test_absurd_numbers_refused(lib: Library, tmp_path: Path) -> None:
    a = ids_by_name(lib)["a.jpg"]
    for value in ("1e308", 1e308, 10**400):
        with pytest.raises(MetadataError, match="price: .* is more than"):
            lib.set_metadata([a], {"price": value})
    lib.set_metadata([a], {"price": 25_000_000})  # a price in any currency
    csv = write(tmp_path / "photos" / "p.csv", "path,price,weight\nb.jpg,1e308,\nc.jpg,,1e9\n")
    rep = import_metadata(lib, csv)
    assert rep.applied == 0
    assert [(e["line"], e["reason"]) for e in rep.errors] == [
        (2, "price: 1e+308 is more than 1e+12"),
        (3, "weight: 1e+09 is more than 100000 g/m²"),
    ]
