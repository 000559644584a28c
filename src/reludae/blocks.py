"""Block-wise local minimizers of the ReLU denoising autoencoder (Theorem 3.1).

Theorem 3.1 of Zhang et al. (ICLR 2026) concerns a training set split into clusters
``X_1, ..., X_M`` whose means have pairwise negative cosines. Then the tied weights
``W = [W_{X_1}, ..., W_{X_M}]``, where block ``k`` has ``p_k`` columns, are a local minimizer of the
loss up to a residual exponentially small in ``1 / sigma^2``, with

    W_{X_k} = U_k (I + n_k sigma^2 Lambda_k^{-1})^{-1/2} (I - n lam Lambda_k^{-1})^{1/2} O_k^T,

where ``(U_k, Lambda_k)`` are the top ``p_k`` eigenpairs of the uncentered Gram matrix
``X_k^T X_k``, ``n_k`` is the cluster size, ``n`` the number of all points and ``O_k`` orthogonal.
So ``W_{X_k} W_{X_k}^T = U_k diag(a) U_k^T`` with gains ``a_j = (lam_j - n lam) / (lam_j + n_k sigma^2)``.

Orientation (this package's choice, not the paper's). With ReLU a block acts linearly on its
cluster only if each of its columns has a positive inner product with every point of the cluster
and a negative one with every other point. The package orients ``u_1`` toward the cluster mean,
gives every other eigenvector a positive largest-magnitude entry, and takes for ``O_k`` the
Householder reflection that maps ``e_1`` to ``(1, ..., 1) / sqrt(p_k)``. Every column then carries
``sqrt(a_1 / p_k)`` along ``u_1``. With a large spread or a wide block, the components along
``u_2, ..., u_{p_k}`` can outweigh that share, and ``block_weights`` raises ``ValueError``.
"""

import numpy as np

from . import _checks, data


def clustered_points(n_clusters, per_cluster, d, rank, spread, seed=0, mean_norm=1.0, max_cosine=-0.4, max_tries=1000):
    """Draw clusters around means with pairwise negative cosines; returns ``(X (n, d), labels (n,))``.

    The means come from ``data.negative_cosine_points`` in ``R^(n_clusters - 1)`` (a centered
    sample, so the cosines are strongly negative), with norm ``mean_norm``, embedded in ``R^d`` by a
    random orthonormal basis. The sample is redrawn, up to ``max_tries`` times, until every cosine
    between two means is at most ``max_cosine``. Cluster ``k`` is
    ``mean_k + spread * mean_norm * z`` where the offsets ``z`` lie in a random ``rank``-dimensional
    subspace orthogonal to every mean, are centered (so the cluster mean is exactly ``mean_k``) and
    scaled so that the largest has norm 1. Hence ``metrics.separability`` returns
    ``alpha = spread`` (for ``per_cluster >= 2``), and the offsets do not depend on ``spread``, so
    one seed gives the same shape at every spread.
    """
    n_clusters = _checks.count(n_clusters, "n_clusters", minimum=2)
    per_cluster = _checks.count(per_cluster, "per_cluster")
    d = _checks.count(d, "d")
    rank = _checks.count(rank, "rank")
    if rank > d - n_clusters + 1:
        raise ValueError(
            f"rank = {rank} must be at most d - n_clusters + 1 = {d - n_clusters + 1}, so the offsets can be "
            "orthogonal to every mean"
        )
    spread = _checks.nonnegative(spread, "spread")
    mean_norm = _checks.positive(mean_norm, "mean_norm")
    rng = np.random.default_rng(seed)
    if n_clusters - 1 > d:
        raise ValueError(f"n_clusters = {n_clusters} clusters need d >= n_clusters - 1 = {n_clusters - 1}, got d = {d}")
    max_cosine = _checks.real(max_cosine, "max_cosine")
    for _ in range(_checks.count(max_tries, "max_tries")):
        flat = data.negative_cosine_points(n_clusters, n_clusters - 1, seed=rng, norm_range=(mean_norm, mean_norm))
        if data.max_offdiagonal_cosine(flat) <= max_cosine:
            break
    else:
        raise ValueError(
            f"no draw of {n_clusters} means had every cosine at most {max_cosine} in {max_tries} tries; "
            f"raise max_cosine (the most negative possible is {-1 / (n_clusters - 1):.3g})"
        )
    mean_basis, _ = np.linalg.qr(rng.standard_normal((d, n_clusters - 1)))  # (d, M - 1), spans the means
    means = flat @ mean_basis.T
    points = []
    for mean in means:
        G = rng.standard_normal((d, rank))
        G -= mean_basis @ (mean_basis.T @ G)
        basis, _ = np.linalg.qr(G)  # (d, rank), orthogonal to every mean
        Z = rng.standard_normal((per_cluster, rank))
        Z -= Z.mean(axis=0)
        largest = np.linalg.norm(Z, axis=1).max()
        offsets = (Z / largest if largest > 0 else Z) @ basis.T
        points.append(mean + spread * mean_norm * offsets)
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    return np.concatenate(points), labels


def _clusters_and_widths(X, labels, widths):
    X = _checks.points(X)
    labels = _checks.labels(labels, X.shape[0])
    clusters = np.unique(labels)
    widths = tuple(widths)
    if len(widths) != len(clusters):
        raise ValueError(
            f"widths must give one block width per cluster ({len(clusters)} clusters, labels "
            f"{clusters.tolist()}), got {len(widths)} widths"
        )
    widths = tuple(_checks.count(w, "each block width") for w in widths)
    return X, labels, clusters, widths


def _oriented_eigenpairs(Xk, width, cluster):
    """Return the top ``width`` eigenpairs of ``Xk^T Xk`` (descending), with signs fixed."""
    d = Xk.shape[1]
    if width > d:
        raise ValueError(f"cluster {cluster!r}: block width {width} exceeds the dimension d = {d}")
    values, vectors = np.linalg.eigh(Xk.T @ Xk)
    values, vectors = values[::-1][:width], vectors[:, ::-1][:, :width]
    if vectors[:, 0] @ Xk.mean(axis=0) < 0:
        vectors[:, 0] *= -1.0
    for j in range(1, width):
        if vectors[np.argmax(np.abs(vectors[:, j])), j] < 0:
            vectors[:, j] *= -1.0
    return values, vectors


def block_gains(X, labels, widths, sigma, lam):
    """Return per cluster ``(eigenvalues, eigenvectors (d, p_k), gains a (p_k,))``, in label order.

    Raises ``ValueError`` when ``n lam >= lam_j`` for one of the top ``p_k`` eigenvalues of a
    cluster, since that direction would get a non-positive gain.
    """
    X, labels, clusters, widths = _clusters_and_widths(X, labels, widths)
    sigma = _checks.nonnegative(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    n = X.shape[0]
    result = []
    for cluster, width in zip(clusters, widths):
        Xk = X[labels == cluster]
        values, vectors = _oriented_eigenpairs(Xk, width, cluster.item())
        smallest = values[-1]
        if n * lam >= smallest:
            raise ValueError(
                f"cluster {cluster.item()!r}: n * lam = {n * lam:.6g} is not below the eigenvalue "
                f"{smallest:.6g} of X_k^T X_k used by the block of width {width}; use lam < {smallest / n:.6g} "
                "or a narrower block"
            )
        gains = (values - n * lam) / (values + len(Xk) * sigma**2)
        result.append((values, vectors, gains))
    return result


def householder_rotation(width):
    """Return the symmetric orthogonal ``(width, width)`` reflection that maps ``e_1`` to ``1 / sqrt(width)``."""
    width = _checks.count(width, "width")
    target = np.full(width, 1.0 / np.sqrt(width))
    w = -target
    w[0] += 1.0
    norm2 = w @ w
    if norm2 == 0:
        return np.eye(width)
    return np.eye(width) - 2.0 * np.outer(w, w) / norm2


def column_labels(labels, widths):
    """Return the cluster label of every column, ``(sum widths,)``, blocks in label order."""
    clusters = np.unique(np.asarray(labels))
    if len(widths) != len(clusters):
        raise ValueError(f"widths must give one block width per cluster ({len(clusters)}), got {len(widths)}")
    return np.repeat(clusters, widths)


def activity_margins(W, X, labels, widths):
    """Return ``(own, other)``, each ``(M,)`` in label order: per block, the smallest inner product
    of a column with a point of its own cluster and the largest with a point of another cluster.

    The block acts linearly on exactly its own cluster when ``own > 0`` and ``other < 0``.
    """
    X, labels, clusters, widths = _clusters_and_widths(X, labels, widths)
    W = _checks.weights(W, X.shape[1])
    owner = column_labels(labels, widths)
    if W.shape[1] != owner.size:
        raise ValueError(f"W has {W.shape[1]} columns but the widths add up to {owner.size}")
    products = X @ W  # (n, p)
    own = np.empty(len(clusters))
    other = np.full(len(clusters), -np.inf)
    for k, cluster in enumerate(clusters):
        block = products[:, owner == cluster]
        own[k] = block[labels == cluster].min()
        if np.any(labels != cluster):
            other[k] = block[labels != cluster].max()
    return own, other


def block_weights(X, labels, widths, sigma, lam, rotations=None, require_active=True):
    """Return the block-wise weights ``[W_{X_1}, ..., W_{X_M}]`` of Theorem 3.1, shape ``(d, sum widths)``.

    ``labels`` ``(n,)`` names the cluster of every row of ``X`` and ``widths`` gives the block
    width ``p_k`` of each cluster in sorted label order. ``rotations`` replaces the Householder
    orientation by given orthogonal ``(p_k, p_k)`` matrices ``O_k``. Raises ``ValueError`` for bad
    shapes, ``sigma < 0``, ``lam < 0``, ``n lam >= lam_j`` (see ``block_gains``), and, unless
    ``require_active`` is false, when a block does not act on exactly its own cluster.
    """
    X, labels, clusters, widths = _clusters_and_widths(X, labels, widths)
    parts = block_gains(X, labels, widths, sigma, lam)
    if rotations is None:
        rotations = [householder_rotation(w) for w in widths]
    if len(rotations) != len(widths):
        raise ValueError(f"rotations must give one matrix per cluster ({len(widths)}), got {len(rotations)}")
    blocks = []
    for cluster, width, (_, vectors, gains), O in zip(clusters, widths, parts, rotations):
        O = np.asarray(O, dtype=np.float64)
        if O.shape != (width, width) or not np.allclose(O.T @ O, np.eye(width), atol=1e-10):
            raise ValueError(f"cluster {cluster.item()!r}: the rotation must be an orthogonal ({width}, {width}) matrix")
        blocks.append(vectors * np.sqrt(gains) @ O.T)
    W = np.concatenate(blocks, axis=1)
    if require_active:
        own, other = activity_margins(W, X, labels, widths)
        for cluster, low, high in zip(clusters, own, other):
            if low <= 0:
                raise ValueError(
                    f"cluster {cluster.item()!r}: a column of its block has inner product {low:.4g} <= 0 with "
                    "a point of its own cluster, so the block is not linear on the cluster; reduce the spread "
                    "or the block width"
                )
            if high >= 0:
                raise ValueError(
                    f"cluster {cluster.item()!r}: a column of its block has inner product {high:.4g} >= 0 with "
                    "a point of another cluster, so the block fires outside its cluster; the cluster means "
                    "need more negative cosines"
                )
    return W


def block_products(X, labels, widths, sigma, lam):
    """Return the predicted ``W_{X_k} W_{X_k}^T = U_k diag(a) U_k^T`` per cluster, each ``(d, d)``."""
    return [vectors * gains @ vectors.T for _, vectors, gains in block_gains(X, labels, widths, sigma, lam)]


def scalar_gain(eigenvalue, cluster_size, n, sigma, lam):
    """Return the minimizer ``a = (lam_j - n lam) / (lam_j + n_k sigma^2)`` of the scalar problem
    ``(1/n) [lam_j (a - 1)^2 + n_k sigma^2 a^2] + 2 lam a`` along one eigendirection."""
    return (eigenvalue - n * lam) / (eigenvalue + cluster_size * sigma**2)


def residual_rate(W, X):
    """Return ``c = min_{i,j} (w_j . x_i)^2 / (2 ||w_j||^2)``, the predicted rate of ``exp(-c / sigma^2)``.

    Unit ``j`` flips its state on a noisy copy of ``x_i`` (stops firing on its own cluster or
    fires on another) with probability ``Phi(-|w_j . x_i| / (sigma ||w_j||))``, about
    ``exp(-(w_j . x_i)^2 / (2 sigma^2 ||w_j||^2))``. The smallest margin sets the rate. This is the
    book's own estimate. The theorem gives no constant.
    """
    X = _checks.points(X)
    W = _checks.weights(W, X.shape[1])
    margins = (X @ W) / np.linalg.norm(W, axis=0)
    return float(np.min(margins**2) / 2.0)


def rotation_generators(W, widths):
    """Return an orthonormal basis ``(d p, m)`` of the rotations ``W -> W A`` within blocks.

    ``A`` is antisymmetric and supported on a pair of columns of one block; the vectors are
    flattened in C order like ``expected.expected_hessian`` for tied weights.
    """
    W = np.asarray(W, dtype=np.float64)
    p = W.shape[1]
    starts = np.concatenate([[0], np.cumsum(widths)])
    if starts[-1] != p:
        raise ValueError(f"W has {p} columns but the widths add up to {starts[-1]}")
    vectors = []
    for start, stop in zip(starts[:-1], starts[1:]):
        for j in range(start, stop):
            for k in range(j + 1, stop):
                A = np.zeros((p, p))
                A[j, k], A[k, j] = 1.0, -1.0
                vectors.append((W @ A).ravel())
    if not vectors:
        return np.zeros((W.size, 0))
    U, s, _ = np.linalg.svd(np.stack(vectors, axis=1), full_matrices=False)
    return U[:, s > 1e-8 * s[0]]


def hessian_split(H, generators):
    """Split a symmetric ``H`` into its spectrum on the complement of ``generators`` and on their span.

    Returns ``(complement eigenvalues, generator eigenvalues)``, both ascending.
    """
    P = generators
    size = H.shape[0]
    if P.shape[1] == 0:
        return np.linalg.eigvalsh(H), np.zeros(0)
    Q, _ = np.linalg.qr(np.concatenate([P, np.random.default_rng(0).standard_normal((size, size - P.shape[1]))], axis=1))
    complement = Q[:, P.shape[1] :]
    return np.linalg.eigvalsh(complement.T @ H @ complement), np.linalg.eigvalsh(P.T @ H @ P)


def linear_failure_spread(X, labels, widths):
    """Predict the spread above which ``block_weights`` stops being active, for ``clustered_points`` data.

    Assumes ``sigma = 0`` and ``lam = 0`` (all gains 1), and clusters ``mean_k + s ||mean_k|| z``
    with centered offsets ``z`` orthogonal to every mean, as ``clustered_points`` draws them. Then
    ``u_1`` is the mean direction, ``u_2, ...`` are eigenvectors of the offsets' Gram matrix that do
    not depend on ``s``, and every inner product of a column with a point is affine in ``s``.
    Returns the smallest root over all columns and points, in units of the spread of ``X`` (``inf``
    when no inner product changes sign). The book's own prediction, used to check the boundary.
    """
    X, labels, clusters, widths = _clusters_and_widths(X, labels, widths)
    means = {c: X[labels == c].mean(axis=0) for c in clusters}
    alpha = max(np.linalg.norm(X[labels == c] - means[c], axis=1).max() / np.linalg.norm(means[c]) for c in clusters)
    if alpha == 0:
        return float("inf")
    roots = [np.inf]
    for cluster, width in zip(clusters, widths):
        mean = means[cluster]
        offsets = X[labels == cluster] - mean
        _, vectors = np.linalg.eigh(offsets.T @ offsets)
        U = vectors[:, ::-1][:, : width - 1]
        for j in range(U.shape[1]):
            if U[np.argmax(np.abs(U[:, j])), j] < 0:
                U[:, j] *= -1.0
        O = householder_rotation(width)
        unit = mean / np.linalg.norm(mean)
        for other in clusters:
            points = X[labels == other]
            base = points @ unit  # (n_l,), the s-independent part: ||mean_l|| cos(mean_k, mean_l)
            slope = (points - means[other]) @ U @ O[:, 1:].T  # (n_l, width), proportional to s
            constant = np.outer(base, O[:, 0])  # column i carries O[i, 0] = 1/sqrt(p) along u_1
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio = -constant / slope  # spread multiple where the inner product crosses zero
            valid = np.isfinite(ratio) & (ratio > 0)
            if np.any(valid):
                roots.append(float(ratio[valid].min()))
    return float(min(roots) * alpha)
