"""The GAN-based comparable methods: TSN (texture synthesis hashing) and DSH-GANs."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from fabricsearch.config import TrainConfig
from fabricsearch.hashing import gan_blocks as gb
from fabricsearch.hashing.base import Batch, BatchLabels, TrainContext
from fabricsearch.hashing.data import TrainingData
from fabricsearch.hashing.methods import dshgan, tsn
from fabricsearch.hashing.registry import available_methods, create_method
from fabricsearch.hashing.train import train
from fabricsearch.similarity import LabelArrays

BITS = 16
SIZE = 32
TINY = {
    "tsn": {
        "gen_base": 4,
        "gen_max": 8,
        "gen_levels": 2,
        "res_blocks": 1,
        "disc_widths": (4, 8),
        "style_widths": (4, 8),
        "feature_dim": 16,
        "n_classes": 8,
        "n_fine_classes": 4,
    },
    "dshgan": {
        "widths": (4, 4, 8, 8, 8),
        "feature_dim": 16,
        "gen_base": 4,
        "gen_max": 8,
        "gen_levels": 2,
        "noise_dim": 8,
        "n_classes": 8,
    },
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> object:
    # Tiny convolutions: with the cores shared, intra-op threading costs 10–20× more than it saves.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def tiny(name: str, **kw: object) -> torch.nn.Module:
    return create_method(name, bits=BITS, input_size=SIZE, **{**TINY[name], **kw})


def make_batch(n: int = 8, size: int = SIZE) -> Batch:
    g = torch.Generator().manual_seed(3)
    minor = torch.tensor([0, 1, 2, -1, 0, 1, 2, 3])[:n]
    labels = BatchLabels(
        major=(minor.clamp(min=-1) // 2),
        minor=minor,
        fine=torch.tensor([0, 1, -1, 2, 0, 1, 3, 2])[:n],
        tightness=torch.full((n,), float("nan")),
        palette=torch.zeros(n, 10, 4),
    )
    same = (minor[:, None] == minor[None, :]) & (minor[:, None] >= 0)
    S = torch.where(same, 1.0, 0.1)
    S.fill_diagonal_(1.0)
    return Batch(images=torch.randn(n, 3, size, size, generator=g), labels=labels, S=S)


def context(method: torch.nn.Module, epochs: int = 2) -> TrainContext:
    ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(1))
    ctx.optimizers = method.configure_optimizers(
        TrainConfig(method=method.name, bits=BITS, input_size=SIZE, epochs=epochs)
    )
    return ctx


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    after = module.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


def test_both_registered() -> None:
    assert {"tsn", "dshgan"} <= set(available_methods())


# --- shared blocks -----------------------------------------------------------------------
def test_gram_matrix_hand_value() -> None:
    # two channels over a 1×2 map: c0 = [1, 2], c1 = [3, 4]; averaged over H·W = 2 positions
    f = torch.tensor([[[[1.0, 2.0]], [[3.0, 4.0]]]])
    expected = torch.tensor([[[5.0, 11.0], [11.0, 25.0]]]) / 2.0
    torch.testing.assert_close(gb.gram_matrix(f), expected)
    # Gatys: Σ (G − A)² / (4 N² M²) with raw G; here A = 0 features → 1 layer, N = M = 2
    raw = torch.tensor([[5.0, 11.0], [11.0, 25.0]])
    gatys = float((raw**2).sum() / (4 * 2**2 * 2**2))
    assert float(gb.style_loss([f], [torch.zeros_like(f)])) == pytest.approx(gatys)


def test_style_loss_zero_for_same_texture_and_positive_otherwise() -> None:
    net = gb.RandomStyleNet((4, 8), seed=1)
    x = torch.randn(2, 3, 16, 16)
    assert float(gb.style_loss(net(x), net(x))) == 0.0
    assert float(gb.style_loss(net(x), net(x * 0.2 + 1.0))) > 0.0


def test_random_style_net_is_a_function_of_its_seed_and_not_saved() -> None:
    a, b, c = (
        gb.RandomStyleNet((4, 8), 7),
        gb.RandomStyleNet((4, 8), 7),
        gb.RandomStyleNet((4, 8), 8),
    )
    assert torch.equal(a.w0, b.w0)
    assert not torch.equal(a.w0, c.w0)
    assert a.state_dict() == {}
    assert not any(k.startswith("style_net") for k in tiny("tsn").state_dict())


def test_channel_attention_starts_as_identity_and_weights_sum_to_one() -> None:
    ca = gb.ChannelAttention(6)
    x = torch.randn(2, 6, 5, 5)
    torch.testing.assert_close(ca(x), x)
    torch.nn.init.normal_(ca.fc.weight)
    w = ca.weights(x)
    torch.testing.assert_close(w.sum(dim=1), torch.ones(2))
    assert not torch.allclose(ca(x), x)


# --- TSN ---------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [16, 15, 32])
def test_tsn_generator_doubles_the_patch_and_pairs_match(k: int) -> None:
    gen = tsn.TextureGenerator(base=4, max_ch=8, levels=3, res_blocks=1)
    x = torch.randn(2, 3, k, k)
    assert gen(x).shape == (2, 3, 2 * k, 2 * k)
    enc, dec, top = gen.features(x)
    assert [e.shape for e in enc] == [d.shape for d in dec]
    assert top.shape[2:] == (2 * k, 2 * k)
    with torch.no_grad():
        assert float(gen(x).abs().max()) <= 2.0  # the normalised image range


def test_dsdh_pairwise_likelihood_hand_value() -> None:
    u = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, -1.0]])
    S = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    # Θ12 = ½·2 = 1 (similar pair), Θ13 = Θ23 = 0: the ordered pairs (1,2), (2,1) pay
    # log(1+e) − 1, the other four log 2; J is their mean
    expected = (2 * (math.log1p(math.e) - 1.0) + 4 * math.log(2.0)) / 6
    assert float(tsn.dsdh_pairwise_likelihood(u, S)) == pytest.approx(expected, rel=1e-6)
    # soft similarity: the same formula with s = 0.25
    S2 = torch.tensor([[1.0, 0.25], [0.25, 1.0]])
    u2 = u[:2]
    assert float(tsn.dsdh_pairwise_likelihood(u2, S2)) == pytest.approx(
        math.log1p(math.e) - 0.25, rel=1e-6
    )


def _dcc_objective(
    b: torch.Tensor, u: torch.Tensor, y: torch.Tensor, W: torch.Tensor, mu: float, eta: float
) -> torch.Tensor:
    return mu * (y - b @ W).pow(2).sum(dim=1) + eta * (b - u).pow(2).sum(dim=1)


def test_dsdh_dcc_codes_are_coordinate_optimal_and_beat_sign() -> None:
    g = torch.Generator().manual_seed(0)
    n, k, c = 6, 5, 3
    u = torch.randn(n, k, generator=g) * 0.3
    W = torch.randn(k, c, generator=g)
    y = torch.zeros(n, c)
    y[torch.arange(n), torch.arange(n) % c] = 1.0
    mu, eta = 1.0, 0.5
    b = tsn.dsdh_discrete_codes(u, y, W, mu, eta, iters=10)
    assert set(b.unique().tolist()) <= {-1.0, 1.0}
    obj = _dcc_objective(b, u, y, W, mu, eta)
    sign = torch.where(u >= 0, 1.0, -1.0)
    assert bool((obj <= _dcc_objective(sign, u, y, W, mu, eta) + 1e-5).all())
    for i in range(k):  # no single bit flip improves any item
        flipped = b.clone()
        flipped[:, i] *= -1
        assert bool((obj <= _dcc_objective(flipped, u, y, W, mu, eta) + 1e-5).all())
    # brute force over all 2^k codes for one item: the DCC optimum is close to the global one
    codes = torch.tensor(list(itertools.product([-1.0, 1.0], repeat=k)))
    best = _dcc_objective(
        codes, u[:1].expand(len(codes), k), y[:1].expand(len(codes), c), W, mu, eta
    ).min()
    assert float(obj[0]) >= float(best) - 1e-5


def test_class_targets_multi_hot_and_overflow() -> None:
    y = tsn.class_targets(torch.tensor([1, -1]), torch.tensor([-1, 0]), 3, 2)
    torch.testing.assert_close(
        y, torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0, 0.0]])
    )
    with pytest.raises(ValueError, match="n_classes"):
        tsn.class_targets(torch.tensor([3]), torch.tensor([0]), 3, 2)


def test_tsn_stage_switch_freezes_the_gan() -> None:
    m = tiny("tsn")
    ctx = context(m, epochs=2)
    assert int(m.stage1_epochs) == 1
    batch = make_batch()
    g_before, d_before = snapshot(m.generator), snapshot(m.discriminator)
    ctx.epoch = 0  # stage 1: the GAN learns
    terms = m.training_step(batch, ctx)
    assert terms["stage"] == 1.0
    assert changed(g_before, m.generator)
    assert changed(d_before, m.discriminator)

    ctx.epoch = 1  # stage 2: GAN frozen, hashing head trained
    g_before, d_before, h_before = (
        snapshot(m.generator),
        snapshot(m.discriminator),
        snapshot(m.head),
    )
    for _ in range(2):
        terms = m.training_step(batch, ctx)
    assert terms["stage"] == 2.0
    assert changed(g_before, m.generator) == set()  # weights and BatchNorm statistics
    assert changed(d_before, m.discriminator) == set()
    assert changed(h_before, m.head)


def test_tsn_synthesised_crops_have_input_size() -> None:
    m = tiny("tsn").eval()
    with torch.no_grad():
        crops = m.synthesize_crops(torch.randn(3, 3, SIZE, SIZE), torch.Generator().manual_seed(0))
    assert crops.shape == (3, 3, SIZE, SIZE)


# --- DSH-GANs ----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [32, 27])
def test_dshgan_generator_shape_and_class_conditioning(size: int) -> None:
    gen = dshgan.ConditionalGenerator(
        n_classes=5, noise_dim=8, size=size, base=4, max_ch=8, levels=3
    ).eval()
    z = torch.randn(1, 8).expand(2, 8)
    c = torch.eye(5)[[0, 3]]
    with torch.no_grad():
        out = gen(c, z)
    assert out.shape == (2, 3, size, size)
    assert not torch.allclose(out[0], out[1])  # same noise, different class → different image
    with torch.no_grad():
        again = gen(c, z)
    torch.testing.assert_close(out, again)  # and it is the class, not randomness


def test_dshgan_one_hot_zero_for_unlabelled() -> None:
    oh = dshgan.one_hot_or_zero(torch.tensor([2, -1]), 4)
    torch.testing.assert_close(oh, torch.tensor([[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="n_classes"):
        dshgan.one_hot_or_zero(torch.tensor([4]), 4)


def test_dshgan_stream_shapes() -> None:
    m = tiny("dshgan")
    out = m.streams(torch.randn(5, 3, SIZE, SIZE))
    assert out["h"].shape == (5, BITS)
    assert bool(((out["h"] >= 0) & (out["h"] <= 1)).all())
    assert out["adv"].shape == (5,)
    assert out["cls"].shape == (5, 8)


def test_dshgan_triplet_construction() -> None:
    labels = torch.tensor([0, 2, -1, 2, 4])
    seen = torch.zeros(6, dtype=torch.bool)
    seen[[0, 2, 5]] = True  # class 4 is labelled here but marked unseen on purpose
    anchors, negs = dshgan.sample_negative_classes(labels, seen, torch.Generator().manual_seed(0))
    assert anchors.tolist() == [0, 1, 3, 4]  # unlabelled image 2 is no anchor
    assert all(int(n) != int(labels[a]) for a, n in zip(anchors, negs, strict=True))
    assert all(bool(seen[n]) for n in negs)
    only = torch.zeros(6, dtype=torch.bool)
    only[2] = True
    a2, _ = dshgan.sample_negative_classes(torch.tensor([2, 2]), only)
    assert a2.numel() == 0  # no other class known yet → no triplet

    m = tiny("dshgan")
    m.class_seen[[0, 1, 2, 3]] = True
    minor = torch.tensor([0, 1, -1, 3])
    syn = m.make_synthetic(minor, torch.Generator().manual_seed(0))
    n_anchor = syn["anchors"].numel()
    assert syn["anchors"].tolist() == [0, 1, 3]
    assert syn["fake"].shape == (4 + n_anchor, 3, SIZE, SIZE)
    # x⁺ carries the real image's class (−1 stays unconditioned), x⁻ a different one
    assert syn["fake_cls"][:4].tolist() == minor.tolist()
    neg = syn["fake_cls"][4:]
    assert bool((neg != minor[syn["anchors"]]).all())


def test_triplet_ranking_loss_hand_value() -> None:
    h = torch.tensor([[1.0, 0.0]])
    pos = torch.tensor([[1.0, 0.5]])  # ‖·‖² = 0.25
    neg = torch.tensor([[0.0, 0.0]])  # ‖·‖² = 1
    assert float(dshgan.triplet_ranking_loss(h, pos, neg, margin=1.0)) == pytest.approx(0.25)
    assert float(dshgan.triplet_ranking_loss(h, pos, neg, margin=0.5)) == 0.0


def test_dshgan_stage2_updates_generator_and_cnn() -> None:
    m = tiny("dshgan")
    ctx = context(m, epochs=4)
    assert int(m.stage1_epochs) == 2
    batch = make_batch()
    ctx.epoch = 2
    g_before, b_before = snapshot(m.generator), snapshot(m.base)
    terms = m.training_step(batch, ctx)
    assert terms["stage"] == 2.0
    assert terms["triplet"] > 0.0
    assert changed(g_before, m.generator)
    assert changed(b_before, m.base)
    assert bool(m.class_seen[[0, 1, 2, 3]].all())
    assert not bool(m.class_seen[4:].any())


# --- both --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["tsn", "dshgan"])
def test_encode_gives_pm1_codes_of_k_bits(name: str) -> None:
    m = tiny(name)
    codes = m.encode(torch.randn(3, 3, SIZE, SIZE))
    assert codes.shape == (3, BITS)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


@pytest.mark.parametrize("name", ["tsn", "dshgan"])
def test_training_steps_stay_finite_and_state_round_trips(name: str) -> None:
    m = tiny(name)
    ctx = context(m, epochs=2)
    batch = make_batch()
    for epoch in (0, 0, 1, 1):
        ctx.epoch = epoch
        terms = m.training_step(batch, ctx)
        assert all(math.isfinite(v) for v in terms.values()), terms
    assert all(bool(torch.isfinite(p).all()) for p in m.parameters())
    x = torch.randn(2, 3, SIZE, SIZE)
    fresh = tiny(name)
    fresh.load_state_dict(m.state_dict())  # strict: every piece of state is a parameter/buffer
    torch.testing.assert_close(fresh.encode(x), m.encode(x))
    assert int(fresh.stage1_epochs) == 1


@pytest.mark.parametrize("name", ["tsn", "dshgan"])
def test_trainer_runs_both_stages(name: str) -> None:
    rng = np.random.default_rng(0)
    n = 12
    minor = np.array([0, 1, 2, -1] * 3)
    labels = LabelArrays(
        major=np.where(minor >= 0, minor // 2, -1),
        minor=minor,
        fine=np.array([0, 1, -1] * 4),
        tightness=np.full(n, np.nan, np.float32),
        palette=np.zeros((n, 10, 4), np.float32),
    )
    images = [rng.integers(0, 256, (40, 40, 3), dtype=np.uint8) for _ in range(n)]
    data = TrainingData(
        images=images, labels=labels, train_idx=np.arange(8), val_idx=np.arange(8, 12)
    )
    cfg = TrainConfig(
        method=name,
        bits=BITS,
        input_size=SIZE,
        epochs=2,
        batch_size=4,
        max_steps_per_epoch=1,
        patience=0,
        device="cpu",
        method_options=TINY[name],
    )
    result = train(data, cfg)
    stages = [h["stage"] for h in result.history]
    assert stages == [1.0, 2.0]
    # the method's own loss terms (val mAP of 4 random images is the trainer's business)
    terms = [
        v for h in result.history for k, v in h.items() if k not in ("epoch", "step", "val_mAP")
    ]
    assert terms
    assert all(math.isfinite(v) for v in terms)
