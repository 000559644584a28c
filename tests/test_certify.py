"""Tests of reludae.certify on the default memorization problem (n = 4 points in R^50, sigma 0.05,
lam 1e-2): the closed-form memorizer is polished to an exact local minimum, unstored points and
the zero point are saddles, split points have one explained zero mode per extra column, and a
candidate far from stationarity raises."""

import numpy as np
import pytest

from reludae import certify as C
from reludae import data, theory
from reludae.experiments.memorization import DEFAULT, perturbed

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIGMA, LAM = DEFAULT.sigma, DEFAULT.lam
TOL = 1e-10  # the default tol of certify, relative to max(1, L)


@pytest.fixture(scope="module")
def X():
    return DEFAULT.points()


@pytest.fixture(scope="module")
def W(X):
    return theory.memorization_weights(X, SIGMA, LAM)


@pytest.fixture(scope="module")
def tied(W, X, one_torch_thread):
    return C.certify(W, None, X, SIGMA, LAM)


@pytest.fixture(scope="module")
def untied(W, X, one_torch_thread):
    return C.certify(W, W, X, SIGMA, LAM)


def split(W, column, into, share):
    """Move the fraction ``share`` of the energy of ``column`` into the zero column ``into``."""
    V = W.copy()
    V[:, into] = np.sqrt(share) * W[:, column]
    V[:, column] = np.sqrt(1.0 - share) * W[:, column]
    return V


# ----------------------------------------------------------------------------------------------
# The closed form


def test_closed_form_tied_is_local_minimum(tied, W):
    c = tied
    assert c.verdict == "local minimum"
    assert c.converged
    assert c.grad_norm_polished <= TOL * max(1.0, c.loss_polished)
    # The closed form's residual gradient scales with the largest wrong-side firing probability,
    # Phi(-0.22 / 0.05) ~ 5e-6, times smaller factors. That is an estimate, and 7.6e-8 was measured.
    assert 1e-9 < c.grad_norm_candidate < 1e-6
    # Measured 5.5e-8: the closed form misses the stationary point by an exponentially small amount.
    assert 0 < c.relative_distance < 1e-6
    # Each point is stored by one column: no symmetry, no zero mode, and the smallest eigenvalue
    # is a clear positive 0.41 (measured) against a largest of 2.7.
    assert c.zero_modes == 0
    assert c.symmetry_generators == 0
    assert c.smallest_eigenvalues[0] > 0.3
    assert abs(c.loss_polished - theory.memorization_loss(DEFAULT.points(), SIGMA, LAM)) < 1e-9
    assert c.dead_columns == ()
    assert np.isnan(c.free_unit_curvature)


def test_closed_form_untied_is_local_minimum(untied, tied):
    c = untied
    assert c.verdict == "local minimum"
    assert c.W2 is not None
    assert c.grad_norm_polished <= TOL * max(1.0, c.loss_polished)
    # Measured 1.2e-6: the untied point is softer (smallest eigenvalue 0.021), so the same residual
    # gradient moves it further than the tied one.
    assert 0 < c.relative_distance < 1e-5
    # Positive rescaling W1 e_j -> c W1 e_j, W2 e_j -> W2 e_j / c is broken by lam > 0: no zero mode.
    assert c.zero_modes == 0
    assert c.smallest_eigenvalues[0] > 0.01
    # Rescaling leaves the data term unchanged, so at a stationary point its derivative
    # 2 lam (|W1 e_j|^2 - |W2 e_j|^2) vanishes: every unit is balanced, to the gradient tolerance.
    gap = np.sum(c.W1**2, axis=0) - np.sum(c.W2**2, axis=0)
    assert np.max(np.abs(gap)) < 1e-9
    # The directions of the two layers differ, by exponentially small terms (measured 1.1e-6):
    # the untied stationary point is not the tied one.
    assert 1e-8 < np.max(np.abs(c.W1 - c.W2)) < 1e-5
    assert np.max(np.abs(c.W1 - tied.W1)) < 1e-5


def test_untied_no_penalty_rescaling_modes(X):
    W0 = theory.memorization_weights(X, SIGMA, 0.0)
    c = C.certify(W0, W0, X, SIGMA, 0.0)
    assert c.verdict == "local minimum"
    # With lam = 0 each of the 4 units has an exact rescaling symmetry.
    assert c.zero_modes == 4
    assert c.explained_zero_modes == 4


def test_zero_columns_flat_along_points(X, tied):
    W16 = theory.memorization_weights(X, SIGMA, LAM, width=16)
    c = C.certify(W16, None, X, SIGMA, LAM)
    assert c.verdict == "local minimum"
    assert c.dead_columns == tuple(range(4, 16))
    assert c.active_columns == (0, 1, 2, 3)
    # 2 min Q is 0 up to rounding (measured -2e-16): the directions of the stored columns.
    assert abs(c.free_unit_curvature) <= c.zero_threshold
    assert c.dead_flat_directions == 4
    assert c.dead_flat_explained == 4
    assert np.max(np.abs(c.W1[:, :4] - tied.W1)) < 1e-12  # polishing ignores dead columns


# ----------------------------------------------------------------------------------------------
# Perturbed candidates


@pytest.mark.parametrize("relative, verdict", [(1e-3, "local minimum"), (0.1, "not stationary")])
def test_perturbed_memorizer_polishes_back(X, W, tied, relative, verdict):
    c = C.certify(perturbed(W, relative, seed=1), None, X, SIGMA, LAM)
    assert c.distance > 0
    # The default far_rtol is 1e-3: the 10 % perturbation is reported as not stationary, yet its
    # polished point is the same local minimum.
    assert c.verdict == verdict
    assert c.polished_type == "local minimum"
    # Newton lands on the same point as from the closed form, up to rounding of the two polishes.
    assert np.max(np.abs(c.W1 - tied.W1)) < 1e-10


def test_perturbed_untied_memorizer_polishes_back(X, W, untied):
    c = C.certify(perturbed(W, 1e-2, seed=1), perturbed(W, 1e-2, seed=2), X, SIGMA, LAM, far_rtol=0.05)
    assert c.verdict == "local minimum"
    # Measured 5e-9 and 2e-11 between the two polishes.
    assert np.max(np.abs(c.W1 - untied.W1)) < 1e-7
    assert np.max(np.abs(c.W2 - untied.W2)) < 1e-7


# ----------------------------------------------------------------------------------------------
# Saddles and candidates that are not stationary


@pytest.mark.parametrize("tie", [True, False])
def test_unstored_point_is_a_saddle(X, W, tie):
    """Without its column, point 2 is unstored. The other columns are still stationary, but a dead
    unit growing along x_2 lowers the loss: 2 Q(x_2 / |x_2|) = 4 lam - (4 / n) |x_2|^2 when tied,
    half of that when untied (the best decoder is the encoder there)."""
    V = W.copy()
    V[:, 2] = 0.0
    c = C.certify(V, None if tie else V, X, SIGMA, LAM)
    assert c.verdict == "saddle"
    assert c.dead_columns == (2,)
    predicted = (4 * LAM - (4 / 4) * X[2] @ X[2]) * (1.0 if tie else 0.5)
    # The prediction neglects the firing probabilities, below 1e-5 here; measured 1e-8 apart.
    assert c.free_unit_curvature == pytest.approx(predicted, abs=1e-6)
    # The Hessian over the stored columns is the memorizer's: no negative eigenvalue.
    assert c.smallest_eigenvalues[0] > 0.01


def test_zero_point_is_a_saddle(X):
    """W = 0 is exactly stationary. The loss grows like t^2 Q(v) from it, and the best direction is
    the point of largest norm, where 2 Q = 4 lam - (4 / n) max |x_i|^2."""
    c = C.certify(np.zeros((X.shape[1], 4)), None, X, SIGMA, LAM)
    assert c.verdict == "saddle"
    assert c.iterations == 0
    assert c.grad_norm_candidate == 0.0
    assert c.smallest_eigenvalues.size == 0
    assert len(c.dead_columns) == 4
    predicted = 4 * LAM - np.max(np.sum(X**2, axis=1))
    assert c.free_unit_curvature == pytest.approx(predicted, abs=1e-6)  # as in the test above


def test_positive_cosine_raises_not_converged(X):
    """With cos(x_0, x_1) = 0.5 the closed form has gradient 0.77. Newton from there stalls near
    ||grad|| = 2e-4 (200 steps measured), so a short polish raises."""
    Xp = data.with_positive_cosine(X, 0.5)
    Wp = theory.memorization_weights(Xp, SIGMA, LAM)
    with pytest.raises(C.NotConvergedError, match="did not converge") as info:
        C.certify(Wp, None, Xp, SIGMA, LAM, max_iter=5)
    error = info.value
    assert isinstance(error, RuntimeError)
    assert error.gradient_norm > 1e-6
    assert error.certificate.verdict == "not stationary"
    assert error.certificate.grad_norm_candidate > 0.5


def test_cluster_block_drifts_and_raises(X, W):
    """With cos(x_0, x_1) = 0.8 and columns along x_0 and x_1, both columns fire on both points and
    the block's rotation is a symmetry only up to exponentially small terms. The polish creeps along
    it (||grad|| 3e-5 after 10 or 20 steps, 6e-6 after 600, measured) and raises. At the point
    reached after 10 steps, the one mode below 1e-3 of the largest eigenvalue (measured 1.3e-4
    relative) is the block rotation."""
    Xp = data.with_positive_cosine(X, 0.8)
    V = W.copy()
    V[:, 1] = Xp[1] * np.linalg.norm(W[:, 1]) / np.linalg.norm(Xp[1])
    with pytest.raises(C.NotConvergedError) as info:
        C.certify(V, None, Xp, SIGMA, LAM, max_iter=10, zero_rtol=1e-3)
    c = info.value.certificate
    assert (Xp[:2] @ c.W1[:, :2] > 0).all()  # one block: both columns fire on both points
    assert c.zero_modes == 1
    assert c.explained_zero_modes == 1
    assert c.symmetry_generators == 1
    assert info.value.gradient_norm < 1e-3


def test_unexplained_modes_give_degenerate(tied, X, W):
    """With zero_rtol = 0.2 the memorizer's eigenvalues 0.41 (0.15 of the largest) count as near
    zero; no symmetry explains them, so second order cannot decide."""
    c = C.certify(W, None, X, SIGMA, LAM, zero_rtol=0.2)
    assert c.verdict == "degenerate"
    assert c.zero_modes > 0
    assert c.explained_zero_modes == 0


def test_max_iter_zero_needs_stationarity(X, W):
    with pytest.raises(C.NotConvergedError):
        C.certify(perturbed(W, 1e-3, seed=1), None, X, SIGMA, LAM, max_iter=0)
    c = C.certify(W, None, X, SIGMA, LAM, tol=1e-6, max_iter=0)  # gradient 7.6e-8 < 1e-6
    assert c.iterations == 0
    assert c.distance == 0.0
    assert c.verdict == "local minimum"


# ----------------------------------------------------------------------------------------------
# Symmetries of split points


@pytest.mark.parametrize(
    "splits, modes",
    [
        ([(0, 4, 0.3)], 1),  # one pair
        ([(0, 4, 0.3), (1, 5, 0.5)], 2),  # two pairs, one mode each
        ([(0, 4, 0.3), (0, 5, 0.2)], 2),  # a point over three columns: rotations of a rank-1 block
    ],
)
def test_split_point_explained_modes(X, tied, splits, modes):
    V = theory.memorization_weights(X, SIGMA, LAM, width=8)
    for column, into, share in splits:
        V = split(V, column, into, share)
    c = C.certify(V, None, X, SIGMA, LAM)
    assert c.verdict == "local minimum"
    assert c.zero_modes == modes
    assert c.explained_zero_modes == modes
    assert c.symmetry_generators == modes
    # The split is exact: the polished map equals the unsplit one to rounding.
    assert np.max(np.abs(c.W1 @ c.W1.T - tied.W1 @ tied.W1.T)) < 1e-12
    assert not c.flat_escape


def test_untied_split_pair(X, W):
    V = split(theory.memorization_weights(X, SIGMA, LAM, width=5), 0, 4, 0.3)
    c = C.certify(V, V, X, SIGMA, LAM)
    assert c.verdict == "local minimum"
    assert c.zero_modes == 1
    assert c.explained_zero_modes == 1


def test_distance_grows_with_sigma(X):
    """The closed form's distance to the polished point grows with sigma (measured 5.5e-8, 4.1e-4 and
    8.2e-3 at sigma = 0.05, 0.1, 0.2)."""
    distances = []
    for sigma in (0.05, 0.1, 0.2):
        V = theory.memorization_weights(X, sigma, LAM)
        distances.append(C.certify(V, None, X, sigma, LAM, far_rtol=0.1).relative_distance)
    assert distances[0] < 1e-6 < distances[1] < distances[2] < 0.05


# ----------------------------------------------------------------------------------------------
# Input validation


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(sigma=0.0), "sigma"),
        (dict(lam=-1.0), "lam"),
        (dict(tol=0.0), "tol"),
        (dict(max_iter=-1), "max_iter"),
        (dict(max_iter=2.5), "max_iter"),
        (dict(zero_rtol=-1e-6), "zero_rtol"),
        (dict(far_rtol=0.0), "far_rtol"),
        (dict(seed=-1), "seed"),
        (dict(W1=np.zeros((3, 4))), "W1"),
        (dict(W2=np.zeros((50, 3))), "W2"),
        (dict(W1=np.full((50, 4), np.nan)), "W1"),
        (dict(X=np.zeros(50)), "X"),
    ],
)
def test_bad_inputs_raise(X, W, change, match):
    args = dict(W1=W, W2=W, X=X, sigma=SIGMA, lam=LAM)
    args.update(change)
    positional = [args.pop(k) for k in ("W1", "W2", "X", "sigma", "lam")]
    with pytest.raises(ValueError, match=match):
        C.certify(*positional, **args)


def test_too_large_hessian_raises(X):
    """The Hessian over 2 * 50 * 41 > 4000 active parameters is refused by expected_hessian."""
    rng = np.random.default_rng(0)
    V = rng.standard_normal((50, 41))
    with pytest.raises(ValueError, match="limit"):
        C.certify(V, V, X, SIGMA, LAM)
