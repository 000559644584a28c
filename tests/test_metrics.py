"""Tests of separability, representation statistics and weight invariants in ``reludae.metrics``."""

import numpy as np
import pytest

from reludae import data, metrics, theory

# --- separability ---------------------------------------------------------------------------


def three_clusters():
    """Clusters with means (1, 0), (-1, 1) and (-1, -1), listed out of order, with string labels."""
    X = np.array([[1.0, 0.2], [-1.0, 1.3], [-1.0, -1.0], [1.0, -0.2], [-1.0, 0.7]])
    labels = np.array(["a", "b", "c", "a", "b"])
    return X, labels


def test_separability_known_values():
    X, labels = three_clusters()
    alpha, beta = metrics.separability(X, labels)

    # rounding: cluster b has points 0.3 from a mean of norm sqrt(2)
    assert alpha == pytest.approx(0.3 / np.sqrt(2), rel=1e-12)
    # rounding: the means (-1, 1) and (-1, -1) are orthogonal, the other pairs at cosine -1/sqrt(2)
    assert beta == pytest.approx(0.0, abs=1e-12)


def test_separability_separated_means():
    X, labels = three_clusters()
    keep = labels != "c"
    alpha, beta = metrics.separability(X[keep], labels[keep])

    # rounding
    assert beta == pytest.approx(-1 / np.sqrt(2), rel=1e-12)
    # rounding
    assert alpha == pytest.approx(0.3 / np.sqrt(2), rel=1e-12)


def test_separability_one_cluster():
    X = np.array([[2.0, 0.5], [2.0, -0.5]])
    alpha, beta = metrics.separability(X, [0, 0])

    assert beta == -1.0
    # rounding
    assert alpha == pytest.approx(0.25, rel=1e-12)


@pytest.mark.parametrize("labels, name", [([7, 7, 3], "7"), (["a", "a", "b"], "'a'")])
def test_separability_zero_mean_raises(labels, name):
    X = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])

    with pytest.raises(ValueError, match=f"^cluster {name} has a zero mean"):
        metrics.separability(X, labels)


def test_separability_label_count_raises():
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\).*got shape \(2,\)"):
        metrics.separability(np.eye(3), [0, 1])


# --- representation statistics --------------------------------------------------------------


def test_representation_one_hot():
    stats = metrics.representation_stats(3.0 * np.eye(4))

    np.testing.assert_array_equal(stats.top1_share, 1.0)
    np.testing.assert_array_equal(stats.participation, 1.0)
    np.testing.assert_array_equal(stats.active, 1)
    # rounding: population standard deviation of (3, 0, 0, 0)
    np.testing.assert_allclose(stats.std, 3.0 * np.sqrt(3) / 4, rtol=1e-12)


def test_representation_uniform():
    stats = metrics.representation_stats(np.full((2, 5), 0.7))

    # rounding
    np.testing.assert_allclose(stats.participation, 5.0, rtol=1e-12)
    # rounding
    np.testing.assert_allclose(stats.top1_share, 0.2, rtol=1e-12)
    np.testing.assert_array_equal(stats.active, 5)
    # rounding
    np.testing.assert_allclose(stats.std, 0.0, atol=1e-15)


def test_representation_zero_row_nan():
    stats = metrics.representation_stats(np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]))

    assert np.isnan(stats.top1_share[0])
    assert np.isnan(stats.participation[0])
    assert stats.active[0] == 0
    # rounding
    assert stats.participation[1] == pytest.approx(2.0, rel=1e-12)


def test_representation_threshold():
    stats = metrics.representation_stats(np.array([[1.0, 0.05, 0.005]]), threshold=1e-2)

    assert stats.active[0] == 2


def test_representation_negative_raises():
    with pytest.raises(ValueError, match="non-negative activations"):
        metrics.representation_stats(np.array([[1.0, -0.1]]))


# --- comparisons of weights -----------------------------------------------------------------


def test_relative_error_value():
    # rounding
    assert metrics.relative_error([[3.0, 4.0]], [[0.0, 5.0]]) == pytest.approx(np.sqrt(10) / 5, rel=1e-12)


def test_relative_error_rejects():
    with pytest.raises(ValueError, match=r"shapes differ: \(2,\) and \(3,\)"):
        metrics.relative_error(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="reference B is zero"):
        metrics.relative_error(np.ones(2), np.zeros(2))


def test_column_cosines_values():
    W = np.array([[2.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # columns (2, 0), (0, 0), (1, 1)
    X = np.array([[3.0, 0.0], [0.0, -1.0]])
    C = metrics.column_cosines(W, X)

    assert C.shape == (3, 2)
    # rounding
    np.testing.assert_allclose(C, [[1.0, 0.0], [0.0, 0.0], [1 / np.sqrt(2), -1 / np.sqrt(2)]], atol=1e-12)


def test_significant_columns_mask():
    W = np.array([[1.0, 0.05, 0.5, 0.0]])

    np.testing.assert_array_equal(metrics.significant_columns(W), [True, False, True, False])
    np.testing.assert_array_equal(metrics.significant_columns(np.zeros((2, 3))), [False, False, False])


# --- storage of training points -------------------------------------------------------------


@pytest.fixture
def points():
    return data.negative_cosine_points(3, 8, seed=0)


def test_storage_memorizer_sparse(points):
    W = theory.memorization_weights(points, 0.1, 0.0, width=5)
    report = metrics.storage_report(W, points)

    assert report.sparse
    np.testing.assert_array_equal(report.columns_per_point, [1, 1, 1])
    np.testing.assert_array_equal(report.nearest[:3], [0, 1, 2])
    np.testing.assert_array_equal(report.significant, [True, True, True, False, False])
    # rounding
    np.testing.assert_allclose(report.stored_energy, theory.memorization_gains(points, 0.1), rtol=1e-12)
    # rounding
    np.testing.assert_allclose(report.top_column_share, 1.0, rtol=1e-12)


def test_storage_split_point_not_sparse(points):
    W = theory.memorization_weights(points, 0.1, 0.0, width=4)
    W[:, 3] = W[:, 0] / np.sqrt(2)  # the first point now sits in two parallel columns
    W[:, 0] = W[:, 3]
    report = metrics.storage_report(W, points)

    assert not report.sparse
    assert report.columns_per_point[0] == 2
    # rounding
    assert report.top_column_share[0] == pytest.approx(0.5, rel=1e-12)
    # rounding: splitting keeps the energy
    assert report.stored_energy[0] == pytest.approx(theory.memorization_gains(points, 0.1)[0], rel=1e-12)


def test_storage_missing_point(points):
    W = theory.memorization_weights(points, 0.1, 0.0)
    W[:, 2] = 0.0
    report = metrics.storage_report(W, points)

    assert not report.sparse
    np.testing.assert_array_equal(report.columns_per_point, [1, 1, 0])
    assert report.stored_energy[2] == 0.0
    assert report.top_column_share[2] == 0.0


def test_storage_misaligned_column(points):
    """A column at cosine 0.9 with its point does not count as storing it."""
    W = theory.memorization_weights(points, 0.1, 0.0)
    moved = data.with_positive_cosine(np.stack([points[1], W[:, 1]]), cosine=0.9, index=(0, 1))
    W[:, 1] = moved[1]
    report = metrics.storage_report(W, points)

    assert report.columns_per_point[1] == 0
    # rounding
    assert report.max_cosine[1] == pytest.approx(0.9, rel=1e-12)


def test_storage_accepts_lists(points):
    W = theory.memorization_weights(points, 0.1, 0.0)
    report = metrics.storage_report(W.tolist(), points.tolist())

    assert report.sparse
