"""Claims of the block-wise chapter (Theorem 3.1): the construction of ``reludae.blocks``.

The default data: three clusters of four points in R^24, offsets of rank 2 orthogonal to the
means, spread alpha = 0.2, blocks of width 2, lam = 1e-3. Every negative control moves cluster 1
rigidly so that its mean has cosine +0.5 with the mean of cluster 0, and builds the same
construction without the activity check.
"""

import numpy as np

from .. import blocks, data, expected
from ..certify import NotConvergedError, certify
from ..experiments import memorization as mem_study
from .registry import Outcome, claim

RESULT = "Theorem 3.1"
CHAPTER = "blocks"

CLUSTERS, PER_CLUSTER, DIM, RANK, SPREAD = 3, 4, 24, 2, 0.2
WIDTHS = (2, 2, 2)
LAM = 1e-3
SIGMA = 0.05
RESIDUAL_SIGMAS = tuple(np.linspace(0.05, 0.14, 8))
# Cosine between a null vector and the generator span that counts as "the same direction",
# as in ``certify`` (about 8 degrees), and its zero threshold relative to the largest eigenvalue.
SAME_DIRECTION = 0.99
ZERO_RTOL = 1e-6
# Failure boundary: clusters of 8 points with offsets of rank 5, so blocks up to width 6 fit.
BOUNDARY_WIDTHS = (3, 4, 5)
BOUNDARY_SIGMA, BOUNDARY_LAM = 0.02, 1e-5


def points(spread=SPREAD, seed=0, per_cluster=PER_CLUSTER, rank=RANK, positive=False):
    """Return the chapter's clusters ``(X, labels)``; ``positive`` moves cluster 1 to cosine +0.5."""
    X, labels = blocks.clustered_points(CLUSTERS, per_cluster, DIM, rank, spread, seed=seed)
    if positive:
        X = with_positive_mean_cosine(X, labels)
    return X, labels


def with_positive_mean_cosine(X, labels, cosine=0.5):
    """Shift cluster 1 rigidly so that its mean has cosine ``cosine`` with the mean of cluster 0."""
    means = np.stack([X[labels == k].mean(axis=0) for k in np.unique(labels)])
    moved = data.with_positive_cosine(means, cosine=cosine, index=(0, 1))
    X = X.copy()
    X[labels == 1] += moved[1] - means[1]
    return X


def construction(X, labels, sigma, lam=LAM, widths=WIDTHS):
    """Return the block weights without the activity check (the controls need them too)."""
    return blocks.block_weights(X, labels, widths, sigma, lam, require_active=False)


def predicted_rate(seed=0):
    """Return the book's predicted residual rate for the theorem's data, from the sigma -> 0 weights."""
    X, labels = points(seed=seed)
    return blocks.residual_rate(construction(X, labels, 0.0), X)


def gradient_norms(X, labels, sigmas, lam=LAM, widths=WIDTHS):
    """Return the exact gradient norm of the tied loss at the construction, one per sigma."""
    norms = []
    for sigma in sigmas:
        W = construction(X, labels, sigma, lam, widths)
        _, gradient, _ = expected.expected_loss_and_grad(W, None, X, sigma, lam)
        norms.append(np.linalg.norm(gradient))
    return np.array(norms)


def rotation_modes(X, labels, sigma=SIGMA, lam=LAM, widths=WIDTHS):
    """Return the Hessian's smallest-magnitude modes at the construction and their fit to the rotations.

    Returns a dict: ``eigenvalues`` (all, ascending), the ``m`` smallest in magnitude
    (``small``, with ``m`` the number of rotation generators), ``cosines`` (principal cosines
    between their eigenvectors and the generators), and the split spectrum of ``blocks.hessian_split``.
    """
    W = construction(X, labels, sigma, lam, widths)
    H = expected.expected_hessian(W, None, X, sigma, lam)
    mu, V = np.linalg.eigh(H)
    generators = blocks.rotation_generators(W, widths)
    m = generators.shape[1]
    order = np.argsort(np.abs(mu))[:m]
    cosines = np.linalg.svd(generators.T @ V[:, order], compute_uv=False)
    complement, along = blocks.hessian_split(H, generators)
    return dict(
        eigenvalues=mu, small=mu[order], cosines=cosines, largest=float(np.abs(mu).max()),
        complement=complement, along=along, generators=m,
    )


def failure_spread(width, positive=False, seed=0, sigma=BOUNDARY_SIGMA, lam=BOUNDARY_LAM, low=0.05, high=0.99, steps=30):
    """Bisect the spread at which ``block_weights`` stops being active on exactly its clusters.

    Returns ``inf`` when it succeeds at ``high``, 0 when it fails at ``low``, else the largest
    spread found to succeed (to ``(high - low) / 2^steps``).
    """

    def works(spread):
        X, labels = points(spread, seed, per_cluster=8, rank=5, positive=positive)
        try:
            blocks.block_weights(X, labels, (width,) * CLUSTERS, sigma, lam)
        except ValueError:
            return False
        return True

    if works(high):
        return float("inf")
    if not works(low):
        return 0.0
    for _ in range(steps):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if works(middle) else (low, middle)
    return low


def predicted_failure_spread(width, seed=0):
    """Return ``blocks.linear_failure_spread`` for the boundary data at blocks of ``width``."""
    X, labels = points(0.5, seed, per_cluster=8, rank=5)
    return blocks.linear_failure_spread(X, labels, (width,) * CLUSTERS)


@claim(
    id="blocks.certified-minimum",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "At sigma = 0.05 the block construction lies within exp(-c / sigma^2) (relative distance) of "
        "an exact local minimum of the tied expected loss, certified with its zero modes explained."
    ),
    tolerance_source=(
        "exp(-c / sigma^2) with the book's rate c = min (w_j . x_i)^2 / (2 ||w_j||^2) of the "
        "sigma -> 0 construction; the verdict must be 'local minimum' (certify's thresholds: relative "
        "distance 1e-3, zero modes below 1e-6 of the largest eigenvalue)"
    ),
    control_setting="cluster means 0 and 1 at cosine +0.5",
)
def certified_minimum(settings, control):
    X, labels = points(seed=settings.seed, positive=control)
    W = construction(X, labels, SIGMA)
    try:
        certificate = certify(W, None, X, SIGMA, LAM, max_iter=5)
    except NotConvergedError as error:
        certificate = error.certificate
    is_minimum = certificate.verdict == "local minimum"
    measured = certificate.relative_distance if is_minimum else float("inf")
    bound = np.exp(-predicted_rate(settings.seed) / SIGMA**2)
    return Outcome.below(measured, bound, certificate=certificate)


@claim(
    id="blocks.rotation-modes",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "At the construction, the sum_k p_k (p_k - 1) / 2 Hessian eigenvalues of smallest magnitude are "
        "below 1e-6 of the largest, and their eigenvectors span the rotations within blocks."
    ),
    tolerance_source=(
        "the smallest principal cosine must reach 0.99 (certify's SAME_DIRECTION, about 8 degrees); "
        "it is set to 0 when a mode exceeds certify's zero threshold 1e-6 * max |mu|"
    ),
    control_setting="cluster means 0 and 1 at cosine +0.5",
)
def rotation_modes_claim(settings, control):
    X, labels = points(seed=settings.seed, positive=control)
    modes = rotation_modes(X, labels)
    zero = bool(np.all(np.abs(modes["small"]) <= ZERO_RTOL * modes["largest"]))
    measured = float(modes["cosines"].min()) if zero else 0.0
    return Outcome.above(measured, SAME_DIRECTION, modes=modes)


@claim(
    id="blocks.residual-rate",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "The exact gradient at the construction vanishes like exp(-c / sigma^2), with c the book's "
        "rate min (w_j . x_i)^2 / (2 ||w_j||^2) from the smallest pre-activation margin."
    ),
    tolerance_source=(
        "10 % of the predicted rate, as for memorization: the fit log g = a + b log sigma - c / sigma^2 "
        "over sigma in 0.05..0.14 absorbs the polynomial prefactor, and the margins move by O(sigma^2) "
        "as the gains change with sigma"
    ),
    control_setting="cluster means 0 and 1 at cosine +0.5, where the gradient does not vanish",
)
def residual_rate(settings, control):
    X, labels = points(seed=settings.seed, positive=control)
    sigmas = np.array(RESIDUAL_SIGMAS)
    norms = gradient_norms(X, labels, sigmas)
    rate, power = mem_study.fit_exponential_rate(sigmas, norms)
    predicted = predicted_rate(settings.seed)
    return Outcome.close(rate, predicted, 0.1 * predicted, sigmas=sigmas, norms=norms, power=power)


@claim(
    id="blocks.failure-boundary",
    result=RESULT,
    chapter=CHAPTER,
    statement=(
        "With the Householder orientation, the spread above which a block of width p_k = 3, 4, 5 is no "
        "longer active on exactly its cluster matches the affine prediction of linear_failure_spread."
    ),
    tolerance_source=(
        "5 % relative: the prediction takes all gains a_j = 1, and at sigma = 0.02, lam = 1e-5 the gains "
        "differ from 1 by (n lam + n_k sigma^2) / lam_j, below 3 % at the boundary; bisection error 1e-9"
    ),
    control_setting="cluster means 0 and 1 at cosine +0.5, where no spread gives active blocks",
)
def failure_boundary(settings, control):
    measured = np.array([failure_spread(w, positive=control, seed=settings.seed) for w in BOUNDARY_WIDTHS])
    predicted = np.array([predicted_failure_spread(w, seed=settings.seed) for w in BOUNDARY_WIDTHS])
    worst = float(np.max(np.abs(measured / predicted - 1.0)))
    return Outcome.below(worst, 0.05, boundaries=measured, predictions=predicted, widths=BOUNDARY_WIDTHS)
