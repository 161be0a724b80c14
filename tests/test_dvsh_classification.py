"""The discriminative classification term of DVSH (docs/dvsh.md) and the cosine schedule."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from hashing_helpers import TINY_OPTIONS, synthetic_batch, synthetic_images, synthetic_labels

from fabricsearch.config import TrainConfig
from fabricsearch.hashing import data as hdata
from fabricsearch.hashing import losses
from fabricsearch.hashing.checkpoint import build_metadata, save_checkpoint
from fabricsearch.hashing.methods.dvsh import DVSH
from fabricsearch.hashing.registry import create_method
from fabricsearch.hashing.train import (
    build_method,
    train,
    train_schedule,
    with_class_counts,
)


def test_classification_loss_by_hand_and_unknown_labels_ignored() -> None:
    logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 1.0, 0.0], [5.0, 5.0, 5.0], [1.0, 2.0, 3.0]])
    target = torch.tensor([0, 1, -1, 7])  # -1 unknown; 7 is a class the head does not have
    expected = (-math.log(math.exp(2) / (math.exp(2) + 2)) - math.log(math.e / (math.e + 2))) / 2
    assert losses.classification_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    none_known = losses.classification_loss(logits, torch.full((4,), -1))
    assert none_known.item() == 0.0


def test_class_counts_come_from_the_labels_unless_given() -> None:
    labels = synthetic_labels(10, classes=3)
    labels.fine[:4] = [0, 4, -1, 2]
    cfg = with_class_counts(TrainConfig(method_options=dict(TINY_OPTIONS)), labels)
    assert cfg.method_options["num_minor"] == int(labels.minor.max()) + 1
    assert cfg.method_options["num_fine"] == 5
    given = TrainConfig(method_options={**TINY_OPTIONS, "num_minor": 9})
    assert with_class_counts(given, labels).method_options["num_minor"] == 9
    # No fine texture known anywhere: no fine head.
    labels.fine[:] = -1
    assert with_class_counts(TrainConfig(), labels).method_options["num_fine"] == 0
    # Methods without heads are left alone.
    itq = TrainConfig(method="itq")
    assert with_class_counts(itq, labels) is itq


def test_heads_add_classification_terms_and_lambda_zero_removes_each() -> None:
    batch = synthetic_batch(n=6, size=32)
    torch.manual_seed(0)
    with_heads = create_method("dvsh", bits=16, input_size=32, num_minor=3, **TINY_OPTIONS)
    _, terms = with_heads.compute_losses(batch)
    assert terms["cls"] > 0
    assert terms["code_cls"] > 0
    r = with_heads(batch.images)["r"]
    assert r.shape == (6, TINY_OPTIONS["feature_dim"])
    # Switching either term off removes exactly λ · term from the total (same seed, same noise).
    for option, key in (("lambda_cls", "cls"), ("lambda_code_cls", "code_cls")):
        torch.manual_seed(0)
        off = create_method(
            "dvsh", bits=16, input_size=32, num_minor=3, **{option: 0.0}, **TINY_OPTIONS
        )
        _, terms_off = off.compute_losses(batch)
        assert key not in terms_off
        assert terms["loss"] - terms_off["loss"] == pytest.approx(20.0 * terms[key], rel=1e-4)
    # Encoding never depends on the heads.
    torch.manual_seed(0)
    plain = create_method("dvsh", bits=16, input_size=32, **TINY_OPTIONS)
    plain.load_state_dict(
        {
            k: v
            for k, v in with_heads.state_dict().items()
            if not k.startswith(DVSH.label_head_prefixes)
        }
    )
    assert torch.equal(plain.encode(batch.images), with_heads.encode(batch.images))


def test_code_heads_read_the_relaxed_code() -> None:
    """The code-level cross-entropy's gradient reaches the network only through u."""
    batch = synthetic_batch(n=6, size=32)
    torch.manual_seed(0)
    method = create_method(
        "dvsh",
        bits=16,
        input_size=32,
        num_minor=3,
        lambda_cls=0.0,
        lambda_list=0.0,
        lambda_q=0.0,
        lambda_kld=0.0,
        **TINY_OPTIONS,
    )
    total, terms = method.compute_losses(batch)
    assert terms["loss"] == pytest.approx(20.0 * terms["code_cls"], rel=1e-5)
    total.backward()
    assert method.code_minor.weight.grad.abs().sum() > 0
    assert method.cls_minor.weight.grad is None  # the feature head is not used
    assert method.struct_blocks.weight.grad.abs().sum() > 0


def test_training_learns_the_classes_through_the_heads() -> None:
    labels = synthetic_labels(24, seed=0)
    data = hdata.TrainingData(
        images=synthetic_images(labels, size=30), labels=labels, train_idx=np.arange(24)
    )
    cfg = TrainConfig(
        bits=8,
        input_size=24,
        epochs=15,
        batch_size=8,
        lr=3e-3,
        patience=0,
        method_options=TINY_OPTIONS,
    )
    result = train(data, cfg)
    assert result.config.method_options["num_minor"] == 3
    cls = [h["cls"] for h in result.history]
    assert np.mean(cls[-3:]) < 0.9 * np.mean(cls[:3])
    assert result.method.cls_minor is not None


def test_init_from_a_checkpoint_without_heads_keeps_the_hash_head(tmp_path: Path) -> None:
    torch.manual_seed(123)
    shipped = create_method("dvsh", bits=32, input_size=32, **TINY_OPTIONS)
    path = save_checkpoint(tmp_path / "m.safetensors", shipped, build_metadata(shipped))
    saved = shipped.state_dict()
    cfg = TrainConfig(
        bits=32,
        input_size=32,
        init=str(path),
        method_options={**TINY_OPTIONS, "num_minor": 4, "num_fine": 2},
    )
    method = build_method(cfg)
    state = method.state_dict()
    for k, v in saved.items():
        assert torch.equal(state[k], v), k
    assert state["cls_minor.weight"].shape == (4, TINY_OPTIONS["feature_dim"])


def test_cosine_schedule() -> None:
    cfg = TrainConfig()
    assert train_schedule(cfg).factor(0, 100) == 1.0
    assert train_schedule(cfg).factor(50, 100) == pytest.approx(0.5)
    assert train_schedule(cfg).factor(100, 100) == pytest.approx(0.0, abs=1e-12)
    assert train_schedule(TrainConfig(lr_schedule="constant")).factor(50, 100) == 1.0
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
