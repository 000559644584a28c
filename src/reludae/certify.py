"""Second-order certificates for stationary points of the exact loss.

``certify`` takes a candidate ``(W1, W2)`` (shape ``(d, p)`` each, ``W2 = None`` for tied), polishes
it to a nearby exact stationary point of ``expected.expected_loss`` and classifies that point from
the exact Hessian of ``expected.expected_hessian``.

Polishing. The stationarity system ``grad L = 0`` is solved by Levenberg-Marquardt with the exact
Hessian ``H = V diag(mu_k) V^T`` as its Jacobian: the step is
``-sum_k mu_k / (mu_k^2 + damping) (v_k . g) v_k`` over the eigenpairs with
``|mu_k| > 1e-10 max |mu|``, so modes at that level or below (symmetries) are not inverted. A
step is kept only when it lowers ``||grad||``; otherwise the damping grows. With zero damping this
is Newton's step on the non-null space. The merit is ``||grad||``, not ``L``, so the polish can
land on a saddle as well as on a minimum.
Convergence means ``||grad||_F <= tol * max(1, L)``, with the gradient over all entries of
``W1`` and ``W2`` (of ``W`` when tied).

Dead units. For ``sigma > 0`` the loss is not twice differentiable where a column of ``W1`` is
zero. A column whose norm is at most ``1e-8`` times the largest column norm is set to zero
("dead"), together with its ``W2`` column when untied. A dead unit changes neither the output nor
the data term, and ``lam ||W2 e_j||^2`` is its only term, so a zero decoder column is its
minimizer (any value is when ``lam = 0``). The Hessian is taken over the other ("active") columns
only. The gradient of a dead unit is exactly zero, and the loss grows from it as
``L(t v) = L + t^2 Q(v) + O(t^4)``, positively homogeneous of degree 2, with

    tied:    Q(v)    = 2 lam ||v||^2 + v . b(v),
    untied:  Q(u, z) = lam (||u||^2 + ||z||^2) + z . b(u),
    b(u)     = (2/n) sum_i E[(f_active(y_i) - x_i) relu(u^T y_i)],

where ``f_active`` is the network without the dead unit. ``b(u)`` is the exact gradient in the
decoder column of a unit with encoder ``u`` and zero decoder. ``Q`` is the same function for every
dead unit, and cross terms between two dead units or with a perturbation of the active columns are
of higher order. So to second order the dead units add a term ``sum_j Q(w_j)`` that is separate
from the Hessian. ``Q`` is minimized over the unit sphere by L-BFGS from several starts: each
active column's direction, each point ``x_i``, and random directions. It is a local search, so the
minimum found is an upper bound on the true minimum. ``Q`` is zero on the direction of every active
column: turning an active unit into the dead one, two parallel units ``c_1 w``, ``c_2 w`` with
``c_1^2 + c_2^2 = 1`` realize the same map and penalty. Flat directions of ``Q`` along an active
column count as explained.

Split points. Two parallel active columns are columns whose directions have cosine at least
``1 - 1e-6``, with the joint ``(W1 e_j, W2 e_j)`` when untied. The same rotation merges them into
one at constant loss without changing the map, so a unit is freed. ``Q`` depends on the weights only through
that map, so it is searched in that case too. If ``2 min Q`` is negative while no column is dead,
the point can still be a local minimum, but a path at constant loss leads from it to a saddle: this
is flagged as ``flat_escape``. It does not change the verdict.

Zero modes and symmetries. An eigenvalue is "near zero" when ``|mu| <= zero_rtol * max |mu|``
(default ``1e-6``). ``2 Q`` is compared with the same threshold (with no active column, ``max |mu|``
is replaced by the largest ``|2 Q|`` at the starts of the search). The candidate generators of
exact or nearly exact symmetries, in the active parameters, are:

- rotations within a group of active columns that fire (``x_i^T W1 e_j > 0``) on the same set of
  points, ``W -> W A`` with ``A`` antisymmetric and supported on the pair ``{j, k}`` (the same ``A``
  on both layers when untied). For parallel columns the rotation is an exact symmetry. For other
  columns of one group it is a symmetry where the units are linear on the noisy copies of their points,
  up to terms of the size of the firing probabilities on the wrong side, exponentially small in
  ``1 / sigma^2``;
- only for the untied model with ``lam = 0``: the rescaling ``W1 e_j -> c W1 e_j``,
  ``W2 e_j -> W2 e_j / c`` of every unit, and ``W1 -> W1 (I + E)``, ``W2 -> W2 (I - E^T)`` for
  ``E`` supported on pairs of one group. With ``lam > 0`` the penalty breaks these, so they are
  not zero modes and are not used.

``explained_zero_modes`` is the number of principal angles between the near-null space of ``H``
and the span of the generators whose cosine is at least 0.99, that is the rank of the
projection of the null space onto that span.

Verdicts. ``polished_type`` describes the polished point: "saddle" when an eigenvalue or
``2 min Q`` is below ``-zero_rtol * max |mu|``; otherwise "local minimum" when every near-zero
mode and every flat dead-unit direction found is explained; otherwise "degenerate", where
second order cannot decide. ``verdict`` is "not stationary" when the polished point lies farther
than ``far_rtol`` (default 1e-3) from the candidate in relative Frobenius distance, and
``polished_type`` otherwise. When the polish cannot reach the tolerance, ``certify`` raises
``NotConvergedError`` (a ``RuntimeError``) carrying the final gradient norm and a certificate of
the best point reached, whose verdict is "not stationary".

Limitation. When non-parallel columns share points (a block storing a cluster), the rotation of
the block is a symmetry only up to exponentially small terms. Its curvature and the gradient
along it are then both tiny, the polish drifts along the nearly flat orbit and converges
sublinearly (measured: ``||grad||`` from 3e-5 to 6e-6 in 20 to 600 steps), so ``certify`` raises.
"""

import logging
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from . import _checks
from .expected import HESSIAN_LIMIT, expected_hessian, expected_loss_and_grad

log = logging.getLogger(__name__)

# A column at most this fraction of the largest column norm is treated as exactly zero. Because
# the loss is 2-homogeneous in a small column, Newton sends it to zero up to rounding (an estimate:
# about 1e-16 of its former norm), far below this.
DEAD_RTOL = 1e-8
# Eigenvalues below this fraction of the largest are not inverted in the Newton step. Exact
# symmetries give about 1e-16 relative (measured on split points), genuine curvature far more.
PSEUDO_INVERSE_RTOL = 1e-10
# Cosine between a null vector and the span of the generators (or between two directions) above
# which they count as the same. 0.99 is an angle of about 8 degrees.
SAME_DIRECTION = 0.99
# Scale t of the probe column used for the gradient of Q, whose relative error is O(t^2).
_PROBE_SCALE = 1e-6
# Random starts of the search over dead-unit directions, besides the columns and the points.
_RANDOM_STARTS = 4


class NotConvergedError(RuntimeError):
    """The polish did not reach the gradient tolerance.

    ``gradient_norm`` is the final ``||grad||_F`` and ``certificate`` describes the best point
    reached, with verdict "not stationary".
    """

    def __init__(self, message, gradient_norm, certificate):
        super().__init__(message)
        self.gradient_norm = gradient_norm
        self.certificate = certificate


@dataclass(frozen=True)
class Certificate:
    """Result of ``certify`` for one candidate; the module docstring states every rule.

    Norms are Frobenius norms over all entries of ``(W1, W2)`` (of ``W`` when tied). Eigenvalues
    are those of the Hessian over the active columns, in the units of the loss per squared weight.
    """

    verdict: str  # "local minimum", "saddle", "degenerate" or "not stationary"
    polished_type: str  # "local minimum", "saddle" or "degenerate"
    converged: bool
    iterations: int  # Newton steps taken
    tolerance: float  # tol * max(1, L) at the polished point
    grad_norm_candidate: float
    grad_norm_polished: float
    loss_candidate: float
    loss_polished: float
    distance: float  # ||polished - candidate||
    relative_distance: float  # distance / ||candidate||
    W1: np.ndarray  # (d, p), polished
    W2: np.ndarray | None  # (d, p), polished, None when tied
    smallest_eigenvalues: np.ndarray  # up to 10, ascending
    largest_eigenvalue: float  # max |mu|
    zero_threshold: float  # zero_rtol * max |mu|
    zero_modes: int  # eigenvalues with |mu| <= zero_threshold
    explained_zero_modes: int  # of those, inside the span of the symmetry generators
    symmetry_generators: int  # rank of the generator set
    active_columns: tuple  # indices of the columns the Hessian covers
    dead_columns: tuple  # indices of the zero columns, handled through Q
    free_unit_curvature: float  # 2 min Q on the unit sphere (nan without dead or parallel columns)
    flat_escape: bool  # no dead column, a split, and 2 min Q < -zero_threshold
    dead_flat_directions: int  # distinct directions with |2 Q| <= zero_threshold, per dead column
    dead_flat_explained: int  # of those, along an active column

    @property
    def tied(self):
        return self.W2 is None


def certify(
    W1, W2, X, sigma, lam, *, tol=1e-10, max_iter=30, zero_rtol=1e-6, far_rtol=1e-3, seed=0
):
    """Polish ``(W1, W2)`` to an exact stationary point and classify it; returns a ``Certificate``.

    ``W1`` and ``W2`` have shape ``(d, p)`` (``W2 = None``: tied), ``X`` is ``(n, d)``. ``seed``
    drives the random starts of the dead-unit search. Raises ValueError for bad inputs or when the
    Hessian over the active columns would exceed ``expected.HESSIAN_LIMIT`` parameters, and
    ``NotConvergedError`` when ``max_iter`` steps do not bring ``||grad||_F`` to
    ``tol * max(1, L)``.
    """
    X = _checks.points(X)
    d = X.shape[1]
    W1 = _checks.weights(W1, d, "W1").copy()
    tied = W2 is None
    if not tied:
        W2 = _checks.weights(W2, d, "W2").copy()
        if W2.shape != W1.shape:
            raise ValueError(f"W2 must have the shape of W1, {W1.shape}, got {W2.shape}")
    sigma = _checks.positive(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    tol = _checks.positive(tol, "tol")
    max_iter = _checks.count(max_iter, "max_iter", minimum=0)
    zero_rtol = _checks.positive(zero_rtol, "zero_rtol")
    far_rtol = _checks.positive(far_rtol, "far_rtol")
    seed = _checks.count(seed, "seed", minimum=0)

    problem = _Problem(X, sigma, lam, tied)
    candidate = (W1.copy(), None if tied else W2.copy())
    state = problem.snap(W1, W2)
    size = d * int(state[2].sum()) * (1 if tied else 2)
    if size > HESSIAN_LIMIT:
        raise ValueError(
            f"the Hessian over the active columns would have {size} parameters, above the limit of "
            f"{HESSIAN_LIMIT} of expected_hessian; certify a smaller problem"
        )
    loss0, grad0 = problem.loss_grad(W1, W2)
    loss, grad = problem.loss_grad(state[0], state[1])
    gnorm = np.linalg.norm(grad)
    converged = False
    iterations = 0
    while True:
        if gnorm <= tol * max(1.0, loss):
            converged = True
            break
        if iterations >= max_iter:
            break
        step = problem.newton(state, grad, gnorm)
        if step is None:
            break
        state, loss, grad, gnorm = step
        iterations += 1
        log.debug("certify step %d: loss %.12g, |grad| %.3e", iterations, loss, gnorm)

    cert = _classify(
        problem, candidate, state, (loss0, np.linalg.norm(grad0)), (loss, gnorm), tol, zero_rtol, far_rtol,
        converged, iterations, seed,
    )
    if not converged:
        raise NotConvergedError(
            f"the polish did not converge: after {iterations} steps ||grad|| = {gnorm:.3e} is above the "
            f"tolerance {tol * max(1.0, loss):.3e}; the candidate is not near a stationary point that "
            "Newton's method can reach (try a larger max_iter or tol)",
            float(gnorm),
            cert,
        )
    return cert


class _Problem:
    """The exact loss of one data set, with the active-column bookkeeping of the polish."""

    def __init__(self, X, sigma, lam, tied):
        self.X, self.sigma, self.lam, self.tied = X, sigma, lam, tied

    def loss_grad(self, W1, W2):
        """Return ``L`` and the flat gradient over all entries (``W1`` then ``W2``)."""
        loss, g1, g2 = expected_loss_and_grad(W1, W2, self.X, self.sigma, self.lam)
        return loss, (g1.ravel() if self.tied else np.concatenate([g1.ravel(), g2.ravel()]))

    def snap(self, W1, W2):
        """Zero the dead columns (and their decoder columns); returns ``(W1, W2, active)``."""
        W1 = W1.copy()
        W2 = None if W2 is None else W2.copy()
        norms = np.linalg.norm(W1, axis=0)
        active = norms > DEAD_RTOL * norms.max() if norms.max() > 0 else np.zeros(norms.size, dtype=bool)
        W1[:, ~active] = 0.0
        if W2 is not None:
            W2[:, ~active] = 0.0
        return W1, W2, active

    def pack(self, W1, W2, active):
        if self.tied:
            return W1[:, active].ravel()
        return np.concatenate([W1[:, active].ravel(), W2[:, active].ravel()])

    def active_grad(self, grad, shape, active):
        d, p = shape
        if self.tied:
            return grad.reshape(d, p)[:, active].ravel()
        g1, g2 = grad[: d * p].reshape(d, p), grad[d * p :].reshape(d, p)
        return np.concatenate([g1[:, active].ravel(), g2[:, active].ravel()])

    def unpack(self, theta, W1, W2, active):
        d = W1.shape[0]
        q = int(active.sum())
        W1 = W1.copy()
        W1[:, active] = theta[: d * q].reshape(d, q)
        if not self.tied:
            W2 = W2.copy()
            W2[:, active] = theta[d * q :].reshape(d, q)
        return W1, W2

    def hessian(self, W1, W2, active):
        if not np.any(active):
            return np.zeros((0, 0))
        return expected_hessian(W1[:, active], None if self.tied else W2[:, active], self.X, self.sigma, self.lam)

    def newton(self, state, grad, gnorm):
        """One Levenberg-Marquardt step on ``grad = 0``; returns the new state or None if stuck."""
        W1, W2, active = state
        if not np.any(active):
            return None
        H = self.hessian(W1, W2, active)
        mu, V = np.linalg.eigh(H)
        scale = np.max(np.abs(mu))
        keep = np.abs(mu) > PSEUDO_INVERSE_RTOL * scale
        coeff = V[:, keep].T @ self.active_grad(grad, W1.shape, active)
        theta = self.pack(W1, W2, active)
        damping = 0.0
        while damping <= 1e6 * scale**2:
            step = -V[:, keep] @ (mu[keep] / (mu[keep] ** 2 + damping) * coeff)
            trial = self.snap(*self.unpack(theta + step, W1, W2, active))
            loss, new_grad = self.loss_grad(trial[0], trial[1])
            new_norm = np.linalg.norm(new_grad)
            if new_norm < gnorm:
                return trial, loss, new_grad, new_norm
            # Start damping at 1e-8 of the squared curvature scale, then grow it a hundredfold.
            damping = 1e-8 * scale**2 if damping == 0 else 100.0 * damping
        return None


def _classify(problem, candidate, state, before, after, tol, zero_rtol, far_rtol, converged, iterations, seed):
    W1, W2, active = state
    tied = problem.tied
    cW1, cW2 = candidate
    diff2 = np.sum((W1 - cW1) ** 2) + (0.0 if tied else np.sum((W2 - cW2) ** 2))
    norm2 = np.sum(cW1**2) + (0.0 if tied else np.sum(cW2**2))
    distance = float(np.sqrt(diff2))
    if norm2 > 0:
        relative = distance / np.sqrt(norm2)
    else:
        relative = 0.0 if distance == 0 else float("inf")

    H = problem.hessian(W1, W2, active)
    mu, V = np.linalg.eigh(H) if H.size else (np.zeros(0), np.zeros((0, 0)))
    top = float(np.max(np.abs(mu))) if mu.size else 0.0
    generators = _generators(W1[:, active], None if tied else W2[:, active], problem.X, problem.lam, tied)
    basis = _orthonormal(generators)

    dead = np.flatnonzero(~active)
    if dead.size or _has_parallel_pair(W1[:, active], None if tied else W2[:, active]):
        q_min, flat, q_scale = _dead_unit_search(problem, W1, W2, active, seed)
        curvature_scale = top if top > 0 else q_scale
    else:
        q_min, flat, curvature_scale = float("nan"), [], top
    threshold = zero_rtol * curvature_scale
    near = np.abs(mu) <= threshold
    null = V[:, near]
    if null.shape[1] and basis.shape[1]:
        cosines = np.linalg.svd(basis.T @ null, compute_uv=False)
        explained = int(np.sum(cosines >= SAME_DIRECTION))
    else:
        explained = 0
    if not dead.size:
        flat = []
    flat_count = sum(1 for q, _ in flat if abs(q) <= threshold)
    flat_explained = sum(1 for q, ok in flat if abs(q) <= threshold and ok)

    negative = (mu.size and mu[0] < -threshold) or (dead.size and q_min < -threshold)
    if negative:
        kind = "saddle"
    elif explained == int(near.sum()) and flat_explained == flat_count:
        kind = "local minimum"
    else:
        kind = "degenerate"
    verdict = kind if (converged and relative <= far_rtol) else "not stationary"
    return Certificate(
        verdict=verdict,
        polished_type=kind,
        converged=converged,
        iterations=iterations,
        tolerance=tol * max(1.0, after[0]),
        grad_norm_candidate=float(before[1]),
        grad_norm_polished=float(after[1]),
        loss_candidate=float(before[0]),
        loss_polished=float(after[0]),
        distance=distance,
        relative_distance=float(relative),
        W1=W1,
        W2=W2,
        smallest_eigenvalues=mu[:10].copy(),
        largest_eigenvalue=top,
        zero_threshold=float(threshold),
        zero_modes=int(near.sum()),
        explained_zero_modes=explained,
        symmetry_generators=int(basis.shape[1]),
        active_columns=tuple(int(j) for j in np.flatnonzero(active)),
        dead_columns=tuple(int(j) for j in dead),
        free_unit_curvature=float(q_min),
        flat_escape=bool(not dead.size and q_min < -threshold),
        dead_flat_directions=flat_count,
        dead_flat_explained=flat_explained,
    )


def _has_parallel_pair(W1, W2):
    """Return True when two columns (joint ``(W1 e_j, W2 e_j)`` when untied) are parallel."""
    joint = W1 if W2 is None else np.concatenate([W1, W2], axis=0)
    if joint.shape[1] < 2:
        return False
    unit = joint / np.linalg.norm(joint, axis=0)
    cos = unit.T @ unit
    np.fill_diagonal(cos, 0.0)
    # Columns that share a point differ in direction by about the firing probabilities on the
    # wrong side, far below 1e-6 at the noise levels where memorization is stationary.
    return bool(np.max(cos) >= 1.0 - 1e-6)


def _generators(W1, W2, X, lam, tied):
    """Return the symmetry generators as columns of a ``(P, m)`` matrix in the active parameters."""
    d, p = W1.shape
    if p == 0:
        return np.zeros((0, 0))
    fires = X @ W1 > 0  # (n, p)
    groups = {}
    for j in range(p):
        groups.setdefault(fires[:, j].tobytes(), []).append(j)
    vectors = []

    def add(E1, E2):
        # Parameter change (W1 E1, W2 E2), flattened like the Hessian.
        if tied:
            vectors.append((W1 @ E1).ravel())
        else:
            vectors.append(np.concatenate([(W1 @ E1).ravel(), (W2 @ E2).ravel()]))

    for members in groups.values():
        for a, j in enumerate(members):
            for k in members[a + 1 :]:
                A = np.zeros((p, p))
                A[j, k], A[k, j] = 1.0, -1.0
                add(A, A)
    if not tied and lam == 0:
        for members in groups.values():
            for j in members:
                for k in members:
                    E = np.zeros((p, p))
                    E[j, k] = 1.0
                    add(E, -E.T)
    if not vectors:
        return np.zeros((W1.size * (1 if tied else 2), 0))
    return np.stack(vectors, axis=1)


def _orthonormal(vectors):
    """Return an orthonormal basis of the column span of ``vectors``, relative rank cut 1e-8."""
    if vectors.size == 0:
        return np.zeros((vectors.shape[0], 0))
    U, s, _ = np.linalg.svd(vectors, full_matrices=False)
    return U[:, s > 1e-8 * s[0]] if s[0] > 0 else U[:, :0]


def _dead_unit_search(problem, W1, W2, active, seed):
    """Minimize ``2 Q`` over unit directions of a dead unit.

    Returns ``(2 min Q, [(2 Q, explained) per distinct local minimizer], scale)``, where
    ``explained`` is True when the minimizer lies along an active column, and ``scale`` is the largest ``|2 Q|`` seen at the starts (the curvature scale when no column
    is active).
    """
    X, lam, tied = problem.X, problem.lam, problem.tied
    n, d = X.shape
    A1 = W1[:, active]
    A2 = A1 if tied else W2[:, active]
    col_norms = np.linalg.norm(A1, axis=0)
    t = _PROBE_SCALE * (col_norms.max() if col_norms.size else 1.0 / np.linalg.norm(X, axis=1).max())

    def split(v):
        return (v, v) if tied else (v[:d], v[d:])

    def probe_grad(v):
        # Gradient of the loss in the probe unit at scale t, divided by t: grad Q(v) + O(t^2).
        u, z = split(v)
        P1 = np.column_stack([A1, t * u])
        P2 = None if tied else np.column_stack([A2, t * z])
        _, g1, g2 = expected_loss_and_grad(P1, P2, X, problem.sigma, lam)
        return g1[:, -1] / t if tied else np.concatenate([g1[:, -1], g2[:, -1]]) / t

    def objective(v):
        # 2 Q(v / |v|) by Euler's relation v . grad Q(v) = 2 Q(v), and its gradient.
        r2 = v @ v
        g = probe_grad(v)
        q2 = (v @ g) / r2
        return q2, 2.0 * (g - q2 * v) / r2

    # Directions of the active columns (joint (u, z) when untied) and of the points.
    starts = []
    columns = []
    for j in range(A1.shape[1]):
        c = A1[:, j] if tied else np.concatenate([A1[:, j], A2[:, j]])
        columns.append(c / np.linalg.norm(c))
    starts.extend(columns)
    for x in X:
        starts.append(x / np.linalg.norm(x) if tied else np.concatenate([x, x]) / (np.sqrt(2) * np.linalg.norm(x)))
    rng = np.random.default_rng(seed)
    for _ in range(_RANDOM_STARTS):
        g = rng.standard_normal(d if tied else 2 * d)
        starts.append(g / np.linalg.norm(g))

    found = []
    scale = 0.0
    for v0 in starts:
        scale = max(scale, abs(objective(v0)[0]))
        result = minimize(objective, v0, jac=True, method="L-BFGS-B", options=dict(maxiter=200, gtol=1e-12))
        v = result.x / np.linalg.norm(result.x)
        q2 = _exact_q2(problem, A1, A2, v)
        if not any(v @ w > SAME_DIRECTION for _, w in found):
            found.append((q2, v))
    q_min = min(q for q, _ in found)
    flat = [(q, any(v @ c > SAME_DIRECTION for c in columns)) for q, v in found]
    return q_min, flat, scale


def _exact_q2(problem, A1, A2, v):
    """Return ``2 Q`` at the unit direction ``v`` from the exact decoder gradient ``b``."""
    X, lam, tied = problem.X, problem.lam, problem.tied
    d = X.shape[1]
    u, z = (v, v) if tied else (v[:d], v[d:])
    P1 = np.column_stack([A1, u])
    P2 = np.column_stack([A2, np.zeros(d)])
    _, _, g2 = expected_loss_and_grad(P1, P2, X, problem.sigma, lam)
    b = g2[:, -1]
    if tied:
        return 2.0 * (2.0 * lam * (u @ u) + u @ b)
    return 2.0 * (lam * (u @ u + z @ z) + z @ b)
