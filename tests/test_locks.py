"""Cross-process locks go through `fabricsearch.locks` (filelock's primitive: flock on POSIX,
LockFileEx on Windows): a busy lock names its holder, a holder that dies releases it, and no
module locks with fcntl directly any more, which did nothing on Windows (issue 21)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fabricsearch import locks
from fabricsearch.catalogue import Library, LibraryError

ROOT = Path(__file__).resolve().parent.parent

HOLDER = r"""
import sys, time
from pathlib import Path
if sys.argv[1] == "library":
    from fabricsearch.catalogue import Library
    lib = Library.open(sys.argv[2])
    ctx = lib.exclusive("training")
else:
    from fabricsearch import locks
    ctx = locks.hold(sys.argv[2])
with ctx:
    Path(sys.argv[3]).write_text("held")
    time.sleep(120)
"""


def _start_holder(kind: str, target: Path, tmp_path: Path) -> subprocess.Popen[bytes]:
    marker = tmp_path / f"held-{time.monotonic_ns()}"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, str(target), str(marker)],
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"the holder did not start: {proc.communicate()[1].decode()[-2000:]}")
        time.sleep(0.02)
    return proc


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_no_module_locks_with_fcntl_directly() -> None:
    users = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "fabricsearch").rglob("*.py")
        if re.search(r"^\s*(import fcntl|from fcntl )", path.read_text("utf-8"), re.M)
        or "msvcrt" in path.read_text("utf-8")
    ]
    assert users == []


def test_busy_lock_names_its_holder_and_a_killed_holder_releases_it(tmp_path: Path) -> None:
    path = tmp_path / "job.lock"
    proc = _start_holder("file", path, tmp_path)
    try:
        with pytest.raises(locks.LockBusy) as busy, locks.hold(path):
            pass
        assert busy.value.holder.startswith(f"pid {proc.pid} since ")
    finally:
        _kill(proc)
    with locks.hold(path) as f:  # the OS released the dead holder's lock
        f.seek(0)
        assert f.read().decode().strip().startswith(f"pid {os.getpid()} ")


def test_library_lock_across_processes(tmp_path: Path) -> None:
    folder = tmp_path / "lib"
    Library.create(folder).close()
    proc = _start_holder("library", folder, tmp_path)
    try:
        with Library.open(folder) as lib:
            with (
                pytest.raises(
                    LibraryError,
                    match=rf"a training is already running .*\(by pid {proc.pid} since ",
                ),
                lib.exclusive("training"),
            ):
                pass
            with lib.exclusive("import"):  # another name is another lock
                pass
    finally:
        _kill(proc)
    with Library.open(folder) as lib, lib.exclusive("training"):
        pass


def test_waiting_polls_and_can_be_stopped(tmp_path: Path) -> None:
    path = tmp_path / "w.lock"
    calls = []

    class Stop(Exception):
        pass

    def on_wait() -> None:
        calls.append(1)
        if len(calls) == 3:
            raise Stop

    with locks.hold(path):  # another open file of this process conflicts like another process
        with pytest.raises(Stop), locks.hold(path, wait=True, poll_s=0.01, on_wait=on_wait):
            pass
        assert len(calls) == 3
    holder = locks.hold(path)
    holder.__enter__()
    threading.Timer(0.2, holder.__exit__, (None, None, None)).start()
    start = time.monotonic()
    with locks.hold(path, wait=True, poll_s=0.01):  # got once the holder lets go
        assert time.monotonic() - start >= 0.15


def test_removed_lock_file_is_not_shared_by_two_holders(tmp_path: Path) -> None:
    # B opens the file while A holds it, A finishes (removing it), B then locks the removed
    # file: B must notice and lock the file under the name, or C could hold it at once.
    path = tmp_path / "copy.lock"
    a = locks.hold(path, remove=True)
    a.__enter__()
    b_has_it = threading.Event()
    b_done = threading.Event()

    def b() -> None:
        with locks.hold(path, wait=True, poll_s=0.01, remove=True):
            b_has_it.set()
            b_done.wait(30)

    thread = threading.Thread(target=b)
    thread.start()
    time.sleep(0.2)  # B is waiting on A's file
    a.__exit__(None, None, None)
    assert b_has_it.wait(30)
    try:
        with pytest.raises(locks.LockBusy), locks.hold(path, remove=True):
            pass
    finally:
        b_done.set()
        thread.join(30)
    assert not path.exists()


def test_windows_removes_the_lock_file_after_closing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    removed_while_open = []
    path = tmp_path / "x.lock"
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        removed_while_open.append(not f.closed)
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(locks.sys, "platform", "win32")
    monkeypatch.setattr(Path, "unlink", unlink)
    with locks.hold(path, remove=True) as f:
        pass
    assert removed_while_open == [False]
    assert not path.exists()


def test_library_copy_lock_is_busy_then_removed(tmp_path: Path) -> None:
    from fabricsearch.catalogue.copying import copy_library, staging_folder

    source = tmp_path / "src"
    Library.create(source).close()
    dest = tmp_path / "dest"
    lock = staging_folder(dest).with_name(staging_folder(dest).name + ".lock")
    with (
        locks.hold(lock),
        pytest.raises(LibraryError, match="another `library copy` into .* is running"),
    ):
        copy_library(source, dest)
    lock.unlink()
    copy_library(source, dest)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".", "d"))) == ["dest"]
