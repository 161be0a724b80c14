"""Texture, tightness and fine-grained similarity (Eq. 5–6): scalar oracle, numpy, torch."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fabricsearch import colour, similarity
from fabricsearch.similarity import ImageLabels, LabelArrays
from fabricsearch.taxonomy import Taxonomy, TaxonomyError

HYP = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tax() -> Taxonomy:
    return Taxonomy.default()


def one_colour(name: str, h: float, s: float = 220, v: float = 200) -> np.ndarray:
    pal = np.zeros((10, 4), np.float32)
    pal[colour.colour_index(name)] = (h, s, v, 1.0)
    return pal


RED = one_colour("red", 0)
BLUE = one_colour("blue", 115)


def random_labels(rng: np.random.Generator, n: int, unknown: float = 0.3) -> LabelArrays:
    """Random labels with unknowns, using the default taxonomy's sizes (4 majors, 15 minors,
    7 fine) and minors consistent with their majors."""
    tax = Taxonomy.default()
    major_of_minor = np.array([tax.majors.index(m.split("/")[0]) for m in tax.minors])
    minor = rng.integers(0, len(tax.minors), n)
    major = major_of_minor[minor]
    minor = np.where(rng.random(n) < unknown, -1, minor)  # major-only labels
    major = np.where(rng.random(n) < unknown / 2, -1, major)
    minor = np.where(major < 0, -1, minor)
    fine = np.where(rng.random(n) < unknown, -1, rng.integers(0, len(tax.fine), n))
    # Few distinct tightness values so that equal and 40-apart pairs occur.
    w = rng.choice([40.0, 55.0, 60.0, 80.0, 95.0, 100.0], n)
    tightness = np.where(rng.random(n) < unknown, np.nan, w)
    pal = np.zeros((n, 10, 4), np.float32)
    for i in range(n):
        k = rng.integers(1, 4)
        rows = rng.choice(10, k, replace=False)
        pal[i, rows, 0] = rng.uniform(0, 180, k)
        pal[i, rows, 1:3] = rng.uniform(0, 255, (k, 2))
        pal[i, rows, 3] = rng.dirichlet(np.ones(k))
    return LabelArrays(major=major, minor=minor, fine=fine, tightness=tightness, palette=pal)


def oracle_matrix(a: LabelArrays, b: LabelArrays) -> np.ndarray:
    return np.array(
        [
            [similarity.fine_grained_pair(a.record(i), b.record(j)) for j in range(len(b))]
            for i in range(len(a))
        ]
    )


# --- components (scalar reference) -------------------------------------------------------
def test_coarse_levels(tax: Taxonomy) -> None:
    def sct(c1: str | None, c2: str | None) -> float:
        (a1, i1), (a2, i2) = tax.coarse_indices(c1), tax.coarse_indices(c2)
        return similarity.coarse_similarity(a1, i1, a2, i2)

    assert sct("plaid/gingham", "plaid/gingham") == 1.0  # Fig. 4 (a, b)
    assert sct("plaid/gingham", "plaid/window-pane") == 0.5  # Fig. 4 (a, c)
    assert sct("plaid/gingham", "pattern/jacquard-figure") == 0.0  # Fig. 4 (a, d)
    # Minor unknown for one or both: majors only.
    assert sct("plaid", "plaid/gingham") == 0.5
    assert sct("plaid", "plaid") == 0.5
    assert sct("plaid", "stripe/pin-stripe") == 0.0
    assert math.isnan(sct(None, "plaid/gingham"))


def test_fine_levels() -> None:
    assert similarity.fine_similarity(2, 2) == 1.0
    assert similarity.fine_similarity(2, 3) == 0.0
    assert math.isnan(similarity.fine_similarity(-1, 3))


@pytest.mark.parametrize(
    ("w1", "w2", "want"),
    [(60, 60, 1.0), (60, 70, 0.75), (60, 80, 0.5), (50, 90, 0.0), (20, 95, 0.0), (75, 65, 0.75)],
)
def test_tightness_formula(w1: float, w2: float, want: float) -> None:
    # α·η = 2 % × 20 = 40 percentage points.
    assert similarity.tightness_similarity(w1, w2) == pytest.approx(want)


@HYP
@given(st.floats(0, 200), st.floats(0, 200))
def test_tightness_properties(w1: float, w2: float) -> None:
    s = similarity.tightness_similarity(w1, w2)
    assert s == similarity.tightness_similarity(w2, w1)
    assert 0.0 <= s <= 1.0
    assert similarity.tightness_similarity(w1, w1) == 1.0
    assert (s == 0.0) == (abs(w1 - w2) >= similarity.TIGHTNESS_SPAN)
    assert math.isnan(similarity.tightness_similarity(w1, math.nan))


def test_pair_mean_of_four() -> None:
    x = ImageLabels(major=2, minor=8, fine=1, tightness=60.0, palette=RED)
    y = ImageLabels(major=2, minor=9, fine=1, tightness=80.0, palette=RED)
    # (0.5 + 1 + 1 + 0.5) / 4
    assert similarity.fine_grained_pair(x, y) == pytest.approx(0.75)
    assert similarity.fine_grained_pair(x, x) == pytest.approx(1.0)


def test_pair_unknown_components_are_left_out() -> None:
    x = ImageLabels(major=2, minor=8, fine=-1, tightness=math.nan, palette=RED)
    y = ImageLabels(major=2, minor=8, fine=3, tightness=70.0, palette=BLUE)
    comps = similarity.fine_grained_pair_components(x, y)
    assert math.isnan(comps["fine"])
    assert math.isnan(comps["tightness"])
    # Only coarse (1) and colour (~0) are known for both.
    assert similarity.fine_grained_pair(x, y) == pytest.approx((1.0 + comps["colour"]) / 2)
    assert comps["colour"] < 1e-3
    # Only colour known: S is the colour similarity.
    z = ImageLabels(palette=RED)
    assert similarity.fine_grained_pair(z, z) == pytest.approx(1.0)
    # Nothing known at all (no palette either): 0.
    assert similarity.fine_grained_pair(ImageLabels(), ImageLabels()) == 0.0


# --- LabelArrays -----------------------------------------------------------------------
def test_from_records(tax: Taxonomy) -> None:
    la = LabelArrays.from_records(
        tax,
        ["plaid/tartan", "stripe", None],
        ["twill", None, "knit"],
        [62.5, None, 80],
        [RED, BLUE, None],
    )
    assert len(la) == 3
    assert la.major.dtype == np.int64
    assert la.minor.dtype == np.int64
    assert la.tightness.dtype == np.float32
    assert la.palette.dtype == np.float32
    assert la.palette.shape == (3, 10, 4)
    assert la.major.tolist() == [tax.majors.index("plaid"), tax.majors.index("stripe"), -1]
    assert la.minor.tolist() == [tax.minors.index("plaid/tartan"), -1, -1]
    assert la.fine.tolist() == [tax.fine.index("twill"), -1, tax.fine.index("knit")]
    assert la.tightness[0] == pytest.approx(62.5)
    assert np.isnan(la.tightness[1])
    assert la.palette[2].sum() == 0.0
    with pytest.raises(TaxonomyError):
        LabelArrays.from_records(tax, ["plaid/nonexistent"], [None], [None], [RED])
    with pytest.raises(ValueError, match="length"):
        LabelArrays.from_records(tax, ["plaid"], [None, None], [None], [RED])


def test_subset_concat_and_frozen(rng: np.random.Generator) -> None:
    la = random_labels(rng, 6)
    part = la.subset([4, 1])
    assert len(part) == 2
    assert part.major.tolist() == [la.major[4], la.major[1]]
    np.testing.assert_array_equal(part.palette[0], la.palette[4])
    assert len(la[2]) == 1
    assert len(la[1:4]) == 3
    assert len(la[la.major >= 0]) == int((la.major >= 0).sum())
    both = LabelArrays.concat([la[:2], la[2:]])
    for name in ("major", "minor", "fine", "palette"):
        np.testing.assert_array_equal(getattr(both, name), getattr(la, name))
    np.testing.assert_array_equal(np.isnan(both.tightness), np.isnan(la.tightness))
    assert len(LabelArrays.concat([])) == 0
    with pytest.raises(AttributeError):
        la.major = la.minor  # type: ignore[misc]
    rec = la.record(3)
    assert rec.major == la.major[3]


# --- numpy batch forms against the oracle --------------------------------------------------
@HYP
@given(st.integers(0, 2**32 - 1), st.integers(1, 7), st.integers(1, 7))
def test_matrix_matches_oracle(seed: int, na: int, nb: int) -> None:
    rng = np.random.default_rng(seed)
    a, b = random_labels(rng, na), random_labels(rng, nb)
    got = similarity.fine_grained_matrix(a, b)
    assert got.dtype == np.float32
    assert got.shape == (na, nb)
    np.testing.assert_allclose(got, oracle_matrix(a, b), atol=1e-6)


def test_components_match_oracle_and_mark_unknowns(rng: np.random.Generator) -> None:
    a, b = random_labels(rng, 9), random_labels(rng, 7)
    comps = similarity.fine_grained_components(a, b)
    assert set(comps) == set(similarity.COMPONENTS)
    for i in range(len(a)):
        for j in range(len(b)):
            want = similarity.fine_grained_pair_components(a.record(i), b.record(j))
            for key, value in want.items():
                got = float(comps[key][i, j])
                if math.isnan(value):
                    assert math.isnan(got), key
                else:
                    assert got == pytest.approx(value, abs=1e-6), key
    unknown_fine = (a.fine[:, None] < 0) | (b.fine[None, :] < 0)
    np.testing.assert_array_equal(np.isnan(comps["fine"]), unknown_fine)
    assert not np.isnan(comps["colour"]).any()


@HYP
@given(st.integers(0, 2**32 - 1), st.integers(1, 8))
def test_matrix_properties(seed: int, n: int) -> None:
    la = random_labels(np.random.default_rng(seed), n)
    m = similarity.fine_grained_matrix(la, la)
    np.testing.assert_allclose(m, m.T, atol=1e-7)
    assert np.all((m >= 0) & (m <= 1))
    # Fully labelled images (known minor) are maximally similar to themselves.
    full = (la.minor >= 0) & (la.fine >= 0) & ~np.isnan(la.tightness)
    np.testing.assert_allclose(np.diag(m)[full], 1.0, atol=1e-6)


def test_one_against_many_equals_row_of_matrix(rng: np.random.Generator) -> None:
    la = random_labels(rng, 10)
    full = similarity.fine_grained_matrix(la, la)
    np.testing.assert_allclose(similarity.fine_grained_matrix(la[3], la)[0], full[3], atol=1e-7)


def test_colour_mask() -> None:
    pal = np.stack([RED, BLUE, 0.5 * RED + 0.5 * BLUE])
    pal[2, colour.BLUE, 3] = 0.04
    pal[2, colour.RED, 3] = 0.96
    assert similarity.colour_mask(pal, "red").tolist() == [True, False, True]
    assert similarity.colour_mask(pal, "blue").tolist() == [False, True, False]
    assert similarity.colour_mask(pal, "blue", min_proportion=0.04).tolist() == [
        False,
        True,
        True,
    ]
    assert bool(similarity.colour_mask(RED, "red"))
    with pytest.raises(ValueError, match="unknown colour"):
        similarity.colour_mask(pal, "magenta")


# --- torch -----------------------------------------------------------------------------
@HYP
@given(st.integers(0, 2**32 - 1), st.integers(1, 10))
def test_torch_matches_numpy(seed: int, n: int) -> None:
    la = random_labels(np.random.default_rng(seed), n)
    got = similarity.fine_grained_torch(*la.to_torch())
    assert got.dtype == torch.float32
    assert got.shape == (n, n)
    np.testing.assert_allclose(got.numpy(), similarity.fine_grained_matrix(la, la), atol=1e-6)


def test_torch_against_other_set(rng: np.random.Generator) -> None:
    a, b = random_labels(rng, 5), random_labels(rng, 8)
    got = similarity.fine_grained_torch(*a.to_torch(), other=b.to_torch())
    assert got.shape == (5, 8)
    np.testing.assert_allclose(got.numpy(), oracle_matrix(a, b), atol=1e-6)
    col = similarity.colour_similarity_torch(torch.as_tensor(a.palette), torch.as_tensor(b.palette))
    np.testing.assert_allclose(
        col.numpy(), colour.colour_similarity_matrix(a.palette, b.palette), atol=1e-6
    )


def test_torch_builds_no_graph(rng: np.random.Generator) -> None:
    major, minor, fine, tightness, palette = random_labels(rng, 4).to_torch()
    palette.requires_grad_(True)
    tightness.requires_grad_(True)
    out = similarity.fine_grained_torch(major, minor, fine, tightness, palette)
    assert not out.requires_grad
    assert out.grad_fn is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_on_cuda(rng: np.random.Generator) -> None:
    la = random_labels(rng, 12)
    got = similarity.fine_grained_torch(*la.to_torch("cuda"))
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), oracle_matrix(la, la), atol=1e-6)
