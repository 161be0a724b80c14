# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""A watched folder's link that leaves the watched folders is not followed and the window
says so (status bar, the watch label's tooltip), not only the log (issue 20 item 3)."""

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

pytestmark = pytest.mark.gui


def test_a_link_leaving_the_watched_folder_is_reported_in_the_window(
    window, library_path: Path, tmp_path: Path, qtbot
) -> None:
    assert open_library(window, library_path)
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    inbox.mkdir()
    outside.mkdir()
    (inbox / "escape").symlink_to(outside, target_is_directory=True)
    window.watching.settle = 0.2
    window.watching.poll = True
    with qtbot.waitSignal(window.watching.problemFound, timeout=60_000) as blocker:
        window.watching.set_folders([inbox])
    assert "escape" in blocker.args[0]
    assert "outside the watched folders" in blocker.args[0]
    assert window.watching.running  # the rest is still watched
    assert "⚠" in window.watch_label.text()
    assert "Not watched:" in window.watch_label.toolTip()
    assert "escape" in window.statusBar().currentMessage()
    window.watching.set_folders([])
    assert window.watching.problems == []
