"""The two-layer ReLU denoising autoencoder ``f(y) = W2 relu(W1^T y)`` in float64 torch.

Weights keep the shape ``(d, p)`` of the theory, so for a batch ``Y`` of shape ``(B, d)`` the
representation is ``h = relu(Y @ W1)`` and the output ``f = h @ W2.T``. A module may hold a stack
of ``S`` independent models (weights ``(S, d, p)``) so that several seeds train in one pass:
Adam, RMSprop and SGD act entrywise, so stacking does not couple the models.
"""

import numpy as np
import torch

from . import _checks

DTYPE = torch.float64


class ReLUDAE(torch.nn.Module):
    """A stack of ``n_models`` ReLU denoising autoencoders, tied (``W2 = W1``) or untied.

    Each weight matrix starts with i.i.d. ``N(0, init_scale^2 / d)`` entries, so a column has norm
    about ``init_scale``. ``seeds`` gives one seed per model; model ``s`` is initialized from
    ``torch.Generator().manual_seed(seeds[s])`` alone, so it does not depend on the stack.
    """

    def __init__(self, d, p, seeds=(0,), tied=False, init_scale=1e-2):
        super().__init__()
        d = _checks.count(d, "d")
        p = _checks.count(p, "p")
        init_scale = _checks.nonnegative(init_scale, "init_scale")
        seeds = [_checks.count(seed, "seed", minimum=0) for seed in seeds]
        if not seeds:
            raise ValueError("seeds must contain at least one seed")
        self.tied = bool(tied)
        first, second = [], []
        for seed in seeds:
            generator = torch.Generator().manual_seed(seed)
            first.append(torch.randn(d, p, generator=generator, dtype=DTYPE))
            second.append(torch.randn(d, p, generator=generator, dtype=DTYPE))
        scale = init_scale / np.sqrt(d)
        self.W1 = torch.nn.Parameter(scale * torch.stack(first))  # (S, d, p)
        self.W2 = None if self.tied else torch.nn.Parameter(scale * torch.stack(second))

    @classmethod
    def from_weights(cls, W1, W2=None):
        """Build a single model (``S = 1``) from numpy weights; ``W2 = None`` means tied."""
        W1 = np.asarray(W1, dtype=np.float64)
        if W1.ndim != 2:
            raise ValueError(f"W1 must have shape (d, p), got {W1.shape}")
        W1 = _checks.weights(W1, W1.shape[0], "W1")  # rejects NaN and infinite entries
        model = cls(W1.shape[0], W1.shape[1], tied=W2 is None, init_scale=0.0)
        with torch.no_grad():
            model.W1.copy_(torch.as_tensor(W1)[None])
            if W2 is not None:
                model.W2.copy_(torch.as_tensor(_checks.weights(W2, W1.shape[0], "W2"))[None])
        return model

    @property
    def decoder(self):
        return self.W1 if self.tied else self.W2

    def representation(self, Y):
        """Return ``relu(Y @ W1)``: ``Y`` is ``(B, d)`` or ``(S, B, d)``, the result ``(S, B, p)``."""
        if Y.dim() == 2:
            Y = Y.expand(self.W1.shape[0], *Y.shape)
        return torch.relu(torch.bmm(Y, self.W1))  # (S, B, p)

    def forward(self, Y):
        """Return the denoised batch ``(S, B, d)``."""
        H = self.representation(Y)
        return torch.bmm(H, self.decoder.transpose(1, 2))  # (S, B, d)

    def penalty(self):
        """Return ``||W1||_F^2 + ||W2||_F^2`` per model, shape ``(S,)`` (twice ``||W||^2`` if tied)."""
        first = self.W1.pow(2).sum(dim=(1, 2))
        return 2.0 * first if self.tied else first + self.W2.pow(2).sum(dim=(1, 2))

    def weights(self, index=0):
        """Return ``(W1, W2)`` of model ``index`` as numpy arrays of shape ``(d, p)``."""
        W1 = self.W1[index].detach().numpy().copy()
        W2 = self.decoder[index].detach().numpy().copy()
        return W1, W2


def apply(W1, W2, Y):
    """Evaluate ``f(Y) = relu(Y @ W1) @ W2.T`` in numpy for ``Y`` of shape ``(B, d)``."""
    return np.maximum(Y @ W1, 0.0) @ W2.T


def representation(W1, Y):
    """Return the hidden activations ``relu(Y @ W1)``, shape ``(B, p)``."""
    return np.maximum(Y @ W1, 0.0)


def monte_carlo_loss(W1, W2, X, sigma, lam, draws=10_000, seed=0, chunk=2_000):
    """Estimate the loss with ``draws`` noise draws per point; returns ``(mean, standard error)``.

    The estimate is of ``(1/n) sum_i E ||f(x_i + sigma eps) - x_i||^2 + lam (||W1||^2 + ||W2||^2)``;
    the standard error is that of the Monte Carlo average over draws.
    """
    X = _checks.points(X)
    W1 = _checks.weights(W1, X.shape[1], "W1")
    W2 = W1 if W2 is None else _checks.weights(W2, X.shape[1], "W2")
    sigma = _checks.nonnegative(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    draws = _checks.count(draws, "draws", minimum=2)
    rng = np.random.default_rng(seed)

    per_draw = []
    for start in range(0, draws, chunk):
        m = min(chunk, draws - start)
        noise = rng.standard_normal((m, *X.shape))  # (m, n, d)
        residual = apply(W1, W2, (X + sigma * noise).reshape(-1, X.shape[1])) - np.tile(X, (m, 1))
        per_draw.append(np.sum(residual**2, axis=1).reshape(m, X.shape[0]).mean(axis=1))
    per_draw = np.concatenate(per_draw)
    penalty = lam * (np.sum(W1**2) + np.sum(W2**2))
    return float(per_draw.mean() + penalty), float(per_draw.std(ddof=1) / np.sqrt(draws))
