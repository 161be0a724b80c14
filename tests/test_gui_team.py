# ruff: noqa: F811 - pytest fixtures imported from other test modules are redefined as arguments
"""Two windows on one team library see each other's labels (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pytest
from backends import pg_database, pg_server  # noqa: F401 - fixtures
from test_gui_support import N_IMAGES, fabric_folder, gui_env  # noqa: F401 - fixtures

pytestmark = pytest.mark.gui


def _window(qtbot):  # type: ignore[no-untyped-def]
    from fabricsearch.gui.main_window import MainWindow
    from fabricsearch.gui.messages import RecordingSink
    from fabricsearch.gui.settings import Settings

    win = MainWindow(Settings(), sink=RecordingSink())
    qtbot.addWidget(win)
    win.resize(1000, 700)
    win.show()
    return win


def test_two_windows_see_each_others_labels(
    qtbot, gui_env, pg_database: str, fabric_folder: Path
) -> None:
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import import_folder

    with Library.create(pg_database, photos_root=fabric_folder) as lib:
        import_folder(lib, fabric_folder, workers=0)
    a, b = _window(qtbot), _window(qtbot)
    for win in (a, b):
        with qtbot.waitSignal(win.libraries.recordsLoaded, timeout=20_000):
            assert win.open_library(pg_database)
        assert win.browser.model.rowCount() == N_IMAGES
        assert pg_database in win.windowTitle()
    target = a.browser.model.record(0)
    a.browser.grid.select_ids([target.id])
    assert a.labelling.label_selection({"fine": "twill", "tightness": 70.0})

    def b_sees(fine: str | None) -> bool:
        recs = {r.id: r for r in b.browser.all_records()}
        return recs[target.id].fine == fine

    qtbot.waitUntil(lambda: b_sees("twill"), timeout=15_000)  # polled every 1.5 s
    b.browser.grid.select_ids([target.id])
    assert b.labelling.label_selection({"fine": "plain"})
    qtbot.waitUntil(
        lambda: {r.id: r for r in a.browser.all_records()}[target.id].fine == "plain",
        timeout=15_000,
    )
    with Library.open(pg_database) as lib:
        history = [(h["field"], h["old"], h["new"]) for h in lib.label_history(target.id)]
    assert history[-1] == ("fine", "twill", "plain")
    for win in (a, b):
        win.close()
