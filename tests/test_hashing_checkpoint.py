"""Checkpoint round trip, refusal of pickles / corrupt / foreign files, base-weight init."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from hashing_helpers import tiny_options
from safetensors.torch import save_file

from fabricsearch.hashing import checkpoint as ckpt
from fabricsearch.hashing.registry import create_method


class _Evil:
    """Unpickling this would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (Path.touch, (self.marker,))


def _method(bits: int = 32):  # type: ignore[no-untyped-def]
    return create_method("dvsh", bits=bits, input_size=32, **tiny_options("dvsh"))


def test_round_trip_restores_method_config_and_codes(tmp_path: Path) -> None:
    m = _method()
    m.eval()
    x = torch.randn(4, 3, 32, 32)
    meta = ckpt.build_metadata(
        m, metrics={"mAP": 0.5}, training_fingerprint="abc", taxonomy_version=3
    )
    path = ckpt.save_checkpoint(tmp_path / "model.safetensors", m, meta)
    assert ckpt.metadata_path(path).exists()
    loaded, meta2 = ckpt.load_checkpoint(path)
    assert loaded.name == "dvsh"
    assert loaded.bits == 32
    assert loaded.config == m.config
    assert meta2.metrics == {"mAP": 0.5}
    assert meta2.training_fingerprint == "abc"
    assert meta2.taxonomy_version == 3
    assert meta2.base_prefix == "base."
    torch.testing.assert_close(loaded.encode(x), m.encode(x))
    torch.testing.assert_close(loaded.encode_continuous(x), m.encode_continuous(x))


def test_metadata_embedded_when_side_file_missing(tmp_path: Path) -> None:
    m = _method()
    path = ckpt.save_checkpoint(tmp_path / "m.safetensors", m, ckpt.build_metadata(m))
    ckpt.metadata_path(path).unlink()
    loaded, meta = ckpt.load_checkpoint(path)
    assert meta.method == "dvsh"
    assert loaded.bits == 32


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
@pytest.mark.parametrize("dumper", ["pickle", "torch"])
def test_pickled_object_is_refused_without_executing(
    tmp_path: Path, suffix: str, dumper: str
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / f"model{suffix}"
    if dumper == "pickle":
        path.write_bytes(pickle.dumps(_Evil(marker)))
    else:
        torch.save({"x": _Evil(marker)}, path)
    with pytest.raises(ckpt.CheckpointError, match="not"):
        ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_base_weights(_method().base_network(), path)
    assert not marker.exists()


def test_pickle_in_resume_state_is_refused(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "train.partial.pt"
    torch.save({"x": _Evil(marker)}, path)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_partial(path)
    assert not marker.exists()


def test_truncated_and_garbage_files_are_refused(tmp_path: Path) -> None:
    m = _method()
    path = ckpt.save_checkpoint(tmp_path / "m.safetensors", m, ckpt.build_metadata(m))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_checkpoint(path)
    path.write_bytes(b"\x00" * 4)
    with pytest.raises(ckpt.CheckpointError, match="too short"):
        ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError, match="does not exist"):
        ckpt.load_checkpoint(tmp_path / "missing.safetensors")


def test_foreign_safetensors_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ckpt.CheckpointError, match="not a fabricsearch model"):
        ckpt.load_checkpoint(path)
    # right metadata, wrong tensors
    m = _method()
    meta = ckpt.build_metadata(m)
    good = ckpt.save_checkpoint(tmp_path / "good.safetensors", m, meta)
    save_file({"w": torch.zeros(2)}, str(good))
    with pytest.raises(ckpt.CheckpointError, match="do not fit"):
        ckpt.load_checkpoint(good)


def test_unknown_method_in_metadata_is_refused(tmp_path: Path) -> None:
    m = _method()
    meta = ckpt.build_metadata(m)
    meta.method = "nonexistent"
    path = ckpt.save_checkpoint(tmp_path / "m.safetensors", m, meta)
    with pytest.raises(ckpt.CheckpointError, match="unknown method"):
        ckpt.load_checkpoint(path)


def test_base_weights_from_full_checkpoint_and_bare_file(tmp_path: Path) -> None:
    src = _method()
    full = ckpt.save_checkpoint(tmp_path / "full.safetensors", src, ckpt.build_metadata(src))
    bare = tmp_path / "base.safetensors"
    save_file({k: v.contiguous() for k, v in src.base_network().state_dict().items()}, str(bare))
    for path in (full, bare):
        torch.manual_seed(123)
        dst = _method()
        assert not torch.equal(dst.base.block1[0].weight, src.base.block1[0].weight)
        ckpt.load_base_weights(dst.base_network(), path)
        torch.testing.assert_close(dst.base.block1[0].weight, src.base.block1[0].weight)
    wrong = create_method("dvsh", bits=32, input_size=32, widths=(4, 4, 4, 4, 4), feature_dim=8)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.load_base_weights(wrong.base_network(), full)
