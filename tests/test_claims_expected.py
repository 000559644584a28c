"""Tests of the helpers of ``reludae.experiments.expected`` and of the claims built on them."""

import numpy as np
import pytest

import reludae.claims.expected  # noqa: F401  (registers the claims)
from reludae import expected, model
from reludae.claims import Settings, evaluate
from reludae.experiments import expected as study


def small_problem(seed=0, d=7, n=3, p=4):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), 0.5 * rng.normal(size=(d, p)), 0.5 * rng.normal(size=(d, p))


# ----------------------------------------------------------------------------------------------
# The independent-units approximation


def test_independent_units_exact_for_orthogonal_columns():
    X, _, W2 = small_problem()
    W1, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(7, 4)))
    W1 = W1 * np.array([0.3, 0.7, 1.1, 0.5])
    # Source: orthogonal columns give uncorrelated, hence independent, Gaussian pre-activations,
    # so the approximation is exact up to rounding.
    for W in (W2, None):
        assert study.independent_units_loss(W1, W, X, 0.8, 0.1) == pytest.approx(
            expected.expected_loss(W1, W, X, 0.8, 0.1), rel=1e-12
        )


def test_independent_units_wrong_for_correlated_columns():
    X, W1, W2 = small_problem()
    W1 = W1 + 1.0  # a shared component correlates the units
    exact = expected.expected_loss(W1, W2, X, 0.8, 0.1)
    # Source: the missing covariance terms are of order sigma^2 ||w||^2 ||W2||^2, far above 1 %.
    assert abs(study.independent_units_loss(W1, W2, X, 0.8, 0.1) / exact - 1) > 1e-2


def test_independent_units_at_zero_noise_is_noiseless_loss():
    X, W1, W2 = small_problem()
    residual = model.apply(W1, W2, X) - X
    noiseless = np.mean(np.sum(residual**2, axis=1)) + 0.1 * (np.sum(W1**2) + np.sum(W2**2))
    # Source: with sigma = 0 every moment is deterministic, so only rounding differs.
    assert study.independent_units_loss(W1, W2, X, 0.0, 0.1) == pytest.approx(noiseless, rel=1e-13)


@pytest.mark.parametrize("tied", [False, True])
def test_independent_units_gradient_finite_differences(tied):
    X, W1, W2 = small_problem(seed=2)
    W2 = None if tied else W2

    def loss(A, B):
        return study.independent_units_loss(A, None if tied else B, X, 0.6, 0.05)

    def gradient(A, B):
        _, g1, g2 = study.independent_units_loss_and_grad(A, None if tied else B, X, 0.6, 0.05)
        return g1, np.zeros_like(g1) if tied else g2

    # When tied, the second block is ignored by the loss and gets a zero gradient.
    check = study.directional_check(loss, gradient, W1, W1 if tied else W2, directions=6, seed=3)
    # Source: central differences with step 1e-5 agree to about 4e-11 here (measured).
    assert check.error < 1e-7


def test_independent_units_zero_column_has_finite_gradient():
    X, W1, W2 = small_problem()
    W1[:, 1] = 0.0
    loss, g1, g2 = study.independent_units_loss_and_grad(W1, W2, X, 0.5, 0.1)
    # Source: a zero column is a deterministic zero pre-activation, handled without division.
    assert np.isfinite(loss)
    assert np.all(np.isfinite(g1))
    assert np.all(np.isfinite(g2))


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(X=np.ones(5)), "2-D array"),
        (dict(W1=np.ones((3, 4))), "shape"),
        (dict(W2=np.ones((7, 3))), "shape of W1"),
        (dict(sigma=-0.1), "non-negative"),
        (dict(lam=np.nan), "finite"),
        (dict(W1=np.full((7, 4), np.inf)), "NaN or infinite"),
    ],
)
def test_independent_units_rejects_bad_input(change, message):
    X, W1, W2 = small_problem()
    arguments = dict(W1=W1, W2=W2, X=X, sigma=0.5, lam=0.1)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        study.independent_units_loss_and_grad(**arguments)


# ----------------------------------------------------------------------------------------------
# Bivariate references


def test_bivariate_references_match_package():
    for h, k, rho in [(0.3, -0.4, 0.5), (1.0, 1.0, -0.6), (-1.5, 0.2, 0.9)]:
        value = expected.relu_cross_moment(h, k, rho)
        # Source: at moderate arguments and |rho| <= 0.9 no evaluation cancels much, so 1e-11 is loose.
        assert study.cross_moment_formula(h, k, rho) == pytest.approx(value, rel=1e-11)
        assert study.cross_moment_quadrature(h, k, rho) == pytest.approx(value, rel=1e-11)


def test_independent_cross_moment_exact_at_zero_correlation():
    # Source: uncorrelated jointly Gaussian variables are independent.
    assert study.independent_cross_moment(0.4, -0.3, 0.0) == pytest.approx(
        expected.relu_cross_moment(0.4, -0.3, 0.0), rel=1e-13
    )


@pytest.mark.parametrize("function", [study.cross_moment_formula, study.cross_moment_quadrature])
def test_bivariate_references_reject_degenerate_correlation(function):
    with pytest.raises(ValueError, match="rho"):
        function(0.0, 0.0, 1.0)


def test_relative_error_handles_zero_reference():
    errors = study.relative_error([0.0, 1e-300, 2.0], [0.0, 0.0, 1.0])
    assert errors[0] == 0.0
    assert errors[1] == np.inf
    assert errors[2] == 1.0


def test_mpmath_moments_reject_nonpositive_sd():
    with pytest.raises(ValueError, match="s > 0"):
        study.relu_moments_mpmath(1.0, 0.0)


def test_sampling_leaves_unresolved_points_unscored():
    comparison = study.cross_moment_sampling(study.cross_moment_formula, shifts=(-2.0, 2.0), rhos=(-0.999,), draws=2_000)
    # h = k = -2 with rho near -1 needs U > 2 and V ~ -U > 2 at once, which 2,000 draws never see.
    assert comparison.positive[0] < study.MIN_POSITIVE
    assert np.isnan(comparison.scores[0])
    assert np.all(np.isfinite(comparison.scores[comparison.positive >= study.MIN_POSITIVE]))


# ----------------------------------------------------------------------------------------------
# Monte Carlo gradient, Jacobian energy


def test_chunked_monte_carlo_gradient_is_unbiased():
    X, W1, W2 = small_problem(seed=4)
    _, e1, e2 = expected.expected_loss_and_grad(W1, W2, X, 0.5, 0.1)
    g1, g2 = study.monte_carlo_gradient(W1, W2, X, 0.5, 0.1, draws=40_000, chunk=7_000, seed=1)
    error = np.sqrt(np.sum((g1 - e1) ** 2) + np.sum((g2 - e2) ** 2))
    norm = np.sqrt(np.sum(e1**2) + np.sum(e2**2))
    # Source: with 4e4 draws the relative Monte Carlo error of this problem is 0.3 % to 0.5 % (four seeds).
    assert error < 0.05 * norm


def test_jacobian_energy_matches_finite_differences():
    X, W1, W2 = small_problem(seed=5)
    total = 0.0
    for x in X:
        J = np.column_stack(
            [(model.apply(W1, W2, (x + 1e-6 * e)[None]) - model.apply(W1, W2, (x - 1e-6 * e)[None]))[0] / 2e-6
             for e in np.eye(x.size)]
        )
        total += np.sum(J**2)
    # Source: f is piecewise linear, so central differences inside a linear piece are exact up to rounding.
    assert study.jacobian_energy(W1, W2, X) == pytest.approx(total / X.shape[0], rel=1e-8)


# ----------------------------------------------------------------------------------------------
# Claims


@pytest.mark.parametrize(
    "claim_id",
    ["expected.univariate-moments", "expected.gradient-finite-differences", "expected.small-noise"],
)
def test_fast_claims_verified(claim_id):
    verdict = evaluate(claim_id, Settings(seed=1))
    assert verdict.passed, verdict.summary()


def test_gradient_samples_error_and_slope():
    # Constant estimates 1 and 0.1 in every entry of (2, 3, 2) arrays, against a zero reference.
    gradients = np.stack([np.full((2, 2, 3, 2), 1.0), np.full((2, 2, 3, 2), 0.1)])
    samples = study.GradientSamples(np.array([1, 100]), gradients)
    curve = samples.error((np.zeros((3, 2)), np.zeros((3, 2))))
    # Source: each error is sqrt(12) times the entry, so the log-log slope is exactly -1/2.
    assert np.allclose(curve.errors, np.sqrt(12.0) * np.array([1.0, 0.1]), rtol=1e-14)
    assert curve.slope == pytest.approx(-0.5, abs=1e-12)
    assert curve.reference_norm == 0.0
