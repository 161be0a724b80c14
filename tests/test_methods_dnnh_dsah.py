"""Method-specific tests of DNNH (divide-and-encode, piece-wise threshold, triplet loss) and DSaH
(saliency normalisation, quadruple loss, alternating optimisation)."""

from __future__ import annotations

import pytest
import torch

from fabricsearch.hashing.base import Batch, BatchLabels, TrainContext
from fabricsearch.hashing.methods import dnnh, dsah
from fabricsearch.hashing.registry import create_method


class _TrainCfg:
    lr = 1e-2
    weight_decay = 0.0


def _batch(n: int = 6, size: int = 32, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    images = torch.randn(n, 3, size, size, generator=g)
    minor = torch.tensor([0, 0, 1, 1, 2, 2][:n])
    labels = BatchLabels(
        major=torch.zeros(n, dtype=torch.int64),
        minor=minor,
        fine=torch.full((n,), -1, dtype=torch.int64),
        tightness=torch.full((n,), float("nan")),
        palette=torch.zeros(n, 10, 4),
    )
    same = (minor[:, None] == minor[None, :]).float()
    S = 0.25 + 0.7 * same  # graded: same minor 0.95, else 0.25
    return Batch(images=images, labels=labels, S=S)


def _ctx(method: torch.nn.Module) -> TrainContext:
    ctx = TrainContext(device=torch.device("cpu"), generator=torch.Generator().manual_seed(1))
    ctx.optimizers = method.configure_optimizers(_TrainCfg())
    return ctx


# --- DNNH ------------------------------------------------------------------------------------
def test_slice_lengths_follow_footnote_4() -> None:
    assert dnnh.slice_lengths(10, 4) == [3, 3, 2, 2]
    assert dnnh.slice_lengths(8, 4) == [2, 2, 2, 2]
    with pytest.raises(ValueError, match="at least one feature per bit"):
        dnnh.slice_lengths(3, 4)


def test_divide_encode_shapes_and_each_bit_sees_only_its_slice() -> None:
    dem = dnnh.DivideEncode(10, 4, beta=2.0)
    x = torch.randn(5, 10, requires_grad=True)
    out = dem(x)
    assert out.shape == (5, 4)
    assert ((out > 0) & (out < 1)).all()
    slices = [(0, 3), (3, 6), (6, 8), (8, 10)]
    for bit, (lo, hi) in enumerate(slices):
        (grad,) = torch.autograd.grad(out[:, bit].sum(), x, retain_graph=True)
        touched = (grad.abs() > 0).any(dim=0)
        expected = torch.zeros(10, dtype=torch.bool)
        expected[lo:hi] = True
        assert torch.equal(touched, expected), bit
    # Eq. 4–5 by hand for bit 2: sigmoid(β · W_2 x^(2)), no bias.
    w = dem.weight.detach()[2, :2]
    by_hand = torch.sigmoid(2.0 * (x.detach()[:, 6:8] * w).sum(dim=1))
    assert torch.allclose(out[:, 2].detach(), by_hand, atol=1e-6)


def test_piecewise_threshold_values_and_gradient() -> None:
    s = torch.tensor([0.05, 0.29, 0.31, 0.5, 0.69, 0.71, 0.99], requires_grad=True)
    g = dnnh.piecewise_threshold(s, eps=0.2)
    expected = torch.tensor([0.0, 0.0, 0.31, 0.5, 0.69, 1.0, 1.0])
    assert torch.allclose(g.detach(), expected)
    g.sum().backward()
    assert torch.equal(s.grad, torch.tensor([0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0]))
    # ε = 0.5 leaves every sigmoid output unchanged (the paper's start value).
    t = torch.rand(20)
    assert torch.equal(dnnh.piecewise_threshold(t, 0.5), t)


def test_eps_schedule_decays_twenty_percent() -> None:
    m = create_method("dnnh", bits=8, input_size=32, eps_decay_steps=10)
    assert m.eps_at(0) == pytest.approx(0.5)
    assert m.eps_at(9) == pytest.approx(0.5)
    assert m.eps_at(10) == pytest.approx(0.4)
    assert m.eps_at(25) == pytest.approx(0.32)


def test_triplet_mask_and_loss_hand_value() -> None:
    S = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    mask = dnnh.triplet_mask(S, delta=0.05)
    assert sorted(map(tuple, mask.nonzero().tolist())) == [(0, 1, 2), (1, 0, 2), (2, 1, 0)]
    b = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    # d01 = 1, d02 = 2, d12 = 1: (0,1,2) → max(0, 1 − 2 + 1) = 0; (1,0,2) → 1 − 1 + 1 = 1;
    # (2,1,0) → 1 − 2 + 1 = 0; mean 1/3.
    loss, count = dnnh.triplet_loss(b, mask, margin=1.0)
    assert count == 3
    assert loss.item() == pytest.approx(1.0 / 3.0)
    # δ = 0.45 keeps only (0, 1, 2): 0.9 > 0.1 + 0.45, but 0.9 ≯ 0.5 + 0.45 and 0.5 ≯ 0.1 + 0.45.
    assert sorted(map(tuple, dnnh.triplet_mask(S, delta=0.45).nonzero().tolist())) == [(0, 1, 2)]


def test_triplet_subset_is_seeded_and_bounded() -> None:
    S = torch.rand(8, 8, generator=torch.Generator().manual_seed(3))
    S = (S + S.T) / 2
    mask = dnnh.triplet_mask(S, 0.0)
    b = torch.rand(8, 4)
    l1, c1 = dnnh.triplet_loss(
        b, mask, 1.0, max_triplets=20, generator=torch.Generator().manual_seed(0)
    )
    l2, c2 = dnnh.triplet_loss(
        b, mask, 1.0, max_triplets=20, generator=torch.Generator().manual_seed(0)
    )
    assert c1 == c2 == 20
    assert l1.item() == l2.item()


def test_dnnh_codes_are_sign_of_f_minus_half_and_training_lowers_the_loss() -> None:
    m = create_method("dnnh", bits=8, input_size=32, nin_widths=(8, 8, 16, 16), slice_len=4)
    batch = _batch()
    f = m.eval()(batch.images)
    assert f.shape == (6, 8)
    assert ((f >= 0) & (f <= 1)).all()
    codes = m.encode(batch.images)
    assert torch.equal(codes, torch.where(f - 0.5 >= 0, 1.0, -1.0))
    ctx = _ctx(m)
    first = m.training_step(batch, ctx)
    assert first["triplets"] > 0
    for _ in range(15):
        last = m.training_step(batch, ctx)
    assert last["loss"] < first["loss"]


# --- DSaH ------------------------------------------------------------------------------------
def _small_dsah(**kw: object) -> dsah.DSaH:
    return create_method(
        "dsah",
        bits=16,
        input_size=32,
        widths=(8, 8, 16, 16, 16),
        feature_dim=32,
        attention_widths=(4, 4, 8, 8),
        **kw,
    )


def test_minmax_normalise_is_in_unit_range() -> None:
    sal = torch.randn(4, 1, 9, 9) * 5 + 3
    out = dsah.minmax_normalise(sal)
    assert out.min() >= 0
    assert out.max() <= 1
    flat = out.flatten(1)
    assert torch.allclose(flat.min(dim=1).values, torch.zeros(4))
    assert torch.allclose(flat.max(dim=1).values, torch.ones(4))
    # Order inside an image is kept; a constant map lets the image through unchanged.
    assert torch.equal(out.flatten(1).argsort(dim=1), sal.flatten(1).argsort(dim=1))
    assert torch.equal(dsah.minmax_normalise(torch.full((1, 1, 3, 3), 2.0)), torch.ones(1, 1, 3, 3))


def test_saliency_map_and_image() -> None:
    m = _small_dsah().eval()
    x = _batch().images
    sal = m.saliency_map(x)
    assert sal.shape == (6, 1, 32, 32)
    assert sal.min() >= 0
    assert sal.max() <= 1
    assert torch.allclose(m.saliency_image(x), sal * x)
    codes = m.encode(x)
    assert codes.shape == (6, 16)
    assert set(codes.unique().tolist()) <= {-1.0, 1.0}


def test_quadruple_loss_hand_value() -> None:
    d = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    d_sal = torch.tensor([[0.0, 0.5], [3.0, 0.0]])
    # (0,1): max(1 − 2 + 0.5, 0) = 0; (1,0): max(1 − 1 + 3, 0) = 3; diagonal ignored → 1.5.
    assert dsah.quadruple_saliency_loss(d, d_sal, margin=1.0).item() == pytest.approx(1.5)


def test_semantic_distance_and_quantisation_hand_values() -> None:
    mu = torch.tensor([[1.0, 1.0], [1.0, -1.0]])
    target = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    # ŝ_01 = (0 + 2) / 4 = 0.5 → (1 − 0.5)² = 0.25 for both off-diagonal pairs.
    assert dsah.semantic_loss(mu, target).item() == pytest.approx(0.25)
    assert dsah.pair_distance_bits(mu, target)[0, 1].item() == pytest.approx(0.5)  # K · 0.25
    assert dsah.quantisation_l1(torch.tensor([[0.5, -1.0], [0.0, -0.25]])).item() == pytest.approx(
        (0.5 + 0.0 + 1.0 + 0.75) / 4
    )
    assert _small_dsah().config.margin == 4.0  # K / 4


def test_pairwise_label_modes() -> None:
    batch = _batch()
    lab = dsah.pairwise_labels(batch, "label", 0.5)
    same = (batch.labels.minor[:, None] == batch.labels.minor[None, :]).float()
    assert torch.equal(lab, same)
    assert torch.equal(dsah.pairwise_labels(batch, "threshold", 0.9), same)
    assert torch.equal(dsah.pairwise_labels(batch, "threshold", 0.2), torch.ones(6, 6))
    assert torch.equal(dsah.pairwise_labels(batch, "graded", 0.5), batch.S)
    with pytest.raises(ValueError, match="similar must be"):
        _small_dsah(similar="nope")


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in module.named_parameters()}


def _changed(module: torch.nn.Module, before: dict[str, torch.Tensor]) -> bool:
    return any(not torch.equal(p.detach(), before[k]) for k, p in module.named_parameters())


def test_attention_phase_leaves_hashing_net_unchanged_and_vice_versa() -> None:
    m = _small_dsah()
    m.train()
    batch = _batch()
    ctx = _ctx(m)
    att0, hash0 = _snapshot(m.attention), _snapshot(m.hashing)
    m.attention_step(batch, ctx)
    assert _changed(m.attention, att0)
    assert not _changed(m.hashing, hash0)
    assert all(p.requires_grad for p in m.hashing.parameters())  # unfrozen again
    att1 = _snapshot(m.attention)
    m.hashing_step(batch, ctx)
    assert _changed(m.hashing, hash0)
    assert not _changed(m.attention, att1)


def test_training_step_runs_attention_first(monkeypatch: pytest.MonkeyPatch) -> None:
    m = _small_dsah()
    order: list[str] = []
    att, hsh = m.attention_step, m.hashing_step

    def record_att(b: Batch, c: TrainContext) -> dict[str, float]:
        order.append("attention")
        return att(b, c)

    def record_hash(b: Batch, c: TrainContext) -> dict[str, float]:
        order.append("hashing")
        return hsh(b, c)

    monkeypatch.setattr(m, "attention_step", record_att)
    monkeypatch.setattr(m, "hashing_step", record_hash)
    terms = m.training_step(_batch(), _ctx(m))
    assert order == ["attention", "hashing"]
    assert {"att_loss", "hash_loss", "sal", "sem", "quant", "loss"} <= set(terms)
    assert all(v == v for v in terms.values())  # no NaN


def test_dsah_optimisers_split_the_parameters() -> None:
    m = _small_dsah()
    att_opt, hash_opt = m.configure_optimizers(_TrainCfg())
    att_ids = {id(p) for g in att_opt.param_groups for p in g["params"]}
    hash_ids = {id(p) for g in hash_opt.param_groups for p in g["params"]}
    assert att_ids == {id(p) for p in m.attention.parameters()}
    assert hash_ids == {id(p) for p in m.hashing.parameters()}
    assert m.base_network() is m.hashing.base
