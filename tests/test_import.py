"""catalogue.importer: incremental import, moves, changes, bad files, thumbnails, CLI JSON."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch import imaging
from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import ImportReport, import_folder, measure_file
from fabricsearch.cli import main as cli_main
from fabricsearch.jobs import Cancelled, CancelToken, Progress


def write_images(folder: Path, n: int, seed: int = 0, size: int = 32) -> list[Path]:
    """n distinct small images (png and jpg, some in a subfolder)."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        sub = folder / ("sub" if i % 3 == 0 else "")
        sub.mkdir(parents=True, exist_ok=True)
        a = rng.integers(0, 256, (size, size + 8, 3), dtype=np.uint8)
        a[0, 0] = (i % 256, i // 256, 7)  # distinct content even for the same rng state
        path = sub / (f"img{i:03d}.png" if i % 2 else f"img{i:03d}.jpg")
        Image.fromarray(a).save(path)
        paths.append(path)
    return paths


@pytest.fixture
def lib(tmp_path: Path) -> Library:
    with Library.create(tmp_path / "lib") as lib:
        yield lib


def test_import_then_reimport_unchanged(lib: Library, tmp_path: Path) -> None:
    paths = write_images(tmp_path / "photos", 12)
    (tmp_path / "photos" / "notes.txt").write_text("ignored: not an image suffix")
    events: list[Progress] = []
    rep = import_folder(lib, tmp_path / "photos", workers=0, progress=events.append)
    assert (rep.added, rep.unchanged, rep.moved, rep.updated, rep.failed) == (12, 0, 0, 0, [])
    assert lib.count() == 12
    assert events[-1].stage == "import"
    assert events[-1].done == events[-1].total == 12
    rec = lib.find_by_path(paths[0])
    assert rec is not None
    assert rec.sha256 == __import__("hashlib").sha256(paths[0].read_bytes()).hexdigest()
    assert (rec.width, rec.height) == (40, 32)
    assert rec.size == paths[0].stat().st_size
    assert rec.palette.shape == (10, 4)
    assert rec.palette[:, 3].sum() == pytest.approx(1.0, abs=1e-5)
    for size in (256, 512):
        thumb = lib.thumbs_dir / rec.sha256[:2] / f"{rec.sha256}_{size}.jpg"
        assert thumb.is_file()
    again = import_folder(lib, tmp_path / "photos", workers=0)
    assert again.to_json() == {
        "added": 0,
        "unchanged": 12,
        "moved": 0,
        "updated": 0,
        "failed": [],
        "duplicates": [],
    }


def test_move_change_touch_and_duplicate(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    paths = write_images(photos, 6)
    import_folder(lib, photos, workers=0)
    moved_rec = lib.find_by_path(paths[1])
    lib.set_labels([moved_rec.id], coarse="plaid/tartan", tightness=55.0)

    (photos / "elsewhere").mkdir()
    new_path = photos / "elsewhere" / "renamed.png"
    paths[1].rename(new_path)  # moved
    changed = paths[2]
    Image.fromarray(np.full((20, 20, 3), 9, np.uint8)).save(changed)  # same path, new content
    touched = paths[3]
    os.utime(touched, (1_000_000, 1_000_000))  # new mtime, same content
    shutil.copy(paths[4], photos / "copy_of_4.jpg")  # identical copy

    rep = import_folder(lib, photos, workers=0)
    assert (rep.added, rep.moved, rep.updated) == (0, 1, 1)
    assert rep.unchanged == 4  # three untouched + the touched one
    assert rep.duplicates == [
        {"path": str((photos / "copy_of_4.jpg").resolve()), "of": str(paths[4].resolve())}
    ]
    assert lib.count() == 6
    rec = lib.find_by_path(new_path)
    assert rec.id == moved_rec.id
    assert rec.coarse == "plaid/tartan"
    assert rec.tightness == 55.0
    assert lib.find_by_path(paths[1]) is None
    rec = lib.find_by_path(changed)
    assert (rec.width, rec.height) == (20, 20)
    assert rec.sha256 == __import__("hashlib").sha256(changed.read_bytes()).hexdigest()
    # The touched file's new mtime is stored, so the next run skips it without hashing.
    assert lib.find_by_path(touched).mtime == 1_000_000
    rep = import_folder(lib, photos, workers=0)
    assert (rep.unchanged, rep.added, rep.moved, rep.updated) == (6, 0, 0, 0)


def bad_corpus(folder: Path, rng: np.random.Generator) -> dict[str, str]:
    """Every kind of bad file, by name → expected reason fragment."""
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "text.jpg").write_text("hello, I am a text file\n")

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 2, 0, 0, 0)
    (folder / "bomb.png").write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")
    )
    return {
        "truncated.jpg": "truncated",
        "empty.jpg": "empty file",
        "text.jpg": "not an image",
        "bomb.png": "too large",
    }


def test_bad_files_reported_and_nothing_else_lost(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    good = write_images(photos, 5)
    expected = bad_corpus(photos / "bad", np.random.default_rng(1))
    unicode_dir = photos / "Stoffe für Ärmel – 布料"
    unicode_dir.mkdir()
    Image.new("RGB", (16, 16), (0, 128, 255)).save(unicode_dir / "gewebe_ü.png")

    rep = import_folder(lib, photos, workers=0)
    assert rep.added == len(good) + 1  # the non-ASCII path imports fine
    assert lib.find_by_path(unicode_dir / "gewebe_ü.png") is not None
    failed = {Path(f["path"]).name: f["reason"] for f in rep.failed}
    assert set(failed) == set(expected)
    for name, fragment in expected.items():
        assert fragment in failed[name], (name, failed[name])
    assert len(rep.failed) == len(expected)  # one reason per file
    stored = {Path(f.path).name: f.reason for f in lib.failed_files()}
    assert stored == failed
    # Fixing a bad file clears its failure record.
    Image.new("RGB", (8, 8)).save(photos / "bad" / "empty.jpg", format="JPEG")
    rep = import_folder(lib, photos, workers=0)
    assert rep.added == 1
    assert "empty.jpg" not in {Path(f.path).name for f in lib.failed_files()}


def test_unreadable_file_reported(
    lib: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "photos"
    paths = write_images(photos, 3)
    locked = paths[1]
    if os.geteuid() != 0:
        locked.chmod(0)
    else:  # root reads anything: simulate the OS refusing
        real_open = os.open

        def fake_open(path, *args, **kwargs):  # noqa: ANN001, ANN202
            if Path(path) == locked.resolve():
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, *args, **kwargs)

        monkeypatch.setattr(os, "open", fake_open)  # imaging.read_bytes opens with os.open
    try:
        rep = import_folder(lib, photos, workers=0)
    finally:
        locked.chmod(0o644)
    assert rep.added == 2
    assert rep.failed == [
        {"path": str(locked.resolve()), "reason": "cannot read file: permission denied"}
    ]


def test_measure_file_reports_reasons(tmp_path: Path) -> None:
    (tmp_path / "z.jpg").write_bytes(b"")
    m = measure_file(str(tmp_path / "z.jpg"), frozenset())
    assert m.error == "empty file (0 bytes)"
    assert not m.sha256
    Image.new("RGB", (30, 10), (255, 0, 0)).save(tmp_path / "r.png")
    m = measure_file(str(tmp_path / "r.png"), frozenset())
    assert not m.error
    assert (m.width, m.height) == (30, 10)
    assert [s for s, _ in m.thumbs] == list(imaging.THUMB_SIZES)
    known = measure_file(str(tmp_path / "r.png"), frozenset({m.sha256}))
    assert known.known
    assert not known.thumbs


def test_exif_rotated_dimensions_stored(lib: Library, tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    exif = Image.Exif()
    exif[0x0112] = 8
    Image.new("RGB", (60, 20), (5, 5, 5)).save(tmp_path / "p" / "r.jpg", exif=exif)
    import_folder(lib, tmp_path / "p", workers=0)
    rec = lib.images()[0]
    assert (rec.width, rec.height) == (20, 60)
    with Image.open(lib.thumbnail(rec, 256)) as im:
        assert im.size[1] > im.size[0]  # the thumbnail is upright too


def test_cancel_keeps_what_was_written(lib: Library, tmp_path: Path) -> None:
    write_images(tmp_path / "photos", 10)
    cancel = CancelToken()

    def progress(p: Progress) -> None:
        if p.stage == "import" and p.done == 4:
            cancel.cancel()

    with pytest.raises(Cancelled) as info:
        import_folder(lib, tmp_path / "photos", workers=0, progress=progress, cancel=cancel)
    rep = info.value.partial  # a cancelled job raises, carrying what it committed
    assert rep.cancelled
    assert rep.added == 4
    assert "4 new images were imported and kept" in info.value.user_message()
    assert lib.count() == 4
    rep = import_folder(lib, tmp_path / "photos", workers=0)
    assert (rep.added, rep.unchanged) == (6, 4)


def test_library_inside_imported_folder_is_skipped(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 3)
    with Library.create(photos / "my-library") as lib:
        import_folder(lib, photos, workers=0)
        rep = import_folder(lib, photos, workers=0)  # thumbnails now exist inside photos/
        assert lib.count() == 3
        assert rep.unchanged == 3
        assert rep.added == 0


def test_process_pool_matches_in_process(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 8)
    bad_corpus(photos / "bad", np.random.default_rng(2))
    with Library.create(tmp_path / "a") as a, Library.create(tmp_path / "b") as b:
        ra = import_folder(a, photos, workers=0)
        rb = import_folder(b, photos, workers=2)
        assert ra.added == rb.added == 8
        assert sorted(map(str, ra.failed)) == sorted(map(str, rb.failed))

        def by_path(lib: Library) -> list:
            return sorted(lib.images(), key=lambda r: r.path)

        for x, y in zip(by_path(a), by_path(b), strict=True):
            assert (x.path, x.sha256, x.width, x.height) == (y.path, y.sha256, y.width, y.height)
            np.testing.assert_array_equal(x.palette, y.palette)


def test_import_with_labels(lib: Library, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    paths = write_images(photos, 3)
    rel = [p.relative_to(photos).as_posix() for p in paths]
    (photos / "labels.csv").write_text(
        f"path,coarse,fine,tightness\n{rel[0]},pattern/bubbly,,\n{rel[1]},plaid/tartan,twill,30\n"
    )
    rep = import_folder(lib, photos, labels_csv=photos / "labels.csv", workers=0)
    assert rep.labels.applied == 1
    assert rep.labels.errors[0]["line"] == 2
    rep = import_folder(
        lib, photos, labels_csv=photos / "labels.csv", add_categories=True, workers=0
    )
    assert rep.labels.applied == 2
    assert rep.labels.added_categories == ["pattern/bubbly"]
    assert lib.find_by_path(paths[0]).coarse == "pattern/bubbly"
    assert rep.to_json()["labels"]["applied"] == 2


def test_cli_init_import_info_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    write_images(photos, 4)
    bad_corpus(photos, np.random.default_rng(3))
    lib_dir = tmp_path / "lib"
    assert cli_main(["init", str(lib_dir), "--no-default-model"]) == 0
    capsys.readouterr()
    assert cli_main(["import", str(lib_dir), str(photos), "--json", "--workers", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"added", "unchanged", "moved", "updated", "failed"}
    assert out["added"] == 4
    assert len(out["failed"]) == 4
    assert all(set(f) == {"path", "reason"} for f in out["failed"])
    assert cli_main(["import", str(lib_dir), str(photos), "--json", "--workers", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unchanged"] == 4
    assert out["added"] == 0
    assert cli_main(["info", str(lib_dir), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["images"] == 4
    assert len(info["failed"]) == 4
    # No model was installed; at most the label-free head an import fits on the pretrained
    # backbone (autohead.py) when that backbone is available.
    assert all(m["version"].startswith("auto-") for m in info["models"])
    assert cli_main(["info", str(lib_dir)]) == 0
    assert "images    4" in capsys.readouterr().out
    assert cli_main(["import", str(tmp_path / "nolib"), str(photos)]) == 1
    assert "not a fabricsearch library" in capsys.readouterr().err


def test_report_json_shape() -> None:
    rep = ImportReport(added=1, failed=[{"path": "a", "reason": "b"}])
    assert json.loads(json.dumps(rep.to_json()))["failed"] == [{"path": "a", "reason": "b"}]


def test_cancel_with_process_pool(lib: Library, tmp_path: Path) -> None:
    write_images(tmp_path / "photos", 24)
    cancel = CancelToken()

    def progress(p: Progress) -> None:
        if p.stage == "import" and p.done == 3:
            cancel.cancel()

    with pytest.raises(Cancelled) as info:
        import_folder(lib, tmp_path / "photos", workers=2, progress=progress, cancel=cancel)
    rep = info.value.partial
    assert rep.cancelled
    assert 3 <= rep.added < 24
    assert lib.count() == rep.added
    rep2 = import_folder(lib, tmp_path / "photos", workers=0)
    assert (rep2.added + rep2.unchanged, rep2.unchanged) == (24, rep.added)


def test_cli_init_installs_the_shipped_model_and_import_encodes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A new library can search at once: init installs the shipped model, import encodes."""
    from fabricsearch.catalogue import Library
    from fabricsearch.cli import main as cli_main
    from fabricsearch.pretrain import shipped_model_path

    if not shipped_model_path().exists():
        pytest.skip("no shipped model in fabricsearch/resources/models")
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.full((64, 64, 3), 40 * i + 30, np.uint8)).save(photos / f"p{i}.png")
    lib_dir = tmp_path / "lib"
    assert cli_main(["init", str(lib_dir)]) == 0
    assert "search model: pretrained-" in capsys.readouterr().out
    assert cli_main(["import", str(lib_dir), str(photos), "--json", "--workers", "0"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["encoded"] == 3
    with Library.open(lib_dir) as lib:
        info = lib.active_model()
        assert info is not None
        # The shipped model, or the label-free head on the pretrained backbone that an import
        # fits when that backbone is available (autohead.py): either way every image is coded.
        assert info.version.startswith(("pretrained-", "auto-"))
        assert lib.count_codes(info.version) == 3
