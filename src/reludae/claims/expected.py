"""Claims of the chapter on the closed-form expected loss (``reludae.expected``).

The loss, gradient and small-noise claims use the default problem of ``experiments.expected``
(n = 6 points in R^50, p = 10 correlated units, sigma = 0.5, lam = 1e-2) with its data and
weights drawn from ``settings.seed``; the sampling claims draw their noise from it too. The
quadrature and univariate claims compare against deterministic references, so the seed does not
enter them. The full mode changes nothing, because every claim already runs at its final size.
"""

from dataclasses import replace
from functools import lru_cache

import numpy as np

from .. import expected, model, theory
from ..experiments import expected as study
from ..experiments import memorization
from .registry import Outcome, claim

RESULT = "Exact expectation"
CHAPTER = "expected"


def _problem(settings):
    return replace(study.DEFAULT, seed=settings.seed)


@lru_cache(maxsize=8)
def _gradient_samples(problem, seed):
    X, W1, W2 = problem.arrays()
    return study.monte_carlo_gradients(W1, W2, X, problem.sigma, problem.lam, seed=seed)


@claim(
    id="expected.monte-carlo-rate",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "The error of Monte Carlo gradients against the exact gradient falls like draws^(-1/2) "
        "from 1e2 to 1e5 draws per point, so the exact gradient is what they estimate."
    ),
    tolerance_source=(
        "slope of log error on log draws within 0.1 of -1/2; each error is the root mean square "
        "of 2 estimates of a norm over 1,000 parameters, and measured slopes scatter by about 0.03"
    ),
    control_setting="the same estimates measured against the gradient of the independent-units approximation",
)
def monte_carlo_rate(settings, control):
    problem = _problem(settings)
    X, W1, W2 = problem.arrays()
    if control:
        reference = study.independent_units_loss_and_grad(W1, W2, X, problem.sigma, problem.lam)[1:]
    else:
        reference = study.exact_gradient(W1, W2, X, problem.sigma, problem.lam)
    curve = _gradient_samples(problem, settings.seed).error(reference)
    return Outcome.close(curve.slope, -0.5, 0.1, curve=curve)


@claim(
    id="expected.univariate-moments",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "relu_mean and relu_second_moment agree with the closed forms m Phi(t) + s phi(t) and "
        "(m^2 + s^2) Phi(t) + m s phi(t), evaluated with 50 digits, to 1e-12 relative error for "
        "t = m / s in [-37, 30]."
    ),
    tolerance_source=(
        "1e-12 relative: the reference is exact to float64 rounding, and a correct float64 "
        "evaluation loses at most a few hundred ulps (about 1e-14)"
    ),
    control_setting="the same closed forms evaluated directly in float64, which cancel far in the lower tail",
)
def univariate_moments(settings, control):
    if control:
        candidate = study.relu_moments_float64
    else:
        def candidate(m, s):
            return expected.relu_mean(m, s), expected.relu_second_moment(m, s)
    return Outcome.below(study.univariate_error(candidate), 1e-12)


@lru_cache(maxsize=1)
def _quadrature():
    return study.quadrature_comparison()


@claim(
    id="expected.bivariate-quadrature",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "relu_cross_moment agrees with one-dimensional quadrature of the conditional form to 1e-10 "
        "relative error on a grid of shifts in [-10, 10] and correlations within 1e-6 of +-1."
    ),
    tolerance_source=(
        "1e-10 relative: quad runs at relative tolerance 1e-13 and its integrand loses at most "
        "about t^2 ulps (4e-13 at t = -60)"
    ),
    control_setting="the lemma's closed form evaluated term by term, which cancels in the tails and near rho = -1",
)
def bivariate_quadrature(settings, control):
    comparison = _quadrature()
    errors = comparison.formula_error if control else comparison.package_error
    return Outcome.below(np.max(errors), 1e-10, comparison=comparison)


@claim(
    id="expected.bivariate-monte-carlo",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "The lemma's closed form for E[(U + h)_+ (V + k)_+] lies within 4.5 standard errors of a "
        "2e5-draw Monte Carlo estimate at every resolved grid point."
    ),
    tolerance_source=(
        "4.5 standard errors for the largest of at most 175 standard scores: by a union bound a "
        "correct formula fails with probability below 175 * 6.8e-6 = 1.2e-3; points with fewer "
        "than 100 positive products are not scored"
    ),
    control_setting="the correlation ignored, E[(U + h)_+] E[(V + k)_+]",
)
def bivariate_monte_carlo(settings, control):
    candidate = study.independent_cross_moment if control else study.cross_moment_formula
    comparison = study.cross_moment_sampling(candidate, seed=settings.seed)
    return Outcome.below(comparison.max_score, 4.5, comparison=comparison)


LOSS_DRAWS = 200_000


@lru_cache(maxsize=8)
def _monte_carlo_loss(problem, draws, seed):
    X, W1, W2 = problem.arrays()
    return model.monte_carlo_loss(W1, W2, X, problem.sigma, problem.lam, draws=draws, seed=seed)


@claim(
    id="expected.matches-monte-carlo",
    result=RESULT,
    chapter=CHAPTER,
    statement="The exact expected loss lies within 4 standard errors of a Monte Carlo estimate with 2e5 draws per point.",
    tolerance_source=(
        "4 standard errors of the Monte Carlo mean: a correct value falls outside with "
        "probability 6e-5 under the normal approximation"
    ),
    control_setting="the independent-units approximation E[relu(a_j) relu(a_k)] = E[relu(a_j)] E[relu(a_k)]",
)
def matches_monte_carlo(settings, control):
    problem = _problem(settings)
    X, W1, W2 = problem.arrays()
    loss = study.independent_units_loss if control else expected.expected_loss
    value = loss(W1, W2, X, problem.sigma, problem.lam)
    estimate, stderr = _monte_carlo_loss(problem, LOSS_DRAWS, settings.seed)
    return Outcome.below(abs(value - estimate) / stderr, 4.0, value=value, estimate=estimate, stderr=stderr)


FD_STEP = 1e-5


@claim(
    id="expected.gradient-finite-differences",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "The exact gradient agrees with central differences of the exact loss along the gradient "
        "and 10 random unit directions, to 1e-6 of the gradient norm."
    ),
    tolerance_source=(
        "central differences with step 1e-5 err by h^2 |L'''| / 6 + eps |L| / h, about 1e-11 here; "
        "1e-6 leaves room for third derivatives up to 6e4 times the gradient norm"
    ),
    control_setting="the gradient of the independent-units approximation, against the same differences of the exact loss",
)
def gradient_finite_differences(settings, control):
    problem = _problem(settings)
    X, W1, W2 = problem.arrays()
    sigma, lam = problem.sigma, problem.lam
    source = study.independent_units_loss_and_grad if control else expected.expected_loss_and_grad

    def gradient(A, B):
        return source(A, B, X, sigma, lam)[1:]

    def loss(A, B):
        return expected.expected_loss(A, B, X, sigma, lam)

    check = study.directional_check(loss, gradient, W1, W2, step=FD_STEP, seed=settings.seed)
    return Outcome.below(check.error, 1e-6, check=check)


# Every pre-activation sits at least this many noise standard deviations from its kink.
SMALL_NOISE_MARGIN = 10.0


@claim(
    id="expected.small-noise",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "For small sigma, (L(sigma) - L(0)) / sigma^2 equals the mean squared Frobenius norm of "
        "the Jacobian of f at the data, to 1e-6 relative error, at the sigma that puts every "
        "pre-activation 10 standard deviations from its kink."
    ),
    tolerance_source=(
        "1e-6 relative: a unit switches with probability below Phi(-10) = 8e-24, and rounding "
        "in L(sigma) - L(0) costs about eps |L| / (sigma^2 |J|^2), at most 4e-7 for seeds 0 to 4"
    ),
    control_setting="sigma = 0.5, the problem's noise level, where units switch",
)
def small_noise(settings, control):
    problem = _problem(settings)
    X, W1, W2 = problem.arrays()
    margin = study.pre_activation_margin(W1, X)
    sigma = problem.sigma if control else margin / SMALL_NOISE_MARGIN
    (coefficient,) = study.noise_coefficients(W1, W2, X, [sigma])
    energy = study.jacobian_energy(W1, W2, X)
    deviation = abs(coefficient / energy - 1.0)
    return Outcome.below(deviation, 1e-6, sigma=sigma, coefficient=coefficient, energy=energy)


MEMORIZER_DRAWS = 30_000


@claim(
    id="expected.memorizer-below-floor",
    result="Corollary 3.2",
    chapter=CHAPTER,
    statement=(
        "At the closed-form memorizer of the memorization chapter the exact gradient norm lies "
        "below the Monte Carlo noise floor at 3e4 draws, the resolution of that chapter's gradient test."
    ),
    tolerance_source=(
        "the floor is measured: the root mean square of ||g_MC - g_exact|| over 3 estimates "
        "with 3e4 draws per point at the same weights"
    ),
    control_setting="the memorizer plus a 10 % random perturbation, as in the memorization chapter's control",
)
def memorizer_below_floor(settings, control):
    problem = memorization.DEFAULT
    X = problem.points()
    W = theory.memorization_weights(X, problem.sigma, problem.lam, width=problem.width)
    if control:
        W = memorization.perturbed(W, 0.1, seed=settings.seed)
    samples = study.monte_carlo_gradients(
        W, W, X, problem.sigma, problem.lam, draws=(MEMORIZER_DRAWS,), repeats=3, seed=settings.seed
    )
    floor = samples.error(study.exact_gradient(W, W, X, problem.sigma, problem.lam))
    return Outcome.below(floor.reference_norm, floor.errors[0], floor=floor)
