"""Tie-aware retrieval metrics: hand-computed values and a brute-force oracle over tie orders."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from fabricsearch.hashing import metrics
from fabricsearch.similarity import LabelArrays


def _ap_of_order(rel: list[bool]) -> float:
    hits, total = 0, 0.0
    for pos, r in enumerate(rel, start=1):
        if r:
            hits += 1
            total += hits / pos
    return total / hits if hits else math.nan


def _dcg(gains: list[float], k: int) -> float:
    return sum(g / math.log2(p + 1) for p, g in enumerate(gains[:k], start=1))


def _orders_within_ties(dist: np.ndarray) -> list[list[int]]:
    """Every ranking of the items consistent with increasing distance (all tie orders)."""
    groups = [list(np.flatnonzero(dist == d)) for d in sorted(set(dist.tolist()))]
    orders = []
    for combo in itertools.product(*(itertools.permutations(g) for g in groups)):
        orders.append([i for g in combo for i in g])
    return orders


def test_ap_without_ties_is_the_usual_ap() -> None:
    dist = np.array([[0, 1, 2, 3]])
    rel = np.array([[True, False, True, False]])
    assert metrics.average_precision(dist, rel)[0] == pytest.approx((1 + 2 / 3) / 2)


def test_ap_two_way_tie_hand_computed() -> None:
    # relevant first (AP 1) or second (AP 1/2), each with probability 1/2
    assert metrics.average_precision(np.array([[0, 0]]), np.array([[True, False]]))[
        0
    ] == pytest.approx(0.75)


def test_ap_three_way_tie_hand_computed() -> None:
    # rel positions {1,2}: 1, {1,3}: 5/6, {2,3}: 7/12 → mean 29/36
    ap = metrics.average_precision(np.array([[1, 1, 1]]), np.array([[True, True, False]]))[0]
    assert ap == pytest.approx(29 / 36)


def test_ap_no_relevant_is_nan() -> None:
    assert np.isnan(metrics.average_precision(np.array([[0, 1]]), np.array([[False, False]]))[0])


def test_precision_at_k_with_tie_hand_computed() -> None:
    dist = np.array([[0, 1, 1, 1]])
    rel = np.array([[False, True, False, False]])
    p = metrics.precision_at_k(dist, rel, ks=(1, 2, 4))[0]
    assert p == pytest.approx([0.0, (1 / 3) / 2, 1 / 4])


@pytest.mark.parametrize("seed", range(6))
def test_tie_aware_metrics_equal_mean_over_all_tie_orders(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 7
    dist = rng.integers(0, 3, size=n)  # many ties
    rel = rng.random(n) < 0.4
    rel[0] = True
    gain = np.round(rng.random(n), 2)
    orders = _orders_within_ties(dist)
    ap = np.mean([_ap_of_order(list(rel[o])) for o in orders])
    k = 3
    pk = np.mean([rel[o][:k].sum() / k for o in orders])
    ideal = _dcg(sorted(gain.tolist(), reverse=True), k)
    ndcg = np.mean([_dcg(list(gain[o]), k) / ideal for o in orders])
    assert metrics.average_precision(dist[None], rel[None])[0] == pytest.approx(ap)
    assert metrics.precision_at_k(dist[None], rel[None], ks=(k,))[0, 0] == pytest.approx(pk)
    assert metrics.ndcg_at_k(dist[None], gain[None], k)[0] == pytest.approx(ndcg)


def test_metrics_do_not_depend_on_database_order() -> None:
    rng = np.random.default_rng(3)
    dist = rng.integers(0, 4, size=(5, 30))
    rel = rng.random((5, 30)) < 0.3
    gain = rng.random((5, 30))
    perm = rng.permutation(30)
    for f in (
        lambda d, r, g: metrics.average_precision(d, r),
        lambda d, r, g: metrics.precision_at_k(d, r, (1, 5, 10)),
        lambda d, r, g: metrics.ndcg_at_k(d, g, 10),
    ):
        np.testing.assert_allclose(
            f(dist, rel, gain), f(dist[:, perm], rel[:, perm], gain[:, perm])
        )


def test_ndcg_perfect_ranking_is_one() -> None:
    gain = np.array([[0.9, 0.5, 0.1]])
    dist = np.array([[0, 1, 2]])
    assert metrics.ndcg_at_k(dist, gain, 3)[0] == pytest.approx(1.0)
    assert metrics.ndcg_at_k(dist[:, ::-1].copy(), gain, 3)[0] < 1.0


def test_pr_curve_by_radius() -> None:
    dist = np.array([[0, 1, 1, 2]])
    rel = np.array([[True, False, True, False]])
    prec, rec = metrics.pr_curve(dist, rel, max_radius=2)
    np.testing.assert_allclose(prec, [1.0, 2 / 3, 0.5])
    np.testing.assert_allclose(rec, [0.5, 1.0, 1.0])


def _labels(minor: list[int], fine: list[int], major: list[int] | None = None) -> LabelArrays:
    n = len(minor)
    pal = np.zeros((n, 10, 4), np.float32)
    return LabelArrays(
        major=np.array(major if major is not None else [m // 10 if m >= 0 else -1 for m in minor]),
        minor=np.array(minor),
        fine=np.array(fine),
        tightness=np.full(n, np.nan, np.float32),
        palette=pal,
    )


def test_relevance_minor_and_fine_where_labelled() -> None:
    q = _labels([1, 1, -1], [3, -1, 2], major=[0, 0, 0])
    db = _labels([1, 1, 2, -1], [3, 4, 3, -1], major=[0, 0, 0, 0])
    rel = metrics.relevance_matrix(q, db)
    # q0: same minor & fine → db0; db1 other fine; db2 other minor; db3 minor unknown → major
    # equal, fine unknown on db3 → relevant
    assert rel[0].tolist() == [True, False, False, True]
    # q1: fine unknown → minor alone decides
    assert rel[1].tolist() == [True, True, False, True]
    # q2: minor unknown → majors; fine 2 differs from 3 and 4
    assert rel[2].tolist() == [False, False, False, True]


def test_evaluate_codes_perfect_codes_and_exclude_self() -> None:
    labels = _labels([1, 1, 2, 2], [0, 0, 0, 0])
    codes = np.array([[1, 1, 1, 1], [1, 1, 1, 1], [-1, -1, -1, -1], [-1, -1, -1, -1]], np.float32)
    res = metrics.evaluate_codes(codes, codes, labels, labels, ks=(1,), exclude_self=True)
    assert res.mAP == pytest.approx(1.0)
    assert res.precision[1] == pytest.approx(1.0)
    assert res.database == 3
    assert res.queries == 4
    assert res.bits == 4
    # identical codes for everything: every ranking is one big tie → AP = expected value
    same = np.ones_like(codes)
    res2 = metrics.evaluate_codes(same, same, labels, labels, ks=(1,), exclude_self=True)
    assert res2.mAP == pytest.approx(
        metrics.average_precision(np.zeros((1, 3), int), np.array([[True, False, False]]))[0]
    )
    assert res2.mAP < 1.0
