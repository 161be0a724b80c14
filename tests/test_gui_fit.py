# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI (issue 24): the window fits a 1280×800 screen (or 2560×1600 at 200 %) in every state,
its key controls are on screen there, and the search panel's header, filters, text field and
shortcuts behave as a librarian expects."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPoint, QRect, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

pytestmark = pytest.mark.gui

SMALL = (1280, 800)  # a 13" laptop, and 2560×1600 at 200 % in logical pixels
MAX_MIN_WIDTH, MAX_MIN_HEIGHT = 1000, 700
LONG_COARSE = "plaid/gingham"  # shown as "Plaid / check › Small lattice / gingham"


def settle(qtbot) -> None:
    """Let the layouts follow a change (size hints are recomputed on the next pass)."""
    for _ in range(3):
        QApplication.processEvents()
    qtbot.wait(1)


def assert_fits(window, qtbot, state: str) -> None:
    settle(qtbot)
    hint = window.minimumSizeHint()
    assert hint.width() <= MAX_MIN_WIDTH, f"{state}: minimum width {hint.width()}"
    assert hint.height() <= MAX_MIN_HEIGHT, f"{state}: minimum height {hint.height()}"
    window.resize(*SMALL)
    settle(qtbot)
    assert (window.width(), window.height()) == SMALL, state


def assert_on_screen(window, widget, state: str) -> None:
    """Shown, inside the window at 1280×800, not clipped away by a parent, and not squeezed
    below its own minimum (a button cut to "Rev…" is not on screen either)."""
    name = f"{state}: {type(widget).__name__} {getattr(widget, 'text', lambda: '')()!r}"
    assert widget.isVisible(), name
    rect = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
    assert window.rect().contains(rect), f"{name} at {rect} outside {window.rect()}"
    assert not widget.visibleRegion().isEmpty(), name
    assert widget.width() >= widget.minimumSizeHint().width(), name


def key_widgets(window) -> list:
    d, lab = window.detail, window.label_panel
    return [d.reveal_button, d.open_button, lab.tight_spin, lab.next_button, d.selected.extra]


@pytest.fixture
def long_labels(trained_library_path: Path) -> Path:
    """The trained library with the longest category name on every other image."""
    from fabricsearch.catalogue import Library

    with Library.open(trained_library_path) as lib:
        ids = [r.id for r in lib.images()]
        lib.set_labels(ids[::2], coarse=LONG_COARSE)
    return trained_library_path


def find_similar(window, qtbot, image_id: int):
    window.tabs.setCurrentIndex(0)
    window.browser.grid.select_ids([image_id])
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.similar_action.trigger()
    return blocker.args[0]


def long_labelled(window) -> int:
    return next(r.id for r in window.browser.all_records() if r.coarse == LONG_COARSE)


def test_window_fits_1280x800_in_every_state(window, long_labels: Path, qtbot) -> None:
    assert_fits(window, qtbot, "welcome")
    assert open_library(window, long_labels)
    assert_fits(window, qtbot, "library")
    for widget in key_widgets(window)[:4]:  # no selection yet: no result details either
        assert_on_screen(window, widget, "library")
    window.tabs.setCurrentIndex(1)  # before any search: the prompt, whole, on one line
    settle(qtbot)
    assert window.search_panel.summary.text()
    assert not window.search_panel.summary.is_elided()
    window.tabs.setCurrentIndex(0)
    image_id = long_labelled(window)
    window.browser.grid.select_ids([image_id])
    assert_fits(window, qtbot, "selection")
    assert window.detail.selected.coarse.text().startswith("Plaid / check")
    for widget in key_widgets(window):
        assert_on_screen(window, widget, "selection")
    window.statusBar().showMessage("x" * 400)  # a long message never widens the window
    assert_fits(window, qtbot, "long status message")

    find_similar(window, qtbot, image_id)
    assert window.search_panel.model.rowCount() > 0
    assert_fits(window, qtbot, "results")
    panel = window.search_panel
    for widget in [
        *key_widgets(window),
        panel.text_edit,
        panel.k_spin,
        panel.balance_slider,
        panel.csv_button,
        panel.sheet_button,
        panel.facets.reset_button,
    ]:
        assert_on_screen(window, widget, "results")
    assert "score" in window.detail.selected.extra.text()

    panel.facets.set_colour_index(0)
    panel.text_edit.setText("plaid")
    panel.text_edit.returnPressed.emit()
    qtbot.waitUntil(lambda: "shown" in panel.shown_label.text() or panel.text() == "plaid")
    assert_fits(window, qtbot, "filtered results")
    window.edit_tabs.setCurrentWidget(window.metadata_panel)
    assert_fits(window, qtbot, "fabric record tab")


def test_window_opens_within_the_screen(gui_env: Path, qtbot) -> None:
    from fabricsearch.gui.main_window import MainWindow
    from fabricsearch.gui.messages import RecordingSink
    from fabricsearch.gui.settings import Settings

    free = QGuiApplication.primaryScreen().availableGeometry()
    first = MainWindow(Settings(), sink=RecordingSink())
    qtbot.addWidget(first)
    assert first.width() <= free.width()
    assert first.height() <= free.height()
    # Saved on a larger monitor: the next start still opens on this screen, whole.
    first.resize(free.width() + 900, free.height() + 700)
    first.move(free.right() - 100, free.bottom() - 100)
    settings = Settings()
    settings.save_window(first.saveGeometry(), first.saveState())
    settings.sync()
    again = MainWindow(Settings(), sink=RecordingSink())
    qtbot.addWidget(again)
    assert free.contains(QRect(again.pos(), again.size()))


def test_filters_keep_the_splitter_and_the_header_is_one_line(
    window, long_labels: Path, qtbot
) -> None:
    window.resize(*SMALL)
    assert open_library(window, long_labels)
    outcome = find_similar(window, qtbot, long_labelled(window))
    panel = window.search_panel
    settle(qtbot)
    # One short line in the user's words; the model, bits and time in its tooltip.
    summary = panel.summary.text()
    assert summary.startswith(f"{len(outcome.result.hits)} similar fabrics")
    assert summary.endswith(" · the photo itself first")  # a library image is its own #1
    assert outcome.result.model not in summary
    assert "ms" not in summary.split()
    tip = panel.summary.toolTip()
    assert outcome.result.model in tip
    assert " ms" in tip
    assert panel.summary.height() < 2 * panel.summary.fontMetrics().height()

    sizes = window.splitter.sizes()
    field_width = panel.text_edit.width()
    panel.facets.set_colour_index(0)
    settle(qtbot)
    assert "shown" in panel.shown_label.text()
    panel.facets.set_fine(window.library.taxonomy.active_fine()[0])
    settle(qtbot)
    assert window.splitter.sizes() == sizes
    assert panel.text_edit.width() >= field_width
    assert panel.text_edit.width() >= panel.text_edit.fontMetrics().horizontalAdvance("x" * 18)


def test_clear_empties_a_text_filter(window, long_labels: Path, qtbot) -> None:
    assert open_library(window, long_labels)
    browser = window.browser
    total = browser.model.rowCount()
    clear = browser.facets.reset_button
    assert not clear.isEnabled()
    browser.text_edit.setText("plaid")
    browser.text_edit.returnPressed.emit()
    assert 0 < browser.model.rowCount() < total
    assert clear.isEnabled()
    qtbot.mouseClick(clear, Qt.MouseButton.LeftButton)
    assert browser.text_edit.text() == ""
    assert browser.model.rowCount() == total
    assert not clear.isEnabled()

    find_similar(window, qtbot, long_labelled(window))
    panel = window.search_panel
    shown = panel.model.rowCount()
    with qtbot.waitSignal(window.searchFinished, timeout=10_000):
        panel.text_edit.setText("plaid")
        panel.text_edit.returnPressed.emit()
    assert panel.model.rowCount() < shown
    assert panel.facets.reset_button.isEnabled()
    with qtbot.waitSignal(window.searchFinished, timeout=10_000):
        qtbot.mouseClick(panel.facets.reset_button, Qt.MouseButton.LeftButton)
    assert panel.text() == ""
    assert panel.model.rowCount() == shown


def test_unparsable_text_shows_no_matches_and_why(window, long_labels: Path, qtbot) -> None:
    assert open_library(window, long_labels)
    browser = window.browser
    browser.text_edit.setText("plaid")
    browser.text_edit.returnPressed.emit()
    assert browser.model.rowCount() > 0
    browser.text_edit.setText("nosuchfield:wool")
    browser.text_edit.returnPressed.emit()
    assert browser.model.rowCount() == 0
    assert browser.views.currentWidget() is browser.empty_label
    assert "not understood" in browser.empty_label.text()
    assert "nosuchfield" in browser.empty_label.text()
    browser.text_edit.clear()
    assert browser.model.rowCount() > 0

    find_similar(window, qtbot, long_labelled(window))
    panel = window.search_panel
    assert panel.model.rowCount() > 0
    with qtbot.waitSignal(window.searchFailed, timeout=5_000):
        panel.text_edit.setText("nosuchfield:wool")
        panel.text_edit.returnPressed.emit()
    assert panel.model.rowCount() == 0
    assert "not understood" in panel.summary.text()
    assert not window.export_csv_action.isEnabled()
    # The query stays: a corrected text searches with it again.
    with qtbot.waitSignal(window.searchFinished, timeout=10_000):
        panel.text_edit.setText("plaid")
        panel.text_edit.returnPressed.emit()
    assert panel.model.rowCount() > 0
    assert "similar fabric" in panel.summary.text()


def test_ctrl_f_is_text_search_and_ctrl_shift_f_search_by_photo(
    window, long_labels: Path, qtbot
) -> None:
    assert open_library(window, long_labels)
    assert window.find_text_action.shortcut().toString() == "Ctrl+F"
    assert window.search_action.shortcut().toString() == "Ctrl+Shift+F"
    shortcuts = [a.shortcut().toString() for a in window.findChildren(type(window.search_action))]
    assert shortcuts.count("Ctrl+F") == 1
    assert shortcuts.count("Ctrl+Shift+F") == 1
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow)
    window.browser.grid.setFocus()
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is window.browser.text_edit
    find_similar(window, qtbot, long_labelled(window))
    window.search_panel.grid.setFocus()
    qtbot.keyClick(window.search_panel.grid, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert QApplication.focusWidget() is window.search_panel.text_edit


def test_pasting_a_library_path_finds_similar_to_that_image(
    window, long_labels: Path, qtbot
) -> None:
    assert open_library(window, long_labels)
    rec = next(r for r in window.browser.all_records() if r.id == long_labelled(window))
    mime = QMimeData()
    mime.setText(str(rec.path))
    QGuiApplication.clipboard().setMimeData(mime)
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.paste_action.trigger()
    query = blocker.args[0].query
    # Searched as that library image (its labels join the ranking), not an outside photo.
    assert query.path == rec.path
    assert query.coarse == LONG_COARSE
    assert blocker.args[0].result.hits[0].image_id == rec.id
