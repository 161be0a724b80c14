"""The training loop: reproducibility, resume, cancel, progress, early stopping, library workflow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hashing_helpers import TINY_OPTIONS, synthetic_images, synthetic_labels

from fabricsearch.config import TrainConfig
from fabricsearch.hashing import data as hdata
from fabricsearch.hashing.checkpoint import CheckpointError
from fabricsearch.hashing.device import DeviceError, resolve_device
from fabricsearch.hashing.train import partial_path_for, train
from fabricsearch.jobs import Cancelled, CancelToken, Progress


def _data(n: int = 20) -> hdata.TrainingData:
    labels = synthetic_labels(n, seed=0)
    return hdata.TrainingData(
        images=synthetic_images(labels, size=30),
        labels=labels,
        train_idx=np.arange(0, 12),
        val_idx=np.arange(12, n),
    )


def _cfg(**kw) -> TrainConfig:  # type: ignore[no-untyped-def]
    base = dict(
        bits=8, input_size=24, epochs=2, batch_size=6, patience=0, method_options=TINY_OPTIONS
    )
    base.update(kw)
    return TrainConfig(**base)


def test_same_seed_same_loss_sequence_on_cpu() -> None:
    a = train(_data(), _cfg())
    b = train(_data(), _cfg())
    assert a.history == b.history
    assert len(a.history) == 2
    assert a.steps == 4
    c = train(_data(), _cfg(seed=1))
    assert c.history != a.history


def test_progress_reports_loss_terms_and_rates() -> None:
    seen: list[Progress] = []
    train(_data(), _cfg(epochs=1), progress=seen.append)
    steps = [p for p in seen if p.stage == "train" and "loss" in p.info]
    assert steps
    assert steps[-1].done == steps[-1].total == 2
    info = steps[-1].info
    assert {"epoch", "list", "quant", "kld", "samples/s", "eta_s"} <= set(info)
    assert any("val_mAP" in p.info for p in seen if p.stage == "train")
    assert any(p.stage == "decode images" for p in seen)


def test_cancel_raises_cancelled() -> None:
    token = CancelToken()

    def progress(p: Progress) -> None:
        if p.stage == "train":
            token.cancel()

    with pytest.raises(Cancelled):
        train(_data(), _cfg(), progress=progress, cancel=token)


def test_resume_after_interruption_gives_the_same_run(tmp_path: Path) -> None:
    cfg = _cfg(epochs=3)
    full = train(_data(), cfg)
    token = CancelToken()

    def progress(p: Progress) -> None:
        if p.stage == "train" and p.info.get("epoch") == 3:
            token.cancel()

    with pytest.raises(Cancelled):
        train(_data(), cfg, progress=progress, cancel=token, out_dir=tmp_path)
    assert partial_path_for(tmp_path, cfg).exists()
    resumed = train(_data(), cfg, out_dir=tmp_path, resume=True)
    assert resumed.history == full.history
    x = torch.randn(3, 3, 24, 24)
    torch.testing.assert_close(resumed.method.encode(x), full.method.encode(x))
    # a different configuration must not pick up the interrupted state
    other = _cfg(epochs=3, lr=5e-4)
    partial_path_for(tmp_path, cfg).rename(partial_path_for(tmp_path, other))
    with pytest.raises(CheckpointError, match="other settings"):
        train(_data(), other, out_dir=tmp_path, resume=True)


def test_early_stopping_stops_and_keeps_best() -> None:
    r = train(_data(), _cfg(epochs=6, patience=1, lr=0.0))  # lr 0: hardly any improvement
    vals = [h["val_mAP"] for h in r.history]
    assert r.best_val_map == pytest.approx(max(vals))
    assert r.best_epoch == 1 + int(np.argmax(vals))
    if r.stopped_early:
        assert len(r.history) == r.best_epoch + 1  # patience 1: one epoch without improvement
    else:
        assert len(r.history) == 6
    assert r.stopped_early or vals == sorted(vals)


def test_undecodable_images_are_skipped() -> None:
    d = _data()
    images = list(d.images)
    images[3] = "/nonexistent/photo.jpg"
    d2 = hdata.TrainingData(
        images=images, labels=d.labels, train_idx=d.train_idx, val_idx=d.val_idx
    )
    r = train(d2, _cfg(epochs=1))
    assert r.skipped_images == 1


def test_augment_keeps_shape_and_colours_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    batch = rng.integers(0, 255, (4, 37, 37, 3), dtype=np.uint8)
    a = hdata.augment(batch, 32, torch.Generator().manual_seed(5))
    b = hdata.augment(batch, 32, torch.Generator().manual_seed(5))
    assert a.shape == (4, 3, 32, 32)
    torch.testing.assert_close(a, b)
    # no colour jitter: a uniform image stays exactly its colour
    flat = np.zeros((2, 37, 37, 3), np.uint8)
    flat[..., 0], flat[..., 1], flat[..., 2] = 200, 30, 90
    out = hdata.augment(flat, 32, torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, hdata.to_tensor(flat[:, :32, :32]), atol=1e-5, rtol=0)


def test_prepare_image_square_work_size() -> None:
    img = np.zeros((50, 80, 3), np.uint8)
    assert hdata.prepare_image(img, 37).shape == (37, 37, 3)
    assert hdata.preprocess([img, img[:40]], 32).shape == (2, 3, 32, 32)


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError):
            resolve_device("cuda")
