"""The Keras side of Note [Declared weights]. Keras's layout is dualnet's canonical one, so a
weight needs no mapping; what is generic here is *which* variables a layer has.

A builder (``conv2d`` in ``layers/convolutional.py`` for ``dn.layers.Conv2D``) is a function
``builder(layer, weights) -> keras.layers.Layer``. It either

* subclasses :class:`Layer`, which creates one variable per declared weight (trainable or not,
  as declared) and implements ``call(x, training=None)`` with TensorFlow ops; or
* builds Keras's own layer, when it computes exactly what the neutral layer documents, and hands
  it to :func:`adopt`, which finds the declared weights among its variables by name (Keras's
  names are the canonical ones) and refuses a layer with variables that were not declared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from dualnet import activations as _activations
from dualnet._backend import get_backend, use_backend


class Layer(keras.layers.Layer):
    """Base of dualnet's custom Keras layers: ``self.<name>`` per declared weight, created with
    the declared trainability and loaded with the neutral layer's arrays. ``self.layer`` is the
    neutral layer (read-only config; not tracked by Keras)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray] = ()):
        super().__init__(name=layer.name, dtype=layer.dtype)
        object.__setattr__(self, "layer", layer)
        variables = []
        for spec, array in zip(layer.weight_specs, weights, strict=True):
            variable = self.add_weight(
                name=spec.name, shape=spec.shape, initializer="zeros", trainable=spec.trainable,
                dtype=layer.dtype,
            )  # fmt: skip
            variable.assign(np.asarray(array))
            object.__setattr__(self, spec.name, variable)
            variables.append(variable)
        object.__setattr__(self, "dualnet_variables", variables)
        # dualnet's neutral layer casts inputs to its dtype already; Keras's own conversion
        # would cast float64 inputs of a float32 model silently.
        self._convert_input_args = False
        self.built = True

    def effective_training(self, training: Any) -> bool:
        """``training``, except that a frozen layer whose class says so runs inference."""
        layer = self.layer
        return bool(training) and (layer.trainable or not layer.frozen_means_inference)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return self.layer.compute_output_shape(input_shape)


def adopt(native: keras.layers.Layer, layer: Any, weights: Sequence[np.ndarray],
          input_shape: Any) -> keras.layers.Layer:  # fmt: skip
    """Use Keras's own ``native`` layer for ``layer``: build it for ``input_shape``, pick its
    variables by the declared names, load ``weights``."""
    if not native.built:
        native.build(input_shape)
    by_name = {v.name: v for v in native.weights}
    missing = [s.name for s in layer.weight_specs if s.name not in by_name]
    extra = sorted(set(by_name) - {s.name for s in layer.weight_specs})
    if missing or extra:  # a builder bug, never a user error: say exactly what differs
        raise AssertionError(
            f"{type(native).__name__} {layer.name!r}: declared weights "
            f"{[s.name for s in layer.weight_specs]} but Keras has {sorted(by_name)}"
        )
    variables = [by_name[s.name] for s in layer.weight_specs]
    for spec, variable, array in zip(layer.weight_specs, variables, weights, strict=True):
        if variable.trainable != spec.trainable:
            raise AssertionError(f"{layer.name}/{spec.name}: trainable differs from Keras")
        variable.assign(np.asarray(array))
    object.__setattr__(native, "layer", layer)
    object.__setattr__(native, "dualnet_variables", variables)
    return native


def keras_activation(fn: Callable[..., Any]) -> Callable[..., Any] | None:
    """A dualnet activation as a Keras ``activation=`` callable (None for linear)."""
    if fn is _activations.linear:
        return None  # Keras skips the call entirely, as for activation=None

    @functools.wraps(fn)
    def activation(x):
        return activate(fn, x)

    return activation


def activate(fn: Callable[..., Any], x: Any) -> Any:
    """Run a dualnet activation on TensorFlow (pinned: the Keras layer may be called directly
    while torch is the active backend)."""
    if get_backend() == "tensorflow":
        return fn(x)
    with use_backend("tensorflow"):
        return fn(x)
