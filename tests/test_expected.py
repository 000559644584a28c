"""Tests of reludae.expected: moments against quadrature, loss against Monte Carlo, derivatives
against finite differences, the sigma -> 0 limit and input validation."""

import warnings

import numpy as np
import pytest
import torch
from scipy.integrate import quad
from scipy.special import ndtr

from reludae import expected as E

SQRT_2PI = np.sqrt(2.0 * np.pi)


def phi(t):
    return np.exp(-0.5 * np.square(t)) / SQRT_2PI


def integrate_from(f, a, marks=()):
    """``int_a^inf f`` by quad, after a scan of the vectorized ``f`` finds where it is not negligible."""
    grid = a + np.concatenate([[0.0], np.geomspace(1e-10, 60.0, 800)])
    values = f(grid)
    top = values.max()
    if top == 0:
        return 0.0
    keep = np.flatnonzero(values > top * 1e-30)
    lo, hi = grid[max(keep[0] - 1, 0)], grid[min(keep[-1] + 1, grid.size - 1)]
    points = sorted(x for x in [grid[np.argmax(values)], *marks] if lo < x < hi)
    scalar = lambda u: float(f(np.array([u]))[0])  # noqa: E731
    return quad(scalar, lo, hi, points=points or None, epsabs=0, epsrel=1e-13, limit=1000)[0]


def cross_reference(h, k, rho):
    """``E[(U+h)_+ (V+k)_+]`` as quad over U of ``(u + h) E[(V + k)_+ | U = u] phi(u)``."""
    r = np.sqrt((1 - abs(rho)) * (1 + abs(rho)))
    f = lambda u: (u + h) * E.relu_mean(k + rho * u, r) * phi(u)  # noqa: E731
    marks = [] if rho == 0 else [-k / rho + c * r / abs(rho) for c in (-10, -2, 0, 2, 10)]
    return integrate_from(f, -h, marks)


def cdf2_reference(h, k, rho):
    """``P(U < h, V < k)`` as quad over ``v = h - u > 0`` of ``phi(u) P(V < k | U = u)``."""
    r = np.sqrt((1 - abs(rho)) * (1 + abs(rho)))
    f = lambda v: phi(h - v) * ndtr((k - rho * (h - v)) / r)  # noqa: E731
    marks = [] if rho == 0 else [h - k / rho + c * r / abs(rho) for c in (-10, -2, 0, 2, 10)]
    return integrate_from(f, 0.0, marks)


def problem(seed, d, n, p, scale=0.5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), scale * rng.normal(size=(d, p)), scale * rng.normal(size=(d, p))


# ----------------------------------------------------------------------------------------------
# 1. Univariate moments


def test_relu_moments_quad():
    worst = 0.0
    for t in (-30.0, -8.0, -2.5, -1.0, 0.0, 1.0, 8.0, 30.0):
        for s in (0.5, 2.0):
            m = t * s
            for power, moment in ((1, E.relu_mean), (2, E.relu_second_moment)):
                f = lambda z: (m + s * z) ** power * phi(z)  # noqa: E731
                a = -t
                ref = sum(quad(f, lo, hi, epsabs=0, epsrel=1e-13, limit=200)[0] for lo, hi in ((a, a + 1), (a + 1, np.inf)))
                worst = max(worst, abs(moment(m, s) / ref - 1))
    # Source: scipy quad of the defining integral, which agrees with the module to ~6e-15.
    assert worst < 1e-12


def test_relu_moments_zero_sd():
    m = np.array([-1.5, 0.0, 2.0])
    # Source: s = 0 makes the pre-activation deterministic, so the moments are relu(m)^power exactly.
    assert np.array_equal(E.relu_mean(m, 0.0), np.maximum(m, 0))
    assert np.array_equal(E.relu_second_moment(m, 0.0), np.maximum(m, 0) ** 2)


# ----------------------------------------------------------------------------------------------
# 2. Bivariate moment and cdf


GRID = (-8.0, -1.0, 0.0, 1.0, 8.0)
RHOS = (-0.999, -0.5, 0.0, 0.5, 0.999)


def test_cross_moment_quad_grid():
    worst = 0.0
    for h in GRID:
        for k in GRID:
            for rho in RHOS:
                ref = cross_reference(h, k, rho)
                value = E.relu_cross_moment(h, k, rho)
                worst = max(worst, abs(value - ref) / ref if ref > 0 else abs(value) / 1e-300)
    # Source: quad of the one-dimensional conditional form; relative error, values down to 1e-119.
    assert worst < 1e-10


def test_bivariate_cdf_quad_grid():
    worst = 0.0
    for h in GRID:
        for k in GRID:
            for rho in RHOS:
                ref = cdf2_reference(h, k, rho)
                value = E.bivariate_normal_cdf(h, k, rho)
                worst = max(worst, abs(value - ref) / ref if ref > 0 else abs(value) / 1e-300)
    # Source: quad of phi(u) P(V < k | U = u); relative error, values down to 1e-114.
    assert worst < 1e-10


def test_cross_moment_near_degenerate():
    # h and k nearly equal (rho near 1) or opposite (rho near -1): a layer of width |h -+ k|.
    cases = [(0.3, 0.3 + 1e-3, 1 - 1e-9), (1.7, 1.7 - 1e-4, 1 - 1e-6), (-0.7, 0.7 + 1e-3, -1 + 1e-5),
             (0.6, -0.55, -0.99998), (2.0, -2.0 + 1e-2, -0.3), (-1.2, -1.2 + 1e-5, 0.9)]
    worst = 0.0
    for h, k, rho in cases:
        worst = max(worst, abs(E.relu_cross_moment(h, k, rho) / cross_reference(h, k, rho) - 1))
        worst = max(worst, abs(E.bivariate_normal_cdf(h, k, rho) / cdf2_reference(h, k, rho) - 1))
    # Source: quad of the conditional forms with break points at the conditional step.
    assert worst < 1e-10


def test_cross_moment_degenerate_rho():
    worst = 0.0
    for h in GRID:
        for k in GRID:
            plus = integrate_from(lambda u: np.maximum(u + h, 0) * np.maximum(u + k, 0) * phi(u), -min(h, k))
            worst = max(worst, abs(E.relu_cross_moment(h, k, 1.0) - plus) / max(plus, 1e-300))
            if h + k > 0:
                g = lambda u: (u + h) * (k - u) * phi(u)  # noqa: E731
                minus = quad(g, -h, k, epsabs=0, epsrel=1e-13)[0]
                worst = max(worst, abs(E.relu_cross_moment(h, k, -1.0) - minus) / minus)
            else:
                worst = max(worst, abs(E.relu_cross_moment(h, k, -1.0)) / 1e-300)
        same = E.relu_second_moment(h, 1.0)
        worst = max(worst, abs(E.relu_cross_moment(h, h, 1.0) / same - 1))
    # Source: V = U and V = -U reduce the moment to one-dimensional quad; rho = 1, h = k is the
    # univariate second moment.
    assert worst < 1e-10


def test_cross_moment_far_tails():
    h = np.array([-40.0, -30.0, -8.0, 0.0, 8.0, 30.0, 40.0])
    H, K = np.meshgrid(h, h)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for rho in (-1.0, -1 + 1e-12, -0.5, 0.0, 0.5, 1 - 1e-12, 1.0):
            G = E.relu_cross_moment(H, K, rho)
            P = E.bivariate_normal_cdf(H, K, rho)
            # Source: far positive arguments leave E[(U+h)(V+k)] = hk + rho, tails below 1e-190.
            far = (H >= 30) & (K >= 30)
            assert np.max(np.abs(G[far] / (H[far] * K[far] + rho) - 1)) < 1e-12
            # Source: moments are finite and non-negative, probabilities lie in [0, 1].
            assert np.all(np.isfinite(G))
            assert np.all(G >= 0)
            assert np.all((P >= 0) & (P <= 1))
    # Source: at rho = 0, Phi2 = Phi(h) Phi(k), here about 3e-213.
    assert E.bivariate_normal_cdf(-30.0, -8.0, 0.0) == pytest.approx(ndtr(-30.0) * ndtr(-8.0), rel=1e-12)
    worst = 0.0
    for h, k, rho in ((-30.0, -30.0, 0.5), (-20.0, -20.0, -0.3), (30.0, -29.5, -0.5), (-12.0, 12.001, -0.9999)):
        worst = max(worst, abs(E.relu_cross_moment(h, k, rho) / cross_reference(h, k, rho) - 1))
        worst = max(worst, abs(E.bivariate_normal_cdf(h, k, rho) / cdf2_reference(h, k, rho) - 1))
    # Source: quad of the conditional forms; these values lie between 1e-267 and 1e-34.
    assert worst < 1e-10


# ----------------------------------------------------------------------------------------------
# 3. Loss against Monte Carlo


def monte_carlo_loss(W1, W2, X, sigma, lam, draws, seed, chunk=100_000):
    """Mean and standard error over noise draws of the per-draw loss (one eps per sample)."""
    rng = np.random.default_rng(seed)
    U = W1 if W2 is None else W2
    penalty = lam * (np.sum(W1**2) + np.sum(U**2))
    total = total_sq = 0.0
    for _ in range(draws // chunk):
        per_draw = np.zeros(chunk)
        for x in X:
            Y = x + sigma * rng.normal(size=(chunk, x.size))
            residual = np.maximum(Y @ W1, 0) @ U.T - x
            per_draw += np.sum(residual * residual, axis=1) / X.shape[0]
        per_draw += penalty
        total += per_draw.sum()
        total_sq += np.sum(per_draw**2)
    mean = total / draws
    return mean, np.sqrt((total_sq / draws - mean**2) / draws)


@pytest.mark.parametrize("tied", [False, True])
def test_loss_monte_carlo(tied):
    X, W1, W2 = problem(1, d=10, n=3, p=4)
    W2 = None if tied else W2
    exact = E.expected_loss(W1, W2, X, 0.8, 0.05)
    mean, se = monte_carlo_loss(W1, W2, X, 0.8, 0.05, draws=1_000_000, seed=7)
    # Source: Monte Carlo with 1e6 noise draws; within four standard errors.
    assert abs(exact - mean) < 4 * se
    # Source: the same comparison rejects a value ten standard errors off.
    assert abs(exact + 10 * se - mean) >= 4 * se


# ----------------------------------------------------------------------------------------------
# 4. Gradient against finite differences


def finite_difference_grad(W1, W2, X, sigma, lam, h=1e-5):
    """Central differences extrapolated as ``2 D(h/2) - D(h)``.

    The extrapolation removes the O(h) error that central differences make at a zero column, where
    the loss is only once differentiable (degree-2 homogeneous pieces).
    """

    def central(W, other, first, step):
        out = np.zeros_like(W)
        for idx in np.ndindex(W.shape):
            up, down = W.copy(), W.copy()
            up[idx] += step
            down[idx] -= step
            args = ((up, other), (down, other)) if first else ((other, up), (other, down))
            out[idx] = (E.expected_loss(*args[0], X, sigma, lam) - E.expected_loss(*args[1], X, sigma, lam)) / (2 * step)
        return out

    def richardson(W, other, first):
        return 2 * central(W, other, first, h / 2) - central(W, other, first, h)

    g1 = richardson(W1, W2, True)
    return g1, None if W2 is None else richardson(W2, W1, False)


def relative_error(value, reference):
    return np.max(np.abs(value - reference)) / np.max(np.abs(reference))


def special_columns(W, U=None):
    """Column 1 parallel to column 0, column 2 zero; ``U`` gets the zero column too (a dead unit)."""
    W = W.copy()
    W[:, 1] = 2.0 * W[:, 0]
    W[:, 2] = 0.0
    if U is not None:
        U = U.copy()
        U[:, 2] = 0.0
    return W, U


@pytest.mark.parametrize("case", ["untied", "tied", "untied special", "tied special", "untied zero W1 column"])
def test_grad_finite_differences(case):
    X, W1, W2 = problem(2, d=5, n=3, p=4)
    if case.startswith("tied"):
        W2 = None
    if case.endswith("special"):
        W1, W2 = special_columns(W1, W2)
    if case == "untied zero W1 column":
        W1 = W1.copy()
        W1[:, 3] = 0.0  # a cone point: the gradient there is the central-difference one
    loss, g1, g2 = E.expected_loss_and_grad(W1, W2, X, 0.6, 0.01)
    f1, f2 = finite_difference_grad(W1, W2, X, 0.6, 0.01)
    # Source: extrapolated central differences of expected_loss.
    assert relative_error(g1, f1) < 1e-6
    if W2 is None:
        assert g2 is None
    else:
        assert relative_error(g2, f2) < 1e-6
    # Source: the loss returned with the gradient is expected_loss itself.
    assert loss == E.expected_loss(W1, W2, X, 0.6, 0.01)


# ----------------------------------------------------------------------------------------------
# 5. Hessian


def flat_grad(theta, X, sigma, lam, d, p, tied):
    if tied:
        return E.expected_loss_and_grad(theta.reshape(d, p), None, X, sigma, lam)[1].ravel()
    _, g1, g2 = E.expected_loss_and_grad(theta[: d * p].reshape(d, p), theta[d * p :].reshape(d, p), X, sigma, lam)
    return np.concatenate([g1.ravel(), g2.ravel()])


@pytest.mark.parametrize("tied", [False, True])
def test_hessian_finite_differences(tied):
    X, W1, W2 = problem(3, d=3, n=2, p=3, scale=1.0)
    d, p = W1.shape
    W2 = None if tied else W2
    H = E.expected_hessian(W1, W2, X, 0.5, 0.01)
    theta = W1.ravel() if tied else np.concatenate([W1.ravel(), W2.ravel()])
    F = np.empty_like(H)
    for i in range(theta.size):
        e = np.zeros_like(theta)
        e[i] = 1e-5
        F[:, i] = (flat_grad(theta + e, X, 0.5, 0.01, d, p, tied) - flat_grad(theta - e, X, 0.5, 0.01, d, p, tied)) / 2e-5
    # Source: each row comes from its own backward pass, so symmetry is not built in.
    assert np.max(np.abs(H - H.T)) < 1e-12 * np.max(np.abs(H))
    # Source: central differences of the analytic numpy gradient (a separate implementation).
    assert relative_error(H, F) < 1e-5


# ----------------------------------------------------------------------------------------------
# 6. sigma -> 0


def test_sigma_zero_limit():
    X, W1, W2 = problem(4, d=6, n=4, p=5)
    lam = 0.02
    residual = np.maximum(X @ W1, 0) @ W2.T - X
    noiseless = np.mean(np.sum(residual**2, axis=1)) + lam * (np.sum(W1**2) + np.sum(W2**2))
    # Source: at sigma = 0 the expectation is the noiseless loss.
    assert abs(E.expected_loss(W1, W2, X, 0.0, lam) - noiseless) <= 1e-12 * noiseless
    # Source: the loss is continuous in sigma, O(sigma^2) away from kinks.
    assert abs(E.expected_loss(W1, W2, X, 1e-8, lam) - noiseless) <= 1e-7 * noiseless
    w1 = torch.tensor(W1, requires_grad=True)
    w2 = torch.tensor(W2, requires_grad=True)
    Xt = torch.as_tensor(X)
    loss = torch.mean(torch.sum((torch.relu(Xt @ w1) @ w2.T - Xt) ** 2, dim=1)) + lam * (w1.square().sum() + w2.square().sum())
    t1, t2 = torch.autograd.grad(loss, [w1, w2])
    _, g1, g2 = E.expected_loss_and_grad(W1, W2, X, 0.0, lam)
    # Source: torch autograd of the noiseless loss.
    assert relative_error(g1, t1.numpy()) < 1e-12
    assert relative_error(g2, t2.numpy()) < 1e-12


def test_edge_cases_no_warnings():
    X, W1, W2 = problem(5, d=5, n=3, p=5)
    W1, W2 = special_columns(W1, W2)
    W1[:, 3] = -0.5 * W1[:, 0]  # antipodal to column 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for sigma in (0.0, 1e-8, 0.7):
            for U in (W2, None):
                loss, g1, g2 = E.expected_loss_and_grad(W1, U, X, sigma, 0.1)
                # Source: zero, parallel and antipodal columns are valid weights with a finite loss.
                assert np.isfinite(loss)
                assert np.all(np.isfinite(g1))
                assert g2 is None or np.all(np.isfinite(g2))


# ----------------------------------------------------------------------------------------------
# 7. Input validation


def valid():
    X, W1, W2 = problem(6, d=4, n=2, p=3)
    return dict(W1=W1, W2=W2, X=X, sigma=0.5, lam=0.1)


BAD = {
    "X not 2-D": (dict(X=np.ones(4)), "X must be a 2-D"),
    "W1 not 2-D": (dict(W1=np.ones(4)), "W1 must be a 2-D"),
    "W1 rows": (dict(W1=np.ones((5, 3))), "W1 must have shape"),
    "W2 shape": (dict(W2=np.ones((4, 2))), "W2 must have the shape of W1"),
    "sigma negative": (dict(sigma=-0.1), "sigma must be non-negative"),
    "lam negative": (dict(lam=-1.0), "lam must be non-negative"),
    "X non-finite": (dict(X=np.full((2, 4), np.nan)), "X contains NaN"),
    "W1 non-finite": (dict(W1=np.full((4, 3), np.inf)), "W1 contains NaN"),
    "sigma non-finite": (dict(sigma=np.nan), "sigma must be finite"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_validation_errors(case):
    change, message = BAD[case]
    args = valid() | change
    for function in (E.expected_loss, E.expected_loss_and_grad, E.expected_hessian):
        # Source: each of these inputs is invalid, and the message must name it.
        with pytest.raises(ValueError, match=message):
            function(**args)
    # Source: the same arguments without the change are accepted.
    E.expected_loss(**valid())


def test_validation_hessian_size():
    X = np.ones((2, 50))
    # Source: P = 2 * 50 * 41 = 4100 exceeds the 4000 limit, 2 * 50 * 40 = 4000 does not.
    with pytest.raises(ValueError, match="P = 4100 parameters, above the limit of 4000"):
        E.expected_hessian(np.ones((50, 41)), np.ones((50, 41)), X, 0.1, 0.0)
    with pytest.raises(ValueError, match="column 0 of W1 is zero"):
        E.expected_hessian(np.zeros((50, 40)), np.ones((50, 40)), X, 0.1, 0.0)


def test_validation_elementwise():
    # Source: a standard deviation must be >= 0 and a correlation within [-1, 1].
    with pytest.raises(ValueError, match="s is a standard deviation"):
        E.relu_mean(0.0, -1.0)
    with pytest.raises(ValueError, match=r"rho must lie in \[-1, 1\]"):
        E.relu_cross_moment(0.0, 0.0, 1.5)
    with pytest.raises(ValueError, match="m contains NaN"):
        E.relu_second_moment(np.nan, 1.0)
