"""Retrieval metrics over a Hamming ranking (§5): mAP, NDCG@k, precision@k, precision–recall.

Hamming distances take only K + 1 values, so ties are frequent (especially at 32 bits). Every
metric here is *tie-aware* (McSherry & Najork, ECIR 2008): it is the exact expectation of the
metric over all orders of the database items inside each tie, so the result is never flattered
or penalised by database order. Definitions are in docs/evaluation.md.

Everything works on per-query histograms over distance values: for query q and distance b,
n[q, b] items, r[q, b] of them relevant, g[q, b] their summed gain.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fabricsearch.codes import hamming_pm1
from fabricsearch.similarity import LabelArrays, fine_grained_matrix

DEFAULT_KS = (1, 5, 10, 20, 50, 100)


def relevance_matrix(q: LabelArrays, db: LabelArrays) -> np.ndarray:
    """(Nq, Nd) bool: same coarse *minor* category and, where both are labelled, same fine texture.

    Where a minor is unknown on either side the majors are compared instead; where no coarse
    label is known on either side, the fine texture alone decides (unknown → not relevant)."""
    qm, dm = q.minor[:, None], db.minor[None, :]
    qM, dM = q.major[:, None], db.major[None, :]
    qf, df = q.fine[:, None], db.fine[None, :]
    minor_known = (qm >= 0) & (dm >= 0)
    major_known = (qM >= 0) & (dM >= 0)
    fine_known = (qf >= 0) & (df >= 0)
    coarse = np.where(
        minor_known, qm == dm, np.where(major_known, qM == dM, fine_known & (qf == df))
    )
    fine_ok = np.where(fine_known, qf == df, True)
    return coarse & fine_ok


def _histograms(
    dist: np.ndarray, rel: np.ndarray, gain: np.ndarray | None, nbins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    nq = dist.shape[0]
    flat = (np.arange(nq)[:, None] * nbins + dist).ravel()
    size = nq * nbins
    n = np.bincount(flat, minlength=size).reshape(nq, nbins).astype(np.float64)
    r = np.bincount(flat, weights=rel.ravel().astype(np.float64), minlength=size).reshape(nq, nbins)
    g = None
    if gain is not None:
        g = np.bincount(flat, weights=gain.ravel().astype(np.float64), minlength=size).reshape(
            nq, nbins
        )
    return n, r, g


def _check(dist: np.ndarray) -> tuple[np.ndarray, int]:
    dist = np.asarray(dist)
    if dist.ndim != 2:
        raise ValueError("distances must be (queries, database)")
    if dist.size and (dist.min() < 0 or not np.issubdtype(dist.dtype, np.integer)):
        raise ValueError("distances must be non-negative integers (Hamming distances)")
    nbins = int(dist.max()) + 1 if dist.size else 1
    return dist.astype(np.int64), nbins


def average_precision(dist: np.ndarray, rel: np.ndarray) -> np.ndarray:
    """Tie-aware AP per query over the ranking by increasing distance; NaN where no item is relevant.

    Inside a tie group of n items (r relevant) after t items (R_b relevant), a relevant item is
    equally likely at each of the n positions and the other r − 1 relevant items fill the other
    n − 1 slots uniformly, so its expected precision at position t + i is
    (R_b + 1 + (i − 1)(r − 1)/(n − 1)) / (t + i)."""
    dist, nbins = _check(dist)
    n, r, _ = _histograms(dist, np.asarray(rel, bool), None, nbins)
    nd = dist.shape[1]
    harmonic = np.concatenate([[0.0], np.cumsum(1.0 / np.arange(1, nd + 1))])
    t = np.cumsum(n, axis=1) - n
    r_before = np.cumsum(r, axis=1) - r
    ti = t.astype(np.int64)
    dh = harmonic[ti + n.astype(np.int64)] - harmonic[ti]
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(n > 1, (r - 1.0) / (n - 1.0), 0.0)
        inner = (r_before + 1.0) * dh + share * (n - (t + 1.0) * dh)
        contrib = np.where(n > 0, r / np.maximum(n, 1.0) * inner, 0.0)
        total = r.sum(axis=1)
        return np.where(total > 0, contrib.sum(axis=1) / total, np.nan)


def precision_at_k(dist: np.ndarray, rel: np.ndarray, ks: Sequence[int]) -> np.ndarray:
    """Tie-aware precision@k per query → (Nq, len(ks)); k is capped at the database size."""
    dist, nbins = _check(dist)
    n, r, _ = _histograms(dist, np.asarray(rel, bool), None, nbins)
    t = np.cumsum(n, axis=1) - n
    nd = dist.shape[1]
    out = np.empty((dist.shape[0], len(ks)))
    for j, k in enumerate(ks):
        kk = min(int(k), nd)
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.clip((kk - t) / np.maximum(n, 1.0), 0.0, 1.0)
        out[:, j] = (r * frac).sum(axis=1) / max(kk, 1)
    return out


def ndcg_at_k(dist: np.ndarray, gain: np.ndarray, k: int = 50) -> np.ndarray:
    """Tie-aware NDCG@k per query with graded gain (e.g. S of Eq. 6), discount 1/log2(1 + pos).

    A tie group contributes its mean gain times the discounts of its positions inside the top k.
    NaN where the ideal DCG is 0."""
    dist, nbins = _check(dist)
    gain = np.asarray(gain, dtype=np.float64)
    n, _, g = _histograms(dist, np.zeros(dist.shape, bool), gain, nbins)
    assert g is not None
    nd = dist.shape[1]
    kk = min(int(k), nd)
    disc = 1.0 / np.log2(np.arange(2, nd + 2))
    cum = np.concatenate([[0.0], np.cumsum(disc)])
    t = (np.cumsum(n, axis=1) - n).astype(np.int64)
    end = np.minimum(t + n.astype(np.int64), kk)
    start = np.minimum(t, kk)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_gain = np.where(n > 0, g / np.maximum(n, 1.0), 0.0)
        dcg = (mean_gain * (cum[end] - cum[start])).sum(axis=1)
        ideal = -np.sort(-gain, axis=1)[:, :kk]
        idcg = (ideal * disc[:kk]).sum(axis=1)
        return np.where(idcg > 0, dcg / idcg, np.nan)


def pr_curve(
    dist: np.ndarray, rel: np.ndarray, max_radius: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of Hamming-ball retrieval at each radius 0..K (ties retrieved
    together, so no order is involved). Means over queries with ≥ 1 relevant item; precision
    averages only queries that retrieve something at that radius."""
    dist, nbins = _check(dist)
    nbins = max(nbins, (max_radius or 0) + 1)
    n, r, _ = _histograms(dist, np.asarray(rel, bool), None, nbins)
    total = r.sum(axis=1)
    ok = total > 0
    n, r, total = n[ok], r[ok], total[ok]
    retrieved = np.cumsum(n, axis=1)
    hits = np.cumsum(r, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        prec = np.where(retrieved > 0, hits / retrieved, np.nan)
        rec = hits / total[:, None]
    if prec.shape[0] == 0:
        return np.full(nbins, np.nan), np.full(nbins, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (nothing retrieved)
        return np.nanmean(prec, axis=0), rec.mean(axis=0)


@dataclass
class EvalResult:
    """Summary metrics plus the curves (for plots and JSON)."""

    mAP: float
    ndcg: float
    ndcg_k: int
    precision: dict[int, float]
    bits: int
    queries: int
    database: int
    queries_with_relevant: int
    pr_precision: list[float] = field(default_factory=list)
    pr_recall: list[float] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mAP": self.mAP, f"ndcg@{self.ndcg_k}": self.ndcg}
        out.update({f"precision@{k}": v for k, v in self.precision.items()})
        out.update({"bits": self.bits, "queries": self.queries, "database": self.database})
        return out

    def to_dict(self) -> dict[str, Any]:
        out = self.summary()
        out["queries_with_relevant"] = self.queries_with_relevant
        out["pr_curve"] = {
            "radius": list(range(len(self.pr_precision))),
            "precision": self.pr_precision,
            "recall": self.pr_recall,
        }
        return out


def _nanmean(x: np.ndarray) -> float:
    x = x[~np.isnan(x)]
    return float(x.mean()) if x.size else float("nan")


def evaluate_codes(
    q_codes: np.ndarray,
    db_codes: np.ndarray,
    q_labels: LabelArrays,
    db_labels: LabelArrays,
    ks: Sequence[int] = DEFAULT_KS,
    ndcg_k: int = 50,
    exclude_self: bool = False,
) -> EvalResult:
    """All metrics for ±1 query codes against ±1 database codes.

    `exclude_self=True` when queries and database are the same set (validation): each query's
    own entry is dropped from its ranking."""
    q_codes = np.asarray(q_codes, dtype=np.float32)
    db_codes = np.asarray(db_codes, dtype=np.float32)
    bits = int(q_codes.shape[1])
    dist = hamming_pm1(q_codes, db_codes)
    rel = relevance_matrix(q_labels, db_labels)
    gain = fine_grained_matrix(q_labels, db_labels)
    if exclude_self:
        if dist.shape[0] != dist.shape[1]:
            raise ValueError("exclude_self needs queries == database")
        keep = ~np.eye(dist.shape[0], dtype=bool)
        m = dist.shape[0]
        dist = dist[keep].reshape(m, m - 1)
        rel = rel[keep].reshape(m, m - 1)
        gain = gain[keep].reshape(m, m - 1)
    ap = average_precision(dist, rel)
    nd = ndcg_at_k(dist, gain, ndcg_k)
    pk = precision_at_k(dist, rel, ks)
    has_rel = rel.any(axis=1)
    prec, rec = pr_curve(dist, rel, bits)
    return EvalResult(
        mAP=_nanmean(ap),
        ndcg=_nanmean(nd),
        ndcg_k=ndcg_k,
        precision={
            int(k): _nanmean(pk[has_rel, j]) if has_rel.any() else float("nan")
            for j, k in enumerate(ks)
        },
        bits=bits,
        queries=int(dist.shape[0]),
        database=int(dist.shape[1]),
        queries_with_relevant=int(has_rel.sum()),
        pr_precision=[float(x) for x in prec],
        pr_recall=[float(x) for x in rec],
    )
