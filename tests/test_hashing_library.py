"""Library workflow: train → checkpoint → encode → register/activate; eval; cancel; CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hashing_helpers import TINY_OPTIONS

from fabricsearch.catalogue import Library
from fabricsearch.catalogue.importer import import_folder
from fabricsearch.config import TrainConfig
from fabricsearch.hashing.encode import encode_library, load_library_model
from fabricsearch.hashing.evaluate import evaluate_library
from fabricsearch.hashing.train import train_library
from fabricsearch.jobs import Cancelled, CancelToken, Progress


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fabricsearch import synth

    out = tmp_path_factory.mktemp("photos")
    synth.write_dataset(out, 40, seed=3, size=40, fmt="png")
    return out


@pytest.fixture
def lib(tmp_path: Path, photos: Path):  # type: ignore[no-untyped-def]
    library = Library.create(tmp_path / "lib")
    import_folder(library, photos, labels_csv=photos / "labels.csv", add_categories=True, workers=0)
    yield library
    library.close()


def _cfg(**kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = dict(
        bits=16, input_size=24, epochs=1, batch_size=8, patience=0, method_options=TINY_OPTIONS
    )
    base.update(kw)
    return TrainConfig(**base)


def test_train_library_registers_activates_and_stores_codes(lib: Library) -> None:
    info = train_library(lib, _cfg())
    assert lib.active_model() == info
    assert info.path.exists()
    assert info.path.with_suffix(".json").exists()
    ids, packed = lib.load_codes(info.version)
    assert ids.tolist() == lib.image_ids()
    assert packed.shape == (len(ids), 2)
    meta = json.loads(info.path.with_suffix(".json").read_text())
    assert meta["method"] == "dvsh"
    assert meta["bits"] == 16
    assert meta["train_config"]["epochs"] == 1
    assert meta["training_fingerprint"]
    assert "mAP" in info.metrics
    assert not list(lib.models_dir.glob("*.partial.pt"))
    # the stored codes are what the loaded checkpoint produces
    method, _, _ = load_library_model(lib)
    ids2, packed2 = encode_library(lib, method, store=False)
    np.testing.assert_array_equal(packed2, packed)
    result, used = evaluate_library(lib)
    assert used.version == info.version
    assert 0.0 <= result.mAP <= 1.0
    assert result.bits == 16
    assert result.mAP == pytest.approx(info.metrics["mAP"])


def test_unsupervised_methods_train_on_a_library_without_labels(
    tmp_path: Path, photos: Path
) -> None:
    library = Library.create(tmp_path / "unlabelled")
    import_folder(library, photos, workers=0)  # no labels CSV
    with library:
        assert library.image_ids(labelled=True) == []
        with pytest.raises(ValueError, match="labelled images"):
            train_library(library, _cfg())  # DVSH learns from labels
        info = train_library(library, _cfg(method="itq", method_options={}))
        assert library.active_model() == info
        ids, packed = library.load_codes(info.version)
        assert ids.tolist() == library.image_ids()
        meta = json.loads(info.path.with_suffix(".json").read_text())
        assert meta["method"] == "itq"
        # fitted on the unlabelled train split: the projection is no longer the initial one
        method, _, _ = load_library_model(library)
        assert int(method.fitted) == 1


def test_cancelled_run_leaves_previous_model_active(lib: Library) -> None:
    first = train_library(lib, _cfg())
    token = CancelToken()

    def progress(p: Progress) -> None:
        if p.stage == "encode" and p.done > 0:
            token.cancel()

    with pytest.raises(Cancelled):
        train_library(lib, _cfg(seed=5), progress=progress, cancel=token)
    assert lib.active_model() == first
    assert [m.version for m in lib.models()] == [first.version]
    assert sorted(p.name for p in lib.models_dir.glob("*.safetensors")) == [first.path.name]


def test_cli_train_eval_models(lib: Library, capsys: pytest.CaptureFixture[str]) -> None:
    from fabricsearch.cli import main

    folder = str(lib.folder)
    lib.close()
    opts = [
        "--option",
        "widths=[4,8,8,8,8]",
        "--option",
        "feature_dim=16",
        "--option",
        "latent_dim=8",
        "--option",
        "hidden_dim=16",
    ]
    rc = main(
        ["train", folder, "--bits", "32", "--epochs", "1", "--input-size", "24", *opts, "--json"]
    )
    assert rc == 0
    trained = json.loads(capsys.readouterr().out)
    assert trained["bits"] == 32
    assert trained["images_encoded"] == 40
    assert main(["eval", folder, "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert {"mAP", "ndcg@50", "precision@10", "bits", "queries"} <= set(ev)
    assert ev["bits"] == 32
    for p in ev["plots"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert main(["models", folder, "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[0]["active"]
    assert rows[0]["version"] == trained["version"]
    assert main(["encode", folder, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images_encoded"] == 40
    assert main(["models", folder, "--activate", "no-such-version"]) == 1
    assert main(["train", folder, "--method", "no-such-method"]) == 1
