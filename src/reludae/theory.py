"""Closed-form stationary points of the ReLU denoising autoencoder and their loss values.

Memorization (Corollary 3.2 of Zhang et al., "Generalization of Diffusion Models Arises with a
Balanced Representation Space", ICLR 2026): for ``n`` points with pairwise negative cosines and
``n lam < min_i ||x_i||^2``, the tied weights ``W = [r_1 x_1, ..., r_n x_n, 0, ...]`` with

    r_i = sqrt((||x_i||^2 - n lam) / (||x_i||^4 + sigma^2 ||x_i||^2))

are a local minimizer of the loss, up to a residual that is exponentially small in
``1 / sigma^2``. Column ``i`` then fires only on (noisy copies of) ``x_i`` and the network acts
on that point as the linear map ``a_i x_i x_i^T / ||x_i||^2`` with ``a_i = r_i^2 ||x_i||^2``.
"""

import numpy as np

from . import _checks


def _squared_norms(X):
    return np.einsum("ij,ij->i", X, X)  # (n,)


def memorization_scales(X, sigma, lam):
    """Return the scales ``r_i`` of the memorization solution, shape ``(n,)``.

    Raises ``ValueError`` when ``sigma < 0``, ``lam < 0`` or ``n * lam >= min_i ||x_i||^2``
    (the point with the smallest norm would not be stored at all).
    """
    X = _checks.points(X)
    sigma = _checks.nonnegative(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    n = X.shape[0]
    norms2 = _squared_norms(X)
    if np.any(norms2 == 0):
        zero_row = int(np.flatnonzero(norms2 == 0)[0])
        raise ValueError(f"X contains a zero row (row {zero_row}); a zero point cannot be stored, remove it")
    if n * lam >= norms2.min():
        raise ValueError(
            f"n * lam = {n * lam:.6g} must be below min ||x_i||^2 = {norms2.min():.6g}; "
            f"decrease lam below {norms2.min() / n:.6g}"
        )
    return np.sqrt((norms2 - n * lam) / (norms2**2 + sigma**2 * norms2))


def memorization_weights(X, sigma, lam, width=None):
    """Return the memorization weights ``[r_1 x_1, ..., r_n x_n, 0, ...]`` of shape ``(d, width)``.

    ``width`` defaults to ``n``; extra columns are zero. Raises ``ValueError`` for
    ``width < n``, ``sigma < 0``, ``lam < 0`` and ``n * lam >= min ||x_i||^2``.
    """
    X = _checks.points(X)
    n, d = X.shape
    width = n if width is None else _checks.count(width, "width")
    if width < n:
        raise ValueError(
            f"width = {width} is smaller than the number of points n = {n}; "
            f"memorization needs one column per point, use width >= {n}"
        )
    scales = memorization_scales(X, sigma, lam)
    W = np.zeros((d, width))
    W[:, :n] = (X * scales[:, None]).T
    return W


def memorization_gains(X, sigma, lam=0.0):
    """Return ``a_i = ||w_i||^2 = (||x_i||^2 - n lam) / (||x_i||^2 + sigma^2)``, shape ``(n,)``.

    ``a_i`` is the factor by which the memorizer shrinks point ``x_i``, and the squared norm of the
    column that stores it.
    """
    X = _checks.points(X)
    scales = memorization_scales(X, sigma, lam)
    return scales**2 * _squared_norms(X)


def memorization_loss(X, sigma, lam=0.0):
    """Return the loss of the memorization solution, neglecting exponentially small terms.

    With ``lam = 0`` this is ``(1/n) sum_i sigma^2 ||x_i||^2 / (sigma^2 + ||x_i||^2)``, which is
    below ``sigma^2`` and does not depend on the dimension. With ``lam > 0`` it is the value of
    ``(1/n) sum_i [||x_i||^2 (a_i - 1)^2 + sigma^2 a_i^2] + 2 lam sum_i a_i`` at the minimizing
    gains ``a_i``: each stored column acts linearly on its own point and is silent on the others.
    """
    X = _checks.points(X)
    gains = memorization_gains(X, sigma, lam)
    norms2 = _squared_norms(X)
    data_term = np.mean(norms2 * (gains - 1.0) ** 2 + sigma**2 * gains**2)
    return float(data_term + 2.0 * lam * gains.sum())
