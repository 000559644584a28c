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
from .blocks import block_weights  # noqa: F401  (Theorem 3.1's construction, re-exported here)


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


# The regularized linear autoencoder (the lemma behind Corollary 3.3 of Zhang et al.): for the
# linear model f(y) = W2 W1^T y the loss is (1/n) J with
#     J(W1, W2) = ||X - X W1 W2^T||_F^2 + n sigma^2 ||W2 W1^T||_F^2 + n lam (||W1||_F^2 + ||W2||_F^2),
# whose global minimizers are W1 = W2 = U_p diag(sqrt(a_j)) O^T, with (u_j, lambda_j) the top
# eigenpairs of X^T X, a_j = max(0, (lambda_j - n lam) / (lambda_j + n sigma^2)) and O orthogonal.


def _gram_eigenpairs(X):
    """Return the eigenvalues of ``X^T X`` in decreasing order and the matching eigenvectors."""
    values, vectors = np.linalg.eigh(X.T @ X)  # ascending
    return np.clip(values[::-1], 0.0, None), vectors[:, ::-1]


def _linear_ae_inputs(X, width, sigma, lam):
    X = _checks.points(X)
    width = _checks.count(width, "width")
    sigma = _checks.nonnegative(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    return X, width, sigma, lam


def linear_ae_gains(X, width, sigma, lam):
    """Return the gains ``a_j = max(0, (lambda_j - n lam) / (lambda_j + n sigma^2))``, shape ``(min(width, d),)``.

    ``lambda_j`` are the largest eigenvalues of the uncentered Gram matrix ``X^T X``, in decreasing
    order. ``a_j`` is the squared singular value of the minimizing product along ``u_j``.
    Raises ``ValueError`` for a bad ``X``, ``width < 1``, ``sigma < 0`` or ``lam < 0``.
    """
    X, width, sigma, lam = _linear_ae_inputs(X, width, sigma, lam)
    n = X.shape[0]
    values, _ = _gram_eigenpairs(X)
    top = values[:width]
    with np.errstate(divide="ignore", invalid="ignore"):
        gains = np.where(top > n * lam, (top - n * lam) / np.where(top + n * sigma**2 > 0, top + n * sigma**2, 1.0), 0.0)
    return gains


def linear_ae_weights(X, width, sigma, lam):
    """Return the tied weights ``W`` (``W1 = W2 = W``) of a global minimizer, shape ``(d, width)``.

    ``W = U_p diag(sqrt(a_j))`` with the gains of :func:`linear_ae_gains`: the global minimizer of
    ``J(W1, W2) = ||X - X W1 W2^T||^2 + n sigma^2 ||W2 W1^T||^2 + lam' (||W1||^2 + ||W2||^2)`` with
    ``lam' = n lam``, which is ``n`` times the loss of the linear model ``f(y) = W2 W1^T y``.
    The rotation ``O`` of the lemma is the identity here; any ``W O^T`` is a minimizer too, so
    compare products ``W W^T``, not columns. Columns beyond the number of directions with
    ``lambda_j > n lam`` (and beyond ``d``) are zero. Raises ``ValueError`` for a bad ``X``,
    ``width < 1``, ``sigma < 0`` or ``lam < 0``.
    """
    X, width, sigma, lam = _linear_ae_inputs(X, width, sigma, lam)
    gains = linear_ae_gains(X, width, sigma, lam)
    _, vectors = _gram_eigenpairs(X)
    W = np.zeros((X.shape[1], width))
    W[:, : len(gains)] = vectors[:, : len(gains)] * np.sqrt(gains)[None, :]
    return W


def linear_ae_objective(W1, W2, X, sigma, lam):
    """Return the loss ``(1/n) J`` of the linear model ``f(y) = W2 W1^T y`` and its gradients.

    ``J = ||X - X W1 W2^T||^2 + n sigma^2 ||W2 W1^T||^2 + n lam (||W1||^2 + ||W2||^2)``; returns
    ``(loss, dloss/dW1, dloss/dW2)``. With ``M = W1 W2^T`` and ``G = X^T X / n``, the data part is
    ``tr G - 2 tr(G M) + tr(M^T (G + sigma^2 I) M)`` and its gradient in ``M`` is
    ``2 ((G + sigma^2 I) M - G)``.
    """
    X = _checks.points(X)
    d = X.shape[1]
    W1 = _checks.weights(W1, d, "W1")
    W2 = _checks.weights(W2, d, "W2")
    if W1.shape != W2.shape:
        raise ValueError(f"W1 and W2 must have the same shape, got {W1.shape} and {W2.shape}")
    sigma = _checks.nonnegative(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    G = X.T @ X / X.shape[0]
    M = W1 @ W2.T
    GM = G @ M
    loss = np.trace(G) - 2.0 * np.trace(GM) + np.sum(M * (GM + sigma**2 * M)) + lam * (np.sum(W1**2) + np.sum(W2**2))
    dM = 2.0 * (GM + sigma**2 * M - G)
    return float(loss), dM @ W2 + 2.0 * lam * W1, dM.T @ W1 + 2.0 * lam * W2


def linear_ae_loss(X, width, sigma, lam):
    """Return the minimal loss ``(1/n) J`` of the linear model, from the gains.

    Each eigendirection of ``X^T X`` contributes ``lambda_j (a_j - 1)^2 + n sigma^2 a_j^2 +
    2 n lam a_j`` to ``J``, with ``a_j = 0`` for the directions the width leaves out.
    """
    X, width, sigma, lam = _linear_ae_inputs(X, width, sigma, lam)
    n = X.shape[0]
    values, _ = _gram_eigenpairs(X)
    gains = np.zeros_like(values)
    kept = linear_ae_gains(X, width, sigma, lam)
    gains[: len(kept)] = kept
    J = np.sum(values * (gains - 1.0) ** 2 + n * sigma**2 * gains**2 + 2.0 * n * lam * gains)
    return float(J / n)


def shrinkage_limit(S, rho, sigma, lam, rank):
    """Return the rank-``rank`` part of ``(S - (lam/rho) I)(S + sigma^2 I)^{-1}``, eigenvalues clipped at 0.

    This is the population limit of one mode's block ``W W^T`` (Corollary 3.3): ``S`` is the mode's
    second-moment matrix ``mu mu^T + Sigma``, ``rho`` its weight. Both factors share the
    eigenvectors of ``S``, so the map has eigenvalues ``(e_j - lam/rho) / (e_j + sigma^2)``, which
    increase with ``e_j``. The largest ``rank`` of them, clipped at 0, are kept. Shape ``(d, d)``.
    Raises ``ValueError`` unless ``S`` is a symmetric positive semidefinite ``(d, d)`` matrix,
    ``0 < rho <= 1``, ``sigma >= 0``, ``lam >= 0`` and ``rank >= 1``.
    """
    S = np.asarray(S, dtype=np.float64)
    if S.ndim != 2 or S.shape[0] != S.shape[1] or S.shape[0] == 0:
        raise ValueError(f"S must be a square (d, d) second-moment matrix, got shape {S.shape}")
    if not np.all(np.isfinite(S)):
        raise ValueError("S contains NaN or infinite entries")
    scale = max(float(np.max(np.abs(S))), 1e-300)
    if np.max(np.abs(S - S.T)) > 1e-12 * scale:
        raise ValueError(f"S must be symmetric, got max |S - S^T| = {np.max(np.abs(S - S.T)):.3g}")
    rho = _checks.positive(rho, "rho")
    if rho > 1:
        raise ValueError(f"rho is the weight of a mode and must be at most 1, got {rho}")
    sigma = _checks.nonnegative(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    rank = _checks.count(rank, "rank")
    values, vectors = np.linalg.eigh((S + S.T) / 2)
    if values[0] < -1e-12 * scale:
        raise ValueError(f"S must be positive semidefinite, got smallest eigenvalue {values[0]:.3g}")
    values, vectors = np.clip(values[::-1], 0.0, None), vectors[:, ::-1]
    denominator = values + sigma**2
    with np.errstate(divide="ignore", invalid="ignore"):
        shrunk = np.where(values > lam / rho, (values - lam / rho) / np.where(denominator > 0, denominator, 1.0), 0.0)
    shrunk[rank:] = 0.0
    return (vectors * shrunk[None, :]) @ vectors.T
