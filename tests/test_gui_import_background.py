# ruff: noqa: F811 - pytest fixtures imported from test_gui_support are redefined as arguments
"""Issue 24 item 8: Library ▸ Import folder… runs in the background. The window answers all
along (no modal dialog), the photos appear in the grid while the import is still running, the
status bar shows one progress for the whole import that never goes back, with one time left,
and the stages are named in plain words."""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest
from gui_heartbeat import MAX_BLOCK_S, gui_thread_work, heartbeat
from PySide6.QtWidgets import QApplication
from test_gui_support import gui_env, open_library, window  # noqa: F401 - fixtures

from fabricsearch.jobs import Progress
from fabricsearch.stages import OverallProgress, Stage, StagePlan

pytestmark = pytest.mark.gui

N_PHOTOS = 20
#: The network's pass on the import's photos made this much slower, so that the import is
#: still running well after its photos are committed (the grid refreshes every 1.5 s).
SLOW_FEATURES_S = 4.0
#: The longest the GUI thread may go without answering at all. On the loaded 2-core test
#: machine it may wait that long for a core or for the interpreter while the import's
#: threads run; what it does itself is measured by its CPU time (`gui_thread_work`).
MAX_WAIT_S = 2.0
PLAIN_WORDS = {
    "Looking for photos",
    "Reading photos",
    "Learning what they look like",
    "Preparing search",
}


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fabricsearch import synth

    folder = tmp_path_factory.mktemp("incoming")
    synth.write_dataset(folder, N_PHOTOS, seed=3, size=48)
    (folder / "labels.csv").unlink()  # no question about labels
    return folder


@pytest.fixture
def slow_features(monkeypatch: pytest.MonkeyPatch) -> None:
    """The import's feature thread sleeps before its network pass (only that thread: the
    encodings after it keep their speed)."""
    from fabricsearch.hashing import extract

    original = extract.forward_batch

    def slow(*args, **kwargs):
        if threading.current_thread().name == "feature-feed":
            time.sleep(SLOW_FEATURES_S)
        return original(*args, **kwargs)

    monkeypatch.setattr(extract, "forward_batch", slow)


def test_import_runs_in_the_background(
    window, tmp_path: Path, photos: Path, slow_features: None, qtbot
) -> None:
    assert open_library(window, tmp_path / "lib", create=True)
    libraries = window.libraries
    bar = libraries.import_bar
    seen_rows: list[tuple[bool, int]] = []  # (import running, grid rows) at each grid reload
    libraries.recordsLoaded.connect(
        lambda: seen_rows.append((libraries.importing, window.browser.model.rowCount()))
    )
    values: list[int] = []
    bar.bar.valueChanged.connect(values.append)
    labels: list[str] = []
    texts: list[str] = []
    modal: list[object] = []

    def on_change(o) -> None:
        labels.append(o.label)
        texts.append(f"{bar.stage_label.text()} | {bar.bar.text()}")
        modal.append(QApplication.activeModalWidget())

    bar.changed.connect(on_change)

    with (
        heartbeat() as beat,
        gui_thread_work() as work,
        qtbot.waitSignal(window.importEnded, timeout=120_000) as ended,
    ):
        worker = libraries.import_folder(photos)
        assert worker is not None
        assert bar.isVisible()
        assert bar.running
        # A second import while one runs is refused, saying why.
        assert libraries.import_folder(photos) is None
        assert "An import is running" in window.sink.messages[-1]
    # The window never worked for 0.5 s at a stretch, and never stopped answering for long.
    assert work.longest < MAX_BLOCK_S, f"GUI thread busy for {work.longest:.2f} s"
    assert beat.longest < MAX_WAIT_S, beat.report()
    report = ended.args[0]
    assert report is not None
    assert report.added == N_PHOTOS
    assert worker.state == "finished"

    # The photos were in the grid before the import had finished.
    assert any(running and rows > 0 for running, rows in seen_rows), seen_rows
    assert window.browser.model.rowCount() == N_PHOTOS
    # No modal dialog while it ran: the window stayed usable.
    assert modal
    assert all(m is None for m in modal)
    # One progress for the whole import: it never went back, and it got to the end.
    assert values == sorted(values), values
    assert values[-1] >= 0.95 * bar.bar.maximum()
    # Plain words, not the job's own stage names.
    assert set(labels) <= PLAIN_WORDS, set(labels)
    assert {"Reading photos", "Learning what they look like"} <= set(labels)
    for text in texts:
        assert not re.search(r"\b(img|imgs|features|train|encode)\b", text, re.IGNORECASE), text
    assert any("left" in t for t in texts)
    assert not bar.isVisible()  # gone when the import ended


def test_cancel_in_the_status_bar_keeps_the_photos_read(
    window, tmp_path: Path, photos: Path, slow_features: None, qtbot
) -> None:
    assert open_library(window, tmp_path / "lib", create=True)
    libraries = window.libraries
    bar = libraries.import_bar
    with qtbot.waitSignal(window.importEnded, timeout=120_000) as ended:
        worker = libraries.import_folder(photos)
        qtbot.waitUntil(lambda: "Learning" in bar.stage_label.text(), timeout=60_000)
        # Opening another library meanwhile asks first (it would cancel the import).
        window.sink.answer = False
        assert not window.open_library(tmp_path / "other")
        assert "An import is running" in window.sink.questions[-1]
        assert libraries.importing
        bar.cancel_button.click()
        assert bar.stage_label.text() == "Cancelling…"
    assert ended.args[0] is None
    assert worker.state == "cancelled"
    assert not bar.isVisible()
    # What was read is kept and shown; the next import finishes the rest.
    assert window.browser.model.rowCount() == N_PHOTOS


def test_overall_progress_spans_the_stages_without_going_back() -> None:
    plan = StagePlan(
        (
            Stage(("scan",), "Looking", fixed=1.0),
            Stage(("import",), "Reading", per_item=1.0),
            Stage(("features",), "Learning", per_item=1.0),
            Stage(("train",), "Preparing", fixed=2.0),
        ),
        count_stage="import",
    )
    overall = OverallProgress(plan, now=0.0)
    reports = [
        Progress("scan", 0, None, "files"),
        Progress("scan", 10, 10, "files"),
        *(Progress("import", i, 10, "images") for i in range(11)),
        *(Progress("features", i, 10, "img") for i in range(0, 11, 5)),
        Progress("features", 0, 10, "img"),  # an earlier count again: no step back
        Progress("unknown stage", 3, 4),
        Progress("train", 0, 1, "step"),
        Progress("train", 1, 1, "step"),
    ]
    seen = [overall.update(p, now=float(t)) for t, p in enumerate(reports)]
    fractions = [o.fraction for o in seen]
    assert fractions == sorted(fractions)
    assert fractions[-1] == pytest.approx(1.0)
    # Weighted by cost once the count is known: 10 photos read are 10 of 23 expected seconds.
    assert seen[12].fraction == pytest.approx(11 / 23)
    assert [o.label for o in seen[:3]] == ["Looking", "Looking", "Reading"]
    assert seen[-1].label == "Preparing"
    # One time left for the whole job, from its own pace; it counts down between reports.
    half = next(o for o in seen if o.fraction >= 0.5)
    assert half.seconds_left is not None
    assert half.seconds_left > 0
    assert overall.current(now=1000.0).seconds_left == 0.0


def test_the_import_plan_loads_no_network(tmp_path: Path) -> None:
    # The window asks for the plan on its own thread as the import starts: importing torch
    # there froze it for seconds (found by scripts/long_session.py). The test process has
    # torch loaded already, so a fresh one is asked.
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from fabricsearch.catalogue import Library\n"
        "from fabricsearch.services.imports import import_plan\n"
        f"lib = Library.create({str(tmp_path / 'lib')!r})\n"
        "labels = [s.label for s in import_plan(lib).stages]\n"
        "assert 'Learning what they look like' in labels, labels\n"
        "assert 'torch' not in sys.modules\n"
        "lib.close()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
