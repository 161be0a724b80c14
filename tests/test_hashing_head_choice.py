"""The simple supervised head (methods/head.py) and the choice between it and DVSH
(`train.train_and_choose`, issue 22): tiny, seeded, on synthetic cached features."""

from __future__ import annotations

import argparse

import numpy as np
import torch
from hashing_helpers import synthetic_labels

from fabricsearch.config import TrainConfig
from fabricsearch.hashing.data import TrainingData
from fabricsearch.hashing.registry import available_methods
from fabricsearch.hashing.train import (
    FeatureSource,
    compares_head,
    describe_choice,
    train,
    train_and_choose,
)

LITE0 = "efficientnet-lite0"


def _data(n: int = 60, n_val: int = 20) -> TrainingData:
    labels = synthetic_labels(n, seed=0, classes=3)
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 3, (3, 1280)).astype(np.float32)
    feats = centres[labels.minor] + rng.normal(0, 1.0, (n, 1280)).astype(np.float32)
    feats = np.clip(feats, 0, 6)[:, None, :].astype(np.float16)

    def features_fn(backbone, view_ids, progress=None, cancel=None):  # type: ignore[no-untyped-def]
        return feats[:, : len(view_ids)], np.ones(n, bool)

    return TrainingData(
        images=[None] * n,
        labels=labels,
        train_idx=np.arange(0, n - n_val),
        val_idx=np.arange(n - n_val, n),
        features_fn=features_fn,
    )


def _cfg(**kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = dict(
        backbone=LITE0,
        bits=16,
        epochs=3,
        batch_size=8,
        patience=0,
        min_steps=0,
        min_val_for_early_stop=10,
        method_options={"feature_dim": 32, "latent_dim": 16, "hidden_dim": 32},
    )
    base.update(kw)
    return TrainConfig(**base)


def test_head_is_registered_trains_and_encodes() -> None:
    assert "head" in available_methods()
    data = _data()
    result = train(data, _cfg(method="head", method_options={"hidden_dim": 32}))
    assert result.method.name == "head"
    assert result.method.on_features
    assert result.steps == 3 * (40 // 8)
    assert "cls" in result.history[0]
    assert "quant" in result.history[0]
    feats = data.features_fn(LITE0, (0,))[0]
    codes = FeatureSource(feats).encode(result.method, np.arange(60))
    assert codes.shape == (60, 16)
    assert set(np.unique(codes)) <= {-1.0, 1.0}
    assert 0.0 < result.best_val_map <= 1.0
    probs = result.method.predict(torch.from_numpy(feats[:4, 0].astype(np.float32)))
    assert probs["minor"].shape == (4, 3)


def test_head_is_seeded() -> None:
    cfg = _cfg(method="head", method_options={"hidden_dim": 32})
    a, b = train(_data(), cfg), train(_data(), cfg)
    assert a.history == b.history


def test_choice_keeps_the_higher_validation_map_and_records_both() -> None:
    kept, choice = train_and_choose(_data(), _cfg())
    assert choice is not None
    both = choice["candidates"]
    assert set(both) == {"dvsh", "head"}
    assert all(isinstance(v, float) for v in both.values())
    assert kept.best_val_map == max(both.values())
    assert choice["chosen"] == kept.method.name
    assert kept.config.method == kept.method.name
    assert choice["validation_images"] == 20
    assert choice["reason"]
    assert choice["chosen"] in describe_choice(choice)
    assert choice["train_time_s"] >= max(choice["method_train_time_s"].values())


def test_too_few_validation_images_keep_the_simple_head_and_say_why() -> None:
    """Too few validation images to choose by: the head alone is trained and kept (it was
    ahead on both dev sets with few labels); ``compare_head=False`` still gives DVSH."""
    kept, choice = train_and_choose(_data(n_val=6), _cfg())
    assert choice is not None
    assert kept.method.name == "head"
    assert kept.config.method == "head"
    assert choice["chosen"] == "head"
    assert set(choice["candidates"]) == {"head"}
    assert "6 validation images" in choice["reason"]
    assert "simple head kept" in choice["reason"]
    assert choice["train_time_s"] >= choice["method_train_time_s"]["head"]
    forced, none = train_and_choose(_data(n_val=6), _cfg(compare_head=False))
    assert none is None
    assert forced.method.name == "dvsh"


def test_no_comparison_when_off_or_not_the_default_method() -> None:
    assert compares_head(_cfg())
    assert not compares_head(_cfg(compare_head=False))
    assert not compares_head(_cfg(method="dvsh1a"))
    assert not compares_head(_cfg(backbone="compact"))
    kept, choice = train_and_choose(_data(), _cfg(compare_head=False))
    assert choice is None
    assert kept.method.name == "dvsh"


def test_cli_flag_for_compare_head() -> None:
    from fabricsearch.cli.common import add_config_flags, config_values
    from fabricsearch.cli.model_cmd import TRAIN_FLAGS

    assert "compare_head" in TRAIN_FLAGS
    p = argparse.ArgumentParser()
    add_config_flags(p, TRAIN_FLAGS)
    assert config_values(p.parse_args(["--no-compare-head"]), TRAIN_FLAGS) == {
        "compare_head": False
    }
    assert config_values(p.parse_args(["--compare-head"]), TRAIN_FLAGS) == {"compare_head": True}
    assert config_values(p.parse_args([]), TRAIN_FLAGS) == {}
