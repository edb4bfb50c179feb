"""float64 numpy reference of the pooling layers, written from the math of
:mod:`dualnet.layers.pooling`: windows of real positions only, TensorFlow's ``"same"`` rule
(``out = ceil(n / s)``, ``total = max(0, (out − 1)·s + k − n)``, ``total // 2`` before and the
rest after), and torch's explicit padding (``ceil_mode``, ``count_include_pad``), re-derived
here by enumerating the windows.

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


def _explicit(padding, nd: int):
    """Explicit amounts as ``(before, after)`` per axis (an int pads every side, an int per
    axis both sides of it, pairs as given; the config's ``[[before, after], ...]``), or None
    for ``"valid"``/``"same"``."""
    if isinstance(padding, str):
        return None
    if np.ndim(padding) == 0:
        padding = [padding] * nd
    return [(int(p), int(p)) if np.ndim(p) == 0 else (int(p[0]), int(p[1])) for p in padding]


def _axis_plan(n: int, k: int, s: int, padding, ceil_mode: bool,
               count_include_pad: bool) -> tuple[int, int, int, int, int]:  # fmt: skip
    """``(outputs, pad before, pad after, counted from, counted to)`` of one axis: the padding
    makes every window addressable, and a mean divides by the window's positions in
    ``[counted from, counted to)`` (padded coordinates).

    ``"same"``/``"valid"``: TensorFlow's windows, real positions counted. Explicit ``(b, a)``
    (torch's): window ``o`` starts at ``o·s − b``; without ``ceil_mode`` the windows that fit in
    ``[−b, n + a)``; with it also a last partial one, as long as it starts at most ``s − 1``
    past where the next full window would have to start (``start + k <= n + a + s − 1``) and
    inside the input (``start < n``); counted: ``[−b, n + a)`` with ``count_include_pad``, the
    input only without."""
    if isinstance(padding, tuple):
        b, a = padding
        out = 0
        while True:
            start = out * s - b
            fits = start + k <= n + a
            partial = ceil_mode and start + k <= n + a + s - 1 and start < n
            if not (fits or partial):
                break
            out += 1
        after = max(0, (out - 1) * s + k - n - b)
        if count_include_pad:
            return out, b, after, 0, b + n + a
        return out, b, after, b, b + n
    if padding == "same":
        out = -(-n // s)
        before = max(0, (out - 1) * s + k - n) // 2
    else:
        out, before = (n - k) // s + 1, 0
    after = max(0, (out - 1) * s + k - n - before)
    return out, before, after, before, before + n


def _pool(x, pool_size, strides, padding, data_format: str, mode: str, ceil_mode: bool = False,
          count_include_pad: bool = True) -> np.ndarray:  # fmt: skip
    x = _to_channels_last(np.asarray(x, dtype=np.float64), data_format)
    spatial = x.shape[1:-1]
    nd = len(spatial)
    k = _tuple(pool_size, nd)
    s = k if strides is None else _tuple(strides, nd)
    explicit = _explicit(padding, nd)
    modes = [padding] * nd if explicit is None else explicit
    plan = [_axis_plan(n, kk, ss, m, ceil_mode, count_include_pad)
            for n, kk, ss, m in zip(spatial, k, s, modes, strict=True)]  # fmt: skip
    pads = [(before, after) for _, before, after, _, _ in plan]
    xp = np.pad(x, [(0, 0), *pads, (0, 0)])
    real = np.pad(np.ones(spatial, dtype=bool), pads)  # False on padded positions
    counted = np.ones(real.shape, dtype=bool)  # the positions a mean's divisor counts
    for axis, (_, _, _, lo, hi) in enumerate(plan):
        index = np.arange(real.shape[axis]).reshape([-1 if a == axis else 1 for a in range(nd)])
        counted &= (index >= lo) & (index < hi)
    out_shape = (x.shape[0], *(p[0] for p in plan), x.shape[-1])
    best = np.full(out_shape, -np.inf)
    total = np.zeros(out_shape)
    count = np.zeros(out_shape[1:-1])
    for taps in itertools.product(*(range(kk) for kk in k)):
        window = tuple(slice(j, j + (p[0] - 1) * ss + 1, ss)
                       for j, p, ss in zip(taps, plan, s, strict=True))  # fmt: skip
        values = xp[(slice(None), *window, slice(None))]
        is_real = real[window]
        if mode == "max":  # padding never wins: only real positions compete
            best = np.maximum(best, np.where(is_real[..., None], values, -np.inf))
        else:  # padded positions add 0; the divisor counts what `counted` says
            total += np.where(is_real[..., None], values, 0.0)
            count += counted[window]
    y = best if mode == "max" else total / count[..., None]
    return _from_channels_last(y, data_format)


def max_pooling1d(x, weights=None, *, pool_size=2, strides=None, padding="valid",
                  data_format="channels_last", ceil_mode=False, **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "max", ceil_mode)


def max_pooling2d(x, weights=None, *, pool_size=(2, 2), strides=None, padding="valid",
                  data_format="channels_last", ceil_mode=False, **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "max", ceil_mode)


def max_pooling3d(x, weights=None, *, pool_size=(2, 2, 2), strides=None, padding="valid",
                  data_format="channels_last", ceil_mode=False, **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "max", ceil_mode)


def average_pooling1d(x, weights=None, *, pool_size, strides=None, padding="valid",
                      data_format="channels_last", ceil_mode=False, count_include_pad=True,
                      **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "average", ceil_mode,
                 count_include_pad)  # fmt: skip


def average_pooling2d(x, weights=None, *, pool_size, strides=None, padding="valid",
                      data_format="channels_last", ceil_mode=False, count_include_pad=True,
                      **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "average", ceil_mode,
                 count_include_pad)  # fmt: skip


def average_pooling3d(x, weights=None, *, pool_size, strides=None, padding="valid",
                      data_format="channels_last", ceil_mode=False, count_include_pad=True,
                      **_):  # fmt: skip
    return _pool(x, pool_size, strides, padding, data_format, "average", ceil_mode,
                 count_include_pad)  # fmt: skip


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
