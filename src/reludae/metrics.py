"""Separability of data, statistics of representations, and invariants of learned weights.

Minimizers of the loss come in families (rotations within a block, a column split into several
parallel ones), so weights are compared through invariants such as ``W1 W2^T`` and the energy
stored along each training point rather than column by column.
"""

from dataclasses import dataclass

import numpy as np

from . import _checks


def separability(X, labels):
    """Return ``(alpha, beta)`` of Definition 3.1 for the clusters given by ``labels``.

    ``alpha = max_i ||x_i - xbar_k(i)|| / ||xbar_k(i)||`` is the largest relative distance of a
    point to its cluster mean and ``beta = max_{k != l} cos(xbar_k, xbar_l)`` the largest cosine
    between two cluster means (``-1.0`` when there is one cluster, so any beta bound holds).
    Raises ``ValueError`` when a cluster mean is zero, because alpha is then undefined.
    """
    X = _checks.points(X)
    labels = _checks.labels(labels, X.shape[0])
    clusters = np.unique(labels)
    means = np.stack([X[labels == k].mean(axis=0) for k in clusters])  # (M, d)
    mean_norms = np.linalg.norm(means, axis=1)
    if np.any(mean_norms == 0):
        zero = clusters[np.argmin(mean_norms)].item()  # a Python scalar prints as 7, not np.int64(7)
        raise ValueError(f"cluster {zero!r} has a zero mean, so its relative spread alpha is undefined")

    index = np.searchsorted(clusters, labels)
    alpha = float(np.max(np.linalg.norm(X - means[index], axis=1) / mean_norms[index]))
    if len(clusters) == 1:
        return alpha, -1.0
    unit = means / mean_norms[:, None]
    C = unit @ unit.T
    beta = float(C[~np.eye(len(clusters), dtype=bool)].max())
    return alpha, beta


@dataclass(frozen=True)
class RepresentationStats:
    """Per-sample statistics of hidden activations ``H`` of shape ``(B, p)``; each field ``(B,)``.

    ``std`` is the population standard deviation over the ``p`` entries, the spikiness measure of
    Zhang et al. (ICLR 2026), which scales with the activations. The others are scale free: ``top1_share`` is
    ``max h / sum h``, ``participation`` is ``(sum h)^2 / sum h^2`` (1 for one-hot, ``p`` for
    uniform), and ``active`` counts units above ``threshold`` times the sample's largest
    activation. Rows with no active unit get top-1 share and participation ``nan``.
    """

    std: np.ndarray
    top1_share: np.ndarray
    participation: np.ndarray
    active: np.ndarray


def representation_stats(H, threshold=1e-2):
    """Compute ``RepresentationStats`` for activations ``H`` of shape ``(B, p)``."""
    H = _checks.points(H, "H")
    if np.any(H < 0):
        raise ValueError("H must hold non-negative activations (outputs of a ReLU)")
    threshold = _checks.nonnegative(threshold, "threshold")
    total = H.sum(axis=1)
    peak = H.max(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        top1 = np.where(total > 0, peak / total, np.nan)
        participation = np.where(total > 0, total**2 / np.sum(H**2, axis=1), np.nan)
    active = np.sum(H > threshold * peak[:, None], axis=1) * (peak > 0)
    return RepresentationStats(std=H.std(axis=1), top1_share=top1, participation=participation, active=active)


def relative_error(A, B):
    """Return the relative Frobenius error ``||A - B||_F / ||B||_F``."""
    A = np.asarray(A, dtype=np.float64)
    B = np.asarray(B, dtype=np.float64)
    if A.shape != B.shape:
        raise ValueError(f"shapes differ: {A.shape} and {B.shape}")
    scale = np.linalg.norm(B)
    if scale == 0:
        raise ValueError("the reference B is zero, so a relative error is undefined")
    return float(np.linalg.norm(A - B) / scale)


def column_cosines(W, X):
    """Return the ``(p, n)`` cosines between the columns of ``W`` (``(d, p)``) and rows of ``X``.

    A zero column gets cosine 0 with every point.
    """
    X = _checks.points(X)
    W = _checks.weights(W, X.shape[1])
    col_norms = np.linalg.norm(W, axis=0)
    safe = np.where(col_norms > 0, col_norms, 1.0)
    return (W / safe).T @ (X / np.linalg.norm(X, axis=1, keepdims=True)).T


def significant_columns(W, relative=0.1):
    """Return a boolean mask of the columns whose norm exceeds ``relative`` times the largest."""
    norms = np.linalg.norm(np.asarray(W, dtype=np.float64), axis=0)
    if norms.max() == 0:
        return np.zeros_like(norms, dtype=bool)
    return norms > relative * norms.max()


@dataclass(frozen=True)
class StorageReport:
    """How the columns of a learned ``W`` (``(d, p)``) store the training points.

    ``max_cosine`` ``(p,)`` is each column's largest cosine with a training point and ``nearest``
    ``(p,)`` that point's index. ``stored_energy`` ``(n,)`` is the total squared norm of the
    columns aligned with each point (cosine above ``aligned``). ``columns_per_point`` ``(n,)``
    counts the significant aligned columns that share it, and ``top_column_share`` ``(n,)`` is
    the fraction of that energy in the largest one (1 for sparse storage).
    """

    max_cosine: np.ndarray
    nearest: np.ndarray
    significant: np.ndarray
    stored_energy: np.ndarray
    columns_per_point: np.ndarray
    top_column_share: np.ndarray

    @property
    def sparse(self):
        """True when every point is stored, each in a single column holding 90 % of its energy."""
        return bool(np.all(self.columns_per_point >= 1) and np.all(self.top_column_share > 0.9))


def storage_report(W, X, aligned=0.99, relative=0.1):
    """Describe how ``W`` (``(d, p)``) stores the rows of ``X``; see ``StorageReport``."""
    X = _checks.points(X)
    cos = column_cosines(W, X)  # (p, n)
    norms2 = np.sum(np.asarray(W) ** 2, axis=0)  # (p,)
    significant = significant_columns(W, relative)
    nearest = np.argmax(cos, axis=1)
    max_cos = cos[np.arange(cos.shape[0]), nearest]
    n = X.shape[0]
    energy = np.zeros(n)
    per_point = np.zeros(n, dtype=int)
    top_share = np.zeros(n)
    for i in range(n):
        members = (nearest == i) & (max_cos > aligned)
        energy[i] = norms2[members].sum()
        per_point[i] = int(np.sum(members & significant))
        top_share[i] = norms2[members].max() / energy[i] if energy[i] > 0 else 0.0
    return StorageReport(max_cos, nearest, significant, energy, per_point, top_share)
