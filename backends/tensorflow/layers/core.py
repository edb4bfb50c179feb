"""Core layers on tf.keras: Keras's own ``Dense`` and ``Activation`` with dualnet's weights and
activation functions; Embedding (``tf.gather`` with dualnet's id check, not Keras's layer: it
truncates fractional ids and does not check the range) and Masking (not Keras's: it compares
half-precision inputs in float32).

The activation is passed to Keras as a callable that runs dualnet's activation function, so the
conventions fixed in ``backends/tensorflow/nn.py`` (float64-exact leaky_relu slope, selu's
derivative at 0, half precision computed in float32) apply inside Keras layers too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, adopt, adopt_keras, keras_activation


def dense(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Dense:
    native = keras.layers.Dense(
        layer.units, activation=keras_activation(layer.activation), use_bias=layer.use_bias,
        # Zeros: Keras's own random initializers would only be overwritten by adopt().
        kernel_initializer="zeros", bias_initializer="zeros", dtype=layer.dtype, name=layer.name,
    )  # fmt: skip
    return adopt(native, layer, weights, (None, layer.in_features))


def activation(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Activation:
    return adopt_keras(keras.layers.Activation, layer, weights,
                       activation=keras_activation(layer.activation) or "linear")  # fmt: skip


def _as_raised(error: Exception) -> Exception:
    """``error`` marked so that Keras re-raises it unchanged: Keras's ``Layer.__call__`` would
    otherwise rewrap it with its "Exception encountered when calling ..." text, and dualnet's
    message is the same on both backends."""
    error._keras_call_info_injected = True  # Keras's own marker of an error already annotated
    return error


def checked_ids(layer: Any, x: tf.Tensor) -> tf.Tensor:
    """``x`` as ids ``tf.gather`` takes (int32/int64), after the neutral layer's check: whole
    numbers (floating ids) in ``[0, input_dim)``. One min/max reduction, plus one comparison for
    floating ids. Eagerly the neutral layer raises its ValueError (TensorFlow's gather would
    raise on CPU but return zeros on GPU); in a graph, ``tf.debugging`` assertions with the same
    message run before the gather."""
    if x.dtype == tf.bool or x.dtype.is_complex:
        raise _as_raised(layer.bad_id(tf.reshape(x, [-1])[0].numpy() if tf.executing_eagerly()
                                      else x.dtype))  # fmt: skip
    integer = x.dtype in (tf.int32, tf.int64)
    if tf.executing_eagerly():
        if x.dtype.is_floating:
            fractional = tf.not_equal(x, tf.floor(x))  # NaN too; ±inf fails the range below
            if bool(tf.reduce_any(fractional)):
                raise _as_raised(layer.bad_id(tf.boolean_mask(x, fractional)[0].numpy()))
        if int(tf.size(x)) > 0:
            try:
                layer.check_ids(tf.reduce_min(x).numpy(), tf.reduce_max(x).numpy())
            except ValueError as error:
                raise _as_raised(error) from None
        return x if integer else tf.cast(x, tf.int64)
    message = layer.graph_id_message()
    checks = []
    if x.dtype.is_floating:
        checks.append(tf.debugging.assert_equal(x, tf.floor(x), message=message))
    checks += [
        tf.debugging.assert_greater_equal(x, tf.zeros((), x.dtype), message=message),
        tf.debugging.assert_less(x, tf.constant(layer.input_dim, x.dtype), message=message),
    ]
    with tf.control_dependencies(checks):
        return tf.identity(x) if integer else tf.cast(x, tf.int64)


class Embedding(Layer):
    """``tf.gather(embeddings, ids)``. Its gradient is TensorFlow's IndexedSlices (the rows
    looked up, repeats summed when densified); dualnet's optimizers densify it, and
    ``tf.convert_to_tensor`` gives the canonical dense gradient."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.autocast = False  # floating ids keep their dtype (Keras's Embedding does the same)
        self.supports_masking = layer.mask_zero  # Keras's rule

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        return tf.gather(self.embeddings, checked_ids(self.layer, x))

    def compute_mask(self, inputs: tf.Tensor, mask: Any = None) -> tf.Tensor | None:
        # keras.ops: also called on symbolic KerasTensors while a Keras model is built.
        return keras.ops.not_equal(inputs, 0) if self.layer.mask_zero else None


class Masking(Layer):
    """``where(any(x != mask_value, -1), x, 0)``, the mask being that ``any``. Not Keras's own
    Masking: it compares a float16/bfloat16 input with ``mask_value`` in float32 (Keras's type
    promotion of a Python float), so a step padded with 0.1 in float16 is never masked; here the
    value is rounded to the input's dtype first, as torch's comparison does."""

    def keep(self, x: Any) -> Any:
        value = keras.ops.convert_to_tensor(self.layer.mask_value, x.dtype)
        # keras.ops: also called on symbolic KerasTensors while a Keras model is built.
        return keras.ops.any(keras.ops.not_equal(x, value), axis=-1)

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        return tf.where(self.keep(x)[..., None], x, tf.zeros((), x.dtype))

    def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
        return self.keep(inputs)


def embedding(layer: Any, weights: Sequence[np.ndarray]) -> Embedding:
    return Embedding(layer, weights)


def masking(layer: Any, weights: Sequence[np.ndarray]) -> Masking:
    return Masking(layer, weights)
