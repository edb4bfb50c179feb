"""Pooling layers on tf.keras (builders named like the neutral classes).

Keras's own MaxPooling1D/2D and global pooling layers compute exactly the documented math in
every dtype (TensorFlow's ``"same"`` rule is the documented one; Keras's mean runs half inputs
in float32) and are adopted. The others are small custom layers over the same native kernels
(``tf.nn.max_pool`` / ``tf.nn.avg_pool``), because:

* average pooling: TensorFlow's float16 AvgPool is far from the float32 mean rounded once (on
  a 2x5x6x2 map of values ~±100, 17 of the 36 outputs of a 3x3 "same" mean differed, by up to
  71 ulps, as a sum accumulated in float16 would); dualnet averages in float32 and rounds once
  on both backends;
* 3-D pooling: the CPU has no float16 MaxPool3D/AvgPool3D kernel and no float64 one at all
  (MaxPool3D refuses double, AvgPool3D has no CPU double kernel); float16 runs in float32 (a max
  is exact in any precision) and float64 as a 2-D pool over (H, W) followed by a pool over D.

Explicit (torch-style) padding has no native counterpart: the input is padded (−inf for a max,
zeros for a mean) and pooled ``"VALID"``, a mean divided by torch's divisor
(:meth:`WindowPooling._explicit`); Keras's own max pooling layers are adopted for
``"valid"``/``"same"`` only.

TensorFlow's CPU pooling takes channels last only, so channels_first inputs are transposed
around the kernel, as Keras does. The missing kernels are recorded with probes in
``dualnet/parity/divergences.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import (
    HALF,
    Layer,
    adopt_keras,
    float32_math,
    from_channels_last,
    to_channels_last,
    upcast,
)

from dualnet.layers._spatial import padded_length

# Spelled out: with data_format=None, tf.nn.max_pool/avg_pool on 5-D inputs build ops whose
# gradient fails (MaxPool3DGrad reads a missing data_format attribute: "'NoneType' object has
# no attribute 'decode'"). Keras passes it too.
_CHANNELS_LAST = {3: "NWC", 4: "NHWC", 5: "NDHWC"}


def _pool_3d_by_axes(pool: Callable[..., tf.Tensor], x: tf.Tensor, ksize: Sequence[int],
                     strides: Sequence[int], padding: str) -> tf.Tensor:  # fmt: skip
    """A 3-D pool as a 2-D pool over (H, W), with D folded into the batch, then a pool over D.

    A window is the product of one window per axis, so its max is the max over D of the (H, W)
    maxima, and its mean over real positions ``Σ / (c_d·c_h·c_w)`` is the mean over the real D
    positions of the (H, W) means (each divided by the same ``c_h·c_w``)."""
    shape = tf.shape(x)
    n, d, c = shape[0], shape[1], shape[4]
    planes = pool(tf.reshape(x, tf.stack([n * d, shape[2], shape[3], c])), ksize[1:],
                  strides[1:], padding, "NHWC")  # fmt: skip
    h, w = tf.shape(planes)[1], tf.shape(planes)[2]
    columns = tf.reshape(planes, tf.stack([n, d, h * w, c]))
    # Window (k_d, 1) and stride (s_d, 1): the (H·W) axis is left alone (no padding for k = 1).
    y = pool(columns, (ksize[0], 1), (strides[0], 1), padding, "NHWC")
    return tf.reshape(y, tf.stack([n, tf.shape(y)[1], h, w, c]))


class WindowPooling(Layer):
    """``tf.nn.max_pool`` / ``tf.nn.avg_pool`` (channels last), with the dtype fixes listed in
    the module docstring, and torch's explicit padding (:meth:`_explicit`)."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        layer = self.layer
        # Averages are taken in float32 and rounded once; 3-D pooling has no float16 CPU kernel
        # (bfloat16 takes the same path: a max is exact in any precision).
        if x.dtype in HALF and (layer.mode == "average" or layer.spatial_dims == 3):
            return float32_math(self._pool, x)
        return self._pool(x)

    def _pool(self, x: tf.Tensor) -> tf.Tensor:
        layer = self.layer
        x = to_channels_last(x, layer.data_format)
        if layer.explicit_padding is not None:
            y = self._explicit(x)
        else:
            y = self._native(x, layer.padding.upper())
        return from_channels_last(y, layer.data_format)

    def _native(self, x: tf.Tensor, padding: str, mode: str | None = None) -> tf.Tensor:
        """The native pool of channels-last ``x`` (``mode``: the layer's, or "average")."""
        layer = self.layer
        dims = layer.spatial_dims
        pool = tf.nn.max_pool if (mode or layer.mode) == "max" else tf.nn.avg_pool
        ksize, strides = layer.pool_size, layer.strides
        if dims == 3 and x.dtype == tf.float64:  # no float64 3-D pooling kernel
            return _pool_3d_by_axes(pool, x, ksize, strides, padding)
        return pool(x, ksize, strides, padding, _CHANNELS_LAST[dims + 2])

    def _explicit(self, x: tf.Tensor) -> tf.Tensor:
        """torch's padding: pad, pool ``"VALID"``.

        Max: −inf padding, which never wins (every window holds a real position: it starts
        before ``n`` and ends after ``0``, as ``before <= k // 2``). Mean: zero padding, and
        the divisor is the same ``"VALID"`` mean of a ones-mask that is 1 on the positions
        torch counts (the explicit padding too with ``count_include_pad``; never the
        ``ceil_mode`` overhang) and 0 elsewhere: ``y = avg(x₀)/avg(mask) = (S/k)/(c/k)``, torch's
        ``S/c`` within three roundings (``S/k``, ``c/k`` and the quotient; exact where ``c =
        k``, where the mask's mean is exactly 1). The mask pools with ``x`` symbolically, so an
        unknown (traced) size needs nothing more."""
        layer = self.layer
        sizes = [_size(x, axis) for axis in range(1, layer.spatial_dims + 1)]
        lengths = _window_lengths(layer, sizes)
        if layer.mode == "max":
            return self._native(_pad_to(x, layer, lengths, -np.inf, -np.inf), "VALID")
        ones = tf.ones(tf.concat([[1], tf.shape(x)[1:-1], [1]], axis=0), x.dtype)
        inside = 1.0 if layer.count_include_pad else 0.0  # the explicit padding counts or not
        mask = self._native(_pad_to(ones, layer, lengths, inside, 0.0), "VALID", "average")
        total = self._native(_pad_to(x, layer, lengths, 0.0, 0.0), "VALID")
        return total / mask


def _window_lengths(layer: Any, sizes: Sequence[Any]) -> list[Any]:
    """Per spatial axis, the padded length ``(out − 1)·s + k`` whose ``"VALID"`` pool has the
    layer's windows: from the layer's own rule for static sizes, in tensor arithmetic (the same
    rule, :func:`dualnet.layers._spatial.padded_length`) for a traced unknown size."""
    out = []
    for i, n in enumerate(sizes):
        k, s, (before, after) = layer.pool_size[i], layer.strides[i], layer.explicit_padding[i]
        if isinstance(n, int):
            out.append((padded_length(n, k, s, before, after, layer.ceil_mode) - 1) * s + k)
            continue
        span = n + before + after - k
        count = (-(-span // s) if layer.ceil_mode else span // s) + 1
        if layer.ceil_mode:  # torch's rule: no window starting in the right padding
            count -= tf.cast((count - 1) * s >= n + before, count.dtype)
        out.append((count - 1) * s + k)
    return out


def _pad_to(x: tf.Tensor, layer: Any, lengths: Sequence[Any], inside: float,
            beyond: float) -> tf.Tensor:  # fmt: skip
    """Channels-last ``x`` padded by the layer's explicit amounts with ``inside``, then up to
    ``lengths`` with ``beyond`` (the ``ceil_mode`` overhang) or cut to them (trailing positions
    in no window)."""
    pads = [[0, 0], *([before, after] for before, after in layer.explicit_padding), [0, 0]]
    x = tf.pad(x, pads, constant_values=tf.cast(inside, x.dtype))
    extra = [tf.maximum(length - _size(x, axis), 0) if not isinstance(length, int)
             else max(length - x.shape[axis], 0)
             for axis, length in enumerate(lengths, start=1)]  # fmt: skip
    x = tf.pad(x, [[0, 0], *([0, e] for e in extra), [0, 0]],
               constant_values=tf.cast(beyond, x.dtype))  # fmt: skip
    return x[(slice(None), *(slice(0, length) for length in lengths), slice(None))]


def _size(x: tf.Tensor, axis: int) -> Any:
    """A static size where known, else the symbolic one (a traced function's None)."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


class GlobalAveragePooling1D(keras.layers.GlobalAveragePooling1D):
    """Keras's own layer; with a mask the mean over the valid steps in float32 for half inputs
    (rounded once), 0 for a row without any where Keras divides 0 by 0 (NaN)."""

    def call(self, inputs: tf.Tensor, mask: Any = None) -> tf.Tensor:
        if mask is None:
            return super().call(inputs)
        first = self.data_format == "channels_first"
        steps = 2 if first else 1
        keep = tf.expand_dims(tf.cast(mask, tf.bool), 1 if first else 2)
        v = upcast(inputs)
        total = tf.reduce_sum(tf.where(keep, v, tf.zeros((), v.dtype)), axis=steps,
                              keepdims=self.keepdims)  # fmt: skip
        # The count of valid steps, at least 1: a fully masked row is 0/1 = 0.
        count = tf.maximum(tf.reduce_sum(tf.cast(keep, v.dtype), axis=steps,
                                         keepdims=self.keepdims), tf.ones((), v.dtype))  # fmt: skip
        return tf.cast(total / count, inputs.dtype)


def _window(layer: Any) -> dict[str, Any]:
    return {"pool_size": layer.pool_size, "strides": layer.strides, "padding": layer.padding,
            "data_format": layer.data_format}  # fmt: skip


def _global(layer: Any) -> dict[str, Any]:
    return {"data_format": layer.data_format, "keepdims": layer.keepdims}


def max_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    if layer.explicit_padding is not None:  # Keras's layer takes "valid"/"same" only
        return WindowPooling(layer, weights)
    return adopt_keras(keras.layers.MaxPooling1D, layer, weights, **_window(layer))


def max_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    if layer.explicit_padding is not None:  # Keras's layer takes "valid"/"same" only
        return WindowPooling(layer, weights)
    return adopt_keras(keras.layers.MaxPooling2D, layer, weights, **_window(layer))


def max_pooling3d(layer: Any, weights: Sequence[np.ndarray]) -> WindowPooling:
    return WindowPooling(layer, weights)


def average_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> WindowPooling:
    return WindowPooling(layer, weights)


def average_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> WindowPooling:
    return WindowPooling(layer, weights)


def average_pooling3d(layer: Any, weights: Sequence[np.ndarray]) -> WindowPooling:
    return WindowPooling(layer, weights)


def global_average_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    return adopt_keras(GlobalAveragePooling1D, layer, weights, **_global(layer))


def global_average_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    return adopt_keras(keras.layers.GlobalAveragePooling2D, layer, weights, **_global(layer))


def global_max_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    return adopt_keras(keras.layers.GlobalMaxPooling1D, layer, weights, **_global(layer))


def global_max_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    return adopt_keras(keras.layers.GlobalMaxPooling2D, layer, weights, **_global(layer))
