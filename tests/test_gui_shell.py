# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""The window as a thin shell (issue 17): one job runner, an injected message sink, records
loaded off the GUI thread, and changes made by the CLI in the same library shown."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from test_gui_support import (  # noqa: F401 - fixtures
    N_IMAGES,
    fabric_folder,
    gui_env,
    library_path,
    library_template,
    open_library,
    window,
)

from fabricsearch.catalogue import Library

pytestmark = pytest.mark.gui


def test_records_load_in_a_worker_thread(window, library_path: Path, qtbot, monkeypatch) -> None:
    """The whole library is read in a worker (as columns, issue 23); the GUI thread reads
    the count, the first screen and pages of records as rows come into view, never all."""
    from fabricsearch.gui.models import LibraryModel

    threads: list[str] = []
    pages: list[int] = []
    columns, images = Library.columns, Library.images

    def spy_columns(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return columns(self, *args, **kwargs)

    def spy_images(self, ids=None):
        assert ids is not None, "every record read at once"
        if threading.current_thread() is threading.main_thread():
            pages.append(len(ids))
        return images(self, ids)

    monkeypatch.setattr(Library, "columns", spy_columns)
    monkeypatch.setattr(Library, "images", spy_images)
    with qtbot.waitSignal(window.libraryOpened, timeout=10_000):
        assert window.open_library(library_path)
        # Until the worker delivers, the count and the first screen show, labels are read.
        assert window.libraries.loading
        assert window.count_label.text() == f"{N_IMAGES} images · reading labels…"
        assert window.browser.model.rowCount() == N_IMAGES
    assert window.browser.model.rowCount() == N_IMAGES
    assert "labelled" in window.count_label.text()
    assert threads
    assert threading.main_thread().name not in threads
    window.browser.grid.viewport().grab()  # painting reads pages of records
    assert all(n <= LibraryModel.PAGE for n in pages)


def test_messages_go_to_the_injected_sink(window, tmp_path: Path) -> None:
    from fabricsearch.gui.messages import RecordingSink

    assert isinstance(window.sink, RecordingSink)
    for name in ("interactive", "messages", "train_config_overrides"):
        assert not hasattr(window, name)  # no test switches in the window's state
    (tmp_path / "junk").mkdir()
    assert not window.open_library(tmp_path / "junk")
    assert "not a fabricsearch library" in window.sink.messages[-1]
    assert window.welcome.problem.isVisibleTo(window)


def test_runner_replaces_a_search_and_refuses_a_second_training(window, qtbot) -> None:
    release = threading.Event()

    def slow(progress=None, cancel=None):
        while not release.wait(0.01):
            if cancel.cancelled:
                from fabricsearch.jobs import Cancelled

                raise Cancelled()
        return "done"

    outcomes: list[str] = []
    first = window.runner.start(
        slow, name="a", slot="search", on_cancelled=lambda: outcomes.append("first cancelled")
    )
    with qtbot.waitSignal(first.cancelled, timeout=10_000):
        second = window.runner.start(
            slow, name="b", slot="search", replace=True, on_finished=outcomes.append
        )
    assert window.runner.running("search")
    assert window.runner.worker("search") is second
    release.set()
    qtbot.waitUntil(lambda: "done" in outcomes, timeout=10_000)
    assert outcomes == ["first cancelled", "done"]


def test_window_shows_labels_changed_by_the_cli(window, library_path: Path, qtbot) -> None:
    """The low item: the open window never saw changes made by the CLI in the same library."""
    from fabricsearch.cli import main

    assert open_library(window, library_path)
    window.libraries.watch_timer.setInterval(50)
    rec = window.browser.all_records()[0]
    window.browser.grid.select_ids([rec.id])
    changed: list[list[int]] = []
    window.libraries.externalChange.connect(changed.append)

    # A label set in this window is the window's own write: nothing to reload or refresh.
    assert window.labelling.label_selection({"fine": "twill"})
    assert not window.libraries.check_external_changes()
    assert not window.libraries.loading
    assert changed == []

    # Another process (the CLI) relabels the image: the grid and the label panel follow.
    csv_path = library_path.parent / "relabel.csv"
    csv_path.write_text(f"path,coarse,fine,tightness\n{rec.path},,satin,12\n", encoding="utf-8")
    assert main(["labels", "import", str(library_path), str(csv_path)]) == 0
    qtbot.waitUntil(lambda: bool(changed), timeout=10_000)
    assert changed[-1] == [rec.id]
    shown = window.browser.model.record(window.browser.model.row_of(rec.id))
    assert (shown.fine, shown.tightness) == ("satin", 12.0)
    assert window.browser.grid.selected_ids() == [rec.id]
    assert window.label_panel.tight_spin.value() == 12
    assert "changed outside" in window.statusBar().currentMessage()


def test_the_core_runs_without_qt() -> None:
    """Only fabricsearch/gui imports PySide6: the CLI and the core load without it."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import fabricsearch.cli, fabricsearch.search, fabricsearch.suggest, fabricsearch.watch\n"
        "import fabricsearch.catalogue, fabricsearch.workflows\n"
        "from fabricsearch.cli import search_cmd\n"
        "assert not [m for m in sys.modules if m.startswith('PySide6')], 'Qt loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
