"""Training on the exact noise-averaged loss with a quasi-Newton method.

``train_exact`` minimizes ``expected.expected_loss`` (no Monte Carlo noise) with
``scipy.optimize.minimize`` and the exact gradient of ``expected.expected_loss_and_grad``, from the
same small random init as ``model.ReLUDAE``: entries ``N(0, init_scale^2 / d)`` drawn from
``torch.Generator().manual_seed(seed)``, ``W1`` first and then ``W2``. So for equal seeds it starts
where ``training.train`` starts.

The loss is 2-homogeneous near ``W = 0`` (its gradient there is of the order of ``init_scale``),
and ``W = 0`` is a saddle, so a small init starts slowly but is not stuck. A unit that fires on no
point and no noisy copy has an exponentially small gradient and stays where it is. An exactly zero
``W1`` column has gradient zero and never moves.
"""

import logging
import time
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from . import _checks
from .expected import expected_loss_and_grad
from .model import ReLUDAE

log = logging.getLogger(__name__)

METHODS = ("L-BFGS-B", "BFGS", "CG")


@dataclass
class ExactTrainResult:
    """Weights and loss history of one run of ``train_exact``.

    ``W1`` and ``W2`` have shape ``(d, p)``; ``W2`` equals ``W1`` for a tied run. ``loss_history``
    contains the exact loss at the init and after every iteration.
    """

    W1: np.ndarray
    W2: np.ndarray
    tied: bool
    loss_history: np.ndarray  # (iterations + 1,)
    iterations: int
    evaluations: int  # loss and gradient evaluations, with the one at the init and at the end
    seconds: float  # wall time of the minimization
    gradient_norm: float  # ||grad||_F at the end
    success: bool
    message: str  # scipy's message

    @property
    def product(self):
        """Return ``W1 W2^T``, shape ``(d, d)``; invariant to rotations of the columns."""
        return self.W1 @ self.W2.T


def initial_weights(d, width, tied=False, seed=0, init_scale=1e-2):
    """Return the ``(W1, W2)`` init of ``model.ReLUDAE`` for one seed; ``W2`` is None when tied."""
    net = ReLUDAE(d, width, seeds=(seed,), tied=tied, init_scale=init_scale)
    W1, W2 = net.weights(0)
    return W1, (None if tied else W2)


def train_exact(
    X,
    width,
    sigma,
    lam,
    *,
    tied=False,
    seed=0,
    init_scale=1e-2,
    method="L-BFGS-B",
    max_iter=5000,
    gtol=1e-10,
    stop_when=None,
):
    """Minimize the exact loss from a small random init; returns an ``ExactTrainResult``.

    ``X`` has shape ``(n, d)`` and ``width`` is the number of hidden units ``p``. ``gtol`` is
    scipy's bound on the largest gradient entry at the stop, for all three methods, and the run
    stops after at most ``max_iter`` iterations. Raises ValueError naming the bad
    value for a non-positive ``sigma``, width, ``max_iter`` or ``gtol``, a negative ``lam``,
    ``init_scale`` or ``seed``, an unknown method or bad ``X``.
    """
    X = _checks.points(X)
    n, d = X.shape
    width = _checks.count(width, "width")
    sigma = _checks.positive(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    seed = _checks.count(seed, "seed", minimum=0)
    init_scale = _checks.nonnegative(init_scale, "init_scale")
    max_iter = _checks.count(max_iter, "max_iter")
    gtol = _checks.positive(gtol, "gtol")
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    tied = bool(tied)

    W1, W2 = initial_weights(d, width, tied, seed, init_scale)
    size = d * width
    counter = {"evaluations": 0}

    def split(theta):
        return theta[:size].reshape(d, width), None if tied else theta[size:].reshape(d, width)

    def fun(theta):
        counter["evaluations"] += 1
        loss, g1, g2 = expected_loss_and_grad(*split(theta), X, sigma, lam)
        grad = g1.ravel() if tied else np.concatenate([g1.ravel(), g2.ravel()])
        return loss, grad

    theta0 = W1.ravel() if tied else np.concatenate([W1.ravel(), W2.ravel()])
    history = [fun(theta0)[0]]

    def callback(intermediate_result):
        # scipy recognizes this parameter name and passes the current OptimizeResult; raising
        # StopIteration ends the minimization at this iterate.
        history.append(float(intermediate_result.fun))
        if stop_when is not None and stop_when(*split(intermediate_result.x)):
            raise StopIteration

    options = dict(maxiter=max_iter, gtol=gtol)
    if method == "L-BFGS-B":
        # With ftol 0, L-BFGS-B stops on the loss only when an iteration does not lower it at all.
        # maxfun allows 20 evaluations per iteration on average.
        options.update(ftol=0.0, maxfun=20 * max_iter)
    log.info("exact training: n=%d d=%d width=%d tied=%s sigma=%g lam=%g", n, d, width, tied, sigma, lam)
    start = time.perf_counter()
    result = minimize(fun, theta0, jac=True, method=method, callback=callback, options=options)
    seconds = time.perf_counter() - start
    W1, W2 = split(result.x)
    W2 = W1.copy() if tied else W2.copy()
    _, grad = fun(result.x)
    log.info("exact training finished in %.2f s after %d iterations: %s", seconds, result.nit, result.message)
    return ExactTrainResult(
        W1=W1.copy(),
        W2=W2,
        tied=tied,
        loss_history=np.array(history),
        iterations=int(result.nit),
        evaluations=counter["evaluations"],
        seconds=seconds,
        gradient_norm=float(np.linalg.norm(grad)),
        success=bool(result.success),
        message=str(result.message),
    )

