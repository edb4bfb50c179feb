"""float64 numpy reference losses (same names as :mod:`dualnet.losses`).

Each function returns the *per-sample* loss (the class axis or the last axis reduced away);
:func:`reduce` applies a sample weight and a reduction the way :class:`dualnet.losses.Loss`
does. Shapes are assumed valid: validation is the spec's job, not the reference's.

The probability clip bounds ``ε`` and ``1 - ε`` are rounded to ``clip_dtype`` before use, as
the frameworks do when the Python constants meet a tensor: in float32, ``1 - 1e-7`` becomes
0.99999988079, and ``-log(1 - that)`` is 15.942 rather than float64's 16.118. Everything else
is computed in float64.
"""

from __future__ import annotations

import numpy as np

from dualnet.dtypes import numpy_dtype

EPSILON = 1e-7
TORCH_LOG_CLAMP = -100.0


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _bounds(clip_dtype: str) -> tuple[float, float]:
    dt = numpy_dtype(clip_dtype)
    # 1 - ε is formed in float64 (Python) and then rounded, exactly as `clip(x, ε, 1 - ε)` does.
    return float(np.asarray(EPSILON, dt)), float(np.asarray(1.0 - EPSILON, dt))


def _log_sigmoid(x):
    # log σ(x) = -log(1 + e^{-x}) = min(x, 0) - log1p(e^{-|x|}): no overflow for |x| large.
    return np.minimum(x, 0.0) - np.log1p(np.exp(-np.abs(x)))


def _log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    z = x - m
    return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def mean_squared_error(y_true, y_pred):
    return np.mean(np.square(_f64(y_true) - _f64(y_pred)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return np.mean(np.abs(_f64(y_true) - _f64(y_pred)), axis=-1)


def huber(y_true, y_pred, delta=1.0):
    e = np.abs(_f64(y_pred) - _f64(y_true))
    return np.mean(np.where(e <= delta, 0.5 * e * e, delta * e - 0.5 * delta * delta), axis=-1)


def smooth_l1(y_true, y_pred, beta=1.0):
    e = np.abs(_f64(y_pred) - _f64(y_true))
    return np.mean(np.where(e < beta, 0.5 * e * e / beta, e - 0.5 * beta), axis=-1)


def binary_crossentropy(
    y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, clip="keras",
    clip_dtype="float64",
):  # fmt: skip
    t, p = _f64(y_true), _f64(y_pred)
    t = t * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # -[t·log σ(x) + (1-t)·log σ(-x)]
        ce = -(t * _log_sigmoid(p) + (1.0 - t) * _log_sigmoid(-p))
    elif clip == "torch":
        with np.errstate(divide="ignore", invalid="ignore"):  # log(0) = -inf, then clamped
            lp = np.maximum(np.log(p), TORCH_LOG_CLAMP)
            lq = np.maximum(np.log(1.0 - p), TORCH_LOG_CLAMP)
        ce = -(t * lp + (1.0 - t) * lq)
    else:
        lo, hi = _bounds(clip_dtype)
        p = np.clip(p, lo, hi)
        ce = -(t * np.log(p) + (1.0 - t) * np.log(1.0 - p))
    return np.mean(ce, axis=axis)


def categorical_crossentropy(
    y_true, y_pred, from_logits=False, label_smoothing=0.0, axis=-1, clip_dtype="float64"
):
    t, p = _f64(y_true), _f64(y_pred)
    k = p.shape[axis]
    t = t * (1.0 - label_smoothing) + label_smoothing / k
    if from_logits:
        return -np.sum(t * _log_softmax(p, axis), axis=axis)
    lo, hi = _bounds(clip_dtype)
    p = np.clip(p / np.sum(p, axis=axis, keepdims=True), lo, hi)  # normalise, then clip
    return -np.sum(t * np.log(p), axis=axis)


def sparse_categorical_crossentropy(
    y_true, y_pred, from_logits=False, ignore_class=None, axis=-1, clip_dtype="float64"
):
    labels = np.asarray(y_true).astype(np.int64)
    p = np.moveaxis(_f64(y_pred), axis, -1)
    if labels.ndim == p.ndim:  # (..., 1) labels
        labels = labels[..., 0]
    valid = np.ones(labels.shape, bool) if ignore_class is None else labels != ignore_class
    safe = np.where(valid, labels, 0)
    if from_logits:
        logp = _log_softmax(p, -1)
    else:
        lo, hi = _bounds(clip_dtype)
        # clip, log, then a log-softmax: -log(clip(p)_y / Σ clip(p)); no normalisation first.
        logp = _log_softmax(np.log(np.clip(p, lo, hi)), -1)
    ce = -np.take_along_axis(logp, safe[..., None], axis=-1)[..., 0]
    return np.where(valid, ce, 0.0)


def reduce(values, sample_weight=None, reduction="sum_over_batch_size", count=None):
    """Weight the per-sample ``values`` and reduce them.

    ``sample_weight`` is broadcast against the leading axes of ``values``. ``count`` is the
    divisor of ``"sum_over_batch_size"``/``"mean"``: the number of elements of ``values`` by
    default (zero-weight samples included), the number of non-ignored labels with
    ``ignore_class``; a zero count gives 0 (Keras's ``divide_no_nan``).
    """
    v = _f64(values)
    if sample_weight is not None:
        w = _f64(sample_weight)
        w = w.reshape(w.shape + (1,) * (v.ndim - w.ndim)) if w.ndim < v.ndim else w
        v = v * w.reshape(w.shape[: v.ndim]) if w.ndim > v.ndim else v * w
    if reduction == "none":
        return v
    total = np.sum(v)
    if reduction == "sum":
        return total
    n = v.size if count is None else count
    return total / n if n else np.float64(0.0)
