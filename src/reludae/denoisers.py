"""The two reference denoisers: the empirical optimum and the Gaussian-mixture posterior mean.

Noise is variance exploding, ``y = x + sigma * eps`` with ``eps ~ N(0, I_d)``. The best
denoiser in mean squared error is the posterior mean ``E[x | y]``:

- for the empirical distribution of ``n`` training points it is ``f_emp``, a softmax-weighted
  average of the training points;
- for a Gaussian mixture ``sum_k rho_k N(mu_k, Sigma_k)`` it is ``f_gt``, a posterior-weighted
  sum of one linear shrinkage per mode.

Both functions take queries as rows, ``Y`` of shape ``(B, d)``, or a single ``(d,)`` vector, and
return an array of the same shape. Both work in log space, so they stay finite for a tiny
``sigma`` and for queries far from the data.
"""

import numpy as np
from scipy.special import logsumexp

from . import _checks
from .data import GaussianMixture

# Queries are processed in blocks so that the (block, n, d) array of differences stays below
# about this many float64 entries (32 MB).
_MAX_BLOCK_ENTRIES = 4_000_000


def _queries(Y, d):
    """Return ``(Y as (B, d), whether a single (d,) vector was given)``."""
    array = np.asarray(Y, dtype=np.float64)
    single = array.ndim == 1
    if single:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != d:
        raise ValueError(
            f"Y must have shape (B, {d}) or ({d},) to match the data dimension d = {d}, "
            f"got shape {np.shape(Y)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError("Y contains NaN or infinite entries; every query must be finite")
    return array, single


def _softmax_rows(logits):
    """Return ``exp(logits - logsumexp(logits))`` row by row; ``-inf`` entries get weight zero."""
    return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))


def empirical_posterior(Y, X, sigma):
    """Return the posterior weights ``P(x_i | y)`` of the training points, shape ``(B, n)``.

    Row ``b`` is the softmax over ``i`` of ``-||y_b - x_i||^2 / (2 sigma^2)``. Distances are
    computed from differences, not from the expansion ``||y||^2 - 2 y.x + ||x||^2``, whose
    cancellation would dominate the logits when ``sigma`` is tiny. A single query ``(d,)``
    gives weights of shape ``(n,)``. Raises ``ValueError`` for ``sigma <= 0`` or mismatched
    shapes.
    """
    X = _checks.points(X)
    sigma = _checks.positive(sigma, "sigma")
    Y, single = _queries(Y, X.shape[1])

    n, d = X.shape
    block = max(1, _MAX_BLOCK_ENTRIES // (n * d))
    weights = np.empty((Y.shape[0], n))
    for start in range(0, Y.shape[0], block):
        diff = Y[start : start + block, None, :] - X[None, :, :]  # (b, n, d)
        logits = -np.einsum("bnd,bnd->bn", diff, diff) / (2.0 * sigma**2)  # (b, n)
        weights[start : start + block] = _softmax_rows(logits)
    return weights[0] if single else weights


def empirical_denoiser(Y, X, sigma):
    """Return ``f_emp(Y)``, the posterior mean of ``x`` given ``y = x + sigma eps``, ``x`` uniform on the rows of ``X``.

    ``f_emp(y) = sum_i w_i(y) x_i`` with ``w = softmax(-||y - x_i||^2 / (2 sigma^2))``, which is
    the exact minimizer of the denoising loss on the training set ``X`` of shape ``(n, d)``.
    ``Y`` is ``(B, d)`` or a single ``(d,)`` vector, and the result has the same shape. As
    ``sigma`` goes to zero the result tends to the training point nearest to ``y``. Raises
    ``ValueError`` for ``sigma <= 0`` or mismatched shapes.
    """
    X = _checks.points(X)
    return empirical_posterior(Y, X, sigma) @ X


def _mixture_arguments(weights, means, covs):
    if isinstance(weights, GaussianMixture):
        raise ValueError(
            "gmm_denoiser takes (Y, weights, means, covs, sigma); for a GaussianMixture use "
            "mixture_denoiser(Y, mixture, sigma)"
        )
    try:
        return GaussianMixture(weights=weights, means=means, covs=covs)
    except ValueError as error:
        raise ValueError(f"invalid Gaussian mixture: {error}") from None


def mixture_posterior(Y, mixture, sigma):
    """Return the posterior mode weights ``P(k | y)`` under ``mixture``, shape ``(B, K)``.

    ``y`` given mode ``k`` is ``N(mu_k, Sigma_k + sigma^2 I)``, which is nonsingular for
    ``sigma > 0`` even when ``Sigma_k`` is singular. Modes of weight zero get posterior zero.
    A single query ``(d,)`` gives weights of shape ``(K,)``.
    """
    log_weights, _ = _mode_terms(Y, mixture, sigma)
    weights = _softmax_rows(log_weights)
    return weights[0] if np.ndim(Y) == 1 else weights


def _mode_terms(Y, mixture, sigma):
    """Return the unnormalized log posteriors ``(B, K)`` and the per-mode linear estimates ``(B, K, d)``.

    With ``Sigma_k = V diag(lam) V^T``, the covariance of ``y`` given mode ``k`` is
    ``V diag(lam + sigma^2) V^T``, and the linear estimate of ``x`` given ``y`` and mode ``k``
    is ``mu_k + V diag(lam / (lam + sigma^2)) V^T (y - mu_k)``. Both are read off one
    eigendecomposition per mode, which stays exact when ``lam`` has zeros.
    """
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a reludae.data.GaussianMixture, got {type(mixture).__name__}")
    sigma = _checks.positive(sigma, "sigma")
    Y, _ = _queries(Y, mixture.dim)

    B, d, K = Y.shape[0], mixture.dim, mixture.n_modes
    log_posterior = np.empty((B, K))
    estimates = np.empty((B, K, d))
    for k in range(K):
        eigenvalues, eigenvectors = np.linalg.eigh(mixture.covs[k])
        # Eigenvalues below the usual rank threshold are round-off of exact zeros: left in, they
        # would rival sigma^2 when sigma is tiny and leak noise through the null space.
        threshold = d * np.finfo(np.float64).eps * max(eigenvalues.max(), 0.0)
        eigenvalues = np.where(eigenvalues > threshold, eigenvalues, 0.0)
        variances = eigenvalues + sigma**2  # (d,), eigenvalues of Sigma_k + sigma^2 I

        coordinates = (Y - mixture.means[k]) @ eigenvectors  # (B, d), y - mu_k in the eigenbasis
        mahalanobis = np.sum(coordinates**2 / variances, axis=1)  # (B,)
        log_density = -0.5 * (mahalanobis + np.sum(np.log(variances)) + d * np.log(2.0 * np.pi))
        rho = mixture.weights[k]
        log_posterior[:, k] = np.log(rho) + log_density if rho > 0 else -np.inf

        estimates[:, k] = mixture.means[k] + (coordinates * (eigenvalues / variances)) @ eigenvectors.T
    return log_posterior, estimates


def mixture_denoiser(Y, mixture, sigma):
    """Return ``f_gt(Y)``, the posterior mean of ``x ~ mixture`` given ``y = x + sigma eps``.

    ``f_gt(y) = sum_k w_k(y) [mu_k + Sigma_k (Sigma_k + sigma^2 I)^{-1} (y - mu_k)]`` with
    ``w_k(y)`` proportional to ``rho_k N(y; mu_k, Sigma_k + sigma^2 I)``. ``mixture`` is a
    ``reludae.data.GaussianMixture`` and its covariances may be singular. ``Y`` is ``(B, d)`` or
    a single ``(d,)`` vector, and the result has the same shape. Raises ``ValueError`` for
    ``sigma <= 0`` or mismatched shapes.
    """
    log_posterior, estimates = _mode_terms(Y, mixture, sigma)
    weights = _softmax_rows(log_posterior)  # (B, K)
    result = np.einsum("bk,bkd->bd", weights, estimates)
    return result[0] if np.ndim(Y) == 1 else result


def gmm_denoiser(Y, weights, means, covs, sigma):
    """Return ``f_gt(Y)`` for the mixture ``sum_k weights[k] N(means[k], covs[k])``.

    ``weights`` has shape ``(K,)``, is non-negative and sums to one, ``means`` is ``(K, d)`` and
    ``covs`` is ``(K, d, d)`` symmetric positive semidefinite (singular is fine, and zero
    covariances give point masses, for which ``f_gt`` equals ``f_emp`` with weights). Same
    result as ``mixture_denoiser(Y, GaussianMixture(weights, means, covs), sigma)``. Raises
    ``ValueError`` for an invalid mixture, ``sigma <= 0`` or mismatched shapes.
    """
    return mixture_denoiser(Y, _mixture_arguments(weights, means, covs), sigma)


def moment_matched_gaussian(mixture):
    """Return the single Gaussian with the mean and covariance of ``mixture``, as a one-mode mixture.

    Its posterior mean ``m + C (C + sigma^2 I)^{-1} (y - m)`` is the best affine denoiser of any
    distribution with mean ``m`` and covariance ``C``, so sampling with it shows what a linear
    denoiser generates: the right first two moments without the modes.
    """
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a reludae.data.GaussianMixture, got {type(mixture).__name__}")
    mean = mixture.weights @ mixture.means  # (d,)
    second_moment = np.einsum("k,kij->ij", mixture.weights, mixture.second_moments())  # (d, d)
    covariance = second_moment - np.outer(mean, mean)
    covariance = 0.5 * (covariance + covariance.T)  # remove round-off asymmetry
    return GaussianMixture(weights=np.ones(1), means=mean[None, :], covs=covariance[None, :, :])


def empirical_denoiser_for(X):
    """Return ``denoise(Y, sigma)``, the empirical denoiser of the training set ``X`` ``(n, d)``.

    The callable has the signature the sampler in ``reludae.sampling`` expects.
    """
    X = _checks.points(X)

    def denoise(Y, sigma):
        return empirical_denoiser(Y, X, sigma)

    return denoise


def mixture_denoiser_for(mixture):
    """Return ``denoise(Y, sigma)``, the posterior-mean denoiser of a ``GaussianMixture``.

    The callable has the signature the sampler in ``reludae.sampling`` expects.
    """
    if not isinstance(mixture, GaussianMixture):
        raise ValueError(f"mixture must be a reludae.data.GaussianMixture, got {type(mixture).__name__}")

    def denoise(Y, sigma):
        return mixture_denoiser(Y, mixture, sigma)

    return denoise
