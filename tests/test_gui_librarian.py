# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""What a fabric librarian reaches for in the window (issue 15): facet filters on results, the
colour ↔ texture balance, a region of the query, the loupe, history, dragging and copying
results, label badges and sorting, labels CSV from the window."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QGuiApplication
from test_gui_support import (  # noqa: F401 - fixtures
    N_IMAGES,
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

from fabricsearch.gui.dropping import QueryInput

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def _query(rec) -> QueryInput:
    return QueryInput(name=rec.path.name, path=rec.path)


def search(window, qtbot, query: QueryInput, crop=None):
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.search(query, crop)
    return blocker.args[0]


@pytest.fixture
def searched(window, trained_library_path: Path, qtbot):
    assert open_library(window, trained_library_path)
    window.search_panel.k_spin.setValue(N_IMAGES)  # every image comes back: facets have work
    rec = window.browser.all_records()[5]
    outcome = search(window, qtbot, _query(rec))
    return rec, outcome


def test_facet_filters_narrow_the_results(window, searched, qtbot) -> None:
    rec, outcome = searched
    panel = window.search_panel
    total = len(outcome.result.hits)
    major = rec.coarse.split("/")[0]
    panel.facets.coarse_box.setCurrentIndex(panel.facets.coarse_box.findData(major))
    shown = panel.model.records()
    assert 0 < len(shown) < total
    assert all(r.coarse.startswith(major) for r in shown)
    assert f"{len(shown)} of {total} shown" == panel.shown_label.text()
    ranks = [h.rank for h in panel.model.hits()]
    assert ranks == sorted(ranks)  # still in rank order
    # The first shown result is selected and explained in the detail panel.
    assert window.detail.record.id == shown[0].id

    panel.facets.tight_min.setValue(40)
    panel.facets.tight_max.setValue(90)
    assert all(40 <= r.tightness <= 90 for r in panel.model.records())
    panel.facets.reset()
    colour = int(np.argmax(rec.palette[:, 3]))
    panel.facets.set_colour_index(colour)
    assert all(float(r.palette[colour, 3]) >= 0.05 for r in panel.model.records())
    assert rec.id in {r.id for r in panel.model.records()}
    labelled = panel.facets.labelled_box
    labelled.setCurrentIndex(labelled.findData("unlabelled"))
    assert panel.model.rowCount() == 0  # every image came labelled
    panel.facets.reset_button.click()
    assert panel.model.rowCount() == total
    assert panel.shown_label.text() == ""
    # Exports carry what is shown.
    panel.facets.coarse_box.setCurrentIndex(panel.facets.coarse_box.findData(major))
    out = window.searching.export_csv(window.settings.file_name + ".csv")
    with Path(out).open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == panel.model.rowCount()


def test_balance_slider_reranks_and_is_a_parameter_of_the_search(window, searched, qtbot) -> None:
    from fabricsearch.search import Searcher

    rec, outcome = searched
    assert outcome.request.balance == 0.5
    slider = window.search_panel.balance_slider
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        slider.setFocus()
        qtbot.keyClick(slider, Qt.Key.Key_Home)  # all the way to "texture"
    texture = blocker.args[0]
    assert texture.request.balance == 0.0
    expected = Searcher(window.library).search(rec.path, k=N_IMAGES, balance=0.0)
    assert [h.image_id for h in texture.result.hits] == [h.image_id for h in expected.hits]
    # Re-running with the new balance replaced the entry, it did not add one to the history.
    assert len(window.session.history) == 1
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        qtbot.keyClick(slider, Qt.Key.Key_End)
    colour = blocker.args[0]
    c = [h.breakdown["colour"] for h in colour.result.hits if not h.exact]
    assert c == sorted(c, reverse=True)


def test_drawing_a_rectangle_on_the_query_searches_that_region(window, searched, qtbot) -> None:
    rec, outcome = searched
    label = window.detail.query.image
    qtbot.waitUntil(lambda: not label.picture_rect().isEmpty(), timeout=5_000)
    assert outcome.original_size == (rec.width, rec.height)
    pic = label.picture_rect()
    # Drag over the right half of the shown picture.
    start = QPoint(int(pic.center().x()) + 1, int(pic.top()) + 1)
    end = QPoint(int(pic.right()) - 1, int(pic.bottom()) - 1)
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        qtbot.mousePress(label, Qt.MouseButton.LeftButton, pos=start)
        qtbot.mouseMove(label, end)
        qtbot.mouseRelease(label, Qt.MouseButton.LeftButton, pos=end)
    cropped = blocker.args[0]
    x, y, w, h = cropped.request.crop
    assert abs(x - rec.width // 2) <= 2
    assert y <= 2
    assert abs(w - rec.width // 2) <= 3
    assert abs(h - rec.height) <= 3
    assert not any(hit.exact for hit in cropped.result.hits)  # a region is not the file
    assert window.detail.whole_button.isVisibleTo(window)
    assert "region" in window.detail.query.extra.text()
    assert label.region == cropped.request.crop
    # A click is not a region; "Whole photo" searches with all of it again.
    qtbot.mouseClick(label, Qt.MouseButton.LeftButton, pos=start)
    assert window.searching.outcome is cropped
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.detail.whole_button.click()
    assert blocker.args[0].request.crop is None
    assert not window.detail.whole_button.isVisibleTo(window)


def test_loupe_compares_at_full_size_and_pans_together(window, searched, qtbot) -> None:
    from fabricsearch.imaging import load_rgb

    rec, _outcome = searched
    second = window.search_panel.model.hits()[1]
    window.search_panel.grid.select_ids([second.image_id])
    window.loupe_action.trigger()
    loupe = window.loupe
    assert loupe is not None
    assert loupe.isVisible()
    qtbot.waitUntil(loupe.ready, timeout=10_000)
    other = load_rgb(second.path)
    assert loupe.left.image.size().toTuple() == (rec.width, rec.height)
    assert loupe.right.image.size().toTuple() == (other.shape[1], other.shape[0])
    for pane in (loupe.left, loupe.right):  # small panes: the 64 px test photos overflow
        pane.setFixedSize(90, 90)
    loupe.zoom_buttons.button(2).click()
    assert loupe.zoom == 2
    pm = loupe.right.label.pixmap()
    dpr = pm.devicePixelRatio()
    assert round(pm.width() / dpr) == 2 * other.shape[1] // round(dpr)
    qtbot.waitUntil(lambda: loupe.left.horizontalScrollBar().maximum() > 0, timeout=5_000)
    loupe.left.horizontalScrollBar().setValue(17)
    loupe.left.verticalScrollBar().setValue(9)
    assert loupe.right.horizontalScrollBar().value() == 17
    assert loupe.right.verticalScrollBar().value() == 9
    # Selecting another result follows in the loupe.
    third = window.search_panel.model.hits()[2]
    window.search_panel.grid.select_ids([third.image_id])
    qtbot.waitUntil(lambda: third.path.name in loupe.right_title.text(), timeout=5_000)


def test_history_back_forward_and_recent_searches(window, trained_library_path, qtbot) -> None:
    assert open_library(window, trained_library_path)
    a, b = window.browser.all_records()[1], window.browser.all_records()[7]
    search(window, qtbot, _query(a))
    search(window, qtbot, _query(b))
    assert not window.forward_action.isEnabled()
    assert window.back_action.isEnabled()
    window.activateWindow()
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        qtbot.keyClick(window.search_panel.grid, Qt.Key.Key_Left, Qt.KeyboardModifier.AltModifier)
    assert blocker.args[0].query.path == a.path
    assert window.forward_action.isEnabled()
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        qtbot.keyClick(window.search_panel.grid, Qt.Key.Key_Right, Qt.KeyboardModifier.AltModifier)
    assert blocker.args[0].query.path == b.path
    # The recent searches, newest first, each with its thumbnail.
    actions = window.search_panel.recent_menu.actions()
    assert [x.text().split(" · ")[0] for x in actions] == [b.path.name, a.path.name]
    assert all(not x.icon().isNull() for x in actions)
    assert actions[0].isChecked()
    assert len(window.recent_searches_menu.actions()) == 2
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        actions[1].trigger()
    assert blocker.args[0].query.path == a.path
    assert len(window.session.history) == 2  # going to a past search adds none


def test_drag_out_copy_path_and_copy_image(window, searched, qtbot) -> None:
    _rec, _outcome = searched
    model = window.search_panel.model
    hits = model.hits()[:2]
    window.search_panel.grid.select_ids([h.image_id for h in hits])
    indexes = [model.index(model.row_of(h.image_id)) for h in hits]
    mime = model.mimeData(indexes)
    assert [Path(u.toLocalFile()) for u in mime.urls()] == [Path(h.path) for h in hits]
    assert model.flags(indexes[0]) & Qt.ItemFlag.ItemIsDragEnabled
    assert window.search_panel.grid.dragEnabled()
    paths = window.copy_paths()
    assert QGuiApplication.clipboard().text().splitlines() == paths == [str(h.path) for h in hits]
    QGuiApplication.clipboard().clear()
    window.copy_image_action.trigger()  # read in a worker; on the clipboard when it ends
    qtbot.waitUntil(lambda: not QGuiApplication.clipboard().image().isNull(), timeout=30_000)
    image = QGuiApplication.clipboard().image()
    assert image.width() == window.selected_records()[0].width


def test_badges_and_sorting_the_grid(window, library_path: Path, qtbot) -> None:
    from fabricsearch.gui.widgets.grid import BADGE_COLOURS, label_state

    assert open_library(window, library_path)
    browser = window.browser
    first = browser.visible_records()[0]
    browser.grid.select_ids([first.id])
    assert window.labelling.label_selection({"coarse": None, "fine": None, "tightness": None})
    states = {label_state(r) for r in browser.visible_records()}
    assert states == {"labelled", "unlabelled"}

    def has_colour(image, colour) -> bool:
        arr = image.convertToFormat(image.Format.Format_RGB888)
        w, h, stride = arr.width(), arr.height(), arr.bytesPerLine()
        buf = np.frombuffer(arr.constBits(), np.uint8, count=stride * h).reshape(h, stride)
        px = buf[:, : w * 3].reshape(h, w, 3).astype(int)
        target = np.array([colour.red(), colour.green(), colour.blue()])
        return bool((np.abs(px - target).sum(axis=2) < 30).any())

    grab = browser.grid.viewport().grab().toImage()
    assert has_colour(grab, BADGE_COLOURS["labelled"])
    assert has_colour(grab, BADGE_COLOURS["unlabelled"])

    browser.set_sort("name")
    names = [r.path.name.lower() for r in browser.visible_records()]
    assert names == sorted(names)
    browser.sort_box.setCurrentIndex(browser.sort_box.findData("label"))
    shown = browser.visible_records()
    assert shown[-1].id == first.id  # unlabelled last
    coarse = [r.coarse for r in shown[:-1]]
    assert coarse == sorted(coarse)
    browser.set_sort("colour")
    dominant = [int(np.argmax(r.palette[:, 3])) for r in browser.visible_records()]
    assert dominant == sorted(dominant)
    browser.set_sort("imported")
    assert [r.id for r in browser.visible_records()] == sorted(r.id for r in shown)
    # The selection survives a re-sort.
    assert browser.grid.selected_ids() == [first.id]


def test_labels_csv_export_and_import_from_the_window(
    window, library_path: Path, qtbot, tmp_path: Path
) -> None:
    assert open_library(window, library_path)
    out = tmp_path / "labels.csv"
    assert window.libraries.export_labels(out) == N_IMAGES
    with out.open(encoding="utf-8") as fh:
        assert len(list(csv.DictReader(fh))) == N_IMAGES
    target = window.browser.all_records()[3]
    edited = tmp_path / "edited.csv"
    edited.write_text(
        f"path,coarse,fine,tightness\n{target.path},,satin,33\n{tmp_path / 'nope.jpg'},,,\n",
        encoding="utf-8",
    )
    with qtbot.waitSignal(window.labelsImported, timeout=30_000) as blocker:
        window.libraries.import_labels(edited)
    assert blocker.args[0].applied == 1
    shown = window.browser.model.record(window.browser.model.row_of(target.id))
    assert (shown.fine, shown.tightness) == ("satin", 33.0)
    # A refused row: the labels report says how many rows were applied and refused, and why.
    report = window.libraries.labels_dialog
    assert "<b>1</b> rows applied, <b>1</b> refused" in report.headline.text()
    assert report.refused_groups_shown() == ["photo not in the library — 1 row"]


@pytest.mark.parametrize("accept", [True, False])
def test_labels_csv_in_an_imported_folder_is_offered(
    window, fabric_folder: Path, tmp_path: Path, qtbot, accept: bool
) -> None:
    assert open_library(window, tmp_path / "new", create=True)
    window.sink.answer = accept
    with qtbot.waitSignal(window.importEnded, timeout=120_000):
        window.libraries.import_folder(fabric_folder)
    assert any("labels.csv" in q for q in window.sink.questions)
    labelled = [r for r in window.browser.all_records() if r.labelled]
    assert len(window.browser.all_records()) == N_IMAGES
    assert len(labelled) == (N_IMAGES if accept else 0)


def test_suggested_labels_are_ghosts_until_accepted(
    window, trained_library_path: Path, qtbot
) -> None:
    from fabricsearch.catalogue import Library
    from fabricsearch.gui.models import SuggestionRole
    from fabricsearch.gui.widgets.grid import label_state

    with Library.open(trained_library_path) as lib:
        cleared = [r.id for r in lib.images()[:4]]
        lib.set_labels(cleared, coarse=None, fine=None, tightness=None)
    assert open_library(window, trained_library_path)
    qtbot.waitUntil(lambda: bool(window.suggesting.suggestions), timeout=60_000)
    suggestions = window.suggesting.suggestions
    assert set(suggestions) == set(cleared)  # every unlabelled image, none of the labelled
    browser = window.browser
    model = browser.model
    first = cleared[0]
    assert label_state(model.record(model.row_of(first)), suggestions[first]) == "suggested"
    assert model.index(model.row_of(first)).data(SuggestionRole) is suggestions[first]
    assert "suggested:" in model.tooltip(model.record(model.row_of(first)))

    # Ghost labels: shown for the selection, nothing written.
    browser.grid.select_ids([first])
    panel = window.label_panel
    assert panel.suggestion_label.isVisibleTo(window)
    assert panel.suggestion_label.text().startswith("Suggested: ")
    assert window.library.get(first).coarse is None

    # Enter accepts (one undo step); undo brings the ghost back.
    browser.grid.setFocus()
    qtbot.keyClick(browser.grid, Qt.Key.Key_Return)
    rec = window.library.get(first)
    assert rec.coarse == suggestions[first].coarse
    assert not panel.suggestion_label.isVisibleTo(window)
    assert window.undo_stack.text(window.undo_stack.count() - 1).startswith("accept suggestions")
    window.undo_action.trigger()
    assert window.library.get(first).coarse is None
    assert panel.suggestion_label.isVisibleTo(window)

    # Next unlabelled, least confident first (Shift+N); the grid sorts the same way.
    qtbot.keyClick(browser.grid, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    least = min(cleared, key=lambda i: (suggestions[i].confidence, i))
    assert browser.grid.selected_ids() == [least]
    browser.set_sort("confidence")
    order = [r.id for r in browser.visible_records()[: len(cleared)]]
    assert order == sorted(cleared, key=lambda i: (suggestions[i].confidence, i))

    # Shift+Enter: every selected image's suggestion at or above the chosen confidence.
    browser.grid.select_ids(cleared)
    assert panel.accept_all_button.isVisibleTo(window)
    threshold = sorted(s.confidence for s in suggestions.values())[1]
    panel.min_confidence.setValue(int(100 * threshold))
    browser.grid.setFocus()
    qtbot.keyClick(browser.grid, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    accepted = [i for i in cleared if window.library.get(i).coarse is not None]
    expected = [i for i in cleared if suggestions[i].confidence >= int(100 * threshold) / 100]
    assert sorted(accepted) == sorted(expected)
    assert 0 < len(accepted) < len(cleared) or len(expected) == len(cleared)


def test_fabric_record_edited_in_bulk_undoable_and_searched_by_text(
    window, trained_library_path: Path, qtbot
) -> None:
    assert open_library(window, trained_library_path)
    browser, panel = window.browser, window.metadata_panel
    records = browser.all_records()
    ids = [records[2].id, records[9].id, records[15].id]
    browser.grid.select_ids(ids)
    window.edit_tabs.setCurrentWidget(panel)
    supplier = panel.edits["supplier"]
    supplier.setFocus()
    qtbot.keyClicks(supplier, "Acme Mills")
    qtbot.keyClick(supplier, Qt.Key.Key_Return)
    meta = window.library.metadata(ids)
    assert {m.supplier for m in meta.values()} == {"Acme Mills"}
    assert window.undo_stack.text(window.undo_stack.count() - 1) == "supplier on 3 images"
    panel.set_field("weight", "280")
    assert window.library.metadata([ids[0]])[ids[0]].weight == 280.0

    # A value that does not fit is refused with the reason beside the form, the typed text
    # kept (issue 24); nothing is written.
    panel.set_field("width", "wide")
    assert "not a number" in panel.problem_label.text()
    assert panel.edits["width"].text() == "wide"
    assert window.library.metadata([ids[0]])[ids[0]].width is None

    # Mixed: one image with a supplier, one without.
    browser.grid.select_ids([ids[0], records[3].id])
    assert supplier.text() == ""
    assert supplier.placeholderText() == "(mixed)"

    # Undo / redo the weight, then the supplier.
    window.undo_action.trigger()
    assert window.library.metadata([ids[0]])[ids[0]].weight is None
    window.redo_action.trigger()
    assert window.library.metadata([ids[0]])[ids[0]].weight == 280.0

    # Text search over the records in the library grid.
    browser.text_edit.setFocus()
    qtbot.keyClicks(browser.text_edit, "supplier:acme")
    qtbot.keyClick(browser.text_edit, Qt.Key.Key_Return)
    assert sorted(r.id for r in browser.visible_records()) == sorted(ids)
    browser.text_edit.clear()
    assert len(browser.visible_records()) == len(records)

    # Combined with a photo: the top N are the best of the matching fabrics.
    window.search_panel.text_edit.setText("supplier:acme")
    outcome = search(window, qtbot, _query(records[0]))
    assert outcome.request.text == "supplier:acme"
    assert sorted(h.image_id for h in outcome.result.hits) == sorted(ids)
    assert "supplier:acme" in window.search_panel.recent_menu.actions()[0].text()
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.search_panel.text_edit.clear()
    assert len(blocker.args[0].result.hits) > len(ids)


def test_watched_folder_imports_photos_as_they_arrive(
    window, library_path: Path, fabric_folder: Path, tmp_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    window.watching.settle = 0.2
    window.watching.poll = True  # the polling observer: the same on every file system
    window.watch_action.trigger()
    dialog = window.last_dialog
    dialog.add_folder(inbox)
    dialog.accept()
    assert window.watching.running
    assert "Watching 1 folder" in window.watch_label.text()
    assert window.settings.watched_folders(window.library.folder) == [inbox.resolve()]

    from fabricsearch import synth

    # (A first batch may be the catch-up encode of the library's photos lacking codes.)
    with qtbot.waitSignal(
        window.watching.batchImported, timeout=60_000, check_params_cb=lambda b: b.added >= 1
    ) as blocker:
        synth.write_dataset(inbox, 2, seed=99, size=48)
    assert blocker.args[0].added >= 1
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == N_IMAGES + 2, timeout=30_000)
    paths = {r.path.parent.resolve() for r in window.browser.all_records()}
    assert any(p.is_relative_to(inbox.resolve()) for p in paths)

    # Reopening the library watches the same folders again.
    assert open_library(window, library_path)
    assert window.watching.running
    window.watching.set_folders([])
    assert not window.watching.running
    assert window.watch_label.text() == ""


def test_remove_from_library_and_relocate_a_moved_folder(
    window, fabric_folder: Path, tmp_path: Path, qtbot
) -> None:
    import shutil

    # A library of its own photos, so the test can move them.
    photos = tmp_path / "photos"
    shutil.copytree(fabric_folder, photos)
    assert open_library(window, tmp_path / "own", create=True)
    with qtbot.waitSignal(window.importEnded, timeout=120_000):
        window.libraries.import_folder(photos)
    browser = window.browser
    records = browser.all_records()
    assert len(records) == N_IMAGES

    # Remove asks first; "No" keeps everything; Delete on the grid removes the selection.
    gone = [records[0].id, records[1].id]
    browser.grid.select_ids(gone)
    window.sink.answer = False
    assert window.removal.remove_selected() is None
    assert window.library.count() == N_IMAGES
    window.sink.answer = True
    window.activateWindow()  # back from the import's progress dialog
    qtbot.waitUntil(window.isActiveWindow, timeout=5_000)
    browser.grid.setFocus()
    qtbot.keyClick(browser.grid, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: len(browser.all_records()) == N_IMAGES - 2, timeout=10_000)
    assert "Undo puts them back" in window.sink.questions[-1]
    assert records[0].path.exists()  # the file stays on disk
    assert not {r.id for r in browser.all_records()} & set(gone)

    # The photos' folder moves; relocating points the rows at the new place, labels kept.
    moved = tmp_path / "moved"
    shutil.move(str(photos), str(moved))
    target = browser.all_records()[0]
    old_folder = target.path.parent
    new_folder = moved / old_folder.relative_to(photos)
    with qtbot.waitSignal(window.libraries.recordsLoaded, timeout=60_000):
        window.libraries.relocate(old_folder, new_folder)
    qtbot.waitUntil(lambda: "now point into" in (window.sink.messages or [""])[-1], timeout=10_000)
    after = window.library.get(target.id)
    assert after.path == new_folder / target.path.name
    assert after.coarse == target.coarse
    shown = browser.model.record(browser.model.row_of(target.id))
    assert shown.path == after.path


def test_categories_renamed_merged_added_and_retired_undoably(
    window, library_path: Path, qtbot, monkeypatch
) -> None:
    from PySide6.QtWidgets import QInputDialog, QMessageBox

    assert open_library(window, library_path)
    window.taxonomy_action.trigger()
    dialog = window.last_dialog
    assert dialog.isVisible()
    tax = window.library.taxonomy
    plaid_name = tax.display_coarse("plaid")

    # Rename: the id stays, the name changes everywhere.
    assert dialog.select("coarse", "plaid")
    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("Checks", True))
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        dialog.rename_button.click()
    assert window.library.taxonomy.display_coarse("plaid") == "Checks"
    assert window.label_panel.major_box.findText("Checks", Qt.MatchFlag.MatchStartsWith) >= 0
    assert window.browser.coarse_box.findText("Checks") >= 0
    assert dialog.tree.currentItem().text(0) == "Checks"

    # Merge: every twill image becomes plain; twill is no longer offered.
    twill = [r.id for r in window.browser.all_records() if r.fine == "twill"]
    assert twill
    assert dialog.select("fine", "twill")
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("plain", True))
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        dialog.merge_button.click()
    assert {window.library.get(i).fine for i in twill} == {"plain"}
    assert window.label_panel.fine_box.findData("twill") < 0
    assert "twill" not in dialog.ids("fine")
    shown = window.browser.model.record(window.browser.model.row_of(twill[0]))
    assert shown.fine == "plain"

    # Add (a name, the id derived from it), then retire (labels cleared, after asking).
    assert dialog.select("fine", "plain")
    dialog.add_button.click()
    add = dialog.add_dialog
    assert add.kind() == "fine"
    add.name_edit.setText("Crêpe")
    assert add.category_id() == "crepe"
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        add.accept()
    assert window.library.taxonomy.fine_names["crepe"] == "Crêpe"
    assert window.label_panel.fine_box.findData("crepe") >= 0
    assert dialog.select("fine", "crepe")
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        dialog.retire_button.click()
    assert window.label_panel.fine_box.findData("crepe") < 0

    # Each edit is one undo step: undo the retire, the add, the merge, the rename.
    for _ in range(4):
        with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
            window.undo_action.trigger()
    assert {window.library.get(i).fine for i in twill} == {"twill"}
    assert window.library.taxonomy.display_coarse("plaid") == plaid_name
    assert window.label_panel.fine_box.findData("twill") >= 0
    # A refused edit says why and changes nothing.
    assert not window.categories.edit("fine", "merge", ("twill", "twill"))
    assert "cannot be merged into itself" in window.sink.messages[-1]


def test_results_csv_has_labels_as_they_are_now_and_the_fabric_record(
    window, searched, qtbot, tmp_path: Path
) -> None:
    _rec, _outcome = searched
    first = window.search_panel.model.hits()[0]
    window.search_panel.grid.select_ids([first.image_id])
    assert window.labelling.label_selection({"fine": "satin"})
    assert window.records.set_metadata({"supplier": "=Acme", "weight": 280})
    out = window.searching.export_csv(tmp_path / "results.csv")
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    row = next(r for r in rows if int(r["image_id"]) == first.image_id)
    assert row["fine"] == "satin"  # not the label it had when searched
    assert row["supplier"] == "'=Acme"  # formula-like cells escaped, as in every CSV export
    assert float(row["weight"]) == 280.0
