"""kill -9 in the middle of an import never corrupts the catalogue; a re-run completes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import import_folder

N_IMAGES = 300
REPO = Path(__file__).resolve().parent.parent


def rows_in(db: Path) -> int:
    """Row count seen by an independent reader (as another process would see it)."""
    if not db.exists():
        return 0
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0  # schema not created yet


@pytest.mark.parametrize("workers", ["0", "2"])
def test_kill_during_import_then_resume(tmp_path: Path, workers: str) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(5)
    for i in range(N_IMAGES):
        # 160 px noise JPEGs: slow enough to decode that the kill lands mid-import.
        a = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
        Image.fromarray(a).save(photos / f"p{i:04d}.jpg", quality=90)
    lib_dir = tmp_path / "lib"
    Library.create(lib_dir).close()
    db = lib_dir / "catalogue.sqlite"

    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabricsearch", "import", str(lib_dir), str(photos)]
        + ["--workers", workers, "--json"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: the kill takes its workers too
    )
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline and proc.poll() is None:
            seen = rows_in(db)
            if seen > 0:
                break
            time.sleep(0.01)
        assert proc.poll() is None, "import finished before it could be killed"
        assert seen > 0, "no rows committed within 60 s"
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    with Library.open(lib_dir) as lib:
        assert lib.integrity_check() == "ok"
        partial = lib.count()
        assert 0 < partial < N_IMAGES
        # Every committed row is complete: palette readable, thumbnails on disk.
        for rec in lib.images():
            assert rec.palette.shape == (10, 4)
            assert lib.thumb_path(rec.sha256, 256).is_file()
        rep = import_folder(lib, photos, workers=0)
        assert rep.failed == []
        assert rep.added + rep.unchanged == N_IMAGES
        assert rep.unchanged == partial
        assert lib.count() == N_IMAGES
        shas = [r.sha256 for r in lib.images()]
        paths = [str(r.path) for r in lib.images()]
        assert len(set(shas)) == len(set(paths)) == N_IMAGES  # no duplicates
        assert lib.integrity_check() == "ok"
