"""Monte Carlo training of the ReLU denoising autoencoder at one noise level.

Every step draws fresh Gaussian noise for the selected training points and minimizes

    mean_i ||f(x_i + sigma eps) - x_i||^2 + lam (||W1||_F^2 + ||W2||_F^2),

with the penalty added to the loss exactly as in the theory (not through an optimizer's weight
decay, which would scale it differently). Several seeds train at once as a stack of
independent models.
"""

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from . import _checks
from .model import DTYPE, ReLUDAE

log = logging.getLogger(__name__)

OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "rmsprop": torch.optim.RMSprop,
    "sgd": torch.optim.SGD,
}


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one training run; every field has the unit of the loss above."""

    width: int  # p, the number of hidden units
    sigma: float  # noise level of the training objective
    lam: float = 0.0  # penalty weight on ||W1||^2 + ||W2||^2
    tied: bool = False  # W2 = W1 when true
    optimizer: str = "adam"  # "adam", "rmsprop" or "sgd"
    lr: float = 1e-2  # initial learning rate
    final_lr_ratio: float = 1.0  # the rate decays geometrically to lr * final_lr_ratio
    steps: int = 3000
    noise_draws: int = 8  # fresh noise draws per selected training point and step
    batch_size: int | None = None  # training points per step; None takes all of them
    init_scale: float = 1e-2  # initial column norm, about
    record_every: int = 50  # steps between entries of the loss history

    def __post_init__(self):
        _checks.count(self.width, "width")
        _checks.positive(self.sigma, "sigma")
        _checks.nonnegative(self.lam, "lam")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {self.optimizer!r}")
        _checks.positive(self.lr, "lr")
        _checks.positive(self.final_lr_ratio, "final_lr_ratio")
        _checks.count(self.steps, "steps")
        _checks.count(self.noise_draws, "noise_draws")
        if self.batch_size is not None:
            _checks.count(self.batch_size, "batch_size")
        _checks.nonnegative(self.init_scale, "init_scale")
        _checks.count(self.record_every, "record_every")

    def with_(self, **changes):
        """Return a copy with some fields changed."""
        return replace(self, **changes)


@dataclass
class TrainResult:
    """Weights and loss history of a stack of ``S`` runs that differ only in their seed."""

    config: TrainConfig
    seeds: tuple
    W1: np.ndarray  # (S, d, p)
    W2: np.ndarray  # (S, d, p), equal to W1 for tied runs
    history_steps: np.ndarray  # (T,)
    loss_history: np.ndarray  # (S, T), Monte Carlo training loss at those steps
    seconds: float

    def weights(self, index=0):
        """Return ``(W1, W2)`` of run ``index``, each of shape ``(d, p)``."""
        return self.W1[index], self.W2[index]

    @property
    def products(self):
        """Return ``W1 W2^T`` for every run, shape ``(S, d, d)``; invariant to column symmetries."""
        return np.einsum("sip,sjp->sij", self.W1, self.W2)


def _progress_bar(total, progress):
    if progress is None:
        progress = sys.stderr.isatty()
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="step")


@contextlib.contextmanager
def single_thread():
    """Run torch on one intra-op thread inside the block, then restore the previous count.

    The matrices of these models are tiny, so several threads spinning on them cost far more
    than they save. On a loaded 2-core machine the default thread count made training about
    twenty times slower.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train(X, config, seeds=(0,), progress=None):
    """Train one model per seed on the rows of ``X`` (shape ``(n, d)``) and return a ``TrainResult``.

    Noise and point selection use a ``torch.Generator`` seeded from the first seed plus a
    constant, so a stack and its first model alone draw different noise. Compare runs by their
    seeds, not by the stack they ran in. Shows a tqdm progress bar when ``progress`` is true,
    or by default when standard error is a terminal.
    """
    X = _checks.points(X)
    if not isinstance(config, TrainConfig):
        raise ValueError(f"config must be a TrainConfig, got {type(config).__name__}")
    seeds = tuple(int(_checks.count(seed, "seed", minimum=0)) for seed in seeds)
    if not seeds:
        raise ValueError("seeds must contain at least one seed")
    n, d = X.shape
    if config.batch_size is not None and config.batch_size > n:
        raise ValueError(f"batch_size = {config.batch_size} exceeds the number of points n = {n}")

    with single_thread():
        return _train(X, config, seeds, progress)


def _train(X, config, seeds, progress):
    n, d = X.shape
    model = ReLUDAE(d, config.width, seeds=seeds, tied=config.tied, init_scale=config.init_scale)
    optimizer = OPTIMIZERS[config.optimizer](model.parameters(), lr=config.lr)
    decay = config.final_lr_ratio ** (1.0 / config.steps)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=decay)
    noise_generator = torch.Generator().manual_seed(10_007 + seeds[0])
    data = torch.as_tensor(X, dtype=DTYPE)
    S = len(seeds)

    history_steps, history = [], []
    bar = _progress_bar(config.steps, progress)
    start = time.perf_counter()
    log.info("training %d model(s): n=%d d=%d %s", S, n, d, config)
    for step in range(1, config.steps + 1):
        if config.batch_size is None:
            clean = data
        else:
            clean = data[torch.randperm(n, generator=noise_generator)[: config.batch_size]]
        clean = clean.repeat(config.noise_draws, 1)  # (m, d), m = points * draws
        noise = torch.randn(S, *clean.shape, generator=noise_generator, dtype=DTYPE)
        noisy = clean + config.sigma * noise  # (S, m, d)
        residual = model(noisy) - clean  # (S, m, d)
        data_loss = residual.pow(2).sum(dim=2).mean(dim=1)  # (S,)
        loss = data_loss + config.lam * model.penalty()  # (S,)

        optimizer.zero_grad(set_to_none=True)
        loss.sum().backward()
        optimizer.step()
        scheduler.step()

        if step % config.record_every == 0 or step == config.steps:
            history_steps.append(step)
            history.append(loss.detach().numpy().copy())
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    log.info("training finished in %.1f s", seconds)

    W1 = model.W1.detach().numpy().copy()
    W2 = model.decoder.detach().numpy().copy()
    return TrainResult(
        config=config,
        seeds=seeds,
        W1=W1,
        W2=W2,
        history_steps=np.array(history_steps),
        loss_history=np.array(history).T,
        seconds=seconds,
    )
