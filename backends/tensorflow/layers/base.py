"""The Keras side of Note [Declared weights]. Keras's layout is dualnet's canonical one, so a
weight needs no mapping; what is generic here is *which* variables a layer has.

A builder (``conv2d`` in ``layers/convolutional.py`` for ``dn.layers.Conv2D``) is a function
``builder(layer, weights) -> keras.layers.Layer``. It either

* subclasses :class:`Layer`, which creates one variable per declared weight (trainable or not,
  as declared) and implements ``call(x, training=None)`` with TensorFlow ops; or
* uses Keras's own layer, when it computes exactly what the neutral layer documents, through
  :func:`adopt_keras` (or :func:`adopt` for an instance built by hand), which finds the declared
  weights among its variables by name (Keras's names are the canonical ones) and refuses a layer
  with variables that were not declared.

The helpers at the end are the conventions several layer modules share (half precision,
channels-last data, per-axis weights), named as their torch counterparts where torch has one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

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
        # Keras's own mask handling (Note [Masks] in dualnet.layers.base) follows this flag.
        self.supports_masking = layer.supports_masking
        # Keras's own input conversion stays on: it casts floating inputs to the layer's dtype,
        # dualnet's rule, which a model's native call (keras.Sequential, a functional
        # keras.Model) relies on; a direct dualnet call has cast them already.
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


def adopt_keras(cls: type[keras.layers.Layer], layer: Any, weights: Sequence[np.ndarray],
                **config: Any) -> keras.layers.Layer:  # fmt: skip
    """Keras's own ``cls(**config)`` for ``layer``: named and typed as the neutral layer, built
    for its input shape (a list of shapes for a multi-input layer) and loaded by :func:`adopt`."""
    native = cls(**config, dtype=layer.dtype, name=layer.name)
    return adopt(native, layer, weights, layer.input_shape)


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


# -- Helpers shared by the layer modules ---------------------------------------------------------

HALF = (tf.float16, tf.bfloat16)


def compute_dtype(x: tf.Tensor) -> tf.DType:
    """The dtype a layer computes ``x`` in: float32 for half precision, else ``x``'s own."""
    return tf.float32 if x.dtype in HALF else x.dtype


def upcast(x: tf.Tensor) -> tf.Tensor:
    """``x`` in :func:`compute_dtype`.

    dualnet's rule for float16/bfloat16 on both backends (torch's CPU ``opmath``): compute in
    float32 and round to half precision once, at the end; TensorFlow's half kernels are not
    used for the math. Code that calls this rounds itself (``tf.cast(y, x.dtype)``)."""
    return tf.cast(x, tf.float32) if x.dtype in HALF else x


def float32_math(fn: Callable[..., tf.Tensor], x: tf.Tensor, *args: Any,
                 **kwargs: Any) -> tf.Tensor:  # fmt: skip
    """``fn(x, *args, **kwargs)``, computed in float32 for a half-precision ``x`` (the tensors
    among ``args`` too) and rounded once to ``x``'s dtype; run as it is for other dtypes."""
    if x.dtype not in HALF:
        return fn(x, *args, **kwargs)
    up = [tf.cast(a, tf.float32) if tf.is_tensor(a) else a for a in args]
    return tf.cast(fn(tf.cast(x, tf.float32), *up, **kwargs), x.dtype)


def to_channels_last(x: tf.Tensor, data_format: str) -> tf.Tensor:
    """``x`` with its channels last, the layout TensorFlow's CPU convolution and pooling kernels
    take (a channels_first input is transposed, as Keras's own layers do)."""
    if data_format == "channels_last":
        return x
    return tf.transpose(x, (0, *range(2, x.shape.rank), 1))


def from_channels_last(y: tf.Tensor, data_format: str) -> tf.Tensor:
    """The inverse of :func:`to_channels_last`."""
    if data_format == "channels_last":
        return y
    rank = y.shape.rank
    return tf.transpose(y, (0, rank - 1, *range(1, rank - 1)))


def broadcast_over(w: Any, ndim: int, axes: Sequence[int]) -> tf.Tensor | None:
    """A weight shaped by the sizes of ``axes`` (increasing) reshaped to broadcast against an
    input of rank ``ndim`` (None stays None: an absent γ or β)."""
    if w is None:
        return None
    shape = [1] * ndim
    for size, a in zip(w.shape, axes, strict=True):
        shape[a] = size
    return tf.reshape(w, shape)
