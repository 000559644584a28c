"""Tests of the ReLU denoising autoencoder and its Monte Carlo loss in ``reludae.model``."""

import numpy as np
import pytest
import torch

from reludae import model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_stack_shapes():
    network = model.ReLUDAE(5, 7, seeds=(0, 1, 2))
    Y = torch.randn(4, 5, dtype=model.DTYPE)

    assert network.W1.shape == (3, 5, 7)
    assert network.W2.shape == (3, 5, 7)
    assert network.representation(Y).shape == (3, 4, 7)
    assert network(Y).shape == (3, 4, 5)
    assert network(Y.expand(3, 4, 5)).shape == (3, 4, 5)
    assert network.penalty().shape == (3,)


def test_tied_shares_weights():
    network = model.ReLUDAE(5, 7, seeds=(0, 1), tied=True)
    W1, W2 = network.weights(1)

    assert network.W2 is None
    assert network.decoder is network.W1
    assert len(list(network.parameters())) == 1
    np.testing.assert_array_equal(W1, W2)


def test_untied_weights_differ():
    W1, W2 = model.ReLUDAE(5, 7, seeds=(0,)).weights()

    assert not np.allclose(W1, W2)


def test_init_scale_sets_column_norm():
    network = model.ReLUDAE(400, 50, seeds=(0,), init_scale=0.5)
    norms = np.linalg.norm(network.weights()[0], axis=0)

    # Monte Carlo error: 4 standard errors, since each norm has relative spread 1/sqrt(2 d) = 3.5 %
    # and the mean of 50 of them 0.5 %
    assert np.mean(norms) == pytest.approx(0.5, rel=0.02)


def test_seed_independent_of_stack():
    alone = model.ReLUDAE(6, 4, seeds=(3,))
    stacked = model.ReLUDAE(6, 4, seeds=(2, 3))

    for left, right in zip(alone.weights(0), stacked.weights(1)):
        np.testing.assert_array_equal(left, right)


def test_seeds_give_different_weights():
    network = model.ReLUDAE(6, 4, seeds=(2, 3))

    assert not np.allclose(network.weights(0)[0], network.weights(1)[0])


def test_from_weights_round_trip():
    rng = np.random.default_rng(0)
    W1, W2 = rng.standard_normal((2, 6, 4))
    untied = model.ReLUDAE.from_weights(W1, W2)
    tied = model.ReLUDAE.from_weights(W1)

    np.testing.assert_array_equal(untied.weights()[0], W1)
    np.testing.assert_array_equal(untied.weights()[1], W2)
    assert tied.tied
    np.testing.assert_array_equal(tied.weights()[1], W1)


@pytest.mark.parametrize("tied", [False, True])
def test_forward_matches_numpy(tied):
    rng = np.random.default_rng(1)
    W1, W2 = rng.standard_normal((2, 6, 4))
    Y = rng.standard_normal((10, 6))
    network = model.ReLUDAE.from_weights(W1, None if tied else W2)
    decoder = W1 if tied else W2
    with torch.no_grad():
        output = network(torch.as_tensor(Y))[0].numpy()
        hidden = network.representation(torch.as_tensor(Y))[0].numpy()

    # rounding: the same float64 products in another order
    np.testing.assert_allclose(output, model.apply(W1, decoder, Y), rtol=1e-12, atol=1e-12)
    # rounding
    np.testing.assert_allclose(hidden, model.representation(W1, Y), rtol=1e-12, atol=1e-12)
    assert np.any(hidden == 0)  # the ReLU is active on some entries


def test_penalty_untied_and_tied():
    rng = np.random.default_rng(2)
    W1, W2 = rng.standard_normal((2, 6, 4))

    # rounding
    assert model.ReLUDAE.from_weights(W1, W2).penalty().item() == pytest.approx(
        np.sum(W1**2) + np.sum(W2**2), rel=1e-12
    )
    # rounding
    assert model.ReLUDAE.from_weights(W1).penalty().item() == pytest.approx(2 * np.sum(W1**2), rel=1e-12)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"d": 0, "p": 3}, "d must be at least 1, got 0"),
        ({"d": 3, "p": 0}, "p must be at least 1, got 0"),
        ({"d": 3, "p": 2, "seeds": ()}, "at least one seed"),
        ({"d": 3, "p": 2, "seeds": (-1,)}, "seed must be at least 0, got -1"),
        ({"d": 3, "p": 2, "init_scale": -1.0}, "init_scale must be non-negative, got -1.0"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        model.ReLUDAE(**kwargs)


def test_from_weights_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"W1 must have shape \(d, p\), got \(3,\)"):
        model.ReLUDAE.from_weights(np.ones(3))
    with pytest.raises(ValueError, match=r"W2 must have shape \(d, p\) = \(3, p\).*got shape \(4, 2\)"):
        model.ReLUDAE.from_weights(np.ones((3, 2)), np.ones((4, 2)))


@pytest.mark.parametrize("which", ["W1", "W2"])
def test_from_weights_rejects_nan(which):
    weights = {"W1": np.ones((3, 2)), "W2": np.ones((3, 2))}
    weights[which][0, 0] = np.nan

    with pytest.raises(ValueError, match=f"{which} contains NaN"):
        model.ReLUDAE.from_weights(weights["W1"], weights["W2"])


# --- Monte Carlo loss -----------------------------------------------------------------------


def linear_pair(u, v):
    """Return weights whose network is exactly linear: ``u relu(v.y) - u relu(-v.y) = u v^T y``."""
    return np.stack([v, -v], axis=1), np.stack([u, -u], axis=1)


def test_monte_carlo_loss_linear_network():
    rng = np.random.default_rng(3)
    u, v = rng.standard_normal((2, 5)) / 2
    X = rng.standard_normal((4, 5))
    sigma, lam = 0.3, 0.1
    W1, W2 = linear_pair(u, v)
    A = np.outer(u, v)  # the network is y -> A y
    exact = (
        np.mean(np.sum((X @ A.T - X) ** 2, axis=1))
        + sigma**2 * np.sum(A**2)
        + lam * (np.sum(W1**2) + np.sum(W2**2))
    )
    mean, stderr = model.monte_carlo_loss(W1, W2, X, sigma, lam, draws=20_000, seed=0)

    # Monte Carlo error: 4 standard errors
    assert abs(mean - exact) <= 4 * stderr
    assert stderr > 0


def test_monte_carlo_loss_direct_computation():
    rng = np.random.default_rng(4)
    W1, W2 = rng.standard_normal((2, 5, 3))
    X = rng.standard_normal((4, 5))
    sigma, lam, draws = 0.5, 0.2, 500
    noise = np.random.default_rng(7).standard_normal((draws, 4, 5))  # the same stream the function draws
    noisy = X + sigma * noise
    per_draw = np.mean(np.sum((np.maximum(noisy @ W1, 0) @ W2.T - X) ** 2, axis=2), axis=1)
    mean, stderr = model.monte_carlo_loss(W1, W2, X, sigma, lam, draws=draws, seed=7)

    # rounding
    assert mean == pytest.approx(per_draw.mean() + lam * (np.sum(W1**2) + np.sum(W2**2)), rel=1e-12)
    # rounding
    assert stderr == pytest.approx(per_draw.std(ddof=1) / np.sqrt(draws), rel=1e-12)


def test_monte_carlo_loss_chunk_invariant():
    rng = np.random.default_rng(5)
    W1, W2 = rng.standard_normal((2, 5, 3))
    X = rng.standard_normal((4, 5))
    whole = model.monte_carlo_loss(W1, W2, X, 0.5, 0.0, draws=3_000, seed=2, chunk=3_000)
    chunked = model.monte_carlo_loss(W1, W2, X, 0.5, 0.0, draws=3_000, seed=2, chunk=700)

    # rounding: the same draws, summed in another order
    np.testing.assert_allclose(chunked, whole, rtol=1e-12)


def test_monte_carlo_stderr_matches_spread():
    rng = np.random.default_rng(6)
    W1, W2 = rng.standard_normal((2, 5, 3))
    X = rng.standard_normal((4, 5))
    runs = np.array([model.monte_carlo_loss(W1, W2, X, 0.5, 0.0, draws=1_000, seed=s) for s in range(40)])
    ratio = runs[:, 0].std(ddof=1) / runs[:, 1].mean()

    # Monte Carlo error: the sample standard deviation of 40 means has relative spread ~11 %
    assert 0.65 <= ratio <= 1.35


def test_monte_carlo_loss_zero_network():
    X = np.array([[1.0, 2.0], [3.0, 0.0]])
    mean, stderr = model.monte_carlo_loss(np.zeros((2, 3)), None, X, 1.0, 0.5)

    # rounding: the output is identically zero, so the loss is mean ||x||^2
    assert mean == pytest.approx(7.0, rel=1e-12)
    assert stderr == 0.0


def test_monte_carlo_loss_tied_default():
    rng = np.random.default_rng(8)
    W = rng.standard_normal((5, 3))
    X = rng.standard_normal((4, 5))

    assert model.monte_carlo_loss(W, None, X, 0.5, 0.1, draws=200) == model.monte_carlo_loss(
        W, W, X, 0.5, 0.1, draws=200
    )


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"sigma": -1.0}, "sigma must be non-negative, got -1.0"),
        ({"lam": -1.0}, "lam must be non-negative, got -1.0"),
        ({"draws": 1}, "draws must be at least 2, got 1"),
        ({"W1": np.ones((4, 3))}, r"W1 must have shape \(d, p\) = \(5, p\)"),
        ({"X": np.ones(5)}, "2-D array"),
    ],
)
def test_monte_carlo_loss_rejects_bad_arguments(kwargs, match):
    arguments = {"W1": np.ones((5, 3)), "W2": None, "X": np.ones((2, 5)), "sigma": 0.1, "lam": 0.0}
    arguments.update(kwargs)

    with pytest.raises(ValueError, match=match):
        model.monte_carlo_loss(**arguments)
