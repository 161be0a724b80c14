"""Bad directory entries, special files and a library's own files (issue 17, items 5, 6, 12).

Cases that hang or exhaust memory in a broken implementation run in a child process with a
timeout and a memory (data-size) limit, so the suite itself can never hang."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch.catalogue import Library, LibraryError
from fabricsearch.catalogue.importer import import_folder
from fabricsearch.cli import main as cli_main

REPO = Path(__file__).resolve().parent.parent
posix_only = pytest.mark.skipif(os.name != "posix", reason="needs POSIX file types")


def write_images(folder: Path, n: int, seed: int = 0) -> list[Path]:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 256, (16, 20, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def run_bounded(code: str, timeout: float = 90, memory_mb: int = 3072) -> dict:
    """Run ``code`` (which prints one JSON line last) in a child Python with a wall-clock
    timeout and a data-size limit; a hang fails the test instead of the suite."""

    def limit() -> None:  # pragma: no cover - runs in the child
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (memory_mb * 2**20, memory_mb * 2**20))

    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=limit,
        start_new_session=True,  # its own process group: a timeout kills its workers too
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"still running after {timeout} s: it hangs")
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


# --- item 5: one bad entry never stops the import ------------------------------------------
@posix_only
def test_symlink_loop_and_undecodable_name_are_reported(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 3)
    os.symlink("b.jpg", photos / "a.jpg")
    os.symlink("a.jpg", photos / "b.jpg")
    bad_name = os.fsdecode(os.fsencode(str(photos)) + b"/\xff\xfe.jpg")
    try:
        Image.new("RGB", (8, 8)).save(bad_name, format="JPEG")
    except (OSError, UnicodeError):
        pytest.skip("the file system refuses names that are not UTF-8")
    bad_dir = os.fsdecode(os.fsencode(str(photos)) + b"/\xfe dir")
    os.mkdir(bad_dir)
    Image.new("RGB", (8, 8)).save(os.path.join(bad_dir, "x.jpg"), format="JPEG")

    with Library.create(tmp_path / "lib") as lib:
        for _ in range(2):  # the rerun too: the bad entries are still there
            rep = import_folder(lib, photos, workers=0)
            reasons = {f["path"]: f["reason"] for f in rep.failed}
            assert reasons[str(photos / "a.jpg")] == "symbolic link loop"
            assert reasons[str(photos / "b.jpg")] == "symbolic link loop"
            assert "not valid UTF-8" in reasons[str(photos) + "/\\xff\\xfe.jpg"]
            assert "not valid UTF-8" in reasons[str(photos) + "/\\xfe dir"]
            assert len(rep.failed) == 4
            assert lib.count() == 3
            json.dumps(rep.to_json(), ensure_ascii=False).encode("utf-8")  # printable

    # The CLI prints the report (JSON and text) instead of a traceback.
    lib_dir = tmp_path / "lib2"
    assert cli_main(["init", str(lib_dir), "--no-default-model"]) == 0
    assert cli_main(["import", str(lib_dir), str(photos), "--workers", "0"]) == 0


# --- item 6: a library's own files are never fabrics -------------------------------------
def test_library_created_in_a_photo_folder_imports_only_the_photos(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 4)
    write_images(photos / "more", 2, seed=1)
    with Library.create(photos) as lib:  # the library lives in the photo folder itself
        for _ in range(3):
            import_folder(lib, photos, workers=0)
        assert lib.count() == 6
        assert not any("thumbs" in r.path.parts for r in lib.images())


def test_import_lib_into_itself_adds_nothing(tmp_path: Path) -> None:
    with Library.create(tmp_path / "lib") as lib:
        import_folder(lib, write_images(tmp_path / "photos", 3)[0].parent, workers=0)
        assert list(lib.thumbs_dir.rglob("*_256.jpg"))
        for _ in range(2):
            rep = import_folder(lib, lib.folder, workers=0)  # `import LIB LIB`
            assert (rep.added, rep.failed) == (0, [])
        assert lib.count() == 3
        with pytest.raises(LibraryError, match="inside the library"):
            import_folder(lib, lib.thumbs_dir, workers=0)
        with pytest.raises(LibraryError, match="inside the library"):
            import_folder(lib, next(p for p in lib.thumbs_dir.iterdir() if p.is_dir()))


def test_other_library_and_symlinks_into_it_are_skipped(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 2)
    with Library.create(photos / "old-library") as other:
        import_folder(other, write_images(tmp_path / "elsewhere", 3, seed=4)[0].parent)
        thumb = next(other.thumbs_dir.rglob("*_256.jpg"))
    os.symlink(thumb, photos / "link.jpg")
    with Library.create(tmp_path / "lib") as lib:
        rep = import_folder(lib, photos, workers=0)
        assert (rep.added, rep.failed) == (2, [])


def test_cli_refuses_import_from_inside_a_library(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lib_dir = tmp_path / "lib"
    assert cli_main(["init", str(lib_dir), "--no-default-model"]) == 0
    assert cli_main(["import", str(lib_dir), str(lib_dir / "thumbs")]) == 1
    assert "inside the library" in capsys.readouterr().err


# --- item 12: only regular files, read with a bound -------------------------------------
@posix_only
def test_fifo_and_dev_zero_in_import_and_search(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 2)
    os.mkfifo(photos / "p.jpg")
    if Path("/dev/zero").exists():
        os.symlink("/dev/zero", photos / "z.jpg")
    Library.create(tmp_path / "lib").close()
    out = run_bounded(
        f"""
        import json
        from fabricsearch.catalogue import Library
        from fabricsearch.catalogue.importer import import_folder
        from fabricsearch.search import SearchError, search

        with Library.open({str(tmp_path / "lib")!r}) as lib:
            rep = import_folder(lib, {str(photos)!r}, workers=0)
            queries = {{}}
            for name in ("p.jpg", "z.jpg"):
                try:
                    search(lib, {str(photos)!r} + "/" + name)
                except SearchError as exc:
                    queries[name] = str(exc)
            print(json.dumps({{"report": rep.to_json(), "queries": queries}}))
        """
    )
    reasons = {Path(f["path"]).name: f["reason"] for f in out["report"]["failed"]}
    assert out["report"]["added"] == 2
    assert reasons["p.jpg"] == "not a regular file (a named pipe); not read"
    assert "not a regular file" in out["queries"]["p.jpg"]
    if Path("/dev/zero").exists():
        # The symlink resolves to /dev/zero itself, which is what is reported.
        assert reasons["zero"] == "not a regular file (a character device); not read"
        assert "not a regular file" in out["queries"]["z.jpg"]


def test_read_bytes_is_bounded(tmp_path: Path) -> None:
    from fabricsearch import imaging

    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff" * 5000)
    assert len(imaging.read_bytes(big, max_bytes=5000)) == 5000
    with pytest.raises(imaging.ImageError, match="too large: file"):
        imaging.read_bytes(big, max_bytes=4999)


@posix_only
def test_fifo_in_process_pool_does_not_hang(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 5)
    os.mkfifo(photos / "p.jpg")
    Library.create(tmp_path / "lib").close()
    out = run_bounded(
        f"""
        import json
        from fabricsearch.catalogue import Library
        from fabricsearch.catalogue.importer import import_folder

        if __name__ == "__main__":
            with Library.open({str(tmp_path / "lib")!r}) as lib:
                rep = import_folder(lib, {str(photos)!r}, workers=2)
                print(json.dumps(rep.to_json()))
        """
    )
    assert out["added"] == 5
    assert [Path(f["path"]).name for f in out["failed"]] == ["p.jpg"]


# --- low: formats we recognise but cannot read are reported -------------------------------
def test_heic_avif_gif_are_reported_not_skipped_silently(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 1)
    for name in ("a.HEIC", "b.heif", "c.avif", "d.gif"):
        (photos / name).write_bytes(b"not decoded")
    with Library.create(tmp_path / "lib") as lib:
        rep = import_folder(lib, photos, workers=0)
    reasons = {Path(f["path"]).name: f["reason"] for f in rep.failed}
    assert set(reasons) == {"a.HEIC", "b.heif", "c.avif", "d.gif"}
    assert reasons["a.HEIC"] == "unsupported format (HEIC); convert it to JPEG, PNG or TIFF"
    assert rep.added == 1
