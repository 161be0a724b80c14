"""Watched folders: settled files imported once, partial copies waited for, Ctrl-C stops.

Time is a fake clock the tests advance; file-system events are real (watchdog), awaited by
polling with a deadline, never by fixed sleeps."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabricsearch.catalogue import Library
from fabricsearch.watch import FolderWatcher

DEADLINE = 20.0


def jpeg(seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", rgb)
    assert ok
    return buf.tobytes()


def until(cond: Callable[[], object], what: str, deadline: float = DEADLINE) -> object:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.02)  # a polling interval, not a wait for something to happen
    raise AssertionError(f"timed out waiting for {what}")


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # No label-free head fitting inside these tests (it runs the image network).
    monkeypatch.setattr("fabricsearch.autohead.wants_auto_head", lambda lib: False)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    clock = Clock()
    with Library.create(tmp_path / "lib") as lib:
        watcher = FolderWatcher(lib, [inbox], settle=2.0, clock=clock)
        watcher.start()
        try:
            yield lib, watcher, clock, inbox
        finally:
            watcher.stop()


def test_partial_file_is_waited_for_and_imported_once(setup) -> None:
    lib, watcher, clock, inbox = setup
    data = jpeg(1)
    target = inbox / "new.jpg"
    with open(target, "wb") as fh:
        fh.write(data[: len(data) // 3])
        fh.flush()
        until(lambda: str(target.resolve()) in watcher.pending or watcher.tick(), "the event")
        clock.t = 1.5
        fh.write(data[len(data) // 3 : 2 * len(data) // 3])
        fh.flush()
        assert watcher.tick() == []  # it grew: its wait starts again
        clock.t = 3.0  # 3 s since first seen, 1.5 s since it last changed
        assert watcher.tick() == []
        assert lib.count() == 0
        fh.write(data[2 * len(data) // 3 :])
    assert watcher.tick() == []  # changed again at t=3.0
    clock.t = 5.1
    batches = watcher.tick()
    assert [(b.added, b.failed) for b in batches] == [(1, [])]
    assert lib.count() == 1
    assert lib.find_by_path(target).size == len(data)
    # Rewritten with the same bytes (a new mtime): seen again, never imported twice.
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    until(lambda: watcher.settled() or watcher.pending, "the touch event")
    clock.t = 8.0
    for b in watcher.tick():
        assert b.added == 0
    assert lib.count() == 1


def test_arrivals_by_rename_and_moves_inside(setup) -> None:
    lib, watcher, clock, inbox = setup
    (inbox / "sub").mkdir()
    tmp = inbox / "sub" / ".copying.jpg.part"
    tmp.write_bytes(jpeg(2))
    tmp.rename(inbox / "sub" / "a.jpg")  # how rsync and browsers deliver a file
    until(lambda: watcher.settled() or watcher.pending, "the rename event")
    clock.t = 10.0
    assert [b.added for b in watcher.tick()] == [1]
    rid = lib.find_by_path(inbox / "sub" / "a.jpg").id
    (inbox / "sub" / "a.jpg").rename(inbox / "b.jpg")
    until(lambda: watcher.settled() or watcher.pending, "the move event")
    clock.t = 20.0
    assert [b.moved for b in watcher.tick()] == [1]
    assert lib.get(rid).path == (inbox / "b.jpg").resolve()
    assert lib.count() == 1


def test_start_catches_up_with_files_added_meanwhile(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("fabricsearch.autohead.wants_auto_head", lambda lib: False)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "old.jpg").write_bytes(jpeg(3))
    (inbox / "notes.txt").write_text("not a photo")
    clock = Clock()
    with Library.create(tmp_path / "lib") as lib:
        watcher = FolderWatcher(lib, [inbox], settle=1.0, clock=clock)
        watcher.start()
        try:
            assert list(watcher.pending) == [str((inbox / "old.jpg").resolve())]
            clock.t = 1.0
            assert [b.added for b in watcher.tick()] == [1]
        finally:
            watcher.stop()
        watcher = FolderWatcher(lib, [inbox], settle=1.0, clock=clock)
        watcher.start()  # already imported: nothing to catch up
        try:
            assert watcher.pending == {}
        finally:
            watcher.stop()


def test_missing_folder_is_refused(tmp_path: Path) -> None:
    with Library.create(tmp_path / "lib") as lib, pytest.raises(FileNotFoundError):
        FolderWatcher(lib, [tmp_path / "nope"])


def test_cli_watch_imports_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    Library.create(tmp_path / "lib").close()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fabricsearch",
            "watch",
            str(tmp_path / "lib"),
            str(inbox),
            "--settle",
            "0.3",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    out_lines: queue.Queue[str] = queue.Queue()
    err_lines: queue.Queue[str] = queue.Queue()
    # Readers in threads: a stuck child must fail the test at the deadline, not hang it.
    for stream, q in ((proc.stdout, out_lines), (proc.stderr, err_lines)):
        threading.Thread(target=lambda s=stream, q=q: [q.put(x) for x in s], daemon=True).start()

    def line_with(q: queue.Queue[str], text: str) -> Callable[[], str | None]:
        def look() -> str | None:
            while not q.empty():
                line = q.get()
                if text in line:
                    return line
            return None

        return look

    try:
        until(line_with(err_lines, "watching"), "the watcher to start", deadline=60)
        (inbox / "arrived.jpg").write_bytes(jpeg(4))
        line = until(line_with(out_lines, '"added"'), "an import line", deadline=60)
        assert '"added": 1' in line
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        until(line_with(err_lines, "stopped watching"), "the goodbye", deadline=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    with Library.open(tmp_path / "lib") as lib:
        assert lib.count() == 1
        assert lib.integrity_check() == "ok"
