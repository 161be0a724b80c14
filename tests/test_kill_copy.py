# ruff: noqa: F811 - pytest fixtures imported from backends are redefined as arguments
"""kill -9 of `fabricsearch library copy` at any point never leaves a destination that looks
like a finished library, and running the copy again completes it (issue 20, item 4)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from backends import pg_database, pg_server  # noqa: F401 - fixtures

from fabricsearch.catalogue import Library, LibraryError, ModelInfo
from fabricsearch.catalogue.copying import copy_library, staging_folder
from fabricsearch.cli import main as cli_main

REPO = Path(__file__).resolve().parent.parent
N_IMAGES = 30

# The copy in a child process, paused (a marker file, then a long sleep) just before the
# function named by STAGE runs, where the test kills it.
CHILD = """
import os, sys, time
from pathlib import Path
from fabricsearch.catalogue import copying
stage, marker = os.environ["STAGE"], Path(os.environ["MARKER"])
original = getattr(copying, stage)
def paused(*args, **kwargs):
    marker.write_text("paused")
    time.sleep(300)
    return original(*args, **kwargs)
setattr(copying, stage, paused)
from fabricsearch.cli import main
sys.exit(main(sys.argv[1:]))
"""

#: Where a copy is killed: the destination just created (no rows), rows written but not
#: committed (the model files step), everything committed but the folder not yet renamed,
#: and (into an existing folder) its parts moved in but not the catalogue.
FOLDER_STAGES = ["_copy", "_copy_model_files", "_move_into_place", "_publish"]
TEAM_STAGES = ["_copy", "_copy_model_files"]


def _source(tmp_path: Path) -> Path:
    photos = tmp_path / "photos"
    folder = tmp_path / "src"
    weights = tmp_path / "m.safetensors"
    weights.write_bytes(b"w" * 3000)
    rng = np.random.default_rng(3)
    with Library.create(folder) as lib:
        with lib.atomic():
            ids = [
                lib.add_image(
                    str(photos / f"img{i:02d}.jpg"),
                    hashlib.sha256(f"photo {i}".encode()).hexdigest(),
                    100 + i,
                    1.0,
                    8,
                    8,
                    rng.random((10, 4), dtype=np.float32),
                )
                for i in range(N_IMAGES)
            ]
        lib.set_labels(ids[:12], coarse="stripe", tightness=40.0, who="ann")
        lib.set_labels(ids[:3], fine="twill", who="bob")
        lib.set_metadata([ids[4]], {"supplier": "Acme"})
        lib.add_model(ModelInfo("v1", "dvsh", 16, weights, 5.0, {"mAP": 0.5}, "note"))
        lib.store_codes("v1", ids, rng.integers(0, 256, (N_IMAGES, 2), dtype=np.uint8))
        lib.record_failure(str(photos / "bad.jpg"), "broken")
    return folder


def _snapshot(lib: Library) -> tuple[object, ...]:
    return (
        [(r.id, str(r.path), r.sha256, r.coarse, r.fine, r.tightness) for r in lib.images()],
        lib.label_history(),
        lib.metadata(),
        [(m.version, m.metrics) for m in lib.models()],
        lib.active_model().path.read_bytes(),
        lib.load_codes("v1")[1].tolist(),
        [(f.path, f.reason) for f in lib.failed_files()],
    )


def _kill_copy_at(stage: str, argv: list[str], tmp_path: Path, while_paused=None) -> None:
    marker = tmp_path / f"paused-{stage}"
    env = dict(os.environ, PYTHONPATH=str(REPO), STAGE=stage, MARKER=str(marker))
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, *argv],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if not marker.exists():
            proc.kill()
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"the copy never reached {stage}: {err.decode(errors='replace')[-2000:]}")
        if while_paused is not None:
            while_paused()
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL


@pytest.mark.parametrize("stage", FOLDER_STAGES)
def test_killed_copy_into_a_folder_is_no_library_and_a_rerun_completes_it(
    tmp_path: Path, stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _source(tmp_path)
    dest = tmp_path / "copy"
    if stage == "_publish":  # an existing folder: its parts are moved in, the catalogue last
        dest.mkdir()
        (dest / "notes.txt").write_text("mine")
    argv = ["library", "copy", str(source), str(dest)]

    def second_copy() -> None:  # one copy at a time: a rerun never clears a running one
        with pytest.raises(LibraryError, match="another `library copy`"):
            copy_library(source, dest)

    _kill_copy_at(stage, argv, tmp_path, second_copy if stage == "_copy_model_files" else None)

    assert not (dest / "catalogue.sqlite").exists()
    with pytest.raises(LibraryError, match="not a fabricsearch library"):
        Library.open(dest)
    assert cli_main(["info", str(dest)]) == 1
    assert "not a fabricsearch library" in capsys.readouterr().err

    assert cli_main(argv) == 0
    with Library.open(source) as src, Library.open(dest) as copy:
        assert copy.count() == N_IMAGES
        assert _snapshot(copy) == _snapshot(src)
    assert not staging_folder(dest).exists()
    if stage == "_publish":
        assert (dest / "notes.txt").read_text() == "mine"
    with pytest.raises(LibraryError, match="already holds a library"):
        copy_library(source, dest)


@pytest.mark.parametrize("stage", TEAM_STAGES)
def test_killed_copy_into_a_team_library_refuses_to_open_and_a_rerun_completes_it(
    pg_database: str, tmp_path: Path, stage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _source(tmp_path)
    argv = ["library", "copy", str(source), pg_database, "--photos-root", str(tmp_path)]

    def second_copy() -> None:
        with pytest.raises(LibraryError, match="another `library copy`"):
            copy_library(source, pg_database, tmp_path)

    _kill_copy_at(stage, argv, tmp_path, second_copy)

    with pytest.raises(LibraryError, match="unfinished copy of .*src"):
        Library.open(pg_database)
    assert cli_main(["info", pg_database]) == 1
    assert "run the same copy again" in capsys.readouterr().err

    assert cli_main(argv) == 0
    with Library.open(source) as src, Library.open(pg_database) as copy:
        assert copy.count() == N_IMAGES
        assert _snapshot(copy) == _snapshot(src)
    with pytest.raises(LibraryError, match="already holds a library"):
        copy_library(source, pg_database, tmp_path)


def test_cancelled_copy_into_a_folder_leaves_nothing(tmp_path: Path) -> None:
    from fabricsearch.jobs import Cancelled, CancelToken

    source = _source(tmp_path)
    dest = tmp_path / "copy"
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        copy_library(source, dest, cancel=token)
    assert not dest.exists()
    assert not staging_folder(dest).exists()
    rep = copy_library(source, dest)
    assert rep.rows["images"] == N_IMAGES
    assert rep.destination == str(dest.resolve())
