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
  float16 inputs (both recorded in ``dualnet/parity/divergences.py``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, adopt_keras, broadcast_over, upcast


class _Custom(Layer):
    """The declared weights by name (None where not declared), the resolved axes, epsilon."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        named = dict(zip(layer.weight_names(), self.dualnet_variables, strict=True))
        object.__setattr__(self, "named", named)
        self.axes = tuple(layer.axes)
        self.ndim = len(layer.input_shape)
        self.epsilon = layer.epsilon

    def weight(self, name: str, dtype: tf.DType) -> tf.Tensor | None:
        """The weight ``name`` in ``dtype`` (the compute dtype), or None where not declared."""
        variable = self.named.get(name)
        return None if variable is None else tf.cast(variable.value, dtype)

    def over(self, w: tf.Tensor | None) -> tf.Tensor | None:
        """A per-axis weight or statistic broadcast against the input."""
        return broadcast_over(w, self.ndim, self.axes)


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

    def call(self, x: tf.Tensor, training: Any = None, mask: Any = None) -> tf.Tensor:
        training = self.effective_training(training)
        xc = upcast(x)
        dtype = xc.dtype
        if training and mask is not None:
            mean, variance = self._masked_moments(xc, mask)
        elif training:
            static = [x.shape[a] for a in self.reduce]
            if all(d is not None for d in static):  # eager calls: same check as torch's
                self.layer.check_batch_statistics(math.prod(static))
            mean, variance = tf.nn.moments(xc, axes=self.reduce)
            self._update(xc, mean, variance)
        else:
            mean = self.weight("moving_mean", dtype)
            variance = self.weight("moving_variance", dtype)
        y = tf.nn.batch_normalization(
            xc, self.over(mean), self.over(variance), offset=self.over(self.weight("beta", dtype)),
            scale=self.over(self.weight("gamma", dtype)), variance_epsilon=self.epsilon,
        )  # fmt: skip
        return tf.cast(y, x.dtype)

    def _masked_moments(self, xc: tf.Tensor, mask: Any) -> tuple[tf.Tensor, tf.Tensor]:
        """Keras's masked moments (the mean and biased variance of the valid entries, ``n``
        their count per channel, at least 1 as a divisor: an all-masked batch gives 0 and 0,
        as Keras's ``n + 1e-7``), and the moving statistics moved by them."""
        m = tf.cast(mask, tf.bool)
        for _ in range(xc.shape.rank - m.shape.rank):
            m = tf.expand_dims(m, -1)
        valid = tf.broadcast_to(m, tf.shape(xc))
        zero = tf.zeros((), xc.dtype)
        count = tf.reduce_sum(tf.cast(valid, xc.dtype), axis=self.reduce)
        divisor = tf.maximum(count, tf.ones((), xc.dtype))
        # where(), not a product with the mask: a NaN or inf at a masked entry stays out.
        mean = tf.reduce_sum(tf.where(valid, xc, zero), axis=self.reduce) / divisor
        centred = xc - broadcast_over(mean, self.ndim, self.axes)
        variance = tf.reduce_sum(tf.where(valid, tf.square(centred), zero),
                                 axis=self.reduce) / divisor  # fmt: skip
        self._update(xc, mean, variance, count=count)
        return mean, variance

    def _update(self, xc: tf.Tensor, mean: tf.Tensor, variance: tf.Tensor,
                count: tf.Tensor | None = None) -> None:  # fmt: skip
        """``moving = momentum·moving + (1 - momentum)·batch statistic`` (Keras's expression
        and order), in the compute dtype, rounded once when assigned; outside the gradient."""
        mean, variance = tf.stop_gradient(mean), tf.stop_gradient(variance)
        if self.unbiased and count is not None:  # a mask: n per channel, the valid entries
            n = tf.stop_gradient(count)
            if tf.executing_eagerly():
                self.layer.check_batch_statistics(int(tf.reduce_min(n)))
                variance = variance * n / (n - 1.0)
            else:
                message = f"{self.layer.name}: the unbiased moving variance needs n > 1"
                # (1 in n's dtype: a Python 1.0 becomes float32 and a float64 n is refused.)
                one = tf.constant(1.0, n.dtype)
                with tf.control_dependencies([tf.debugging.assert_greater(n, one, message)]):
                    variance = variance * n / (n - 1.0)
        elif self.unbiased:
            shape = tf.shape(xc)
            n = tf.cast(tf.reduce_prod(tf.gather(shape, self.reduce)), variance.dtype)
            # Bessel's correction, torch's running-variance update.
            if tf.executing_eagerly():
                variance = variance * n / (n - 1.0)
            else:  # graph mode with an unknown batch size: n > 1 checked when it runs
                message = f"{self.layer.name}: the unbiased moving variance needs n > 1"
                # (1 in n's dtype: a Python 1.0 becomes float32 and a float64 n is refused.)
                one = tf.constant(1.0, n.dtype)
                with tf.control_dependencies([tf.debugging.assert_greater(n, one, message)]):
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
        xc = upcast(x)
        mean_square = tf.reduce_mean(tf.square(xc), axis=self.axes, keepdims=True)
        y = xc * tf.math.rsqrt(mean_square + self.epsilon)
        y = y * self.over(self.weight("scale", xc.dtype))
        return tf.cast(y, x.dtype)


class UnitNormalization(_Custom):
    """Keras's ``x·min(rsqrt(Σx²), 1/1e-12)``. At a zero vector ``rsqrt`` is inf, ``minimum``
    passes no gradient to it and TensorFlow's rsqrt gradient is 0 for a zero upstream gradient,
    so the gradient is the finite ``1e12·g`` (as on torch)."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        xc = upcast(x)
        square_sum = tf.reduce_sum(tf.square(xc), axis=self.axes, keepdims=True)
        y = xc * tf.minimum(tf.math.rsqrt(square_sum), 1.0 / self.epsilon)
        return tf.cast(y, x.dtype)


def batch_normalization(layer: Any, weights: Sequence[np.ndarray]) -> BatchNormalization:
    return BatchNormalization(layer, weights)


def layer_normalization(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    return adopt_keras(keras.layers.LayerNormalization, layer, weights, axis=list(layer.axes),
                       epsilon=layer.epsilon, center=layer.center, scale=layer.scale)  # fmt: skip


def group_normalization(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    axis = layer.channel_axis
    return adopt_keras(keras.layers.GroupNormalization, layer, weights,
                       groups=layer.resolved_groups(layer.input_shape[axis]), axis=axis,
                       epsilon=layer.epsilon, center=layer.center, scale=layer.scale)  # fmt: skip


def rms_normalization(layer: Any, weights: Sequence[np.ndarray]) -> RMSNormalization:
    return RMSNormalization(layer, weights)


def unit_normalization(layer: Any, weights: Sequence[np.ndarray]) -> UnitNormalization:
    return UnitNormalization(layer, weights)
