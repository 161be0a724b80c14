# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI: open a library, browse and filter, label with the keyboard and undo, import a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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

from fabricsearch.catalogue import Library

pytestmark = pytest.mark.gui


def test_open_library_shows_lazy_thumbnails(window, library_path: Path, qtbot) -> None:
    assert window.stack.currentWidget() is window.welcome
    assert not window.import_action.isEnabled()
    with qtbot.waitSignal(window.libraryOpened):
        assert window.open_library(library_path)
    model = window.browser.model
    assert model.rowCount() == N_IMAGES
    assert window.stack.currentWidget() is window.splitter
    assert f"{N_IMAGES} images" in window.count_label.text()
    assert "none" in window.model_label.text()
    # Thumbnails arrive from the thread pool and end up in the pixmap cache.
    first = model.record(0)
    qtbot.waitUntil(lambda: window.cache.image(first.id) is not None, timeout=10_000)
    assert window.cache.image(first.id).width() > 0
    assert window.settings.last_library == library_path.resolve()
    assert window.browser.grid.uniformItemSizes()


def test_not_a_library_is_reported(window, tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    assert not window.open_library(tmp_path / "junk")
    assert window.library is None
    assert "not a fabricsearch library" in window.sink.messages[-1]


def test_filters(window, library_path: Path) -> None:
    open_library(window, library_path)
    browser = window.browser
    browser.coarse_box.setCurrentIndex(browser.coarse_box.findData("plaid"))
    shown = browser.visible_records()
    assert 0 < len(shown) < N_IMAGES
    assert all(r.coarse.startswith("plaid") for r in shown)
    browser.coarse_box.setCurrentIndex(0)
    browser.tight_min.setValue(60)
    assert all(r.tightness is not None and r.tightness >= 60 for r in browser.visible_records())
    browser.tight_min.setValue(0)
    browser.colour_box.setCurrentIndex(browser.colour_box.findData("blue"))
    blue = browser.visible_records()
    assert all(float(r.palette[8, 3]) >= 0.05 for r in blue)
    browser.colour_box.setCurrentIndex(0)
    browser.labelled_box.setCurrentIndex(browser.labelled_box.findData("unlabelled"))
    assert browser.visible_records() == []  # everything came labelled
    assert "0 of" in browser.count_label.text()


def test_keyboard_labelling_with_undo(window, library_path: Path, qtbot) -> None:
    open_library(window, library_path)
    lib = window.library
    tax = lib.taxonomy
    ids = [r.id for r in window.browser.visible_records()[:3]]
    before = {r.id: (r.coarse, r.fine, r.tightness) for r in lib.images(ids)}
    window.browser.grid.select_ids(ids)
    window.browser.grid.setFocus()
    assert window.label_panel.selection_label.text() == "3 images selected"

    qtbot.keyClick(window.browser.grid, Qt.Key.Key_2)  # second major
    assert {r.coarse for r in lib.images(ids)} == {tax.majors[1]}
    qtbot.keyClick(
        window.browser.grid, Qt.Key.Key_1, Qt.KeyboardModifier.AltModifier
    )  # its first minor
    assert {r.coarse for r in lib.images(ids)} == {tax.minors_of(tax.majors[1])[0]}
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_F3)  # third fine texture
    assert {r.fine for r in lib.images(ids)} == {tax.fine[2]}
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_BracketRight)  # each from its own value
    assert [r.tightness for r in lib.images(ids)] == [
        min(100.0, (50.0 if before[i][2] is None else before[i][2]) + 5) for i in ids
    ]
    # The panel and the grid show the new labels.
    assert window.label_panel.fine_box.currentData() == tax.fine[2]
    assert window.browser.model.record(window.browser.model.row_of(ids[0])).fine == tax.fine[2]
    assert window.undo_stack.count() == 4

    for _ in range(4):
        qtbot.keyClick(window.browser.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert {r.id: (r.coarse, r.fine, r.tightness) for r in lib.images(ids)} == before
    window.redo_action.trigger()
    assert {r.coarse for r in lib.images(ids)} == {tax.majors[1]}
    with Library.open(library_path) as other:  # written to the catalogue, not just the view
        assert {r.coarse for r in other.images(ids)} == {tax.majors[1]}


def test_clear_and_next_unlabelled(window, library_path: Path, qtbot) -> None:
    open_library(window, library_path)
    records = window.browser.visible_records()
    target = records[5]
    window.browser.grid.select_ids([target.id])
    window.label_panel.clear_button.click()
    assert not window.library.get(target.id).labelled
    window.browser.grid.select_ids([records[0].id])
    window.browser.grid.setCurrentIndex(window.browser.model.index(0))
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_N)
    assert window.browser.grid.selected_ids() == [target.id]
    window.undo_action.trigger()
    assert window.library.get(target.id).labelled


def test_bad_label_is_refused_without_undo_entry(window, library_path: Path) -> None:
    open_library(window, library_path)
    window.browser.grid.select_ids([window.browser.visible_records()[0].id])
    assert not window.labelling.label_selection({"coarse": "no-such/category"})
    assert window.undo_stack.count() == 0
    assert "Cannot set these labels" in window.sink.messages[-1]


def test_import_folder_reports_bad_files(
    window, tmp_path: Path, qtbot, fabric_folder: Path
) -> None:
    from fabricsearch.gui.dialogs.import_report import ImportReportDialog

    assert open_library(window, tmp_path / "new", create=True)
    src = tmp_path / "incoming"
    src.mkdir()
    good = sorted((fabric_folder / "plaid").glob("*.jpg"))[:3]
    for p in good:
        (src / p.name).write_bytes(p.read_bytes())
    (src / "truncated.jpg").write_bytes(good[0].read_bytes()[:200])
    (src / "notes.png").write_text("this is not a picture", encoding="utf-8")
    rng = np.random.default_rng(0)
    (src / "noise.bin.jpg").write_bytes(rng.integers(0, 256, 500, dtype=np.uint8).tobytes())

    with qtbot.waitSignal(window.importEnded, timeout=60_000) as blocker:
        worker = window.libraries.import_folder(src)
        assert window.libraries.import_bar.isVisible()  # in the status bar, no dialog
    report = blocker.args[0]
    assert worker.state == "finished"
    assert report.added == 3
    failed = {Path(f["path"]).name for f in report.failed}
    assert {"truncated.jpg", "notes.png", "noise.bin.jpg"} <= failed
    dialog = window.last_dialog
    assert isinstance(dialog, ImportReportDialog)
    assert {Path(p).name for p in dialog.failed_paths()} >= {"truncated.jpg", "notes.png"}
    assert window.browser.model.rowCount() == 3


def test_settings_persist_between_windows(window, library_path: Path, qtbot) -> None:
    from fabricsearch.gui.main_window import MainWindow

    open_library(window, library_path)
    window.size_actions[224].trigger()
    assert window.browser.grid.iconSize().width() == 224
    window.resize(1000, 700)
    window.close()
    again = MainWindow(window.settings.__class__())
    qtbot.addWidget(again)
    assert again.settings.thumb_size == 224
    assert again.settings.last_library == library_path.resolve()
    assert again.size_actions[224].isChecked()
    again.close()
