"""kill -9 in the middle of an import never corrupts the catalogue; a re-run completes it,
also when the kill (or a Ctrl-C) lands in the encode stage."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
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


def _start_import(lib_dir: Path, photos: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(
        [sys.executable, "-m", "fabricsearch", "import", str(lib_dir), str(photos)]
        + ["--workers", "0"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


class _StderrReader:
    """Reads the child's stderr (its progress bars) in a thread, so a child that never gets
    to the awaited stage cannot hang the test."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.chunks: list[bytes] = []
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        while chunk := self.proc.stderr.read1(4096):
            with self.changed:
                self.chunks.append(chunk)
                self.changed.notify_all()
        with self.changed:
            self.chunks.append(b"")  # end of output
            self.changed.notify_all()

    def wait_for(self, text: bytes, timeout: float) -> None:
        with self.changed:
            self.changed.wait_for(
                lambda: text in b"".join(self.chunks) or (self.chunks and not self.chunks[-1]),
                timeout,
            )

    def text(self) -> str:
        self.thread.join(timeout=60)
        return b"".join(self.chunks).decode(errors="replace")


@pytest.mark.parametrize("how", ["SIGKILL", "Ctrl-C"])
def test_interrupted_encode_is_finished_by_a_rerun(tmp_path: Path, how: str) -> None:
    """Kill (or Ctrl-C) an import during its encode stage; running it again makes every
    image findable (issue 17, item 3)."""
    from fabricsearch.cli import main as cli_main
    from fabricsearch.pretrain import shipped_model_path
    from fabricsearch.search import Searcher
    from fabricsearch.workflows import create_library

    if not shipped_model_path().exists():
        pytest.skip("no shipped model in fabricsearch/resources/models")
    n = 192  # six encode batches: the first progress report comes long before the end
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(11)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)).save(
            photos / f"p{i:03d}.png"
        )
    lib_dir = tmp_path / "lib"
    create_library(lib_dir).close()

    proc = _start_import(lib_dir, photos)
    stderr = _StderrReader(proc)
    try:
        stderr.wait_for(b"encode", timeout=240)
        assert proc.poll() is None, f"import ended before its encode stage: {stderr.text()}"
        if how == "SIGKILL":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            os.kill(proc.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground process
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.stdout is not None
    out = proc.stdout.read().decode()
    if how == "SIGKILL":
        assert proc.returncode == -signal.SIGKILL
    else:
        # Cancelled: exit 130, and the message says what was committed, never "nothing".
        err = stderr.text()
        assert proc.returncode == 130, err[-2000:]
        assert "nothing was changed" not in err
        assert f"the import finished (added {n}," in err, err[-2000:]
        assert "run the import again" in err, err[-2000:]
        assert f"added {n}," in out

    with Library.open(lib_dir) as lib:
        active = lib.active_model()
        assert lib.count() == n
        assert lib.count_codes(active.version) < n  # the interrupted encode left images out
    assert cli_main(["import", str(lib_dir), str(photos), "--json", "--workers", "0"]) == 0
    with Library.open(lib_dir) as lib:
        assert lib.count_codes(lib.active_model().version) == n
        searcher = Searcher(lib)
        for rec in lib.images():
            hits = searcher.search(rec.path, k=5).hits
            assert any(h.image_id == rec.id and h.exact for h in hits), rec.path


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:  # field 4 of /proc/PID/stat: the parent's pid
                out.append(int(entry.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_workers_exit_when_the_import_is_killed(tmp_path: Path) -> None:
    """Only the importing process is killed (not its group): its pool workers end too."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(6)
    for i in range(N_IMAGES):
        a = rng.integers(0, 256, (160, 160, 3), dtype=np.uint8)
        Image.fromarray(a).save(photos / f"p{i:04d}.jpg", quality=90)
    lib_dir = tmp_path / "lib"
    Library.create(lib_dir).close()
    proc = subprocess.Popen(
        [sys.executable, "-m", "fabricsearch", "import", str(lib_dir), str(photos)]
        + ["--workers", "2"],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if rows_in(lib_dir / "catalogue.sqlite") > 0:
                workers = [p for p in _children(proc.pid) if _alive(p)]
                if workers:
                    break
            time.sleep(0.01)
        assert proc.poll() is None, "import finished before it could be killed"
        assert workers, "no worker processes seen"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.05)
        assert not any(_alive(p) for p in workers), "workers outlived the killed import"
    finally:
        if proc.poll() is None:
            proc.kill()
        for p in workers:  # leave nothing behind, also when the test fails
            if _alive(p):
                os.kill(p, signal.SIGKILL)
