import numpy as np
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import energy_distance as scipy_energy_distance

from reludae import sampling


def _shrinkage(scale):
    """Return the posterior-mean denoiser of N(0, scale^2 I): y -> scale^2 / (scale^2 + sigma^2) y."""
    return lambda Y, sigma: scale**2 / (scale**2 + sigma**2) * Y


def test_noise_levels_are_geometric():
    levels = sampling.noise_levels(80.0, 1e-3, 10)
    ratios = levels[1:] / levels[:-1]
    assert levels.shape == (11,)
    # np.geomspace hits its endpoints and spaces the logarithms evenly: round-off only.
    assert levels[0] == pytest.approx(80.0, rel=1e-14)
    assert levels[-1] == pytest.approx(1e-3, rel=1e-14)
    np.testing.assert_allclose(ratios, ratios[0], rtol=1e-12)


@pytest.mark.parametrize(
    "arguments, message",
    [((1.0, 1.0, 5), "smaller than sigma_max"), ((1.0, 2.0, 5), "smaller than sigma_max"),
     ((1.0, 0.0, 5), "sigma_min must be positive"), ((-1.0, 0.1, 5), "sigma_max must be positive"),
     ((1.0, 0.1, 0), "steps must be at least 1"), ((1.0, 0.1, 2.5), "steps must be an integer")],
)
def test_noise_levels_reject_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        sampling.noise_levels(*arguments)


def test_sampler_shapes_and_trajectory():
    samples, trajectory = sampling.sample_from_noise(
        _shrinkage(1.0), 7, 3, sigma_max=10.0, sigma_min=0.1, steps=12, seed=0, return_trajectory=True
    )
    assert samples.shape == (7, 3)
    assert trajectory.shape == (13, 7, 3)
    np.testing.assert_array_equal(trajectory[-1], samples)
    # The start is sigma_max z with the seed's first draw.
    np.testing.assert_array_equal(trajectory[0], 10.0 * np.random.default_rng(0).standard_normal((7, 3)))
    assert sampling.sample_from_noise(_shrinkage(1.0), 7, 3, 10.0, 0.1, 12, stochastic=True).shape == (7, 3)


@pytest.mark.parametrize("stochastic", [False, True])
def test_sampler_is_reproducible(stochastic):
    run = lambda seed: sampling.sample_from_noise(_shrinkage(0.5), 20, 2, 10.0, 0.01, 30, stochastic=stochastic, seed=seed)
    np.testing.assert_array_equal(run(3), run(3))
    np.testing.assert_array_equal(run(np.random.default_rng(3)), run(3))
    assert not np.allclose(run(3), run(4))


def test_deterministic_step_is_exact_for_a_point_mass():
    target = np.array([0.3, -1.2])
    denoise = lambda Y, sigma: np.broadcast_to(target, Y.shape)
    samples, trajectory = sampling.sample_from_noise(denoise, 5, 2, 50.0, 1e-4, 40, seed=1, return_trajectory=True)
    expected = target + (1e-4 / 50.0) * (trajectory[0] - target)
    # Each step multiplies x - target by sigma'/sigma exactly, so only round-off remains.
    np.testing.assert_allclose(samples, expected, rtol=1e-10, atol=1e-12)


def test_deterministic_sampler_converges_at_first_order():
    scale, sigma_max, sigma_min = 0.5, 80.0, 1e-3
    exact = np.sqrt(scale**2 + sigma_min**2) / np.sqrt(scale**2 + sigma_max**2)  # flow of N(0, scale^2 I)
    errors = []
    for steps in [100, 400]:
        samples, trajectory = sampling.sample_from_noise(
            _shrinkage(scale), 1, 1, sigma_max, sigma_min, steps, seed=0, return_trajectory=True
        )
        errors.append(abs(samples[0, 0] / trajectory[0, 0, 0] / exact - 1.0))
    # A first-order method: four times the steps divide the error by about four.
    assert errors[1] < 0.01
    assert 3.0 < errors[0] / errors[1] < 5.0, errors


def test_stochastic_sampler_variance_follows_its_recursion():
    scale, sigma_max, sigma_min, steps, n = 0.5, 80.0, 1e-3, 400, 20_000
    levels = sampling.noise_levels(sigma_max, sigma_min, steps)
    variance = sigma_max**2
    for sigma, sigma_next in zip(levels[:-1], levels[1:]):
        drop = (sigma**2 - sigma_next**2) / sigma**2
        gain = scale**2 / (scale**2 + sigma**2)
        variance = (1.0 - drop * (1.0 - gain)) ** 2 * variance + (sigma**2 - sigma_next**2)
    samples = sampling.sample_from_noise(_shrinkage(scale), n, 2, sigma_max, sigma_min, steps, stochastic=True, seed=5)
    # Sample variance of n Gaussian draws: relative standard error sqrt(2 / n); allow 5 of them.
    np.testing.assert_allclose(samples.var(axis=0), variance, rtol=5 * np.sqrt(2 / n))
    # The recursion itself approaches the exact marginal variance scale^2 + sigma_min^2. The
    # Euler-Maruyama bias is first order in the log step, and it measured about 3% at 400 steps.
    assert variance == pytest.approx(scale**2 + sigma_min**2, rel=0.05)


def test_sampler_rejects_bad_denoiser():
    with pytest.raises(ValueError, match="callable"):
        sampling.sample_from_noise(np.zeros(2), 3, 2, 10.0, 0.1, 5)
    with pytest.raises(ValueError, match=r"shape \(3, 2\)"):
        sampling.sample_from_noise(lambda Y, sigma: Y[:, :1], 3, 2, 10.0, 0.1, 5)
    with pytest.raises(ValueError, match="NaN or infinite"):
        sampling.sample_from_noise(lambda Y, sigma: np.full(Y.shape, np.nan), 3, 2, 10.0, 0.1, 5)


@pytest.mark.parametrize(
    "arguments, message",
    [((0, 2, 10.0, 0.1, 5), "n_samples"), ((3, 0, 10.0, 0.1, 5), "dim"), ((3, 2, 0.1, 10.0, 5), "sigma_min"),
     ((3, 2, 10.0, 0.1, 0), "steps")],
)
def test_sampler_rejects_bad_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        sampling.sample_from_noise(_shrinkage(1.0), *arguments)


def test_nearest_training_points_small_case():
    X = np.array([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    samples = np.array([[0.1, 0.0], [2.0, 0.0], [0.0, 5.0], [3.0, 4.0]])
    distances, indices = sampling.nearest_training_points(samples, X)
    np.testing.assert_array_equal(indices, [0, 1, 2, 2])
    # Distances of exactly representable points: round-off only.
    np.testing.assert_allclose(distances, [0.1, 1.0, 1.0, 3.0], rtol=1e-14)


def test_nearest_training_points_blocks(monkeypatch):
    rng = np.random.default_rng(6)
    X, samples = rng.standard_normal((9, 3)), rng.standard_normal((25, 3))
    whole = sampling.nearest_training_points(samples, X)
    monkeypatch.setattr(sampling, "_DISTANCE_BLOCK_ROWS", 4)
    blocked = sampling.nearest_training_points(samples, X)
    np.testing.assert_array_equal(blocked[0], whole[0])
    np.testing.assert_array_equal(blocked[1], whole[1])


def test_nearest_training_points_rejects_mismatch():
    with pytest.raises(ValueError, match="same number of columns"):
        sampling.nearest_training_points(np.zeros((2, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="samples must be a 2-D array"):
        sampling.nearest_training_points(np.zeros(2), np.zeros((4, 2)))


def test_energy_distance_matches_scipy_in_one_dimension():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(30), 0.5 + rng.standard_normal(20)
    m, n = len(a), len(b)
    within_a, within_b = 2 * pdist(a[:, None]).sum(), 2 * pdist(b[:, None]).sum()  # ordered pairs
    # scipy returns the square root of the V-statistic, which divides the within sums by m^2, n^2.
    v_statistic = scipy_energy_distance(a, b) ** 2
    expected = v_statistic + within_a / m**2 + within_b / n**2 - within_a / (m * (m - 1)) - within_b / (n * (n - 1))
    # Two summation orders of about a thousand distances: round-off only.
    assert sampling.energy_distance(a[:, None], b[:, None]) == pytest.approx(expected, rel=1e-10, abs=1e-12)


def test_energy_distance_is_symmetric():
    rng = np.random.default_rng(8)
    A, B = rng.standard_normal((15, 2)), rng.standard_normal((11, 2))
    # Same sums in another order: round-off only.
    assert sampling.energy_distance(A, B) == pytest.approx(sampling.energy_distance(B, A), rel=1e-12, abs=1e-14)


def test_energy_test_rejects_shifted_distribution():
    rng = np.random.default_rng(9)
    A, B = rng.standard_normal((200, 2)), rng.standard_normal((200, 2)) + [1.5, 0.0]
    result = sampling.energy_test(A, B, permutations=199, seed=0)
    # A shift of 1.5 standard deviations with 200 points a side: no relabelling comes close.
    assert result.p_value == pytest.approx(1 / 200)
    assert result.rejects(0.01)
    assert result.statistic > result.null_quantile(0.99)


def test_energy_test_accepts_same_distribution():
    rng = np.random.default_rng(10)
    A, B = rng.standard_normal((200, 2)), rng.standard_normal((200, 2))
    result = sampling.energy_test(A, B, permutations=199, seed=0)
    assert result.null.shape == (199,)
    # Under the null p is uniform, so this fixed seed had a 1% chance of rejecting.
    assert not result.rejects(0.01)
    assert result.statistic <= result.null_quantile(0.99)


def test_energy_test_level_is_valid():
    rng = np.random.default_rng(11)
    p_values = np.array([
        sampling.energy_test(rng.standard_normal((25, 2)), rng.standard_normal((25, 2)), permutations=49, seed=s).p_value
        for s in range(200)
    ])
    rejected = np.mean(p_values <= 0.1)
    # Under the null P(p <= 0.1) <= 0.1. The binomial standard error over 200 runs is 0.021: allow 4.
    assert rejected <= 0.1 + 4 * 0.0213
    assert np.all((p_values >= 1 / 50) & (p_values <= 1.0))


def test_energy_test_is_reproducible():
    rng = np.random.default_rng(12)
    A, B = rng.standard_normal((30, 2)), rng.standard_normal((40, 2))
    first, second = sampling.energy_test(A, B, 99, seed=4), sampling.energy_test(A, B, 99, seed=4)
    np.testing.assert_array_equal(first.null, second.null)
    assert first.p_value == second.p_value
    # One BLAS product over 100 labellings versus one over a single labelling: round-off only.
    assert first.statistic == pytest.approx(sampling.energy_distance(A, B), rel=1e-12)


def test_energy_test_rejects_bad_input():
    A = np.zeros((5, 2))
    with pytest.raises(ValueError, match="one space"):
        sampling.energy_test(A, np.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 rows"):
        sampling.energy_test(A, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="permutations"):
        sampling.energy_test(A, A, permutations=0)
    result = sampling.energy_test(A + np.arange(5)[:, None], A, permutations=9)
    with pytest.raises(ValueError, match="level"):
        result.null_quantile(1.0)
    with pytest.raises(ValueError, match="alpha"):
        result.rejects(0.0)
