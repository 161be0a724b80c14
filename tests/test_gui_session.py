# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""The window's state has one owner (issue 21 item 5): `LibrarySession` emits one signal per
change and every panel updates itself from it; the labelling controller calls no other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    N_IMAGES,
    fabric_folder,
    gui_env,
    library_template,
    open_library,
    trained_library_path,
    trained_template,
    window,
)

from fabricsearch.gui.dropping import QueryInput

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

LABELLING = Path(__file__).resolve().parents[1] / "fabricsearch/gui/controllers/labelling.py"


def test_a_label_change_is_one_signal_that_every_panel_follows(
    window, trained_library_path: Path, qtbot
) -> None:
    assert open_library(window, trained_library_path)
    session = window.session
    assert window.library is session.library is not None
    rec = window.browser.all_records()[3]
    window.search_panel.k_spin.setValue(N_IMAGES)
    with qtbot.waitSignal(window.searchFinished, timeout=60_000):
        window.search(QueryInput(name=rec.path.name, path=rec.path))
    window.search_panel.grid.select_ids([rec.id])
    assert session.selection == [rec.id]
    assert session.in_results
    assert window.detail.record.id == rec.id

    emitted: list[list[int]] = []
    session.labelsChanged.connect(emitted.append)
    fine = next(f for f in session.taxonomy.active_fine() if f != rec.fine)
    assert window.labelling.label_selection({"fine": fine, "tightness": 42.0})
    assert emitted == [[rec.id]]
    shown = session.taxonomy.fine_names.get(fine, fine)
    # The library grid's record, the results' record and the detail panel all show it.
    assert window.browser.model.records_of([rec.id])[0].fine == fine
    results = window.search_panel.model
    assert results.record(results.row_of(rec.id)).fine == fine
    assert window.detail.selected.fine.text() == shown
    assert window.detail.selected.tightness.text() == "42 %"
    # Undo is one more change, told the same way.
    window.undo_action.trigger()
    assert emitted == [[rec.id], [rec.id]]
    assert window.browser.model.records_of([rec.id])[0].fine == rec.fine


def test_a_category_reaches_the_filters_and_the_label_panel_and_close_clears(
    window, trained_library_path: Path, qtbot
) -> None:
    assert open_library(window, trained_library_path)
    session = window.session
    seen: list[object] = []
    session.taxonomyChanged.connect(seen.append)
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        assert window.categories.edit("fine", "add", ("leno",))
    assert len(seen) == 1
    assert "leno" in seen[0].active_fine()
    assert session.taxonomy is seen[0]
    for box in (
        window.browser.facets.fine_box,
        window.search_panel.facets.fine_box,
        window.label_panel.fine_box,
    ):
        assert box.findData("leno") >= 0
    assert window.detail.taxonomy is seen[0]
    assert window.browser.model.taxonomy is seen[0]
    # The label panel's new shortcut actions are the window's (and only they).
    assert set(window.label_panel.shortcut_actions) <= set(window.actions())

    closed: list[bool] = []
    session.closed.connect(lambda: closed.append(True))
    window.browser.grid.select_ids([window.browser.all_records()[0].id])
    assert session.selection
    window.close_library()
    assert closed == [True]
    assert session.library is None
    assert window.library is None
    assert session.taxonomy is None
    assert session.selection == []
    assert window.stack.currentWidget() is window.welcome
    assert window.session.history == []
    session.labels_changed([1])  # a late undo after the close: nothing to tell
    assert window.count_label.text() == "No library"


def test_the_labelling_controller_calls_no_other_controller_or_panel() -> None:
    names = {"searching", "libraries", "browser", "search_panel", "detail", "label_panel"}
    reached = {
        node.attr
        for node in ast.walk(ast.parse(LABELLING.read_text(encoding="utf-8")))
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "w"
        and node.attr in names
    }
    assert reached == set()
