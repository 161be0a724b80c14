# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""The window's path of issue 20 item 1: open a library, Library ▸ Open recent ▸ its own
entry, label, a terminal writes labels, label again: the catalogue stays sound and the
terminal's labels stay."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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

from fabricsearch.catalogue import Library

pytestmark = pytest.mark.gui

TERMINAL = textwrap.dedent(
    """
    import sys
    from fabricsearch.catalogue import Library
    with Library.open(sys.argv[1]) as lib:
        lib.set_labels([int(i) for i in sys.argv[2].split(",")], fine=None, tightness=7.0)
    """
)


def _terminal(folder: Path, ids: list[int]) -> None:
    subprocess.run(
        [sys.executable, "-c", TERMINAL, str(folder), ",".join(map(str, ids))], check=True
    )


def test_reopen_from_recent_then_label_beside_a_terminal(window, library_path: Path, qtbot) -> None:
    open_library(window, library_path)
    lib = window.library
    entries = window.recent_menu.actions()
    assert entries
    assert Path(entries[0].text()).resolve() == library_path.resolve()
    entries[0].trigger()  # the library already open: a no-op, the same Library stays
    assert window.library is lib
    assert not lib.closed
    assert "already open" in window.statusBar().currentMessage()

    records = window.browser.visible_records()
    grid = window.browser.grid
    theirs = [r.id for r in records[-6:]]

    def label(ids: list[int], key: Qt.Key) -> None:
        grid.select_ids(ids)
        grid.setFocus()
        qtbot.keyClick(grid, key)

    label([r.id for r in records[:3]], Qt.Key.Key_1)
    _terminal(library_path, theirs[:3])
    label([r.id for r in records[3:6]], Qt.Key.Key_2)
    _terminal(library_path, theirs[3:])
    label([r.id for r in records[6:9]], Qt.Key.Key_1)
    assert lib.integrity_check() == "ok"
    window.close_library()
    with Library.open(library_path) as fresh:
        assert fresh.integrity_check() == "ok"
        assert [r.tightness for r in fresh.images(theirs)] == [7.0] * 6
        majors = fresh.taxonomy.majors
        assert {r.coarse for r in fresh.images([r.id for r in records[3:6]])} == {majors[1]}
