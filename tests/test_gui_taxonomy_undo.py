# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""The window's undo of a taxonomy edit that cannot be reversed any more (a photo was labelled
with its new category since, outside the undo stack) says why, changes nothing and drops the
step."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

pytestmark = [pytest.mark.gui, pytest.mark.filterwarnings("ignore::DeprecationWarning")]


def test_refused_taxonomy_undo_says_why(window, library_path: Path, qtbot) -> None:
    assert open_library(window, library_path)
    with qtbot.waitSignal(window.categories.taxonomyChanged, timeout=10_000):
        assert window.categories.edit("fine", "add", ("leno",))
    photo = window.browser.all_records()[0].id
    window.library.set_labels([photo], fine="leno")  # another window, a colleague
    steps = window.undo_stack.count()
    window.undo_action.trigger()
    assert "cannot undo add fine leno: 1 images are now labelled 'leno'" in window.sink.messages[-1]
    assert "leno" in window.library.taxonomy.active_fine()
    assert window.library.get(photo).fine == "leno"
    assert window.undo_stack.count() == steps - 1
