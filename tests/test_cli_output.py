"""CLI output when it is not a terminal (issue 17, low items): progress as plain lines in logs,
a closed pipe (``| head``) ends quietly."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library
from fabricsearch.cli.common import tqdm_progress
from fabricsearch.jobs import Progress

REPO = Path(__file__).resolve().parent.parent


def test_progress_in_a_log_is_plain_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()  # isatty() is False, as for a log file or a pipe
    monkeypatch.setattr(sys, "stderr", log)
    with tqdm_progress() as (progress, _cancel):
        for done in range(1, 1001):
            progress(Progress("import", done, 1000, "images"))
        for done in range(1, 101):
            progress(Progress("encode", done, 100, "img"))
    text = log.getvalue()
    assert "\r" not in text
    assert text.splitlines() == [
        "import: 1/1000 images",
        "import: 1000/1000 images",
        "encode: 1/100 img",
        "encode: 100/100 img",
    ]


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    Library.create(tmp_path / "lib").close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabricsearch", "info", str(tmp_path / "lib"), "--json"],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    proc.stdout.close()  # the reader is gone before anything is written (`| head -0`)
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    proc.stderr.close()
    assert "Traceback" not in err
    assert "BrokenPipe" not in err
    assert proc.returncode == 141  # what a shell reports for a process ended by SIGPIPE
