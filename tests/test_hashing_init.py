"""`TrainConfig.init`: a full checkpoint of the same kind initialises every layer; otherwise
only the base network is taken."""

from __future__ import annotations

from pathlib import Path

import torch

from fabricsearch.config import TrainConfig
from fabricsearch.hashing.checkpoint import build_metadata, save_checkpoint
from fabricsearch.hashing.registry import create_method
from fabricsearch.hashing.train import build_method
from tests.hashing_helpers import tiny_options


def _saved(tmp_path: Path, bits: int) -> tuple[Path, dict[str, torch.Tensor]]:
    torch.manual_seed(123)
    method = create_method("dvsh", bits=bits, input_size=32, **tiny_options("dvsh"))
    path = save_checkpoint(tmp_path / f"m{bits}.safetensors", method, build_metadata(method))
    return path, {k: v.clone() for k, v in method.state_dict().items()}


def _cfg(path: Path, bits: int) -> TrainConfig:
    return TrainConfig(
        bits=bits, input_size=32, init=str(path), method_options=tiny_options("dvsh")
    )


def test_same_method_and_bits_loads_the_whole_model(tmp_path: Path) -> None:
    path, saved = _saved(tmp_path, 32)
    torch.manual_seed(0)
    method = build_method(_cfg(path, 32))
    for k, v in method.state_dict().items():
        assert torch.equal(v, saved[k]), k


def test_other_bits_takes_only_the_base_network(tmp_path: Path) -> None:
    path, saved = _saved(tmp_path, 64)
    torch.manual_seed(0)
    method = build_method(_cfg(path, 32))
    state = method.state_dict()
    base_keys = [k for k in state if k.startswith("base.")]
    assert base_keys
    assert all(torch.equal(state[k], saved[k]) for k in base_keys)
    head = [
        k
        for k in state
        if not k.startswith("base.")
        and k in saved
        and state[k].shape == saved[k].shape
        and state[k].dtype.is_floating_point
    ]
    # The hash head was not copied (fresh initialisation differs somewhere).
    assert any(not torch.equal(state[k], saved[k]) for k in head)
