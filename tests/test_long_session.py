"""The scripted long session (scripts/long_session.py, issue 24 "an hour of use") at a tiny
scale: it runs to the end, does what it says, and its verdict follows its figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.gui, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "long_session.py"


def test_a_tiny_long_session_ends_without_growth_or_stuck_preview(tmp_path: Path) -> None:
    out = tmp_path / "long_session.json"
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--scale", "0.02", "--workers", "0"]
        + ["--work", str(tmp_path / "work"), "--out", str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.is_file(), done.stdout + done.stderr
    result = json.loads(out.read_text(encoding="utf-8"))
    summary = result["summary"]
    # What the session did: every count of the scaled plan, the import in the background.
    assert summary["selections"] == result["counts"]["selections"] == 20
    assert summary["searches"] == 2
    assert summary["failed_searches"] == []
    assert summary["switches"] == 4  # two in the warm-up, two after it
    assert summary["imported"] == result["counts"]["images_import"]
    assert summary["selections_during_import"] > 0
    assert len(result["samples"]) >= 5
    # The verdict follows the figures, and the exit code the verdict.
    assert summary["passed"] == (
        summary["growth_mb"] < summary["max_growth_mb"] and summary["stuck_previews"] == 0
    )
    assert done.returncode == (0 if summary["passed"] else 1), done.stdout + done.stderr
    assert summary["stuck_previews"] == 0, result["stuck"]
    assert summary["growth_mb"] < summary["max_growth_mb"]
    assert "growth_mb" in done.stdout
