"""float64 numpy reference of the activation layers (the functions are
:mod:`dualnet.reference.activations`)."""

from __future__ import annotations

import numpy as np

from dualnet.reference import activations as _activations


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def re_lu(x, w=None, *, max_value=None, negative_slope=0.0, threshold=0.0, **_):
    """``s·(x - θ)`` for ``x <= θ``, else ``min(x, m)``."""
    x = _f64(x)
    # NaN is not <= θ nor >= m: it falls through to x, as in both backends.
    upper = x if max_value is None else np.where(x >= max_value, max_value, x)
    # Exactly 0 below θ when the slope is 0 (0·(x - θ) would be NaN at x = -inf).
    below = 0.0 if negative_slope == 0.0 else negative_slope * (x - threshold)
    return np.where(x <= threshold, below, upper)


def leaky_re_lu(x, w=None, *, negative_slope=0.3, **_):
    """``x`` for ``x > 0``, else ``negative_slope·x``."""
    return _activations.leaky_relu(x, negative_slope)


def p_re_lu(x, w, **_):
    """``x`` for ``x > 0``, else ``alpha·x`` (alpha broadcast over the batch and shared axes)."""
    x = _f64(x)
    alpha = _f64(w["alpha"])
    return np.where(x > 0, x, alpha * x)


def elu(x, w=None, *, alpha=1.0, **_):
    """``x`` for ``x > 0``, else ``alpha·(eˣ - 1)``."""
    return _activations.elu(x, alpha)


def softmax(x, w=None, *, axis=-1, mask=None, **_):
    """Softmax over ``axis`` (an int or several axes at once); with a mask (the input's leading
    axes) over the valid entries only, masked entries and slices without a valid one 0."""
    x = _f64(x)
    axes = tuple(axis) if isinstance(axis, list | tuple) else axis
    if mask is not None:
        m = np.asarray(mask, bool)
        keep = np.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)), x.shape)
        valid = np.where(keep, x, -np.inf)
        # A slice without a valid entry is -inf - -inf = NaN here, and 0 in the end.
        with np.errstate(invalid="ignore", divide="ignore"):
            z = np.exp(valid - np.max(valid, axis=axes, keepdims=True))
            total = np.sum(np.where(keep, z, 0.0), axis=axes, keepdims=True)
            return np.where(keep, z / total, 0.0)
    z = np.exp(x - np.max(x, axis=axes, keepdims=True))
    return z / np.sum(z, axis=axes, keepdims=True)
