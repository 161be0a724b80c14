"""Watched folders leave no photo unfindable: a burst of files, a watcher stopped or killed
(-9) during its encoding, and a restart with no new file end with every catalogued photo
coded by the active model; a sub-folder that is a link leaving the watched folders is not
walked, and is reported (issue: integrity, items 2 and 3).

Tiny seeded PNGs; real file-system events awaited by polling with a deadline."""

from __future__ import annotations

import logging
import os
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
from fabricsearch.jobs import Cancelled, CancelToken, Progress
from fabricsearch.watch import FolderWatcher

REPO = Path(__file__).resolve().parent.parent
#: A burst as in the issue (tiny photos: about two seconds to import and encode).
BURST = 500


def png(seed: int, side: int = 24) -> bytes:  # the smallest query side
    rgb = np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".png", rgb)
    assert ok
    return buf.tobytes()


def until(cond: Callable[[], object], what: str, deadline: float = 60.0) -> object:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = cond()
        if value:
            return value
        time.sleep(0.02)  # a polling interval, not a wait for something to happen
    raise AssertionError(f"timed out waiting for {what}")


def shipped_library(path: Path) -> Library:
    from fabricsearch.pretrain import shipped_model_path
    from fabricsearch.workflows import create_library

    if not shipped_model_path().exists():
        pytest.skip("no shipped model in resources/models")
    return create_library(path)


def unsearchable(lib: Library) -> list[int]:
    active = lib.active_model()
    assert active is not None
    return lib.ids_without_codes(active.version)


def assert_findable(lib: Library, sample: int = 5) -> None:
    """Every photo has a code under the active model; a few are found by their own photo."""
    from fabricsearch.search import Searcher

    assert lib.count() > 0
    assert unsearchable(lib) == []
    searcher = Searcher(lib)
    records = list(lib.images())
    for rec in records[:: max(1, len(records) // sample)]:
        hits = searcher.search(rec.path, k=5).hits
        assert any(h.image_id == rec.id and h.exact for h in hits), rec.path


# --- encoding commits as it goes ------------------------------------------------------------
def test_encode_missing_keeps_the_chunks_done_before_a_cancel(tmp_path: Path) -> None:
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.search import encode_missing

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(40):
        (photos / f"p{i:02d}.png").write_bytes(png(i))
    with shipped_library(tmp_path / "lib") as lib:
        import_folder(lib, photos, workers=0)
        version = lib.active_model().version
        cancel = CancelToken()
        seen: list[tuple[int, int | None]] = []

        def progress(p: Progress) -> None:
            if p.stage == "encode":
                seen.append((p.done, p.total))
                if len(seen) == 3:  # (0, 40), (16, 40): the first chunk; the second begins
                    cancel.cancel()

        with pytest.raises(Cancelled) as caught:
            encode_missing(lib, progress=progress, cancel=cancel, chunk=16)
        assert caught.value.partial == lib.count_codes(version) == 16  # the first chunk stays
        assert "16 of 40" in caught.value.kept
        assert all(total == 40 for _done, total in seen)  # one bar for the whole encode
        assert encode_missing(lib, chunk=16) == 24
        assert lib.count_codes(version) == 40


# --- a burst, interrupted, caught up at start -----------------------------------------------
@pytest.mark.parametrize("n", [BURST])
def test_burst_stopped_during_encoding_is_caught_up_by_the_next_watcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    """Hundreds of photos arrive at once; the watcher is stopped (as the window does when it
    restarts watching) once every row is committed and the encode runs. The next watcher,
    with no new file, makes every photo searchable."""
    monkeypatch.setattr("fabricsearch.autohead.wants_auto_head", lambda lib: False)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with shipped_library(tmp_path / "lib") as lib:
        version = lib.active_model().version
        watcher = FolderWatcher(lib, [inbox], settle=0.2)
        cancel = CancelToken()
        errors: list[BaseException] = []
        batches = []

        def progress(p: Progress) -> None:  # in the watcher's thread
            if p.stage == "encode" and lib.count() == n:
                cancel.cancel()  # all rows committed, encoding: stop here

        def watch() -> None:
            try:
                watcher.run(batches.append, progress, cancel)
            except Cancelled:
                pass
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                errors.append(exc)

        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        try:
            until(lambda: watcher._observer is not None, "the watcher to start")
            for i in range(n):  # the burst: written while the watcher imports the first ones
                (inbox / f"p{i:04d}.png").write_bytes(png(1000 + i))
            until(lambda: not thread.is_alive(), "the encode of the last rows", deadline=120)
        finally:
            cancel.cancel()
            thread.join(timeout=60)
        assert errors == []
        assert lib.count() == n
        missing = len(unsearchable(lib))
        assert missing > 0  # the stop left photos without codes
        assert sum(b.added for b in batches) < n  # the last batch was stopped

        again = FolderWatcher(lib, [inbox], settle=0.2)
        again.start()
        try:
            assert again.pending == {}  # every file is catalogued: nothing to import
            caught_up = again.tick()
            assert [(b.folder, b.files, b.failed) for b in caught_up] == [("", [], [])]
            assert caught_up[0].encoded == missing
            assert again.tick() == []  # once
        finally:
            again.stop()
        assert lib.count_codes(version) == n
        assert_findable(lib)


def test_an_import_also_encodes_photos_left_without_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After each batch, every catalogued image lacking a code is encoded, not only its own."""
    from fabricsearch.catalogue.importer import import_folder

    monkeypatch.setattr("fabricsearch.autohead.wants_auto_head", lambda lib: False)
    old, inbox = tmp_path / "old", tmp_path / "inbox"
    old.mkdir()
    inbox.mkdir()
    for i in range(6):
        (old / f"o{i}.png").write_bytes(png(i))
    with shipped_library(tmp_path / "lib") as lib:
        watcher = FolderWatcher(lib, [inbox], settle=0.0)
        watcher.start()
        try:
            assert watcher.tick() == []  # nothing to catch up
            # Meanwhile another import commits rows but never encodes them (killed).
            import_folder(lib, old, workers=0)
            (inbox / "new.png").write_bytes(png(99))
            batches = until(watcher.tick, "the import of new.png")
        finally:
            watcher.stop()
        assert [(b.added, b.encoded) for b in batches] == [(1, 7)]
        assert_findable(lib)


# --- kill -9 during encoding ----------------------------------------------------------------
def _rows(db: Path) -> int:
    import sqlite3

    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM images").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


class _Output:
    """Reads a child's stream in a thread, so a stuck child fails the test at a deadline."""

    def __init__(self, stream) -> None:  # type: ignore[no-untyped-def]
        self.chunks: list[bytes] = []
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream) -> None:  # type: ignore[no-untyped-def]
        while chunk := stream.read1(4096):
            self.chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")


def _watch(lib_dir: Path, inbox: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "fabricsearch", "watch", str(lib_dir), str(inbox)]
        + ["--settle", "0.2", *extra],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO), PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill takes everything it started
    )


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def test_watcher_killed_during_encoding_is_caught_up_by_a_restart(tmp_path: Path) -> None:
    """kill -9 of `fabricsearch watch` after its rows are committed, while it computes codes
    (features for the label-free head, or the shipped model's encode); a restarted watcher
    with no new file makes every photo searchable."""
    n = 64
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for i in range(n):
        (inbox / f"p{i:03d}.png").write_bytes(png(500 + i))
    lib_dir = tmp_path / "lib"
    shipped_library(lib_dir).close()
    db = lib_dir / "catalogue.sqlite"

    proc = _watch(lib_dir, inbox)
    err = _Output(proc.stderr)
    try:
        until(
            lambda: (
                proc.poll() is not None
                or (("features:" in err.text() or "encode" in err.text()) and _rows(db) == n)
            ),
            "the watcher to commit its rows and start encoding",
            deadline=240,
        )
        assert proc.poll() is None, f"the watcher ended before encoding: {err.text()[-2000:]}"
    finally:
        _stop(proc, signal.SIGKILL)
    assert proc.returncode == -signal.SIGKILL
    with Library.open(lib_dir) as lib:
        assert lib.count() == n
        assert unsearchable(lib), "the kill landed after the encode: nothing to catch up"

    proc = _watch(lib_dir, inbox, "--json")
    out, err = _Output(proc.stdout), _Output(proc.stderr)
    try:
        line = until(
            lambda: proc.poll() is not None or ('"encoded"' in out.text() and out.text()),
            "the catch-up line",
            deadline=240,
        )
        assert proc.poll() is None, f"the watcher ended: {err.text()[-2000:]}"
        assert '"folder": ""' in str(line)
    finally:
        _stop(proc, signal.SIGINT)
    assert proc.returncode == 0, err.text()[-2000:]
    with Library.open(lib_dir) as lib:
        assert lib.count() == n
        assert_findable(lib)


# --- links ----------------------------------------------------------------------------------
@pytest.mark.parametrize("poll", [True, False], ids=["poll", "events"])
def test_link_leaving_the_watched_folder_is_not_walked_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, poll: bool
) -> None:
    """A sub-folder replaced by a link to a folder outside (in the issue, `/`): its files are
    never seen, the watcher says why, and photos in real sub-folders still arrive."""
    monkeypatch.setattr("fabricsearch.autohead.wants_auto_head", lambda lib: False)
    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    (inbox / "real").mkdir(parents=True)
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "old.png").write_bytes(png(1))
    (inbox / "sub").symlink_to(outside, target_is_directory=True)
    (inbox / "loop").symlink_to(tmp_path, target_is_directory=True)  # holds inbox itself
    (inbox / "again").symlink_to(inbox / "real", target_is_directory=True)  # inside: silent
    told: list[str] = []
    caplog.set_level(logging.WARNING, logger="fabricsearch.watch")
    with Library.create(tmp_path / "lib") as lib:
        watcher = FolderWatcher(lib, [inbox], settle=0.0, poll=poll, on_problem=told.append)
        watcher.start()
        try:
            assert watcher.refused_links == {
                str(inbox.resolve() / "sub"): str(outside.resolve()),
                str(inbox.resolve() / "loop"): str(tmp_path.resolve()),
            }
            assert len(told) == 2
            assert all("outside the watched folders" in m for m in told)
            assert any(str(inbox / "sub") in r.getMessage() for r in caplog.records)
            (outside / "deep" / "new.png").write_bytes(png(2))
            (inbox / "real" / "arrived.png").write_bytes(png(3))
            seen: set[str] = set()
            until(
                lambda: (
                    seen.update(watcher.settled()) or str(inbox / "real" / "arrived.png") in seen
                ),
                "the photo in the real sub-folder",
            )
            assert all(Path(p).is_relative_to(inbox.resolve()) for p in seen), seen
            assert not any("outside" in p for p in seen | set(watcher.pending)), seen
            watcher._see(str(inbox.resolve() / "real" / "arrived.png"))  # settled: import it
            assert [b.added for b in watcher.tick()] == [1]
            assert [r.path.name for r in lib.images()] == ["arrived.png"]
            # A real sub-folder replaced by a link while watching: reported, not walked.
            (inbox / "real" / "arrived.png").unlink()
            (inbox / "real").rmdir()
            (inbox / "real").symlink_to(outside / "deep", target_is_directory=True)
            until(
                lambda: watcher.settled() is not None and str(inbox / "real") in told[-1],
                "the report of the new link",
                deadline=20,
            )
            assert not any("outside" in p for p in watcher.pending)
        finally:
            watcher.stop()
    assert len(told) == 3 == len(set(told))  # each link reported once
