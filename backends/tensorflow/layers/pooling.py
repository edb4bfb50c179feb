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
    the module docstring."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        layer = self.layer
        # Averages are taken in float32 and rounded once; 3-D pooling has no float16 CPU kernel
        # (bfloat16 takes the same path: a max is exact in any precision).
        if x.dtype in HALF and (layer.mode == "average" or layer.spatial_dims == 3):
            return float32_math(self._pool, x)
        return self._pool(x)

    def _pool(self, x: tf.Tensor) -> tf.Tensor:
        layer = self.layer
        dims = layer.spatial_dims
        x = to_channels_last(x, layer.data_format)
        pool = tf.nn.max_pool if layer.mode == "max" else tf.nn.avg_pool
        ksize, strides, padding = layer.pool_size, layer.strides, layer.padding.upper()
        if dims == 3 and x.dtype == tf.float64:  # no float64 3-D pooling kernel
            y = _pool_3d_by_axes(pool, x, ksize, strides, padding)
        else:
            y = pool(x, ksize, strides, padding, _CHANNELS_LAST[dims + 2])
        return from_channels_last(y, layer.data_format)


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


def max_pooling1d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.MaxPooling1D:
    return adopt_keras(keras.layers.MaxPooling1D, layer, weights, **_window(layer))


def max_pooling2d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.MaxPooling2D:
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
