"""Hand-crafted features and the classical baselines LSH and ITQ."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from fabricsearch import features
from fabricsearch.hashing import checkpoint as ckpt
from fabricsearch.hashing.base import Batch, BatchLabels, TrainContext
from fabricsearch.hashing.data import to_tensor
from fabricsearch.hashing.methods import classical
from fabricsearch.hashing.registry import available_methods, create_method


def _textures(n: int = 6, size: int = 32, seed: int = 0) -> np.ndarray:
    """Blocky random colour textures plus stripes (so LBP and Gabor see structure)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, size // 4, size // 4, 3), dtype=np.uint8)
    img = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2).astype(np.int64)
    stripes = (np.sin(np.arange(size) * rng.uniform(0.3, 1.5, (n, 1))) * 40).astype(np.int64)
    img += stripes[:, None, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


# --- features ----------------------------------------------------------------------------------
def test_feature_shapes_and_normalisation() -> None:
    x = _textures()
    f = features.extract_features(x)
    assert f.shape == (6, features.feature_dim()) == (6, 320)
    assert f.dtype == np.float32
    assert np.allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-5)
    assert (f >= 0).all()  # histograms and energies only
    assert features.colour_histogram(x).shape == (6, 256)
    assert features.lbp_histograms(x).shape == (6, 28)
    assert features.gabor_energy(x).shape == (6, 36)
    one = features.extract_features(x[0])
    assert np.allclose(one[0], f[0], atol=1e-6)


def test_colour_histogram_of_a_solid_colour_has_one_bin() -> None:
    red = np.zeros((1, 16, 16, 3), np.uint8)
    red[..., 0] = 255
    h = features.colour_histogram(red)[0]
    assert np.count_nonzero(h) == 1
    # H = 0 → hue bin 0, S = V = 255 → top saturation and value bins.
    assert h.argmax() == (0 * features.SAT_BINS + 3) * features.VAL_BINS + 3
    assert h.max() == pytest.approx(1.0)


def test_lbp_of_a_flat_image_is_all_uniform_ones() -> None:
    flat = np.full((1, 20, 20, 3), 128, np.uint8)
    h = features.lbp_histograms(flat)[0]
    # (8, 1): every neighbour equals the centre → code P = 8 of bins 0..9; (16, 2): code 16.
    assert h[8] == pytest.approx(1.0)
    assert h[10 + 16] == pytest.approx(1.0)
    assert np.count_nonzero(h) == 2
    assert np.allclose(features.gabor_energy(flat), 0.0)


@pytest.mark.parametrize("op", ["rot90", "rot180", "rot270", "flip", "transpose"])
def test_features_are_invariant_to_square_symmetries(op: str) -> None:
    x = _textures(4, 40, seed=3)
    ops = {
        "rot90": lambda a: np.rot90(a, 1, axes=(1, 2)),
        "rot180": lambda a: np.rot90(a, 2, axes=(1, 2)),
        "rot270": lambda a: np.rot90(a, 3, axes=(1, 2)),
        "flip": lambda a: a[:, :, ::-1],
        "transpose": lambda a: np.transpose(a, (0, 2, 1, 3)),
    }
    y = np.ascontiguousarray(ops[op](x))
    assert not np.array_equal(x, y)
    for fn in (features.colour_histogram, features.lbp_histograms, features.gabor_energy):
        assert np.allclose(fn(x), fn(y), atol=1e-6), fn.__name__


def test_features_tell_different_textures_apart() -> None:
    x = _textures(4, 32, seed=5)
    f = features.extract_features(x)
    d = np.linalg.norm(f[:, None] - f[None], axis=2)
    assert d[~np.eye(4, dtype=bool)].min() > 1e-3


def test_features_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="uint8"):
        features.extract_features(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="RGB"):
        features.extract_features(np.zeros((1, 8, 8), np.uint8))


# --- ITQ maths ------------------------------------------------------------------------------
def _anisotropic(n: int = 300, d: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scales = torch.linspace(3.0, 0.2, d, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) * scales
    return x @ classical.random_orthogonal(d, d, g).T


def test_itq_rotation_is_orthogonal_and_reduces_quantisation_error() -> None:
    x = _anisotropic()
    x = x - x.mean(dim=0)
    evals, evecs = torch.linalg.eigh(x.T @ x)
    v = x @ evecs[:, torch.argsort(evals, descending=True)[:8]]  # PCA to 8 bits
    rot = classical.itq_rotation(v, 50, torch.Generator().manual_seed(0))
    assert torch.allclose(rot.T @ rot, torch.eye(8, dtype=torch.float64), atol=1e-9)
    no_rotation = classical.quantisation_error(v)
    itq = classical.quantisation_error(v @ rot)
    start = classical.quantisation_error(
        v @ classical.random_orthogonal(8, 8, torch.Generator().manual_seed(0))
    )
    assert itq < no_rotation
    assert itq < start  # the iterations improve on the random initial rotation
    assert classical.quantisation_error(
        v @ classical.itq_rotation(v, 0, torch.Generator().manual_seed(0))
    ) == pytest.approx(start)


# --- the registered methods ---------------------------------------------------------------
def _ctx() -> TrainContext:
    return TrainContext(device=torch.device("cpu"))


def _batch(images: np.ndarray) -> Batch:
    n = len(images)
    labels = BatchLabels(
        major=torch.zeros(n, dtype=torch.int64),
        minor=torch.zeros(n, dtype=torch.int64),
        fine=torch.full((n,), -1, dtype=torch.int64),
        tightness=torch.full((n,), float("nan")),
        palette=torch.zeros(n, 10, 4),
    )
    return Batch(images=to_tensor(images), labels=labels, S=torch.ones(n, n))


def _fit(name: str, bits: int = 16, n: int = 24) -> classical._FeatureHash:
    m = create_method(name, bits=bits, input_size=32)
    images = _textures(n, 32, seed=7)
    for start in range(0, n, 8):
        m.training_step(_batch(images[start : start + 8]), _ctx())
    m.finalize()
    return m


def test_registered_and_not_trainable() -> None:
    assert {"lsh", "itq"} <= set(available_methods())
    for name in ("lsh", "itq"):
        m = create_method(name, bits=16, input_size=32)
        assert m.trainable is False
        assert list(m.parameters()) == []
        assert m.configure_optimizers(None) == []  # type: ignore[arg-type]


def test_images_round_trip_through_normalisation() -> None:
    images = _textures(3, 16)
    assert np.array_equal(classical.images_to_uint8(to_tensor(images)), images)


def test_encode_works_before_fitting_and_fit_changes_the_buffers() -> None:
    x = to_tensor(_textures(4, 32))
    for name in ("lsh", "itq"):
        m = create_method(name, bits=16, input_size=32)
        codes = m.encode(x)
        assert codes.shape == (4, 16)
        assert set(codes.unique().tolist()) <= {-1.0, 1.0}
        fitted = _fit(name)
        assert int(fitted.fitted) == 1
        assert fitted.mean.abs().sum() > 0
    with pytest.raises(ValueError, match="feature dimension"):
        create_method("itq", bits=328)


def test_itq_fit_is_orthonormal_and_beats_plain_pca() -> None:
    m = _fit("itq", bits=16, n=40)
    pca, rot = m.pca.double(), m.rotation.double()
    assert torch.allclose(pca.T @ pca, torch.eye(16, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(rot.T @ rot, torch.eye(16, dtype=torch.float64), atol=1e-5)
    assert torch.allclose(m.projection.double(), pca @ rot, atol=1e-5)
    f = torch.from_numpy(features.extract_features(_textures(40, 32, seed=7))).double()
    v = (f - m.mean.double()) @ pca
    assert classical.quantisation_error(v @ rot) < classical.quantisation_error(v)


def test_lsh_projection_is_seeded() -> None:
    a = create_method("lsh", bits=16, seed=1)
    b = create_method("lsh", bits=16, seed=1)
    c = create_method("lsh", bits=16, seed=2)
    assert torch.equal(a.projection, b.projection)
    assert not torch.equal(a.projection, c.projection)


@pytest.mark.parametrize("name", ["lsh", "itq"])
def test_checkpoint_round_trip_gives_identical_codes(name: str, tmp_path: Path) -> None:
    m = _fit(name)
    x = to_tensor(_textures(5, 32, seed=11))
    before = m.encode(x)
    path = tmp_path / f"{name}.safetensors"
    ckpt.save_checkpoint(path, m, ckpt.build_metadata(m))
    loaded, meta = ckpt.load_checkpoint(path)
    assert meta.method == name
    assert int(loaded.fitted) == 1
    for key, value in m.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    assert torch.equal(loaded.encode(x), before)


def test_trainer_fits_itq_in_one_pass_without_optimisers() -> None:
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.data import TrainingData
    from fabricsearch.hashing.train import train
    from fabricsearch.similarity import LabelArrays

    n = 20
    images = _textures(n, 40, seed=13)
    minor = np.arange(n) % 4
    labels = LabelArrays(
        major=np.zeros(n, np.int64),
        minor=minor,
        fine=np.full(n, -1),
        tightness=np.full(n, np.nan, np.float32),
        palette=np.zeros((n, 10, 4), np.float32),
    )
    data = TrainingData(
        images=list(images), labels=labels, train_idx=np.arange(14), val_idx=np.arange(14, n)
    )
    cfg = TrainConfig(method="itq", bits=16, input_size=32, epochs=5, batch_size=4, device="cpu")
    result = train(data, cfg)
    # One closed-form fit on all 14 training images (14 is no multiple of the batch size 4),
    # no minibatch loop, whatever `epochs` says.
    assert result.steps == 1
    assert len(result.history) == 1
    assert result.history[0]["images"] == 14
    assert int(result.method.fitted) == 1
    assert 0.0 <= result.best_val_map <= 1.0


@pytest.mark.parametrize("name", ["lsh", "itq"])
def test_non_finite_features_are_refused_with_a_clear_error(name: str) -> None:
    """A damaged feature (a NaN row) must not reach the PCA/SVD as a LinAlgError traceback."""
    m = create_method(name, bits=16, backbone="efficientnet-lite0")
    feats = torch.rand(8, 1280)
    feats[3, 5] = float("nan")
    batch = _batch(_textures(8, 32))
    m.training_step(Batch(feats, batch.labels, batch.S), _ctx())
    with pytest.raises(ValueError, match="1 of 8 .*not finite"):
        m.finalize()
    assert int(m.fitted) == 0


@pytest.mark.parametrize("name", ["lsh", "itq"])
def test_closed_form_fit_uses_every_row_whatever_the_batch_size(name: str) -> None:
    """The label-free head fitted on N photos uses all N (issue 21): 240 cached features with
    batch size 32 (240 = 7 × 32 + 16) give the mean and PCA of all 240 rows, not of 224."""
    from fabricsearch.config import TrainConfig
    from fabricsearch.hashing.data import TrainingData
    from fabricsearch.hashing.networks import normalise_features
    from fabricsearch.hashing.train import train
    from fabricsearch.similarity import LabelArrays

    n, d = 240, 1280
    rng = np.random.default_rng(21)
    feats = rng.random((n, 1, d), dtype=np.float32).astype(np.float16)
    labels = LabelArrays(
        major=np.full(n, -1),
        minor=np.full(n, -1),
        fine=np.full(n, -1),
        tightness=np.full(n, np.nan, np.float32),
        palette=np.zeros((n, 10, 4), np.float32),
    )

    def features_fn(backbone, view_ids, progress=None, cancel=None):  # type: ignore[no-untyped-def]
        return feats, np.ones(n, dtype=bool)

    data = TrainingData(
        images=[f"photo-{i}" for i in range(n)],
        labels=labels,
        train_idx=np.arange(n),
        val_idx=np.arange(0),
        features_fn=features_fn,
    )
    cfg = TrainConfig(
        method=name, bits=16, backbone="efficientnet-lite0", augment=False, batch_size=32
    )
    result = train(data, cfg)
    m = result.method
    x = normalise_features(torch.from_numpy(feats[:, 0].astype(np.float32)), "sqrt-l2").double()
    assert result.history[0]["images"] == n
    assert torch.allclose(m.mean.double(), x.mean(dim=0), atol=1e-6)
    assert not torch.allclose(m.mean.double(), x[:224].mean(dim=0), atol=1e-6)
    if name == "itq":  # the PCA basis spans the top principal directions of all 240 rows
        centred = x - x.mean(dim=0)
        evals, evecs = torch.linalg.eigh(centred.T @ centred / (n - 1))
        top = evecs[:, torch.argsort(evals, descending=True)[:16]]
        pca = m.pca.double()
        assert torch.allclose(
            pca.T @ top @ top.T @ pca, torch.eye(16, dtype=torch.float64), atol=1e-4
        )
        # the same fit as `fit` called directly on every row
        direct = create_method("itq", bits=16, backbone="efficientnet-lite0")
        direct.fit([torch.from_numpy(feats[:, 0].astype(np.float32))])
        assert torch.allclose(direct.projection, m.projection, atol=1e-5)
