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


def multiply(xs, w=None, mask=None, **_):
    """``x₀ · x₁ · ...`` (left to right); with masks :func:`masked_multiply`."""
    if mask is not None:
        return masked_multiply(xs, mask)
    return np.prod(np.stack(_f64(xs)), axis=0)


def average(xs, w=None, **_):
    """The element-wise mean."""
    return np.mean(np.stack(_f64(xs)), axis=0)


def maximum(xs, w=None, mask=None, **_):
    """The element-wise maximum (NaN propagates); with masks :func:`masked_maximum`."""
    if mask is not None:
        return masked_maximum(xs, mask)
    return np.max(np.stack(_f64(xs)), axis=0)


def minimum(xs, w=None, mask=None, **_):
    """The element-wise minimum (NaN propagates); with masks :func:`masked_minimum`."""
    if mask is not None:
        return masked_minimum(xs, mask)
    return np.min(np.stack(_f64(xs)), axis=0)


def concatenate(xs, w=None, *, axis=-1, **_):
    """The inputs joined along ``axis`` (batch axis counted as 0)."""
    return np.concatenate(_f64(xs), axis=axis)


# -- Masks (Note [Masks] in dualnet.layers.base) ---------------------------------------------
# ``mask`` is None or a list with one entry per input: None or a boolean array covering the
# input's leading axes, (batch, steps) for (batch, steps, features).


def _masks(xs, mask):
    return [None] * len(xs) if mask is None else list(mask)


def _expand(m, x):
    """A mask broadcast over the input's remaining (feature) axes."""
    m = np.asarray(m, bool)
    return np.broadcast_to(m.reshape(m.shape + (1,) * (x.ndim - m.ndim)), x.shape)


def _any_mask(xs, mask):
    """Keras's ``Merge.compute_mask``: the OR of the masks, None if any input has none."""
    masks = _masks(xs, mask)
    if any(m is None for m in masks):
        return None
    return np.logical_or.reduce([np.asarray(m, bool) for m in masks])


add_mask = subtract_mask = average_mask = _any_mask
maximum_mask = minimum_mask = multiply_mask = _any_mask


def _extremum(xs, mask, op):
    """Keras's masked maximum/minimum (``Merge._apply_merge_op_and_or_mask``): left to right, a
    masked entry of the next input takes the running value, and a masked running value takes
    the next input's, so masked entries never win; where every input is masked the first
    input's value stays."""
    xs = _f64(xs)
    masks = [None if m is None else _expand(m, x) for m, x in zip(_masks(xs, mask), xs,
                                                                  strict=True)]  # fmt: skip
    out, out_mask = xs[0], masks[0]
    for x, m in zip(xs[1:], masks[1:], strict=True):
        if m is not None:
            x = np.where(m, x, out)
        if out_mask is not None:
            out = np.where(out_mask, out, x)
        out_mask = None if m is None or out_mask is None else out_mask | m
        out = op(out, x)
    return out


def masked_maximum(xs, mask):
    return _extremum(xs, mask, np.maximum)


def masked_minimum(xs, mask):
    return _extremum(xs, mask, np.minimum)


def masked_multiply(xs, mask):
    """Keras's masked product: masked entries count as 1; when every input has a mask, an
    entry masked in all of them is 0."""
    xs = _f64(xs)
    masks = _masks(xs, mask)
    out = np.ones_like(xs[0])
    for x, m in zip(xs, masks, strict=True):
        out = out * (x if m is None else np.where(_expand(m, x), x, 1.0))
    if all(m is not None for m in masks):
        out = np.where(np.logical_or.reduce([_expand(m, x) for m, x in zip(masks, xs,
                                                                           strict=True)]),
                       out, 0.0)  # fmt: skip
    return out


def concatenate_mask(xs, mask=None, *, axis=-1, **_):
    """Keras's ``Concatenate.compute_mask``: each input's mask over its full shape (all True
    for an input without one), concatenated along ``axis``, then any over the last axis; None
    when no input has a mask."""
    masks = _masks(xs, mask)
    if all(m is None for m in masks):
        return None
    full = [np.ones(np.shape(x), bool) if m is None else _expand(m, np.asarray(x))
            for x, m in zip(xs, masks, strict=True)]  # fmt: skip
    return np.any(np.concatenate(full, axis=axis), axis=-1)
