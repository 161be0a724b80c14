"""Checkpoint round trip, refusal of pickles / corrupt / foreign files, base-weight init."""

from __future__ import annotations

import json
import os
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


# --------------------------------------------------------------------------- crafted model files


def _saved(tmp_path: Path, name: str = "m") -> Path:
    m = _method()
    return ckpt.save_checkpoint(tmp_path / f"{name}.safetensors", m, ckpt.build_metadata(m))


def _edit_side_json(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    side = ckpt.metadata_path(path)
    meta = json.loads(side.read_text())
    edit(meta)
    side.write_text(json.dumps(meta))


# Each value would be built (gigabytes, a negative dimension, thousands of layers) or served
# (a NaN temperature, a network without layers) by a loader that trusted the file.
CRAFTED = [
    ("hidden_dim", 10**7),
    ("latent_dim", 10**9),
    ("num_fine", 10**8),
    ("latent_dim", -1),
    ("tau", float("nan")),
    ("tau", float("inf")),
    ("widths", []),
    ("widths", [8] * 10**5),
    ("widths", [8, 8, 8, 8, 10**6]),
    ("feature_dim", 16.5),
    ("feature_dim", "16"),
    ("variational", "yes"),
    ("feature_norm", "cube-root"),
    ("feature_dropout", 3.0),
]


@pytest.mark.parametrize(("field", "value"), CRAFTED)
def test_crafted_method_config_is_refused_before_anything_is_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, value: object
) -> None:
    from fabricsearch.hashing.methods.dvsh import DVSH

    path = _saved(tmp_path)
    _edit_side_json(path, lambda meta: meta["method_config"].__setitem__(field, value))

    def no_build(self, config):  # type: ignore[no-untyped-def]
        raise AssertionError("a method was built from a configuration out of bounds")

    monkeypatch.setattr(DVSH, "__init__", no_build)
    with pytest.raises(ckpt.CheckpointError, match=f"not valid.*{field}"):
        ckpt.load_checkpoint(path)


def test_every_numeric_config_field_of_every_method_declares_bounds() -> None:
    import dataclasses
    import typing

    from fabricsearch.hashing.registry import available_methods, method_config_class

    for name in available_methods():
        cls = method_config_class(name)
        bounds = cls.field_bounds()
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] in (int, float) or typing.get_origin(hints[f.name]) is tuple:
                assert f.name in bounds, (name, f.name)
                lo, hi = bounds[f.name]
                default = getattr(cls(), f.name)
                for v in default if isinstance(default, tuple) else (default,):
                    assert lo <= v <= hi, (name, f.name, v)


def test_config_in_bounds_but_not_in_the_file_is_refused_before_it_is_allocated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hidden_dim 16384 is a sane value, but the file's tensors were made for 16: the shapes
    are compared with the file's header before a single weight is allocated."""
    from fabricsearch.hashing.methods.dvsh import DVSH

    path = _saved(tmp_path)
    _edit_side_json(path, lambda meta: meta["method_config"].__setitem__("hidden_dim", 16384))
    built_on: list[str] = []
    real_init = DVSH.__init__

    def recording_init(self, config):  # type: ignore[no-untyped-def]
        built_on.append(torch.empty(0).device.type)  # the default device while building
        real_init(self, config)

    monkeypatch.setattr(DVSH, "__init__", recording_init)
    with pytest.raises(ckpt.CheckpointError, match="do not fit"):
        ckpt.load_checkpoint(path)
    assert built_on == ["meta"]  # sized without memory, never for real


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path: Path, bad: float) -> None:
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = _saved(tmp_path)
    with safe_open(str(path), "pt") as f:
        header_meta = f.metadata()
    state = load_file(str(path))
    name = next(k for k, v in state.items() if v.is_floating_point())
    state[name] = torch.full_like(state[name], bad)
    save_file(state, str(path), metadata=header_meta)
    with pytest.raises(ckpt.CheckpointError, match=f"not finite.*{name}"):
        ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError, match="not finite"):
        ckpt.load_tensors(path)


def _embedded_only(tmp_path: Path, embedded: str) -> Path:
    path = _saved(tmp_path)
    ckpt.metadata_path(path).unlink()
    from safetensors.torch import load_file

    save_file(load_file(str(path)), str(path), metadata={"fabricsearch": embedded})
    return path


@pytest.mark.parametrize(
    ("embedded", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not an object"),
        ('"text"', "not an object"),
        ('{"format": "fabricsearch-model", "format_version": "abc"}', "format version"),
        ('{"format": "fabricsearch-model", "format_version": [1]}', "format version"),
        (
            '{"format": "fabricsearch-model", "method": "dvsh", "bits": 32,'
            ' "method_config": {}, "metrics": [1]}',
            "metadata",
        ),
        (
            '{"format": "fabricsearch-model", "method": "dvsh", "bits": 1e999,'
            ' "method_config": {}}',
            "metadata",
        ),
    ],
)
def test_malformed_embedded_metadata_is_refused(
    tmp_path: Path, embedded: str, message: str
) -> None:
    path = _embedded_only(tmp_path, embedded)
    with pytest.raises(ckpt.CheckpointError, match=message):
        ckpt.load_checkpoint(path)
    with pytest.raises(ckpt.CheckpointError):
        ckpt.read_metadata(path)


def test_format_version_abc_in_the_side_file_is_refused(tmp_path: Path) -> None:
    path = _saved(tmp_path)
    _edit_side_json(path, lambda meta: meta.__setitem__("format_version", "abc"))
    with pytest.raises(ckpt.CheckpointError, match="format version"):
        ckpt.read_metadata(path)


def _no_hang(fifo: Path, call) -> BaseException | None:  # type: ignore[no-untyped-def]
    """Run `call` in a thread; if it blocks on the FIFO, unblock it and fail."""
    import threading

    out: list[BaseException | None] = [None]

    def run() -> None:
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            out[0] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)  # a reader waits: let it go
        os.close(fd)
        t.join(10)
        pytest.fail("reading the model file hung on a FIFO")
    return out[0]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
@pytest.mark.parametrize("which", ["weights", "metadata"])
def test_model_file_that_is_a_link_to_a_fifo_is_refused_without_hanging(
    tmp_path: Path, which: str
) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    path = _saved(tmp_path)
    target = path if which == "weights" else ckpt.metadata_path(path)
    target.unlink()
    target.symlink_to(fifo)
    for call in (ckpt.load_checkpoint, ckpt.read_metadata, ckpt.load_tensors):
        if which == "metadata" and call is ckpt.load_tensors:
            continue
        exc = _no_hang(fifo, lambda call=call: call(path))
        assert isinstance(exc, ckpt.CheckpointError), exc
        assert "not a regular file" in str(exc)


def test_cli_activating_a_crafted_model_prints_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fabricsearch.catalogue import Library, ModelInfo
    from fabricsearch.cli import main as cli_main

    folder = tmp_path / "lib"
    with Library.create(folder) as lib:
        path = _saved(lib.models_dir, "crafted")
        _edit_side_json(path, lambda meta: meta["method_config"].__setitem__("latent_dim", -1))
        lib.add_model(ModelInfo("crafted", "dvsh", 32, path, 0.0), activate=False)
    assert cli_main(["models", str(folder), "--activate", "crafted"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fabricsearch: error: ")
    assert "latent_dim" in lines[0]


@pytest.mark.parametrize("method", ["dvsh", "head", "itq"])
def test_loading_a_model_sizes_it_without_importing_torch_dynamo(
    tmp_path: Path, method: str
) -> None:
    """The meta-device sizing skips weight initialisation and random projections: on meta
    tensors they ran torch's Python kernels, whose first use imports torch._dynamo (1.5 s of
    the loading thread, the window's first search or suggestion, or an import's head fit,
    pausing it meanwhile). A fresh process: this one may have imported it already."""
    import subprocess
    import sys

    m = create_method(method, bits=32, input_size=32, **tiny_options(method))
    path = ckpt.save_checkpoint(tmp_path / "m.safetensors", m, ckpt.build_metadata(m))
    code = (
        "import sys\n"
        "from fabricsearch.hashing import checkpoint as ckpt\n"
        f"method, _ = ckpt.load_checkpoint({str(path)!r})\n"
        "assert method.bits == 32, method.bits\n"
        "assert 'torch._dynamo' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("method", ["dnnh", "dsah", "dshgan", "dvsh", "head", "itq", "lsh", "tsn"])
def test_sizing_on_the_meta_device_gives_the_real_shapes(method: str) -> None:
    """What `_check_fits_file` compares with a file: the skeleton built on the meta device
    with initialisation skipped has exactly the real network's tensors and shapes."""
    from fabricsearch.hashing.registry import method_config_class

    cfg = method_config_class(method)(**tiny_options(method))
    with torch.device("meta"), ckpt._SkipMetaInit():
        skeleton = create_method(method, config=cfg)
    real = create_method(method, config=cfg)
    assert {k: tuple(v.shape) for k, v in skeleton.state_dict().items()} == {
        k: tuple(v.shape) for k, v in real.state_dict().items()
    }
