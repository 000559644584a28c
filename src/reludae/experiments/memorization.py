"""Experiments of the memorization chapter (Corollary 3.2).

The default problem: ``n = 4`` points in ``R^50`` with pairwise negative cosines and norms in
[0.8, 1.2], noise ``sigma = 0.05`` and penalty ``lam = 1e-2``. With that noise the
pre-activation ``w_j^T (x_i + sigma eps)`` of a stored column ``w_j = r_j x_j`` has mean
``r_j ||x_j|| ||x_i|| cos(x_i, x_j)`` and standard deviation ``sigma r_j ||x_j||``. The largest
cosine is about -0.2, so the column stays silent on other points except with probability below
``Phi(-3.5)``, about 2e-4, and the closed form is stationary up to a residual below the Monte
Carlo noise of these experiments.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch

from .. import _checks, data, metrics, model, theory, training


@dataclass(frozen=True)
class Problem:
    """A memorization problem: data set and training objective."""

    n: int = 4
    d: int = 50
    width: int = 16
    sigma: float = 0.05
    lam: float = 1e-2
    data_seed: int = 0

    def points(self):
        """Return the ``(n, d)`` training points with pairwise negative cosines."""
        return data.negative_cosine_points(self.n, self.d, seed=self.data_seed)


DEFAULT = Problem()

# Adam with a learning rate decaying from 1e-2 to 1e-4: the decay lets the Monte Carlo
# fluctuations of the weights shrink with the step size, so the end point is close to a
# stationary point of the expected loss.
TRAINING = dict(optimizer="adam", lr=1e-2, final_lr_ratio=1e-2, steps=3000, noise_draws=8, init_scale=1e-2)


def monte_carlo_gradient(W1, W2, X, sigma, lam, draws, seed=0, chunk=10_000):
    """Estimate the loss gradient with ``draws`` noise draws per point; returns ``(g1, g2)``.

    The estimate is the exact gradient of the Monte Carlo loss on one fixed set of draws, so it
    is unbiased for the gradient of the expected loss wherever the loss is differentiable. Draws
    are processed ``chunk`` at a time, which bounds memory at ``chunk * n * d`` numbers.
    """
    X = _checks.points(X)
    draws = _checks.count(draws, "draws")
    chunk = _checks.count(chunk, "chunk")
    net = model.ReLUDAE.from_weights(W1, W2)
    generator = torch.Generator().manual_seed(int(seed))
    data = torch.as_tensor(X)
    with training.single_thread():
        for start in range(0, draws, chunk):
            m = min(chunk, draws - start)
            clean = data.repeat(m, 1)  # (m * n, d)
            noisy = clean + sigma * torch.randn(clean.shape, generator=generator, dtype=model.DTYPE)
            residual = net(noisy)[0] - clean
            (residual.pow(2).sum(dim=1).sum() / (draws * X.shape[0])).backward()
        (lam * net.penalty()[0]).backward()
    g1 = net.W1.grad[0].numpy().copy()
    g2 = np.zeros_like(g1) if net.tied else net.W2.grad[0].numpy().copy()
    return g1, g2


@dataclass(frozen=True)
class GradientDecay:
    """Monte Carlo gradient norms against the number of draws, and the fitted log-log slope."""

    draws: np.ndarray  # (k,)
    norms: np.ndarray  # (k,), root mean square over repeats of ||(g1, g2)||
    slope: float
    slope_stderr: float


def gradient_decay(W1, W2, X, sigma, lam, draws=(100, 300, 1000, 3000, 10000, 30000), repeats=4, seed=0):
    """Measure how the Monte Carlo gradient norm at ``(W1, W2)`` shrinks with the draws.

    At an exact stationary point the estimate is pure noise, so its norm falls like
    ``draws^(-1/2)``. Elsewhere it levels off at the norm of the true gradient.
    """
    draws = np.asarray(draws)
    norms = np.empty(len(draws))
    for k, m in enumerate(draws):
        squares = []
        for r in range(repeats):
            g1, g2 = monte_carlo_gradient(W1, W2, X, sigma, lam, int(m), seed=seed * 1000 + 17 * k + r)
            squares.append(np.sum(g1**2) + np.sum(g2**2))
        norms[k] = np.sqrt(np.mean(squares))
    fit = np.polyfit(np.log(draws), np.log(norms), 1, cov=True)
    slope, slope_var = fit[0][0], fit[1][0, 0]
    return GradientDecay(draws, norms, float(slope), float(np.sqrt(slope_var)))


def perturbed(W, relative=0.1, seed=0):
    """Return ``W`` plus a Gaussian perturbation of Frobenius norm ``relative * ||W||``."""
    noise = np.random.default_rng(seed).standard_normal(W.shape)
    return W + relative * np.linalg.norm(W) / np.linalg.norm(noise) * noise


@lru_cache(maxsize=32)
def trained(problem=DEFAULT, seeds=(0,), **overrides):
    """Train the ReLU-DAE on ``problem`` from a small random init; cached per arguments.

    ``overrides`` change fields of the default training settings (for example ``tied=True`` or
    ``optimizer="rmsprop"``). Returns a ``training.TrainResult`` holding one run per seed.
    """
    settings = dict(TRAINING, **overrides)
    config = training.TrainConfig(width=problem.width, sigma=problem.sigma, lam=problem.lam, **settings)
    return training.train(problem.points(), config, seeds=seeds)


@dataclass(frozen=True)
class RunSummary:
    """Invariants of one trained run compared with the memorization closed form."""

    product_error: float  # ||W1 W2^T - W_mem W_mem^T||_F / ||W_mem W_mem^T||_F
    min_column_cosine: float  # smallest max-cosine of a significant column with a training point
    tie_gap: float  # ||W1 - W2||_F / ||W1||_F
    points_stored: int  # training points with at least one aligned significant column
    sparse: bool  # every point stored in one column holding 90 % of its energy
    storage: metrics.StorageReport


def summarize(W1, W2, X, sigma, lam):
    """Compare trained weights with the memorizer through invariants; returns ``RunSummary``.

    The memorizer's own product ``W_mem W_mem^T`` exists only when ``n lam < min ||x_i||^2``;
    outside that range the product error is ``nan``.
    """
    X = _checks.points(X)
    try:
        W_mem = theory.memorization_weights(X, sigma, lam)
        product_error = metrics.relative_error(W1 @ W2.T, W_mem @ W_mem.T)
    except ValueError:
        product_error = float("nan")
    storage = metrics.storage_report(W1, X)
    significant = storage.significant
    return RunSummary(
        product_error=product_error,
        min_column_cosine=float(storage.max_cosine[significant].min()) if significant.any() else float("nan"),
        tie_gap=float(np.linalg.norm(W1 - W2) / np.linalg.norm(W1)),
        points_stored=int(np.sum(storage.columns_per_point >= 1)),
        sparse=storage.sparse,
        storage=storage,
    )


def storage_forms(problem=DEFAULT, optimizers=("adam", "rmsprop"), widths=(4, 8, 16), seeds=tuple(range(10)), steps=2000):
    """Train every optimizer and width over ``seeds``; returns one row (a dict) per combination.

    Runs take ``steps`` steps: 2,000 by default, two thirds of the other experiments, so the
    table stays cheap. The learning rate still decays to the same final value.

    Each row counts the runs that store every point (``all_stored``), and among those the runs
    with sparse storage (one column per point) and with a point split across parallel columns.
    """
    rows = []
    for optimizer in optimizers:
        for width in widths:
            variant = Problem(problem.n, problem.d, width, problem.sigma, problem.lam, problem.data_seed)
            result = trained(variant, seeds=tuple(seeds), optimizer=optimizer, steps=steps)
            X = variant.points()
            summaries = [summarize(*result.weights(s), X, variant.sigma, variant.lam) for s in range(len(seeds))]
            stored = [s.points_stored == variant.n for s in summaries]
            rows.append(
                dict(
                    optimizer=optimizer,
                    width=width,
                    runs=len(seeds),
                    all_stored=int(sum(stored)),
                    sparse=int(sum(s.sparse for s, ok in zip(summaries, stored) if ok)),
                    split=int(sum(not s.sparse for s, ok in zip(summaries, stored) if ok)),
                    max_product_error_when_stored=max(
                        (s.product_error for s, ok in zip(summaries, stored) if ok), default=float("nan")
                    ),
                )
            )
    return rows


def firing_probabilities(X, sigma):
    """Return ``P[j, i]``: the probability that the memorizer's unit ``j`` fires on ``x_i + sigma eps``.

    Unit ``j`` stores ``r_j x_j``, so its pre-activation on the noisy input is Gaussian with mean
    ``r_j ||x_j|| ||x_i|| cos(x_i, x_j)`` and standard deviation ``sigma r_j ||x_j||``, and fires
    with probability ``Phi(||x_i|| cos(x_i, x_j) / sigma)``. The diagonal is the probability
    that a unit fires on its own point.
    """
    from scipy.special import ndtr

    X = _checks.points(X)
    sigma = _checks.positive(sigma, "sigma")
    norms = np.linalg.norm(X, axis=1)
    return ndtr(data.cosines(X) * norms[None, :] / sigma)  # (n, n), [j, i]


def classify_outputs(outputs, X, cosine=0.99, zero=0.05):
    """Label each output as ``"point"``, ``"zero"`` or ``"mixture"``; returns an array of labels.

    ``"point"``: cosine above ``cosine`` with some training point; ``"zero"``: norm below
    ``zero`` times the smallest training norm; ``"mixture"``: anything else.
    """
    X = _checks.points(X)
    outputs = _checks.points(outputs, "outputs")
    norms = np.linalg.norm(outputs, axis=1)
    unit_X = X / np.linalg.norm(X, axis=1, keepdims=True)
    best = np.max(outputs @ unit_X.T, axis=1) / np.where(norms > 0, norms, 1.0)
    labels = np.full(len(outputs), "mixture", dtype=object)
    labels[best > cosine] = "point"
    labels[norms < zero * np.linalg.norm(X, axis=1).min()] = "zero"
    return labels


def residual_rate(X):
    """Return the predicted exponential rate ``c`` of the closed form's residual, ``exp(-c / sigma^2)``.

    Unit ``j`` fires on a noisy copy of ``x_i`` with probability ``Phi(t_ij / sigma)``,
    ``t_ij = ||x_i|| cos(x_i, x_j)``, which behaves like ``exp(-t_ij^2 / (2 sigma^2))`` for
    ``t_ij < 0``. The largest such probability sets the rate ``c = max_ij(t_ij)^2 / 2``; with a
    positive cosine the probability does not vanish as ``sigma -> 0`` and the rate is zero.
    """
    X = _checks.points(X)
    t = data.cosines(X) * np.linalg.norm(X, axis=1)[None, :]  # [j, i] = ||x_i|| cos(x_i, x_j)
    np.fill_diagonal(t, -np.inf)
    largest = float(t.max())
    return largest**2 / 2.0 if largest < 0 else 0.0


def closed_form_gradient_norms(X, sigmas, lam):
    """Return the exact gradient norm of the tied loss at the closed form, one per ``sigma``."""
    from ..expected import expected_loss_and_grad

    norms = []
    for sigma in sigmas:
        W = theory.memorization_weights(X, sigma, lam)
        _, gradient, _ = expected_loss_and_grad(W, None, X, sigma, lam)
        norms.append(np.linalg.norm(gradient))
    return np.array(norms)


def fit_exponential_rate(sigmas, values):
    """Fit ``log v = a + b log sigma - c / sigma^2`` by least squares; returns ``(c, b)``.

    The power ``sigma^b`` absorbs the polynomial prefactor of a Gaussian tail, so ``c`` is the
    exponential rate alone.
    """
    sigmas = np.asarray(sigmas, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if sigmas.shape != values.shape or sigmas.size < 4:
        raise ValueError(f"need at least four (sigma, value) pairs of equal length, got {sigmas.size} and {values.size}")
    if np.any(values <= 0) or np.any(sigmas <= 0):
        raise ValueError("sigmas and values must be positive to fit a logarithm")
    design = np.column_stack([np.ones_like(sigmas), np.log(sigmas), -1.0 / sigmas**2])
    coefficients, *_ = np.linalg.lstsq(design, np.log(values), rcond=None)
    return float(coefficients[2]), float(coefficients[1])


def certified_distances(X, sigmas, lam, tied=True):
    """Certify the closed form at each ``sigma``; returns a list of ``certify.Certificate``.

    A candidate whose polish does not converge contributes the certificate carried by the
    ``NotConvergedError``, whose verdict is ``"not stationary"``.
    """
    from ..certify import NotConvergedError, certify

    certificates = []
    for sigma in sigmas:
        W = theory.memorization_weights(X, sigma, lam)
        try:
            certificates.append(certify(W, None if tied else W, X, sigma, lam))
        except NotConvergedError as error:
            certificates.append(error.certificate)
    return certificates


def certify_configurations(problem=DEFAULT):
    """Certify the closed form and its variants on ``problem``; returns ``[(name, certificate)]``.

    The variants are the tied and the untied closed form, and point 0 split over two parallel
    columns (70 % and 30 % of its energy) among extra zero columns. Outside the hypotheses are two
    points turned to cosine +0.5, point 2's column removed with its unit left free, and point 2
    dropped with no spare unit (``p < n``).
    """
    from ..certify import NotConvergedError, certify

    X = problem.points()
    sigma, lam = problem.sigma, problem.lam
    W = theory.memorization_weights(X, sigma, lam)
    split = np.zeros((problem.d, problem.width))
    split[:, : problem.n] = W
    split[:, 0] *= np.sqrt(0.7)
    split[:, problem.n] = np.sqrt(0.3) * W[:, 0]
    unstored = W.copy()
    unstored[:, 2] = 0.0
    positive = data.with_positive_cosine(X, cosine=0.5)

    cases = [
        ("closed form, tied", W, None, X),
        ("closed form, untied", W, W, X),
        ("point 0 split over two columns", split, None, X),
        ("two points with cosine +0.5", theory.memorization_weights(positive, sigma, lam), None, positive),
        ("point 2 unstored, its unit free", unstored, None, X),
        ("point 2 unstored, p = 3 < n", np.delete(W, 2, axis=1), None, X),
    ]
    results = []
    for name, W1, W2, points in cases:
        try:
            certificate = certify(W1, W2, points, sigma, lam)
        except NotConvergedError as error:
            certificate = error.certificate
        results.append((name, certificate))
    return results
