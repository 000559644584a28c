"""Data sets used by the book: separable point sets, Gaussian mixtures, duplicates, digits.

Every generator takes a ``seed`` (or a ``numpy.random.Generator``) and returns float64 arrays
with samples as rows.
"""

from dataclasses import dataclass

import numpy as np

from . import _checks


def _rng(seed):
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def cosines(X):
    """Return the ``(n, n)`` matrix of cosines between the rows of ``X``."""
    X = _checks.points(X)
    norms = np.linalg.norm(X, axis=1)
    if np.any(norms == 0):
        raise ValueError("X contains a zero row, whose cosine with other rows is undefined")
    unit = X / norms[:, None]
    return unit @ unit.T


def max_offdiagonal_cosine(X):
    """Return the largest cosine between two distinct rows of ``X`` (``-1.0`` for one row)."""
    C = cosines(X)
    n = C.shape[0]
    if n == 1:
        return -1.0
    return float(C[~np.eye(n, dtype=bool)].max())


def negative_cosine_points(n, d, seed=0, norm_range=(0.8, 1.2), max_tries=100):
    """Draw ``n`` points in ``R^d`` with pairwise negative cosines, shape ``(n, d)``.

    A Gaussian sample is centered (its rows then sum to zero, so their average cosine is
    negative) and redrawn until every pair has a negative cosine. Rows are then rescaled to
    norms drawn uniformly from ``norm_range``, which leaves all cosines unchanged.
    Pairwise negative cosines are possible only for ``n <= d + 1``.
    """
    n = _checks.count(n, "n", minimum=2)
    d = _checks.count(d, "d")
    if n > d + 1:
        raise ValueError(f"at most d + 1 = {d + 1} points in R^{d} can have pairwise negative cosines, got n = {n}")
    low, high = (_checks.positive(v, "norm_range") for v in norm_range)
    if low > high:
        raise ValueError(f"norm_range must be (low, high) with low <= high, got {norm_range}")
    rng = _rng(seed)

    for _ in range(max_tries):
        G = rng.standard_normal((n, d))
        X = G - G.mean(axis=0)
        if np.all(np.linalg.norm(X, axis=1) > 0) and max_offdiagonal_cosine(X) < 0:
            norms = rng.uniform(low, high, size=n)
            return X / np.linalg.norm(X, axis=1, keepdims=True) * norms[:, None]
    raise ValueError(
        f"no draw of {n} centered Gaussian points in R^{d} had pairwise negative cosines after "
        f"{max_tries} tries; use a larger d or a smaller n"
    )


def with_positive_cosine(X, cosine=0.5, index=(0, 1), seed=0):
    """Return a copy of ``X`` in which row ``index[1]`` has cosine ``cosine`` with row ``index[0]``.

    The moved row keeps its norm. Used as a negative control: the memorization theorem needs
    pairwise negative cosines.
    """
    X = _checks.points(X).copy()
    cosine = _checks.real(cosine, "cosine")
    if not -1.0 < cosine < 1.0:
        raise ValueError(f"cosine must lie strictly between -1 and 1, got {cosine}")
    i, j = index
    if i == j:
        raise ValueError(f"index must name two different rows, got index {tuple(index)}")
    u = X[i] / np.linalg.norm(X[i])
    v = _rng(seed).standard_normal(X.shape[1])
    v -= (v @ u) * u
    v /= np.linalg.norm(v)
    X[j] = np.linalg.norm(X[j]) * (cosine * u + np.sqrt(1.0 - cosine**2) * v)
    return X


def duplicated_points(X, counts):
    """Repeat row ``i`` of ``X`` ``counts[i]`` times; returns ``(points, labels)``."""
    X = _checks.points(X)
    counts = np.asarray(counts)
    if counts.shape != (X.shape[0],) or not np.issubdtype(counts.dtype, np.integer) or np.any(counts < 1):
        raise ValueError(f"counts must hold one positive integer per row of X ({X.shape[0]}), got {counts!r}")
    labels = np.repeat(np.arange(X.shape[0]), counts)
    return X[labels], labels


@dataclass(frozen=True)
class GaussianMixture:
    """A Gaussian mixture ``sum_k weights[k] N(means[k], covs[k])`` in ``R^d``.

    ``weights`` has shape ``(K,)`` and sums to one, ``means`` ``(K, d)``, ``covs`` ``(K, d, d)``;
    covariances may be singular (low rank).
    """

    weights: np.ndarray
    means: np.ndarray
    covs: np.ndarray

    def __post_init__(self):
        weights = np.asarray(self.weights, dtype=np.float64)
        means = _checks.points(self.means, "means")
        covs = np.asarray(self.covs, dtype=np.float64)
        K, d = means.shape
        if weights.shape != (K,) or np.any(weights < 0) or not np.isclose(weights.sum(), 1.0):
            raise ValueError(f"weights must be {K} non-negative numbers summing to one, got {weights}")
        if covs.shape != (K, d, d):
            raise ValueError(f"covs must have shape ({K}, {d}, {d}), got {covs.shape}")
        if not np.allclose(covs, np.swapaxes(covs, 1, 2)):
            raise ValueError("covs must be symmetric matrices")
        if np.linalg.eigvalsh(covs).min() < -1e-10 * max(1.0, np.abs(covs).max()):
            raise ValueError("covs must be positive semidefinite")
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "covs", covs)

    @property
    def dim(self):
        return self.means.shape[1]

    @property
    def n_modes(self):
        return self.means.shape[0]

    def second_moments(self):
        """Return the uncentered second moments ``S_k = mu_k mu_k^T + Sigma_k``, ``(K, d, d)``."""
        return self.covs + np.einsum("ki,kj->kij", self.means, self.means)

    def sample(self, n, seed=0):
        """Draw ``n`` samples; returns ``(points (n, d), mode labels (n,))``."""
        n = _checks.count(n, "n")
        rng = _rng(seed)
        labels = rng.choice(self.n_modes, size=n, p=self.weights)
        Z = rng.standard_normal((n, self.dim))
        X = self.means[labels]
        for k, C in enumerate(self.covs):
            members = labels == k  # one (d, d) factor per mode, not per sample
            X[members] += Z[members] @ _psd_factor(C).T  # C = F F^T
        return X, labels


def _psd_factor(C):
    """Return ``F`` with ``F F^T = C`` for a symmetric positive semidefinite ``C``."""
    eigenvalues, eigenvectors = np.linalg.eigh(C)
    # Treat eigenvalues at rounding level as zero, because their square roots (about 1e-8) would
    # push the samples of a low-rank covariance out of its column space.
    cutoff = C.shape[0] * np.finfo(np.float64).eps * max(eigenvalues.max(), 0.0)
    return eigenvectors * np.sqrt(np.where(eigenvalues > cutoff, eigenvalues, 0.0))


def low_rank_mixture(n_modes, d, rank, seed=0, mean_norm=1.0, spread=0.2, weights=None):
    """Build a mixture with means at pairwise negative cosines and rank-``rank`` covariances.

    Each covariance is ``spread^2 mean_norm^2 / rank`` times a projector onto a random
    ``rank``-dimensional subspace, so a sample's distance to its mean is about
    ``spread * mean_norm``. ``weights`` defaults to uniform.
    """
    n_modes = _checks.count(n_modes, "n_modes", minimum=2)
    rank = _checks.count(rank, "rank")
    if rank > d:
        raise ValueError(f"rank = {rank} cannot exceed the dimension d = {d}")
    mean_norm = _checks.positive(mean_norm, "mean_norm")
    spread = _checks.nonnegative(spread, "spread")
    rng = _rng(seed)
    means = negative_cosine_points(n_modes, d, seed=rng, norm_range=(mean_norm, mean_norm))
    covs = np.empty((n_modes, d, d))
    for k in range(n_modes):
        basis, _ = np.linalg.qr(rng.standard_normal((d, rank)))  # (d, rank), orthonormal columns
        covs[k] = (spread * mean_norm) ** 2 / rank * basis @ basis.T
    if weights is None:
        weights = np.full(n_modes, 1.0 / n_modes)
    return GaussianMixture(weights=weights, means=means, covs=covs)


def digits(scale=True, center=True):
    """Load the 1,797 8x8 handwritten digits bundled with scikit-learn (no download).

    Pixels (0 to 16) are mapped to [-1, 1] when ``scale`` is true, then the mean image is
    subtracted when ``center`` is true. Returns ``(X (1797, 64), labels (1797,), mean (64,))``,
    where ``mean`` is the subtracted image (zeros when ``center`` is false).
    """
    from sklearn.datasets import load_digits

    bunch = load_digits()
    X = bunch.data.astype(np.float64)
    if scale:
        X = X / 8.0 - 1.0
    mean = X.mean(axis=0) if center else np.zeros(X.shape[1])
    return X - mean, bunch.target.copy(), mean
