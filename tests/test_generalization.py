import numpy as np
import pytest

from reludae.experiments import generalization as gen
from reludae.experiments.transition import stratified_sample


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


def test_allocated_widths_caps_and_floors():
    owner = np.array([0, 0, 0, 0, 0, 1, 1, -1])
    assert gen.allocated_widths(owner, modes=3, cap=3) == (3, 2, 1)
    with pytest.raises(ValueError):
        gen.allocated_widths(owner, modes=0)


def test_predicted_test_loss_per_mode_widths():
    mix = gen.mixture(0)
    even = gen.predicted_test_loss(mix, gen.SIGMA, gen.WIDTH_PER_MODE)
    assert gen.predicted_test_loss(mix, gen.SIGMA, (gen.WIDTH_PER_MODE,) * gen.MODES) == pytest.approx(even)
    # a narrower block drops a direction of S_k, whose whole variance then enters the error
    assert gen.predicted_test_loss(mix, gen.SIGMA, (2, 3, 3)) > even
    with pytest.raises(ValueError, match="one p_k"):
        gen.predicted_test_loss(mix, gen.SIGMA, (3, 3))


def _stored_run(points_per_unit=1):
    """A hand-made memorizer: each of three units stores one sample of its mode, repeated as parallel copies."""
    mix = gen.mixture(0)
    X, labels = stratified_sample(mix, gen.MODES, seed=1)
    W1 = np.repeat(X.T, points_per_unit, axis=1)
    owner = np.repeat(np.arange(gen.MODES), points_per_unit)
    return gen.Run(mix, X, labels, W1, W1.copy(), owner, (1,) * gen.MODES, gen.SIGMA, gen.LAM)


def test_column_angle_ratio_is_zero_for_stored_points():
    run = _stored_run()
    np.testing.assert_allclose(gen.column_angles(run), 0.0, atol=1e-5)
    assert gen.column_angle_ratio(run, n_points=200) < 1e-3


def test_balance_counts_parallel_copies():
    # a point stored in three parallel units scores 1/3; merging makes the participation ratio 1
    ratios = gen.balance(_stored_run(points_per_unit=3), n_points=300)
    assert np.nanmedian(ratios) == pytest.approx(1 / 3, rel=1e-6)


def test_denoiser_errors_keys_and_bad_input():
    run = gen.trained(per_mode=20, steps=200)
    errors = gen.denoiser_errors(run, n_points=300)
    assert set(errors) == {"to_limit", "to_gt", "limit_to_gt", "identity_to_gt"}
    assert all(value >= 0 for value in errors.values())
    with pytest.raises(ValueError):
        gen.denoiser_errors(run, n_points=0)


def test_predicted_clean_error_limits():
    mix = gen.mixture(0)
    widths = (gen.WIDTH_PER_MODE,) * gen.MODES
    at_zero = gen.predicted_clean_error(mix, gen.SIGMA, 0.0, widths)
    assert at_zero == pytest.approx(gen.predicted_test_loss(mix, gen.SIGMA, widths, bias_only=True), rel=1e-12)
    # the penalty lowers every gain, which raises the bias
    assert gen.predicted_clean_error(mix, gen.SIGMA, 1e-3, widths) > at_zero
    with pytest.raises(ValueError, match="one p_k"):
        gen.predicted_clean_error(mix, gen.SIGMA, 0.0, (3,))
    with pytest.raises(ValueError):
        gen.predicted_clean_error(mix, gen.SIGMA, -1.0, widths)


def test_clean_error_of_identity_network_is_zero():
    mix = gen.mixture(0)
    X, labels = stratified_sample(mix, gen.MODES)
    # W1 = [I, -I] and W2 = [I, -I] compute relu(x) - relu(-x) = x exactly
    eye = np.eye(gen.DIM)
    W = np.hstack([eye, -eye])
    run = gen.Run(mix, X, labels, W, W.copy(), np.zeros(2 * gen.DIM, dtype=int), (1,) * gen.MODES, gen.SIGMA, gen.LAM)
    mean, stderr = gen.clean_error(run, n_points=100)
    assert mean == pytest.approx(0.0, abs=1e-20)
    assert stderr == pytest.approx(0.0, abs=1e-20)
