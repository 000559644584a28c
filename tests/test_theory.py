"""Tests of the closed-form memorization solution in ``reludae.theory``."""

import numpy as np
import pytest
import torch
from scipy.special import ndtr

from reludae import data, model, theory

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIGMA = 0.05


@pytest.fixture
def X():
    """Three points in R^10 with norms in [0.8, 1.2] and pairwise cosines at most -0.25."""
    return data.negative_cosine_points(3, 10, seed=0)


def expected_scales(X, sigma, lam):
    norms2 = np.sum(X**2, axis=1)
    return np.sqrt((norms2 - len(X) * lam) / (norms2**2 + sigma**2 * norms2))


def embed(X, d_large, seed=0):
    """Zero-pad the rows of ``X`` to ``d_large`` coordinates and rotate them by a random orthogonal map."""
    padded = np.zeros((X.shape[0], d_large))
    padded[:, : X.shape[1]] = X
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d_large, d_large)))
    return padded @ Q.T


def relu_second_moment(mean, std):
    """Return ``E relu(g)^2`` for ``g ~ N(mean, std^2)``."""
    z = mean / std
    density = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return (mean**2 + std**2) * ndtr(z) + mean * std * density


def neglected_terms_bound(X, W, sigma):
    """Bound the gap between the exact loss of the memorizer ``W`` and its closed form.

    On a noisy copy ``y = x_i + sigma e`` the closed form keeps only ``L = w_i w_i^T y - x_i``.
    The rest is ``D = w_i relu(-w_i^T y) + sum_{j != i} w_j relu(w_j^T y)``, and each
    preactivation is Gaussian, so Minkowski's inequality bounds ``sqrt(E||D||^2)`` by
    ``sum_j ||w_j|| sqrt(E relu(+-w_j^T y)^2)``. Cauchy-Schwarz then gives
    ``|E||L + D||^2 - E||L||^2| <= 2 sqrt(E||L||^2 E||D||^2) + E||D||^2``.
    """
    n = X.shape[0]
    column_norms = np.linalg.norm(W[:, :n], axis=0)
    gains = column_norms**2
    bound = 0.0
    for i in range(n):
        root_D = 0.0
        for j in range(n):
            mean = W[:, j] @ X[i]
            std = sigma * column_norms[j]
            sign = -1.0 if j == i else 1.0  # column i errs when its own preactivation is negative
            root_D += column_norms[j] * np.sqrt(relu_second_moment(sign * mean, std))
        linear_loss = np.sum(X[i] ** 2) * (gains[i] - 1) ** 2 + sigma**2 * gains[i] ** 2
        bound += 2 * np.sqrt(linear_loss) * root_D + root_D**2
    return bound / n


def monte_carlo_gradient(W1, W2, X, sigma, lam, batches=40, draws=500, seed=0):
    """Estimate the loss gradient by autograd over ``batches`` independent noise batches.

    Returns the norm of the averaged gradient of ``(W1, W2)`` and its Monte Carlo error
    ``sqrt(sum of squared standard errors)``, the root-mean-square size of that norm at an exact
    stationary point.
    """
    generator = torch.Generator().manual_seed(seed)
    network = model.ReLUDAE.from_weights(W1, W2)
    clean = torch.as_tensor(X).repeat(draws, 1)
    per_batch = []
    for _ in range(batches):
        noisy = clean + sigma * torch.randn(clean.shape, generator=generator, dtype=torch.float64)
        residual = network(noisy)[0] - clean
        loss = residual.pow(2).sum(dim=1).mean() + lam * network.penalty()[0]
        network.zero_grad()
        loss.backward()
        per_batch.append(torch.cat([network.W1.grad.flatten(), network.W2.grad.flatten()]).numpy().copy())
    per_batch = np.array(per_batch)
    standard_errors = per_batch.std(axis=0, ddof=1) / np.sqrt(batches)
    return np.linalg.norm(per_batch.mean(axis=0)), np.sqrt(np.sum(standard_errors**2))


def test_weights_columns_scaled_points(X):
    W = theory.memorization_weights(X, SIGMA, 1e-2, width=5)
    scales = expected_scales(X, SIGMA, 1e-2)

    assert W.shape == (10, 5)
    # rounding: the same closed form evaluated in another order
    np.testing.assert_allclose(W[:, :3], (X * scales[:, None]).T, rtol=1e-12)
    assert np.all(W[:, 3:] == 0)


def test_weights_default_width_is_n(X):
    assert theory.memorization_weights(X, SIGMA, 0.0).shape == (10, 3)


def test_scales_match_formula(X):
    # rounding
    np.testing.assert_allclose(theory.memorization_scales(X, SIGMA, 1e-2), expected_scales(X, SIGMA, 1e-2), rtol=1e-12)


def test_gains_equal_column_norms(X):
    gains = theory.memorization_gains(X, SIGMA, 1e-2)
    W = theory.memorization_weights(X, SIGMA, 1e-2)
    norms2 = np.sum(X**2, axis=1)

    # rounding
    np.testing.assert_allclose(gains, np.sum(W**2, axis=0), rtol=1e-12)
    # rounding
    np.testing.assert_allclose(gains, (norms2 - 3 * 1e-2) / (norms2 + SIGMA**2), rtol=1e-12)


def test_loss_closed_form_without_penalty(X):
    norms2 = np.sum(X**2, axis=1)
    expected = np.mean(SIGMA**2 * norms2 / (SIGMA**2 + norms2))
    loss = theory.memorization_loss(X, SIGMA)

    # rounding
    assert loss == pytest.approx(expected, rel=1e-12)
    assert loss < SIGMA**2


def test_loss_closed_form_with_penalty(X):
    lam = 1e-2
    norms2 = np.sum(X**2, axis=1)
    gains = (norms2 - 3 * lam) / (norms2 + SIGMA**2)
    data_term = np.mean(norms2 * (gains - 1) ** 2 + SIGMA**2 * gains**2)
    expected = data_term + lam * 2 * np.sum(gains)  # tied: ||W1||^2 + ||W2||^2 = 2 sum_i a_i

    # rounding
    assert theory.memorization_loss(X, SIGMA, lam) == pytest.approx(expected, rel=1e-12)


def test_loss_independent_of_dimension(X):
    large = embed(X, 40)

    # rounding: the embedding preserves norms up to a few ulps
    assert theory.memorization_loss(large, SIGMA) == pytest.approx(theory.memorization_loss(X, SIGMA), rel=1e-10)
    # rounding
    assert theory.memorization_loss(large, SIGMA, 1e-2) == pytest.approx(
        theory.memorization_loss(X, SIGMA, 1e-2), rel=1e-10
    )


@pytest.mark.parametrize("lam", [0.0, 1e-2])
@pytest.mark.parametrize("d_large", [None, 40])
def test_loss_matches_monte_carlo(X, lam, d_large):
    points = X if d_large is None else embed(X, d_large)
    W = theory.memorization_weights(points, SIGMA, lam)
    mean, stderr = model.monte_carlo_loss(W, None, points, SIGMA, lam, draws=20_000, seed=1)
    neglected = neglected_terms_bound(points, W, SIGMA)

    # the neglected ReLU terms must be negligible here, or the comparison below tests nothing
    assert neglected < 0.1 * stderr
    # Monte Carlo error (4 standard errors) plus the rigorous bound on the neglected terms
    assert abs(mean - theory.memorization_loss(points, SIGMA, lam)) <= 4 * stderr + neglected


def test_loss_monte_carlo_detects_wrong_gain(X):
    """The Monte Carlo comparison above is sharp enough to see a 2 % error in the scales."""
    W = 1.02 * theory.memorization_weights(X, SIGMA, 0.0)
    mean, stderr = model.monte_carlo_loss(W, None, X, SIGMA, 0.0, draws=20_000, seed=1)

    # Monte Carlo error: the wrong scales must sit well outside 4 standard errors
    assert abs(mean - theory.memorization_loss(X, SIGMA)) > 4 * stderr


def test_memorizer_is_stationary(X):
    lam = 1e-2
    W = theory.memorization_weights(X, SIGMA, lam)
    gradient, noise = monte_carlo_gradient(W, W, X, SIGMA, lam)

    # Monte Carlo error: at a stationary point the squared ratio has mean 1, and even if all the
    # noise lay along one direction, P(chi^2_1 > 16) is about 6e-5 (measured max 2.0 over 60 seeds)
    assert gradient <= 4 * noise


def test_perturbed_memorizer_not_stationary(X):
    lam = 1e-2
    W = theory.memorization_weights(X, SIGMA, lam)
    perturbed = W + 0.05 * np.random.default_rng(0).standard_normal(W.shape)
    gradient, noise = monte_carlo_gradient(perturbed, perturbed, X, SIGMA, lam)
    stationary_gradient, _ = monte_carlo_gradient(W, W, X, SIGMA, lam)

    # Monte Carlo error: a real gradient must stand far above the noise level
    assert gradient >= 30 * noise
    # Monte Carlo error: same noise draws, so the ratio reflects the drift, not the noise
    assert stationary_gradient <= 0.05 * gradient


def test_memorizer_stationarity_needs_n_lam(X):
    """Scales computed with ``lam`` in place of ``n lam`` leave a visible gradient."""
    lam = 1e-2
    W = theory.memorization_weights(X, SIGMA, lam / 3)  # n = 3, so the penalty enters as lam
    gradient, noise = monte_carlo_gradient(W, W, X, SIGMA, lam)

    # Monte Carlo error: the wrong scales must give a gradient far above the noise
    assert gradient >= 10 * noise


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones(3), r"2-D array.*shape \(3,\)"),
        (np.ones((2, 3, 4)), r"2-D array.*shape \(2, 3, 4\)"),
        (np.array([[1.0, np.nan], [0.0, -1.0]]), "NaN"),
        (np.array([[1.0, 0.0], [0.0, 0.0]]), "zero row.*row 1"),
        (np.zeros((0, 3)), r"shape \(0, 3\)"),
    ],
)
def test_weights_reject_bad_points(bad, match):
    with pytest.raises(ValueError, match=match):
        theory.memorization_weights(bad, SIGMA, 0.0)


def test_weights_reject_small_width(X):
    with pytest.raises(ValueError, match="width = 2 .*n = 3"):
        theory.memorization_weights(X, SIGMA, 0.0, width=2)


def test_weights_reject_negative_sigma(X):
    with pytest.raises(ValueError, match="sigma must be non-negative, got -0.1"):
        theory.memorization_weights(X, -0.1, 0.0)


def test_weights_reject_negative_lam(X):
    with pytest.raises(ValueError, match="lam must be non-negative, got -0.01"):
        theory.memorization_weights(X, SIGMA, -0.01)


def test_weights_reject_large_lam():
    X = np.array([[1.0, 0.0], [0.0, -2.0]])  # min ||x||^2 = 1, n = 2
    with pytest.raises(ValueError, match=r"n \* lam = 1 must be below min \|\|x_i\|\|\^2 = 1"):
        theory.memorization_weights(X, SIGMA, 0.5)


def test_weights_accept_lam_just_below():
    X = np.array([[1.0, 0.0], [0.0, -2.0]])
    W = theory.memorization_weights(X, SIGMA, 0.49)

    assert np.all(np.sum(W**2, axis=0) > 0)


@pytest.mark.parametrize("function", [theory.memorization_gains, theory.memorization_loss])
def test_gains_and_loss_validate_inputs(function):
    with pytest.raises(ValueError, match="sigma must be non-negative"):
        function(np.eye(2), -1.0)
    with pytest.raises(ValueError, match="2-D array"):
        function(np.ones(2), 0.1)


def test_sigma_rejects_boolean(X):
    with pytest.raises(ValueError, match="sigma must be a real number, got True"):
        theory.memorization_weights(X, True, 0.0)
