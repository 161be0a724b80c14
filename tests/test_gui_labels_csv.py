# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""Issue 24, driven as a librarian would: a labels CSV naming categories the library lacks
(alone or inside an imported folder) is grouped by missing category and imported after one
click; categories added by the CLI appear in the open window; Categories ▸ Add with the fine
heading selected adds a fine texture named by its name; the import report lists duplicates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from test_gui_support import (  # noqa: F401 - fixtures
    N_IMAGES,
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

pytestmark = pytest.mark.gui


def _record(window, image_id: int):
    return window.browser.model.record(window.browser.model.row_of(image_id))


def test_labels_csv_with_new_categories_is_imported_after_one_click(
    window, library_path: Path, qtbot, tmp_path: Path
) -> None:
    from fabricsearch.gui.dialogs.labels_report import LabelsReportDialog

    assert open_library(window, library_path)
    recs = window.browser.all_records()[:5]
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text(
        "path,coarse,fine,tightness\n"
        f"{recs[0].path},plaid,twill,40\n"
        f"{recs[1].path},banded/wide,,10\n"
        f"{recs[2].path},banded/wide,slub,\n"
        f"{recs[3].path},,slub,\n"
        f"{recs[4].path},plaid/madras,,\n"
        f"{tmp_path / 'nope.jpg'},plaid,,\n",
        encoding="utf-8",
    )
    with qtbot.waitSignal(window.labelsImported, timeout=30_000) as blocker:
        window.libraries.import_labels(csv_path)
    assert blocker.args[0].applied == 1
    dialog = window.libraries.labels_dialog
    assert isinstance(dialog, LabelsReportDialog)
    assert dialog in window.sink.dialogs
    # One line per missing category with its row count, at the CSV column's level; no
    # command-line advice.
    assert dialog.missing_lines_shown() == [
        "Coarse category: banded › wide (a new major too) — 2 rows",
        "Fine texture: slub — 2 rows",
        "Coarse category: Plaid / check › madras — 1 row",
    ]
    assert "--add-categories" not in " ".join(dialog.missing_lines_shown())
    assert dialog.missing_title.text() == "4 rows name categories this library lacks (3):"
    assert dialog.refused_groups_shown() == ["photo not in the library — 1 row"]
    assert "<b>1</b> rows applied, <b>5</b> refused" in dialog.headline.text()
    assert not dialog.add_button.isHidden()
    assert dialog.add_button.text() == "Add these 3 categories and import"

    with qtbot.waitSignal(window.labelsImported, timeout=30_000) as blocker:
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert blocker.args[0].applied == 4
    tax = window.library.taxonomy
    assert "banded" in tax.majors
    assert "banded/wide" in tax.minors
    assert "plaid/madras" in tax.minors
    assert "slub" in tax.fine
    assert "slub" not in tax.majors
    assert (_record(window, recs[2].id).coarse, _record(window, recs[2].id).fine) == (
        "banded/wide",
        "slub",
    )
    # The new categories are offered at once: filters and the labelling panel.
    assert window.browser.coarse_box.findData("banded/wide") >= 0
    assert window.label_panel.major_box.findData("banded") >= 0
    assert window.label_panel.fine_box.findData("slub") >= 0
    # The report now says what was applied and refused in all, and why.
    assert "<b>5</b> rows applied, <b>1</b> refused" in dialog.headline.text()
    assert "banded/wide" in dialog.headline.text()
    assert dialog.add_button.isHidden()
    assert dialog.refused_groups_shown() == ["photo not in the library — 1 row"]


def test_labels_csv_inside_an_imported_folder_is_not_refused_silently(
    window, fabric_folder: Path, tmp_path: Path, qtbot
) -> None:
    from fabricsearch.gui.dialogs.import_report import ImportReportDialog

    assert open_library(window, tmp_path / "new", create=True)
    src = tmp_path / "incoming"
    src.mkdir()
    photos = sorted(fabric_folder.glob("*/*.jpg"))[:3]
    for p in photos:
        shutil.copy(p, src / p.name)
    (src / "labels.csv").write_text(
        "path,coarse,fine,tightness\n"
        f"{photos[0].name},herringbone,,\n"
        f"{photos[1].name},herringbone,,\n"
        f"{photos[2].name},plaid,,\n",
        encoding="utf-8",
    )
    window.sink.answer = True  # "Apply its labels?" Yes
    with qtbot.waitSignal(window.importEnded, timeout=120_000):
        window.libraries.import_folder(src)
    assert any("labels.csv" in q for q in window.sink.questions)
    report = next(d for d in window.sink.dialogs if isinstance(d, ImportReportDialog))
    assert "labels.csv: <b>1</b> labels applied, <b>2</b> rows refused" in report.summary.text()
    dialog = window.libraries.labels_dialog
    assert dialog is not None
    assert dialog in window.sink.dialogs
    assert dialog.missing_lines_shown() == ["Coarse category: herringbone — 2 rows"]
    assert dialog.add_button.text() == "Add this 1 category and import"

    with qtbot.waitSignal(window.labelsImported, timeout=30_000):
        qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    assert "herringbone" in window.library.taxonomy.majors
    labelled = {Path(r.path).name: r.coarse for r in window.browser.all_records() if r.labelled}
    assert labelled == {
        photos[0].name: "herringbone",
        photos[1].name: "herringbone",
        photos[2].name: "plaid",
    }
    assert "<b>3</b> rows applied, <b>0</b> refused" in dialog.headline.text()


def test_categories_added_by_the_cli_appear_in_the_open_window(
    window, library_path: Path, qtbot
) -> None:
    from fabricsearch.cli import main

    assert open_library(window, library_path)
    window.libraries.watch_timer.setInterval(50)
    plaid = next(r for r in window.browser.all_records() if r.coarse == "plaid/tartan")
    window.browser.grid.select_ids([plaid.id])
    window.browser.coarse_box.setCurrentIndex(window.browser.coarse_box.findData("plaid"))
    shown = len(window.browser.visible_records())
    assert window.label_panel.major_box.findData("banded") < 0

    assert main(["taxonomy", "add", str(library_path), "coarse", "banded/wide"]) == 0
    assert main(["taxonomy", "add", str(library_path), "fine", "slub", "--name", "Slub"]) == 0
    qtbot.waitUntil(lambda: window.label_panel.fine_box.findData("slub") >= 0, timeout=10_000)
    assert window.label_panel.major_box.findData("banded") >= 0
    assert window.browser.coarse_box.findData("banded/wide") >= 0
    assert window.search_panel.facets.coarse_box.findData("banded/wide") >= 0
    # The filter and the selection's labels stay as they were.
    assert window.browser.coarse_box.currentData() == "plaid"
    assert len(window.browser.visible_records()) == shown
    assert window.label_panel.major_box.currentData() == "plaid"
    assert "Categories changed outside" in window.statusBar().currentMessage()
    assert window.label_panel.minor_box.currentData() == "plaid/tartan"
    # Labelling with the new category from the panel works at once.
    window.label_panel.label_major("banded")
    qtbot.waitUntil(lambda: window.label_panel.minor_box.findData("banded/wide") >= 0)
    assert window.library.get(plaid.id).coarse == "banded"


def test_add_category_under_the_fine_heading_adds_a_named_fine_texture(
    window, library_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    window.taxonomy_action.trigger()
    dialog = window.categories.dialog_
    qtbot.waitExposed(dialog)
    fine_heading = dialog.tree.topLevelItem(1)
    assert fine_heading.text(0) == "Fine textures"
    rect = dialog.tree.visualItemRect(fine_heading)
    qtbot.mouseClick(dialog.tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert dialog.tree.currentItem() is fine_heading
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    add = dialog.add_dialog
    qtbot.waitExposed(add)
    assert add.kind() == "fine"
    qtbot.keyClicks(add.name_edit, "Slub yarn")
    assert add.id_edit.text() == "slub-yarn"
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        qtbot.keyClick(add.name_edit, Qt.Key.Key_Return)
    tax = window.library.taxonomy
    assert "slub-yarn" in tax.fine
    assert tax.fine_names["slub-yarn"] == "Slub yarn"
    assert "slub-yarn" not in tax.majors
    assert window.label_panel.fine_box.findText("Slub yarn", Qt.MatchFlag.MatchStartsWith) >= 0

    # A major selected: the new category goes under it, as a minor, with its own name.
    assert dialog.select("coarse", "plaid")
    qtbot.mouseClick(dialog.add_button, Qt.MouseButton.LeftButton)
    add = dialog.add_dialog
    assert add.kind() == "coarse"
    qtbot.keyClicks(add.name_edit, "Madras check")
    assert add.category_id() == "plaid/madras-check"
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        add.accept()
    assert window.library.taxonomy.minor_names["plaid/madras-check"] == "Madras check"


def test_import_report_lists_the_duplicates(
    window, library_path: Path, qtbot, tmp_path: Path
) -> None:
    from fabricsearch.gui.dialogs.import_report import ImportReportDialog

    assert open_library(window, library_path)
    originals = window.browser.all_records()[:2]
    src = tmp_path / "copies"
    src.mkdir()
    for i, rec in enumerate(originals):
        shutil.copy(rec.path, src / f"copy{i}.jpg")
    with qtbot.waitSignal(window.importEnded, timeout=120_000):
        window.libraries.import_folder(src)
    dialog = window.last_dialog
    assert isinstance(dialog, ImportReportDialog)
    assert "2 duplicates" in dialog.summary.text()
    assert not dialog.duplicates_button.isHidden()
    assert dialog.duplicates.isHidden()  # details behind the button
    dialog.duplicates_button.click()
    assert not dialog.duplicates.isHidden()
    assert dialog.duplicates_button.text() == "Hide the 2 duplicates"
    pairs = {Path(a).name: Path(b) for a, b in dialog.duplicate_pairs()}
    assert pairs == {"copy0.jpg": originals[0].path, "copy1.jpg": originals[1].path}
    assert window.browser.model.rowCount() == N_IMAGES
