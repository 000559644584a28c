"""Tests of the data generators in ``reludae.data``."""

import tracemalloc

import numpy as np
import pytest

from reludae import data


# --- points with pairwise negative cosines -------------------------------------------------


def test_negative_cosines_pairwise_negative():
    X = data.negative_cosine_points(5, 8, seed=3)
    C = data.cosines(X)

    assert X.shape == (5, 8)
    assert np.all(C[~np.eye(5, dtype=bool)] < 0)


def test_negative_cosines_norms_in_range():
    norms = np.linalg.norm(data.negative_cosine_points(4, 10, seed=1, norm_range=(0.5, 2.0)), axis=1)

    assert np.all(norms >= 0.5)
    assert np.all(norms <= 2.0)


def test_negative_cosines_fixed_norm():
    norms = np.linalg.norm(data.negative_cosine_points(4, 10, seed=1, norm_range=(1.5, 1.5)), axis=1)

    # rounding
    np.testing.assert_allclose(norms, 1.5, rtol=1e-12)


def test_negative_cosines_same_seed_same_points():
    np.testing.assert_array_equal(data.negative_cosine_points(4, 6, seed=7), data.negative_cosine_points(4, 6, seed=7))


def test_negative_cosines_seeds_differ():
    assert not np.allclose(data.negative_cosine_points(4, 6, seed=7), data.negative_cosine_points(4, 6, seed=8))


def test_negative_cosines_simplex_size():
    """``n = d + 1`` is the largest possible set, and it is reachable in the plane."""
    X = data.negative_cosine_points(3, 2, seed=0)

    assert data.max_offdiagonal_cosine(X) < 0


def test_negative_cosines_too_many_points():
    with pytest.raises(ValueError, match=r"at most d \+ 1 = 4 .*got n = 5"):
        data.negative_cosine_points(5, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 1, "d": 3}, "n must be at least 2, got 1"),
        ({"n": 2, "d": 0}, "d must be at least 1, got 0"),
        ({"n": 2, "d": 3, "norm_range": (2.0, 1.0)}, r"low <= high, got \(2.0, 1.0\)"),
        ({"n": 2, "d": 3, "norm_range": (0.0, 1.0)}, "norm_range must be positive, got 0.0"),
    ],
)
def test_negative_cosines_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.negative_cosine_points(**kwargs)


def test_max_offdiagonal_cosine_single_row():
    assert data.max_offdiagonal_cosine(np.ones((1, 3))) == -1.0


def test_cosines_reject_zero_row():
    with pytest.raises(ValueError, match="zero row"):
        data.cosines(np.array([[1.0, 0.0], [0.0, 0.0]]))


# --- positive-cosine control and duplicates -------------------------------------------------


def test_positive_cosine_exact():
    X = data.negative_cosine_points(4, 6, seed=2)
    moved = data.with_positive_cosine(X, cosine=0.3, index=(2, 0))

    # rounding
    assert data.cosines(moved)[2, 0] == pytest.approx(0.3, abs=1e-12)
    # rounding
    assert np.linalg.norm(moved[0]) == pytest.approx(np.linalg.norm(X[0]), rel=1e-12)
    np.testing.assert_array_equal(moved[1:], X[1:])


def test_positive_cosine_leaves_input():
    X = data.negative_cosine_points(3, 6, seed=2)
    copy = X.copy()
    data.with_positive_cosine(X)

    np.testing.assert_array_equal(X, copy)


@pytest.mark.parametrize("cosine", [1.0, -1.0, 1.5])
def test_positive_cosine_rejects_bounds(cosine):
    with pytest.raises(ValueError, match=f"strictly between -1 and 1, got {cosine}"):
        data.with_positive_cosine(np.eye(3), cosine=cosine)


def test_positive_cosine_rejects_same_index():
    with pytest.raises(ValueError, match=r"two different rows, got index \(1, 1\)"):
        data.with_positive_cosine(np.eye(3), index=(1, 1))


def test_duplicated_points_repeat_rows():
    X = np.arange(6.0).reshape(3, 2)
    points, labels = data.duplicated_points(X, [2, 1, 3])

    np.testing.assert_array_equal(labels, [0, 0, 1, 2, 2, 2])
    np.testing.assert_array_equal(points, X[[0, 0, 1, 2, 2, 2]])


@pytest.mark.parametrize("counts", [[1, 0, 1], [1, 1], [1.0, 2.0, 1.0], [1, -1, 2]])
def test_duplicated_points_bad_counts(counts):
    with pytest.raises(ValueError, match="counts must hold one positive integer per row of X"):
        data.duplicated_points(np.eye(3), counts)


# --- Gaussian mixtures ----------------------------------------------------------------------


def full_rank_mixture():
    A = np.array([[1.0, 0.3, 0.0], [0.0, 0.5, 0.2], [0.1, 0.0, 0.8]])
    covs = np.stack([A @ A.T, np.diag([0.2, 0.5, 1.0])])
    means = np.array([[1.0, -1.0, 0.5], [-2.0, 0.0, 1.0]])
    return data.GaussianMixture(weights=[0.3, 0.7], means=means, covs=covs)


def test_mixture_properties():
    mixture = full_rank_mixture()
    S = mixture.second_moments()

    assert mixture.dim == 3
    assert mixture.n_modes == 2
    # rounding
    np.testing.assert_allclose(S[1], mixture.covs[1] + np.outer(mixture.means[1], mixture.means[1]), rtol=1e-12)


def test_mixture_mode_frequencies():
    mixture = full_rank_mixture()
    n = 40_000
    _, labels = mixture.sample(n, seed=0)
    frequency = np.mean(labels == 1)

    # Monte Carlo error: 5 binomial standard errors
    assert abs(frequency - 0.7) <= 5 * np.sqrt(0.7 * 0.3 / n)


def test_mixture_mode_means_and_covariances():
    mixture = full_rank_mixture()
    X, labels = mixture.sample(40_000, seed=0)

    for k in range(2):
        members = X[labels == k]
        m = len(members)
        Sigma = mixture.covs[k]
        mean_error = np.abs(members.mean(axis=0) - mixture.means[k])
        cov_error = np.abs(np.cov(members, rowvar=False) - Sigma)
        # Gaussian sampling variance of a covariance entry: (S_ii S_jj + S_ij^2) / m
        cov_stderr = np.sqrt((np.outer(np.diag(Sigma), np.diag(Sigma)) + Sigma**2) / m)

        # Monte Carlo error: 5 standard errors per coordinate
        assert np.all(mean_error <= 5 * np.sqrt(np.diag(Sigma) / m))
        # Monte Carlo error: 5 standard errors per entry
        assert np.all(cov_error <= 5 * cov_stderr)


def test_mixture_overall_mean_and_covariance():
    mixture = full_rank_mixture()
    n = 40_000
    X, _ = mixture.sample(n, seed=1)
    w = mixture.weights
    mean = w @ mixture.means
    cov = np.einsum("k,kij->ij", w, mixture.second_moments()) - np.outer(mean, mean)
    centered = X - X.mean(axis=0)
    products = np.einsum("ni,nj->nij", centered, centered)
    cov_stderr = products.std(axis=0) / np.sqrt(n)  # the mixture is not Gaussian, so estimate it

    # Monte Carlo error: 5 standard errors per coordinate
    assert np.all(np.abs(X.mean(axis=0) - mean) <= 5 * np.sqrt(np.diag(cov) / n))
    # Monte Carlo error: 5 estimated standard errors per entry
    assert np.all(np.abs(np.cov(X, rowvar=False) - cov) <= 5 * cov_stderr)


def test_mixture_low_rank_support():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.standard_normal((5, 2)))[0]  # (5, 2), orthonormal columns
    covs = np.stack([basis @ basis.T, np.zeros((5, 5))])
    means = rng.standard_normal((2, 5))
    mixture = data.GaussianMixture(weights=[0.5, 0.5], means=means, covs=covs)
    X, labels = mixture.sample(2_000, seed=0)
    offset = X[labels == 0] - means[0]
    outside = offset - offset @ basis @ basis.T

    # rounding: eigh of an exact projector
    assert np.abs(outside).max() <= 1e-12
    # the samples do spread inside the plane
    assert np.linalg.matrix_rank(offset, tol=1e-6) == 2
    # rounding: a zero covariance repeats its mean
    np.testing.assert_allclose(X[labels == 1], np.tile(means[1], (np.sum(labels == 1), 1)), atol=1e-15)


def test_mixture_sample_reproducible():
    mixture = full_rank_mixture()
    first, first_labels = mixture.sample(50, seed=4)
    second, second_labels = mixture.sample(50, seed=4)

    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first_labels, second_labels)


def test_mixture_sample_memory_linear():
    """Sampling must not allocate a ``d x d`` factor per sample."""
    d, n = 64, 4_000
    mixture = data.GaussianMixture(weights=[1.0], means=np.ones((1, d)), covs=np.eye(d)[None])
    tracemalloc.start()
    mixture.sample(n, seed=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()

    # residual: a few (n, d) arrays; one factor per sample would take n d^2 8 bytes = 131 MB
    assert peak <= 20 * n * d * 8


@pytest.mark.parametrize(
    "weights, means, covs, match",
    [
        ([0.5, 0.6], np.zeros((2, 2)), np.stack([np.eye(2)] * 2), "summing to one"),
        ([1.5, -0.5], np.zeros((2, 2)), np.stack([np.eye(2)] * 2), "non-negative numbers"),
        ([1.0], np.zeros((2, 2)), np.stack([np.eye(2)] * 2), "2 non-negative numbers"),
        ([0.5, 0.5], np.zeros((2, 2)), np.stack([np.eye(3)] * 2), r"covs must have shape \(2, 2, 2\)"),
        ([0.5, 0.5], np.zeros((2, 2)), np.stack([np.eye(2), [[1.0, 0.5], [0.0, 1.0]]]), "symmetric"),
        ([0.5, 0.5], np.zeros((2, 2)), np.stack([np.eye(2), -np.eye(2)]), "positive semidefinite"),
        ([0.5, 0.5], np.array([[0.0, np.nan], [0.0, 0.0]]), np.stack([np.eye(2)] * 2), "means contains NaN"),
    ],
)
def test_mixture_rejects_bad_parameters(weights, means, covs, match):
    with pytest.raises(ValueError, match=match):
        data.GaussianMixture(weights=weights, means=means, covs=covs)


def test_low_rank_mixture_structure():
    mixture = data.low_rank_mixture(4, 12, rank=3, seed=2, mean_norm=2.0, spread=0.5)

    assert data.max_offdiagonal_cosine(mixture.means) < 0
    # rounding
    np.testing.assert_allclose(np.linalg.norm(mixture.means, axis=1), 2.0, rtol=1e-12)
    # rounding
    np.testing.assert_allclose(mixture.weights, 0.25, rtol=1e-12)
    for cov in mixture.covs:
        assert np.linalg.matrix_rank(cov, tol=1e-10) == 3
        # rounding: trace = (spread * mean_norm)^2
        assert np.trace(cov) == pytest.approx(1.0, rel=1e-12)


def test_low_rank_mixture_rank_too_large():
    with pytest.raises(ValueError, match="rank = 5 cannot exceed the dimension d = 4"):
        data.low_rank_mixture(2, 4, rank=5)


# --- digits ---------------------------------------------------------------------------------


def test_digits_shape_and_centering():
    X, labels, mean = data.digits()

    assert X.shape == (1797, 64)
    assert labels.shape == (1797,)
    assert set(np.unique(labels)) == set(range(10))
    # rounding: the mean of 1797 values in [-1, 1]
    assert np.abs(X.mean(axis=0)).max() <= 1e-12
    assert (X + mean).min() >= -1.0
    assert (X + mean).max() <= 1.0


def test_digits_uncentered_scale():
    X, _, mean = data.digits(center=False)

    assert X.min() == -1.0
    assert X.max() == 1.0
    assert np.all(mean == 0)


def test_digits_raw_pixels():
    X, _, _ = data.digits(scale=False, center=False)

    assert X.min() == 0.0
    assert X.max() == 16.0
