"""float64 numpy reference of the regularization layers.

The random draws come from the neutral functions that define them
(:func:`dualnet.layers.regularization.keep_mask` and ``standard_normal``, Note [Portable noise]);
everything else (noise shapes, scaling, the arithmetic) is written here from the math. ``call``
is the index of the training call (0 for a fresh layer).
"""

from __future__ import annotations

import math

import numpy as np

from dualnet.layers.regularization import keep_mask, standard_normal


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _dropout(x, rate, mask_shape, seed, call):
    x = _f64(x)
    if rate >= 1.0:  # everything dropped (the mask would be all False)
        return np.zeros_like(x)
    keep = keep_mask(seed, call, mask_shape, rate)
    # A dropped element is exactly 0 (not x·0, which is NaN for inf).
    return np.where(keep, x / (1.0 - rate), 0.0)


def dropout(x, w=None, *, rate, noise_shape=None, seed, training=False, call=0, **_):
    """``where(keep, x/(1 - rate), 0)`` in training mode, ``x`` otherwise."""
    if not training:
        return _f64(x)
    shape = np.shape(x)
    if noise_shape is not None:
        shape = tuple(s if n is None else n for n, s in zip(noise_shape, shape, strict=True))
    return _dropout(x, rate, shape, seed, call)


def spatial_dropout1d(x, w=None, *, rate, seed, training=False, call=0, **_):
    """Dropout with one draw per (sample, channel) of a ``(batch, steps, channels)`` input."""
    if not training:
        return _f64(x)
    b, _, c = np.shape(x)
    return _dropout(x, rate, (b, 1, c), seed, call)


def spatial_dropout2d(x, w=None, *, rate, data_format="channels_last", seed, training=False,
                      call=0, **_):  # fmt: skip
    """Dropout with one draw per (sample, channel) of an image batch."""
    if not training:
        return _f64(x)
    shape = np.shape(x)
    if data_format == "channels_last":
        mask_shape = (shape[0], 1, 1, shape[3])
    else:
        mask_shape = (shape[0], shape[1], 1, 1)
    return _dropout(x, rate, mask_shape, seed, call)


def gaussian_noise(x, w=None, *, stddev, seed, training=False, call=0, **_):
    """``x + stddev·n`` in training mode, ``n ~ N(0, 1)``."""
    x = _f64(x)
    if not training or stddev == 0.0:
        return x
    return x + stddev * standard_normal(seed, call, x.shape)


def gaussian_dropout(x, w=None, *, rate, seed, training=False, call=0, **_):
    """``x·(1 + σ·n)`` in training mode, ``σ = √(rate/(1 - rate))``."""
    x = _f64(x)
    if not training or rate == 0.0:
        return x
    sigma = math.sqrt(rate / (1.0 - rate))
    return x * (1.0 + sigma * standard_normal(seed, call, x.shape))
