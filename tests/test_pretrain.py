"""Synthetic pretraining, the shipped default model, `resolve_init` and search before labels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fabricsearch import pretrain
from fabricsearch.catalogue import Library, LibraryError
from fabricsearch.hashing import checkpoint as ckpt
from fabricsearch.hashing import losses
from fabricsearch.hashing.schedule import lr_factor
from fabricsearch.jobs import Cancelled, CancelToken

TINY_OPTIONS = {"widths": (4, 8, 8, 8, 8), "feature_dim": 16, "latent_dim": 8, "hidden_dim": 16}


def tiny_config(**changes: object) -> pretrain.PretrainConfig:
    base = {
        "steps": 2,
        "bits": 16,
        "nested_bits": (8,),
        "input_size": 32,
        "batch_fabrics": 3,
        "device": "cpu",
        "eval_fabrics": 0,
        "method_options": TINY_OPTIONS,
    }
    base.update(changes)
    return pretrain.PretrainConfig(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pretrained")
    return pretrain.pretrain(tiny_config(), out).path


@pytest.fixture
def tiny_library(tmp_path: Path) -> Library:
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.synth import write_dataset

    photos = tmp_path / "photos"
    write_dataset(photos, count=10, seed=3, size=40, fmt="png")
    lib = Library.create(tmp_path / "lib")
    import_folder(lib, photos, workers=0)  # no labels: a company's day one
    yield lib
    lib.close()


# --- losses and schedule ---------------------------------------------------------------------
def test_nt_xent_matches_brute_force() -> None:
    g = torch.Generator().manual_seed(0)
    u = torch.randn(6, 5, generator=g)
    groups = torch.tensor([0, 0, 1, 1, 2, 2])
    t = 0.5
    z = torch.nn.functional.normalize(u, dim=1)
    expected = 0.0
    for i in range(6):
        j = i ^ 1  # the partner in its pair
        denom = sum(torch.exp(z[i] @ z[k] / t) for k in range(6) if k != i)
        expected += -torch.log(torch.exp(z[i] @ z[j] / t) / denom)
    assert losses.nt_xent_loss(u, groups, t).item() == pytest.approx(float(expected) / 6, rel=1e-5)


def test_nt_xent_prefers_aligned_pairs() -> None:
    g = torch.Generator().manual_seed(1)
    a = torch.randn(8, 16, generator=g)
    groups = torch.arange(8).repeat(2)
    aligned = torch.cat([a, a + 0.01 * torch.randn(8, 16, generator=g)])
    shuffled = torch.cat([a, torch.randn(8, 16, generator=g)])
    assert losses.nt_xent_loss(aligned, groups) < losses.nt_xent_loss(shuffled, groups)
    # no positives at all: a zero loss, not NaN
    assert losses.nt_xent_loss(a, torch.arange(8)).item() == 0.0


def test_lr_factor_warms_up_then_decays() -> None:
    f = [lr_factor(s, 100, 0.1) for s in range(100)]
    assert f[0] < f[5] < f[9] == pytest.approx(1.0)
    assert f[10] > f[50] > f[99] >= 0.05
    assert all(b <= a + 1e-12 for a, b in zip(f[10:], f[11:], strict=False))


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="photos_per_fabric"):
        pretrain.PretrainConfig(photos_per_fabric=1)
    with pytest.raises(ValueError, match="nested"):
        pretrain.PretrainConfig(bits=32, nested_bits=(32,))


# --- pretraining -------------------------------------------------------------------------------
def test_pretrain_writes_a_safe_reproducible_checkpoint(tiny_model: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(tiny_model))
    assert tensors["base.fc.0.weight"].dtype == torch.float16  # stored small
    meta = json.loads(ckpt.metadata_path(tiny_model).read_text())
    assert meta["version"] == "pretrained-dvsh-16"
    assert meta["extra"]["reproduce"].endswith("--steps 2 --seed 0")
    assert meta["train_config"]["nested_bits"] == [8]
    method, _ = ckpt.load_checkpoint(tiny_model)
    assert method.bits == 16

    again = pretrain.pretrain(tiny_config(), tmp_path).path  # same seed → same weights
    other = load_file(str(again))
    assert all(torch.equal(tensors[k], other[k]) for k in tensors)


def test_pretrain_cancel_writes_nothing(tmp_path: Path) -> None:
    cancel = CancelToken()

    def progress(p: object) -> None:
        cancel.cancel()

    with pytest.raises(Cancelled):
        pretrain.pretrain(tiny_config(steps=5), tmp_path, progress=progress, cancel=cancel)
    assert not list(tmp_path.iterdir())


def test_truncate_bits_gives_the_code_prefix(tiny_model: Path) -> None:
    full, _ = pretrain.load_pretrained(16, tiny_model)
    half, meta = pretrain.load_pretrained(8, tiny_model)
    assert half.bits == 8
    assert meta.version == "pretrained-dvsh-8"
    x = torch.randn(7, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert torch.equal(full.encode(x)[:, :8], half.encode(x))
    with pytest.raises(ValueError, match="truncate"):
        pretrain.truncate_bits(full, 24)


def test_synthetic_map_is_a_probability(tiny_model: Path) -> None:
    method, _ = pretrain.load_pretrained(16, tiny_model)
    maps = pretrain.synthetic_map(method, n_fabrics=5)
    assert set(maps) == {16}
    assert 0.0 < maps[16] <= 1.0


# --- the shipped model -------------------------------------------------------------------------
def test_shipped_model_loads_safely_and_encodes() -> None:
    from safetensors import safe_open

    from fabricsearch.hashing.encode import encode_images
    from fabricsearch.synth import generate_batch

    path = pretrain.shipped_model_path()
    assert path.exists(), (
        "fabricsearch/resources/models must hold the shipped model (see its README)"
    )
    with safe_open(str(path), framework="pt") as f:  # safetensors: nothing is unpickled
        assert "fabricsearch" in f.metadata()
    assert path.stat().st_size < 10 * 2**20
    images, _specs, _ids = generate_batch(np.random.default_rng(0), 2, 1, 80)
    for bits in (64, 32):
        method, meta = pretrain.load_pretrained(bits)
        codes = encode_images(method, list(images))
        assert codes.shape == (2, bits)
        assert set(np.unique(codes)) <= {-1.0, 1.0}
        assert meta.method == "dvsh"


# --- install, resolve_init and search before labels --------------------------------------------
def test_install_default_model_registers_and_activates(
    tiny_library: Library, tiny_model: Path
) -> None:
    info = pretrain.install_default_model(tiny_library, source=tiny_model)
    assert info is not None
    assert info.version == "pretrained-dvsh-16"
    assert info.note == pretrain.SHIPPED_NOTE
    assert info.path.parent == tiny_library.models_dir
    assert info.path.exists()
    assert tiny_library.active_model().version == info.version
    # idempotent, and a second (truncated) size does not steal the active flag
    assert pretrain.install_default_model(tiny_library, source=tiny_model).version == info.version
    small = pretrain.install_default_model(tiny_library, bits=8, source=tiny_model)
    assert small.bits == 8
    assert tiny_library.active_model().version == info.version
    method, _ = ckpt.load_checkpoint(small.path)
    assert method.bits == 8
    assert (
        pretrain.install_default_model(tiny_library, source=tiny_model.parent / "none.safetensors")
        is None
    )


def test_fresh_library_answers_search_without_labels(
    tiny_library: Library, tiny_model: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch.cli import main
    from fabricsearch.search import encode_missing

    assert tiny_library.count(labelled=True) == 0
    pretrain.install_default_model(tiny_library, source=tiny_model)
    assert encode_missing(tiny_library) == tiny_library.count()
    query = tiny_library.images()[0].path
    folder = str(tiny_library.folder)
    tiny_library.close()
    capsys.readouterr()
    assert main(["search", folder, str(query), "-k", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"] == "pretrained-dvsh-16"
    assert len(result["results"]) == 3


def test_resolve_init(tiny_library: Library, tiny_model: Path, tmp_path: Path) -> None:
    assert pretrain.resolve_init("scratch") is None
    assert pretrain.resolve_init(None) is None
    assert pretrain.resolve_init("pretrained") == pretrain.shipped_model_path()
    assert pretrain.resolve_init(str(tiny_model)) == tiny_model
    with pytest.raises(LibraryError, match="do not exist"):
        pretrain.resolve_init(str(tmp_path / "missing.safetensors"))
    with pytest.raises(LibraryError, match="no adapted model"):
        pretrain.resolve_init("adapted", tiny_library)
    with pytest.raises(LibraryError, match="needs a library"):
        pretrain.resolve_init("adapted")


def test_training_can_start_from_pretrained_base(tiny_model: Path) -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import build_method

    cfg = TrainConfig(
        bits=32,
        input_size=32,
        init=str(pretrain.resolve_init(str(tiny_model))),
        method_options=TINY_OPTIONS,
    )
    method = build_method(cfg)
    source, _ = ckpt.load_checkpoint(tiny_model)
    for key, value in source.base.state_dict().items():
        assert torch.equal(method.base.state_dict()[key].float(), value.float()), key
    assert method.bits == 32  # a fresh 32-bit head on the pretrained base
