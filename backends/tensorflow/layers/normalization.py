"""Normalization layers on tf.keras (builders named like the neutral classes).

* LayerNormalization and GroupNormalization adopt Keras's own layers, which compute exactly the
  documented math (statistics in float32 for half inputs, the result rounded once); they get
  the *resolved* non-negative axes (Keras sorts mixed-sign axes as given and would then reshape
  γ in the wrong order).
* BatchNormalization is a custom layer on ``tf.nn.moments`` / ``tf.nn.batch_normalization`` (the
  ops Keras's own layer runs): Keras's layer has no unbiased moving-variance update. The moving
  statistics are updated with ``assign`` in ``call``, which also works inside ``tf.function``.
* RMSNormalization is custom because Keras multiplies by its ``scale`` without broadcasting it
  over non-trailing axes; UnitNormalization because Keras computes the norm in float16 for
  float16 inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, adopt

_HALF = (tf.float16, tf.bfloat16)


def _compute(x: tf.Tensor) -> tf.Tensor:
    """float32 for half-precision tensors (normalised in float32, rounded once), else ``x``."""
    return tf.cast(x, tf.float32) if x.dtype in _HALF else x


def _over(w: Any, ndim: int, axes: Sequence[int], dtype: tf.DType) -> tf.Tensor | None:
    """A weight shaped by the sizes of ``axes`` (increasing), cast to ``dtype`` and reshaped to
    broadcast against an input of rank ``ndim``."""
    if w is None:
        return None
    w = tf.cast(w, dtype)
    shape = [1] * ndim
    for size, a in zip(w.shape, axes, strict=True):
        shape[a] = size
    return tf.reshape(w, shape)


class _Custom(Layer):
    """The declared weights by name (None where not declared), the resolved axes, epsilon."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        named = dict(zip(layer.weight_names(), self.dualnet_variables, strict=True))
        object.__setattr__(self, "named", named)
        self.axes = tuple(layer.axes)
        self.ndim = len(layer.input_shape)
        self.epsilon = layer.epsilon

    def weight(self, name: str) -> Any:
        variable = self.named.get(name)
        return None if variable is None else variable.value


class BatchNormalization(_Custom):
    """Batch statistics from ``tf.nn.moments`` (two-pass) in training, moving statistics in
    inference; ``tf.nn.batch_normalization`` either way; Keras's moving-average update, with
    the variance made unbiased on request."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.axis = layer.channel_axis
        self.reduce = list(layer.reduction_axes())
        self.momentum = layer.momentum
        self.unbiased = layer.moving_variance_estimator == "unbiased"

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        training = self.effective_training(training)
        xc = _compute(x)
        dtype = xc.dtype
        if training:
            static = [x.shape[a] for a in self.reduce]
            if all(d is not None for d in static):  # eager calls: same check as torch's
                self.layer.check_batch_statistics(math.prod(static))
            mean, variance = tf.nn.moments(xc, axes=self.reduce)
            self._update(xc, mean, variance)
        else:
            mean = tf.cast(self.weight("moving_mean"), dtype)
            variance = tf.cast(self.weight("moving_variance"), dtype)
        y = tf.nn.batch_normalization(
            xc,
            _over(mean, self.ndim, self.axes, dtype),
            _over(variance, self.ndim, self.axes, dtype),
            offset=_over(self.weight("beta"), self.ndim, self.axes, dtype),
            scale=_over(self.weight("gamma"), self.ndim, self.axes, dtype),
            variance_epsilon=self.epsilon,
        )
        return tf.cast(y, x.dtype)

    def _update(self, xc: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor) -> None:
        """``moving = momentum·moving + (1 - momentum)·batch statistic`` (Keras's expression
        and order), in the compute dtype, rounded once when assigned; outside the gradient."""
        mean, variance = tf.stop_gradient(mean), tf.stop_gradient(variance)
        if self.unbiased:
            shape = tf.shape(xc)
            n = tf.cast(tf.reduce_prod(tf.gather(shape, self.reduce)), variance.dtype)
            # Bessel's correction, torch's running-variance update.
            if tf.executing_eagerly():
                variance = variance * n / (n - 1.0)
            else:  # graph mode with an unknown batch size: n > 1 checked when it runs
                message = f"{self.layer.name}: the unbiased moving variance needs n > 1"
                with tf.control_dependencies([tf.debugging.assert_greater(n, 1.0, message)]):
                    variance = variance * n / (n - 1.0)
        m = self.momentum
        moving_mean, moving_variance = self.named["moving_mean"], self.named["moving_variance"]
        new_mean = tf.cast(moving_mean.value, mean.dtype) * m + mean * (1.0 - m)
        new_variance = tf.cast(moving_variance.value, variance.dtype) * m + variance * (1.0 - m)
        moving_mean.assign(tf.cast(new_mean, moving_mean.dtype))
        moving_variance.assign(tf.cast(new_variance, moving_variance.dtype))


class RMSNormalization(_Custom):
    """``x·rsqrt(mean(x²) + ε)·scale`` (Keras's op order), the scale broadcast over its axes."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        xc = _compute(x)
        mean_square = tf.reduce_mean(tf.square(xc), axis=self.axes, keepdims=True)
        y = xc * tf.math.rsqrt(mean_square + self.epsilon)
        y = y * _over(self.weight("scale"), self.ndim, self.axes, xc.dtype)
        return tf.cast(y, x.dtype)


class UnitNormalization(_Custom):
    """Keras's ``x·min(rsqrt(Σx²), 1/1e-12)``. At a zero vector ``rsqrt`` is inf, ``minimum``
    passes no gradient to it and TensorFlow's rsqrt gradient is 0 for a zero upstream gradient,
    so the gradient is the finite ``1e12·g`` (as on torch)."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        xc = _compute(x)
        square_sum = tf.reduce_sum(tf.square(xc), axis=self.axes, keepdims=True)
        y = xc * tf.minimum(tf.math.rsqrt(square_sum), 1.0 / self.epsilon)
        return tf.cast(y, x.dtype)


def batch_normalization(layer: Any, weights: Sequence[np.ndarray]) -> BatchNormalization:
    return BatchNormalization(layer, weights)


def layer_normalization(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    native = keras.layers.LayerNormalization(
        axis=list(layer.axes), epsilon=layer.epsilon, center=layer.center, scale=layer.scale,
        dtype=layer.dtype, name=layer.name,
    )  # fmt: skip
    return adopt(native, layer, weights, layer.input_shape)


def group_normalization(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    axis = layer.channel_axis
    native = keras.layers.GroupNormalization(
        groups=layer.resolved_groups(layer.input_shape[axis]), axis=axis,
        epsilon=layer.epsilon, center=layer.center, scale=layer.scale, dtype=layer.dtype,
        name=layer.name,
    )  # fmt: skip
    return adopt(native, layer, weights, layer.input_shape)


def rms_normalization(layer: Any, weights: Sequence[np.ndarray]) -> RMSNormalization:
    return RMSNormalization(layer, weights)


def unit_normalization(layer: Any, weights: Sequence[np.ndarray]) -> UnitNormalization:
    return UnitNormalization(layer, weights)
