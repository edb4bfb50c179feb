"""float64 numpy reference of the pooling layers, written from the math of
:mod:`dualnet.layers.pooling`: windows of real positions only, TensorFlow's ``"same"`` rule
(``out = ceil(n / s)``, ``total = max(0, (out − 1)·s + k − n)``, ``total // 2`` before and the
rest after).

Each function takes the input, the (empty) weight dict and the layer's config as keywords
(``layer.get_config()`` without name/dtype); Python loops run over window taps only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def _tuple(value, n: int) -> tuple[int, ...]:
    return (int(value),) * n if np.ndim(value) == 0 else tuple(int(v) for v in value)


def _to_channels_last(x: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _from_channels_last(y: np.ndarray, data_format: str) -> np.ndarray:
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


def _axis_plan(n: int, k: int, s: int, padding: str) -> tuple[int, int, int]:
    """``(outputs, pad before, pad after)`` of one axis; the padding only makes every window
    addressable, its positions are never real."""
    if padding == "same":
        out = -(-n // s)
        before = max(0, (out - 1) * s + k - n) // 2
    else:
        out, before = (n - k) // s + 1, 0
    after = max(0, (out - 1) * s + k - n - before)
    return out, before, after


def _pool(x, pool_size, strides, padding: str, data_format: str, mode: str) -> np.ndarray:
    x = _to_channels_last(np.asarray(x, dtype=np.float64), data_format)
    spatial = x.shape[1:-1]
    nd = len(spatial)
    k = _tuple(pool_size, nd)
    s = k if strides is None else _tuple(strides, nd)
    plan = [_axis_plan(n, kk, ss, padding) for n, kk, ss in zip(spatial, k, s, strict=True)]
    pads = [(before, after) for _, before, after in plan]
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    real = np.pad(np.ones(spatial, dtype=bool), pads)  # False on padded positions
    out_shape = (x.shape[0], *(o for o, _, _ in plan), x.shape[-1])
    best = np.full(out_shape, -np.inf)
    total = np.zeros(out_shape)
    count = np.zeros(out_shape[1:-1])
    for taps in itertools.product(*(range(kk) for kk in k)):
        window = tuple(slice(j, j + (o - 1) * ss + 1, ss)
                       for j, (o, _, _), ss in zip(taps, plan, s, strict=True))  # fmt: skip
        values = xp[(slice(None), *window, slice(None))]
        is_real = real[window]
        if mode == "max":
            best = np.maximum(best, np.where(is_real[..., None], values, -np.inf))
        else:
            total += np.where(is_real[..., None], values, 0.0)
            count += is_real
    y = best if mode == "max" else total / count[..., None]
    return _from_channels_last(y, data_format)


def max_pooling1d(x, weights=None, *, pool_size=2, strides=None, padding="valid",
                  data_format="channels_last", **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "max")


def max_pooling2d(x, weights=None, *, pool_size=(2, 2), strides=None, padding="valid",
                  data_format="channels_last", **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "max")


def max_pooling3d(x, weights=None, *, pool_size=(2, 2, 2), strides=None, padding="valid",
                  data_format="channels_last", **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "max")


def average_pooling1d(x, weights=None, *, pool_size, strides=None, padding="valid",
                      data_format="channels_last", **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "average")


def average_pooling2d(x, weights=None, *, pool_size, strides=None, padding="valid",
                      data_format="channels_last", **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "average")


def average_pooling3d(x, weights=None, *, pool_size, strides=None, padding="valid",
                      data_format="channels_last", **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "average")


def _global(x, data_format: str, keepdims: bool, reduce) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    axes: Sequence[int] = (
        tuple(range(2, x.ndim)) if data_format == "channels_first" else tuple(range(1, x.ndim - 1))
    )
    return reduce(x, axis=tuple(axes), keepdims=keepdims)


def global_average_pooling1d(x, weights=None, *, data_format="channels_last", keepdims=False,
                             mask=None, **_):  # fmt: skip
    """The mean over the steps; with a ``(batch, steps)`` mask the mean over the valid steps,
    ``Σ_t m·x / max(Σ_t m, 1)``: a fully masked row gives 0 (Keras: 0/0 = NaN)."""
    if mask is None:
        return _global(x, data_format, keepdims, np.mean)
    x = np.asarray(x, dtype=np.float64)
    axis = 2 if data_format == "channels_first" else 1
    m = np.expand_dims(np.asarray(mask, bool), 1 if data_format == "channels_first" else 2)
    total = np.where(m, x, 0.0).sum(axis=axis, keepdims=keepdims)
    count = np.maximum(m.sum(axis=axis, keepdims=keepdims), 1)
    return total / count


def global_average_pooling1d_mask(x, mask=None, **_):
    """The mask is consumed: the output has none."""
    return None


def global_average_pooling2d(x, weights=None, *, data_format="channels_last", keepdims=False,
                             **_):  # fmt: skip
    return _global(x, data_format, keepdims, np.mean)


def global_max_pooling1d(x, weights=None, *, data_format="channels_last", keepdims=False, **_):
    return _global(x, data_format, keepdims, np.max)


def global_max_pooling2d(x, weights=None, *, data_format="channels_last", keepdims=False, **_):
    return _global(x, data_format, keepdims, np.max)
