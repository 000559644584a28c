"""Claims of the generalization chapter (Corollary 3.3), on the mixture of ``experiments.generalization``.

Three modes in R^20 with mean cosines at most -0.4, rank-2 covariances, p = 9 units, sigma = 0.1,
lam = 1e-4, about 200 samples per mode, 4000 steps of Monte Carlo Adam. Training decides how many
units each mode gets (often not 3 each), so the formulas are evaluated at the allocated widths.
The memorizing control trains the same width on one sample per mode.
"""

import numpy as np

from ..experiments import generalization as gen
from .registry import Outcome, claim

RESULT = "Corollary 3.3"
CHAPTER = "generalization"

BLOCK_TOLERANCE = 0.1
RATE_VALUES = (100, 300, 1000, 3000)
RATE_TOLERANCE = 0.15
LOSS_RELATIVE = 0.02
LOSS_STANDARD_ERRORS = 4


@claim(
    "generalization.block-products",
    RESULT,
    CHAPTER,
    "Every trained block's product sum_j w1_j w2_j^T matches the finite-sample formula U_k diag(a) U_k^T "
    "at the width p_k training gave the mode (capped at rank S_k = 3).",
    "0.1 relative Frobenius error: Monte Carlo Adam (fresh noise at every step, learning rate decayed to 1e-4) "
    "left blocks 0.5 to 2.3 % from the formula at seeds 0 to 5 after 4000 steps, and 0.1 is four times the "
    "largest of these; a block that misses a direction of S_k is at least 0.4 off",
    "means of modes 0 and 1 moved to cosine +0.5, so their samples fire each other's units",
)
def block_products(settings, control):
    run = gen.trained(seed=settings.seed, positive=control)
    errors = gen.block_errors(run)
    return Outcome.below(errors.max(), BLOCK_TOLERANCE, errors=errors, widths=run.widths)


@claim(
    "generalization.population-rate",
    RESULT,
    CHAPTER,
    "The finite-sample block products approach the population limit (S_k - lam/rho_k)(S_k + sigma^2)^{-1} "
    "with log-log slope -1/2 in n_k.",
    "slope within 0.15 of -1/2: the error of a second-moment estimate falls like n_k^{-1/2}; the fit over "
    "four sizes with four seeds per size is itself a sample statistic, and 0.15 (30 % of the slope) still "
    "excludes a flat error",
    "the same fit against the limit with sigma in place of sigma^2",
)
def population_rate(settings, control):
    seeds = tuple(range(settings.seed, settings.seed + (8 if settings.full else 4)))
    errors = gen.population_errors(RATE_VALUES, seeds=seeds, sigma_power=1 if control else 2)
    slope = gen.loglog_slope(RATE_VALUES, errors)
    return Outcome.close(slope, -0.5, RATE_TOLERANCE, errors=errors, sizes=np.array(RATE_VALUES))


@claim(
    "generalization.test-loss",
    RESULT,
    CHAPTER,
    "The test loss on fresh samples equals sum_k rho_k [sum_{j<=p_k} e_j sigma^2/(e_j + sigma^2) + "
    "sum_{j>p_k} e_j], the bias plus variance of the linear shrinkage, at the allocated widths p_k.",
    "four standard errors of the Monte Carlo mean over 20,000 fresh samples plus 2 % for the finite-sample "
    "and training error of the blocks (their products are a few percent off the limit, which enters the "
    "loss to second order around the optimum)",
    "the same comparison against the bias-only expression sum_{j<=p_k} e_j sigma^4/(e_j + sigma^2)^2",
)
def fresh_loss(settings, control):
    run = gen.trained(seed=settings.seed)
    measured, stderr = gen.fresh_test_loss(run, n_points=50000 if settings.full else 20000)
    predicted = gen.predicted_test_loss(run.mix, run.sigma, run.widths, bias_only=control)
    tolerance = LOSS_STANDARD_ERRORS * stderr + LOSS_RELATIVE * predicted
    return Outcome.close(measured, predicted, tolerance, stderr=stderr)


COLUMN_ANGLE_RATIO = 1.0
BALANCE = 0.6
DENOISER_TOLERANCE = 0.03
MEMORIZER_CONTROL = "the same width trained on one sample per mode (n = 3 <= p), the memorization regime"


def _model(settings, control):
    """Return the generalizing run of ``settings.seed``, or for the control the memorizer of that seed."""
    return gen.memorizer(seed=settings.seed) if control else gen.trained(seed=settings.seed)


@claim(
    "generalization.columns-not-points",
    RESULT,
    CHAPTER,
    "No significant column of either layer is closer (in angle) to a training point than a typical fresh "
    "sample is: the smallest column angle to the training set is at least the median angle of a fresh "
    "sample to its nearest training point.",
    "ratio 1: a stored point makes a column's angle to the training set about 0 (Corollary 3.2), while a fresh "
    "sample's nearest training point is a few degrees away; the median over 2000 fresh samples has a "
    "relative sampling error of a few percent, far below the factor tested",
    MEMORIZER_CONTROL,
)
def columns_not_points(settings, control):
    run = _model(settings, control)
    ratio = gen.column_angle_ratio(run, n_points=5000 if settings.full else 2000)
    return Outcome.above(ratio, COLUMN_ANGLE_RATIO, column_angles=gen.column_angles(run))


@claim(
    "generalization.balanced",
    RESULT,
    CHAPTER,
    "A fresh sample of mode k activates the units of its block with comparable values: the median over "
    "fresh samples of the participation ratio (parallel units merged) divided by the number of units of "
    "the sample's mode is at least 0.6.",
    "the ratio is 1 when every unit of the block carries the same activation and 1/(1 + c^2) for "
    "activations with coefficient of variation c; 0.6 allows c up to 0.8 and lies above the 1/2 of a point "
    "stored in two parallel copies (parallel units share one direction, so they count as one active unit "
    "but as several units of the mode)",
    MEMORIZER_CONTROL,
)
def balanced(settings, control):
    run = _model(settings, control)
    ratios = gen.balance(run, n_points=5000 if settings.full else 2000)
    return Outcome.above(float(np.nanmedian(ratios)), BALANCE)


@claim(
    "generalization.denoiser-limit",
    RESULT,
    CHAPTER,
    "On fresh noisy samples the trained denoiser equals the corollary's limit L_k y (the population "
    "product of the sample's mode) to relative error 0.03.",
    "measured distances to the limit were 1.0 to 1.4 % at seeds 0 to 3, of which the finite-sample formula "
    "itself accounts for about 1 % (a second-moment estimate from 200 samples per mode); 0.03 is about twice "
    "the largest",
    MEMORIZER_CONTROL,
)
def denoiser_limit(settings, control):
    run = _model(settings, control)
    errors = gen.denoiser_errors(run, n_points=20000 if settings.full else 5000)
    return Outcome.below(errors["to_limit"], DENOISER_TOLERANCE, **errors)


CLEAN_RELATIVE = 0.1


@claim(
    "generalization.clean-error",
    RESULT,
    CHAPTER,
    "The error ||f(x) - x||^2 on fresh clean samples equals the bias-only expression "
    "sum_k rho_k [sum_{j<=p_k} e_j (1 - a_j)^2 + sum_{j>p_k} e_j], with the gains a_j of the limit at the "
    "trained lam, at the allocated widths p_k.",
    "four standard errors of the Monte Carlo mean over 20,000 fresh samples plus 10 %: the bias depends on "
    "1 - a_j, which is about sigma^2 along the mean direction, so the sampling error of the gains at 200 "
    "samples per mode moves it by several percent (the finite-sample formula's clean error was 0.6 to 6 % "
    "from the limit's at seeds 0 to 3)",
    "the same comparison for the loss on noisy inputs x + sigma eps, the quantity training minimizes",
)
def clean_error(settings, control):
    run = gen.trained(seed=settings.seed)
    n_points = 50000 if settings.full else 20000
    measured, stderr = gen.fresh_test_loss(run, n_points) if control else gen.clean_error(run, n_points)
    predicted = gen.predicted_clean_error(run.mix, run.sigma, run.lam, run.widths)
    tolerance = LOSS_STANDARD_ERRORS * stderr + CLEAN_RELATIVE * predicted
    return Outcome.close(measured, predicted, tolerance, stderr=stderr)
