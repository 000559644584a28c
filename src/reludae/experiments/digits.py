"""Memorizing and generalizing ReLU denoisers trained on the scikit-learn 8x8 digits.

Two models of the same width are trained at the same noise level and penalty:

* the memorizer is trained on five digits of distinct classes with pairwise negative cosines,
  the setting of Corollary 3.2 of Zhang et al. (ICLR 2026);
* the generalizer is trained on all 1,797 digits, far more points than hidden units.

The trained models are cached per ``(seed, full)`` so that the chapter and the claims share them
within one process. Samples are rows, arrays are float64, and every random choice takes a seed.
"""

import functools
import logging
from dataclasses import dataclass

import numpy as np

from .. import _checks, data, metrics, theory, training

log = logging.getLogger(__name__)

WIDTH = 32  # hidden units p of both models
SIGMA = 0.25  # training noise level, for pixels scaled to [-1, 1]
LAM = 0.25  # penalty weight: five digits give n lam = 1.25, below every selected digit's squared norm
N_MEMORIZED = 5  # number of digits the memorizer is trained on
RESTARTS = 20  # start digits of the search for digits with negative cosines
ALIGNED = 0.99  # a column stores a digit when its cosine with the digit exceeds this
SPIKY_SHARE = 0.9  # a representation is spiky when one unit carries this share of its sum
BALANCED_PARTICIPATION = 2.0  # two equal units have participation ratio 2, a one-hot code has 1

MEMORIZER_CONFIG = training.TrainConfig(
    width=WIDTH,
    sigma=SIGMA,
    lam=LAM,
    optimizer="adam",
    lr=1e-2,
    final_lr_ratio=1e-3,
    steps=3000,
    noise_draws=8,
)
GENERALIZER_CONFIG = training.TrainConfig(
    width=WIDTH,
    sigma=SIGMA,
    lam=LAM,
    optimizer="adam",
    lr=1e-2,
    final_lr_ratio=1e-3,
    steps=3000,
    noise_draws=2,
    batch_size=256,
)
FULL_SEEDS = 3  # training seeds per model with ``full=True`` (the default trains one)


def _max_pair_cosine(C, indices):
    block = C[np.ix_(indices, indices)]
    return float(block[~np.eye(len(indices), dtype=bool)].max())


def _greedy_from(C, labels, start, n):
    chosen = [int(start)]
    while len(chosen) < n:
        candidates = np.flatnonzero(~np.isin(labels, labels[chosen]))
        worst = C[np.ix_(candidates, chosen)].max(axis=1)
        chosen.append(int(candidates[np.argmin(worst)]))
    return chosen


def _swap_improve(C, labels, chosen, max_rounds=100):
    """Replace one digit at a time by the best digit of an unused class while the swap helps."""
    best = _max_pair_cosine(C, chosen)
    for _ in range(max_rounds):
        improved = False
        for k in range(len(chosen)):
            others = chosen[:k] + chosen[k + 1 :]
            candidates = np.flatnonzero(~np.isin(labels, labels[others]))
            worst = C[np.ix_(candidates, others)].max(axis=1)
            trial = chosen[:k] + [int(candidates[np.argmin(worst)])] + chosen[k + 1 :]
            value = _max_pair_cosine(C, trial)
            if value < best - 1e-12:
                chosen, best, improved = trial, value, True
        if not improved:
            break
    return chosen, best


def select_negative_cosine_digits(X, labels, n=N_MEMORIZED, seed=0, restarts=RESTARTS):
    """Pick ``n`` rows of ``X`` from distinct classes whose largest pairwise cosine is smallest.

    The search is deterministic given ``seed``, which draws ``restarts`` start digits. From each
    start, digits of unused classes are added greedily: each new digit has the smallest largest
    cosine with the digits already chosen. Then single digits are swapped while a swap lowers the
    largest pairwise cosine. The best set over all starts is returned as sorted indices, shape
    ``(n,)``. Raises ``ValueError`` when ``n`` exceeds the number of classes or when no set with
    pairwise negative cosines is found.
    """
    X = _checks.points(X)
    labels = _checks.labels(labels, X.shape[0])
    n = _checks.count(n, "n", minimum=2)
    restarts = _checks.count(restarts, "restarts")
    classes = np.unique(labels).size
    if n > classes:
        raise ValueError(
            f"n = {n} digits of distinct classes cannot be chosen from {classes} classes; use n <= {classes}"
        )
    C = data.cosines(X)
    rng = np.random.default_rng(seed)
    starts = rng.choice(X.shape[0], size=min(restarts, X.shape[0]), replace=False)
    best, best_value = None, np.inf
    for start in starts:
        chosen, value = _swap_improve(C, labels, _greedy_from(C, labels, start, n))
        if value < best_value:
            best, best_value = chosen, value
    if best_value >= 0:
        raise ValueError(
            f"the best set of {n} digits found has a largest pairwise cosine of {best_value:.3f} >= 0; "
            f"use a smaller n or more restarts"
        )
    log.info("selected digits %s with largest pairwise cosine %.3f", sorted(best), best_value)
    return np.array(sorted(best))


def with_similar_digit(X, labels, indices):
    """Replace the last of ``indices`` by the digit most similar to the first one.

    The replacement comes from a class not among the kept digits, so the classes stay distinct,
    but the set now has a positive pairwise cosine: a negative control for Corollary 3.2.
    Returns the new indices, shape ``(n,)``, in the order given.
    """
    X = _checks.points(X)
    labels = _checks.labels(labels, X.shape[0])
    indices = np.asarray(indices)
    if indices.ndim != 1 or indices.size < 2 or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(f"indices must be a 1-D array of at least two integers, got {indices!r}")
    if indices.min() < 0 or indices.max() >= X.shape[0]:
        raise ValueError(f"indices must lie in [0, {X.shape[0]}), got {indices!r}")
    keep = indices[:-1]
    candidates = np.flatnonzero(~np.isin(labels, labels[keep]))
    if candidates.size == 0:
        raise ValueError("no replacement found: every class is already among the kept digits; pass fewer indices")
    first = X[indices[0]] / np.linalg.norm(X[indices[0]])
    similarity = X[candidates] @ first / np.linalg.norm(X[candidates], axis=1)
    return np.append(keep, candidates[np.argmax(similarity)])


def merge_parallel_units(W1, W2, threshold=ALIGNED):
    """Merge hidden units whose encoder columns are parallel into one unit of the same function.

    Units ``k`` with ``W1[:, k] = alpha_k u`` (``alpha_k > 0``) together compute
    ``(sum_k alpha_k W2[:, k]) relu(u^T y)``. One unit with encoder ``a u`` and decoder
    ``sum_k alpha_k W2[:, k] / a`` computes the same. The choice ``a^2 = ||sum_k alpha_k W2[:, k]||``
    gives equal encoder and decoder norms, the balance that minimizes the penalty.
    Units are grouped greedily by decreasing encoder norm: a unit joins the first group whose
    leading column has cosine above ``threshold`` with it. Zero columns stay separate.
    Returns ``(W1, W2)`` of the input shape ``(d, p)``: the ``q`` merged units first, then
    ``p - q`` zero columns, the layout of the closed form ``[r_1 x_1, ..., r_n x_n, 0, ...]``.
    """
    W1 = np.asarray(W1, dtype=np.float64)
    if W1.ndim != 2:
        raise ValueError(f"W1 must have shape (d, p), got an array of shape {W1.shape}")
    W1 = _checks.weights(W1, W1.shape[0], "W1")
    W2 = _checks.weights(W2, W1.shape[0], "W2")
    if W2.shape != W1.shape:
        raise ValueError(f"W1 and W2 must have the same shape, got {W1.shape} and {W2.shape}")
    threshold = _checks.real(threshold, "threshold")
    if not -1.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie strictly between -1 and 1, got {threshold}")

    norms = np.linalg.norm(W1, axis=0)
    directions = np.divide(W1, norms, out=np.zeros_like(W1), where=norms > 0)
    leaders, groups = [], []
    for k in np.argsort(-norms, kind="stable"):
        joined = False
        if norms[k] > 0:
            for g, leader in enumerate(leaders):
                if directions[:, leader] @ directions[:, k] > threshold:
                    groups[g].append(k)
                    joined = True
                    break
        if not joined:
            leaders.append(k)
            groups.append([k])

    merged1, merged2 = np.zeros_like(W1), np.zeros_like(W2)
    for g, members in enumerate(groups):
        if norms[members[0]] == 0:
            merged2[:, g] = W2[:, members[0]]
            continue
        u = W1[:, members].sum(axis=1)
        u /= np.linalg.norm(u)
        alphas = W1[:, members].T @ u  # (m,), encoder lengths along the common direction
        decoder = W2[:, members] @ alphas
        a = np.sqrt(np.linalg.norm(decoder))
        if a == 0:
            continue
        merged1[:, g] = a * u
        merged2[:, g] = decoder / a
    return merged1, merged2


def column_digit_match(W, X, relative=0.1):
    """Return ``(column_match, digit_match)`` between the significant columns of ``W`` and ``X``.

    ``column_match`` ``(k,)`` is each significant column's largest cosine with a row of ``X``;
    ``digit_match`` ``(n,)`` is each row's largest cosine with a significant column. A model
    stores its training set column by column when both are close to one.
    """
    cos = metrics.column_cosines(W, X)  # (p, n)
    significant = metrics.significant_columns(W, relative)
    if not np.any(significant):
        raise ValueError("W has no nonzero column, so no column can match a training point")
    cos = cos[significant]
    return cos.max(axis=1), cos.max(axis=0)


def representation(W1, X):
    """Return the hidden activations ``relu(X W1)`` of the rows of ``X``, shape ``(n, p)``."""
    X = _checks.points(X)
    W1 = _checks.weights(W1, X.shape[1], "W1")
    return np.maximum(X @ W1, 0.0)


@dataclass(frozen=True)
class DigitsModel:
    """One trained stack of models and the digits it saw.

    ``X`` ``(n, 64)`` are the training digits, ``indices`` ``(n,)`` their rows in the full set and
    ``labels`` ``(n,)`` their classes. ``run`` contains the weights of every seed.
    """

    name: str
    X: np.ndarray
    indices: np.ndarray
    labels: np.ndarray
    run: training.TrainResult

    @property
    def n_seeds(self):
        return len(self.run.seeds)

    def weights(self, index=0):
        return self.run.weights(index)


@functools.lru_cache(maxsize=None)
def _digits():
    X, labels, mean = data.digits()
    X.setflags(write=False)
    labels.setflags(write=False)
    return X, labels, mean


def all_digits():
    """Return the centered digits ``(1797, 64)``, their labels and the subtracted mean image."""
    X, labels, mean = _digits()
    return X.copy(), labels.copy(), mean.copy()


def memorizer(seed=0, full=False):
    """Train on five digits with pairwise negative cosines (selected with ``seed``); cached.

    ``full`` trains ``FULL_SEEDS`` models (seeds ``seed, seed + 1, ...``) instead of one.
    """
    return _trained("memorizer", _checks.count(seed, "seed", minimum=0), bool(full))


def similar_memorizer(seed=0, full=False):
    """Train like ``memorizer`` after one digit is replaced by a look-alike (a positive cosine)."""
    return _trained("similar", _checks.count(seed, "seed", minimum=0), bool(full))


def generalizer(seed=0, full=False):
    """Train on all 1,797 digits with the memorizer's width, noise level and penalty; cached."""
    return _trained("generalizer", _checks.count(seed, "seed", minimum=0), bool(full))


@functools.lru_cache(maxsize=None)
def _trained(kind, seed, full):
    """Train the model ``kind`` once per ``(seed, full)``; later calls return the cached model."""
    X, labels, _ = _digits()
    seeds = tuple(seed + k for k in range(FULL_SEEDS if full else 1))
    if kind == "generalizer":
        return _train("generalizer", X, labels, np.arange(X.shape[0]), GENERALIZER_CONFIG, seeds)
    indices = select_negative_cosine_digits(X, labels, seed=seed)
    if kind == "similar":
        similar = with_similar_digit(X, labels, indices)
        return _train("similar-digit memorizer", X, labels, similar, MEMORIZER_CONFIG, seeds)
    return _train("memorizer", X, labels, indices, MEMORIZER_CONFIG, seeds)


def _train(name, X, labels, indices, config, seeds):
    points = X[indices]
    run = training.train(points, config, seeds=seeds, progress=False)
    log.info("%s: %d digits, seeds %s, %.1f s", name, len(indices), seeds, run.seconds)
    model = DigitsModel(name=name, X=points, indices=np.asarray(indices), labels=labels[indices], run=run)
    for array in (model.X, model.indices, model.labels, run.W1, run.W2):
        array.setflags(write=False)  # the model is cached and shared, so callers must not change it
    return model


# --- measurements shared by the chapter and the claims ---------------------------------------

PRODUCT_TOLERANCE_FRACTION = 0.25  # fraction of the change that the penalty makes to the closed form's W W^T


def storage_match(model):
    """Return how well the significant columns and the training digits match, worst over seeds.

    The value is the smallest cosine of a significant column with its nearest digit or of a
    digit with its nearest significant column. It is near one exactly when every significant
    column is a copy of a training digit and every digit has at least one copy.
    """
    values = []
    for index in range(model.n_seeds):
        columns, digits_ = column_digit_match(model.weights(index)[0], model.X)
        values.append(min(columns.min(), digits_.min()))
    return float(min(values))


def largest_column_match(model):
    """Return the largest cosine between a significant column and a training digit, over seeds."""
    largest = [column_digit_match(model.weights(index)[0], model.X)[0].max() for index in range(model.n_seeds)]
    return float(max(largest))


def product_error(model):
    """Compare ``W1 W2^T`` with the memorization closed form ``W W^T`` of the model's digits.

    The closed form uses the model's own noise level and penalty. Returns
    ``(error, tolerance, penalty_effect)``. ``error`` is the largest relative Frobenius error over
    seeds. ``penalty_effect`` is the relative change of the closed form's ``W W^T`` when ``lam``
    is set to zero, and ``tolerance`` is ``PRODUCT_TOLERANCE_FRACTION`` of it, so a model that
    passes resolves the penalty's effect on the stored columns.
    """
    width, sigma, lam = model.run.config.width, model.run.config.sigma, model.run.config.lam
    W = theory.memorization_weights(model.X, sigma, lam, width=width)
    W0 = theory.memorization_weights(model.X, sigma, 0.0, width=width)
    target = W @ W.T
    penalty_effect = metrics.relative_error(W0 @ W0.T, target)
    error = max(metrics.relative_error(product, target) for product in model.run.products)
    return float(error), PRODUCT_TOLERANCE_FRACTION * penalty_effect, penalty_effect


def representation_statistics(model, index=0, merged=True):
    """Return ``metrics.RepresentationStats`` of the model's training digits for seed ``index``.

    With ``merged`` the parallel units are merged first (``merge_parallel_units``), which leaves
    the function and the penalty unchanged up to the alignment threshold.
    """
    W1, W2 = model.weights(index)
    if merged:
        W1, W2 = merge_parallel_units(W1, W2)
    return metrics.representation_stats(representation(W1, model.X))


def median_statistic(model, field, merged=True, worst="min"):
    """Return the median of a ``RepresentationStats`` field over the training digits.

    With several seeds the smallest (``worst="min"``) or largest (``"max"``) median is returned.
    """
    if field not in ("std", "top1_share", "participation", "active"):
        raise ValueError(f"field must name a RepresentationStats field, got {field!r}")
    if worst not in ("min", "max"):
        raise ValueError(f"worst must be 'min' or 'max', got {worst!r}")
    medians = [
        float(np.nanmedian(getattr(representation_statistics(model, index, merged), field)))
        for index in range(model.n_seeds)
    ]
    return min(medians) if worst == "min" else max(medians)


def closed_form_top1_share(X, sigma=SIGMA, lam=LAM, width=WIDTH):
    """Return the median top-1 share of the closed-form memorizer's representations of ``X``.

    The closed form of Corollary 3.2 has one column per point. Because the points have pairwise
    negative cosines, each point activates only its own column and the share is 1.
    """
    W = theory.memorization_weights(X, sigma, lam, width=width)
    return float(np.nanmedian(metrics.representation_stats(representation(W, X)).top1_share))


def matched_columns(W, X, relative=0.1):
    """For each row of ``X``, return the significant column of ``W`` most aligned with it.

    Returns ``(columns (n, d), cosines (n,))``, which the chapter shows beside the digits.
    """
    X = _checks.points(X)
    W = _checks.weights(W, X.shape[1])
    significant = np.flatnonzero(metrics.significant_columns(W, relative))
    if significant.size == 0:
        raise ValueError("W has no nonzero column, so no column can match a training point")
    cos = metrics.column_cosines(W[:, significant], X)  # (k, n)
    best = np.argmax(cos, axis=0)  # (n,)
    return W[:, significant[best]].T.copy(), cos[best, np.arange(X.shape[0])]


def noisy_inputs(model, total, seed=0):
    """Return ``total`` training inputs ``x_i + sigma eps`` of ``model``, shape ``(total, d)``.

    The digits are taken in turn (digit ``k % n`` for row ``k``) with fresh Gaussian noise at the
    model's training noise level, so these are draws of the inputs the model was trained on.
    """
    total = _checks.count(total, "total")
    rng = np.random.default_rng(seed)
    clean = model.X[np.arange(total) % model.X.shape[0]]
    return clean + model.run.config.sigma * rng.standard_normal(clean.shape)
