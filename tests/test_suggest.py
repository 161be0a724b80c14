"""Label suggestions: threshold, merged/retired categories, accept + undo, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fabricsearch.catalogue import Library, ModelInfo
from fabricsearch.cli import main as cli_main
from fabricsearch.hashing.predict import Prediction
from fabricsearch.suggest import SuggestError, accept_suggestions, suggest_labels
from tests.records_helpers import fake_library, ids_by_name


@pytest.fixture
def lib(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Library:
    """Four unlabelled fake images, one labelled; predictions are scripted per file name."""
    with fake_library(tmp_path, ["a.jpg", "b.jpg", "c.jpg", "d.jpg", "done.jpg"]) as lib:
        lib.set_labels([ids_by_name(lib)["done.jpg"]], coarse="solid")
        lib.add_model(ModelInfo("m1", "dvsh", 32, tmp_path / "m1.safetensors", 0.0))
        scripted = {
            "a.jpg": ("plaid/tartan", 0.95, "twill", 0.9),
            "b.jpg": ("plaid/gingham", 0.7, "plain", 0.3),
            "c.jpg": ("stripe/pin-stripe", 0.4, None, 0.0),
            "d.jpg": ("pattern/printed-dots", 0.99, None, 0.0),
            "done.jpg": ("solid/melange", 0.99, None, 0.0),
        }

        def predict(lib, records, method=None, progress=None, cancel=None):
            return [Prediction(r.id, r.path, *scripted[r.path.name]) for r in records]

        monkeypatch.setattr(
            "fabricsearch.hashing.encode.load_library_model",
            lambda lib, version=None: (object(), lib.active_model(), {}),
        )
        monkeypatch.setattr("fabricsearch.hashing.predict.can_predict", lambda method: True)
        monkeypatch.setattr("fabricsearch.hashing.predict.predict_labels", predict)
        yield lib


def test_threshold_and_taxonomy_edits(lib: Library) -> None:
    lib.taxonomy_merge("coarse", "plaid/gingham", "plaid/window-pane")
    lib.taxonomy_retire("coarse", "pattern/printed-dots")
    rep = suggest_labels(lib, min_confidence=0.5)
    got = [(s.path.name, s.coarse, s.fine) for s in rep.suggestions]
    assert got == [
        ("a.jpg", "plaid/tartan", "twill"),
        ("b.jpg", "plaid/window-pane", None),  # merged → its target; fine below 0.5
    ]
    assert rep.unsuggested == 2  # c below the threshold, d retired; done.jpg is labelled
    assert suggest_labels(lib, min_confidence=0.0).unsuggested == 1
    with pytest.raises(ValueError, match="outside"):
        suggest_labels(lib, min_confidence=1.5)


def test_accept_and_undo(lib: Library) -> None:
    rep = suggest_labels(lib, min_confidence=0.5)
    before = accept_suggestions(lib, rep.suggestions, who="test")
    labels = {r.path.name: (r.coarse, r.fine) for r in lib.images()}
    assert labels["a.jpg"] == ("plaid/tartan", "twill")
    assert labels["b.jpg"] == ("plaid/gingham", None)
    assert labels["c.jpg"] == (None, None)
    assert labels["d.jpg"] == ("pattern/printed-dots", None)
    assert lib.get(ids_by_name(lib)["a.jpg"]).labelled_by == "test"
    again = suggest_labels(lib, min_confidence=0.5)  # only c is left, below the threshold
    assert (again.suggestions, again.unsuggested) == ([], 1)
    for image_id, (coarse, fine) in before.items():
        lib.set_labels([image_id], coarse=coarse, fine=fine)
    assert lib.count(labelled=True) == 1


def test_cli_suggest_and_accept(lib: Library, capsys) -> None:
    lib_dir = str(lib.folder)
    lib.close()
    assert cli_main(["labels", "suggest", lib_dir, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [s["coarse"] for s in out["suggestions"]] == [
        "pattern/printed-dots",
        "plaid/tartan",
        "plaid/gingham",
    ]
    assert set(out["suggestions"][0]) >= {"path", "coarse", "fine", "confidence"}
    assert out["unsuggested"] == 1
    assert cli_main(["labels", "accept", lib_dir, "--min-confidence", "0.9", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accepted"] == 2
    with Library.open(lib_dir) as lib2:
        assert lib2.count(labelled=True) == 3
    assert cli_main(["labels", "suggest", lib_dir, "--min-confidence", "2"]) == 1


def test_no_model_is_a_user_error(tmp_path: Path, capsys) -> None:
    with fake_library(tmp_path, ["a.jpg"]) as lib, pytest.raises(SuggestError, match="no search"):
        suggest_labels(lib)
    assert cli_main(["labels", "suggest", str(tmp_path / "lib")]) == 1
    assert "no search model" in capsys.readouterr().err


@pytest.mark.slow
def test_real_model_suggests_valid_categories(tmp_path: Path) -> None:
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library
    from fabricsearch.synth import write_dataset

    labels = write_dataset(tmp_path / "photos", count=32, seed=7, size=64)
    with Library.create(tmp_path / "lib") as lib:
        import_folder(lib, tmp_path / "photos", labels_csv=labels, workers=0)
        cfg = TrainConfig(bits=32, input_size=32, epochs=1, batch_size=8, patience=0)
        train_library(lib, cfg, activate=True)
        unlabel = lib.image_ids()[:8]
        lib.set_labels(unlabel, coarse=None, fine=None, tightness=None)
        rep = suggest_labels(lib, min_confidence=0.0)
        assert rep.unsuggested == 0
        # Every unlabelled image is suggested, or set apart as unlike any labelled fabric.
        judged = rep.suggestions + rep.unfamiliar
        assert sorted(s.image_id for s in judged) == unlabel
        assert all(lib.taxonomy.has_coarse(s.coarse) for s in judged)
