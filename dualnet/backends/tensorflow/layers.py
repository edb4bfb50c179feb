"""Layers on tf.keras: ``keras.layers.Dense`` / ``keras.layers.Activation`` with dualnet's
weights and activation functions.

The neutral layer (:mod:`dualnet.layers`) has validated everything and drawn the initial
weights (numpy, canonical layout = Keras's own layout) before a factory here is called.

The activation is passed to Keras as a callable that runs dualnet's activation function, so the
conventions fixed in ``backends/tensorflow/nn.py`` (float64-exact leaky_relu slope, selu's
derivative at 0, half precision computed in float32) apply inside Keras layers too.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from dualnet import activations as _activations
from dualnet._backend import get_backend, use_backend


def _keras_activation(fn: Callable[..., Any]) -> Callable[..., Any] | None:
    if fn is _activations.linear:
        return None  # Keras skips the call entirely, as for activation=None

    @functools.wraps(fn)
    def activation(x):
        # dualnet's activations dispatch on the *active* backend; the Keras layer may be
        # called directly (model.native(x)) while torch is active, so pin TensorFlow (no
        # switch needed when it is active already: every call through a dualnet model).
        if get_backend() == "tensorflow":
            return fn(x)
        with use_backend("tensorflow"):
            return fn(x)

    return activation


def dense(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Dense:
    """Factory for :class:`dualnet.layers.Dense`; ``weights`` = [kernel (in, out), bias?]."""
    native = keras.layers.Dense(
        layer.units,
        activation=_keras_activation(layer.activation),
        use_bias=layer.use_bias,
        # Zeros: Keras's own random initializers would only be overwritten below.
        kernel_initializer="zeros",
        bias_initializer="zeros",
        dtype=layer.dtype,
        name=layer.name,
    )
    native.build((None, weights[0].shape[0]))
    set_weights(native, weights)
    return native


def activation(layer: Any, weights: Sequence[np.ndarray]) -> keras.layers.Activation:
    return keras.layers.Activation(
        _keras_activation(layer.activation) or "linear", dtype=layer.dtype, name=layer.name
    )


def params(native: keras.layers.Layer) -> list[Any]:
    """The native ``tf.Variable``s in canonical order (Dense: kernel, then bias)."""
    if isinstance(native, keras.layers.Dense):
        variables = [native.kernel] if native.bias is None else [native.kernel, native.bias]
        # A Keras 3 variable wraps a tf.Variable (`.value`); GradientTape watches the latter.
        return [v.value for v in variables]
    return []


def canonical_grads(native: keras.layers.Layer, grads: Sequence[Any]) -> list[Any]:
    """Keras's layout is the canonical one: nothing to transpose."""
    return list(grads)


def get_weights(native: keras.layers.Layer) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in params(native)]


def set_weights(native: keras.layers.Layer, arrays: Sequence[np.ndarray]) -> None:
    """Assign canonical arrays (validated and cast by the neutral layer) to the variables."""
    for variable, array in zip(params(native), arrays, strict=True):
        variable.assign(np.asarray(array))
