"""Claims of the denoisers chapter: sampling with ``f_emp`` memorizes, sampling with ``f_gt`` generalizes.

Both claims use one toy problem, a three-mode Gaussian mixture in the plane with ``N_TRAIN``
training points drawn from it, and one sampler setting. The chapter imports ``toy_problem``
and ``SAMPLER`` and draws its figures from the arrays in each outcome's ``details``.
"""

import numpy as np
from scipy.stats import chi2

from .. import data, denoisers, sampling
from .registry import Outcome, claim

# Three modes at norm 2 with pairwise negative cosines, isotropic covariance 0.18 I (a sample
# lies about 0.3 * 2 = 0.6 from its mode's mean), unequal weights.
MIXTURE = dict(n_modes=3, d=2, rank=2, mean_norm=2.0, spread=0.3, weights=(0.5, 0.3, 0.2))
N_TRAIN = 20
# sigma_max = 80 is at least 20 times the distance between two mode means, so the start
# sigma_max z is close to the noised data distribution. 100 geometric steps reach sigma_min.
SAMPLER = dict(sigma_max=80.0, sigma_min=1e-3, steps=100)
# Family-wise error level of the memorization tolerance, over all samples of one run.
MEMORIZATION_ALPHA = 1e-3
# Factor on the exact-flow tolerance (memorization claim docstring explains why it is needed).
DISCRETIZATION_FACTOR = 2.0
TEST_LEVEL = 0.01
PERMUTATIONS = 499
# The denoisers toy_samples can sample with.
DENOISERS = ("empirical", "mixture", "gaussian")

# Each random step gets its own stream, seeded by (Settings.seed, role).
_MIXTURE, _TRAIN, _NOISE, _FRESH, _PERMUTATIONS = range(5)


def _rng(seed, role):
    return np.random.default_rng([seed, role])


def toy_problem(seed=0):
    """Return ``(mixture, X)``: the chapter's Gaussian mixture and ``N_TRAIN`` training points.

    The claims call ``toy_problem(settings.seed)``, so the chapter gets the same data by
    passing the same seed.
    """
    mixture = data.low_rank_mixture(seed=_rng(seed, _MIXTURE), **MIXTURE)
    X, _ = mixture.sample(N_TRAIN, seed=_rng(seed, _TRAIN))
    return mixture, X


def toy_samples(seed, denoiser, n_samples):
    """Sample the toy problem from noise; returns ``(samples (n_samples, 2), mixture, X)``.

    ``denoiser`` is ``"empirical"`` (``f_emp`` of the training points ``X``), ``"mixture"``
    (``f_gt`` of the mixture) or ``"gaussian"`` (``f_gt`` of the moment-matched Gaussian). The
    sampler noise depends on ``seed`` only, so all three start from the same noise.
    """
    mixture, X = toy_problem(seed)
    if denoiser == "empirical":
        denoise = denoisers.empirical_denoiser_for(X)
    elif denoiser == "mixture":
        denoise = denoisers.mixture_denoiser_for(mixture)
    elif denoiser == "gaussian":
        denoise = denoisers.mixture_denoiser_for(denoisers.moment_matched_gaussian(mixture))
    else:
        raise ValueError(f"denoiser must be one of {DENOISERS}, got {denoiser!r}")
    samples = sampling.sample_from_noise(denoise, n_samples, mixture.dim, seed=_rng(seed, _NOISE), **SAMPLER)
    return samples, mixture, X


def energy_test_against_fresh(seed, denoiser, n_samples):
    """Run the energy test of ``toy_samples(seed, denoiser, n_samples)`` against as many fresh mixture draws.

    Returns ``(TwoSampleTest, samples, fresh)``; the permutations use ``PERMUTATIONS``
    relabellings.
    """
    samples, mixture, _ = toy_samples(seed, denoiser, n_samples)
    fresh, _ = mixture.sample(n_samples, seed=_rng(seed, _FRESH))
    test = sampling.energy_test(samples, fresh, permutations=PERMUTATIONS, seed=_rng(seed, _PERMUTATIONS))
    return test, samples, fresh


def memorization_tolerance(n_samples, dim, sigma_min=SAMPLER["sigma_min"]):
    """Return the largest distance to a training point allowed after sampling with ``f_emp``.

    The exact probability flow of the empirical distribution ends at ``sigma_min`` with a
    sample ``x_i + sigma_min z``, ``z ~ N(0, I_dim)``, so its distance to the nearest training
    point is at most ``sigma_min ||z||``. A union bound over ``n_samples`` samples gives
    ``sigma_min r`` with ``P(chi^2_dim > r^2) = MEMORIZATION_ALPHA / n_samples``; this is
    multiplied by ``DISCRETIZATION_FACTOR`` for the first-order steps.
    """
    radius = np.sqrt(chi2.isf(MEMORIZATION_ALPHA / n_samples, dim))
    return DISCRETIZATION_FACTOR * sigma_min * radius


@claim(
    id="denoisers.femp-memorizes",
    result="Empirical denoiser",
    chapter="denoisers",
    statement=(
        f"sampling from noise with the empirical denoiser of {N_TRAIN} training points ends every "
        "sample within a few sigma_min of a training point"
    ),
    tolerance_source=(
        "exact flow ends at x_i + sigma_min z; chi-square quantile of ||z|| with a union bound "
        "over the samples at level 1e-3, doubled for the first-order steps"
    ),
    control_setting="the same noise and sampler with the mixture's posterior mean f_gt",
)
def femp_memorizes(settings, control):
    """Measure the largest distance from a final sample to its nearest training point.

    Once a sample's posterior sits on one training point ``x_i``, each step shrinks ``x - x_i``
    exactly in proportion to ``sigma``. The first-order steps during which the posterior still
    switches between nearby points carry an error, though, and that error makes the tail of
    ``||x - x_i|| / sigma_min`` heavier than the chi distribution of the exact flow. The factor
    2 in the tolerance covers it. The control's distances are of the order of the mixture's
    spread, far above the tolerance.
    """
    n_samples = 1000 if settings.full else 200
    samples, _, X = toy_samples(settings.seed, "mixture" if control else "empirical", n_samples)
    distances, _ = sampling.nearest_training_points(samples, X)
    tolerance = memorization_tolerance(n_samples, X.shape[1])
    return Outcome.below(distances.max(), tolerance, samples=samples, X=X, distances=distances)


@claim(
    id="denoisers.fgt-generalizes",
    result="Ground-truth denoiser",
    chapter="denoisers",
    statement=(
        "sampling from noise with the mixture's posterior mean f_gt gives samples that an energy-distance "
        "permutation test at level 0.01 cannot tell from fresh draws of the mixture"
    ),
    tolerance_source="99% quantile of the permutation null of the energy distance (499 relabellings)",
    control_setting=(
        "samples from the posterior mean of the single Gaussian with the mixture's mean and "
        "covariance (the best affine denoiser), same noise and fresh draws"
    ),
)
def fgt_generalizes(settings, control):
    """Compare the energy distance between generated samples and fresh draws with its permutation null."""
    n_samples = 1000 if settings.full else 400
    test, samples, fresh = energy_test_against_fresh(settings.seed, "gaussian" if control else "mixture", n_samples)
    return Outcome.below(
        test.statistic, test.null_quantile(1.0 - TEST_LEVEL), samples=samples, fresh=fresh, p_value=test.p_value
    )
