# ruff: noqa: F811 - pytest fixtures imported from other test modules are redefined as arguments
"""Issue 24's low items in the window: Library ▸ New… into a folder not made yet; counts with
their plural; the window's own watched-folder imports not called another process's; every
shortcut in Help ▸ Labelling shortcuts; a refused record value said beside the field with the
text kept; Connect to team library… on an empty database creates one."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from backends import pg_database, pg_server  # noqa: F401 - fixtures
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


def test_new_library_in_a_folder_not_made_yet(window, tmp_path: Path, qtbot) -> None:
    from PySide6.QtWidgets import QLineEdit

    from fabricsearch.gui.dialogs.new_library_dialog import NewLibraryDialog

    window.libraries.new_library_dialog()
    dialog = window.last_dialog
    assert isinstance(dialog, NewLibraryDialog)
    dialog.setDirectory(str(tmp_path))
    target = tmp_path / "fabrics" / "2026"  # neither folder exists yet
    dialog.findChild(QLineEdit, "fileNameEdit").setText(str(target))
    with qtbot.waitSignal(window.libraryOpened, timeout=30_000):
        dialog.accept()
    assert (target / "catalogue.sqlite").is_file()
    assert window.library.folder == target.resolve()


def test_counts_agree_with_their_noun(window, library_path: Path, qtbot) -> None:
    from fabricsearch.catalogue import Library
    from fabricsearch.gui.messages import plural

    assert [plural(1, "image"), plural(2, "image"), plural(1200, "photo")] == [
        "1 image",
        "2 images",
        "1,200 photos",
    ]
    assert plural(1, "category", "categories") == "1 category"
    assert plural(3, "category", "categories") == "3 categories"
    assert open_library(window, library_path)
    rec = window.browser.all_records()[0]
    with Library.open(library_path) as other:  # another process relabels one image
        other.set_labels([rec.id], fine="satin")
    assert window.libraries.check_external_changes()
    qtbot.waitUntil(lambda: "outside this window" in window.statusBar().currentMessage())
    assert window.statusBar().currentMessage().startswith("1 image changed outside this window")


def test_watched_folder_import_is_not_another_process(
    window, library_path: Path, fabric_folder: Path, tmp_path: Path, qtbot, monkeypatch
) -> None:
    from fabricsearch import workflows

    real = workflows.import_and_encode
    imported, release = threading.Event(), threading.Event()

    def held(*args, **kwargs):  # type: ignore[no-untyped-def]
        # The import is written; its batch waits until the library's poll has looked.
        outcome = real(*args, **kwargs)
        imported.set()
        assert release.wait(30)
        return outcome

    monkeypatch.setattr(workflows, "import_and_encode", held)
    assert open_library(window, library_path)
    window.libraries.watch_timer.stop()  # the test runs the poll itself
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    window.watching.settle = 0.2
    window.watching.poll = True
    window.watching.set_folders([inbox])
    external: list[list[int]] = []
    window.libraries.externalChange.connect(external.append)
    import numpy as np
    from PIL import Image

    pixels = np.random.default_rng(5).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(inbox / "new-arrival.png")  # a photo the library lacks
    qtbot.waitUntil(imported.is_set, timeout=60_000)
    # The poll sees the catalogue changed by the window's own watcher: not "outside".
    assert not window.libraries.check_external_changes()
    with qtbot.waitSignal(window.watching.batchImported, timeout=60_000):
        release.set()
    assert "new photo from inbox imported" in window.statusBar().currentMessage()
    assert not window.libraries.check_external_changes()
    assert external == []
    assert "outside this window" not in window.statusBar().currentMessage()
    window.watching.set_folders([])


def test_help_lists_every_shortcut(window, library_path: Path) -> None:
    assert open_library(window, library_path)
    window.show_shortcuts()
    text = window.sink.messages[-1]
    for key in ("Enter", "Shift+Enter", "Shift+N", "Ctrl+L", "Alt+←", "Alt+→", "Delete"):
        assert f"{key}:" in text or f"{key} /" in text, key
    assert "N: Next unlabelled" in text
    assert "Ctrl+Z: Undo" in text
    assert "[ / ]: tightness" in text  # the labelling keys stay first
    # Every menu action with a shortcut is listed (none forgotten by a hand-written list).
    from fabricsearch.gui.shortcuts import action_keys, menu_actions

    for _menu, action in menu_actions(window.menuBar()):
        for key in action_keys(action):
            assert key in text, action.text()


def test_refused_weight_is_said_beside_the_field_and_the_text_kept(
    window, library_path: Path
) -> None:
    assert open_library(window, library_path)
    rec = window.browser.all_records()[0]
    window.browser.grid.select_ids([rec.id])
    panel = window.metadata_panel
    window.edit_tabs.setCurrentWidget(panel)
    panel.set_field("weight", "heavy")
    assert window.sink.messages == []  # no box
    assert panel.problem_label.isVisible()
    assert panel.problem_label.text().startswith("Weight (g/m²):")
    assert "not a number" in panel.problem_label.text()
    assert panel.edits["weight"].text() == "heavy"  # kept, to be corrected
    assert window.library.metadata([rec.id])[rec.id].weight is None
    panel.set_field("weight", "280")
    assert window.library.metadata([rec.id])[rec.id].weight == 280.0
    assert not panel.problem_label.isVisible()


def test_connect_to_an_empty_team_database_offers_to_create_a_library(
    window, pg_database: str, fabric_folder: Path, qtbot, monkeypatch
) -> None:
    monkeypatch.setattr(window.libraries, "ask_photos_root", lambda _url: str(fabric_folder))
    with qtbot.waitSignal(window.libraryOpened, timeout=60_000):
        assert not window.libraries.open_library(pg_database)  # what the dialog does
    assert "holds no fabricsearch library yet" in window.sink.questions[-1]
    assert not any("holds no fabricsearch library" in m for m in window.sink.messages)
    assert window.library.team is not None
    assert Path(window.library.team.photos_root) == fabric_folder
