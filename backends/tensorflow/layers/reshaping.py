"""Reshaping layers on tf.keras (builders named like the neutral classes).

Keras's own layers compute exactly the documented math (they are copies, pads, slices and
repeats) and are adopted, except bilinear upsampling: Keras resizes with TensorFlow's
``ResizeBilinear`` kernel, which computes in float32 whatever the input dtype (a float64 input
comes back rounded to float32, ~2e-7 from the float64 result). dualnet keeps that fused kernel
for float32 (and for float16/bfloat16, computed in float32 and rounded once) and interpolates
float64 inputs with float64 ops.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, adopt


def _adopt(native: keras.layers.Layer, layer: Any, weights: Sequence[np.ndarray]) -> Any:
    return adopt(native, layer, weights, layer.input_shape)


def _common(layer: Any) -> dict[str, Any]:
    return {"dtype": layer.dtype, "name": layer.name}


def _lerp_axis(x: tf.Tensor, axis: int, factor: int) -> tf.Tensor:
    """Half-pixel linear interpolation along ``axis`` (enlarged ``factor`` times), in x's dtype,
    with TensorFlow's own formulas: source ``c = (i + ½)/factor − ½``, rows ``max(floor(c), 0)``
    and ``min(ceil(c), n − 1)``, result ``low + (high − low)·(c − floor(c))``."""
    n = tf.shape(x)[axis]
    coord = (tf.cast(tf.range(n * factor), x.dtype) + 0.5) / factor - 0.5
    floor = tf.floor(coord)
    low = tf.cast(tf.maximum(floor, 0.0), tf.int32)
    high = tf.minimum(tf.cast(tf.math.ceil(coord), tf.int32), n - 1)
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    frac = tf.reshape(coord - floor, shape)
    below, above = tf.gather(x, low, axis=axis), tf.gather(x, high, axis=axis)
    return below + (above - below) * frac


class BilinearUpSampling(Layer):
    """UpSampling2D(interpolation="bilinear"): TensorFlow's resize kernel, except in float64."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        layer = self.layer
        channels_first = layer.data_format == "channels_first"
        if channels_first:
            x = tf.transpose(x, (0, 2, 3, 1))
        sh, sw = layer.size
        if x.dtype == tf.float64:
            # ResizeBilinear would round to float32: interpolate columns then rows in float64,
            # in the kernel's order (its lerps run along the width first).
            y = _lerp_axis(_lerp_axis(x, 2, sw), 1, sh)
        else:
            size = tf.shape(x)[1:3] * tf.constant([sh, sw])
            # antialias is irrelevant when enlarging; half inputs come back as float32: cast once.
            y = tf.cast(tf.image.resize(x, size, method="bilinear"), x.dtype)
        return tf.transpose(y, (0, 3, 1, 2)) if channels_first else y


def flatten(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Flatten:
    return _adopt(keras.layers.Flatten(data_format=layer.data_format, **_common(layer)), layer,
                  weights)  # fmt: skip


def reshape(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Reshape:
    return _adopt(keras.layers.Reshape(layer.target_shape, **_common(layer)), layer, weights)


def permute(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Permute:
    return _adopt(keras.layers.Permute(layer.dims, **_common(layer)), layer, weights)


def repeat_vector(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.RepeatVector:
    return _adopt(keras.layers.RepeatVector(layer.n, **_common(layer)), layer, weights)


def zero_padding1d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.ZeroPadding1D:
    native = keras.layers.ZeroPadding1D(layer.padding, data_format=layer.data_format,
                                        **_common(layer))  # fmt: skip
    return _adopt(native, layer, weights)


def zero_padding2d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.ZeroPadding2D:
    native = keras.layers.ZeroPadding2D(layer.padding, data_format=layer.data_format,
                                        **_common(layer))  # fmt: skip
    return _adopt(native, layer, weights)


def cropping1d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Cropping1D:
    return _adopt(keras.layers.Cropping1D(layer.cropping, **_common(layer)), layer, weights)


def cropping2d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Cropping2D:
    native = keras.layers.Cropping2D(layer.cropping, data_format=layer.data_format,
                                     **_common(layer))  # fmt: skip
    return _adopt(native, layer, weights)


def up_sampling1d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.UpSampling1D:
    return _adopt(keras.layers.UpSampling1D(layer.size, **_common(layer)), layer, weights)


def up_sampling2d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    if layer.interpolation == "bilinear":
        return BilinearUpSampling(layer, weights)
    native = keras.layers.UpSampling2D(layer.size, data_format=layer.data_format,
                                       interpolation="nearest", **_common(layer))  # fmt: skip
    return _adopt(native, layer, weights)
