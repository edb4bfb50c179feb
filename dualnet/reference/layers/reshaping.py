"""float64 numpy reference of the reshaping layers, written from the math of
:mod:`dualnet.layers.reshaping` (shape arguments exclude the batch; Flatten follows the input's
layout and moves channels last first for ``channels_first``; bilinear upsampling uses
half-pixel centres clamped to the border).

Each function takes the input, the (empty) weight dict and the layer's config as keywords
(``layer.get_config()`` without name/dtype).
"""

from __future__ import annotations

import numpy as np


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _pair(value) -> tuple[int, int]:
    return (int(value), int(value)) if np.ndim(value) == 0 else (int(value[0]), int(value[1]))


def _pairs(value) -> tuple[tuple[int, int], tuple[int, int]]:
    """``p``, ``(h, w)`` or ``((t, b), (l, r))``."""
    if np.ndim(value) == 0:
        return _pair(value), _pair(value)
    return _pair(value[0]), _pair(value[1])


def _spatial(x: np.ndarray, data_format: str) -> tuple[int, ...]:
    first = data_format == "channels_first"
    return tuple(range(2, x.ndim)) if first else tuple(range(1, x.ndim - 1))


def flatten(x, weights=None, *, data_format="channels_last", **_):
    x = _f64(x)
    if data_format == "channels_first" and x.ndim > 2:
        x = np.moveaxis(x, 1, -1)  # Keras moves the channels last before flattening
    return x.reshape(x.shape[0], -1)


def reshape(x, weights=None, *, target_shape, **_):
    x = _f64(x)
    return x.reshape(x.shape[0], *target_shape)


def permute(x, weights=None, *, dims, **_):
    return np.transpose(_f64(x), (0, *dims))


def repeat_vector(x, weights=None, *, n, **_):
    return np.repeat(_f64(x)[:, None, :], n, axis=1)


def zero_padding1d(x, weights=None, *, padding=1, data_format="channels_last", **_):
    x = _f64(x)
    widths = [(0, 0)] * 3
    widths[_spatial(x, data_format)[0]] = _pair(padding)
    return np.pad(x, widths)


def zero_padding2d(x, weights=None, *, padding=(1, 1), data_format="channels_last", **_):
    x = _f64(x)
    widths = [(0, 0)] * 4
    for axis, pair in zip(_spatial(x, data_format), _pairs(padding), strict=True):
        widths[axis] = pair
    return np.pad(x, widths)


def _crop(x: np.ndarray, axes, pairs) -> np.ndarray:
    index = [slice(None)] * x.ndim
    for axis, (start, end) in zip(axes, pairs, strict=True):
        index[axis] = slice(start, x.shape[axis] - end)
    return x[tuple(index)]


def cropping1d(x, weights=None, *, cropping=(1, 1), **_):
    return _crop(_f64(x), (1,), (_pair(cropping),))


def cropping2d(x, weights=None, *, cropping=((0, 0), (0, 0)), data_format="channels_last", **_):
    x = _f64(x)
    return _crop(x, _spatial(x, data_format), _pairs(cropping))


def up_sampling1d(x, weights=None, *, size=2, **_):
    return np.repeat(_f64(x), size, axis=1)


def _bilinear_matrix(n: int, factor: int) -> np.ndarray:
    """``(n·factor, n)`` weights of half-pixel linear interpolation along one axis."""
    out = np.arange(n * factor)
    coord = np.clip((out + 0.5) / factor - 0.5, 0.0, n - 1)  # half-pixel centre, clamped
    low = np.floor(coord).astype(int)
    high = np.minimum(low + 1, n - 1)
    frac = coord - low
    matrix = np.zeros((n * factor, n))
    np.add.at(matrix, (out, low), 1.0 - frac)
    np.add.at(matrix, (out, high), frac)
    return matrix


def up_sampling2d(x, weights=None, *, size=(2, 2), data_format="channels_last",
                  interpolation="nearest", **_):  # fmt: skip
    x = _f64(x)
    rows, cols = _spatial(x, data_format)
    sh, sw = _pair(size)
    if interpolation == "nearest":
        return np.repeat(np.repeat(x, sh, axis=rows), sw, axis=cols)
    for axis, factor in ((rows, sh), (cols, sw)):
        # y[..., i, ...] = Σ_j M[i, j] x[..., j, ...] along the axis
        x = np.moveaxis(np.tensordot(_bilinear_matrix(x.shape[axis], factor), x, axes=(1, axis)),
                        0, axis)  # fmt: skip
    return x
