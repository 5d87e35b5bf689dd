"""FID, KID, IS-style score and per-band statistics on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from training.gan_metrics import (
    band_statistics,
    fid_from_features,
    frechet_distance,
    histogram_intersection,
    inception_score_from_probs,
    kid_from_features,
)


@pytest.fixture
def gauss():
    return np.random.default_rng(0).normal(size=(2000, 8))


def test_fid_identical_sets_is_zero(gauss):
    assert fid_from_features(gauss, gauss) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shift", [0.5, 2.0, 5.0])
def test_fid_of_shifted_set_is_squared_mean_difference(gauss, shift):
    d = np.zeros(8)
    d[:3] = shift
    assert fid_from_features(gauss, gauss + d) == pytest.approx(3 * shift**2, rel=1e-6)


def test_frechet_known_covariances():
    # 1-d: (m1-m2)^2 + s1 + s2 - 2 sqrt(s1 s2) = (m1-m2)^2 + (sqrt s1 - sqrt s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(4 + 1)
    assert frechet_distance(np.zeros(2), np.eye(2) * 9, np.zeros(2), np.eye(2)) == pytest.approx(8)


def test_fid_needs_samples():
    with pytest.raises(ValueError):
        fid_from_features(np.zeros((1, 4)), np.zeros((5, 4)))


def test_kid_same_distribution_near_zero_and_shift_positive(gauss):
    rng = np.random.default_rng(1)
    other = rng.normal(size=(2000, 8))
    same, _ = kid_from_features(gauss, other, n_subsets=20, subset_size=500)
    shifted, _ = kid_from_features(gauss, other + 1.0, n_subsets=20, subset_size=500)
    assert abs(same) < 0.05
    assert shifted > 0.5


def test_kid_unbiased_identical_subsets():
    x = np.random.default_rng(2).normal(size=(50, 4))
    # with the same points on both sides the unbiased estimate is -(2/m) * mean off-diagonal... but
    # for a linear-cubic kernel it equals 2 (mean diag - mean all) / (m - 1) >= 0
    k = (x @ x.T / 4 + 1) ** 3
    m = len(x)
    expected = 2 * (k.sum() - np.trace(k)) / (m * (m - 1)) - 2 * k.mean()
    got, std = kid_from_features(x, x, n_subsets=1, subset_size=m)
    assert got == pytest.approx(expected) and std == 0


def test_inception_score_bounds():
    k = 5
    confident_diverse = np.eye(k)[np.arange(100) % k]
    uniform = np.full((100, k), 1 / k)
    assert inception_score_from_probs(confident_diverse, n_splits=1)[0] == pytest.approx(
        k, rel=1e-6
    )
    assert inception_score_from_probs(uniform, n_splits=1)[0] == pytest.approx(1.0)
    one_class = np.eye(k)[np.zeros(100, int)]
    assert inception_score_from_probs(one_class, n_splits=2)[0] == pytest.approx(1.0)


def test_histogram_intersection_and_band_stats():
    rng = np.random.default_rng(0)
    real = rng.uniform(0.2, 0.4, size=(4, 2, 8, 8))
    fake = real.copy()
    fake[:, 1] += 0.3
    assert histogram_intersection(real, real) == pytest.approx(1.0)
    rows = band_statistics(real, fake, ("B02", "B08"))
    assert [r["band"] for r in rows] == ["B02", "B08"]
    assert rows[0]["wasserstein"] == pytest.approx(0.0, abs=1e-12)
    assert rows[1]["wasserstein"] == pytest.approx(0.3, rel=1e-6)
    assert rows[1]["hist_intersection"] < 0.1
    assert rows[1]["mean_generated"] - rows[1]["mean_real"] == pytest.approx(0.3)


@pytest.mark.slow
def test_is_style_score_runs_offline():
    pytest.importorskip("efficientnet_lite_pytorch")
    from training.gan_metrics import classifier_probs

    x = np.random.default_rng(0).random((4, 3, 32, 32), dtype=np.float32)
    p = classifier_probs(x, size=64)
    assert p.shape == (4, 1000)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-4)
