import numpy as np
import pytest

from reludae import denoisers
from reludae.data import GaussianMixture, low_rank_mixture


def _direct_empirical(Y, X, sigma):
    """f_emp without log space: plain Gaussian densities, fine at moderate sigma."""
    squared = ((Y[:, None, :] - X[None, :, :]) ** 2).sum(axis=2)
    densities = np.exp(-squared / (2 * sigma**2))
    return densities @ X / densities.sum(axis=1, keepdims=True)


@pytest.fixture
def points():
    return np.random.default_rng(0).standard_normal((7, 3))


@pytest.fixture
def mixture():
    covs = np.array([[[0.3, 0.1], [0.1, 0.2]], [[0.05, 0.0], [0.0, 0.4]], [[0.2, -0.05], [-0.05, 0.1]]])
    return GaussianMixture(weights=np.array([0.5, 0.3, 0.2]), means=np.array([[2.0, 0.0], [-1.0, 1.5], [-1.0, -1.5]]), covs=covs)


def test_empirical_matches_direct_computation(points):
    Y = np.random.default_rng(1).standard_normal((5, 3))
    result = denoisers.empirical_denoiser(Y, points, sigma=0.7)
    # Both are a few float64 operations on numbers of order one: round-off only.
    np.testing.assert_allclose(result, _direct_empirical(Y, points, 0.7), rtol=1e-12, atol=1e-12)


def test_empirical_single_query_shape(points):
    y = np.array([0.1, -0.2, 0.3])
    single = denoisers.empirical_denoiser(y, points, sigma=0.5)
    batch = denoisers.empirical_denoiser(y[None, :], points, sigma=0.5)
    assert single.shape == (3,)
    # The single query goes through the batch code: identical up to round-off.
    np.testing.assert_allclose(single, batch[0], rtol=1e-14, atol=1e-14)


def test_empirical_finite_at_tiny_sigma(points):
    Y = np.random.default_rng(2).standard_normal((4, 3))
    result = denoisers.empirical_denoiser(Y, points, sigma=1e-6)
    assert np.all(np.isfinite(result))


def test_empirical_finite_far_away(points):
    far = np.full((2, 3), 1e6)
    far[1] *= -1
    result = denoisers.empirical_denoiser(far, points, sigma=0.1)
    nearest = points[np.argmin(((far[:, None, :] - points[None]) ** 2).sum(axis=2), axis=1)]
    assert np.all(np.isfinite(result))
    # Far from the data the logit gaps are of order 1e6 / sigma^2: the weight is one-hot.
    np.testing.assert_allclose(result, nearest, rtol=0, atol=1e-12)


def test_empirical_tends_to_nearest_point(points):
    Y = points + 0.01 * np.random.default_rng(3).standard_normal(points.shape)
    for sigma in [1e-2, 1e-3, 1e-4]:
        result = denoisers.empirical_denoiser(Y, points, sigma=sigma)
        gaps = np.linalg.norm(result - points, axis=1)
        # The other points are at least 0.49 away, so their weights are below exp(-0.1 / sigma^2),
        # which is zero in float64 from sigma = 1e-2 down.
        assert gaps.max() < 1e-10, f"sigma = {sigma}: largest gap {gaps.max()}"


def test_empirical_posterior_rows_sum_to_one(points):
    weights = denoisers.empirical_posterior(np.zeros((3, 3)), points, sigma=0.4)
    assert weights.shape == (3, 7)
    # A softmax: its rows sum to one up to round-off.
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-14)


def test_empirical_blocks_match_one_block(points, monkeypatch):
    Y = np.random.default_rng(4).standard_normal((50, 3))
    whole = denoisers.empirical_denoiser(Y, points, sigma=0.3)
    monkeypatch.setattr(denoisers, "_MAX_BLOCK_ENTRIES", 30)  # blocks of one query
    # The blocks run the same arithmetic row by row: identical up to round-off.
    np.testing.assert_allclose(denoisers.empirical_denoiser(Y, points, sigma=0.3), whole, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("sigma", [0.0, -1.0, np.nan, np.inf, True, "0.1"])
def test_empirical_rejects_bad_sigma(points, sigma):
    with pytest.raises(ValueError, match="sigma"):
        denoisers.empirical_denoiser(np.zeros(3), points, sigma)


def test_empirical_rejects_shape_mismatch(points):
    with pytest.raises(ValueError, match=r"Y must have shape \(B, 3\)"):
        denoisers.empirical_denoiser(np.zeros((2, 4)), points, 0.1)
    with pytest.raises(ValueError, match=r"Y must have shape"):
        denoisers.empirical_denoiser(np.zeros((2, 3, 1)), points, 0.1)


def test_empirical_rejects_nonfinite_query(points):
    with pytest.raises(ValueError, match="NaN or infinite"):
        denoisers.empirical_denoiser(np.array([np.nan, 0.0, 0.0]), points, 0.1)


def test_empirical_rejects_bad_training_set():
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        denoisers.empirical_denoiser(np.zeros(3), np.zeros(3), 0.1)


def test_mixture_single_gaussian_is_linear_shrinkage():
    rng = np.random.default_rng(5)
    A = rng.standard_normal((3, 3))
    covariance = A @ A.T + 0.1 * np.eye(3)
    mean = rng.standard_normal(3)
    Y = rng.standard_normal((6, 3))
    sigma = 0.8
    expected = mean + (Y - mean) @ np.linalg.solve(covariance + sigma**2 * np.eye(3), covariance).T
    result = denoisers.gmm_denoiser(Y, np.ones(1), mean[None], covariance[None], sigma)
    # Closed form through solve versus eigendecomposition: round-off on a well-conditioned matrix.
    np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


def test_mixture_matches_monte_carlo_posterior_mean(mixture):
    sigma = 0.6
    y = np.array([0.4, 0.3])
    x, _ = mixture.sample(400_000, seed=6)
    log_likelihood = -((y - x) ** 2).sum(axis=1) / (2 * sigma**2)
    weights = np.exp(log_likelihood - log_likelihood.max())
    weights /= weights.sum()
    estimate = weights @ x
    standard_error = np.sqrt((weights[:, None] ** 2 * (x - estimate) ** 2).sum(axis=0))
    result = denoisers.mixture_denoiser(y, mixture, sigma)
    # Self-normalized importance sampling: 5 standard errors (delta method) per coordinate.
    assert np.all(np.abs(result - estimate) <= 5 * standard_error), (result, estimate, standard_error)


def test_mixture_rank_one_gaussian_closed_form():
    direction = np.array([3.0, 4.0]) / 5.0
    scale = 0.7
    mean = np.array([1.0, -2.0])
    covariance = scale**2 * np.outer(direction, direction)  # rank one, singular
    Y = np.random.default_rng(7).standard_normal((5, 2))
    for sigma in [1.0, 1e-3, 1e-8]:
        shrink = scale**2 / (scale**2 + sigma**2)
        expected = mean + shrink * np.outer((Y - mean) @ direction, direction)
        result = denoisers.gmm_denoiser(Y, np.ones(1), mean[None], covariance[None], sigma)
        # Round-off of eigh on a 2 x 2 matrix with entries of order one.
        np.testing.assert_allclose(result, expected, rtol=1e-10, atol=1e-12)


def test_mixture_low_rank_modes_are_finite():
    mixture = low_rank_mixture(n_modes=3, d=5, rank=2, seed=8)
    # Points on each mode's plane, mu_k + P_k v. Sigma_k is 0.2^2 / 2 = 0.02 times the
    # projector P_k onto the plane.
    offsets = 0.2 * np.random.default_rng(9).standard_normal((3, 4, 5))  # (K, points per mode, d)
    Y = np.concatenate([mixture.means[k] + offsets[k] @ (mixture.covs[k] / 0.02) for k in range(3)])
    for sigma in [1.0, 1e-6]:
        result = denoisers.mixture_denoiser(Y, mixture, sigma)
        assert np.all(np.isfinite(result))
    # A clean point on a low-rank mode is its own posterior mean as sigma -> 0. The other modes
    # get weight about exp(-distance^2 / 2e-12) = 0, and its own mode shrinks it towards the
    # mean by the factor 1 - sigma^2 / 0.02, a change below 1e-10.
    np.testing.assert_allclose(denoisers.mixture_denoiser(Y, mixture, 1e-6), Y, rtol=0, atol=1e-9)


def test_mixture_of_point_masses_equals_empirical(points):
    n, d = points.shape
    Y = np.random.default_rng(10).standard_normal((6, d))
    for sigma in [2.0, 0.3, 1e-3]:
        result = denoisers.gmm_denoiser(Y, np.full(n, 1.0 / n), points, np.zeros((n, d, d)), sigma)
        # Same softmax over the same logits, one through eigh of sigma^2 I: round-off only.
        np.testing.assert_allclose(result, denoisers.empirical_denoiser(Y, points, sigma), rtol=1e-10, atol=1e-12)


def test_mixture_single_query_shape(mixture):
    y = np.array([0.2, -0.1])
    result = denoisers.mixture_denoiser(y, mixture, 0.5)
    assert result.shape == (2,)
    # The single query goes through the batch code: identical up to round-off.
    np.testing.assert_allclose(result, denoisers.mixture_denoiser(y[None], mixture, 0.5)[0], rtol=1e-14, atol=1e-14)


def test_mixture_finite_far_away_and_tiny_sigma(mixture):
    Y = np.array([[1e6, -1e6], [0.0, 0.0], [-3e5, 2.0]])
    for sigma in [1.0, 1e-6]:
        assert np.all(np.isfinite(denoisers.mixture_denoiser(Y, mixture, sigma)))


def test_mixture_posterior_skips_empty_modes(mixture):
    empty = GaussianMixture(weights=np.array([0.0, 0.6, 0.4]), means=mixture.means, covs=mixture.covs)
    weights = denoisers.mixture_posterior(np.array([[2.0, 0.0], [0.0, 0.0]]), empty, 0.5)
    assert weights.shape == (2, 3)
    assert np.all(weights[:, 0] == 0.0)
    # A softmax: its rows sum to one up to round-off.
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, rtol=0, atol=1e-14)
    assert denoisers.mixture_posterior(np.zeros(2), empty, 0.5).shape == (3,)


def test_gmm_and_mixture_denoiser_agree(mixture):
    Y = np.random.default_rng(11).standard_normal((4, 2))
    direct = denoisers.gmm_denoiser(Y, mixture.weights, mixture.means, mixture.covs, 0.4)
    # Same code path after validation: identical.
    np.testing.assert_array_equal(direct, denoisers.mixture_denoiser(Y, mixture, 0.4))


@pytest.mark.parametrize("sigma", [0.0, -0.5, np.nan])
def test_mixture_rejects_bad_sigma(mixture, sigma):
    with pytest.raises(ValueError, match="sigma must"):
        denoisers.mixture_denoiser(np.zeros(2), mixture, sigma)


def test_gmm_rejects_bad_mixture(mixture):
    w, m, c = mixture.weights, mixture.means, mixture.covs
    with pytest.raises(ValueError, match="summing to one"):
        denoisers.gmm_denoiser(np.zeros(2), np.array([0.5, 0.3, 0.3]), m, c, 0.1)
    with pytest.raises(ValueError, match="non-negative"):
        denoisers.gmm_denoiser(np.zeros(2), np.array([1.2, -0.2, 0.0]), m, c, 0.1)
    with pytest.raises(ValueError, match="covs must have shape"):
        denoisers.gmm_denoiser(np.zeros(2), w, m, c[:, :1, :1], 0.1)
    with pytest.raises(ValueError, match="symmetric"):
        denoisers.gmm_denoiser(np.zeros(2), w, m, c + np.array([[0.0, 0.1], [0.0, 0.0]]), 0.1)
    with pytest.raises(ValueError, match="positive semidefinite"):
        denoisers.gmm_denoiser(np.zeros(2), w, m, -c, 0.1)
    with pytest.raises(ValueError, match="mixture_denoiser"):
        denoisers.gmm_denoiser(np.zeros(2), mixture, m, c, 0.1)


def test_mixture_rejects_shape_mismatch_and_wrong_type(mixture):
    with pytest.raises(ValueError, match=r"Y must have shape \(B, 2\)"):
        denoisers.mixture_denoiser(np.zeros((3, 5)), mixture, 0.1)
    with pytest.raises(ValueError, match="GaussianMixture"):
        denoisers.mixture_denoiser(np.zeros(2), {"weights": mixture.weights}, 0.1)


def test_moment_matched_gaussian_moments(mixture):
    gaussian = denoisers.moment_matched_gaussian(mixture)
    mean = mixture.weights @ mixture.means
    centered = mixture.means - mean
    covariance = np.einsum("k,kij->ij", mixture.weights, mixture.covs + np.einsum("ki,kj->kij", centered, centered))
    assert gaussian.n_modes == 1
    # Two algebraically equal formulas for the covariance: round-off only.
    np.testing.assert_allclose(gaussian.means[0], mean, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(gaussian.covs[0], covariance, rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="GaussianMixture"):
        denoisers.moment_matched_gaussian(mixture.means)


def test_denoiser_closures_match_functions(points, mixture):
    Y2 = np.random.default_rng(12).standard_normal((3, 2))
    Y3 = np.random.default_rng(13).standard_normal((3, 3))
    np.testing.assert_array_equal(denoisers.empirical_denoiser_for(points)(Y3, 0.2), denoisers.empirical_denoiser(Y3, points, 0.2))
    np.testing.assert_array_equal(denoisers.mixture_denoiser_for(mixture)(Y2, 0.2), denoisers.mixture_denoiser(Y2, mixture, 0.2))
    with pytest.raises(ValueError, match="GaussianMixture"):
        denoisers.mixture_denoiser_for(points)
    with pytest.raises(ValueError, match="X must"):
        denoisers.empirical_denoiser_for(np.zeros(3))
