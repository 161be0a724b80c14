# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""Issue 23: the library grid filters and sorts on columns, never on every record; the
columns give the same rows as the per-record filters, and the grid reads records by page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

from fabricsearch.catalogue import Library
from fabricsearch.colour import COLOUR_NAMES
from fabricsearch.gui.browse_columns import BrowseColumns
from fabricsearch.gui.dialogs.taxonomy_dialog import label_counts
from fabricsearch.gui.widgets.facets import BrowseFilter, filter_records

pytestmark = pytest.mark.gui


def test_columns_filter_as_the_records_do(library_path: Path) -> None:
    with Library.open(library_path) as lib:
        records = lib.images()
        lib.set_labels([records[0].id], coarse=None, fine=None, tightness=None)
        records = lib.images()
        cols = BrowseColumns.load(lib)
    assert cols.ids.tolist() == [r.id for r in records]
    assert cols.labelled.tolist() == [r.labelled for r in records]
    coarse = next(r.coarse for r in records if r.coarse)
    fine = next(r.fine for r in records if r.fine)
    dominant = COLOUR_NAMES[int(np.argmax(records[3].palette[:, 3]))]
    for f in (
        BrowseFilter(),
        BrowseFilter(labelled=False),
        BrowseFilter(labelled=True),
        BrowseFilter(coarse=coarse.split("/")[0]),
        BrowseFilter(coarse=coarse),
        BrowseFilter(fine=fine),
        BrowseFilter(tightness_min=30, tightness_max=70),
        BrowseFilter(colour=dominant),
        BrowseFilter(colour=dominant, labelled=True, tightness_min=10),
    ):
        colour_i = COLOUR_NAMES.index(f.colour) if f.colour else None
        expected = [r.id for r in filter_records(records, f)]
        assert cols.ids[cols.mask(f, colour_i)].tolist() == expected, f
    assert cols.label_counts() == label_counts(records)
    # The same columns from records (the browser's set_records) agree.
    again = BrowseColumns.from_records(records)
    assert again.label_counts() == cols.label_counts()
    assert np.array_equal(again.content, cols.content)


def test_changed_since_finds_labels_content_and_removals(library_path: Path) -> None:
    with Library.open(library_path) as lib:
        ids = lib.image_ids()
        before = BrowseColumns.load(lib)
        lib.set_labels([ids[2]], fine="satin")
        lib.set_labels([ids[5]], tightness=12.0)
        lib.remove_images([ids[7]])
        after = BrowseColumns.load(lib)
    assert after.changed_since(before) == [ids[2], ids[5], ids[7]]
    assert after.changed_since(after) == []


def test_the_grid_reads_records_by_page(window, library_path: Path, qtbot, monkeypatch) -> None:
    from fabricsearch.gui.models import LibraryModel

    monkeypatch.setattr(LibraryModel, "PAGE", 5)
    assert open_library(window, library_path)
    model = window.browser.model
    model.forget()
    reads: list[list[int]] = []
    fetch = model.fetch
    model.fetch = lambda ids: reads.append(list(ids)) or fetch(ids)
    rec = model.record(7)
    assert rec is not None
    assert rec.id == int(model.ids()[7])
    assert reads == [[int(i) for i in model.ids()[5:10]]]  # its page, once
    assert model.record(8).id == int(model.ids()[8])
    assert len(reads) == 1
    assert model.row_of(rec.id) == 7
    # Sorted by name: the file names are read once (not a record per image).
    window.browser.set_sort("name")
    names = [r.path.name.lower() for r in window.browser.visible_records()]
    assert names == sorted(names)
    assert window.browser.count_labelled() == sum(r.labelled for r in window.browser.all_records())


def test_the_retrain_dialog_counts_without_every_record(
    window, library_path: Path, qtbot, monkeypatch
) -> None:
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog, new_labelled_count

    assert open_library(window, library_path)
    records = window.browser.all_records()
    monkeypatch.setattr(Library, "images", lambda *a, **k: pytest.fail("records read"))
    window.training.retrain_dialog()
    dialog = window.runner.last_dialog
    assert isinstance(dialog, TrainOptionsDialog)
    assert (dialog.images, dialog.labelled) == (len(records), sum(r.labelled for r in records))
    dialog.reject()
    from fabricsearch.gui.controllers.training import label_rows

    rows = label_rows(window.library, len(records))
    older = type("M", (), {"created": min(r.labelled_at or 0 for r in records if r.labelled)})
    assert new_labelled_count(rows, older) == new_labelled_count(records, older)
