"""CUDA checks (skipped without a GPU; `benchmarks/gpu_check.sh` runs them when one is lent),
and the GPU script's dry run on the CPU so it is known to work before a GPU comes (issue 23)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from fabricsearch.hashing.backbones import DEFAULT_BACKBONE, backbone_available

ROOT = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
weights = pytest.mark.skipif(not backbone_available(DEFAULT_BACKBONE), reason="no weights")


@pytest.mark.gpu
@cuda
@weights
def test_cuda_amp_features_match_the_cpu() -> None:
    from fabricsearch.hashing.extract import compute_features

    rng = np.random.default_rng(0)
    photos = [rng.integers(0, 256, (96, 96, 3), dtype=np.uint8) for _ in range(6)]
    cpu, _ = compute_features(photos, DEFAULT_BACKBONE, device="cpu", loader=lambda a: a)
    gpu, _ = compute_features(photos, DEFAULT_BACKBONE, device="cuda", loader=lambda a: a)
    a, b = cpu.astype(np.float32).reshape(6, -1), gpu.astype(np.float32).reshape(6, -1)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cos.min() > 0.995, cos


@pytest.mark.gpu
@cuda
@weights
def test_cuda_training_on_features_and_finetuning(tmp_path: Path) -> None:
    from fabricsearch import synth
    from fabricsearch.catalogue import Library
    from fabricsearch.catalogue.importer import import_folder
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.train import train_library

    synth.write_dataset(tmp_path / "photos", 40, seed=2, size=64)
    with Library.create(tmp_path / "lib") as lib:
        photos = tmp_path / "photos"
        import_folder(lib, photos, labels_csv=photos / "labels.csv", add_categories=True, workers=0)
        for finetune in (0, 1):
            cfg = TrainConfig(
                backbone=DEFAULT_BACKBONE,
                device="cuda",
                finetune=finetune,
                epochs=1,
                batch_size=8,
                min_steps=4,
                input_size=64,
            )
            info = train_library(lib, cfg, activate=True)
            assert lib.count_codes(info.version) == lib.count()
            assert np.isfinite(info.metrics["mAP"])


@pytest.mark.slow
@weights
def test_gpu_script_dry_run_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "gpu.json"
    script = ROOT / "benchmarks" / "gpu_check.sh"
    args = ["--dry-run", "--data", str(tmp_path / "none"), "--out", str(out)]
    proc = subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHON": sys.executable},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["dry_run"] is True
    assert result["device_type"] == "cpu"
    steps = result["steps"]
    assert set(steps) == {"tests", "network", "encode", "cached", "finetune"}
    assert steps["tests"]["rc"] == 0
    assert "collected" in steps["tests"]["summary"]
    assert steps["network"]["fp32"] > 0
    assert steps["encode"]["ok"] == steps["encode"]["images"] > 0
    for step in ("cached", "finetune"):
        assert 0.0 <= steps[step]["mAP"] <= 1.0
    assert "finetune" in proc.stdout  # the table
