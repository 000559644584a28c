"""Tests of reludae.exact_training: the init matches the Monte Carlo trainer's, L-BFGS on the exact
loss reaches the memorizer from a small random init, one untied init stops at a spurious local
minimum, and bad inputs raise."""

import logging

import numpy as np
import pytest
import torch

from reludae import certify, data, metrics, theory
from reludae import exact_training as T
from reludae.model import ReLUDAE

pytestmark = pytest.mark.usefixtures("one_torch_thread")

log = logging.getLogger(__name__)

SIGMA, LAM, WIDTH = 0.05, 1e-2, 6


@pytest.fixture(scope="module")
def X():
    """Three points in R^20 with norms in [0.8, 1.2] and pairwise cosines at most -0.36."""
    return data.negative_cosine_points(3, 20, seed=2)


@pytest.fixture(scope="module")
def memorizer(X):
    return theory.memorization_weights(X, SIGMA, LAM)


def test_init_matches_monte_carlo_model():
    for tied in (True, False):
        W1, W2 = T.initial_weights(20, 6, tied=tied, seed=3, init_scale=0.5)
        net = ReLUDAE(20, 6, seeds=(3,), tied=tied, init_scale=0.5)
        assert np.array_equal(W1, net.W1[0].detach().numpy())
        if tied:
            assert W2 is None
        else:
            assert np.array_equal(W2, net.W2[0].detach().numpy())
    # The first matrix is drawn first from torch.Generator().manual_seed(seed).
    first = torch.randn(20, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    assert np.array_equal(W1, 0.5 / np.sqrt(20) * first.numpy())


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tied_training_reaches_memorizer(X, memorizer, seed, record_property):
    result = T.train_exact(X, WIDTH, SIGMA, LAM, tied=True, seed=seed)
    error = metrics.relative_error(result.product, memorizer @ memorizer.T)
    record_property("seconds", result.seconds)
    record_property("product_error", error)
    log.info("seed %d: %.2f s, %d iterations, product error %.2e", seed, result.seconds, result.iterations, error)
    # Here the closed form is stationary to certify's tolerance (|x_i| cos(x_i, x_j) <= -0.32, so
    # the firing probabilities are below Phi(-6.4) ~ 1e-10); measured errors 3e-10 to 1.2e-8.
    assert error < 1e-6, f"seed {seed}: product error {error:.2e} after {result.seconds:.2f} s"
    assert np.array_equal(result.W1, result.W2)
    assert result.tied
    # Measured 0.5 s per run on one thread; 20 s allows a loaded machine.
    assert 0 < result.seconds < 20
    history = result.loss_history
    assert history.shape == (result.iterations + 1,)
    # L-BFGS-B keeps only steps that lower the loss; 1e-15 allows rounding of equal values.
    assert np.all(np.diff(history) <= 1e-15)
    assert history[-1] == pytest.approx(theory.memorization_loss(X, SIGMA, LAM), abs=1e-10)


def test_untied_training_reaches_stationary_point(X, memorizer):
    result = T.train_exact(X, WIDTH, SIGMA, LAM, tied=False, seed=0)
    polished = certify.certify(memorizer, memorizer, X, SIGMA, LAM)
    error = metrics.relative_error(result.product, polished.W1 @ polished.W2.T)
    # Measured 6.9e-9; L-BFGS stops where the loss stops decreasing in float64 (gradient ~1e-8).
    assert error < 1e-6
    assert result.gradient_norm < 1e-6


def test_untied_run_stops_at_spurious_minimum(X):
    """This init splits points 0 and 2 over all six units and leaves point 1 unstored (loss 0.29 against
    0.061). certify finds a local minimum: no unit is free, so the only way to store point 1 is to
    merge two parallel columns at constant loss and regrow the freed unit, along which the loss
    falls (flat_escape)."""
    result = T.train_exact(X, WIDTH, SIGMA, LAM, tied=False, seed=4)
    stored = metrics.storage_report(result.W1, X).columns_per_point
    assert list(stored >= 1) == [True, False, True]
    c = certify.certify(result.W1, result.W2, X, SIGMA, LAM)
    assert c.verdict == "local minimum"
    assert c.flat_escape
    # Two split groups of three parallel units: two rotation modes each.
    assert c.zero_modes == 4
    assert c.explained_zero_modes == 4
    # Measured 2 min Q = -0.49: growing a freed unit along x_1 lowers the loss.
    assert c.free_unit_curvature < -0.1
    assert c.loss_polished > 4 * theory.memorization_loss(X, SIGMA, LAM)


def test_zero_init_does_not_move(X):
    """With init_scale = 0 every column is zero, where the gradient is exactly zero."""
    result = T.train_exact(X, WIDTH, SIGMA, LAM, tied=True, init_scale=0.0)
    assert result.iterations == 0
    assert not np.any(result.W1)
    assert result.gradient_norm == 0.0
    assert result.loss_history[-1] == pytest.approx(np.mean(np.sum(X**2, axis=1)), rel=1e-14)


@pytest.mark.parametrize("method", ["BFGS", "CG"])
def test_other_methods_record_history(X, method):
    result = T.train_exact(X, 3, SIGMA, LAM, tied=True, method=method, max_iter=5)
    assert result.iterations <= 5
    assert result.loss_history.shape == (result.iterations + 1,)
    assert result.loss_history[-1] < result.loss_history[0]


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(width=0), "width"),
        (dict(width=2.0), "width"),
        (dict(sigma=0.0), "sigma"),
        (dict(sigma=float("nan")), "sigma"),
        (dict(lam=-1e-3), "lam"),
        (dict(seed=-1), "seed"),
        (dict(init_scale=-1.0), "init_scale"),
        (dict(method="adam"), "method"),
        (dict(max_iter=0), "max_iter"),
        (dict(gtol=0.0), "gtol"),
        (dict(X=np.ones((3, 4, 5))), "X"),
        (dict(X=np.array([[1.0, np.inf]])), "X"),
    ],
)
def test_bad_inputs_raise(X, change, match):
    args = dict(X=X, width=WIDTH, sigma=SIGMA, lam=LAM)
    args.update(change)
    positional = [args.pop(k) for k in ("X", "width", "sigma", "lam")]
    with pytest.raises(ValueError, match=match):
        T.train_exact(*positional, **args)
