# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""GUI start on a damaged last library falls back to the welcome page with the reason (issue
17 item 10); a read-only library opens for search and says so (item 15)."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    N_IMAGES,
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    window,
)

from fabricsearch.catalogue.schema import SCHEMA_VERSION

pytestmark = pytest.mark.gui


def _damage(folder: Path, how: str) -> None:
    db = folder / "catalogue.sqlite"
    if how == "empty":
        db.write_bytes(b"")
    elif how == "zeroed":
        size = db.stat().st_size
        with open(db, "r+b") as f:
            f.seek(4096)
            f.write(b"\0" * (size - 4096))
    else:
        conn = sqlite3.connect(db)
        with conn:
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, 'future', 0)", (SCHEMA_VERSION + 1,)
            )
        conn.close()


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("empty", "is empty (0 bytes)"),
        ("zeroed", "is damaged"),
        ("newer", "written by a newer fabricsearch"),
    ],
)
def test_start_on_damaged_library_shows_welcome_with_reason(
    qtbot, gui_env, library_path: Path, how: str, says: str
) -> None:
    from fabricsearch.gui.app import initial_library
    from fabricsearch.gui.main_window import MainWindow
    from fabricsearch.gui.messages import RecordingSink
    from fabricsearch.gui.settings import Settings

    settings = Settings()
    settings.add_recent_library(library_path)
    _damage(library_path, how)
    before = hashlib.sha256((library_path / "catalogue.sqlite").read_bytes()).digest()
    win = MainWindow(settings, sink=RecordingSink())
    qtbot.addWidget(win)
    win.show()
    # What `app.run` does at start.
    path, create = initial_library(settings, None)
    assert (path, create) == (library_path.resolve(), False)
    assert not win.open_library(path, create=create)
    qtbot.waitUntil(lambda: win.welcome.problem.isVisible(), timeout=5_000)
    assert win.library is None
    assert win.stack.currentWidget() is win.welcome
    assert says in win.welcome.problem.text()
    assert says in win.sink.messages[-1]
    assert hashlib.sha256((library_path / "catalogue.sqlite").read_bytes()).digest() == before
    win.close()


def test_read_only_library_opens_for_search(
    window, library_path: Path, qtbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FABRICSEARCH_READ_ONLY", "1")
    with qtbot.waitSignal(window.libraryOpened):
        assert window.open_library(library_path)
    assert window.library.read_only
    assert "(read-only)" in window.windowTitle()
    assert "Read-only" in window.statusBar().currentMessage()
    assert window.browser.model.rowCount() == N_IMAGES
    first = window.browser.model.record(0)
    qtbot.waitUntil(lambda: window.cache.image(first.id) is not None, timeout=10_000)
    window.sink.messages.clear()
    window.browser.grid.select_ids([first.id])
    assert not window.labelling.label_selection({"fine": None})
    assert "read-only" in window.sink.messages[-1]
