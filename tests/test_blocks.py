"""Tests of the block-wise construction of Theorem 3.1 in ``reludae.blocks``."""

import numpy as np
import pytest
from scipy.optimize import minimize_scalar
from scipy.stats import ortho_group

from reludae import blocks, metrics

SIGMA, LAM, WIDTHS = 0.05, 1e-3, (2, 2, 2)


@pytest.fixture(scope="module")
def clusters():
    return blocks.clustered_points(3, 4, 24, 2, 0.2, seed=0)


def test_product_formula(clusters):
    X, labels = clusters
    W = blocks.block_weights(X, labels, WIDTHS, SIGMA, LAM)
    n = X.shape[0]
    for k, (product, start) in enumerate(zip(blocks.block_products(X, labels, WIDTHS, SIGMA, LAM), (0, 2, 4))):
        Xk = X[labels == k]
        values, vectors = np.linalg.eigh(Xk.T @ Xk)
        U, lam_j = vectors[:, ::-1][:, :2], values[::-1][:2]
        expected = U @ np.diag((lam_j - n * LAM) / (lam_j + len(Xk) * SIGMA**2)) @ U.T
        block = W[:, start : start + 2]
        # Both sides are computed in float64 from one eigendecomposition: rounding level.
        assert np.allclose(block @ block.T, expected, atol=1e-12)
        assert np.allclose(product, expected, atol=1e-12)


def test_product_invariant_to_rotation(clusters):
    X, labels = clusters
    W = blocks.block_weights(X, labels, WIDTHS, SIGMA, LAM)
    rotations = [ortho_group.rvs(2, random_state=s) for s in range(3)]
    # A random orientation may leave a block inactive, so the activity check is off here.
    R = blocks.block_weights(X, labels, WIDTHS, SIGMA, LAM, rotations=rotations, require_active=False)
    assert not np.allclose(W, R)
    for start in (0, 2, 4):
        a, b = W[:, start : start + 2], R[:, start : start + 2]
        assert np.allclose(a @ a.T, b @ b.T, atol=1e-12)


def test_scalar_minimizer():
    eigenvalue, size, n, sigma, lam = 1.7, 5, 20, 0.3, 0.01

    def objective(a):
        return (eigenvalue * (a - 1) ** 2 + size * sigma**2 * a**2) / n + 2 * lam * a

    numeric = minimize_scalar(objective, bounds=(0, 2), method="bounded", options=dict(xatol=1e-12)).x
    # Bounded Brent search stops within about 1e-9 of the minimizer of a smooth parabola.
    assert blocks.scalar_gain(eigenvalue, size, n, sigma, lam) == pytest.approx(numeric, abs=1e-7)


def test_blocks_active_on_own_cluster(clusters):
    X, labels = clusters
    W = blocks.block_weights(X, labels, WIDTHS, SIGMA, LAM)
    own, other = blocks.activity_margins(W, X, labels, WIDTHS)
    assert np.all(own > 0)
    assert np.all(other < 0)
    fires = X @ W > 0  # (n, p)
    owner = blocks.column_labels(labels, WIDTHS)
    assert np.array_equal(fires, labels[:, None] == owner[None, :])


def test_clustered_points_separability(clusters):
    X, labels = clusters
    alpha, beta = metrics.separability(X, labels)
    assert alpha == pytest.approx(0.2, abs=1e-12)
    assert beta <= -0.4


def test_householder_maps_first_axis():
    for width in (1, 2, 5):
        O = blocks.householder_rotation(width)
        assert np.allclose(O @ O.T, np.eye(width), atol=1e-14)
        assert np.allclose(O[:, 0], np.full(width, 1 / np.sqrt(width)), atol=1e-14)


def test_rotation_generators_count(clusters):
    X, labels = clusters
    W = blocks.block_weights(X, labels, (3, 1, 2), SIGMA, 1e-4)
    assert blocks.rotation_generators(W, (3, 1, 2)).shape == (W.size, 3 + 0 + 1)


def test_lam_too_large(clusters):
    X, labels = clusters
    with pytest.raises(ValueError, match=r"cluster 0: n \* lam = .* is not below the eigenvalue"):
        blocks.block_weights(X, labels, WIDTHS, SIGMA, 1.0)


def test_widths_must_match_clusters(clusters):
    X, labels = clusters
    with pytest.raises(ValueError, match="one block width per cluster"):
        blocks.block_weights(X, labels, (2, 2), SIGMA, LAM)
    with pytest.raises(ValueError, match="each block width must be at least 1"):
        blocks.block_weights(X, labels, (2, 0, 2), SIGMA, LAM)


def test_inactive_block_named():
    X, labels = blocks.clustered_points(3, 8, 24, 5, 0.95, seed=0)
    with pytest.raises(ValueError, match=r"cluster \d+: a column of its block has inner product"):
        blocks.block_weights(X, labels, (5, 5, 5), 0.02, 1e-5)


def test_positive_mean_cosine_rejected(clusters):
    from reludae.claims.blocks import with_positive_mean_cosine

    X, labels = clusters
    with pytest.raises(ValueError, match="point of another cluster"):
        blocks.block_weights(with_positive_mean_cosine(X, labels), labels, WIDTHS, SIGMA, LAM)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(sigma=-0.1), "sigma must be non-negative"),
        (dict(lam=-1e-3), "lam must be non-negative"),
        (dict(labels=np.zeros(5)), r"labels must have shape \(12,\)"),
        (dict(X=np.ones(12)), "X must be a 2-D array"),
        (dict(rotations=[np.ones((2, 2))] * 3), "must be an orthogonal"),
    ],
)
def test_bad_inputs(clusters, kwargs, message):
    X, labels = clusters
    arguments = dict(X=X, labels=labels, widths=WIDTHS, sigma=SIGMA, lam=LAM)
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        blocks.block_weights(**arguments)


def test_linear_failure_spread_matches_bisection():
    from reludae.claims.blocks import failure_spread, predicted_failure_spread

    # The prediction assumes gains of 1; at sigma = 0.02, lam = 1e-5 they are within 3 % of it.
    assert failure_spread(4) == pytest.approx(predicted_failure_spread(4), rel=0.05)
