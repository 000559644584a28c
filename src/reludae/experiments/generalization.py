"""Generalization experiment (Corollary 3.3): blocks of a trained ReLU-DAE learn each mode's statistics.

The data is a Gaussian mixture of ``K = 3`` modes in ``R^20`` whose means have pairwise cosines at
most ``-0.4`` and whose covariances have rank 2 with distinct eigenvalues, orthogonal to all means.
Each mode's second moment ``S_k = mu_k mu_k^T + Sigma_k`` then has rank 3, so a block of
``p_k = 3`` units can hold all of it. Models are trained by Monte Carlo Adam (``training.train``)
with a decaying learning rate; the exact trainer is too slow here (several minutes for 300 points).
Trained models are cached, so the claims and the chapter share them.
"""

import functools
from dataclasses import dataclass

import numpy as np

from .. import _checks, blocks, data, metrics, theory, training
from ..denoisers import mixture_denoiser
from .digits import merge_parallel_units
from .transition import stratified_sample

MODES, DIM, RANK = 3, 20, 2
WIDTH_PER_MODE = RANK + 1  # the rank of S_k
COV_EIGENVALUES = (0.03, 0.015)
SIGMA, LAM = 0.1, 1e-4
MAX_MEAN_COSINE = -0.4


@functools.lru_cache(maxsize=None)
def mixture(seed=0, positive=False):
    """Return the chapter's ``GaussianMixture``; ``positive`` moves mean 1 to cosine +0.5 with mean 0."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        flat = data.negative_cosine_points(MODES, MODES - 1, seed=rng, norm_range=(1.0, 1.0))
        if data.max_offdiagonal_cosine(flat) <= MAX_MEAN_COSINE:
            break
    else:
        raise ValueError(f"no draw of {MODES} means had every cosine at most {MAX_MEAN_COSINE}; use another seed")
    Q, _ = np.linalg.qr(rng.standard_normal((DIM, MODES - 1)))
    means = flat @ Q.T
    covs = []
    for _ in range(MODES):
        G = rng.standard_normal((DIM, RANK))
        G -= Q @ (Q.T @ G)
        basis, _ = np.linalg.qr(G)
        covs.append(basis @ np.diag(COV_EIGENVALUES) @ basis.T)
    if positive:
        means = data.with_positive_cosine(means, cosine=0.5, index=(0, 1))
    return data.GaussianMixture(np.full(MODES, 1.0 / MODES), means, np.array(covs))


def assign_units(W1, X, labels):
    """Return the mode of each unit ``(p,)``: the mode on whose points it fires most on average.

    ``W1`` is ``(d, p)``, ``X`` ``(n, d)``, ``labels`` ``(n,)`` integer modes. A unit that fires on no
    point gets ``-1``.
    """
    X = _checks.points(X)
    W1 = _checks.weights(W1, X.shape[1], "W1")
    labels = _checks.labels(labels, X.shape[0])
    modes = np.unique(labels)
    H = np.maximum(X @ W1, 0.0)
    means = np.stack([H[labels == k].mean(axis=0) for k in modes])  # (K, p)
    owner = modes[np.argmax(means, axis=0)]
    return np.where(means.max(axis=0) > 0, owner, -1)


def block_products_of(W1, W2, owner, modes):
    """Return ``sum_{j in block k} w1_j w2_j^T`` for every mode in ``modes``, each ``(d, d)``."""
    W1 = np.asarray(W1, dtype=np.float64)
    W2 = np.asarray(W2, dtype=np.float64)
    if W1.shape != W2.shape or W1.ndim != 2:
        raise ValueError(f"W1 and W2 must have the same (d, p) shape, got {W1.shape} and {W2.shape}")
    owner = np.asarray(owner)
    if owner.shape != (W1.shape[1],):
        raise ValueError(f"owner must give one mode per unit ({W1.shape[1]}), got shape {owner.shape}")
    return [W1[:, owner == k] @ W2[:, owner == k].T for k in modes]


def shrinkage_test_error(eigenvalues, sigma, width):
    """Return ``sum_{j<=width} e_j sigma^2/(e_j+sigma^2) + sum_{j>width} e_j`` (bias plus variance)."""
    e = np.sort(np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None))[::-1]
    width = _checks.count(width, "width")
    sigma = _checks.positive(sigma, "sigma")
    return float(np.sum(e[:width] * sigma**2 / (e[:width] + sigma**2)) + np.sum(e[width:]))


def bias_only_test_error(eigenvalues, sigma, width):
    """Return the first two terms of the bound of Zhang et al. (ICLR 2026), ``sum_{j<=width} e_j sigma^4/(e_j+sigma^2)^2 + sum_{j>width} e_j``."""
    e = np.sort(np.clip(np.asarray(eigenvalues, dtype=np.float64), 0.0, None))[::-1]
    width = _checks.count(width, "width")
    sigma = _checks.positive(sigma, "sigma")
    return float(np.sum(e[:width] * sigma**4 / (e[:width] + sigma**2) ** 2) + np.sum(e[width:]))


def predicted_test_loss(mix, sigma, widths, bias_only=False):
    """Return ``sum_k rho_k`` times the per-mode test error of the shrinkage limit (lam -> 0).

    ``widths`` is one ``p_k`` for every mode, or a single integer for all of them.
    """
    error = bias_only_test_error if bias_only else shrinkage_test_error
    if np.ndim(widths) == 0:
        widths = (widths,) * mix.n_modes
    if len(widths) != mix.n_modes:
        raise ValueError(f"widths must give one p_k for each of the {mix.n_modes} modes, got {widths}")
    moments = mix.second_moments()
    return float(sum(rho * error(np.linalg.eigvalsh(S), sigma, w) for rho, S, w in zip(mix.weights, moments, widths)))


def allocated_widths(owner, modes=MODES, cap=WIDTH_PER_MODE):
    """Return the block width of every mode: the units training gave it, between 1 and ``cap``.

    ``cap`` is the rank of ``S_k``, because units beyond it add no direction to the block product.
    A mode with no unit gets width 1, so that its zero block is compared with a nonzero formula and fails.
    """
    owner = np.asarray(owner)
    cap = _checks.count(cap, "cap")
    return tuple(int(min(max(np.sum(owner == k), 1), cap)) for k in range(_checks.count(modes, "modes")))


@dataclass(frozen=True)
class Run:
    """One trained model and its data: ``X (n, d)``, ``labels (n,)``, weights ``(d, p)``, unit owners ``(p,)``."""

    mix: data.GaussianMixture
    X: np.ndarray
    labels: np.ndarray
    W1: np.ndarray
    W2: np.ndarray
    owner: np.ndarray
    widths: tuple
    sigma: float
    lam: float

    def products(self):
        return block_products_of(self.W1, self.W2, self.owner, range(self.mix.n_modes))

    def predicted_products(self, widths=None):
        """Return the finite-sample products of Theorem 3.1 from each mode's Gram matrix (``widths`` defaults to the run's)."""
        return blocks.block_products(self.X, self.labels, widths or self.widths, self.sigma, self.lam)

    def population_products(self):
        """Return the population limits ``(S_k - lam/rho_k)(S_k + sigma^2)^{-1}``, rank ``p_k``."""
        return [
            theory.shrinkage_limit(S, rho, self.sigma, self.lam, w)
            for S, rho, w in zip(self.mix.second_moments(), self.mix.weights, self.widths)
        ]

    def denoise(self, Y):
        return np.maximum(Y @ self.W1, 0.0) @ self.W2.T


def trained(per_mode=200, width_per_mode=WIDTH_PER_MODE, seed=0, steps=4000, positive=False):
    """Train an untied ReLU-DAE on ``per_mode * K`` samples (about ``per_mode`` per mode); cached.

    Training decides how many units each mode gets, and the even split ``width_per_mode`` is not
    guaranteed. The run's ``widths`` are the allocated ones (``allocated_widths``).
    """
    per_mode = _checks.count(per_mode, "per_mode")
    width_per_mode = _checks.count(width_per_mode, "width_per_mode")
    # One cache key per model: lru_cache alone keys trained() and trained(seed=0) apart.
    return _trained(per_mode, width_per_mode, _checks.count(seed, "seed", minimum=0), _checks.count(steps, "steps"), bool(positive))


@functools.lru_cache(maxsize=None)
def _trained(per_mode, width_per_mode, seed, steps, positive):
    mix = mixture(seed, positive)
    X, labels = mix.sample(per_mode * mix.n_modes, seed=seed + 1)
    config = training.TrainConfig(
        width=width_per_mode * mix.n_modes, sigma=SIGMA, lam=LAM, lr=1e-2, final_lr_ratio=1e-2, steps=steps, noise_draws=4
    )
    result = training.train(X, config, seeds=(seed,))
    W1, W2 = result.weights(0)
    owner = assign_units(W1, X, labels)
    return Run(mix, X, labels, W1, W2, owner, allocated_widths(owner, mix.n_modes), SIGMA, LAM)


def block_errors(run, widths=None):
    """Return the relative Frobenius error of every trained block against the finite-sample formula ``(K,)``.

    ``widths`` sets the ``p_k`` of the formula (default: the widths the run was trained with).
    """
    predicted = run.predicted_products(widths)
    return np.array([metrics.relative_error(A, B) for A, B in zip(run.products(), predicted)])


def population_errors(per_mode_values, seeds=(0, 1, 2, 3), sigma_power=2):
    """Return the finite-sample formula's mean relative error to the population limit, one per ``n_k``.

    Uses ``blocks.block_products`` on fresh samples (no training). ``sigma_power = 1`` compares
    with the wrong limit that has ``sigma`` in place of ``sigma^2`` (a negative control).
    """
    if sigma_power not in (1, 2):
        raise ValueError(f"sigma_power must be 1 or 2, got {sigma_power}")
    mix = mixture(0)
    limit_sigma = SIGMA if sigma_power == 2 else np.sqrt(SIGMA)
    limits = [theory.shrinkage_limit(S, rho, limit_sigma, LAM, WIDTH_PER_MODE) for S, rho in zip(mix.second_moments(), mix.weights)]
    out = []
    for per_mode in per_mode_values:
        per_mode = _checks.count(per_mode, "per_mode")
        errors = []
        for seed in seeds:
            X, labels = mix.sample(per_mode * MODES, seed=1000 + seed)
            P = blocks.block_products(X, labels, (WIDTH_PER_MODE,) * MODES, SIGMA, LAM)
            errors += [metrics.relative_error(A, B) for A, B in zip(P, limits)]
        out.append(float(np.mean(errors)))
    return np.array(out)


def loglog_slope(x, y):
    """Return the least-squares slope of ``log y`` against ``log x``."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.size < 2 or np.any(x <= 0) or np.any(y <= 0):
        raise ValueError("x and y must be positive arrays of the same length, at least 2")
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


def memorizer(seed=0, steps=12000):
    """Train the chapter's width ``p = 9`` on one sample per mode (``n = 3 <= p``, the memorization regime); cached.

    The settings are those of ``trained`` except the training set and the step count. The
    columns of a memorizer approach their training points slowly: after 4000 steps they were
    still 2 to 10 degrees off, so it trains three times longer.
    """
    return _memorizer(_checks.count(seed, "seed", minimum=0), _checks.count(steps, "steps"))


@functools.lru_cache(maxsize=None)
def _memorizer(seed, steps):
    mix = mixture(seed)
    X, labels = stratified_sample(mix, mix.n_modes, seed=seed + 1)  # one sample per mode
    config = training.TrainConfig(
        width=WIDTH_PER_MODE * mix.n_modes, sigma=SIGMA, lam=LAM, lr=1e-2, final_lr_ratio=1e-2, steps=steps, noise_draws=4
    )
    W1, W2 = training.train(X, config, seeds=(seed,), progress=False).weights(0)
    owner = assign_units(W1, X, labels)
    return Run(mix, X, labels, W1, W2, owner, allocated_widths(owner, mix.n_modes), SIGMA, LAM)


def _nearest_angles(A, X):
    """Return the angle in degrees between each row of ``A`` and its nearest row of ``X``."""
    A = A / np.linalg.norm(A, axis=1, keepdims=True)
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    return np.degrees(np.arccos(np.clip((A @ X.T).max(axis=1), -1.0, 1.0)))


def column_angles(run, relative=0.1):
    """Return the angle in degrees from each significant column (both layers) to its nearest training point."""
    columns = [W.T[metrics.significant_columns(W, relative)] for W in (run.W1, run.W2)]
    return _nearest_angles(np.concatenate(columns), run.X)


def fresh_angles(run, n_points=2000, seed=5):
    """Return the angle in degrees from each of ``n_points`` fresh samples to its nearest training point."""
    Y, _ = run.mix.sample(_checks.count(n_points, "n_points"), seed=seed)
    return _nearest_angles(Y, run.X)


def column_angle_ratio(run, n_points=2000, seed=5):
    """Return the smallest column angle to the training set divided by the median fresh sample's angle.

    Below 1, some column is closer to a training point than a typical new sample of the data is:
    the signature of a stored point. Angles, not cosines, because the ratio then does not depend on
    how tight the modes are.
    """
    return float(column_angles(run).min() / np.median(fresh_angles(run, n_points, seed)))


def _fresh_participation(run, n_points, seed):
    """Return the merged participation ratio of fresh clean samples ``(B,)`` and their modes ``(B,)``."""
    Y, labels = run.mix.sample(_checks.count(n_points, "n_points"), seed=seed)
    M1, _ = merge_parallel_units(run.W1, run.W2)
    return metrics.representation_stats(np.maximum(Y @ M1, 0.0)).participation, labels


def participation(run, n_points=2000, seed=7):
    """Return the participation ratio ``(sum h)^2 / sum h^2`` of fresh clean samples' activations ``(B,)``.

    Parallel units are merged first (``merge_parallel_units``), so a point stored in several
    parallel copies counts as one unit, as in the memorization chapters.
    """
    return _fresh_participation(run, n_points, seed)[0]


def balance(run, n_points=2000, seed=7):
    """Return, for fresh clean samples, the participation ratio divided by the units their mode owns ``(B,)``.

    1 means the point activates every unit of its block equally. Parallel units are merged for
    the participation ratio but counted for the denominator, so a point stored in ``m`` parallel
    copies scores ``1/m``.
    """
    ratio, labels = _fresh_participation(run, n_points, seed)
    owned = np.array([np.sum(run.owner == k) for k in range(run.mix.n_modes)])[labels]
    return np.divide(ratio, owned, out=np.full(ratio.shape, np.nan), where=owned > 0)


def denoiser_errors(run, n_points=5000, seed=13):
    """Compare the trained denoiser on fresh noisy samples with the corollary's limit and with ``f_gt``.

    The limit denoiser applies the population product of the sample's own mode,
    ``L_k y`` with ``L_k = theory.shrinkage_limit(S_k, ...)``. Returns a dict of relative errors
    (``metrics.relative_error`` over all outputs): ``to_limit`` (network to limit), ``to_gt``
    (network to ``f_gt``), ``limit_to_gt`` and ``identity_to_gt`` (the noisy input itself).
    """
    x, labels = run.mix.sample(_checks.count(n_points, "n_points"), seed=seed)
    y = x + run.sigma * np.random.default_rng(seed + 1).standard_normal(x.shape)
    limits = np.stack(run.population_products())
    limit = np.einsum("nij,nj->ni", limits[labels], y)
    gt = mixture_denoiser(y, run.mix, run.sigma)
    out = run.denoise(y)
    return {
        "to_limit": metrics.relative_error(out, limit),
        "to_gt": metrics.relative_error(out, gt),
        "limit_to_gt": metrics.relative_error(limit, gt),
        "identity_to_gt": metrics.relative_error(y, gt),
    }


def fresh_test_loss(run, n_points=20000, seed=11):
    """Return ``(mean, standard error)`` of ``||f(x + sigma eps) - x||^2`` over fresh samples."""
    x, _ = run.mix.sample(_checks.count(n_points, "n_points"), seed=seed)
    rng = np.random.default_rng(seed + 1)
    y = x + run.sigma * rng.standard_normal(x.shape)
    err = np.sum((run.denoise(y) - x) ** 2, axis=1)
    return float(err.mean()), float(err.std(ddof=1) / np.sqrt(n_points))


def clean_error(run, n_points=20000, seed=11):
    """Return ``(mean, standard error)`` of ``||f(x) - x||^2`` over fresh clean samples (no noise at the input)."""
    x, _ = run.mix.sample(_checks.count(n_points, "n_points"), seed=seed)
    err = np.sum((run.denoise(x) - x) ** 2, axis=1)
    return float(err.mean()), float(err.std(ddof=1) / np.sqrt(n_points))


def predicted_clean_error(mix, sigma, lam, widths):
    """Return the error on clean inputs of the per-mode limits, ``sum_k rho_k [sum_{j<=p_k} e_j (1 - a_j)^2 + sum_{j>p_k} e_j]``.

    ``a_j = (e_j - lam/rho_k)/(e_j + sigma^2)`` are the gains of ``theory.shrinkage_limit``, so at
    ``lam = 0`` this is the bias-only expression of ``bias_only_test_error``. ``widths`` is one
    ``p_k`` for every mode, or a single integer for all of them.
    """
    sigma = _checks.positive(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    if np.ndim(widths) == 0:
        widths = (widths,) * mix.n_modes
    if len(widths) != mix.n_modes:
        raise ValueError(f"widths must give one p_k for each of the {mix.n_modes} modes, got {widths}")
    total = 0.0
    for rho, S, width in zip(mix.weights, mix.second_moments(), widths):
        e = np.sort(np.clip(np.linalg.eigvalsh(S), 0.0, None))[::-1]
        width = _checks.count(width, "width")
        gains = np.clip(e[:width] - lam / rho, 0.0, None) / (e[:width] + sigma**2)
        total += rho * (np.sum(e[:width] * (1.0 - gains) ** 2) + np.sum(e[width:]))
    return float(total)
