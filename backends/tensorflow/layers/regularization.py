"""Regularization layers on tf.keras: the masks and noise come from the neutral layer (Note
[Portable noise] in :mod:`dualnet.layers.regularization`), never from TensorFlow's generator, so
they are the ones torch applies too. Keras's own Dropout/GaussianNoise layers are not adopted:
they draw from TensorFlow's RNG.

Each layer asks the neutral layer (``self.layer``) for the noise of each training call. Eagerly
that is a direct call; inside ``tf.function`` it is a ``tf.numpy_function``, run every time the
graph runs, so traced code sees the same sequence of masks as eager code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, compute_dtype, float32_math


def _draw(x: tf.Tensor, draw: Callable[[tuple[int, ...]], np.ndarray | None], dtype: tf.DType,
          neutral: Any) -> tf.Tensor | None:  # fmt: skip
    """The neutral layer's draw for the shape of ``x`` as a tensor (None: the identity; in a
    graph, where the draw happens at run time, the scalar ``neutral`` that changes nothing)."""
    if tf.executing_eagerly():
        array = draw(tuple(int(d) for d in x.shape))
        return None if array is None else tf.convert_to_tensor(array)

    def host(shape: np.ndarray) -> np.ndarray:
        array = draw(tuple(int(d) for d in shape))
        if array is None:  # the identity: a scalar that broadcasts and changes nothing
            return np.asarray(neutral, dtype=dtype.as_numpy_dtype)
        return array

    return tf.numpy_function(host, [tf.shape(x)], dtype, stateful=True)


class Dropout(Layer):
    """``where(keep, x·scale, 0)``: Dropout, SpatialDropout1D and SpatialDropout2D (they differ
    only in the mask shape, which the neutral layer gives)."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        if not training:
            return x
        keep = _draw(x, self.layer.next_mask, tf.bool, True)
        if keep is None:  # rate 0
            return x
        scale = self.layer.scale

        def drop(v: tf.Tensor) -> tf.Tensor:
            # The scale rounded once to the compute dtype (tf.nn.dropout divides by 1 - rate
            # rounded to x's dtype instead: a different rounding).
            return tf.where(keep, v * tf.constant(scale, v.dtype), tf.zeros((), v.dtype))

        # float32 math for half inputs with one rounding at the end, as torch does.
        out = float32_math(drop, x)
        out.set_shape(x.shape)  # in a graph the host-drawn mask has no static shape; x's is it
        return out


class _Noise(Layer):
    """``op(x, noise)`` with the neutral layer's noise for each training call (drawn in the
    compute dtype: float32 for half layers, rounded once after ``op``); ``identity`` is the
    noise that changes nothing, what a graph's draw gives for a stddev or rate of 0."""

    op: ClassVar[Callable[..., tf.Tensor]]
    identity: ClassVar[float]

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        if not training:
            return x
        noise = _draw(x, self.layer.next_noise, compute_dtype(x), self.identity)
        if noise is None:  # stddev or rate 0
            return x
        out = float32_math(self.op, x, noise)
        out.set_shape(x.shape)  # in a graph the host-drawn noise has no static shape; x's is it
        return out


class GaussianNoise(_Noise):
    """``x + noise`` with the neutral layer's noise."""

    op = staticmethod(tf.add)
    identity = 0.0


class GaussianDropout(_Noise):
    """``x · factor`` with the neutral layer's factor ``1 + σ·n``."""

    op = staticmethod(tf.multiply)
    identity = 1.0


def dropout(layer: Any, weights: Sequence[np.ndarray]) -> Dropout:
    return Dropout(layer, weights)


def spatial_dropout1d(layer: Any, weights: Sequence[np.ndarray]) -> Dropout:
    return Dropout(layer, weights)


def spatial_dropout2d(layer: Any, weights: Sequence[np.ndarray]) -> Dropout:
    return Dropout(layer, weights)


def gaussian_noise(layer: Any, weights: Sequence[np.ndarray]) -> GaussianNoise:
    return GaussianNoise(layer, weights)


def gaussian_dropout(layer: Any, weights: Sequence[np.ndarray]) -> GaussianDropout:
    return GaussianDropout(layer, weights)
