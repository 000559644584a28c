"""Tests of the digit experiments in ``reludae.experiments.digits`` (no training runs here)."""

import numpy as np
import pytest

from reludae import data, theory, training
from reludae.experiments import digits as ed


def forward(W1, W2, Y):
    return np.maximum(Y @ W1, 0.0) @ W2.T


def fake_model(X, W1, W2, config=ed.MEMORIZER_CONFIG):
    """Build a ``DigitsModel`` with the given weights, as if training had produced them."""
    run = training.TrainResult(
        config=config,
        seeds=(0,),
        W1=W1[None],
        W2=W2[None],
        history_steps=np.array([1]),
        loss_history=np.zeros((1, 1)),
        seconds=0.0,
    )
    return ed.DigitsModel(name="fake", X=X, indices=np.arange(X.shape[0]), labels=np.arange(X.shape[0]), run=run)


@pytest.fixture(scope="module")
def digits():
    X, labels, _ = ed.all_digits()
    return X, labels


@pytest.fixture(scope="module")
def five(digits):
    X, labels = digits
    return ed.select_negative_cosine_digits(X, labels, seed=0)


# --- selecting digits ------------------------------------------------------------------------


def test_selection_negative_distinct_classes(digits, five):
    X, labels = digits
    assert five.shape == (ed.N_MEMORIZED,)
    assert len(set(labels[five])) == ed.N_MEMORIZED
    assert data.max_offdiagonal_cosine(X[five]) < 0


def test_selection_deterministic_per_seed(digits, five):
    X, labels = digits
    assert np.array_equal(ed.select_negative_cosine_digits(X, labels, seed=0), five)
    assert not np.array_equal(ed.select_negative_cosine_digits(X, labels, seed=1), five)


def test_selection_restarts_never_hurt(digits, five):
    X, labels = digits
    one_start = ed.select_negative_cosine_digits(X, labels, seed=0, restarts=1)
    assert data.max_offdiagonal_cosine(X[five]) <= data.max_offdiagonal_cosine(X[one_start])


def test_selection_raises_without_a_negative_set():
    positive = np.abs(np.random.default_rng(0).standard_normal((30, 6)))  # every cosine is positive
    with pytest.raises(ValueError, match="largest pairwise cosine of .* >= 0"):
        ed.select_negative_cosine_digits(positive, np.arange(30) % 5, n=3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 11}, "n = 11 digits of distinct classes cannot be chosen from 10 classes"),
        ({"n": 1}, "n must be at least 2, got 1"),
        ({"n": 2.5}, "n must be an integer, got 2.5"),
        ({"restarts": 0}, "restarts must be at least 1, got 0"),
    ],
)
def test_selection_rejects_bad_arguments(digits, kwargs, match):
    X, labels = digits
    with pytest.raises(ValueError, match=match):
        ed.select_negative_cosine_digits(X, labels, **kwargs)


def test_selection_rejects_labels_of_the_wrong_length(digits):
    X, labels = digits
    with pytest.raises(ValueError, match="labels must have shape"):
        ed.select_negative_cosine_digits(X, labels[:-1])


def test_similar_digit_positive_cosine(digits, five):
    X, labels = digits
    similar = ed.with_similar_digit(X, labels, five)
    assert np.array_equal(similar[:-1], five[:-1])
    assert len(set(labels[similar])) == len(similar)
    assert data.max_offdiagonal_cosine(X[similar]) > 0


@pytest.mark.parametrize(
    "indices, match",
    [
        (np.array([3]), "at least two integers"),
        (np.array([0.0, 1.0]), "at least two integers"),
        (np.array([0, 5000]), r"indices must lie in \[0, 1797\)"),
        (np.array([-1, 2]), r"indices must lie in \[0, 1797\)"),
    ],
)
def test_similar_digit_rejects_bad_indices(digits, indices, match):
    X, labels = digits
    with pytest.raises(ValueError, match=match):
        ed.with_similar_digit(X, labels, indices)


def test_similar_digit_needs_an_unused_class():
    X = np.random.default_rng(0).standard_normal((4, 3))
    with pytest.raises(ValueError, match="no replacement found: every class is already among the kept digits"):
        ed.with_similar_digit(X, np.array([0, 1, 0, 1]), np.array([0, 1, 2]))


# --- merging parallel units ------------------------------------------------------------------


def test_merging_copies_keeps_function():
    X = data.negative_cosine_points(3, 10, seed=1)
    W = theory.memorization_weights(X, 0.1, 0.01)  # (10, 3)
    angles = np.array([0.3, 0.9])
    # Split column 0 into two parallel columns of the same total squared norm, add a zero column.
    W_split = np.column_stack([W[:, 0] * np.cos(angles[0]), W[:, 0] * np.sin(angles[0]), W[:, 1:], np.zeros(10)])
    Y = X[[0, 1, 2, 0]] + 0.1 * np.random.default_rng(2).standard_normal((4, 10))
    M1, M2 = ed.merge_parallel_units(W_split, W_split)
    assert M1.shape == W_split.shape
    assert np.sum(np.linalg.norm(M1, axis=0) > 0) == 3
    np.testing.assert_allclose(forward(M1, M2, Y), forward(W_split, W_split, Y), atol=1e-12)
    np.testing.assert_allclose(np.sum(M1**2) + np.sum(M2**2), 2 * np.sum(W_split**2), rtol=1e-12)
    np.testing.assert_allclose(M1 @ M2.T, W @ W.T, atol=1e-12)


def test_merging_balances_unbalanced_layers():
    u = np.array([1.0, 0.0, 0.0])
    W1 = np.column_stack([2.0 * u, 0.5 * u])
    W2 = np.column_stack([0.5 * u, 3.0 * u])
    M1, M2 = ed.merge_parallel_units(W1, W2)
    np.testing.assert_allclose(np.linalg.norm(M1[:, 0]), np.linalg.norm(M2[:, 0]))
    np.testing.assert_allclose(M1 @ M2.T, W1 @ W2.T)


def test_merging_leaves_units_in_different_directions_alone():
    W1 = np.eye(4)[:, :3]
    W2 = 2.0 * W1
    M1, M2 = ed.merge_parallel_units(W1, W2)
    Y = np.random.default_rng(0).standard_normal((6, 4))
    assert np.sum(np.linalg.norm(M1, axis=0) > 0) == 3
    np.testing.assert_allclose(forward(M1, M2, Y), forward(W1, W2, Y), atol=1e-12)


@pytest.mark.parametrize(
    "W1, W2, threshold, match",
    [
        (np.ones(3), np.ones(3), 0.99, r"W1 must have shape \(d, p\)"),
        (np.ones((3, 2)), np.ones((4, 2)), 0.99, r"W2 must have shape \(d, p\) = \(3, p\)"),
        (np.ones((3, 2)), np.ones((3, 4)), 0.99, "W1 and W2 must have the same shape"),
        (np.ones((3, 2)), np.ones((3, 2)), 1.0, "threshold must lie strictly between -1 and 1, got 1.0"),
        (np.full((3, 2), np.nan), np.ones((3, 2)), 0.99, "W1 contains NaN"),
    ],
)
def test_merging_rejects_bad_input(W1, W2, threshold, match):
    with pytest.raises(ValueError, match=match):
        ed.merge_parallel_units(W1, W2, threshold=threshold)


# --- measurements ----------------------------------------------------------------------------


def test_closed_form_measurements(digits, five):
    X, _ = digits
    points = X[five]
    W = theory.memorization_weights(points, ed.SIGMA, ed.LAM, width=ed.WIDTH)
    model = fake_model(points, W, W)
    columns, per_digit = ed.column_digit_match(W, points)
    np.testing.assert_allclose(columns, 1.0)
    np.testing.assert_allclose(per_digit, 1.0)
    assert ed.storage_match(model) == pytest.approx(1.0)
    error, tolerance, effect = ed.product_error(model)
    assert error < 1e-12
    assert tolerance == pytest.approx(ed.PRODUCT_TOLERANCE_FRACTION * effect)
    assert effect > 0
    assert ed.median_statistic(model, "top1_share") == pytest.approx(1.0)
    assert ed.median_statistic(model, "participation", worst="max") == pytest.approx(1.0)
    assert ed.closed_form_top1_share(points) == pytest.approx(1.0)


def test_split_closed_form_merged_one_hot(digits, five):
    X, _ = digits
    points = X[five]
    W = theory.memorization_weights(points, ed.SIGMA, ed.LAM)
    W_split = np.hstack([W, W]) / np.sqrt(2.0)  # every digit in two equal parallel units
    model = fake_model(points, W_split, W_split)
    assert ed.median_statistic(model, "top1_share", merged=False) == pytest.approx(0.5)
    assert ed.median_statistic(model, "top1_share", merged=True) == pytest.approx(1.0)
    assert ed.product_error(model)[0] < 1e-12


def test_matched_columns_and_representation(digits, five):
    X, _ = digits
    points = X[five]
    W = theory.memorization_weights(points, ed.SIGMA, ed.LAM, width=ed.WIDTH)
    columns, cosines = ed.matched_columns(W, points[::-1])
    np.testing.assert_allclose(cosines, 1.0)
    np.testing.assert_allclose(columns, W[:, : len(five)].T[::-1])
    H = ed.representation(W, points)
    assert H.shape == (len(five), ed.WIDTH)
    assert np.all(np.count_nonzero(H, axis=1) == 1)


def test_noisy_inputs_cycle_through_the_digits(digits, five):
    X, _ = digits
    points = X[five]
    model = fake_model(points, np.zeros((64, 2)), np.zeros((64, 2)))
    Y = ed.noisy_inputs(model, 12, seed=3)
    assert Y.shape == (12, 64)
    residual = Y - points[np.arange(12) % len(five)]
    assert 0.5 * ed.SIGMA < residual.std() < 1.5 * ed.SIGMA
    np.testing.assert_array_equal(Y, ed.noisy_inputs(model, 12, seed=3))
    with pytest.raises(ValueError, match="total must be at least 1, got 0"):
        ed.noisy_inputs(model, 0)


def test_measurements_reject_zero_weights_and_bad_fields(digits, five):
    X, _ = digits
    points = X[five]
    zero = np.zeros((64, 4))
    with pytest.raises(ValueError, match="W has no nonzero column"):
        ed.column_digit_match(zero, points)
    with pytest.raises(ValueError, match="W has no nonzero column"):
        ed.matched_columns(zero, points)
    model = fake_model(points, zero, zero)
    with pytest.raises(ValueError, match="field must name a RepresentationStats field, got 'mean'"):
        ed.median_statistic(model, "mean")
    with pytest.raises(ValueError, match="worst must be 'min' or 'max', got 'median'"):
        ed.median_statistic(model, "std", worst="median")
    with pytest.raises(ValueError, match=r"W1 must have shape \(d, p\) = \(64, p\)"):
        ed.representation(np.zeros((8, 2)), points)


@pytest.mark.parametrize("factory", [ed.memorizer, ed.similar_memorizer, ed.generalizer])
@pytest.mark.parametrize(
    "seed, match", [(-1, "seed must be at least 0, got -1"), (1.5, "seed must be an integer, got 1.5")]
)
def test_trained_models_reject_bad_seeds(factory, seed, match):
    with pytest.raises(ValueError, match=match):
        factory(seed)


def test_all_digits_returns_copies():
    X, labels, mean = ed.all_digits()
    X[0, 0] = 99.0
    assert ed.all_digits()[0][0, 0] != 99.0
    assert X.shape == (1797, 64)
    assert labels.shape == (1797,)
    assert mean.shape == (64,)


# --- the histogram helper used by the chapter ------------------------------------------------


def test_histogram_panels_draws_and_rejects_empty_input():
    from reludae import plotting

    fig = plotting.histogram_panels([("share", {"a": [0.1, 0.5, np.nan], "b": [1.0]})], bins=5)
    assert len(fig.axes) == 1
    plotting.plt.close(fig)
    with pytest.raises(ValueError, match="panels is empty"):
        plotting.histogram_panels([])
    with pytest.raises(ValueError, match="panel 'share' has no finite values to draw"):
        plotting.histogram_panels([("share", {"a": [np.nan]})])
