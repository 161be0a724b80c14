# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""The bare `fabricsearch` start (issue 24): the window opens at once and prepares the demo
library in the background with its progress on the welcome page (item 5); a system without
Qt's X11 libraries gets the packages to install and exit status 2, not Qt's abort (item 6)."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    fabric_folder,
    gui_env,
    library_template,
)

from fabricsearch.jobs import Progress, report

pytestmark = pytest.mark.gui


def test_bare_start_shows_window_while_demo_builds_then_opens_it(
    qtbot, gui_env: Path, library_template: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fabricsearch import demo
    from fabricsearch.gui.app import open_window
    from fabricsearch.gui.main_window import MainWindow
    from fabricsearch.gui.messages import RecordingSink
    from fabricsearch.gui.settings import Settings

    release = threading.Event()
    built: list[Path] = []

    def tiny_build(folder, progress=None, cancel=None, **_kw):  # type: ignore[no-untyped-def]
        # Half the photos drawn (15 % of the whole), then wait for the test to look.
        report(progress, "synth", 12, 24, "images")
        assert release.wait(30)
        report(progress, "import", 24, 24, "images")
        shutil.copytree(library_template, folder)
        (Path(folder) / demo._READY).write_text("ok\n", encoding="utf-8")
        built.append(Path(folder))
        return Path(folder)

    monkeypatch.setattr(demo, "build_demo_library", tiny_build)
    settings = Settings()
    win = MainWindow(settings, sink=RecordingSink())
    qtbot.addWidget(win)
    open_window(win, settings, None)  # what `fabricsearch` with no arguments does
    # The window is up before the demo exists, saying how far its preparation is.
    assert win.isVisible()
    assert win.library is None
    assert win.stack.currentWidget() is win.welcome
    qtbot.waitUntil(lambda: "Preparing the demo library… 15 %" in win.welcome.preparing.text())
    assert win.welcome.preparing.isVisible()
    assert not win.welcome.demo_button.isEnabled()  # a second build is not offered
    with qtbot.waitSignal(win.libraryOpened, timeout=30_000):
        release.set()
    assert built == [demo.demo_folder()]
    assert win.library.folder == demo.demo_folder().resolve()
    assert not win.welcome.preparing.isVisible()
    assert win.welcome.demo_button.isEnabled()
    win.close()


def test_demo_progress_is_one_growing_percentage() -> None:
    from fabricsearch.services.demo import OverallProgress

    seen: list[Progress] = []
    overall = OverallProgress(seen.append)
    for stage, done, total in [
        ("synth", 0, 240),
        ("synth", 240, 240),
        ("scan", 240, 240),
        ("import", 120, 240),
        ("import", 240, 240),
        ("features", 240, 240),
        ("fit", 1, 2),
        ("encode", 0, 240),  # a stage restarting at 0 does not move the bar back
        ("encode", 240, 240),
    ]:
        overall(Progress(stage, done, total))
    percents = [p.done for p in seen]
    assert percents == sorted(percents)
    assert percents[0] == 0
    assert percents[1] == 30
    assert 45 <= percents[3] <= 50
    assert percents[-1] == 99  # 100 only once the demo is ready
    assert {p.stage for p in seen} == {"demo"}
    assert seen[3].message == "Reading photos"


def test_missing_xcb_library_names_the_package_and_exits_2(
    gui_env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch.cli import main as cli_main
    from fabricsearch.gui import qtcheck
    from fabricsearch.logging_setup import log_file

    monkeypatch.setattr(qtcheck.sys, "platform", "linux")
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setattr(qtcheck, "loadable", lambda soname: soname != "libxcb-cursor.so.0")
    assert cli_main([]) == 2  # bare `fabricsearch`: the window
    err = capsys.readouterr().err
    assert "libxcb-cursor.so.0" in err
    assert "sudo apt install libxcb-cursor0" in err
    assert "libxcb-cursor0" in log_file().read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("platform", "env", "checked"),
    [
        ("linux", {"QT_QPA_PLATFORM": "xcb"}, True),
        ("linux", {}, True),
        ("linux", {"XDG_SESSION_TYPE": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, False),
        ("linux", {"QT_QPA_PLATFORM": "offscreen"}, False),
        ("linux", {"QT_QPA_PLATFORM": "wayland;xcb"}, False),
        ("darwin", {}, False),
        ("win32", {"QT_QPA_PLATFORM": "xcb"}, False),
    ],
)
def test_xcb_check_only_where_qt_uses_xcb(platform: str, env: dict, checked: bool) -> None:
    from fabricsearch.gui.qtcheck import xcb_problem

    problem = xcb_problem(lambda _soname: False, platform, env)
    assert (problem is not None) == checked
    if checked:
        assert "libxcb-cursor0" in problem
        assert "libxkbcommon-x11-0" in problem
    assert xcb_problem(lambda _soname: True, platform, env) is None


def test_setup_script_warns_about_missing_x11_libraries() -> None:
    script = (Path(__file__).parents[1] / "scripts" / "setup.sh").read_text(encoding="utf-8")
    assert "fabricsearch.gui.qtcheck" in script
