"""Tests of the regularized linear autoencoder formulas in ``reludae.theory`` and their claims."""

import numpy as np
import pytest
from scipy.optimize import check_grad

import reludae.claims.linear_ae as linear_claims
from reludae import claims, metrics, theory

SIGMA, LAM, WIDTH = 0.3, 0.05, 3


@pytest.fixture
def X():
    """40 points in R^8 whose Gram spectrum X^T X / n is linear_claims.SPECTRUM."""
    return linear_claims.points_with_spectrum(40, linear_claims.SPECTRUM, seed=1)


def direct_weights(X, width, sigma, lam):
    """The lemma's formula written out: U_p (I + n sigma^2 L^-1)^(-1/2) (I - n lam L^-1)^(1/2)."""
    n = X.shape[0]
    values, vectors = np.linalg.eigh(X.T @ X)
    order = np.argsort(values)[::-1][:width]
    L, U = values[order], vectors[:, order]
    factor = (1 + n * sigma**2 / L) ** -0.5 * np.sqrt(np.clip(1 - n * lam / L, 0, None))
    return U * factor[None, :]


def direct_loss(W1, W2, X, sigma, lam):
    """(1/n) J written with the residual matrix, without the Gram matrix."""
    n = X.shape[0]
    M = W1 @ W2.T
    J = np.sum((X - X @ M) ** 2) + n * sigma**2 * np.sum(M**2) + n * lam * (np.sum(W1**2) + np.sum(W2**2))
    return J / n


def test_points_with_spectrum_has_that_spectrum(X):
    values = np.sort(np.linalg.eigvalsh(X.T @ X / len(X)))[::-1]
    np.testing.assert_allclose(values, linear_claims.SPECTRUM, rtol=1e-12)


def test_weights_match_the_written_formula_as_products(X):
    W = theory.linear_ae_weights(X, WIDTH, SIGMA, LAM)
    V = direct_weights(X, WIDTH, SIGMA, LAM)
    assert W.shape == (8, WIDTH)
    # Eigenvector signs are arbitrary, so compare products (rounding-level tolerance).
    np.testing.assert_allclose(W @ W.T, V @ V.T, atol=1e-12)


def test_gains_are_product_singular_values(X):
    gains = theory.linear_ae_gains(X, WIDTH, SIGMA, LAM)
    W = theory.linear_ae_weights(X, WIDTH, SIGMA, LAM)
    eig = np.sort(np.linalg.eigvalsh(W @ W.T))[::-1][:WIDTH]
    np.testing.assert_allclose(eig, gains, rtol=1e-12)
    spec = np.array(linear_claims.SPECTRUM[:WIDTH])
    np.testing.assert_allclose(gains, (spec - LAM) / (spec + SIGMA**2), rtol=1e-12)


def test_closed_form_loss_matches_weights(X):
    W = theory.linear_ae_weights(X, WIDTH, SIGMA, LAM)
    expected = direct_loss(W, W, X, SIGMA, LAM)
    assert theory.linear_ae_loss(X, WIDTH, SIGMA, LAM) == pytest.approx(expected, rel=1e-12)
    assert theory.linear_ae_objective(W, W, X, SIGMA, LAM)[0] == pytest.approx(expected, rel=1e-12)


def test_objective_gradient_matches_finite_differences(X):
    rng = np.random.default_rng(3)
    d, p = X.shape[1], WIDTH

    def f(v):
        return theory.linear_ae_objective(v[: d * p].reshape(d, p), v[d * p :].reshape(d, p), X, SIGMA, LAM)[0]

    def g(v):
        _, g1, g2 = theory.linear_ae_objective(v[: d * p].reshape(d, p), v[d * p :].reshape(d, p), X, SIGMA, LAM)
        return np.concatenate([g1.ravel(), g2.ravel()])

    v = rng.standard_normal(2 * d * p)
    # check_grad uses forward differences with step 1.5e-8, whose error is about 1e-7 relative.
    assert check_grad(f, g, v) < 1e-5 * np.linalg.norm(g(v))
    assert f(v) == pytest.approx(direct_loss(v[: d * p].reshape(d, p), v[d * p :].reshape(d, p), X, SIGMA, LAM), rel=1e-12)


def test_product_is_invariant_to_the_rotation(X):
    W = theory.linear_ae_weights(X, WIDTH, SIGMA, LAM)
    O, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((WIDTH, WIDTH)))
    rotated = W @ O.T
    np.testing.assert_allclose(rotated @ rotated.T, W @ W.T, atol=1e-12)
    assert theory.linear_ae_objective(rotated, rotated, X, SIGMA, LAM)[0] == pytest.approx(
        theory.linear_ae_loss(X, WIDTH, SIGMA, LAM), rel=1e-12
    )
    assert metrics.relative_error(rotated, W) > 0.1


def test_restarts_reach_but_never_beat_formula(X):
    formula = theory.linear_ae_loss(X, WIDTH, SIGMA, LAM)
    losses = np.array([linear_claims.solve(X, WIDTH, SIGMA, LAM, seed=s).loss for s in range(12)])
    # Relative 1e-10: rounding of an O(1) loss is near 1e-15 (see LOSS_TOLERANCE).
    assert np.all(losses >= formula * (1 - 1e-10))
    assert losses.min() == pytest.approx(formula, rel=1e-10)


@pytest.mark.parametrize("init_scale", [1e-3, 10.0])
def test_restarts_from_extreme_scales_reach_the_formula(X, init_scale):
    formula = theory.linear_ae_loss(X, WIDTH, SIGMA, LAM)
    run = linear_claims.solve(X, WIDTH, SIGMA, LAM, seed=5, init_scale=init_scale)
    assert run.loss == pytest.approx(formula, rel=1e-10)


def test_wide_noiseless_model_is_identity(X):
    W = theory.linear_ae_weights(X, 10, 0.0, 0.0)
    assert W.shape == (8, 10)
    np.testing.assert_allclose(W @ W.T, np.eye(8), atol=1e-12)
    np.testing.assert_array_equal(W[:, 8:], 0.0)
    assert theory.linear_ae_loss(X, 10, 0.0, 0.0) == pytest.approx(0.0, abs=1e-12)


def test_directions_below_the_penalty_get_zero(X):
    # n lam' = n * 0.3 lies between the Gram eigenvalues 0.49 n and 0.25 n: four directions survive.
    lam = 0.3
    gains = theory.linear_ae_gains(X, 6, SIGMA, lam)
    assert np.all(gains[:4] > 0)
    np.testing.assert_array_equal(gains[4:], 0.0)
    W = theory.linear_ae_weights(X, 6, SIGMA, lam)
    np.testing.assert_array_equal(W[:, 4:], 0.0)
    # The zero directions are optimal too: a restart cannot lower the loss.
    run = linear_claims.solve(X, 6, SIGMA, lam, seed=0)
    assert run.loss >= theory.linear_ae_loss(X, 6, SIGMA, lam) * (1 - 1e-10)
    # A penalty above every eigenvalue leaves the zero map.
    np.testing.assert_array_equal(theory.linear_ae_weights(X, WIDTH, SIGMA, 5.0), 0.0)


def test_typo_formula_is_beaten(X):
    W = linear_claims.typo_weights(X, WIDTH, SIGMA, LAM)
    typo_loss = theory.linear_ae_objective(W, W, X, SIGMA, LAM)[0]
    assert typo_loss > theory.linear_ae_loss(X, WIDTH, SIGMA, LAM) * (1 + 1e-3)


def test_shrinkage_limit_in_its_eigenbasis():
    rng = np.random.default_rng(2)
    V, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    e = np.array([3.0, 2.0, 1.0, 0.2, 0.05])
    S = (V * e) @ V.T
    rho, sigma, lam, rank = 0.5, 0.4, 0.2, 3
    shrunk = (e - lam / rho) / (e + sigma**2)
    expected = (V[:, :rank] * np.clip(shrunk[:rank], 0, None)) @ V[:, :rank].T
    np.testing.assert_allclose(theory.shrinkage_limit(S, rho, sigma, lam, rank), expected, atol=1e-12)
    full = (S - lam / rho * np.eye(5)) @ np.linalg.inv(S + sigma**2 * np.eye(5))
    values = np.sort(np.linalg.eigvals(full).real)[::-1]
    np.testing.assert_allclose(values[:rank], shrunk[:rank], rtol=1e-10)


def test_shrinkage_limit_identity_with_the_finite_sample_block():
    """With S the empirical second moment, the block formula of a mode is the limit formula exactly."""
    rng = np.random.default_rng(4)
    n, rho, sigma, lam, rank = 1000, 0.25, 0.3, 0.02, 2
    n_k = int(rho * n)
    Xk = rng.standard_normal((n_k, 6)) * np.array([1.5, 1.0, 0.6, 0.3, 0.2, 0.1]) + 0.5
    S_hat = Xk.T @ Xk / n_k
    # The mode's share of the loss is rho * [its own mean loss + (lam / rho) ||W||^2].
    W = theory.linear_ae_weights(Xk, rank, sigma, lam / rho)
    np.testing.assert_allclose(W @ W.T, theory.shrinkage_limit(S_hat, rho, sigma, lam, rank), atol=1e-12)


def sampled_block_error(n_k, rng, mu, A, rho, sigma, lam, rank, limit):
    Xk = mu + rng.standard_normal((n_k, len(mu))) @ A.T
    W = theory.linear_ae_weights(Xk, rank, sigma, lam / rho)
    S_hat = Xk.T @ Xk / n_k
    return np.linalg.norm(W @ W.T - limit), S_hat


def test_shrinkage_limit_is_the_large_sample_limit():
    rng = np.random.default_rng(5)
    d, rho, sigma, lam, rank = 6, 0.5, 0.3, 0.02, 2
    mu = np.array([1.0, -0.5, 0.0, 0.0, 0.0, 0.0])
    A = np.diag([0.8, 0.6, 0.4, 0.2, 0.1, 0.05])
    S = np.outer(mu, mu) + A @ A.T
    limit = theory.shrinkage_limit(S, rho, sigma, lam, rank)
    e = np.sort(np.linalg.eigvalsh(S))[::-1]
    # Perturbation bound: the kept eigenvalue map e -> (e - c)/(e + sigma^2) has slope at most
    # (sigma^2 + c)/(e_rank + sigma^2)^2, and the kept eigenprojector moves by at most
    # 2 ||E|| / gap (Davis-Kahan) times the largest kept value, which is below 1.
    c = lam / rho
    slope = (sigma**2 + c) / (e[rank - 1] + sigma**2) ** 2
    gap = e[rank - 1] - e[rank]
    errors = []
    for n_k in (2_000, 200_000):
        error, S_hat = sampled_block_error(n_k, rng, mu, A, rho, sigma, lam, rank, limit)
        bound = np.sqrt(rank) * np.linalg.norm(S_hat - S) * (slope + 2 * np.sqrt(2) / gap)
        assert error <= bound
        errors.append(error)
    # Control: the limit with (S + sigma I)^-1 in place of (S + sigma^2 I)^-1 lies outside the bound.
    typo = theory.shrinkage_limit(S, rho, np.sqrt(sigma), lam, rank)
    assert np.linalg.norm(typo - limit) > 2 * bound
    # Law of large numbers: 100 times more samples shrink the error by about 10.
    assert errors[1] < errors[0] / 3


@pytest.mark.parametrize(
    "args, match",
    [
        ((np.zeros(5), 2, 0.1, 0.1), "2-D"),
        ((np.ones((3, 2)), 0, 0.1, 0.1), "width must be at least 1"),
        ((np.ones((3, 2)), 2.5, 0.1, 0.1), "width must be an integer"),
        ((np.ones((3, 2)), 2, -0.1, 0.1), "sigma must be non-negative, got -0.1"),
        ((np.ones((3, 2)), 2, 0.1, -1.0), "lam must be non-negative, got -1.0"),
        ((np.full((3, 2), np.nan), 2, 0.1, 0.1), "NaN"),
    ],
)
@pytest.mark.parametrize("function", [theory.linear_ae_weights, theory.linear_ae_gains, theory.linear_ae_loss])
def test_linear_ae_rejects_bad_input(function, args, match):
    with pytest.raises(ValueError, match=match):
        function(*args)


def test_objective_rejects_mismatched_weights():
    X = np.ones((3, 4))
    with pytest.raises(ValueError, match="shape"):
        theory.linear_ae_objective(np.ones((3, 2)), np.ones((4, 2)), X, 0.1, 0.1)
    with pytest.raises(ValueError, match="same shape"):
        theory.linear_ae_objective(np.ones((4, 2)), np.ones((4, 3)), X, 0.1, 0.1)


@pytest.mark.parametrize(
    "S, rho, sigma, lam, rank, match",
    [
        (np.ones((2, 3)), 0.5, 0.1, 0.1, 1, "square"),
        (np.array([[1.0, 0.5], [0.0, 1.0]]), 0.5, 0.1, 0.1, 1, "symmetric"),
        (np.diag([1.0, -1.0]), 0.5, 0.1, 0.1, 1, "positive semidefinite"),
        (np.eye(2), 0.0, 0.1, 0.1, 1, "rho must be positive, got 0.0"),
        (np.eye(2), 1.5, 0.1, 0.1, 1, "rho .* at most 1, got 1.5"),
        (np.eye(2), 0.5, -0.1, 0.1, 1, "sigma must be non-negative"),
        (np.eye(2), 0.5, 0.1, -0.1, 1, "lam must be non-negative"),
        (np.eye(2), 0.5, 0.1, 0.1, 0, "rank must be at least 1, got 0"),
    ],
)
def test_shrinkage_limit_rejects_bad_input(S, rho, sigma, lam, rank, match):
    with pytest.raises(ValueError, match=match):
        theory.shrinkage_limit(S, rho, sigma, lam, rank)


@pytest.mark.parametrize("claim_id", ["linear-ae.global-minimum", "linear-ae.product-invariant"])
def test_claims_are_verified(claim_id):
    verdict = claims.evaluate(claim_id)
    assert verdict.check.passed, verdict.summary()
    assert not verdict.control.passed, verdict.summary()
