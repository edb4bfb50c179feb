"""Preprocessing layers on tf.keras (builders named like the neutral classes).

Rescaling adopts Keras's own ``keras.layers.Rescaling`` in float32, where it computes exactly the
documented ``cast(x)·cast(scale) + cast(offset)`` (so a ``.keras`` export holds a Keras
built-in). Elsewhere it is a custom layer running the same two operations:

* float64: Keras's ``tf.cast(python_float, float64)`` makes a float32 tensor first, so its
  ``scale`` and ``offset`` are rounded to float32 (``Rescaling(1/3, dtype="float64")`` scales by
  0.3333333432674408); dualnet keeps them exact in float64;
* float16/bfloat16: Keras computes in half, with ``scale`` and ``offset`` rounded to half first;
  dualnet computes in float32 and rounds once;
* ``keras.config.image_data_format() == "channels_first"`` with a per-channel operand: Keras
  then reshapes the scale (not the offset) to broadcast on axis -3; dualnet broadcasts both on
  the last axis;
* a scale or offset holding ``-0.0`` (``from_torch`` maps ``x * c`` onto
  ``Rescaling(c, -0.0)``): Keras casts it with ``tf.cast(-0.0, dtype)``, which goes through
  TensorFlow's eager cache of Python-scalar constants, keyed by value: once ``0.0`` has been
  converted, ``-0.0`` comes back as that ``+0.0`` tensor, and ``-0.0·s`` loses its sign
  (``tf.constant`` of a Python float reads the same cache; the custom layer converts numpy
  arrays, which it does not hold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, adopt_keras, compute_dtype


def _plain(value: float | tuple[float, ...]) -> float | list[float]:
    return list(value) if isinstance(value, tuple) else value


class Rescaling(Layer):
    """``x·scale + offset`` with ``scale`` and ``offset`` exact in the compute dtype (float32 for
    half-precision inputs, rounded once at the end); the addition is made even for a zero
    offset (Keras's formula)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        compute = np.float64 if layer.dtype == "float64" else np.float32
        # numpy arrays of the compute dtype (converted once, exactly as a cast rounds): a Python
        # float would go through TensorFlow's scalar-constant cache, tf.constant's included,
        # where -0.0 finds a cached +0.0.
        self.scale = np.asarray(layer.scale, compute)
        self.offset = np.asarray(layer.offset, compute)

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        dtype = tf.as_dtype(self.layer.dtype)
        x = tf.cast(x, dtype)  # Keras casts any input (integers too) to the compute dtype
        xc = tf.cast(x, compute_dtype(x))  # half: float32 math, rounded once below
        # Already in the compute dtype (no float32 detour, unlike Keras's tf.cast of a Python
        # float); a list broadcasts along the last axis.
        return tf.cast(xc * tf.constant(self.scale) + tf.constant(self.offset), dtype)


def rescaling(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Layer:
    per_channel = isinstance(layer.scale, tuple) or isinstance(layer.offset, tuple)
    negative_zero = any(np.any(np.signbit(np.asarray(v, np.float64)) & (np.asarray(v) == 0))
                        for v in (layer.scale, layer.offset))  # fmt: skip
    keras_math = (
        layer.dtype == "float32"
        and not negative_zero
        and not (per_channel and keras.config.image_data_format() == "channels_first")
    )
    if keras_math:
        return adopt_keras(keras.layers.Rescaling, layer, weights, scale=_plain(layer.scale),
                           offset=_plain(layer.offset))  # fmt: skip
    return Rescaling(layer, weights)
