# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""Issue 24 item 13 in the window: a photo unlike any labelled fabric shows "None of these",
and neither Enter nor Shift+Enter labels it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

from fabricsearch.catalogue import Library, ModelInfo
from fabricsearch.suggest import Suggestion, SuggestReport

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture
def cleared(library_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Four unlabelled photos; the (scripted) suggestions call two of them unlike any labelled
    fabric, as `suggest_labels` does for a plain solid under a confidently wrong head."""
    with Library.open(library_path) as lib:
        ids = [r.id for r in lib.images()[:4]]
        lib.set_labels(ids, coarse=None, fine=None, tightness=None)
        lib.add_model(ModelInfo("m1", "dvsh", 32, library_path / "m1.safetensors", 0.0))
        paths = {r.id: r.path for r in lib.images(ids)}
        coarse = lib.taxonomy.minors[0]

    def predict_all(library, progress=None, cancel=None):
        def s(i: int, conf: float, familiar: bool) -> Suggestion:
            return Suggestion(i, paths[i], coarse, conf, None, 0.0, 0.97, 0.1, familiar)

        return SuggestReport(
            suggestions=[s(ids[0], 0.9, True), s(ids[1], 0.8, True)],
            unfamiliar=[s(ids[2], 0.97, False), s(ids[3], 0.97, False)],
            min_confidence=0.0,
            familiar_distance=0.05,
        )

    monkeypatch.setattr("fabricsearch.gui.controllers.suggestions.predict_all", predict_all)
    return ids


def test_unlike_fabric_says_none_of_these_and_is_never_accepted(
    window, library_path: Path, cleared: list[int], qtbot
) -> None:
    assert open_library(window, library_path)
    qtbot.waitUntil(lambda: bool(window.suggesting.suggestions), timeout=30_000)
    browser, panel = window.browser, window.label_panel
    odd = cleared[2]
    assert set(window.suggesting.suggestions) == set(cleared[:2])
    assert set(window.suggesting.unfamiliar) == {odd, cleared[3]}
    assert "unlabelled" in browser.model.tooltip(browser.model.record(browser.model.row_of(odd)))

    # One unlike photo selected: "None of these", nothing to accept; Enter labels nothing.
    browser.grid.select_ids([odd])
    assert panel.suggestion_label.isVisibleTo(window)
    assert panel.suggestion_label.text() == "None of these — unlike any labelled fabric"
    assert not panel.accept_button.isVisibleTo(window)
    assert not window.suggesting.accept()
    assert window.library.get(odd).coarse is None

    # Shift+Enter at 0 % over all four: only the two familiar ones are labelled.
    browser.grid.select_ids(cleared)
    assert "2 unlike any labelled fabric" in panel.suggestion_label.text()
    panel.min_confidence.setValue(0)
    browser.grid.setFocus()
    qtbot.keyClick(browser.grid, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    labelled = [i for i in cleared if window.library.get(i).coarse is not None]
    assert labelled == cleared[:2]

    # Shift+N: an unlike photo has no suggestion, so it comes first.
    window.undo_action.trigger()
    browser.grid.setFocus()
    qtbot.keyClick(browser.grid, Qt.Key.Key_N, Qt.KeyboardModifier.ShiftModifier)
    assert browser.grid.selected_ids()[0] in (odd, cleared[3])
