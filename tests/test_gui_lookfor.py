# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI: what users of photo managers look for (issue 24): undo of Remove from library and
Library ▸ Recently removed…, Open with… where the desktop has no viewer, article numbers on
the contact sheet, saved searches."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

pytestmark = pytest.mark.gui


def _ids(window) -> set[int]:
    return {r.id for r in window.browser.all_records()}


def test_remove_is_undone_with_labels_records_and_codes(
    window, trained_library_path: Path, qtbot
) -> None:
    open_library(window, trained_library_path)
    lib = window.library
    version = lib.active_model().version
    records = [r for r in window.browser.all_records() if r.labelled][:2]
    assert len(records) == 2
    gone = [r.id for r in records]
    lib.set_metadata(gone, {"article": "A-100"})
    before = {r.id: (r.coarse, r.fine, r.tightness) for r in records}
    n = len(window.browser.all_records())

    window.browser.grid.select_ids(gone)
    window.browser.grid.setFocus()
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n - 2, timeout=20_000)
    assert "Undo puts them back" in window.sink.questions[-1]
    assert not _ids(window) & set(gone)
    # The status bar offers Undo; Edit ▸ Undo names the step.
    assert window.removal.notice.isVisible()
    assert "Removed 2 images" in window.removal.notice.label.text()
    for _ in range(3):
        QApplication.processEvents()
    assert window.minimumSizeHint().width() <= 1000  # the offer never widens the window
    assert window.undo_action.isEnabled()
    assert "remove 2 images" in window.undo_action.text()

    # Ctrl+Z: back, with their labels, their fabric records and their codes.
    window.browser.grid.setFocus()
    qtbot.keyClick(window.browser.grid, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n, timeout=20_000)
    assert set(gone) <= _ids(window)
    assert not window.removal.notice.isVisible()  # the offer is withdrawn once used
    after = {r.id: (r.coarse, r.fine, r.tightness) for r in lib.images(gone)}
    assert after == before
    assert {i: m.article for i, m in lib.metadata(gone).items()} == {i: "A-100" for i in gone}
    assert not set(lib.ids_without_codes(version)) & set(gone)
    window.browser.grid.select_ids([gone[0]])
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.similar_action.trigger()
    assert blocker.args[0].result.hits[0].image_id == gone[0]

    # Redo removes them again; the status bar's Undo puts them back too.
    window.tabs.setCurrentIndex(0)  # the library grid again, after the results
    window.redo_action.trigger()
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n - 2, timeout=20_000)
    window.browser.grid.select_ids([r.id for r in window.browser.all_records()][:1])
    window.removal.remove_selected()
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n - 3, timeout=20_000)
    window.removal.notice.button.click()
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n - 2, timeout=20_000)


def test_recently_removed_restores_an_older_batch(
    window, trained_library_path: Path, qtbot
) -> None:
    open_library(window, trained_library_path)
    lib = window.library
    records = window.browser.all_records()
    n = len(records)
    first = [records[0].id, records[1].id]
    labels = {r.id: (r.coarse, r.fine) for r in records[:2]}
    window.browser.grid.select_ids(first)
    window.removal.remove_selected()
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n - 2, timeout=20_000)
    window.browser.grid.select_ids([records[5].id])
    window.removal.remove_selected()
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n - 3, timeout=20_000)

    window.removed_action.trigger()
    dialog = window.removal.dialog_
    assert dialog.isVisible()
    qtbot.waitUntil(lambda: len(dialog.batches) == 2, timeout=10_000)  # read in a worker
    assert [b.count for b in dialog.batches] == [1, 2]  # newest first
    assert dialog.table.item(1, 4).text() == "0 of 2"
    assert dialog.select_record(dialog.batches[1].record)
    assert dialog.restore_button.isEnabled()
    dialog.restore_button.click()
    qtbot.waitUntil(lambda: len(window.browser.all_records()) == n - 1, timeout=30_000)
    assert set(first) <= _ids(window)
    assert records[5].id not in _ids(window)
    assert {r.id: (r.coarse, r.fine) for r in lib.images(first)} == labels
    qtbot.waitUntil(lambda: dialog.table.item(1, 4).text() == "2 of 2", timeout=10_000)
    assert not dialog.restore_button.isEnabled()  # nothing left to put back


def _argv_writer(tmp_path: Path) -> tuple[Path, Path]:
    """A program that writes its arguments to a file (the test's stand-in for a viewer)."""
    out = tmp_path / "argv.txt"
    script = tmp_path / "viewer.py"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys, pathlib\n"
        f"pathlib.Path({str(out)!r} + '.tmp').write_text('\\n'.join(sys.argv[1:]))\n"
        f"os.replace({str(out)!r} + '.tmp', {str(out)!r})\n",  # whole when it exists
        encoding="utf-8",
    )
    script.chmod(0o755)
    return script, out


@pytest.mark.skipif(sys.platform == "win32", reason="a #! script is not a Windows program")
def test_open_with_when_the_desktop_has_no_viewer(
    window, library_path: Path, tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QFileDialog

    from fabricsearch.gui import desktop
    from fabricsearch.gui.settings import Settings

    open_library(window, library_path)
    script, out = _argv_writer(tmp_path)
    asked: list[str] = []

    def pick(_parent, title, start="", *_a, **_k):
        asked.append(title)
        return str(script), ""

    monkeypatch.setattr(desktop, "open_file", lambda _path: False)  # no handler
    monkeypatch.setattr(QFileDialog, "getOpenFileName", pick)
    rec = window.browser.all_records()[2]
    window.open_image(rec.id)  # a double click, Enter, the detail panel's Open
    qtbot.waitUntil(out.exists, timeout=20_000)
    assert out.read_text(encoding="utf-8") == str(rec.path)
    assert f"No application opens {rec.path.suffix[1:].upper()} files" in asked[0]
    assert Settings().open_with_program == str(script)

    # The choice is remembered: the next photo opens with it without asking.
    out.unlink()
    other = window.browser.all_records()[3]
    window.open_image(other.id)
    qtbot.waitUntil(out.exists, timeout=20_000)
    assert out.read_text(encoding="utf-8") == str(other.path)
    assert len(asked) == 1

    # Open with… in the context menu always asks, and takes the selection.
    out.unlink()
    assert window.open_with_action in window.browser.grid.actions()
    window.browser.grid.select_ids([rec.id, other.id])
    window.open_with_action.trigger()
    qtbot.waitUntil(out.exists, timeout=20_000)
    assert sorted(out.read_text(encoding="utf-8").splitlines()) == sorted(
        [str(rec.path), str(other.path)]
    )
    assert len(asked) == 2


def test_contact_sheet_prints_article_numbers(
    window, trained_library_path: Path, tmp_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtGui import QImage

    from fabricsearch.gui import export

    open_library(window, trained_library_path)
    rec = window.browser.all_records()[4]
    window.browser.grid.select_ids([rec.id])
    with qtbot.waitSignal(window.searchFinished, timeout=60_000) as blocker:
        window.similar_action.trigger()
    hits = blocker.args[0].result.hits
    numbered = {h.image_id: f"ART-{k:03d}" for k, h in enumerate(hits[:3])}
    for image_id, article in numbered.items():
        window.library.set_metadata([image_id], {"article": article})
    drawn: list[list[str]] = []

    def captions(*args, **kwargs):
        out = real(*args, **kwargs)
        drawn.append(out)
        return out

    real = export.sheet_captions
    monkeypatch.setattr(export, "sheet_captions", captions)
    sheet = tmp_path / "sheet.png"
    window.searching.export_sheet(sheet)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == f"Saved {sheet}", timeout=60_000)
    assert not QImage(str(sheet)).isNull()
    shown = window.search_panel.model.hits()
    assert drawn == [[numbered.get(h.image_id, h.path.name) for h in shown]]
    assert drawn[0][:3] == ["ART-000", "ART-001", "ART-002"]


def test_saved_searches_are_kept_in_the_library(
    window, library_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QInputDialog

    from fabricsearch.catalogue import Library
    from fabricsearch.services.search import saved_searches

    open_library(window, library_path)
    browser = window.browser
    records = browser.all_records()
    coarse = next(r.coarse for r in records if r.coarse)
    stem = records[0].path.stem[:5]
    browser.facets.set_coarse(coarse.split("/")[0])
    browser.labelled_box.setCurrentIndex(browser.labelled_box.findData("labelled"))
    browser.text_edit.setText(stem)
    browser.refresh_text_filter()
    shown = sorted(r.id for r in browser.visible_records())
    assert 0 < len(shown) < len(records)

    monkeypatch.setattr(QInputDialog, "getText", lambda *a, **k: ("My plaids", True))
    window.saved_menu.aboutToShow.emit()  # the menu as the user opens it
    save = window.saved_menu.actions()[0]
    assert save.text().startswith("Save current filters")
    save.trigger()
    # Stored in the library: a teammate opening it sees the search.
    with Library.open(library_path) as other:
        [entry] = saved_searches(other)
    assert entry.name == "My plaids"
    assert entry.text == stem
    assert entry.filters == {"coarse": coarse.split("/")[0], "labelled": True}

    browser.facets.reset_button.click()
    assert len(browser.visible_records()) == len(records)
    window.tabs.setCurrentIndex(1)
    window.saved_menu.aboutToShow.emit()
    [chosen] = [a for a in window.saved_menu.actions() if a.text() == "My plaids"]
    chosen.trigger()
    assert window.tabs.currentIndex() == 0
    assert browser.text_edit.text() == stem
    assert browser.facets.current_filter().labelled is True
    assert sorted(r.id for r in browser.visible_records()) == shown

    # Reopened, the menu still offers it; Delete… forgets it.
    window.libraries.close_library()
    assert open_library(window, library_path)
    window.saved_menu.aboutToShow.emit()
    assert "My plaids" in [a.text() for a in window.saved_menu.actions()]
    monkeypatch.setattr(QInputDialog, "getItem", lambda *a, **k: ("My plaids", True))
    window.saved_menu.actions()[-1].trigger()
    assert saved_searches(window.library) == []


def test_saved_searches_replace_by_name_and_a_damaged_value_lists_none(library_path: Path) -> None:
    from fabricsearch.catalogue import Library, LibraryError
    from fabricsearch.services.search import delete_saved_search, save_search, saved_searches

    with Library.open(library_path) as lib:
        save_search(lib, "Wool  checks", "composition:wool", {"coarse": "plaid"})
        save_search(lib, "autumn", "", {"colour": "orange"})
        save_search(lib, "wool checks", "composition:wool", {"labelled": True})  # replaces
        assert [(s.name, s.filters) for s in saved_searches(lib)] == [
            ("autumn", {"colour": "orange"}),
            ("wool checks", {"labelled": True}),
        ]
        with pytest.raises(LibraryError):
            save_search(lib, "   ", "x")
        assert not delete_saved_search(lib, "nothing by that name")
        lib._put_meta("saved_searches", "{not json")
        assert saved_searches(lib) == []


def test_removal_batches_count_what_is_back(library_path: Path) -> None:
    from fabricsearch.catalogue import Library
    from fabricsearch.services.records import removal_batches, restore_removed

    with Library.open(library_path) as lib:
        records = lib.images()
        first = lib.remove_paths([records[0].path, records[1].path])
        lib.remove_paths([records[2].path])
        batches = removal_batches(lib)
        assert [(b.count, b.back) for b in batches] == [(1, 0), (2, 0)]
        assert batches[1].record == first.record
        rep, encoded = restore_removed(lib, first.record)
        assert len(rep.restored) == 2
        assert encoded == 0  # their codes, if any, came back with them
        assert [(b.count, b.back) for b in removal_batches(lib)] == [(1, 0), (2, 2)]
