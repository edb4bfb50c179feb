"""float64 numpy reference of the merging layers: each takes the list of inputs."""

from __future__ import annotations

import numpy as np


def _f64(xs):
    return [np.asarray(x, dtype=np.float64) for x in xs]


def add(xs, w=None, **_):
    """``x₀ + x₁ + ...``."""
    return np.sum(np.stack(_f64(xs)), axis=0)


def subtract(xs, w=None, **_):
    """``x₀ - x₁``."""
    a, b = _f64(xs)
    return a - b


def multiply(xs, w=None, **_):
    """``x₀ · x₁ · ...``."""
    return np.prod(np.stack(_f64(xs)), axis=0)


def average(xs, w=None, **_):
    """The element-wise mean."""
    return np.mean(np.stack(_f64(xs)), axis=0)


def maximum(xs, w=None, **_):
    """The element-wise maximum (NaN propagates)."""
    return np.max(np.stack(_f64(xs)), axis=0)


def minimum(xs, w=None, **_):
    """The element-wise minimum (NaN propagates)."""
    return np.min(np.stack(_f64(xs)), axis=0)


def concatenate(xs, w=None, *, axis=-1, **_):
    """The inputs joined along ``axis`` (batch axis counted as 0)."""
    return np.concatenate(_f64(xs), axis=axis)
