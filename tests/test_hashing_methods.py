"""Registry, DVSH shapes and ablation switches, and one training step + encode for every method."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from hashing_helpers import synthetic_batch, tiny_options

from fabricsearch.config import TrainConfig
from fabricsearch.hashing import registry
from fabricsearch.hashing.base import HashMethod, MethodConfig, TrainContext
from fabricsearch.hashing.networks import BaseNet

ALL_METHODS = registry.available_methods()


def test_builtin_dvsh_methods_registered() -> None:
    assert {"dvsh", "dvsh1a", "dvsh1b", "dvsh2a"} <= set(ALL_METHODS)


def test_register_duplicate_raises_and_unknown_is_reported() -> None:
    @registry.register_method("test-dummy")
    class Dummy(HashMethod):
        pass

    try:
        with pytest.raises(ValueError, match="already registered"):

            @registry.register_method("test-dummy")
            class Other(HashMethod):
                pass

        assert "test-dummy" in registry.available_methods()
        assert registry.method_config_class("test-dummy") is MethodConfig
    finally:
        registry.unregister_method("test-dummy")
    with pytest.raises(registry.UnknownMethodError, match="unknown hashing method"):
        registry.create_method("no-such-method")


def test_create_method_rejects_unknown_option() -> None:
    with pytest.raises(TypeError):
        registry.create_method("dvsh", no_such_option=1)


def test_load_builtin_skips_only_missing_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_builtins_loaded", False)
    monkeypatch.setattr(registry, "BUILTIN_METHOD_MODULES", ["dvsh", "not_written_yet"])
    registry.load_builtin_methods()  # must not raise
    assert "dvsh" in registry.available_methods()


@pytest.mark.parametrize("bits", [32, 64, 128, 256])
def test_dvsh_output_shapes_for_all_code_lengths(bits: int) -> None:
    m = registry.create_method("dvsh", bits=bits, input_size=32, **tiny_options("dvsh"))
    x = torch.randn(3, 3, 32, 32)
    m.train()
    out = m(x)
    assert out["u"].shape == (3, bits)
    assert out["blocks"].shape == (3, bits, 2)
    torch.testing.assert_close(out["blocks"].sum(-1), torch.ones(3, bits))  # softmax per block
    assert (out["u"].abs() < 1).all()
    codes = m.encode(x)
    assert codes.shape == (3, bits)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_encode_maps_zero_to_plus_one() -> None:
    class Zero(HashMethod):
        def encode_continuous(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(x.shape[0], 8)

    codes = Zero(MethodConfig(bits=8)).encode(torch.zeros(2, 3, 4, 4))
    assert codes.eq(1.0).all()


def test_variational_module_samples_in_training_and_uses_mu_at_inference() -> None:
    m = registry.create_method("dvsh", bits=32, input_size=32, **tiny_options("dvsh"))
    x = torch.randn(4, 3, 32, 32)
    m.eval()
    torch.testing.assert_close(m(x)["u"], m(x)["u"])  # deterministic: z = μ
    m.train()
    torch.manual_seed(0)
    a = m(x)["u"]
    torch.manual_seed(1)
    b = m(x)["u"]
    assert not torch.allclose(a, b)  # z = μ + σ ε differs with ε


@pytest.mark.parametrize(
    ("name", "variational", "structural"),
    [
        ("dvsh", True, True),
        ("dvsh1a", False, True),
        ("dvsh1b", True, False),
        ("dvsh2a", False, False),
    ],
)
def test_ablation_switches(name: str, variational: bool, structural: bool) -> None:
    m = registry.create_method(name, bits=32, input_size=32, **tiny_options(name))
    assert m.config.variational is variational
    assert m.config.structural is structural
    assert hasattr(m, "mu") is variational
    assert hasattr(m, "struct_blocks") is structural
    assert hasattr(m, "hash_layer") is (not structural)
    m.train()
    out = m(torch.randn(2, 3, 32, 32))
    assert ("mu" in out) is variational
    assert ("blocks" in out) is structural
    # the flags are also available as options on the main method
    m2 = registry.create_method("dvsh", bits=32, variational=variational, structural=structural)
    assert hasattr(m2, "mu") is variational
    assert hasattr(m2, "struct_blocks") is structural


def test_block_length_other_than_two_is_refused() -> None:
    with pytest.raises(ValueError, match="A = 2"):
        registry.create_method("dvsh", block_len=4)


def test_base_network_accessor_and_feature_dim() -> None:
    m = registry.create_method("dvsh", bits=32, input_size=32, **tiny_options("dvsh"))
    base = m.base_network()
    assert isinstance(base, BaseNet)
    assert base.feature_dim == 16
    assert base(torch.randn(2, 3, 32, 32)).shape == (2, 16)


def test_dvsh_loss_terms_are_weighted_as_eq18() -> None:
    m = registry.create_method("dvsh", bits=32, input_size=32, **tiny_options("dvsh"))
    torch.manual_seed(0)
    _total, terms = m.compute_losses(synthetic_batch())
    expected = terms["list"] + 1e-3 * terms["quant"] + 1e-3 * terms["kld"]
    assert terms["loss"] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("name", ALL_METHODS)
def test_every_method_trains_one_step_and_encodes(name: str) -> None:
    torch.manual_seed(0)
    m = registry.create_method(name, bits=32, input_size=32, **tiny_options(name))
    cfg = TrainConfig(method=name, bits=32, input_size=32, batch_size=6)
    ctx = TrainContext(device=torch.device("cpu"), optimizers=m.configure_optimizers(cfg))
    before = {k: v.clone() for k, v in m.state_dict().items()}
    terms = m.training_step(synthetic_batch(), ctx)
    assert terms
    assert all(isinstance(v, float) and v == v for v in terms.values())
    m.finalize()
    if m.trainable:
        changed = any(
            not torch.equal(before[k], v)
            for k, v in m.state_dict().items()
            if v.is_floating_point()
        )
        assert changed, "a training step must change some weight"
        for p in m.parameters():
            assert p.grad is None or torch.isfinite(p.grad).all()
    codes = m.encode(torch.randn(5, 3, 32, 32))
    assert codes.shape == (5, 32)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


@dataclass(frozen=True)
class _BadBits(MethodConfig):
    pass


def test_method_config_requires_multiple_of_eight_bits() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        _BadBits(bits=12)
