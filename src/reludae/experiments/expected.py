"""Experiments of the chapter on the closed-form expected loss.

The default problem is an untied network with ``p = 10`` units on ``n = 6`` random points in
``R^50`` at noise ``sigma = 0.5``. Every column of ``W1`` and of ``W2`` contains a common
direction, so the pre-activations of different units are correlated (cosines between about
0.3 and 0.7). That makes the off-diagonal entries ``E[relu(a_j) relu(a_k)]`` of the second moment
matter, which the independent-units approximation below gets wrong.

The module also provides the references that the closed form is checked against: quadrature
and sampling of the bivariate moment, Monte Carlo estimates of the loss and its gradient, and
the small-noise limit of the loss.
"""

import math
from dataclasses import dataclass

import numpy as np
from scipy.integrate import quad
from scipy.special import erfcx, ndtr

from .. import _checks, expected, model, theory
from . import memorization

_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class Problem:
    """A random untied ReLU-DAE on random data, with correlated units."""

    n: int = 6
    d: int = 50
    p: int = 10
    sigma: float = 0.5
    lam: float = 1e-2
    scale: float = 0.5  # typical column norm of W1 and W2
    shared: float = 1.0  # weight of the direction common to all columns, against 1 for the rest
    seed: int = 0

    def arrays(self):
        """Return ``(X, W1, W2)``: points ``(n, d)`` of norm about 1 and weights ``(d, p)``."""
        rng = np.random.default_rng(self.seed)
        X = rng.standard_normal((self.n, self.d)) / np.sqrt(self.d)
        weights = []
        for _ in range(2):
            common = rng.standard_normal(self.d)
            common /= np.linalg.norm(common)
            W = self.shared * common[:, None] + rng.standard_normal((self.d, self.p)) / np.sqrt(self.d)
            weights.append(self.scale * W / np.sqrt(1.0 + self.shared**2))
        return X, weights[0], weights[1]


DEFAULT = Problem()


def column_cosines(W):
    """Return the cosines between distinct columns of ``W`` as a flat array."""
    unit = W / np.linalg.norm(W, axis=0)
    C = unit.T @ unit
    return C[~np.eye(C.shape[0], dtype=bool)]


# ----------------------------------------------------------------------------------------------
# The independent-units approximation, used only as a negative control


def _validate(W1, W2, X, sigma, lam):
    X = _checks.points(X)
    W1 = _checks.weights(W1, X.shape[1], "W1")
    if W2 is not None:
        W2 = _checks.weights(W2, X.shape[1], "W2")
        if W2.shape != W1.shape:
            raise ValueError(f"W2 must have the shape of W1, {W1.shape}, got shape {W2.shape}")
    return W1, W2, X, _checks.nonnegative(sigma, "sigma"), _checks.nonnegative(lam, "lam")


def independent_units_loss_and_grad(W1, W2, X, sigma, lam):
    """Return ``(loss, grad_W1, grad_W2)`` of the loss with the hidden units treated as independent.

    The approximation replaces each off-diagonal entry of the second moment by
    ``E[relu(a_j) relu(a_k)] ~ E[relu(a_j)] E[relu(a_k)]``, which ignores the correlation
    ``cos(w_j, w_k)`` of the pre-activations. It is exact when, for example, the columns of ``W1``
    or of ``W2`` are orthogonal, or ``sigma = 0``. It exists as a negative control for the exact loss of
    ``reludae.expected``. ``W2 = None`` means tied, and then ``grad_W2`` is ``None`` and
    ``grad_W1`` is the gradient in the single matrix. Where a pre-activation is identically 0 its
    ReLU step is taken as 1/2, as in ``expected.expected_loss_and_grad``. Raises ValueError for wrong
    shapes, non-finite entries or negative ``sigma`` or ``lam``.
    """
    W1, W2, X, sigma, lam = _validate(W1, W2, X, sigma, lam)
    U = W1 if W2 is None else W2
    n = X.shape[0]
    norms = np.linalg.norm(W1, axis=0)
    s = np.broadcast_to(sigma * norms, (n, W1.shape[1]))
    m = X @ W1  # (n, p)
    mean = expected.relu_mean(m, s)
    second = expected.relu_second_moment(m, s)
    live = s > 0
    step = np.where(m > 0, np.inf, np.where(m < 0, -np.inf, 0.0))  # the limit of m / s as s -> 0
    t = np.where(live, m / np.where(live, s, 1.0), step)
    cdf = ndtr(t)  # 1/2 where m = s = 0
    pdf = np.where(live, np.exp(-0.5 * np.where(live, t, 0.0) ** 2) / _SQRT_2PI, 0.0)
    B = U.T @ U
    c = X @ U  # (n, p), c_j = (W2^T x)_j
    b = np.diag(B)
    # Per point, loss = M1^T B M1 + sum_j B_jj (S_j - M1_j^2) - 2 c^T M1 + ||x||^2.
    data = np.einsum("ij,jk,ik->i", mean, B, mean) + (second - mean**2) @ b - 2.0 * np.sum(c * mean, axis=1)
    loss = float(np.mean(data + np.sum(X * X, axis=1)) + lam * (np.sum(W1 * W1) + np.sum(U * U)))
    # Chain rule per point through dM1/dm = Phi, dM1/ds = phi, dS/dm = 2 M1 and dS/ds = 2 s Phi.
    d_mean = 2.0 * (mean @ B - b * mean - c)
    d_m = d_mean * cdf + 2.0 * b * mean
    d_s = d_mean * pdf + 2.0 * b * s * cdf
    direction = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    grad_W1 = (X.T @ d_m + sigma * W1 * direction * d_s.sum(axis=0)) / n + 2.0 * lam * W1
    # Q is the approximate E[h h^T] summed over points, with M1 M1^T off the diagonal and S on it.
    Q = mean.T @ mean + np.diag(np.sum(second - mean**2, axis=0))
    grad_U = 2.0 * (U @ Q - X.T @ mean) / n + 2.0 * lam * U
    if W2 is None:
        return loss, grad_W1 + grad_U, None
    return loss, grad_W1, grad_U


def independent_units_loss(W1, W2, X, sigma, lam):
    """Return the loss of ``independent_units_loss_and_grad`` alone, as a float."""
    return independent_units_loss_and_grad(W1, W2, X, sigma, lam)[0]


# ----------------------------------------------------------------------------------------------
# The univariate moments


UNIVARIATE_T = np.linspace(-37.0, 30.0, 269)  # standardized means m / s; Phi(-37) is about 6e-300


def relu_moments_mpmath(m, s, digits=50):
    """Return ``E[relu(m + s Z)]`` and ``E[relu(m + s Z)^2]`` from the closed forms in ``digits``-digit arithmetic.

    ``m Phi(t) + s phi(t)`` and ``(m^2 + s^2) Phi(t) + m s phi(t)`` with ``t = m / s``, evaluated
    by mpmath and rounded to float64 at the end. Far in the lower tail the terms cancel by a factor
    of about ``t^4``, so at ``|t| <= 37`` some 44 of the 50 digits remain. Needs ``s > 0``.
    """
    import mpmath

    m, s = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64))
    if np.any(s <= 0):
        raise ValueError("the closed forms divide by s; pass s > 0")
    first = np.empty(m.shape)
    second = np.empty(m.shape)
    with mpmath.workdps(digits):
        for index in np.ndindex(m.shape):
            mean, sd = mpmath.mpf(float(m[index])), mpmath.mpf(float(s[index]))
            cdf, pdf = mpmath.ncdf(mean / sd), mpmath.npdf(mean / sd)
            first[index] = float(mean * cdf + sd * pdf)
            second[index] = float((mean**2 + sd**2) * cdf + mean * sd * pdf)
    return first, second


def relu_moments_float64(m, s):
    """Return the same closed forms as ``relu_moments_mpmath``, evaluated directly in float64.

    This is the naive evaluation, which loses relative accuracy far in the lower tail. It serves
    as a negative control for ``expected.relu_mean`` and ``expected.relu_second_moment``.
    """
    m, s = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64))
    t = m / s
    cdf, pdf = ndtr(t), np.exp(-0.5 * t * t) / _SQRT_2PI
    return m * cdf + s * pdf, (m * m + s * s) * cdf + m * s * pdf


def univariate_error(candidate, t=UNIVARIATE_T, s=0.7):
    """Return the largest relative error of ``candidate(m, s) -> (mean, second)`` against 50 digits.

    The moments are taken at ``m = t s`` for every standardized mean in ``t``.
    """
    m = np.asarray(t, dtype=np.float64) * s
    reference = relu_moments_mpmath(m, s)
    values = candidate(m, s)
    return float(max(np.max(relative_error(v, r)) for v, r in zip(values, reference)))


# ----------------------------------------------------------------------------------------------
# The bivariate moment: the lemma's formula, quadrature and sampling


def _sqrt_one_minus_square(rho):
    """Return ``sqrt(1 - rho^2)`` as ``sqrt((1 - |rho|)(1 + |rho|))``, exact in ``1 - |rho|`` near 1."""
    a = np.abs(rho)
    return np.sqrt((1.0 - a) * (1.0 + a))


def cross_moment_formula(h, k, rho):
    """Evaluate the closed form of ``E[(U + h)_+ (V + k)_+]`` term by term, as the lemma writes it.

    ``(h k + rho) Phi2 + h phi(k) Phi(A) + k phi(h) Phi(B) + r phi(h) phi(B)`` with
    ``r = sqrt(1 - rho^2)``, ``A = (h - rho k) / r`` and ``B = (k - rho h) / r``; ``Phi2`` comes from
    ``expected.bivariate_normal_cdf``. Needs ``|rho| < 1``. Far in the lower tails, and near
    ``rho = -1``, the terms cancel, which is why ``expected.relu_cross_moment`` does not evaluate
    it this way.
    """
    h, k, rho = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in (h, k, rho)))
    if np.any(np.abs(rho) >= 1):
        raise ValueError("the closed form divides by sqrt(1 - rho^2); pass |rho| < 1")
    r = _sqrt_one_minus_square(rho)
    A = (h - rho * k) / r
    B = (k - rho * h) / r
    pdf = lambda z: np.exp(-0.5 * z * z) / _SQRT_2PI  # noqa: E731
    cdf2 = expected.bivariate_normal_cdf(h, k, rho)
    return (h * k + rho) * cdf2 + h * pdf(k) * ndtr(A) + k * pdf(h) * ndtr(B) + r * pdf(h) * pdf(B)


def _conditional_relu_mean(mean, sd):
    """Return ``E[(mean + sd Z)_+]`` for scalars with ``sd > 0``, accurate far in the lower tail.

    With ``t = mean / sd`` it is ``sd phi(t) (1 + t R(t))``, where ``R(t) = Phi(t) / phi(t)`` is
    ``sqrt(pi / 2) erfcx(-t / sqrt(2))``. For ``t < 0`` the bracket loses about ``t^2`` ulps, and
    ``phi(t)`` underflows to 0 below ``t = -38.6``, so every nonzero value is accurate to about 2e-13.
    """
    t = mean / sd
    if t >= 0:
        return mean * float(ndtr(t)) + sd * math.exp(-0.5 * t * t) / _SQRT_2PI
    ratio = math.sqrt(math.pi / 2.0) * float(erfcx(-t / math.sqrt(2.0)))
    return sd * math.exp(-0.5 * t * t) / _SQRT_2PI * (1.0 + t * ratio)


def cross_moment_quadrature(h, k, rho):
    """Return ``E[(U + h)_+ (V + k)_+]`` for scalars by adaptive quadrature, for ``|rho| < 1``.

    Conditioning on ``U = u`` gives ``V | u ~ N(rho u, r^2)``, so the moment is the one-dimensional
    integral of ``(u + h) E[(V + k)_+ | u] phi(u)`` over ``u > -h``, with the inner mean in closed
    form. The range is cut where the integrand is below ``1e-40`` of its peak, and scipy's
    ``quad`` (relative tolerance 1e-13) runs on pieces split at the peak and around the
    conditional kink ``u = -k / rho``, whose width is ``r / |rho|``.
    """
    h, k, rho = float(h), float(k), float(rho)
    if abs(rho) >= 1:
        raise ValueError("quadrature of the conditional form needs |rho| < 1")
    r = float(_sqrt_one_minus_square(rho))

    def integrand(u):
        return (u + h) * _conditional_relu_mean(k + rho * u, r) * math.exp(-0.5 * u * u) / _SQRT_2PI

    # A scan finds where the integrand lives. Its steps are geometric from -h, so a narrow
    # feature close to -h is sampled finely, and the scan reaches 60 past -h, beyond any mass.
    grid = -h + np.concatenate([[0.0], np.geomspace(1e-8, 60.0, 1500)])
    values = np.array([integrand(u) for u in grid])
    peak = values.max()
    if peak == 0:
        return 0.0
    alive = np.flatnonzero(values > 1e-40 * peak)
    lower, upper = grid[max(alive[0] - 1, 0)], grid[min(alive[-1] + 1, grid.size - 1)]
    cuts = [grid[np.argmax(values)]]
    if rho != 0:
        cuts += [-k / rho + c * r / abs(rho) for c in (-8.0, -1.0, 0.0, 1.0, 8.0)]
    edges = [lower, *sorted(x for x in cuts if lower < x < upper), upper]
    return sum(quad(integrand, a, b, epsabs=0.0, epsrel=1e-13, limit=500)[0] for a, b in zip(edges[:-1], edges[1:]))


# Far tails reach nonzero values near 1e-282, and correlations come within 1e-6 of +-1.
QUADRATURE_SHIFTS = (-10.0, -4.0, -1.0, 0.0, 1.0, 4.0, 10.0)
QUADRATURE_RHOS = (-0.999999, -0.99, -0.7, -0.3, 0.0, 0.3, 0.7, 0.99, 0.999999)
SAMPLING_SHIFTS = (-2.0, -1.0, 0.0, 1.0, 2.0)
SAMPLING_RHOS = (-0.999, -0.9, -0.5, 0.0, 0.5, 0.9, 0.999)


def grid(shifts, rhos):
    """Return flat arrays ``(h, k, rho)`` over the product of ``shifts x shifts x rhos``."""
    H, K, R = np.meshgrid(shifts, shifts, rhos, indexing="ij")
    return H.ravel(), K.ravel(), R.ravel()


@dataclass(frozen=True)
class QuadratureComparison:
    """Relative errors of candidate evaluations of the bivariate moment against quadrature."""

    h: np.ndarray
    k: np.ndarray
    rho: np.ndarray
    reference: np.ndarray  # quadrature values
    package_error: np.ndarray  # |relu_cross_moment / reference - 1|
    formula_error: np.ndarray  # |cross_moment_formula / reference - 1|


def relative_error(value, reference):
    """Return ``|value - reference| / reference`` elementwise.

    Where the reference is 0 the error is 0 if the value is 0 too, and infinite otherwise.
    """
    value, reference = np.broadcast_arrays(np.asarray(value, float), np.asarray(reference, float))
    gap = np.abs(value - reference)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(reference != 0, gap / np.abs(reference), np.where(gap == 0, 0.0, np.inf))


def quadrature_comparison(shifts=QUADRATURE_SHIFTS, rhos=QUADRATURE_RHOS):
    """Compare ``relu_cross_moment`` and the lemma's formula with quadrature over the grid."""
    h, k, rho = grid(shifts, rhos)
    reference = np.array([cross_moment_quadrature(*point) for point in zip(h, k, rho)])
    with np.errstate(all="ignore"):
        formula = cross_moment_formula(h, k, rho)
    return QuadratureComparison(
        h, k, rho, reference,
        relative_error(expected.relu_cross_moment(h, k, rho), reference),
        relative_error(formula, reference),
    )


@dataclass(frozen=True)
class SamplingComparison:
    """Monte Carlo estimates of the bivariate moment and their standard scores against a candidate."""

    h: np.ndarray
    k: np.ndarray
    rho: np.ndarray
    estimate: np.ndarray
    stderr: np.ndarray
    positive: np.ndarray  # number of draws with a positive product
    candidate: np.ndarray
    scores: np.ndarray  # (candidate - estimate) / stderr; NaN where fewer than MIN_POSITIVE draws count

    @property
    def max_score(self):
        """Largest ``|score|`` over the grid points that sampling resolves."""
        return float(np.nanmax(np.abs(self.scores)))


# A standard error from fewer positive products than this is itself too noisy to score against.
MIN_POSITIVE = 100


def cross_moment_sampling(candidate, shifts=SAMPLING_SHIFTS, rhos=SAMPLING_RHOS, draws=200_000, seed=0):
    """Compare ``candidate(h, k, rho)`` with Monte Carlo estimates of ``E[(U + h)_+ (V + k)_+]``.

    One sample of ``draws`` pairs per correlation serves every ``(h, k)``, with
    ``V = rho U + sqrt(1 - rho^2) W`` for independent standard normal ``U`` and ``W``. Grid points
    where fewer than ``MIN_POSITIVE`` draws give a positive product get a NaN score, because their
    estimate and standard error say nothing.
    """
    draws = _checks.count(draws, "draws", minimum=2)
    rng = np.random.default_rng(seed)
    h, k, rho = grid(shifts, rhos)
    estimate = np.empty(h.size)
    stderr = np.empty(h.size)
    positive = np.empty(h.size, dtype=int)
    for value in np.unique(rho):
        U = rng.standard_normal(draws)
        V = value * U + _sqrt_one_minus_square(value) * rng.standard_normal(draws)
        for index in np.flatnonzero(rho == value):
            product = np.maximum(U + h[index], 0.0) * np.maximum(V + k[index], 0.0)
            estimate[index] = product.mean()
            stderr[index] = product.std(ddof=1) / np.sqrt(draws)
            positive[index] = np.count_nonzero(product)
    candidate = np.asarray(candidate(h, k, rho), dtype=np.float64)
    resolved = positive >= MIN_POSITIVE
    scores = np.full(h.size, np.nan)
    scores[resolved] = (candidate[resolved] - estimate[resolved]) / stderr[resolved]
    return SamplingComparison(h, k, rho, estimate, stderr, positive, candidate, scores)


def independent_cross_moment(h, k, rho):
    """Return ``E[(U + h)_+] E[(V + k)_+]``, the bivariate moment with the correlation ignored."""
    return expected.relu_mean(h, 1.0) * expected.relu_mean(k, 1.0) + 0.0 * np.asarray(rho)


# ----------------------------------------------------------------------------------------------
# Monte Carlo against the exact loss and gradient


def monte_carlo_gradient(W1, W2, X, sigma, lam, draws, seed=0, chunk=5_000):
    """Estimate ``(grad_W1, grad_W2)`` of the loss with ``draws`` noise draws per point.

    The draws are taken in chunks of ``chunk``, and each chunk's estimate comes from
    ``experiments.memorization.monte_carlo_gradient`` with its own seed. The average of the chunk
    estimates, weighted by their sizes, is the estimate over all draws.
    """
    draws = _checks.count(draws, "draws")
    chunk = _checks.count(chunk, "chunk")
    sizes = [chunk] * (draws // chunk) + ([draws % chunk] if draws % chunk else [])
    g1 = np.zeros_like(np.asarray(W1, dtype=np.float64))
    g2 = np.zeros_like(g1)
    for index, size in enumerate(sizes):
        part1, part2 = memorization.monte_carlo_gradient(W1, W2, X, sigma, lam, size, seed=seed * 100_003 + index)
        g1 += part1 * size / draws
        g2 += part2 * size / draws
    return g1, g2


@dataclass(frozen=True)
class LossConvergence:
    """Monte Carlo loss estimates at increasing draws, with the exact value."""

    draws: np.ndarray
    estimates: np.ndarray
    stderrs: np.ndarray
    exact: float


def loss_convergence(problem=DEFAULT, draws=(100, 1_000, 10_000, 100_000), seed=0):
    """Estimate the loss of ``problem`` by Monte Carlo at each draw count, with independent seeds."""
    X, W1, W2 = problem.arrays()
    exact = expected.expected_loss(W1, W2, X, problem.sigma, problem.lam)
    runs = [model.monte_carlo_loss(W1, W2, X, problem.sigma, problem.lam, draws=int(m), seed=seed * 1_000 + j)
            for j, m in enumerate(draws)]
    return LossConvergence(np.asarray(draws), np.array([r[0] for r in runs]), np.array([r[1] for r in runs]), exact)


@dataclass(frozen=True)
class GradientError:
    """Error of Monte Carlo gradients against a reference gradient, by number of draws."""

    draws: np.ndarray
    errors: np.ndarray  # root mean square over repeats of ||g_MC - g_reference||_F
    reference_norm: float  # ||g_reference||_F
    slope: float  # least-squares slope of log error on log draws, NaN for one draw count


@dataclass(frozen=True)
class GradientSamples:
    """Monte Carlo gradient estimates, ``repeats`` independent ones at each draw count."""

    draws: np.ndarray
    gradients: np.ndarray  # (len(draws), repeats, 2, d, p): estimates of (grad_W1, grad_W2)

    def error(self, reference):
        """Return the ``GradientError`` of these estimates against ``reference = (g1, g2)``."""
        target = np.stack([np.asarray(g, dtype=np.float64) for g in reference])
        squares = np.sum((self.gradients - target) ** 2, axis=(2, 3, 4))  # (draw counts, repeats)
        errors = np.sqrt(squares.mean(axis=1))
        slope = float(np.polyfit(np.log(self.draws), np.log(errors), 1)[0]) if self.draws.size > 1 else float("nan")
        return GradientError(self.draws, errors, float(np.linalg.norm(target)), slope)


def monte_carlo_gradients(W1, W2, X, sigma, lam, draws=(100, 1_000, 10_000, 100_000), repeats=2, seed=0):
    """Draw ``repeats`` independent Monte Carlo gradients at each draw count; returns ``GradientSamples``.

    ``W2 = None`` means tied, and then the second block of every estimate is zero, as the second
    block of a tied reference must be.
    """
    repeats = _checks.count(repeats, "repeats")
    gradients = [
        [monte_carlo_gradient(W1, W2, X, sigma, lam, int(m), seed=seed * 1_000 + 10 * j + r) for r in range(repeats)]
        for j, m in enumerate(draws)
    ]
    return GradientSamples(np.asarray(draws), np.array(gradients))


def exact_gradient(W1, W2, X, sigma, lam):
    """Return ``(grad_W1, grad_W2)`` of ``expected.expected_loss``, with a zero second block when tied."""
    _, g1, g2 = expected.expected_loss_and_grad(W1, W2, X, sigma, lam)
    return g1, np.zeros_like(g1) if g2 is None else g2


# ----------------------------------------------------------------------------------------------
# Finite differences and the small-noise limit


@dataclass(frozen=True)
class DirectionalCheck:
    """Directional derivatives of a loss by central differences against a candidate gradient."""

    finite_differences: np.ndarray  # (L(theta + h v) - L(theta - h v)) / 2h per direction
    candidate: np.ndarray  # <grad, v> per direction
    gradient_norm: float
    step: float

    @property
    def error(self):
        """Largest ``|fd - <grad, v>|`` over the unit directions, relative to ``||grad||``."""
        return float(np.max(np.abs(self.finite_differences - self.candidate)) / self.gradient_norm)


def directional_check(loss, gradient, W1, W2, directions=10, step=1e-5, seed=0):
    """Compare ``gradient(W1, W2) -> (g1, g2)`` with central differences of ``loss(W1, W2)``.

    The directions are the normalized gradient and ``directions`` random unit vectors in the
    space of ``(W1, W2)``.
    """
    g1, g2 = gradient(W1, W2)
    g = np.concatenate([g1.ravel(), g2.ravel()])
    rng = np.random.default_rng(seed)
    V = rng.standard_normal((directions, g.size))
    V = np.vstack([g / np.linalg.norm(g), V / np.linalg.norm(V, axis=1, keepdims=True)])
    theta = np.concatenate([W1.ravel(), W2.ravel()])
    size = W1.size

    def at(x):
        return loss(x[:size].reshape(W1.shape), x[size:].reshape(W2.shape))

    fd = np.array([(at(theta + step * v) - at(theta - step * v)) / (2.0 * step) for v in V])
    return DirectionalCheck(fd, V @ g, float(np.linalg.norm(g)), step)


def jacobian_energy(W1, W2, X):
    """Return ``(1/n) sum_i ||J_f(x_i)||_F^2`` with ``J_f(x) = W2 diag(1(W1^T x > 0)) W1^T``."""
    active = (X @ W1 > 0).astype(np.float64)  # (n, p)
    G1 = W1.T @ W1
    G2 = W2.T @ W2
    # ||W2 D W1^T||_F^2 = tr(D W2^T W2 D W1^T W1) = sum_jk D_j D_k G2_jk G1_jk
    return float(np.mean(np.einsum("ij,jk,ik->i", active, G1 * G2, active)))


def pre_activation_margin(W1, X):
    """Return ``min |w_j^T x_i| / ||w_j||``, the distance of the nearest point to a unit's kink."""
    return float(np.min(np.abs(X @ W1) / np.linalg.norm(W1, axis=0)))


def noise_coefficients(W1, W2, X, sigmas, lam=0.0):
    """Return ``(L(sigma) - L(0)) / sigma^2`` of the exact loss for each ``sigma``."""
    base = expected.expected_loss(W1, W2, X, 0.0, lam)
    return np.array([(expected.expected_loss(W1, W2, X, s, lam) - base) / s**2 for s in sigmas])


@dataclass(frozen=True)
class MemorizerResidual:
    """How far the closed-form memorizer is from stationary, by noise level, from the exact loss."""

    sigmas: np.ndarray
    gradient_norms: np.ndarray  # ||grad L|| at (W_mem, W_mem), both layers
    loss_gaps: np.ndarray  # exact loss minus the corollary's value theory.memorization_loss
    firing: np.ndarray  # largest probability that a unit fires on a noisy copy of another point


def memorizer_residuals(sigmas=(0.05, 0.06, 0.075, 0.1, 0.125, 0.15, 0.2, 0.25, 0.3), problem=memorization.DEFAULT):
    """Evaluate the exact gradient and loss at the memorizer of ``problem`` for each noise level.

    The memorizer ``W_mem(sigma)`` of ``theory.memorization_weights`` is rebuilt at every
    ``sigma``, with the width and penalty of ``problem``; both layers equal ``W_mem``.
    """
    X = problem.points()
    off = ~np.eye(X.shape[0], dtype=bool)
    norms, gaps, firing = [], [], []
    for sigma in sigmas:
        W = theory.memorization_weights(X, sigma, problem.lam, width=problem.width)
        loss, g1, g2 = expected.expected_loss_and_grad(W, W, X, sigma, problem.lam)
        norms.append(np.sqrt(np.sum(g1**2) + np.sum(g2**2)))
        gaps.append(loss - theory.memorization_loss(X, sigma, problem.lam))
        firing.append(memorization.firing_probabilities(X, sigma)[off].max())
    return MemorizerResidual(np.asarray(sigmas, dtype=np.float64), np.array(norms), np.array(gaps), np.array(firing))
