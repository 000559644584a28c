"""Input validation shared by the public functions.

Each helper raises ``ValueError`` naming the argument, the offending value and the fix, so that
bad input never surfaces as a traceback from deep inside numpy or torch.
"""

import numbers

import numpy as np


def points(X, name="X"):
    """Return ``X`` as a finite float64 array of shape ``(n, d)`` with ``n, d >= 1``."""
    array = np.asarray(X, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (n, d) with samples as rows, "
            f"got an array of shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must contain at least one sample and one feature, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries; remove or impute them first")
    return array


def weights(W, d, name="W"):
    """Return ``W`` as a finite float64 array of shape ``(d, p)``."""
    array = np.asarray(W, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != d:
        raise ValueError(
            f"{name} must have shape (d, p) = ({d}, p) to match the data dimension d = {d}, "
            f"got shape {array.shape}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite entries")
    return array


def real(value, name):
    """Return ``value`` as a finite float, rejecting booleans, arrays and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def positive(value, name):
    """Return ``value`` as a float, raising unless it is finite and strictly positive."""
    value = real(value, name)
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


def nonnegative(value, name):
    """Return ``value`` as a float, raising unless it is finite and at least zero."""
    value = real(value, name)
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return value


def count(value, name, minimum=1):
    """Return ``value`` as an int, raising unless it is an integer of at least ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def labels(values, n, name="labels"):
    """Return integer cluster labels of length ``n`` as a numpy array."""
    array = np.asarray(values)
    if array.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one label per sample, got shape {array.shape}")
    return array
