"""Closed-form Gaussian-noise expectation of the denoising loss, with gradient and Hessian.

The model is ``f(y) = W2 relu(W1^T y)`` with weights of shape ``(d, p)`` and data ``X`` of shape
``(n, d)`` (samples are rows). For noise ``eps ~ N(0, I_d)`` this module evaluates exactly

    L(W1, W2) = (1/n) sum_i E || W2 relu(W1^T (x_i + sigma eps)) - x_i ||^2
                + lam (||W1||_F^2 + ||W2||_F^2),

and for the tied model (``W2 = None``) the same expression at ``W2 = W1``, differentiated with
respect to the single matrix; its penalty is therefore ``2 lam ||W||_F^2``.

Per sample the pre-activations ``a = W1^T y`` are Gaussian with mean ``m = W1^T x`` and covariance
``sigma^2 W1^T W1``, so with ``M1 = E[relu(a)]`` and ``M2 = E[relu(a) relu(a)^T]``

    E || W2 relu(a) - x ||^2 = tr(W2^T W2 M2) - 2 x^T W2 M1 + ||x||^2.

With ``s = sigma ||w_j||`` and ``t = m / s`` the univariate moments are
``E[relu(m + s Z)] = m Phi(t) + s phi(t)`` and ``E[relu(m + s Z)^2] = (m^2 + s^2) Phi(t) + m s phi(t)``.
For ``t < -2`` both are evaluated as ``s^n phi(t) J_n(-t)`` with
``J_n(a) = int_0^inf u^n exp(-a u - u^2 / 2) du``, whose ratios have continued fractions, so the
far lower tail keeps full relative accuracy.

An off-diagonal entry of ``M2`` is ``s_j s_k G(t_j, t_k, rho_jk)`` with ``rho_jk = cos(w_j, w_k)``
and ``G(h, k, rho) = E[(U + h)_+ (V + k)_+]`` for a standard bivariate normal pair of correlation
``rho``. In closed form

    G = (h k + rho) Phi2 + h phi(k) Phi(A) + k phi(h) Phi(B) + r phi(h) phi(B),
    r = sqrt(1 - rho^2),  A = (h - rho k) / r,  B = (k - rho h) / r,

with ``Phi2 = Phi2(h, k; rho) = P(U < h, V < k)``. That form cancels badly in the tails, so ``G`` and
``Phi2`` are computed from Price's theorem, ``dG/drho = Phi2`` and ``dPhi2/drho = phi2``:

    rho >= 0:  G = M1(h) M1(k) + rho Phi(h) Phi(k) + int_0^rho (rho - s) phi2(h, k; s) ds,
    rho <  0:  G = G(h, k; -1) + (1 + rho) Phi2(h, k; -1) + int_{-1}^rho (rho - s) phi2(h, k; s) ds,

where every term is non-negative. With ``s = cos(psi)`` the integrand ``phi2 ds`` becomes the
bounded ``exp(-E(psi)) / (2 pi) dpsi``, ``E = (h - k)^2 / (2 sin^2 psi) + h k / (1 + cos psi)``
(for ``rho < 0``, ``s = -cos(psi)`` and ``k`` becomes ``-k``). Near ``psi = 0`` it has a layer of
width ``|h -+ k|``, so 64-point Gauss-Legendre rules run on panels graded geometrically towards
``psi = 0``. Against quadrature of the conditional one-dimensional forms this gives about 1e-12
relative accuracy, also for values as small as 1e-250.

The gradient uses Stein's lemma and Price's theorem: with ``1_j = 1(a_j > 0)``,

    dL/dW2 = (2/n) sum_i (W2 M2_i - x_i M1_i^T) + 2 lam W2,
    dL/dw_j = (2/n) sum_i [ x_i alpha_ij + sigma^2 sum_k B_jk P_ijk w_k
                            + sigma (w_j / ||w_j||) gamma_ij ] + 2 lam w_j,

where ``B = W2^T W2``, ``c = W2^T x``, ``P_jk = E[1_j 1_k]``, ``N_jk = E[1_j relu(a_k)]``,
``alpha_j = sum_k B_jk N_jk - c_j Phi(t_j)`` and
``gamma_j = phi(t_j) (sum_k B_jk E[relu(a_k) | a_j = 0] - c_j)``.
A pre-activation with ``s = 0`` (a zero column, or ``sigma = 0``) is deterministic. Its step
``1(a_j > 0)`` is taken as 1/2 at ``a_j = 0`` because that is what central differences see. The
Hessian comes from float64 torch double-backward through autograd functions whose derivatives are
these same formulas.
"""

import numpy as np
import torch
from scipy.special import erfcx, ndtr

from . import _checks

_SQRT_2PI = np.sqrt(2.0 * np.pi)
# Below t = -2 the univariate moments switch to the continued fraction. There 120 terms reach full
# double precision at a = 2 (checked against mpmath) and converge faster for larger a.
_TAIL_START = 2.0
_CF_TERMS = 120
# Standardized arguments are clipped here. Beyond it Phi, phi and every tail term are exactly 0 or 1.
_T_CLIP = 1e100
_GL_X, _GL_W = np.polynomial.legendre.leggauss(64)
_GL_POS = 0.5 * (_GL_X + 1.0)
_GL_X_32, _GL_W_32 = np.polynomial.legendre.leggauss(32)
_GL_POS_32 = 0.5 * (_GL_X_32 + 1.0)
# Elements of one (samples x pairs x nodes) quadrature block, about 16 MB per float64 temporary.
_BLOCK = 2**21
HESSIAN_LIMIT = 4000


# ----------------------------------------------------------------------------------------------
# Univariate and bivariate normal moments


def _pdf(t):
    t = np.clip(t, -1e3, 1e3)
    return np.exp(-0.5 * t * t) / _SQRT_2PI


def _tail_integrals(a):
    """Return ``J_1(a), J_2(a)`` for ``a >= 2``, ``J_n(a) = int_0^inf u^n exp(-a u - u^2/2) du``."""
    f = np.zeros_like(a)
    for j in range(_CF_TERMS, 2, -1):
        f = j / (a + f)
    ratio21 = 2.0 / (a + f)
    ratio10 = 1.0 / (a + ratio21)
    mills = np.sqrt(np.pi / 2.0) * erfcx(a / np.sqrt(2.0))
    j1 = mills * ratio10
    return j1, j1 * ratio21


class _Univariate:
    """Moments of ``a = m + s Z`` for broadcast arrays ``m`` and ``s >= 0``."""

    def __init__(self, m, s):
        m, s = np.broadcast_arrays(np.asarray(m, dtype=np.float64), np.asarray(s, dtype=np.float64))
        live = s > 0
        with np.errstate(over="ignore"):
            t = np.where(live, m / np.where(live, s, 1.0), np.sign(m) * _T_CLIP)
        t = np.clip(t, -_T_CLIP, _T_CLIP)
        self.m, self.s, self.t, self.live = m, s, t, live
        self.cdf = ndtr(t)
        self.pdf = np.where(live, _pdf(t), 0.0)
        self.mean = np.array(m * self.cdf + s * self.pdf)
        self.second = np.array((m * m + s * s) * self.cdf + m * s * self.pdf)
        tail = live & (t < -_TAIL_START)
        if np.any(tail):
            j1, j2 = _tail_integrals(-t[tail])
            scale = s[tail] * self.pdf[tail]
            self.mean[tail] = scale * j1
            self.second[tail] = scale * s[tail] * j2

    def take(self, index):
        """Return the moments of the columns ``index`` along the last axis."""
        part = _Univariate.__new__(_Univariate)
        for name in ("m", "s", "t", "live", "cdf", "pdf", "mean", "second"):
            setattr(part, name, getattr(self, name)[..., index])
        return part


def _price_integrals(h, k, rho):
    """Return the Price-theorem integrals ``(IG, IP)`` from the base correlation to ``rho``.

    The base is 0, or -1 when ``rho < 0``. ``IP = int phi2(h, k; s) ds`` and
    ``IG = int |rho - s| phi2(h, k; s) ds``, both non-negative. In ``psi`` the integrand has a layer
    of width ``|h -+ k|`` at ``psi = 0``, which panels graded geometrically towards 0 (ratio at most
    16) resolve wherever it falls.
    """
    h, k, rho = np.broadcast_arrays(h, k, rho)
    shape = h.shape
    h, k, rho = h.ravel(), k.ravel(), rho.ravel()
    neg = rho < 0
    a = np.abs(rho)
    corner = np.arctan2(np.sqrt((1.0 - a) * (1.0 + a)), a)  # arccos|rho|, accurate near |rho| = 1
    kk = np.where(neg, -k, k)
    lo = np.where(neg, 0.0, corner)
    hi = np.where(neg, corner, 0.5 * np.pi)
    delta = np.abs(h - kk)
    # Below psi = delta / 8 the integrand is under exp(-32) of its size at psi = delta.
    graded = delta > np.where(lo > 0, 1e-8 * lo, 1e-16 * hi)
    start = np.where(graded, np.minimum(np.maximum.reduce([lo, delta / 8.0, 1e-17 * hi]), hi), hi)
    # When the whole interval [0, hi] lies inside the layer, the integrand rises steeply to its end
    # over a length of about hi^3 / delta^2, so the panels are graded towards hi instead.
    reverse = graded & (lo == 0) & (start >= hi)
    with np.errstate(divide="ignore"):
        rise = hi**3 / np.where(reverse, delta, 1.0) ** 2
    start = np.where(reverse, np.clip(rise, 1e-17 * hi, hi), start)
    ratio = np.where(start < hi, hi / np.where(start > 0, start, 1.0), 1.0)
    count = np.ceil(np.log(ratio) / np.log(16.0)).astype(int)
    IG = np.zeros(h.shape)
    IP = np.zeros(h.shape)
    for low, high in ((0, 0), (1, 3), (4, 16)):
        chosen = np.flatnonzero((count >= low) & (count <= high) & (hi > lo))
        step = max(1, _BLOCK // ((high + 1) * _GL_X.size))
        for first in range(0, chosen.size, step):
            sel = chosen[first : first + step]
            IG[sel], IP[sel] = _panel_sums(
                h[sel], kk[sel], corner[sel], lo[sel], start[sel], hi[sel], count[sel], high, reverse[sel]
            )
    return IG.reshape(shape), IP.reshape(shape)


def _panel_sums(h, kk, corner, lo, start, hi, count, max_count, reverse):
    """Sum Gauss-Legendre rules over ``[lo, start]`` and ``count`` geometric panels up to ``hi``.

    Where ``reverse`` is set (only with ``lo = 0``) the same panels are laid out from ``hi`` down.
    """
    steps = np.minimum(np.arange(1, max_count + 1)[None, :], count[:, None]) / np.maximum(count, 1)[:, None]
    edges = np.where(count[:, None] > 0, start[:, None] * (hi / start)[:, None] ** steps, hi[:, None])
    left = np.concatenate([lo[:, None], start[:, None], edges[:, :-1]], axis=1)
    right = np.concatenate([start[:, None], edges], axis=1)
    width = right - left
    psi = left[..., None] + width[..., None] * _GL_POS
    psi = np.where(reverse[:, None, None], hi[:, None, None] - psi, psi)
    # Empty panels have zero width, so their nodes only need a position where sin(psi) > 0.
    psi = np.where(width[..., None] > 0, psi, 0.25 * np.pi)
    sin = np.sin(psi)
    exponent = (h - kk)[:, None, None] ** 2 / (2.0 * sin * sin) + (h * kk)[:, None, None] / (1.0 + np.cos(psi))
    density = np.exp(-exponent)
    # |rho - s| as a product of sines, so it stays accurate next to the endpoint.
    c = corner[:, None, None]
    weight = 2.0 * np.sin(0.5 * (psi + c)) * np.abs(np.sin(0.5 * (psi - c)))
    scale = width / (4.0 * np.pi)
    return np.sum((density * weight) @ _GL_W * scale, axis=1), np.sum(density @ _GL_W * scale, axis=1)


def _interval_moments(lo, hi):
    """Return ``P(lo < Z < hi)``, ``E[(Z - lo)(hi - Z); lo < Z < hi]`` and where quadrature gave them.

    Where ``Z^2 / 2`` changes by at most 30 over the interval, a 32-point Gauss-Legendre rule is
    exact to rounding. Unlike the closed forms it keeps short intervals relatively accurate, and the
    returned moment is only meaningful there.
    """
    lo, hi = np.broadcast_arrays(lo, hi)
    spread = np.maximum(lo * lo, hi * hi) - np.where(lo * hi < 0, 0.0, np.minimum(lo * lo, hi * hi))
    short = spread <= 60.0
    a = np.where(short, lo, 0.0)[..., None]
    width = np.where(short, hi - lo, 0.0)[..., None]
    u = a + width * _GL_POS_32
    density = _pdf(u) * (0.5 * width)
    quad_prob = density @ _GL_W_32
    quad_moment = (density * (u - a) * (a + width - u)) @ _GL_W_32
    closed_prob = np.maximum(np.where(lo > 0, ndtr(-lo) - ndtr(-hi), ndtr(hi) - ndtr(lo)), 0.0)
    return np.where(short, quad_prob, closed_prob), quad_moment, short


def _pair(uj, uk, rho):
    """Return ``E[relu(a_j) relu(a_k)]`` and ``P(a_j > 0, a_k > 0)`` for correlation ``rho``.

    Both pre-activations must have ``s > 0``. Callers handle deterministic ones.
    """
    IG, IP = _price_integrals(uj.t, uk.t, rho)
    both = uj.s * uk.s
    second_pos = uj.mean * uk.mean + both * (rho * uj.cdf * uk.cdf + IG)
    cdf2_pos = uj.cdf * uk.cdf + IP
    # rho = -1 base: with V = -U both factors are positive on the interval -h < U < k.
    inside = uj.t + uk.t > 0
    interval, moment, short = _interval_moments(-uj.t, uk.t)
    interval = np.where(inside, interval, 0.0)
    # The closed form, in the scale of m so that huge t = m / s stays exact, cancels on short intervals.
    closed = (uj.m * uk.m + rho * both) * interval + uk.m * uj.s * uj.pdf + uj.m * uk.s * uk.pdf
    base = np.where(short, both * (moment + (1.0 + rho) * interval), closed)
    second_neg = np.where(inside, base, 0.0) + both * IG
    cdf2_neg = interval + IP
    neg = rho < 0
    return np.where(neg, second_neg, second_pos), np.where(neg, cdf2_neg, cdf2_pos)


def _ratio(num, r):
    """Return ``num / r``, with the ``r = 0`` limit ``+-inf`` (0 when ``num = 0``)."""
    live = r > 0
    limit = np.where(num > 0, np.inf, np.where(num < 0, -np.inf, 0.0))
    with np.errstate(over="ignore"):
        return np.where(live, num / np.where(live, r, 1.0), limit)


def _finite_array(value, name, allow_infinite=False):
    array = np.asarray(value, dtype=np.float64)
    bad = np.isnan(array) if allow_infinite else ~np.isfinite(array)
    if np.any(bad):
        raise ValueError(f"{name} contains NaN{'' if allow_infinite else ' or infinite'} entries; pass finite values")
    return array


def _correlation_array(rho):
    rho = _finite_array(rho, "rho")
    if np.any(np.abs(rho) > 1):
        raise ValueError(f"rho must lie in [-1, 1], got values up to {np.max(np.abs(rho))}; pass a correlation")
    return rho


def relu_mean(m, s):
    """Return ``E[relu(m + s Z)]`` for ``Z ~ N(0, 1)``, elementwise over broadcast ``m`` and ``s``.

    ``s = 0`` gives ``relu(m)``. Raises ValueError for non-finite entries or ``s < 0``.
    """
    m = _finite_array(m, "m")
    s = _finite_array(s, "s")
    if np.any(s < 0):
        raise ValueError(f"s is a standard deviation and must be >= 0, got minimum {np.min(s)}")
    return _Univariate(m, s).mean[()]


def relu_second_moment(m, s):
    """Return ``E[relu(m + s Z)^2]`` for ``Z ~ N(0, 1)``, elementwise over broadcast ``m`` and ``s``.

    ``s = 0`` gives ``relu(m)^2``. Raises ValueError for non-finite entries or ``s < 0``.
    """
    m = _finite_array(m, "m")
    s = _finite_array(s, "s")
    if np.any(s < 0):
        raise ValueError(f"s is a standard deviation and must be >= 0, got minimum {np.min(s)}")
    return _Univariate(m, s).second[()]


def bivariate_normal_cdf(h, k, rho):
    """Return ``Phi2(h, k; rho) = P(U < h, V < k)`` for a standard bivariate normal, correlation ``rho``.

    Takes broadcast arrays. ``h`` and ``k`` may be infinite and ``rho`` must lie in ``[-1, 1]``. Tiny
    values far in the lower tails keep about 1e-12 relative accuracy (checked against quadrature for
    |h|, |k| <= 30). Raises ValueError on NaN or ``|rho| > 1``.
    """
    h = np.clip(_finite_array(h, "h", allow_infinite=True), -_T_CLIP, _T_CLIP)
    k = np.clip(_finite_array(k, "k", allow_infinite=True), -_T_CLIP, _T_CLIP)
    rho = _correlation_array(rho)
    ones = np.ones(np.broadcast_shapes(h.shape, k.shape, rho.shape))
    _, cdf2 = _pair(_Univariate(h * ones, ones), _Univariate(k * ones, ones), rho * ones)
    return cdf2[()]


def relu_cross_moment(h, k, rho):
    """Return ``E[(U + h)_+ (V + k)_+]`` for a standard bivariate normal ``(U, V)``, correlation ``rho``.

    Takes broadcast arrays of finite ``h``, ``k`` and ``rho`` in ``[-1, 1]``, with the relative accuracy
    of ``bivariate_normal_cdf``. At ``rho = 1, h = k`` it is the univariate second moment. Raises
    ValueError on non-finite entries or ``|rho| > 1``.
    """
    h = _finite_array(h, "h")
    k = _finite_array(k, "k")
    rho = _correlation_array(rho)
    ones = np.ones(np.broadcast_shapes(h.shape, k.shape, rho.shape))
    second, _ = _pair(_Univariate(h * ones, ones), _Univariate(k * ones, ones), rho * ones)
    return second[()]


def _cross_slope(h, k, rho):
    """Return ``dG/dh = E[1(U > -h) (V + k)_+]`` and ``Phi2``.

    At ``r = 0`` the ratios ``A`` and ``B`` take their limits, +-inf or 0.
    """
    ones = np.ones(np.broadcast_shapes(np.shape(h), np.shape(k), np.shape(rho)))
    h, k, rho = h * ones, k * ones, rho * ones
    _, cdf2 = _pair(_Univariate(h, ones), _Univariate(k, ones), rho)
    r = np.sqrt((1.0 - np.abs(rho)) * (1.0 + np.abs(rho)))
    A = _ratio(h - rho * k, r)
    B = _ratio(k - rho * h, r)
    return k * cdf2 + rho * _pdf(h) * ndtr(B) + _pdf(k) * ndtr(A), cdf2


# ----------------------------------------------------------------------------------------------
# Loss and gradient


def _validate(W1, W2, X, sigma, lam):
    X = _checks.points(X)
    d = X.shape[1]
    if np.ndim(W1) != 2:
        raise ValueError(f"W1 must be a 2-D array of shape (d, p) = ({d}, p), got shape {np.shape(W1)}")
    W1 = _checks.weights(W1, d, "W1")
    if W1.shape[1] == 0:
        raise ValueError("W1 must have at least one column (p >= 1), got shape (d, 0)")
    if W2 is not None:
        if np.shape(W2) != W1.shape:
            raise ValueError(
                f"W2 must have the shape of W1, {W1.shape}, got shape {np.shape(W2)}; "
                "pass W2=None for the tied model"
            )
        W2 = _checks.weights(W2, d, "W2")
    sigma = _checks.nonnegative(sigma, "sigma")
    lam = _checks.nonnegative(lam, "lam")
    return W1, W2, X, sigma, lam


def _evaluate(W1, U, X, sigma, want_grad):
    """Return the data term of the loss (no penalty) and, if ``want_grad``, its gradients in W1 and U."""
    n, d = X.shape
    p = W1.shape[1]
    norms = np.sqrt(np.einsum("dj,dj->j", W1, W1))
    s = sigma * norms
    live = s > 0
    inverse = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
    rho = np.clip((W1.T @ W1) * inverse[:, None] * inverse[None, :], -1.0, 1.0)
    rho = np.where(live[:, None] & live[None, :], rho, 0.0)
    np.fill_diagonal(rho, 0.0)
    r = np.sqrt((1.0 - np.abs(rho)) * (1.0 + np.abs(rho)))
    iu, ju = np.triu_indices(p, 1)
    both_live = live[iu] & live[ju]
    B = U.T @ U
    off = ~np.eye(p, dtype=bool)

    total = 0.0
    second_sum = np.zeros((p, p))
    XtM1 = np.zeros((d, p))
    Xtalpha = np.zeros((d, p))
    cdf2_sum = np.zeros((p, p))
    gamma_sum = np.zeros(p)
    chunk = max(1, _BLOCK // (_GL_X.size * max(iu.size, 1)))
    for start in range(0, n, chunk):
        Xc = X[start : start + chunk]
        c = Xc @ U
        uni = _Univariate(Xc @ W1, s[None, :])
        uj, uk = uni.take(iu), uni.take(ju)
        pair_second, pair_cdf2 = _pair(uj, uk, rho[iu, ju])
        pair_second = np.where(both_live, pair_second, uj.mean * uk.mean)
        pair_cdf2 = np.where(both_live, pair_cdf2, uj.cdf * uk.cdf)
        M2 = _symmetric(pair_second, uni.second, iu, ju, p)
        total += np.einsum("jk,cjk->", B, M2) - 2.0 * np.sum(c * uni.mean) + np.sum(Xc * Xc)
        if not want_grad:
            continue
        P = _symmetric(pair_cdf2, uni.cdf, iu, ju, p)
        tj, tk = uni.t[:, :, None], uni.t[:, None, :]
        A = _ratio(tj - rho * tk, r)
        Bc = _ratio(tk - rho * tj, r)
        N = uni.m[:, None, :] * P + uni.s[:, None, :] * (
            rho * uni.pdf[:, :, None] * ndtr(Bc) + uni.pdf[:, None, :] * ndtr(A)
        )
        deterministic = ~(live[:, None] & live[None, :])
        N = np.where(deterministic, uni.cdf[:, :, None] * uni.mean[:, None, :], N)
        N = np.where(off, N, uni.mean[:, :, None])
        # E[relu(a_k) | a_j = 0], with a zero diagonal. It is only used where s_j > 0.
        conditional = _Univariate(uni.m[:, None, :] - rho * uni.s[:, None, :] * tj, uni.s[:, None, :] * r).mean
        conditional = np.where(off, conditional, 0.0)
        alpha = np.einsum("jk,cjk->cj", B, N) - c * uni.cdf
        gamma = uni.pdf * (np.einsum("jk,cjk->cj", B, conditional) - c)
        second_sum += M2.sum(axis=0)
        XtM1 += Xc.T @ uni.mean
        Xtalpha += Xc.T @ alpha
        cdf2_sum += P.sum(axis=0)
        gamma_sum += gamma.sum(axis=0)
    if not want_grad:
        return total / n, None, None
    grad_U = (2.0 / n) * (U @ second_sum - XtM1)
    grad_W1 = (2.0 / n) * (Xtalpha + sigma**2 * W1 @ (B * cdf2_sum) + sigma * (W1 * inverse) * gamma_sum)
    return total / n, grad_W1, grad_U


def _symmetric(pair_values, diagonal, iu, ju, p):
    full = np.empty(diagonal.shape[:-1] + (p, p))
    full[..., iu, ju] = pair_values
    full[..., ju, iu] = pair_values
    idx = np.arange(p)
    full[..., idx, idx] = diagonal
    return full


def expected_loss(W1, W2, X, sigma, lam):
    """Return the exact noise-averaged loss ``L(W1, W2)`` as a float.

    ``W1`` and ``W2`` have shape ``(d, p)`` and ``X`` has shape ``(n, d)``, with ``sigma >= 0`` and
    ``lam >= 0``. ``W2 = None`` means tied, whose penalty is then ``2 lam ||W1||_F^2``. Raises ValueError for wrong shapes, non-finite entries or
    negative ``sigma`` or ``lam``.
    """
    W1, W2, X, sigma, lam = _validate(W1, W2, X, sigma, lam)
    U = W1 if W2 is None else W2
    data, _, _ = _evaluate(W1, U, X, sigma, want_grad=False)
    return float(data + lam * (np.sum(W1 * W1) + np.sum(U * U)))


def expected_loss_and_grad(W1, W2, X, sigma, lam):
    """Return ``(loss, grad_W1, grad_W2)`` of the exact loss, or ``(loss, grad_W, None)`` when tied.

    Shapes and errors as in ``expected_loss``; gradients have the shape ``(d, p)`` of the weights.
    Where a pre-activation is identically 0 (a zero column of ``W1``, or ``sigma = 0``) its ReLU
    step is taken as 1/2, the central-difference value.
    """
    W1, W2, X, sigma, lam = _validate(W1, W2, X, sigma, lam)
    U = W1 if W2 is None else W2
    data, grad_W1, grad_U = _evaluate(W1, U, X, sigma, want_grad=True)
    loss = float(data + lam * (np.sum(W1 * W1) + np.sum(U * U)))
    grad_W1 = grad_W1 + 2.0 * lam * W1
    grad_U = grad_U + 2.0 * lam * U
    if W2 is None:
        return loss, grad_W1 + grad_U, None
    return loss, grad_W1, grad_U


# ----------------------------------------------------------------------------------------------
# Hessian by torch double-backward


def _t_pdf(t):
    return torch.exp(-0.5 * t * t) / _SQRT_2PI


def _t_correlation_parts(h, k, rho):
    q = (1.0 - rho.abs()) * (1.0 + rho.abs())
    live = q > 0
    r = torch.where(live, torch.sqrt(torch.where(live, q, torch.ones_like(q))), torch.zeros_like(q))
    r_safe = torch.where(live, r, torch.ones_like(r))

    def ratio(num):
        limit = torch.where(num > 0, torch.inf, torch.where(num < 0, -torch.inf, 0.0)).to(num)
        return torch.where(live, num / r_safe, limit)

    return r, r_safe, ratio(h - rho * k), ratio(k - rho * h)


def _to_numpy(*tensors):
    return [t.detach().cpu().numpy() for t in tensors]


class _BivariateCdf(torch.autograd.Function):
    """``Phi2(h, k; rho)`` with ``dh = phi(h) Phi(B)``, ``dk = phi(k) Phi(A)``, ``drho = phi2``."""

    @staticmethod
    def forward(ctx, h, k, rho):
        ctx.save_for_backward(h, k, rho)
        return torch.from_numpy(np.asarray(bivariate_normal_cdf(*_to_numpy(h, k, rho)), dtype=np.float64))

    @staticmethod
    def backward(ctx, grad):
        h, k, rho = ctx.saved_tensors
        r, r_safe, A, B = _t_correlation_parts(h, k, rho)
        density = torch.where(r > 0, _t_pdf(h) * _t_pdf(B) / r_safe, torch.zeros_like(r))
        return grad * _t_pdf(h) * torch.special.ndtr(B), grad * _t_pdf(k) * torch.special.ndtr(A), grad * density


class _CrossSlope(torch.autograd.Function):
    """``dG/dh = E[1(U > -h)(V + k)_+]`` with its own derivatives, exact as ``r -> 0``."""

    @staticmethod
    def forward(ctx, h, k, rho):
        ctx.save_for_backward(h, k, rho)
        slope, cdf2 = _cross_slope(*_to_numpy(h, k, rho))
        ctx.cdf2 = torch.from_numpy(np.asarray(cdf2, dtype=np.float64))
        return torch.from_numpy(np.asarray(slope, dtype=np.float64))

    @staticmethod
    def backward(ctx, grad):
        h, k, rho = ctx.saved_tensors
        r, _, _, B = _t_correlation_parts(h, k, rho)
        # E[(V + k)_+ | U = -h] with V | U = -h ~ N(-rho h, r^2).
        conditional = (k - rho * h) * torch.special.ndtr(B) + r * _t_pdf(B)
        # Phi2 stays differentiable when a graph is being built; otherwise reuse the forward value.
        cdf2 = _BivariateCdf.apply(h, k, rho) if torch.is_grad_enabled() else ctx.cdf2
        return grad * _t_pdf(h) * conditional, grad * cdf2, grad * _t_pdf(h) * torch.special.ndtr(B)


class _CrossMoment(torch.autograd.Function):
    """``G(h, k; rho)`` with ``dG/dh``, ``dG/dk`` and ``dG/drho = Phi2`` as differentiable functions."""

    @staticmethod
    def forward(ctx, h, k, rho):
        ctx.save_for_backward(h, k, rho)
        return torch.from_numpy(np.asarray(relu_cross_moment(*_to_numpy(h, k, rho)), dtype=np.float64))

    @staticmethod
    def backward(ctx, grad):
        h, k, rho = ctx.saved_tensors
        return (
            grad * _CrossSlope.apply(h, k, rho),
            grad * _CrossSlope.apply(k, h, rho),
            grad * _BivariateCdf.apply(h, k, rho),
        )


def _torch_loss(theta, X, d, p, sigma, lam, tied):
    W1 = theta[: d * p].reshape(d, p)
    U = W1 if tied else theta[d * p :].reshape(d, p)
    penalty = lam * (torch.sum(W1 * W1) + torch.sum(U * U))
    if sigma == 0:
        residual = torch.relu(X @ W1) @ U.T - X
        return torch.mean(torch.sum(residual * residual, dim=1)) + penalty
    norms = torch.sqrt(torch.sum(W1 * W1, dim=0))
    s = sigma * norms
    m = X @ W1
    t = m / s
    cdf, pdf = torch.special.ndtr(t), _t_pdf(t)
    mean = m * cdf + s * pdf
    second = (m * m + s * s) * cdf + m * s * pdf
    B = U.T @ U
    c = X @ U
    per_sample = torch.sum(second * torch.diagonal(B), dim=1) - 2.0 * torch.sum(c * mean, dim=1)
    if p > 1:
        iu, ju = (torch.as_tensor(i) for i in np.triu_indices(p, 1))
        rho = torch.clamp(torch.sum(W1[:, iu] * W1[:, ju], dim=0) / (norms[iu] * norms[ju]), -1.0, 1.0)
        G = _CrossMoment.apply(t[:, iu], t[:, ju], rho.expand(X.shape[0], -1))
        per_sample = per_sample + 2.0 * torch.sum(s[iu] * s[ju] * B[iu, ju] * G, dim=1)
    per_sample = per_sample + torch.sum(X * X, dim=1)
    return torch.mean(per_sample) + penalty


def expected_hessian(W1, W2, X, sigma, lam):
    """Return the dense Hessian ``(P, P)`` of ``expected_loss``, for small problems.

    Parameters are ordered ``W1.ravel()`` then ``W2.ravel()`` (C order), or ``W.ravel()`` alone when
    ``W2 = None`` (tied). ``sigma = 0`` gives the Hessian of the noiseless loss where it exists.
    Raises ValueError as ``expected_loss`` does, when ``P > 4000``, and, for ``sigma > 0``, when a
    column of ``W1`` is zero (the loss is not twice differentiable there).
    """
    W1, W2, X, sigma, lam = _validate(W1, W2, X, sigma, lam)
    d, p = W1.shape
    tied = W2 is None
    size = d * p if tied else 2 * d * p
    if size > HESSIAN_LIMIT:
        raise ValueError(
            f"the Hessian would have P = {size} parameters, above the limit of {HESSIAN_LIMIT}; "
            "use a smaller problem or expected_loss_and_grad"
        )
    zero = np.flatnonzero(~np.any(W1 != 0, axis=0))
    if sigma > 0 and zero.size:
        raise ValueError(
            f"column {zero[0]} of W1 is zero, where the expected loss is not twice differentiable; "
            "perturb it or drop the unit"
        )
    params = W1.ravel() if tied else np.concatenate([W1.ravel(), W2.ravel()])
    hessian = np.zeros((size, size))
    # The graph contains many tiny ops between numpy calls. With two torch threads their
    # synchronization cost about ten times the arithmetic (measured), so one thread is used here.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        theta = torch.tensor(params, dtype=torch.float64, requires_grad=True)
        loss = _torch_loss(theta, torch.as_tensor(X), d, p, sigma, lam, tied)
        (grad,) = torch.autograd.grad(loss, theta, create_graph=True)
        if grad.requires_grad:
            eye = torch.eye(size, dtype=torch.float64)
            for start in range(0, size, 256):
                (rows,) = torch.autograd.grad(
                    grad, theta, grad_outputs=eye[start : start + 256], retain_graph=True, is_grads_batched=True
                )
                hessian[start : start + 256] = rows.numpy()
    finally:
        torch.set_num_threads(threads)
    return hessian
