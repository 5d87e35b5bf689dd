"""PCA + ITQ: less quantisation loss than PCA signs, reproducible, sensible at odd sizes."""

from __future__ import annotations

import numpy as np
import pytest

from rsgui import projection
from rsgui.projection import ItqProjection, quantisation_loss


def _clustered(n=400, d=30, k=6, seed=0) -> np.ndarray:
    """Anisotropic clustered data, like histogram features: a few strong directions."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((k, d)) * 3
    x = centres[rng.integers(0, k, n)] + rng.standard_normal((n, d))
    return x @ np.diag(np.linspace(3, 0.2, d)) + 5.0


@pytest.mark.parametrize("bits", [8, 16, 24])
def test_itq_reduces_quantisation_loss_vs_pca_sign(bits):
    x = _clustered()
    pca = ItqProjection.fit(x, bits, itq=False)
    itq = ItqProjection.fit(x, bits, seed=0)
    loss_pca = quantisation_loss(pca.transform(x))
    loss_itq = quantisation_loss(itq.transform(x))
    assert loss_itq < 0.97 * loss_pca
    # the rotation is orthogonal: it keeps the PCA coordinates' geometry
    np.testing.assert_allclose(itq.rotation @ itq.rotation.T, np.eye(bits), atol=1e-5)


def test_itq_is_deterministic_with_a_seed_and_varies_without():
    x = _clustered()
    a = ItqProjection.fit(x, 16, seed=7).transform(x)
    b = ItqProjection.fit(x, 16, seed=7).transform(x)
    c = ItqProjection.fit(x, 16, seed=8).transform(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a > 0, c > 0)


def test_bits_are_balanced_after_itq():
    x = _clustered(n=1000)
    codes = ItqProjection.fit(x, 16).transform(x) > 0
    assert np.all(codes.mean(axis=0) > 0.05) and np.all(codes.mean(axis=0) < 0.95)


@pytest.mark.parametrize(
    ("n", "d", "bits", "n_pca"), [(50, 30, 64, 30), (10, 30, 16, 9), (200, 8, 8, 8)]
)
def test_more_bits_than_the_data_supports_are_padded(n, d, bits, n_pca):
    x = _clustered(n=n, d=d)
    p = ItqProjection.fit(x, bits)
    assert p.n_pca == n_pca
    codes = p.transform(x)
    assert codes.shape == (n, bits)
    # padded bits still split the data (no constant bit)
    frac = (codes > 0).mean(axis=0)
    assert np.all((frac > 0) & (frac < 1))


@pytest.mark.parametrize("path", ["gram", "randomised"])
def test_long_features_match_exact_pca(monkeypatch, path):
    """Long feature vectors (raw colour) take the Gram or randomised route; same subspace."""
    rng = np.random.default_rng(0)
    basis = rng.standard_normal((5, 120))
    x = (rng.standard_normal((300, 5)) * [10, 8, 6, 4, 2]) @ basis
    x += 0.01 * rng.standard_normal(x.shape)
    exact = ItqProjection.fit(x, 4, itq=False)
    monkeypatch.setattr(projection, "_EXACT_PCA_MAX_DIM", 100 if path == "gram" else 50)
    other = ItqProjection.fit(x, 4, itq=False)
    # same top-4 subspace (sign and order of components may differ only within it)
    overlap = np.linalg.svd(exact.components.T @ other.components, compute_uv=False)
    np.testing.assert_allclose(overlap, 1.0, atol=1e-3)


def test_state_round_trip():
    x = _clustered()
    p = ItqProjection.fit(x, 12)
    q = ItqProjection.from_state(p.state_arrays("s_"), "s_")
    np.testing.assert_array_equal(p.transform(x), q.transform(x))
    assert q.n_pca == p.n_pca
    with pytest.raises(ValueError, match="missing"):
        ItqProjection.from_state({}, "s_")


def test_refuses_unusable_input():
    with pytest.raises(ValueError):
        ItqProjection.fit(np.zeros((1, 4)), 4)
    with pytest.raises(ValueError):
        ItqProjection.fit(np.zeros((10, 4)), 0)
    p = ItqProjection.fit(_clustered(d=6), 4)
    with pytest.raises(ValueError, match="features shaped"):
        p.transform(np.zeros((3, 5)))
