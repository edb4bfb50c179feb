"""Core layers on tf.keras: Keras's own ``Dense`` and ``Activation`` with dualnet's weights and
activation functions.

The activation is passed to Keras as a callable that runs dualnet's activation function, so the
conventions fixed in ``backends/tensorflow/nn.py`` (float64-exact leaky_relu slope, selu's
derivative at 0, half precision computed in float32) apply inside Keras layers too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from dualnet.backends.tensorflow.layers.base import adopt, adopt_keras, keras_activation


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
