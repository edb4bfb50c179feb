"""Activation layers on tf.keras: custom Keras layers running dualnet's activation functions
(whose conventions are fixed in ``backends/tensorflow/nn.py``) or ``tf.where`` forms.

Keras's own layers are not adopted: ``keras.layers.LeakyReLU`` stores its slope as a float32
attribute of ``tf.nn.leaky_relu`` (inexact in float64); ``keras.layers.ReLU(max_value=m)``
clips with a derivative of 1 at ``m`` (and, in float64, at ``m`` rounded to float32);
``keras.layers.PReLU`` has derivative 0 at ``x = 0`` (it computes ``relu(x) - alpha·relu(-x)``).
dualnet keeps constants exact in the layer's dtype, and documents derivative 0 at ``m`` and
alpha at 0.

float16/bfloat16 inputs are computed in float32 and rounded once, as every dualnet activation.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, activate, float32_math

from dualnet import activations as _activations


def _relu_general(x: tf.Tensor, max_value: float | None, slope: float,
                  threshold: float) -> tf.Tensor:  # fmt: skip
    # Constants in x's own dtype (a float32 attribute would be inexact in float64).
    def c(value: float) -> tf.Tensor:
        return tf.constant(value, dtype=x.dtype)

    # Above the threshold: x capped at max_value, with derivative 0 at x == m (clip_by_value's
    # is 1 there); NaN is not >= m and falls through to x.
    upper = x if max_value is None else tf.where(x >= c(max_value), c(max_value), x)
    # Below: exactly 0 for slope 0 (0·(x - θ) would be NaN at x = -inf).
    below = tf.zeros((), x.dtype) if slope == 0.0 else (x - c(threshold)) * c(slope)
    # x <= θ takes the lower branch (derivative = slope at θ); NaN propagates through `upper`.
    return tf.where(x <= c(threshold), below, upper)


class ReLU(Layer):
    """Keras's ReLU arguments: plain relu, leaky relu, or the general ``tf.where`` form."""

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        layer = self.layer
        m, s, t = layer.max_value, layer.negative_slope, layer.threshold
        if t == 0.0 and m is None:
            if s == 0.0:
                return activate(_activations.relu, x)
            return activate(functools.partial(_activations.leaky_relu, negative_slope=s), x)
        return float32_math(_relu_general, x, m, s, t)


class LeakyReLU(Layer):
    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        slope = self.layer.negative_slope
        return activate(functools.partial(_activations.leaky_relu, negative_slope=slope), x)


def _prelu(x: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
    # x > 0 is the identity branch: derivative alpha at 0 (Keras's own layer gives 0 there).
    return tf.where(x > 0, x, alpha * x)


class PReLU(Layer):
    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        return float32_math(_prelu, x, self.alpha.value)


class ELU(Layer):
    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        alpha = self.layer.alpha
        return activate(functools.partial(_activations.elu, alpha=alpha), x)


def _softmax_axes(x: tf.Tensor, axes: tuple[int, ...]) -> tf.Tensor:
    # Several axes at once: exp(x - logsumexp), as Keras.
    return tf.exp(x - tf.reduce_logsumexp(x, axis=list(axes), keepdims=True))


class Softmax(Layer):
    """Not Keras's Softmax: its mask must broadcast from the *right* (a (batch, steps) mask
    reaching (batch, steps, classes) raises), where dualnet's masks cover the leading axes."""

    def call(self, x: tf.Tensor, training: Any = None, mask: Any = None) -> tf.Tensor:
        axes = self.layer.resolve_axes(len(x.shape))
        if mask is not None:
            return self._masked(x, mask, axes)
        if len(axes) == 1:
            return activate(functools.partial(_activations.softmax, axis=axes[0]), x)
        return float32_math(_softmax_axes, x, axes)

    def _masked(self, x: tf.Tensor, mask: Any, axes: tuple[int, ...]) -> tf.Tensor:
        """The softmax over the valid entries only; masked entries, and a slice without a valid
        entry, are 0 (the torch module's rule, step for step)."""
        keep = tf.cast(mask, tf.bool)
        for _ in range(x.shape.rank - keep.shape.rank):
            keep = tf.expand_dims(keep, -1)
        keep = tf.broadcast_to(keep, tf.shape(x))
        xc = tf.cast(x, tf.float32) if x.dtype in (tf.float16, tf.bfloat16) else x
        # The lowest finite value, not -inf: a slice without a valid entry stays finite.
        z = tf.where(keep, xc, tf.constant(xc.dtype.min, xc.dtype))
        if len(axes) == 1:
            y = activate(functools.partial(_activations.softmax, axis=axes[0]), z)
        else:
            y = _softmax_axes(z, axes)
        return tf.cast(tf.where(keep, y, tf.zeros((), y.dtype)), x.dtype)


def re_lu(layer: Any, weights: Sequence[np.ndarray]) -> ReLU:
    return ReLU(layer, weights)


def leaky_re_lu(layer: Any, weights: Sequence[np.ndarray]) -> LeakyReLU:
    return LeakyReLU(layer, weights)


def p_re_lu(layer: Any, weights: Sequence[np.ndarray]) -> PReLU:
    return PReLU(layer, weights)


def elu(layer: Any, weights: Sequence[np.ndarray]) -> ELU:
    return ELU(layer, weights)


def softmax(layer: Any, weights: Sequence[np.ndarray]) -> Softmax:
    return Softmax(layer, weights)
