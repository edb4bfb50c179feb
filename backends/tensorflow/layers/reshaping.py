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
from dualnet.backends.tensorflow.layers.base import (
    Layer,
    adopt_keras,
    from_channels_last,
    to_channels_last,
)


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
        x = to_channels_last(x, layer.data_format)
        sh, sw = layer.size
        if x.dtype == tf.float64:
            # ResizeBilinear would round to float32: interpolate columns then rows in float64,
            # in the kernel's order (its lerps run along the width first).
            y = _lerp_axis(_lerp_axis(x, 2, sw), 1, sh)
        else:
            size = tf.shape(x)[1:3] * tf.constant([sh, sw])
            # antialias is irrelevant when enlarging; half inputs come back as float32: cast once.
            y = tf.cast(tf.image.resize(x, size, method="bilinear"), x.dtype)
        return from_channels_last(y, layer.data_format)


def flatten(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Flatten:
    return adopt_keras(keras.layers.Flatten, layer, weights, data_format=layer.data_format)


def reshape(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Reshape:
    return adopt_keras(keras.layers.Reshape, layer, weights, target_shape=layer.target_shape)


def permute(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Permute:
    return adopt_keras(keras.layers.Permute, layer, weights, dims=layer.dims)


def repeat_vector(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.RepeatVector:
    return adopt_keras(keras.layers.RepeatVector, layer, weights, n=layer.n)


def zero_padding1d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.ZeroPadding1D:
    return adopt_keras(keras.layers.ZeroPadding1D, layer, weights, padding=layer.padding,
                       data_format=layer.data_format)  # fmt: skip


def zero_padding2d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.ZeroPadding2D:
    return adopt_keras(keras.layers.ZeroPadding2D, layer, weights, padding=layer.padding,
                       data_format=layer.data_format)  # fmt: skip


def cropping1d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Cropping1D:
    return adopt_keras(keras.layers.Cropping1D, layer, weights, cropping=layer.cropping)


def cropping2d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Cropping2D:
    return adopt_keras(keras.layers.Cropping2D, layer, weights, cropping=layer.cropping,
                       data_format=layer.data_format)  # fmt: skip


def up_sampling1d(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.UpSampling1D:
    return adopt_keras(keras.layers.UpSampling1D, layer, weights, size=layer.size)


def up_sampling2d(layer: Any, weights: Sequence[np.ndarray]) -> Any:
    if layer.interpolation == "bilinear":
        return BilinearUpSampling(layer, weights)
    return adopt_keras(keras.layers.UpSampling2D, layer, weights, size=layer.size,
                       data_format=layer.data_format, interpolation="nearest")  # fmt: skip
