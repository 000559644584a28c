"""Tests of the Monte Carlo trainer in ``reludae.training``."""

import numpy as np
import pytest

from reludae import data, metrics, theory, training

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIGMA, LAM = 0.1, 1e-2
MEMORIZATION_SEEDS = tuple(range(16))


@pytest.fixture(scope="module")
def X():
    """Three points in R^20 with norms in [0.8, 1.2] and pairwise cosines at most -0.36."""
    return data.negative_cosine_points(3, 20, seed=2)


@pytest.fixture(scope="module")
def memorization_run(X, one_torch_thread):
    """Train 16 tied models of width 6 on the three points (about 1 s of CPU time)."""
    config = training.TrainConfig(
        width=6, sigma=SIGMA, lam=LAM, tied=True, optimizer="adam", lr=1e-2, steps=1500, record_every=10
    )
    return training.train(X, config, seeds=MEMORIZATION_SEEDS, progress=False)


@pytest.fixture(scope="module")
def stored(memorization_run, X):
    """One flag per seed: true when every point has an aligned column (cosine above 0.99)."""
    return np.array([metrics.storage_report(W, X).columns_per_point.min() >= 1 for W in memorization_run.W1])


def small_config(**changes):
    config = training.TrainConfig(width=4, sigma=0.2, lam=1e-3, steps=30, record_every=10)
    return config.with_(**changes)


# --- configuration --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field, value, match",
    [
        ("width", 0, "width must be at least 1, got 0"),
        ("width", 2.5, "width must be an integer, got 2.5"),
        ("sigma", 0.0, "sigma must be positive, got 0.0"),
        ("sigma", float("nan"), "sigma must be finite, got nan"),
        ("lam", -1.0, "lam must be non-negative, got -1.0"),
        ("optimizer", "lbfgs", r"optimizer must be one of \['adam', 'rmsprop', 'sgd'\], got 'lbfgs'"),
        ("lr", 0.0, "lr must be positive, got 0.0"),
        ("final_lr_ratio", -0.5, "final_lr_ratio must be positive, got -0.5"),
        ("steps", 0, "steps must be at least 1, got 0"),
        ("noise_draws", 0, "noise_draws must be at least 1, got 0"),
        ("batch_size", 0, "batch_size must be at least 1, got 0"),
        ("init_scale", -1.0, "init_scale must be non-negative, got -1.0"),
        ("record_every", 0, "record_every must be at least 1, got 0"),
    ],
)
def test_config_rejects_bad_field(field, value, match):
    arguments = {"width": 4, "sigma": 0.1}
    arguments[field] = value

    with pytest.raises(ValueError, match=match):
        training.TrainConfig(**arguments)


def test_config_with_changes_copy():
    config = small_config()
    changed = config.with_(lr=0.5)

    assert changed.lr == 0.5
    assert config.lr == 1e-2
    with pytest.raises(ValueError, match="lr must be positive"):
        config.with_(lr=-1.0)


# --- the training loop ----------------------------------------------------------------------


def test_train_result_shapes(X):
    result = training.train(X, small_config(steps=25), seeds=(0, 1), progress=False)

    assert result.W1.shape == (2, 20, 4)
    assert result.W2.shape == (2, 20, 4)
    assert result.products.shape == (2, 20, 20)
    assert result.seeds == (0, 1)
    np.testing.assert_array_equal(result.history_steps, [10, 20, 25])  # the last step is always recorded
    assert result.loss_history.shape == (2, 3)
    assert np.all(np.isfinite(result.loss_history))
    assert result.seconds > 0


def test_train_products_and_weights(X):
    result = training.train(X, small_config(), seeds=(0, 1), progress=False)
    W1, W2 = result.weights(1)

    np.testing.assert_array_equal(W1, result.W1[1])
    # rounding
    np.testing.assert_allclose(result.products[1], W1 @ W2.T, rtol=1e-12, atol=1e-15)


def test_train_reproducible(X):
    first = training.train(X, small_config(batch_size=2), seeds=(4, 5), progress=False)
    second = training.train(X, small_config(batch_size=2), seeds=(4, 5), progress=False)

    np.testing.assert_array_equal(first.W1, second.W1)
    np.testing.assert_array_equal(first.W2, second.W2)
    np.testing.assert_array_equal(first.loss_history, second.loss_history)


def test_train_seeds_differ(X):
    result = training.train(X, small_config(), seeds=(4, 5), progress=False)

    assert not np.allclose(result.W1[0], result.W1[1])


def test_train_tied_weights_equal(X):
    result = training.train(X, small_config(tied=True), seeds=(0, 1), progress=False)

    np.testing.assert_array_equal(result.W1, result.W2)


@pytest.mark.parametrize("optimizer", ["rmsprop", "sgd"])
def test_train_other_optimizers(X, optimizer):
    result = training.train(X, small_config(optimizer=optimizer, lr=1e-3), seeds=(0,), progress=False)

    assert np.all(np.isfinite(result.W1))
    assert np.all(np.isfinite(result.loss_history))


def test_train_rejects_bad_arguments(X):
    with pytest.raises(ValueError, match="config must be a TrainConfig, got dict"):
        training.train(X, {"width": 4, "sigma": 0.1})
    with pytest.raises(ValueError, match="batch_size = 4 exceeds the number of points n = 3"):
        training.train(X, small_config(batch_size=4))
    with pytest.raises(ValueError, match="at least one seed"):
        training.train(X, small_config(), seeds=())
    with pytest.raises(ValueError, match="seed must be at least 0, got -2"):
        training.train(X, small_config(), seeds=(-2,))
    with pytest.raises(ValueError, match="2-D array"):
        training.train(X[0], small_config())


# --- memorization of three points -----------------------------------------------------------


def test_memorization_loss_decreases(memorization_run, X):
    history = memorization_run.loss_history
    initial_loss = np.mean(np.sum(X**2, axis=1))  # the loss of f = 0, about that of the small init

    assert np.all(history[:, 0] < initial_loss)
    assert np.all(history[:, -20:].mean(axis=1) < history[:, 0])


def test_memorization_most_seeds_store(stored):
    """Some seeds leave a point with no active column; it then never recruits one.

    Measured on these points: 2 of the 16 seeds (11 and 14), and 6 of 32 seeds. On three other
    draws of three points, 1 to 8 of 32 tied seeds failed, and up to 11 of 32 untied ones.
    """
    # residual: the measured failure rate is 1/8 here, so at most a quarter of the seeds may fail
    assert np.sum(stored) >= 12


def test_memorization_product_matches_memorizer(memorization_run, stored, X):
    target = theory.memorization_weights(X, SIGMA, LAM)
    errors = np.array([metrics.relative_error(P, target @ target.T) for P in memorization_run.products])

    # residual: constant-rate Adam on 8-draw gradients keeps fluctuating around the
    # minimizer; the measured maximum over 26 storing seeds of 32 was 0.05
    assert np.all(errors[stored] <= 0.1)
    # a seed that leaves a point out misses the whole term a_i x_i x_i^T / ||x_i||^2
    assert np.all(errors[~stored] >= 0.3)


def test_memorization_final_loss_matches(memorization_run, stored, X):
    tail = memorization_run.loss_history[:, -50:]  # the last 500 steps
    final = tail.mean(axis=1)
    stderr = tail.std(axis=1, ddof=1) / np.sqrt(tail.shape[1])
    predicted = theory.memorization_loss(X, SIGMA, LAM)

    # Monte Carlo error (4 standard errors of the recorded losses) plus a 3 % residual, because
    # Adam at a constant rate hovers above the minimum (measured excess about 1.5 %)
    assert np.all(np.abs(final[stored] - predicted) <= 4 * stderr[stored] + 0.03 * predicted)


def test_memorization_unstored_point_costs(memorization_run, stored, X):
    """A seed that stores no column for a point pays about ``||x_i||^2 / n`` for it."""
    final = memorization_run.loss_history[:, -50:].mean(axis=1)
    predicted = theory.memorization_loss(X, SIGMA, LAM)
    smallest_cost = np.min(np.sum(X**2, axis=1)) / len(X)

    # residual: half the cost of the cheapest point, far above the Monte Carlo error (about 5e-4)
    assert np.all(final[~stored] - predicted >= 0.5 * smallest_cost)
