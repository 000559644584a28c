import numpy as np
import pytest

from reludae.experiments import generalization as gen


def test_mixture_shapes_and_cosines():
    mix = gen.mixture(0)
    assert mix.means.shape == (gen.MODES, gen.DIM)
    assert mix.covs.shape == (gen.MODES, gen.DIM, gen.DIM)
    unit = mix.means / np.linalg.norm(mix.means, axis=1, keepdims=True)
    cos = unit @ unit.T
    assert cos[~np.eye(gen.MODES, dtype=bool)].max() <= gen.MAX_MEAN_COSINE
    assert np.all(np.linalg.matrix_rank(mix.second_moments(), tol=1e-10) == gen.RANK + 1)


def test_assign_units_hand_made():
    X = np.array([[1.0, 0.0], [2.0, 0.1], [0.0, 1.0], [0.1, 3.0]])
    labels = np.array([0, 0, 1, 1])
    W1 = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, -1.0]])  # unit 2 fires on nothing
    assert gen.assign_units(W1, X, labels).tolist() == [0, 1, -1]


def test_assign_units_bad_inputs():
    X = np.ones((4, 2))
    with pytest.raises(ValueError):
        gen.assign_units(np.ones((3, 2)), X, np.zeros(4, dtype=int))
    with pytest.raises(ValueError):
        gen.assign_units(np.ones((2, 2)), X, np.zeros(3, dtype=int))


def test_block_products_of():
    W1 = np.arange(6.0).reshape(2, 3)
    W2 = np.ones((2, 3))
    out = gen.block_products_of(W1, W2, np.array([0, 1, 0]), range(2))
    assert len(out) == 2
    assert out[0].shape == (2, 2)
    np.testing.assert_allclose(out[0] + out[1], W1 @ W2.T)
    with pytest.raises(ValueError):
        gen.block_products_of(W1, W2, np.array([0, 1]), range(2))
    with pytest.raises(ValueError):
        gen.block_products_of(W1, np.ones((2, 2)), np.array([0, 1, 0]), range(2))


def test_test_error_expressions():
    e = [1.0, 0.5, 0.1]
    sigma = 0.5
    full = gen.shrinkage_test_error(e, sigma, 2)
    bias = gen.bias_only_test_error(e, sigma, 2)
    expected_full = 1.0 * 0.25 / 1.25 + 0.5 * 0.25 / 0.75 + 0.1
    np.testing.assert_allclose(full, expected_full)
    assert bias < full
    with pytest.raises(ValueError):
        gen.shrinkage_test_error(e, 0.0, 2)
    with pytest.raises(ValueError):
        gen.bias_only_test_error(e, sigma, 0)


def test_loglog_slope():
    x = np.array([1.0, 10.0, 100.0])
    assert gen.loglog_slope(x, 3 * x**-0.5) == pytest.approx(-0.5)
    with pytest.raises(ValueError):
        gen.loglog_slope(x, -x)


def test_population_errors_shape_and_bad_power():
    out = gen.population_errors((50, 200), seeds=(0,))
    assert out.shape == (2,)
    assert out[1] < out[0]
    with pytest.raises(ValueError):
        gen.population_errors((50,), sigma_power=3)


def test_trained_small_run():
    run = gen.trained(per_mode=20, steps=200)
    assert run.W1.shape == (gen.DIM, gen.MODES * gen.WIDTH_PER_MODE)
    assert run.owner.shape == (gen.MODES * gen.WIDTH_PER_MODE,)
    assert gen.block_errors(run).shape == (gen.MODES,)
    measured, stderr = gen.fresh_test_loss(run, n_points=500)
    assert measured > 0
    assert stderr > 0
    with pytest.raises(ValueError):
        gen.trained(per_mode=0)
