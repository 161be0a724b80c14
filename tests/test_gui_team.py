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


def _with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    user, host = rest.split("@", 1)
    return f"{scheme}://{user}:{password}@{host}"


def test_team_library_is_remembered_without_its_password(
    qtbot, gui_env, pg_database: str, fabric_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtWidgets import QInputDialog

    from fabricsearch.catalogue import Library, LibraryError
    from fabricsearch.gui.settings import Settings

    Library.create(pg_database, photos_root=fabric_folder).close()
    typed = _with_password(pg_database, "s3cret")  # the test server trusts: ignored by it
    monkeypatch.setattr(QInputDialog, "getText", staticmethod(lambda *a, **k: (typed, True)))
    win = _window(qtbot)
    with qtbot.waitSignal(win.libraries.recordsLoaded, timeout=20_000):
        win.libraries.connect_team_library_dialog()
    assert win.settings.recent_libraries()[0] == pg_database
    win.settings.sync()
    assert "s3cret" not in Path(win.settings.file_name).read_text()
    entries = [a.text() for a in win.recent_menu.actions()]
    assert entries[0] == pg_database

    # Reopened from the Library menu; a server that wants a password asks for it.
    win.close_library()
    real_open = Library.open.__func__  # type: ignore[attr-defined]

    def needs_password(cls, location, *a, **k):  # type: ignore[no-untyped-def]
        if isinstance(location, str) and "password=" not in location:
            raise LibraryError("connection failed: fe_sendauth: no password supplied")
        return real_open(cls, location, *a, **k)

    monkeypatch.setattr(Library, "open", classmethod(needs_password))
    asked: list[str] = []
    monkeypatch.setattr(win.libraries, "ask_password", lambda url: asked.append(url) or "t0p-pw-9")
    with qtbot.waitSignal(win.libraries.recordsLoaded, timeout=20_000):
        win.recent_menu.actions()[0].trigger()
    assert asked == [pg_database]
    assert win.libraries.library is not None
    assert win.libraries.library.location == pg_database
    assert pg_database in win.windowTitle()
    assert Settings().recent_libraries()[0] == pg_database
    assert "t0p-pw-9" not in Path(win.settings.file_name).read_text()
    win.close()


def test_training_by_another_client_shows_in_the_status_bar(
    qtbot, gui_env, pg_database: str, fabric_folder: Path
) -> None:
    from fabricsearch.catalogue import Library, jobprogress, team
    from fabricsearch.jobs import Progress

    Library.create(pg_database, photos_root=fabric_folder).close()
    win = _window(qtbot)
    with qtbot.waitSignal(win.libraries.recordsLoaded, timeout=20_000):
        assert win.open_library(pg_database)
    expected = f"Training by {team.holder()}: 45 %"
    now = [0.0]
    with (
        Library.open(pg_database) as other,
        other.exclusive("training"),
        jobprogress.recording(other, "training", None, clock=lambda: now[0]) as record,
    ):
        now[0] = 2.0
        record(Progress("epoch", 9, 20))
        qtbot.waitUntil(lambda: win.statusBar().currentMessage() == expected, timeout=10_000)
    qtbot.waitUntil(lambda: win.statusBar().currentMessage() != expected, timeout=10_000)
    win.close()
