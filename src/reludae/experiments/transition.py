"""From memorization to generalization: a sweep over the number of training points.

A ReLU denoising autoencoder of fixed width ``p`` is trained on ``n`` points drawn from a
low-rank Gaussian mixture, for ``n`` from below ``p`` to far above it and for several noise
levels ``sigma``. Each grid point records how the learned weights store the training points,
the train and test losses, and how spiky the representations are. It also records how far the
learned denoiser is from the empirical denoiser ``f_emp`` of its training set and from the
mixture's posterior mean ``f_gt``.

Training sets are stratified: point ``i`` comes from mode ``i mod K``, so the smallest sets hold
one point per mode, whose cosines are negative on average (the mixture's means have pairwise
negative cosines). Negative on average is not pairwise negative: a draw can contain two points
with a positive cosine, which violates a hypothesis of Corollary 3.2. Each row therefore records
whether its training set meets the corollary's hypotheses.

Training sets with ``n <= p`` train for ``SweepConfig.small_n_steps`` steps, larger ones for
``SweepConfig.steps``. Storing a point needs a column to turn to cosine 0.99 with it. At
``n = p / 2 = 4`` and ``sigma = 0.05``, 1,000 steps left one column short of that in 3 of 8 models
(four sweeps whose training sets meet the corollary's hypotheses, two models each), and 3,000
steps left none short.

The sweep is cached per ``(full, seed)`` so that the chapter and the claims share one run within a
process. Samples are rows and arrays are float64.
"""

import csv
import functools
import math
from dataclasses import dataclass

import numpy as np

from .. import _checks, data, denoisers, metrics, model, training
from .digits import merge_parallel_units

ALIGNED = 0.99  # a column stores a training point when its cosine with the point exceeds this
TRAIN_LOSS_DRAWS = 2000  # noise draws over the whole training set for the train loss (at least loss_draws per point)


@dataclass(frozen=True)
class SweepConfig:
    """The grid and the fixed settings of one sweep."""

    ns: tuple = (2, 4, 8, 16, 64, 256, 1024)  # numbers of training points
    sigmas: tuple = (0.05, 0.1, 0.2)  # training noise levels
    width: int = 8  # p, hidden units
    dim: int = 20  # d
    modes: int = 4  # K, mixture modes
    rank: int = 8  # rank of each mode's covariance
    spread: float = 0.5  # a sample's distance to its mode mean, relative to the mean's norm
    lam: float = 0.01  # penalty weight
    steps: int = 1000  # Adam steps at n > width
    small_n_steps: int = 3000  # Adam steps at n <= width, where the columns must reach the stored points
    batch_size: int = 64  # training points per step (all of them when n is smaller)
    noise_draws: int = 4
    seeds: int = 2  # independent models per grid point, trained as one stack
    test_points: int = 1000  # fresh mixture samples for the test loss and the denoiser distances
    loss_draws: int = 20  # noise draws per point for the Monte Carlo losses

    def __post_init__(self):
        if len(self.ns) < 2 or len(self.sigmas) < 1:
            raise ValueError(f"ns needs at least two values and sigmas one, got {self.ns} and {self.sigmas}")
        for n in self.ns:
            _checks.count(n, "n")
        if list(self.ns) != sorted(set(self.ns)):
            raise ValueError(f"ns must be strictly increasing, got {self.ns}")
        for sigma in self.sigmas:
            _checks.positive(sigma, "sigma")
        _checks.count(self.width, "width")
        _checks.count(self.dim, "dim")
        _checks.count(self.modes, "modes", minimum=2)
        _checks.count(self.rank, "rank")
        _checks.positive(self.spread, "spread")
        _checks.nonnegative(self.lam, "lam")
        for name in ("steps", "small_n_steps", "batch_size", "noise_draws", "seeds", "test_points"):
            _checks.count(getattr(self, name), name)
        _checks.count(self.loss_draws, "loss_draws", minimum=2)

    def steps_for(self, n):
        """Return the number of training steps at ``n`` training points."""
        n = _checks.count(n, "n")
        return self.small_n_steps if n <= self.width else self.steps


DEFAULT = SweepConfig()
FULL = SweepConfig(
    ns=(2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096),
    sigmas=(0.05, 0.1, 0.2, 0.4),
    steps=3000,
    small_n_steps=6000,
    seeds=3,
)

FIELDS = (
    "n",
    "sigma",
    "seed",
    "steps",
    "max_pair_cosine",
    "hypotheses_hold",
    "storage_fraction",
    "significant_columns",
    "train_loss",
    "test_loss",
    "top1_share",
    "participation",
    "dist_emp",
    "dist_gt",
    "emp_to_gt",
)


def mixture(config=DEFAULT, seed=0):
    """Return the ``GaussianMixture`` of a sweep: ``modes`` modes in ``R^dim``, unit mean norms."""
    return data.low_rank_mixture(config.modes, config.dim, config.rank, seed=seed, spread=config.spread)


def stratified_sample(mix, n, seed=0):
    """Draw ``n`` points, point ``i`` from mode ``i mod K``; returns ``(X (n, d), labels (n,))``."""
    if not isinstance(mix, data.GaussianMixture):
        raise ValueError(f"mix must be a reludae.data.GaussianMixture, got {type(mix).__name__}")
    n = _checks.count(n, "n")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % mix.n_modes
    X = np.empty((n, mix.dim))
    for k in range(mix.n_modes):
        members = labels == k
        if members.any():
            single = data.GaussianMixture(np.ones(1), mix.means[k : k + 1], mix.covs[k : k + 1])
            X[members] = single.sample(int(members.sum()), seed=rng)[0]
    return X, labels


def training_set(mix, n, seed=0):
    """Return the ``(n, d)`` training points of the grid points at ``n`` in the sweep with seed ``seed``."""
    seed = _checks.count(seed, "seed", minimum=0)
    n = _checks.count(n, "n")
    return stratified_sample(mix, n, seed=1000 * seed + n)[0]


def meets_memorization_hypotheses(X, width, lam):
    """Return whether the rows of ``X`` meet the hypotheses of Corollary 3.2 at ``width`` and ``lam``.

    The hypotheses are ``n <= width``, pairwise negative cosines and ``n lam < min_i ||x_i||^2``.
    """
    X = _checks.points(X)
    width = _checks.count(width, "width")
    lam = _checks.nonnegative(lam, "lam")
    n = X.shape[0]
    smallest = float(np.min(np.sum(X**2, axis=1)))
    return bool(n <= width and data.max_offdiagonal_cosine(X) < 0 and n * lam < smallest)


def storage_fraction(W, X, aligned=ALIGNED):
    """Return the fraction of significant columns of ``W`` (``(d, p)``) with cosine above ``aligned`` with a row of ``X``."""
    report = metrics.storage_report(W, X, aligned=aligned)
    significant = report.significant
    if not significant.any():
        return float("nan")
    return float(np.mean(report.max_cosine[significant] > aligned))


def _fit(mix, n, sigma, config, seed):
    """Train ``config.seeds`` models on the training set at ``n`` and return ``(X, run, model_seeds)``."""
    X = training_set(mix, n, seed)
    train_config = training.TrainConfig(
        width=config.width,
        sigma=sigma,
        lam=config.lam,
        optimizer="adam",
        lr=1e-2,
        final_lr_ratio=1e-2,
        steps=config.steps_for(n),
        noise_draws=config.noise_draws,
        batch_size=min(n, config.batch_size),
    )
    seeds = tuple(seed * 100 + s for s in range(config.seeds))
    return X, training.train(X, train_config, seeds=seeds, progress=False), seeds


def _test_inputs(mix, sigma, config, seed):
    """Return ``(X_test, labels, Y)``: the fresh samples, their modes and one noisy copy of each at ``sigma``."""
    X_test, labels = mix.sample(config.test_points, seed=10_000 + seed)
    rng = np.random.default_rng(20_000 + seed)
    return X_test, labels, X_test + sigma * rng.standard_normal(X_test.shape)


def _check_config(config):
    if not isinstance(config, SweepConfig):
        raise ValueError(
            f"config must be a SweepConfig, got {type(config).__name__}; pass DEFAULT, FULL or SweepConfig(...)"
        )


def _check_grid_arguments(config, n, sigma):
    _check_config(config)
    return _checks.count(n, "n"), _checks.positive(sigma, "sigma")


def grid_point(mix, n, sigma, config=DEFAULT, seed=0):
    """Train ``config.seeds`` models on ``n`` points at noise ``sigma``; return one row dict per model."""
    n, sigma = _check_grid_arguments(config, n, sigma)
    X, run, seeds = _fit(mix, n, sigma, config, seed)
    steps = config.steps_for(n)
    max_pair_cosine = data.max_offdiagonal_cosine(X)
    hypotheses_hold = int(meets_memorization_hypotheses(X, config.width, config.lam))

    X_test, _, Y = _test_inputs(mix, sigma, config, seed)
    f_emp = denoisers.empirical_denoiser(Y, X, sigma)
    f_gt = denoisers.mixture_denoiser(Y, mix, sigma)
    emp_to_gt = float(np.mean(np.sum((f_emp - f_gt) ** 2, axis=1)))

    rows = []
    for index, model_seed in enumerate(seeds):
        W1, W2 = run.weights(index)
        M1, _ = merge_parallel_units(W1, W2)
        stats = metrics.representation_stats(model.representation(M1, X))
        out = model.apply(W1, W2, Y)
        train_loss, _ = model.monte_carlo_loss(W1, W2, X, sigma, 0.0, draws=max(config.loss_draws, TRAIN_LOSS_DRAWS // n), seed=1)
        test_loss, _ = model.monte_carlo_loss(W1, W2, X_test, sigma, 0.0, draws=config.loss_draws, seed=2)
        rows.append(
            {
                "n": n,
                "sigma": sigma,
                "seed": model_seed,
                "steps": steps,
                "max_pair_cosine": max_pair_cosine,
                "hypotheses_hold": hypotheses_hold,
                "storage_fraction": storage_fraction(W1, X),
                "significant_columns": int(metrics.significant_columns(W1).sum()),
                "train_loss": train_loss,
                "test_loss": test_loss,
                "top1_share": float(np.nanmedian(stats.top1_share)),
                "participation": float(np.nanmedian(stats.participation)),
                "dist_emp": float(np.mean(np.sum((out - f_emp) ** 2, axis=1))),
                "dist_gt": float(np.mean(np.sum((out - f_gt) ** 2, axis=1))),
                "emp_to_gt": emp_to_gt,
            }
        )
    return rows


def distance_by_mode(mix, n, sigma, config=DEFAULT, seed=0):
    """Split the distance ``dist_emp`` of the grid point at ``(n, sigma)`` by the mode of the test input.

    Retrains the grid point's models (training is deterministic, so they are the sweep's models) and
    separates the fresh test inputs whose mode has a point in the training set ("seen") from the
    others ("unseen"). Returns one dict per model with these keys, each ``nan`` where its group is
    empty:

    - ``unseen_fraction``: the fraction of test inputs that are unseen;
    - ``dist_emp``, ``dist_emp_seen``, ``dist_emp_unseen``: the mean squared distance to ``f_emp``
      on all, seen and unseen inputs;
    - ``dist_gt_seen``, ``dist_gt_unseen``: the same for ``f_gt``;
    - ``network_unseen``, ``emp_unseen``: the mean squared norm of the network's and of
      ``f_emp``'s outputs on the unseen inputs;
    - ``silent_unseen``: the fraction of unseen inputs on which no hidden unit fires.
    """
    n, sigma = _check_grid_arguments(config, n, sigma)
    X, run, seeds = _fit(mix, n, sigma, config, seed)
    _, labels, Y = _test_inputs(mix, sigma, config, seed)
    unseen = ~np.isin(labels, np.arange(n) % mix.n_modes)
    f_emp = denoisers.empirical_denoiser(Y, X, sigma)
    f_gt = denoisers.mixture_denoiser(Y, mix, sigma)

    def mean(values, mask):
        return float(np.mean(values[mask])) if mask.any() else float("nan")

    results = []
    for index in range(len(seeds)):
        W1, W2 = run.weights(index)
        out = model.apply(W1, W2, Y)
        silent = np.all(model.representation(W1, Y) == 0, axis=1)
        distance = np.sum((out - f_emp) ** 2, axis=1)
        distance_gt = np.sum((out - f_gt) ** 2, axis=1)
        results.append(
            {
                "unseen_fraction": float(np.mean(unseen)),
                "dist_emp": float(np.mean(distance)),
                "dist_emp_seen": mean(distance, ~unseen),
                "dist_emp_unseen": mean(distance, unseen),
                "dist_gt_seen": mean(distance_gt, ~unseen),
                "dist_gt_unseen": mean(distance_gt, unseen),
                "network_unseen": mean(np.sum(out**2, axis=1), unseen),
                "emp_unseen": mean(np.sum(f_emp**2, axis=1), unseen),
                "silent_unseen": mean(silent.astype(float), unseen),
            }
        )
    return results


def posterior_mean_test_loss(mix, sigma, config=DEFAULT, seed=0):
    """Return the Monte Carlo test loss ``E ||f_gt(x + sigma eps) - x||^2`` of the posterior mean ``f_gt``.

    Uses the test points of the sweep with seed ``seed`` and the same ``config.loss_draws`` noise
    draws per point as the network's ``test_loss``, so the two losses are comparable.
    """
    _check_config(config)
    sigma = _checks.positive(sigma, "sigma")
    X_test, _, _ = _test_inputs(mix, sigma, config, seed)
    noise = np.random.default_rng(2).standard_normal((config.loss_draws, *X_test.shape))
    Y = (X_test + sigma * noise).reshape(-1, X_test.shape[1])
    residual = denoisers.mixture_denoiser(Y, mix, sigma) - np.tile(X_test, (config.loss_draws, 1))
    return float(np.mean(np.sum(residual**2, axis=1)))


def run_sweep(config=DEFAULT, seed=0):
    """Run every grid point of ``config``; returns a list of row dicts with the keys ``FIELDS``."""
    _check_config(config)
    seed = _checks.count(seed, "seed", minimum=0)
    mix = mixture(config, seed)
    rows = []
    for sigma in config.sigmas:
        for n in config.ns:
            rows.extend(grid_point(mix, n, sigma, config, seed))
    return rows


@functools.lru_cache(maxsize=4)
def _cached(full, seed):
    return tuple(run_sweep(FULL if full else DEFAULT, seed))


def sweep(full=False, seed=0):
    """Return the rows of the default (or, with ``full``, the larger) sweep, computed once per process."""
    return [dict(row) for row in _cached(bool(full), _checks.count(seed, "seed", minimum=0))]


def write_csv(rows, path):
    """Write row dicts with the keys ``FIELDS`` to ``path`` as CSV (header first); returns ``path``."""
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; there is nothing to write")
    for row in rows:
        if set(row) != set(FIELDS):
            raise ValueError(f"every row must have exactly the keys {FIELDS}, got {sorted(row)}")
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return path


def read_csv(path):
    """Read a CSV written by ``write_csv`` back into row dicts with numbers as int or float."""
    integers = {"n", "seed", "steps", "hypotheses_hold", "significant_columns"}
    with open(path, newline="") as handle:
        return [
            {key: int(value) if key in integers else float(value) for key, value in row.items()}
            for row in csv.DictReader(handle)
        ]


def aggregate(rows, field, reduce=np.mean):
    """Return ``(ns, sigmas, table)`` with ``table[j, i]`` the reduced ``field`` over seeds at ``(sigmas[j], ns[i])``."""
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty")
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, got {field!r}")
    ns = sorted({row["n"] for row in rows})
    sigmas = sorted({row["sigma"] for row in rows})
    table = np.full((len(sigmas), len(ns)), np.nan)
    for j, sigma in enumerate(sigmas):
        for i, n in enumerate(ns):
            values = [row[field] for row in rows if row["n"] == n and row["sigma"] == sigma]
            values = [v for v in values if not math.isnan(v)]
            if values:
                table[j, i] = reduce(values)
    return np.array(ns), np.array(sigmas), table


def relative_gap(rows):
    """Return ``(ns, sigmas, table)`` of the generalization gap ``(test - train) / test``, averaged over seeds."""
    rows = [dict(row, gap=(row["test_loss"] - row["train_loss"]) / row["test_loss"]) for row in rows]
    ns = sorted({row["n"] for row in rows})
    sigmas = sorted({row["sigma"] for row in rows})
    table = np.array([[np.mean([r["gap"] for r in rows if r["n"] == n and r["sigma"] == s]) for n in ns] for s in sigmas])
    return np.array(ns), np.array(sigmas), table
