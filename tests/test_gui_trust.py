# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI: nothing lost, nothing misleading (issue 17).

A window that survives thousands of selections (PySide6's None reference leak), tightness
edits that are all saved, "mixed" where the selection differs, selection drawn beside the
pixels and never over them, no stale results after a library switch or a failed search."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import QApplication, QComboBox
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    wait_records,
    window,
)

from fabricsearch.catalogue import Library

pytestmark = pytest.mark.gui

BIG_LIBRARY = 2000


def none_refs() -> int:
    return sys.getrefcount(None)


# --- item 1: the None reference leak ---------------------------------------------------------
def test_installed_pyside_keeps_its_references_to_none(qtbot) -> None:
    """PySide6 6.12.0 loses a reference to None per call; Python aborts when none are left."""
    from fabricsearch.gui.qtcheck import PROBE_CALLS, none_references_dropped, pyside_problem

    assert none_references_dropped() < PROBE_CALLS // 2
    assert pyside_problem() is None
    box = QComboBox()
    qtbot.addWidget(box)
    box.addItem("a", "x")
    before = none_refs()
    for _ in range(200):
        box.setEnabled(True)  # a method that returns nothing
        box.currentData()
    assert before - none_refs() < 20


def combo_boxes_with_none(widget) -> list[str]:
    found = []
    for box in widget.findChildren(QComboBox):
        for i in range(box.count()):
            if box.itemData(i) is None:
                found.append(f"{box.toolTip() or box.objectName() or box}: {box.itemText(i)!r}")
    return found


def test_no_combo_box_stores_none(window, library_path: Path) -> None:
    """Item data None is what PySide6 6.12.0 leaks on: the window never stores it."""
    from fabricsearch.gui.dialogs.train_dialog import TrainOptionsDialog

    assert open_library(window, library_path)
    window.browser.grid.select_ids([window.browser.visible_records()[0].id])
    assert combo_boxes_with_none(window) == []
    dialog = TrainOptionsDialog(window.browser.all_records(), None, window.training.base_config())
    assert combo_boxes_with_none(dialog) == []
    dialog.deleteLater()


def test_reading_the_filters_and_labels_keeps_none_references(window, library_path: Path) -> None:
    assert open_library(window, library_path)
    browser, panel = window.browser, window.label_panel
    records = browser.visible_records()
    panel.set_selection(records[:3])
    browser.current_filter()  # first calls may fill caches
    before = none_refs()
    for i in range(300):
        f = browser.current_filter()
        panel.set_selection(records[i % 5 : i % 5 + 2])
        panel.current_major()
    assert f.coarse is None
    assert f.labelled is None
    assert before - none_refs() < 20


@pytest.fixture(scope="session")
def big_library_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A library of 2,000 tiny images (rows written directly: an import would take minutes)."""
    import cv2

    from fabricsearch import imaging

    root = tmp_path_factory.mktemp("biglib")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    colours = rng.integers(0, 256, size=(16, 3), dtype=np.uint8)
    thumbs = [imaging.thumbnail_jpeg(np.full((8, 8, 3), c, dtype=np.uint8), 512) for c in colours]
    folder = root / "lib"
    with Library.create(folder) as lib:
        tax = lib.taxonomy
        with lib.atomic():
            for i in range(BIG_LIBRARY):
                path = photos / f"fabric-{i:05d}.png"
                c = colours[i % len(colours)]
                cv2.imwrite(str(path), np.full((8, 8, 3), c[::-1], dtype=np.uint8))
                sha = f"{i:064x}"
                palette = np.zeros((10, 4), dtype=np.float32)
                palette[i % 10] = (0.5, 0.5, 0.5, 1.0)
                lib.add_image(str(path), sha, path.stat().st_size, 0.0, 8, 8, palette)
                lib.write_thumbnail(sha, 512, thumbs[i % len(thumbs)])
        ids = lib.image_ids()
        lib.set_labels(ids[::3], coarse=tax.majors[0], tightness=40.0)
        lib.set_labels(ids[1::3], fine=tax.fine[0])
    return folder


def test_selection_moves_through_2000_thumbnails(
    window, big_library_template: Path, tmp_path: Path, qtbot
) -> None:
    """The window aborted after about 220 selections with PySide6 6.12.0."""
    import shutil

    folder = tmp_path / "big"
    shutil.copytree(big_library_template, folder)
    assert open_library(window, folder)
    grid, model = window.browser.grid, window.browser.model
    assert model.rowCount() == BIG_LIBRARY
    grid.setFocus()
    grid.setCurrentIndex(model.index(0))
    before = none_refs()
    for row in range(1, BIG_LIBRARY):
        qtbot.keyClick(grid, Qt.Key.Key_Right)
        if row % 100 == 0:
            QApplication.processEvents()  # paint and thumbnails, as a user would see them
            assert grid.currentIndex().row() == row
            assert before - none_refs() < 50, f"references to None lost by selection {row}"
    last = model.record(BIG_LIBRARY - 1)
    assert grid.selected_ids() == [last.id]
    assert window.label_panel.selection_label.text() == "1 image selected"
    qtbot.waitUntil(lambda: window.detail.record is not None and window.detail.record.id == last.id)
    assert before - none_refs() < 50


# --- item 8: tightness edits are all saved ---------------------------------------------------
def tightness_of(window, ids: list[int]) -> list[float | None]:
    return [r.tightness for r in window.library.images(ids)]


def test_tightness_slider_track_click_and_arrow_keys_are_saved(
    window, library_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    rec = window.browser.visible_records()[0]
    window.browser.grid.select_ids([rec.id])
    slider, spin = window.label_panel.tight_slider, window.label_panel.tight_spin
    start = slider.value()
    steps = window.undo_stack.count()

    # A click on the track, away from the handle: a page step towards the click.
    far_right = QPoint(slider.width() - 3, slider.height() // 2)
    qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=far_right)
    assert slider.value() > start
    assert tightness_of(window, [rec.id]) == [float(slider.value())]
    assert window.undo_stack.count() == steps + 1

    slider.setFocus()
    value = slider.value()
    qtbot.keyClick(slider, Qt.Key.Key_Left)
    assert slider.value() == value - 1
    assert tightness_of(window, [rec.id]) == [float(value - 1)]
    assert spin.value() == value - 1

    # The spin box's arrows too.
    spin.stepBy(2)
    assert tightness_of(window, [rec.id]) == [float(value + 1)]

    # A drag is one edit, saved when the handle is released.
    steps = window.undo_stack.count()
    slider.setSliderDown(True)
    for v in (20, 21, 22):
        slider.setValue(v)
    assert tightness_of(window, [rec.id]) == [float(value + 1)]
    slider.setSliderDown(False)
    slider.sliderReleased.emit()
    assert tightness_of(window, [rec.id]) == [22.0]
    assert window.undo_stack.count() == steps + 1
    window.undo_action.trigger()
    assert tightness_of(window, [rec.id]) == [float(value + 1)]


def test_mixed_tightness_shows_mixed_and_brackets_step_each_image(
    window, library_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    ids = [r.id for r in window.browser.visible_records()[:3]]
    window.library.set_labels(ids[:1], tightness=20.0)
    window.library.set_labels(ids[1:2], tightness=70.0)
    window.library.set_labels(ids[2:], tightness=None)
    window.libraries.reload_records()
    wait_records(window)
    window.browser.grid.select_ids(ids)
    panel = window.label_panel
    assert panel.tight_spin.text() == "mixed"
    assert "50" not in panel.tight_spin.text()
    assert "20–70" in panel.tight_spin.toolTip()

    window.browser.grid.setFocus()
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_BracketRight)
    assert tightness_of(window, ids) == [25.0, 75.0, 55.0]  # unknown starts from 50
    assert panel.tight_spin.text() == "mixed"
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_BracketLeft)
    assert tightness_of(window, ids) == [15.0, 65.0, 45.0]
    window.undo_action.trigger()
    window.undo_action.trigger()
    window.undo_action.trigger()
    assert tightness_of(window, ids) == [20.0, 70.0, None]

    # One value for all when the user sets one, and the panel shows it.
    panel.tight_spin.setValue(60)
    assert tightness_of(window, ids) == [60.0, 60.0, 60.0]
    assert panel.tight_spin.text() == "60 %"


# --- item 14: selection never tints the thumbnail --------------------------------------------
def thumbnail_patch(grid, row: int) -> list[str]:
    """The colours of a 9 × 9 patch at the centre of a row's thumbnail, as the user sees them."""
    QApplication.processEvents()
    image = grid.viewport().grab().toImage()
    rect = grid.visualRect(grid.model().index(row, 0))
    px = grid.iconSize().width()
    dpr = image.devicePixelRatio()
    cx, cy = rect.center().x(), rect.top() + 4 + px // 2
    return [
        image.pixelColor(round((cx + dx) * dpr), round((cy + dy) * dpr)).name()
        for dx in range(-4, 5)
        for dy in range(-4, 5)
    ]


def test_selected_thumbnail_keeps_its_colours(window, library_path: Path, qtbot) -> None:
    assert open_library(window, library_path)
    grid, model = window.browser.grid, window.browser.model
    rec = model.record(0)
    qtbot.waitUntil(lambda: window.cache.pixmap(rec) is not None, timeout=10_000)
    grid.setFocus()
    grid.clearSelection()
    plain = thumbnail_patch(grid, 0)
    assert len(set(plain)) >= 1
    assert plain != ["#ffffff"] * len(plain)  # the thumbnail, not the background
    grid.select_ids([rec.id])
    assert grid.selected_ids() == [rec.id]
    assert thumbnail_patch(grid, 0) == plain
    # The selection is visible: highlight-coloured frame pixels just outside the picture.
    image = grid.viewport().grab().toImage()
    rect = grid.visualRect(model.index(0, 0))
    highlight = grid.palette().highlight().color().name()
    frame_y = rect.top() + 4 + grid.iconSize().width() // 2
    row_colours = {image.pixelColor(x, frame_y).name() for x in range(rect.left(), rect.right())}
    assert highlight in row_colours


# --- item 13: nothing stale after a library switch or a failed search -----------------------
def search_similar(window, qtbot, row: int = 3):
    rec = window.browser.all_records()[row]
    window.tabs.setCurrentIndex(0)
    window.browser.grid.select_ids([rec.id])
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.similar_action.trigger()
    assert window.search_panel.model.rowCount() > 0
    return blocker.args[0]


def assert_no_results(window, tmp_path: Path) -> None:
    panel = window.search_panel
    assert panel.result is None
    assert panel.model.rowCount() == 0
    assert window.query is None
    assert not window.export_csv_action.isEnabled()
    assert not window.export_sheet_action.isEnabled()
    assert not panel.csv_button.isEnabled()
    assert window.searching.export_csv(tmp_path / "stale.csv") is None
    assert not (tmp_path / "stale.csv").exists()
    assert not window.detail.query.isVisibleTo(window.detail)


def test_switching_library_forgets_the_query_and_results(
    window, trained_library_path: Path, library_path: Path, tmp_path: Path, qtbot
) -> None:
    from fabricsearch.gui.widgets.search_panel import PROMPT

    assert open_library(window, trained_library_path)
    search_similar(window, qtbot)
    assert window.export_csv_action.isEnabled()
    assert window.detail.query.isVisibleTo(window.detail)

    assert open_library(window, library_path)
    assert_no_results(window, tmp_path)
    assert window.search_panel.summary.text() == PROMPT


def test_failed_search_clears_the_previous_results(
    window, trained_library_path: Path, tmp_path: Path, qtbot
) -> None:
    from fabricsearch.gui.dropping import QueryInput

    assert open_library(window, trained_library_path)
    search_similar(window, qtbot)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a photo")
    with qtbot.waitSignal(window.searchFailed, timeout=60_000):
        window.search(QueryInput(name=broken.name, path=broken))
    assert_no_results(window, tmp_path)
    assert "Search failed" in window.search_panel.summary.text()

    # A query that cannot even start (an empty drop) clears them too.
    search_similar(window, qtbot)
    with qtbot.waitSignal(window.searchFailed, timeout=5_000):
        window.search(QueryInput(name="nothing", error="The drop held no image."))
    assert_no_results(window, tmp_path)
    assert window.search_panel.summary.text() == "The drop held no image."


# --- low items ---------------------------------------------------------------------------------
def test_results_header_shows_the_total_time_once(qtbot) -> None:
    from fabricsearch.gui.models import ThumbnailCache
    from fabricsearch.gui.widgets.search_panel import SearchPanel
    from fabricsearch.search import SearchResult

    panel = SearchPanel(ThumbnailCache(None))
    qtbot.addWidget(panel)
    times = {"decode": 40.0, "encode": 100.0, "search": 2.0, "rerank": 60.0, "total": 203.0}
    result = SearchResult("q", "m", 32, np.zeros((10, 4), np.float32), [], times)
    panel.set_result(result, [], "q.jpg")
    assert "203 ms" in panel.summary.toolTip()
    assert "405 ms" not in panel.summary.toolTip()


def test_changing_top_n_searches_again(window, trained_library_path: Path, qtbot) -> None:
    assert open_library(window, trained_library_path)
    search_similar(window, qtbot)
    assert window.search_panel.model.rowCount() > 5
    with qtbot.waitSignal(window.searchFinished, timeout=60_000):
        window.search_panel.k_spin.setValue(5)
    assert window.search_panel.model.rowCount() == 5
    assert len(window.search_panel.result.hits) == 5


# --- item 9: a training never vanishes ---------------------------------------------------------
@pytest.fixture
def blocking_training(monkeypatch: pytest.MonkeyPatch):
    """train_library replaced by one that reports an epoch and runs until cancelled."""
    import threading

    from fabricsearch.hashing import train
    from fabricsearch.jobs import Progress, check

    started = threading.Event()

    def fake_train(library, config, progress=None, cancel=None):
        info = {"epoch": 1, "epochs": config.epochs, "loss": 1.0, "eta_s": 65.0}
        progress(Progress("train", 1, 10, "step", info=info))
        started.set()
        while True:
            check(cancel)
            threading.Event().wait(0.01)

    monkeypatch.setattr(train, "train_library", fake_train)
    return started


def test_training_window_can_be_hidden_and_brought_back_and_asks_before_stopping(
    window,
    library_path: Path,
    qtbot,
    blocking_training,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    import dataclasses

    from fabricsearch.gui.dialogs.train_dialog import TrainingProgressDialog

    assert open_library(window, library_path)
    assert not window.training_action.isEnabled()
    worker = window.training.start_training(
        dataclasses.replace(window.training.base_config(), epochs=1)
    )
    dialog = window.train_dialog
    assert isinstance(dialog, TrainingProgressDialog)
    assert blocking_training.wait(10)
    assert "1 epoch" in dialog.header.text()
    assert "1 epochs" not in dialog.header.text()
    assert dialog.isVisible()
    assert not dialog.close_button.isVisible()  # no Close while it runs
    assert dialog.cancel_button.isVisible()
    assert not dialog.cancel_button.autoDefault()
    qtbot.waitUntil(lambda: "epoch 1 of 1" in window.training_button.text())

    # Run in background hides it; the Model menu and the status bar bring it back.
    dialog.hide_button.click()
    assert not dialog.isVisible()
    assert worker.running
    assert window.training_button.isVisible()
    assert window.training_action.isEnabled()
    window.training_action.trigger()
    assert dialog.isVisible()
    dialog.hide_button.click()
    window.training_button.click()
    assert dialog.isVisible()

    # Esc and × ask first; "No" keeps it running and shown.
    asked: list[bool] = []
    monkeypatch.setattr(dialog, "confirm_cancel", lambda: asked.append(True) or False)
    qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    dialog.close()
    assert asked == [True, True]
    assert dialog.isVisible()
    assert worker.running

    # Quitting (and opening another library) asks too; "No" keeps the window and the training.
    window.sink.answer = False
    window.sink.questions.clear()
    assert not window.close()
    assert window.isVisible()
    # Re-opening the library already open is a no-op (issue 20 item 1): no question, the
    # training goes on.
    assert window.open_library(library_path)
    assert len(window.sink.questions) == 1
    Library.create(tmp_path / "other").close()
    assert not window.open_library(tmp_path / "other")
    assert [q.split(".")[0] for q in window.sink.questions] == [
        "A training is running",
        "A training is running in this library",
    ]
    window.sink.answer = True
    assert worker.running

    # "Yes" stops it; the time left is no longer shown.
    assert dialog.eta_label.text() != "—"
    monkeypatch.setattr(dialog, "confirm_cancel", lambda: True)
    with qtbot.waitSignal(window.trainingEnded, timeout=30_000) as blocker:
        qtbot.keyClick(dialog, Qt.Key.Key_Escape)
    assert blocker.args == ["cancelled"]
    assert dialog.eta_label.text() == "—"
    assert dialog.close_button.isVisible()
    assert not window.training_button.isVisible()


def test_job_progress_counts_read_naturally(qtbot) -> None:
    from fabricsearch.gui.dialogs.progress_dialog import JobProgressDialog, units
    from fabricsearch.gui.workers import Worker
    from fabricsearch.jobs import Progress

    assert units(1, "step") == "step"
    assert units(45, "step") == "steps"
    assert units(3, "images") == "images"
    assert units(2, "batch") == "batches"
    dialog = JobProgressDialog(Worker(lambda progress=None, cancel=None: None), "Job")
    qtbot.addWidget(dialog)
    dialog.on_progress(Progress("train", 6, 45, "step"))
    assert dialog.rate_label.text().startswith("6 of 45 steps")


def test_tooltips_and_status_name_categories_not_ids(window, library_path: Path, qtbot) -> None:
    assert open_library(window, library_path)
    tax = window.library.taxonomy
    minor = next(m for major in tax.majors for m in tax.minors_of(major) if "/" in m)
    rec = window.browser.visible_records()[0]
    window.browser.grid.select_ids([rec.id])
    assert window.labelling.label_selection({"coarse": minor, "fine": tax.fine[0]})
    status = window.statusBar().currentMessage()
    assert tax.display_coarse(minor) in status
    assert minor not in status
    model = window.browser.model
    tip = model.data(model.index(model.row_of(rec.id)), Qt.ItemDataRole.ToolTipRole)
    assert tax.display_coarse(minor) in tip
    assert tax.fine_names.get(tax.fine[0], tax.fine[0]) in tip
    assert minor not in tip
    assert window.undo_stack.text(window.undo_stack.count() - 1) == status


def test_empty_library_says_how_to_add_photos(window, tmp_path: Path, library_path: Path) -> None:
    from fabricsearch.gui.widgets.library_browser import EMPTY_LIBRARY, NO_MATCH

    assert open_library(window, tmp_path / "new", create=True)
    browser = window.browser
    assert browser.views.currentWidget() is browser.empty_label
    assert browser.empty_label.text() == EMPTY_LIBRARY
    assert "Import folder" in window.advice_label.text()
    assert "retrain" not in window.advice_label.text().lower()

    assert open_library(window, library_path)
    assert browser.views.currentWidget() is browser.grid
    browser.labelled_box.setCurrentIndex(browser.labelled_box.findData("unlabelled"))
    assert browser.views.currentWidget() is browser.empty_label
    assert browser.empty_label.text() == NO_MATCH


def test_gui_refuses_to_start_on_a_leaking_pyside(
    gui_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch.gui import app, qtcheck

    monkeypatch.setattr(qtcheck, "none_references_dropped", lambda calls=100: 2 * calls)
    assert app.run(gui_env / "lib", self_test=True) == 2
    err = capsys.readouterr().err
    assert "reference-counting bug" in err
    assert f"PySide6-Essentials=={qtcheck.GOOD_VERSION}" in err
    assert not (gui_env / "lib").exists()  # nothing was created or opened
