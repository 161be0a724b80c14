"""Self-supervised adaptation: fabric-safe views, end-to-end run, cancel, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fabricsearch import adapt, pretrain
from fabricsearch.catalogue import Library
from fabricsearch.jobs import Cancelled, CancelToken, Progress

TINY_OPTIONS = {"widths": (4, 8, 8, 8, 8), "feature_dim": 16, "latent_dim": 8, "hidden_dim": 16}


def tiny_adapt(start: Path, **changes: object) -> adapt.AdaptConfig:
    base = {"epochs": 1, "batch_size": 4, "max_steps": 2, "start": str(start), "device": "cpu"}
    base.update(changes)
    return adapt.AdaptConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cfg = pretrain.PretrainConfig(
        steps=1,
        bits=16,
        nested_bits=(8,),
        input_size=32,
        batch_fabrics=3,
        device="cpu",
        eval_fabrics=0,
        method_options=TINY_OPTIONS,
    )
    return pretrain.pretrain(cfg, tmp_path_factory.mktemp("pretrained")).path


@pytest.fixture
def library(tmp_path: Path, tiny_model: Path) -> Library:
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.search import encode_missing
    from fabricsearch.synth import write_dataset

    photos = tmp_path / "photos"
    csv = write_dataset(photos, count=12, seed=5, size=40, fmt="png")
    lib = Library.create(tmp_path / "lib")
    import_folder(lib, photos, labels_csv=csv, add_categories=True, workers=0)
    pretrain.install_default_model(lib, source=tiny_model)
    encode_missing(lib)
    yield lib
    lib.close()


# --- views -------------------------------------------------------------------------------------
def test_views_are_seeded_and_shaped() -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 256, (5, 40, 40, 3), dtype=np.uint8)
    a = adapt.fabric_views(batch, 32, torch.Generator().manual_seed(3))
    b = adapt.fabric_views(batch, 32, torch.Generator().manual_seed(3))
    c = adapt.fabric_views(batch, 32, torch.Generator().manual_seed(4))
    assert a.shape == (5, 3, 32, 32)
    assert a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.isfinite(a).all()


@pytest.mark.parametrize("rgb", [(160, 60, 40), (40, 90, 150), (90, 140, 60)])
def test_views_never_change_hue_or_saturation(rgb: tuple[int, int, int]) -> None:
    from fabricsearch.hashing.data import MEAN, STD

    # A flat colour with a fine texture (so blur and crops have something to act on).
    img = np.empty((8, 48, 48, 3), dtype=np.uint8)
    img[:] = np.array(rgb, dtype=np.uint8)
    img[:, ::3] = (np.array(rgb) * 0.8).astype(np.uint8)
    views = adapt.fabric_views(img, 32, torch.Generator().manual_seed(0), light=0.2)
    x = views * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
    out = (x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy()
    hsv_in = cv2.cvtColor(img[:1, :1, :1].reshape(1, 1, 3), cv2.COLOR_RGB2HSV_FULL)[0, 0]
    hsv = cv2.cvtColor(out.reshape(-1, 1, 3), cv2.COLOR_RGB2HSV_FULL)[:, 0].astype(int)
    hue_diff = np.abs(((hsv[:, 0] - int(hsv_in[0])) + 128) % 256 - 128)
    assert hue_diff.max() <= 4  # rounding only
    assert np.abs(hsv[:, 1] - int(hsv_in[1])).max() <= 8
    assert hsv[:, 2].std() > 1  # but lighting did change


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        adapt.AdaptConfig(batch_size=1)
    with pytest.raises(ValueError, match="split"):
        adapt.AdaptConfig(splits=("holdout",))


# --- end to end -------------------------------------------------------------------------------
# --- descriptor ranking --------------------------------------------------------------------------
def test_descriptors_are_unit_vectors_and_rank_alike_photos_first() -> None:
    rng = np.random.default_rng(1)
    red = np.zeros((3, 40, 40, 3), np.uint8)
    red[..., 0] = rng.integers(150, 256, (3, 40, 40))
    blue = np.zeros((2, 40, 40, 3), np.uint8)
    blue[..., 2] = rng.integers(150, 256, (2, 40, 40))
    chunks: list[Progress] = []
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(adapt, "DESCRIBE_CHUNK", 2)  # several chunks, same result
        d = adapt.describe(np.concatenate([red, blue]), progress=chunks.append)
    assert [p.done for p in chunks] == [2, 4, 5]
    assert torch.allclose(d.norm(dim=1), torch.ones(5), atol=1e-5)
    S = d @ d.T
    assert S[0, 1] > S[0, 3]  # two red noise photos are closer than red and blue
    assert S[3, 4] > S[3, 0]


@pytest.mark.parametrize("lambda_list", [0.0, 1.0])
def test_listwise_term_only_when_asked(tiny_model: Path, lambda_list: float) -> None:
    method, _ = pretrain.load_pretrained(16, tiny_model)
    images = np.random.default_rng(2).integers(0, 256, (8, 37, 37, 3), dtype=np.uint8)
    cfg = tiny_adapt(tiny_model, lambda_list=lambda_list)
    history = adapt.adapt_method(method, images, cfg)
    assert ("list" in history[-1]) == (lambda_list > 0)
    assert history[-1]["step"] == 2


def test_adapt_library_end_to_end(library: Library, tiny_model: Path) -> None:
    before = library.active_model()
    seen: list[Progress] = []
    # 3 steps of a tiny network collapse its codes, which the activation rule would refuse
    # (tests/test_activation.py); here the pipeline is under test, so activation is forced.
    info = adapt.adapt_library(
        library, tiny_adapt(tiny_model, max_steps=3), progress=seen.append, activate=True
    )
    assert info.version.startswith("adapted-")
    assert info.version.endswith("-dvsh-16")
    assert library.active_model().version == info.version
    assert before.version in {m.version for m in library.models()}  # the old model is kept
    assert info.path.exists()
    assert info.path.with_suffix(".json").exists()
    ids, packed = library.load_codes(info.version)
    assert len(ids) == library.count()
    assert packed.shape == (library.count(), 2)
    steps = [p for p in seen if p.stage == "adapt"]
    assert [p.done for p in steps] == [1, 2, 3]
    assert {"epoch", "loss", "nce", "samples/s", "eta_s"} <= set(steps[-1].info)
    assert info.metrics["adapt_images"] == library.count()
    # the weights moved, and the checkpoint says where they came from
    from fabricsearch.hashing.checkpoint import load_checkpoint

    new, meta = load_checkpoint(info.path)
    old, _ = load_checkpoint(tiny_model)
    assert not torch.equal(new.base.fc[0].weight, old.base.fc[0].weight.float())
    assert meta.extra["adapted_from"] == str(tiny_model)
    assert pretrain.resolve_init("adapted", library) == info.path


def test_adapt_on_one_split_only(library: Library, tiny_model: Path) -> None:
    n_train = sum(1 for s in library.splits().values() if s == "train")
    info = adapt.adapt_library(library, tiny_adapt(tiny_model, splits=("train",), max_steps=1))
    assert info.metrics["adapt_images"] == n_train


def test_cancelled_adaptation_changes_nothing(library: Library, tiny_model: Path) -> None:
    before = library.active_model()
    models_before = {m.version for m in library.models()}
    files_before = sorted(p.name for p in library.models_dir.iterdir())
    cancel = CancelToken()

    def progress(p: Progress) -> None:
        if p.stage == "adapt" and p.done == 1:
            cancel.cancel()

    with pytest.raises(Cancelled):
        adapt.adapt_library(library, tiny_adapt(tiny_model, max_steps=5), progress, cancel)
    assert library.active_model() == before
    assert {m.version for m in library.models()} == models_before
    assert sorted(p.name for p in library.models_dir.iterdir()) == files_before


def test_adapt_starts_from_the_active_model(library: Library) -> None:
    method, origin = adapt.load_start_model(library, "active")
    assert origin == "pretrained-dvsh-16"
    assert method.bits == 16


def test_cli_adapt(library: Library, tiny_model: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from fabricsearch.cli import main

    folder = str(library.folder)
    library.close()
    capsys.readouterr()
    code = main(
        [
            "adapt",
            folder,
            "--backbone",
            "compact",
            "--epochs",
            "1",
            "--batch-size",
            "4",
            "--max-steps",
            "1",
            "--device",
            "cpu",
            "--activate",  # a 1-step tiny network's codes are degenerate (test_activation.py)
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"].startswith("adapted-")
    assert out["bits"] == 16
    with Library.open(folder) as lib:
        assert lib.active_model().version == out["version"]
