# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""Issue 24: the grid and the preview as a librarian uses them all day: the preview always
arrives, portrait thumbnails stay in their cells, a reload keeps the selection and the scroll
position, thumbnail zoom, a full-screen preview and the file's details."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPixmap, QStandardItem, QStandardItemModel
from PySide6.QtWidgets import QLabel
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


def _rgb(image) -> np.ndarray:
    image = image.convertToFormat(image.Format.Format_RGB888)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    buf = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return buf[:, : w * 3].reshape(h, w, 3).astype(int)


def test_the_preview_arrives_after_arrowing_past_the_image_cache(
    window, library_path: Path, qtbot, monkeypatch
) -> None:
    """Item 3: the 512 px images are kept for a few images only (200; here 4) while their
    icons stay cached; selecting an early image again must still show its preview."""
    from fabricsearch.gui.models import ThumbnailCache

    monkeypatch.setattr(ThumbnailCache, "IMAGE_CACHE_ITEMS", 4)
    assert open_library(window, library_path)
    grid, preview = window.browser.grid, window.detail.selected.image
    ids = [int(i) for i in window.browser.shown_ids()]
    grid.select_ids([ids[0]])
    qtbot.waitUntil(preview.has_image, timeout=20_000)
    grid.setFocus()
    for image_id in ids[1:]:
        qtbot.keyClick(grid.viewport(), Qt.Key.Key_Right)
        assert grid.selected_ids() == [image_id]
        qtbot.waitUntil(preview.has_image, timeout=20_000)
    assert window.cache.image(ids[0]) is None  # evicted, its icon still cached
    grid.select_ids([ids[0]])
    assert window.detail.record.id == ids[0]
    qtbot.waitUntil(preview.has_image, timeout=20_000)
    assert preview.text() == ""


def test_an_unreadable_thumbnail_says_so_instead_of_loading(
    window, library_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    grid, preview = window.browser.grid, window.detail.selected.image
    ids = [int(i) for i in window.browser.shown_ids()]
    qtbot.waitUntil(lambda: not window.cache.is_pending(), timeout=20_000)
    window.cache._images.pop(ids[3], None)
    window.cache._failed.add(ids[3])  # as if its thumbnail could not be read
    grid.select_ids([ids[3]])
    assert not preview.has_image()
    assert "cannot be read" in preview.text()


def test_a_portrait_thumbnail_stays_in_its_cell_above_its_name(qtbot) -> None:
    """Item 9: the picture is fitted in the icon square, the name has its own strip."""
    from fabricsearch.gui.widgets.grid import ICON_MARGIN, ThumbnailGrid

    grid = ThumbnailGrid()
    qtbot.addWidget(grid)
    model = QStandardItemModel()
    red = QColor(255, 0, 0)
    for i in range(8):
        pm = QPixmap(60, 120) if i % 2 else QPixmap(120, 60)  # portrait, landscape
        pm.fill(red)
        item = QStandardItem(f"fabric-{i}.jpg")
        item.setData(pm, Qt.ItemDataRole.DecorationRole)
        model.appendRow(item)
    grid.setModel(model)
    grid.set_thumb_size(96)
    grid.resize(3 * grid.gridSize().width() + 40, 3 * grid.gridSize().height())
    grid.show()
    qtbot.waitExposed(grid)
    qtbot.waitUntil(lambda: grid.visualRect(model.index(7, 0)).isValid())
    px = _rgb(grid.viewport().grab().toImage())
    red_px = np.abs(px - [255, 0, 0]).sum(axis=2) < 40
    assert red_px.any()
    inside = np.zeros_like(red_px)
    for row in range(model.rowCount()):
        cell = grid.visualRect(model.index(row, 0))
        top = cell.top() + ICON_MARGIN
        square = red_px[top : top + 96, cell.left() : cell.right() + 1]
        assert square.any(), row
        inside[top : top + 96, cell.left() : cell.right() + 1] = True
        # The name's strip, below the square, shows no picture.
        assert not red_px[top + 96 : cell.bottom() + 1, cell.left() : cell.right() + 1].any()
    assert not (red_px & ~inside).any()  # nothing over another cell or a gap


def test_a_reload_keeps_the_selection_and_the_scroll_position(
    window, library_path: Path, qtbot
) -> None:
    """Item 10: after a reload (a watched folder's import refits the grid), the same image is
    selected, current and where it was on screen. Rows are laid out in batches of 500 after a
    reset, and the scroll range first covers the first batch only (the jump); a batch of 8
    (four rows of this grid: more than a screen) shows the same with a small library."""
    assert open_library(window, library_path)
    grid = window.browser.grid
    grid.setBatchSize(8)
    window.set_thumb_size(224, save=False)
    ids = [int(i) for i in window.browser.shown_ids()]
    target = ids[2 * len(ids) // 3]
    model = grid.model()
    bar = grid.verticalScrollBar()
    qtbot.waitUntil(lambda: grid.visualRect(model.index(len(ids) - 1, 0)).isValid())
    grid.select_ids([target])
    grid.scrollTo(model.index(model.row_of(target), 0), grid.ScrollHint.PositionAtCenter)

    def shown(image_id: int) -> bool:
        rect = grid.visualRect(model.index(model.row_of(image_id), 0))
        return rect.isValid() and grid.viewport().rect().contains(rect.center())

    qtbot.waitUntil(lambda: shown(target) and bar.value() > 0, timeout=10_000)
    assert bar.value() < bar.maximum()  # not merely scrolled to the end
    value = bar.value()
    seen: list[list[int]] = []
    window.browser.selectionChangedIds.connect(seen.append)
    window.libraries.reload_records()
    qtbot.waitUntil(lambda: not window.libraries.loading, timeout=30_000)
    qtbot.waitUntil(lambda: bar.value() == value, timeout=10_000)
    assert grid.selected_ids() == [target]
    assert grid.currentIndex().data(Qt.ItemDataRole.UserRole + 1) == target
    qtbot.waitUntil(lambda: shown(target), timeout=10_000)
    assert bar.value() == value
    assert seen == [[target]]  # announced once, never as an empty selection
    assert window.detail.record.id == target


def test_thumbnail_zoom_with_keys_and_the_slider(window, library_path: Path, qtbot) -> None:
    from fabricsearch.gui.settings import THUMB_SIZES
    from fabricsearch.gui.widgets.zoom import step_size

    assert step_size(THUMB_SIZES, 128, 1) == 160
    assert step_size(THUMB_SIZES, 224, 1) == 224  # clamped
    assert step_size(THUMB_SIZES, 130, -1) == 96  # from the nearest offered size
    assert open_library(window, library_path)
    grid = window.browser.grid
    window.set_thumb_size(128, save=False)
    grid.setFocus()
    qtbot.keyClick(grid, Qt.Key.Key_Equal, Qt.KeyboardModifier.ControlModifier)
    assert grid.iconSize().width() == 160
    assert window.search_panel.grid.iconSize().width() == 160
    assert window.zoom_slider.px() == 160
    assert window.settings.thumb_size == 160
    qtbot.keyClick(grid, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    qtbot.keyClick(grid, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert grid.iconSize().width() == 96
    assert window.size_actions[96].isChecked()
    window.zoom_slider.setValue(window.zoom_slider.maximum())  # as a drag of the slider does
    assert grid.iconSize().width() == max(THUMB_SIZES)
    assert window.settings.thumb_size == max(THUMB_SIZES)


def test_full_screen_preview_moves_with_the_arrows_and_closes_on_escape(
    window, library_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    grid = window.browser.grid
    ids = [int(i) for i in window.browser.shown_ids()]
    grid.select_ids([ids[1]])
    grid.setFocus()
    qtbot.keyClick(grid, Qt.Key.Key_Space)
    preview = window.previewing.widget
    assert preview is not None
    qtbot.waitUntil(preview.isVisible)
    assert preview.record.id == ids[1]
    assert grid.selected_ids() == [ids[1]]  # Space previewed; it did not change the selection
    assert f"2 / {N_IMAGES}" in preview.caption
    qtbot.waitUntil(preview.shows_original, timeout=20_000)  # the photo itself, decoded
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert grid.selected_ids() == [ids[2]]
    assert preview.record.id == ids[2] == window.detail.record.id
    qtbot.waitUntil(lambda: preview.image() is not None, timeout=20_000)
    qtbot.keyClick(preview, Qt.Key.Key_Left)
    qtbot.keyClick(preview, Qt.Key.Key_Left)
    qtbot.keyClick(preview, Qt.Key.Key_Left)  # stops at the first image
    assert preview.record.id == ids[0]
    assert grid.selected_ids() == [ids[0]]
    qtbot.keyClick(preview, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not preview.isVisible())
    # Space typed in a text field stays a space.
    window.browser.text_edit.setFocus()
    qtbot.keyClick(window.browser.text_edit, Qt.Key.Key_Space)
    assert not preview.isVisible()
    assert window.browser.text_edit.text() == " "


def test_the_detail_panel_shows_the_file_details(window, library_path: Path, qtbot) -> None:
    import time

    from fabricsearch.gui.widgets.detail_panel import size_text

    assert size_text(850 * 1024) == "850 KB"
    assert size_text(int(2.4 * 1024 * 1024)) == "2.4 MB"
    assert size_text(300) == "1 KB"
    assert open_library(window, library_path)
    rec = window.browser.all_records()[4]
    window.browser.grid.select_ids([rec.id])
    detail = window.detail
    assert detail.file_path.full_text() == str(rec.path)
    assert detail.file_path.toolTip() == str(rec.path)
    info = detail.file_info.text()
    assert time.strftime("%Y-%m-%d", time.localtime(rec.mtime)) in info
    assert size_text(rec.size) in info
    assert "KB" in info
    assert f"{rec.width} × {rec.height} px" in info
    # A long path is elided in the middle; it does not widen the panel.
    before = detail.minimumSizeHint().width()
    detail.file_path.set_path("/" + "very-long-folder-name/" * 40 + "fabric.jpg")
    assert detail.minimumSizeHint().width() == before
    assert "…" in QLabel.text(detail.file_path)
    window.browser.grid.select_ids([])
    assert detail.file_info.text() == ""
