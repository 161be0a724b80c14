"""DVSH loss terms against hand-computed values, tie handling, finite gradients."""

from __future__ import annotations

import math

import pytest
import torch

from fabricsearch.hashing import losses


def test_kld_hand_computed() -> None:
    mu = torch.tensor([[1.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)]])
    # ½[(1 + 1 − 1 − 0) + (0 + 2 − 1 − ln 2)] = 1 − ln2 / 2 (the +KLD, i.e. minus Eq. 12)
    assert float(losses.kld_loss(mu, logvar)) == pytest.approx(1 - math.log(2) / 2)
    assert float(losses.kld_loss(torch.zeros(3, 4), torch.zeros(3, 4))) == pytest.approx(0.0)


def test_quantization_loss_hand_computed() -> None:
    u = torch.tensor([[0.5, -0.5], [1.0, 1.0]])
    # push: ((0.25 + 0.25) + 0) / 2 = 0.25
    # per bit over the batch: |mean(0.5, 1)| + |mean(−0.5, 1)| = 0.75 + 0.25 = 1.0
    assert float(losses.quantization_loss(u, "batch")) == pytest.approx(1.25)
    # per code (literal Eq. 15): (|0| + |2|) / 2 = 1.0
    assert float(losses.quantization_loss(u, "code")) == pytest.approx(1.25)
    assert float(losses.quantization_loss(u, "none")) == pytest.approx(0.25)
    v = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    assert float(losses.quantization_loss(v, "batch")) == pytest.approx(0.0)  # balanced bits
    assert float(losses.quantization_loss(v, "code")) == pytest.approx(2.0)  # unbalanced codes


def test_relaxed_hamming_equals_hamming_on_binary_codes() -> None:
    u = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, 1.0]])
    d = losses.relaxed_hamming(u)
    assert d.tolist() == [[0.0, 2.0], [2.0, 0.0]]


def _three_codes() -> tuple[torch.Tensor, torch.Tensor]:
    u = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])  # d01 = 1, d02 = 2, d12 = 1
    S = torch.tensor([[1.0, 0.9, 0.1], [0.9, 1.0, 0.5], [0.1, 0.5, 1.0]])
    return u, S


def test_listwise_loss_hand_computed() -> None:
    u, S = _three_codes()
    per = losses.listwise_loss(u, S, tau=1.0, reduction="none")
    a = math.log(1 + math.exp(-1))  # anchor 0: items 1 (d 1) then 2 (d 2)
    b = math.log(2.0)  # anchor 1: items 0 (d 1) then 2 (d 1): −log(e⁻¹ / (e⁻¹ + e⁻¹))
    assert per.tolist() == pytest.approx([a, b, a])
    assert float(losses.listwise_loss(u, S, tau=1.0)) == pytest.approx((2 * a + b) / 3)


def test_listwise_prefers_codes_that_follow_similarity() -> None:
    u, S = _three_codes()
    good = float(losses.listwise_loss(u, S, tau=1.0))
    swapped = float(losses.listwise_loss(u[[0, 2, 1]], S, tau=1.0))  # item 2's code nearest to 0
    assert good < swapped


def test_listwise_ties_breslow_hand_computed() -> None:
    # anchor 0 with items 1 and 2 tied (S = 0.5): each denominator sums over both
    u = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    S = torch.tensor([[1.0, 0.5, 0.5], [0.5, 1.0, 0.2], [0.5, 0.2, 1.0]])
    per = losses.listwise_loss(u, S, tau=1.0, reduction="none")
    s1, s2 = -1.0, -2.0
    expected = -(s1 + s2) + 2 * math.log(math.exp(s1) + math.exp(s2))
    assert float(per[0]) == pytest.approx(expected)


def test_listwise_swapping_codes_of_tied_items_leaves_anchor_loss_unchanged() -> None:
    g = torch.Generator().manual_seed(0)
    n, k = 6, 8
    u = torch.tanh(torch.randn(n, k, generator=g))
    S = torch.rand(n, n, generator=g)
    S = (S + S.T) / 2
    S[0, 2] = S[0, 4] = 0.3  # items 2 and 4 tied for anchor 0
    per = losses.listwise_loss(u, S, reduction="none")
    u2 = u.clone()
    u2[[2, 4]] = u[[4, 2]]  # which of the tied items is nearer must not matter
    per2 = losses.listwise_loss(u2, S, reduction="none")
    assert float(per2[0]) == pytest.approx(float(per[0]), rel=1e-6)
    # without the tie, the swap changes the loss (the test can fail)
    S3 = S.clone()
    S3[0, 4] = 0.2
    a = losses.listwise_loss(u, S3, reduction="none")[0]
    b = losses.listwise_loss(u2, S3, reduction="none")[0]
    assert float(a) != pytest.approx(float(b), rel=1e-4)


def test_listwise_matches_bruteforce_breslow_on_random_ties() -> None:
    g = torch.Generator().manual_seed(1)
    n, k = 5, 6
    u = torch.tanh(torch.randn(n, k, generator=g))
    S = torch.round(torch.rand(n, n, generator=g) * 3) / 3  # few levels → many ties
    tau = 1.5
    d = losses.relaxed_hamming(u)
    total = 0.0
    for a in range(n):
        items = [j for j in range(n) if j != a]
        for j in items:
            risk = [m for m in items if S[a, m] <= S[a, j]]
            denom = sum(math.exp(-float(d[a, m]) / tau) for m in risk)
            total -= -float(d[a, j]) / tau - math.log(denom)
    expected = total / n
    assert float(losses.listwise_loss(u, S, tau=tau)) == pytest.approx(expected, rel=1e-5)


def test_listwise_gradients_finite_and_batch_permutation_invariant() -> None:
    g = torch.Generator().manual_seed(2)
    u = torch.tanh(torch.randn(8, 16, generator=g)).requires_grad_(True)
    S = torch.rand(8, 8, generator=g)
    S = (S + S.T) / 2
    loss = losses.listwise_loss(u, S) + losses.quantization_loss(u)
    loss.backward()
    assert u.grad is not None
    assert torch.isfinite(u.grad).all()
    assert u.grad.abs().sum() > 0
    p = torch.randperm(8, generator=g)
    with torch.no_grad():
        a = float(losses.listwise_loss(u[p], S[p][:, p]))
        b = float(losses.listwise_loss(u, S))
    assert a == pytest.approx(b, rel=1e-5)
