"""A toy diffusion sampler, a two-sample test and the distance to the training set.

The sampler integrates the variance-exploding diffusion backwards over geometric noise levels
``sigma_max = sigma_0 > sigma_1 > ... > sigma_S = sigma_min`` with a denoiser
``denoise(Y, sigma) -> (B, d)``, using the score ``(f(x, sigma) - x) / sigma^2``:

- deterministic (probability flow, DDIM-type): ``x <- x + (1 - s'/s) (f(x, s) - x)``;
- stochastic (Euler-Maruyama step of the reverse-time SDE):
  ``x <- x + (s^2 - s'^2) / s^2 (f(x, s) - x) + sqrt(s^2 - s'^2) z``.

Sampling starts from ``x = sigma_max z`` and stops at ``sigma_min`` without a final denoising
step, so the exact flow would return a sample of the data distribution convolved with
``N(0, sigma_min^2 I)``.
"""

import logging
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import cdist

from . import _checks
from .data import _rng

logger = logging.getLogger(__name__)

# Rows of the (block, n) distance matrix computed at once in nearest_training_points.
_DISTANCE_BLOCK_ROWS = 4096


def noise_levels(sigma_max, sigma_min, steps):
    """Return the ``steps + 1`` geometric noise levels from ``sigma_max`` down to ``sigma_min``.

    Raises ``ValueError`` unless ``sigma_max > sigma_min > 0`` and ``steps >= 1``.
    """
    sigma_max = _checks.positive(sigma_max, "sigma_max")
    sigma_min = _checks.positive(sigma_min, "sigma_min")
    steps = _checks.count(steps, "steps")
    if sigma_min >= sigma_max:
        raise ValueError(f"sigma_min = {sigma_min} must be smaller than sigma_max = {sigma_max}")
    return np.geomspace(sigma_max, sigma_min, steps + 1)


def sample_from_noise(
    denoise,
    n_samples,
    dim,
    sigma_max=80.0,
    sigma_min=1e-3,
    steps=100,
    stochastic=False,
    seed=0,
    return_trajectory=False,
):
    """Draw ``n_samples`` points in ``R^dim`` by denoising Gaussian noise step by step.

    ``denoise(Y, sigma)`` maps queries ``(B, dim)`` to denoised points ``(B, dim)``, for
    example ``reludae.denoisers.empirical_denoiser_for(X)``. ``sigma_max`` should be large
    against the diameter of the data, because the start ``sigma_max z`` ignores the data.
    ``steps`` updates run over ``noise_levels(sigma_max, sigma_min, steps)``; ``stochastic``
    picks the reverse-SDE step over the deterministic probability-flow step (module docstring).
    Returns the final samples ``(n_samples, dim)``, and with ``return_trajectory`` also the
    states at every noise level, ``(steps + 1, n_samples, dim)``. Raises ``ValueError`` for
    invalid arguments or when ``denoise`` returns a wrong shape or non-finite values.
    """
    if not callable(denoise):
        raise ValueError(f"denoise must be a callable denoise(Y, sigma), got {type(denoise).__name__}")
    n_samples = _checks.count(n_samples, "n_samples")
    dim = _checks.count(dim, "dim")
    levels = noise_levels(sigma_max, sigma_min, steps)
    rng = _rng(seed)

    x = levels[0] * rng.standard_normal((n_samples, dim))  # (B, d)
    trajectory = [x] if return_trajectory else None
    for sigma, sigma_next in zip(levels[:-1], levels[1:]):
        denoised = np.asarray(denoise(x, float(sigma)), dtype=np.float64)
        if denoised.shape != x.shape or not np.all(np.isfinite(denoised)):
            raise ValueError(
                f"denoise(Y, sigma={sigma:.3g}) must return finite values of shape {x.shape}, "
                f"got shape {denoised.shape}"
                + ("" if denoised.shape != x.shape else " with NaN or infinite entries")
            )
        if stochastic:
            variance_drop = sigma**2 - sigma_next**2
            x = x + variance_drop / sigma**2 * (denoised - x) + np.sqrt(variance_drop) * rng.standard_normal(x.shape)
        else:
            x = x + (1.0 - sigma_next / sigma) * (denoised - x)
        if return_trajectory:
            trajectory.append(x)
    logger.debug("sampled %d points in R^%d over %d noise levels", n_samples, dim, len(levels))

    if return_trajectory:
        return x, np.stack(trajectory)
    return x


def nearest_training_points(samples, X):
    """Return ``(distances (B,), indices (B,))`` from each row of ``samples`` to its nearest row of ``X``."""
    X = _checks.points(X)
    samples = _checks.points(samples, "samples")
    if samples.shape[1] != X.shape[1]:
        raise ValueError(
            f"samples have dimension {samples.shape[1]} but the training points X have {X.shape[1]}; "
            "both must have the same number of columns"
        )
    distances = np.empty(samples.shape[0])
    indices = np.empty(samples.shape[0], dtype=np.int64)
    for start in range(0, samples.shape[0], _DISTANCE_BLOCK_ROWS):
        block = cdist(samples[start : start + _DISTANCE_BLOCK_ROWS], X)  # (b, n)
        indices[start : start + block.shape[0]] = block.argmin(axis=1)
        distances[start : start + block.shape[0]] = block.min(axis=1)
    return distances, indices


@dataclass(frozen=True)
class TwoSampleTest:
    """The result of a permutation two-sample test.

    ``statistic`` is the observed energy distance, ``null`` the statistics of the relabelled
    pooled sample (one per permutation), and ``p_value = (1 + #{null >= statistic}) /
    (1 + permutations)``, which is a valid p-value for any number of permutations.
    """

    statistic: float
    p_value: float
    null: np.ndarray

    def null_quantile(self, level):
        """Return the ``level`` quantile of the permutation null, e.g. ``0.99``."""
        level = _checks.real(level, "level")
        if not 0.0 < level < 1.0:
            raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
        return float(np.quantile(self.null, level))

    def rejects(self, alpha=0.01):
        """Return whether the test rejects equal distributions at level ``alpha``."""
        alpha = _checks.real(alpha, "alpha")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
        return self.p_value <= alpha


def energy_distance(A, B):
    """Return the energy distance ``2 E|a - b| - E|a - a'| - E|b - b'|`` between two samples.

    Within-sample means leave out the zero diagonal (unbiased U-statistics), so the value
    can be slightly negative when both samples come from one distribution. ``A`` is ``(m, d)``
    and ``B`` is ``(n, d)`` with ``m, n >= 2``.
    """
    pooled, m = _pooled(A, B)
    return float(_energy_statistics(cdist(pooled, pooled), _group_masks(len(pooled), m, [None]))[0])


def energy_test(A, B, permutations=199, seed=0):
    """Test whether the rows of ``A`` ``(m, d)`` and ``B`` ``(n, d)`` come from one distribution.

    The statistic is ``energy_distance(A, B)``; its null distribution is estimated by
    ``permutations`` random relabellings of the pooled sample, drawn with ``seed``. The
    smallest attainable p-value is ``1 / (permutations + 1)``, so rejecting at level 0.01
    needs at least 99 permutations. Returns a ``TwoSampleTest``.
    """
    pooled, m = _pooled(A, B)
    permutations = _checks.count(permutations, "permutations")
    rng = _rng(seed)

    N = len(pooled)
    orders = [None] + [rng.permutation(N) for _ in range(permutations)]
    statistics = _energy_statistics(cdist(pooled, pooled), _group_masks(N, m, orders))
    observed, null = float(statistics[0]), statistics[1:]
    p_value = (1.0 + np.count_nonzero(null >= observed)) / (1.0 + permutations)
    return TwoSampleTest(statistic=observed, p_value=float(p_value), null=null)


def _pooled(A, B):
    A = _checks.points(A, "A")
    B = _checks.points(B, "B")
    if A.shape[1] != B.shape[1]:
        raise ValueError(f"A has dimension {A.shape[1]} but B has {B.shape[1]}; both samples must live in one space")
    if A.shape[0] < 2 or B.shape[0] < 2:
        raise ValueError(f"each sample needs at least 2 rows, got {A.shape[0]} and {B.shape[0]}")
    return np.vstack([A, B]), A.shape[0]


def _group_masks(N, m, orders):
    """Return a ``(N, len(orders))`` 0/1 matrix whose column marks the first group of one labelling.

    ``None`` is the observed labelling (the first ``m`` rows); a permutation ``order`` puts row
    ``j`` in the first group when ``order[j] < m``.
    """
    masks = np.zeros((N, len(orders)))
    for column, order in enumerate(orders):
        if order is None:
            masks[:m, column] = 1.0
        else:
            masks[:, column] = order < m
    return masks


def _energy_statistics(D, masks):
    """Return the energy distance of every labelling in ``masks`` from the pooled distances ``D``."""
    N = D.shape[0]
    m = masks[:, 0].sum()
    n = N - m
    row_sums = D.sum(axis=1)  # (N,)
    within_first = np.einsum("ip,ip->p", masks, D @ masks)  # sum of D over pairs inside group 1
    between = row_sums @ masks - within_first  # sum over (group 1, group 2) pairs
    within_second = row_sums.sum() - within_first - 2.0 * between
    return 2.0 * between / (m * n) - within_first / (m * (m - 1)) - within_second / (n * (n - 1))
