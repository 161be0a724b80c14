"""Search by a region of the photo, the colour ↔ texture balance and batch queries (issue 15)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import import_folder
from fabricsearch.config import TrainConfig
from fabricsearch.search import Searcher, SearchError, parse_crop
from fabricsearch.synth import write_dataset


@pytest.fixture(scope="module")
def trained_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fabricsearch.hashing.train import train_library

    root = tmp_path_factory.mktemp("croplib")
    photos = root / "photos"
    labels = write_dataset(photos, count=32, seed=5, size=64)
    lib_dir = root / "lib"
    with Library.create(lib_dir) as lib:
        import_folder(lib, photos, labels_csv=labels, workers=0)
        train_library(lib, TrainConfig(bits=32, input_size=32, epochs=1, batch_size=8, patience=0))
    return lib_dir


def _two_halves(path: Path, left: np.ndarray, right: np.ndarray) -> None:
    """A photo whose left half is one library image and whose right half is another."""
    h = min(left.shape[0], right.shape[0])
    rgb = np.concatenate([left[:h], right[:h]], axis=1)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def test_crop_searches_only_the_region(trained_library: Path, tmp_path: Path) -> None:
    from fabricsearch.imaging import load_rgb

    with Library.open(trained_library) as lib:
        recs = lib.images()
        a, b = recs[0], recs[-1]
        left, right = load_rgb(a.path), load_rgb(b.path)
        q = tmp_path / "both.png"
        _two_halves(q, left, right)
        s = Searcher(lib)
        w = left.shape[1]
        h = min(left.shape[0], right.shape[0])
        only_right = s.search(q, k=5, crop=(w, 0, right.shape[1], h))
        whole_right = s.search(b.path, k=5)
        # The crop is the image itself: the same palette and the same ranking as that photo.
        np.testing.assert_allclose(only_right.palette, whole_right.palette, atol=1e-6)
        assert [x.image_id for x in only_right.hits] == [x.image_id for x in whole_right.hits]
        assert not any(x.exact for x in only_right.hits)  # a crop is not the file itself
        with pytest.raises(SearchError, match="not inside"):
            s.search(q, k=5, crop=(10_000, 0, 5, 5))
    assert parse_crop("1, 2,3,4") == (1, 2, 3, 4)
    with pytest.raises(SearchError, match="X,Y,W,H"):
        parse_crop("1,2,3")


def test_balance_default_is_todays_ranking_and_extremes_follow_their_part(
    trained_library: Path,
) -> None:
    with Library.open(trained_library) as lib:
        s = Searcher(lib)
        q = lib.images()[3].path
        default = s.search(q, k=20)
        half = s.search(q, k=20, balance=0.5)
        assert [(h.image_id, h.score) for h in default.hits] == [
            (h.image_id, h.score) for h in half.hits
        ]
        texture = s.search(q, k=20, balance=0.0)
        if texture.predicted is None:
            # No labels for the query: texture alone is the Hamming ranking.
            d = [h.hamming for h in texture.hits if not h.exact]
            assert d == sorted(d)
        else:
            # The model's predicted labels stand in for the query's: texture is the codes plus
            # the coarse/fine match, never colour.
            t = [h.score for h in texture.hits if not h.exact]
            assert t == sorted(t, reverse=True)
        colour_only = s.search(q, k=20, balance=1.0)
        c = [h.breakdown["colour"] for h in colour_only.hits if not h.exact]
        assert c == sorted(c, reverse=True)
        with pytest.raises(SearchError, match="between 0 and 1"):
            s.search(q, k=5, balance=2.0)


def test_cli_crop_balance_and_batch_csv(
    trained_library: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch.cli import main

    with Library.open(trained_library) as lib:
        recs = lib.images()[:3]
    q = str(recs[0].path)
    lib_arg = str(trained_library)
    assert main(["search", lib_arg, q, "-k", "3", "--crop", "0,0,32,32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 3
    assert not any(r["exact"] for r in out["results"])
    assert main(["search", lib_arg, q, "-k", "3", "--balance", "0", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["results"]) == 3
    assert main(["search", lib_arg, q, "--balance", "7"]) == 1
    assert "between 0 and 1" in capsys.readouterr().err

    folder = tmp_path / "queries"
    folder.mkdir()
    for r in recs:
        (folder / r.path.name).write_bytes(r.path.read_bytes())
    (folder / "broken.jpg").write_bytes(b"not an image")
    out_csv = tmp_path / "out.csv"
    assert main(["search", lib_arg, str(folder), "-k", "4", "--csv", str(out_csv), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["queries"] == 4
    assert summary["searched"] == 3
    assert summary["rows"] == 12
    assert [f["query"] for f in summary["failed"]] == [str(folder / "broken.jpg")]
    with out_csv.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 12
    assert set(rows[0]) >= {"query", "rank", "match", "score", "colour", "coarse", "fine"}
    first = [row for row in rows if row["rank"] == "1"]
    assert {Path(row["query"]).name for row in first} == {r.path.name for r in recs}
    # Each query photo is itself in the library: it comes back first.
    assert all(Path(row["query"]).name == Path(row["match"]).name for row in first)

    assert main(["search", lib_arg, str(folder)]) == 1
    assert "--csv" in capsys.readouterr().err
