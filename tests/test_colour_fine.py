"""Issue 24 item 11: the palette sees the yarn colours of a fine check, not their blur.

The import used to measure the palette on the 512 px work image: a fine orange/black check
of a camera-sized photo became one brown "orange 100 %". It now measures a decode that is
never area-resized below `colour.PALETTE_SIDE` (`imaging.decode_fine`)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fabricsearch import colour, imaging
from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import import_folder, measure_file
from fabricsearch.similarity import colour_mask

ORANGE, BLACK = (235, 120, 20), (15, 12, 10)
YELLOW, GREY = (230, 205, 30), (125, 125, 125)


def check(h: int, w: int, cell: int, c1: tuple, c2: tuple) -> np.ndarray:
    """A check of `cell`-px squares of two colours."""
    y, x = np.mgrid[:h, :w]
    first = ((x // cell) + (y // cell)) % 2 == 0
    return np.where(first[..., None], np.uint8(c1), np.uint8(c2)).astype(np.uint8)


def plaid(h: int, w: int, cell: int, c1: tuple, c2: tuple) -> np.ndarray:
    """A fine plaid: warp and weft bands of `cell` px alternating the two colours, woven 1/1
    (each pixel shows the warp or the weft yarn)."""
    y, x = np.mgrid[:h, :w]
    warp = (x // cell) % 2 == 0
    weft = (y // cell) % 2 == 0
    shows = np.where((x + y) % 2 == 0, warp, weft)
    return np.where(shows[..., None], np.uint8(c1), np.uint8(c2)).astype(np.uint8)


def save(path: Path, rgb: np.ndarray, fmt: str = "PNG") -> Path:
    Image.fromarray(rgb).save(path, format=fmt, quality=92)
    return path


def shares(palette: np.ndarray) -> dict[str, float]:
    return {r["name"]: r["proportion"] for r in colour.palette_report(palette)}


def measured(path: Path) -> dict[str, float]:
    m = measure_file(str(path), frozenset())
    assert not m.error
    return shares(np.frombuffer(m.palette, np.float32).reshape(10, 4))


def test_fine_orange_black_check_keeps_both_colours(tmp_path: Path) -> None:
    # 2-px squares on a 1200 × 1800 photo: the old 512 px work image averaged them to brown.
    got = measured(save(tmp_path / "check.png", check(1200, 1800, 2, ORANGE, BLACK)))
    assert got["orange"] == pytest.approx(0.5, abs=0.03)
    assert got["black"] == pytest.approx(0.5, abs=0.03)


def test_fine_check_in_a_camera_jpeg(tmp_path: Path) -> None:
    # A 3200 px JPEG: decoded at the 1/2 DCT scale (1600 px ≥ PALETTE_SIDE), where the
    # chroma is not up-sampled across yarns; both colours keep close to half.
    got = measured(save(tmp_path / "check.jpg", check(2400, 3200, 4, ORANGE, BLACK), "JPEG"))
    assert got.get("black", 0) >= 0.4
    assert got.get("orange", 0) + got.get("red", 0) >= 0.4


def test_fine_yellow_grey_plaid_is_not_orange(tmp_path: Path) -> None:
    got = measured(save(tmp_path / "plaid.png", plaid(1200, 1800, 3, YELLOW, GREY)))
    assert got["yellow"] == pytest.approx(0.5, abs=0.05)
    assert got["grey"] == pytest.approx(0.5, abs=0.05)
    assert got.get("orange", 0.0) < 0.05


def test_plain_orange_stays_orange(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    noise = rng.normal(0, 6, (1200, 1800, 1))
    plain = np.clip(np.float32(ORANGE) + noise, 0, 255).astype(np.uint8)
    assert measured(save(tmp_path / "plain.jpg", plain, "JPEG")).get("orange", 0) >= 0.9


def test_decode_fine_is_not_resized_and_gives_the_network_pixels(tmp_path: Path) -> None:
    data = io.BytesIO()
    Image.fromarray(check(2400, 3200, 4, ORANGE, BLACK)).save(data, format="JPEG", quality=90)
    fine, net, _info = imaging.decode_fine(data.getvalue(), colour.PALETTE_SIDE, 448)
    assert max(fine.shape[:2]) == 1600  # the 1/2 DCT scale, not an area resize
    assert net is not None  # area-resized from the same decode (issue 23: one decode)
    assert np.array_equal(net, imaging.resize_max_side(fine, 448))


def test_contains_black_filter_finds_the_fine_check(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    save(photos / "check.png", check(1200, 1800, 2, ORANGE, BLACK))
    save(photos / "orange.png", np.full((600, 900, 3), ORANGE, np.uint8))
    with Library.create(tmp_path / "lib") as lib:
        assert import_folder(lib, photos, workers=0).added == 2
        records = lib.images()
        palettes = np.stack([r.palette for r in records])
        hits = colour_mask(palettes, "black")
        found = {r.path.name for r, hit in zip(records, hits, strict=True) if hit}
    assert found == {"check.png"}


def test_cli_colour_reports_both_yarn_colours(tmp_path: Path, capsys) -> None:
    import json

    from fabricsearch.cli import main as cli_main

    path = save(tmp_path / "check.jpg", check(2400, 3200, 4, ORANGE, BLACK), "JPEG")
    assert cli_main(["colour", str(path), "--json"]) == 0
    names = {c["name"]: c["proportion"] for c in json.loads(capsys.readouterr().out)["colours"]}
    assert names.get("black", 0) >= 0.4


def test_measure_colours_again_fixes_a_library_measured_the_old_way(tmp_path: Path, capsys) -> None:
    import json

    from fabricsearch.catalogue.importer import remeasure_palettes
    from fabricsearch.cli import main as cli_main

    photos = tmp_path / "photos"
    photos.mkdir()
    save(photos / "check.png", check(1200, 1800, 2, ORANGE, BLACK))
    save(photos / "orange.png", np.full((600, 900, 3), ORANGE, np.uint8))
    save(photos / "gone.png", np.full((64, 64, 3), BLACK, np.uint8))
    with Library.create(tmp_path / "lib") as lib:
        import_folder(lib, photos, workers=0)
        by_name = {r.path.name: r for r in lib.images()}
        # As an import before issue 24 measured it: on the 512 px resize, one brown "orange".
        old = colour.quantise(imaging.decode((photos / "check.png").read_bytes(), max_side=512)[0])
        assert shares(old) == {"orange": 1.0}
        lib.update_image(by_name["check.png"].id, palette=old)
    (photos / "gone.png").unlink()
    assert cli_main(["measure-colours", str(tmp_path / "lib"), "--json"]) == 1  # one skipped
    out = json.loads(capsys.readouterr().out)
    assert (out["changed"], out["unchanged"]) == (1, 1)
    assert [Path(s["path"]).name for s in out["skipped"]] == ["gone.png"]
    with Library.open(tmp_path / "lib") as lib:
        fixed = {r.path.name: r for r in lib.images()}["check.png"]
        assert shares(fixed.palette)["black"] == pytest.approx(0.5, abs=0.03)
        again = remeasure_palettes(lib)
        assert (again.changed, again.unchanged) == (0, 2)
