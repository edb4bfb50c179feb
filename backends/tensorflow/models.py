"""Models on tf.keras: real Keras models built from the layers' Keras layers.

* Sequential -> ``keras.Sequential([keras.Input(...), *layers])``;
* functional -> a functional ``keras.Model`` (one ``keras.Input`` per ``dn.Input``);
* subclassed -> :class:`Subclassed`, a ``keras.Model`` whose ``call`` runs ``model.call``.

Every Keras layer is shared with the dualnet layer (``layer.native``), so there is one copy of
each weight; names are dualnet's, passed explicitly, so Keras's own name counters play no part.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow import layers as _layers

from dualnet._backend import use_backend
from dualnet.layers._symbolic import resolve


def _input(layer: Any, shape: tuple, dtype: str) -> Any:
    name = None if layer is None else layer.name
    return keras.Input(shape=tuple(shape)[1:], dtype=dtype, name=name)


def sequential(model: Any, input_shape: tuple) -> keras.Sequential:
    input_layer = model._input_layer
    natives = [layer.native for layer in model.layers if layer.native is not None]
    return keras.Sequential(
        [_input(input_layer, input_shape, model.input_dtype()), *natives], name=model.name
    )


def functional(model: Any, plan: list, input_ids: list, output_ids: list) -> keras.Model:
    inputs = [_input(layer, layer.input_shape, layer.dtype) for layer in model._input_layers()]
    values = dict(zip(input_ids, inputs, strict=True))
    for layer, ins, outs, kwargs in plan:
        args = [values[i] for i in ins] if layer.multi_input else values[ins[0]]
        out = layer.native(args, **{k: resolve(v, values) for k, v in kwargs.items()})
        for i, t in zip(outs, out if len(outs) > 1 else [out], strict=True):
            values[i] = t
    single_in, single_out = model._single
    outputs = [values[i] for i in output_ids]
    return keras.Model(
        inputs=inputs[0] if single_in else inputs,
        outputs=outputs[0] if single_out else outputs,
        name=model.name,
    )


class Subclassed(keras.Model):
    """The native face of a subclassed dualnet model: ``call`` runs ``model.call``."""

    def __init__(self, model: Any):
        super().__init__(name=model.name)
        # Keras tracks layers assigned in lists, so .weights / .trainable_variables work.
        self.dualnet_layers = [layer.native for layer in model.layers if layer.native is not None]
        object.__setattr__(self, "_dualnet_model", model)
        # keras.Model.__call__ would cast floating inputs to the model's dtype policy (float32),
        # so a float64 network would silently run on float32 inputs; each dualnet layer casts
        # to its own dtype instead.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True  # numpy is converted by dualnet's layers
        self.built = True  # every layer is built already

    def call(self, inputs: Any, training: Any = None) -> Any:
        with use_backend("tensorflow"):
            return self._dualnet_model._call_with_training(inputs, bool(training))


def subclassed(model: Any) -> Subclassed:
    return Subclassed(model)


def call(native: keras.Model, inputs: list, single_input: bool, training: bool = False) -> Any:
    out = native(inputs[0] if single_input else inputs, training=training)
    return list(out) if isinstance(out, tuple) else out


@contextlib.contextmanager
def inference() -> Iterator[None]:
    """Eager TF records no gradients outside a GradientTape: nothing to switch off."""
    yield


def trainable_params(model: Any) -> list[Any]:
    """The ``tf.Variable``s the optimizer updates, in the order of ``model.trainable_weights``
    (moving statistics and frozen layers excluded)."""
    return [p for layer in model._weight_layers() for p in _layers.params(layer.native)]


def canonical_grads(model: Any, grads: Sequence[Any]) -> list[Any]:
    """Keras's layout is canonical: the gradients as they are."""
    return list(grads)


def value_and_grads(
    compute: Callable[[], tuple[Any, Any]], params: Sequence[Any]
) -> tuple[Any, Any, list[Any]]:
    """``loss, outputs = compute()`` and ``∂loss/∂params`` (unused variables get zeros).

    Eager ``GradientTape``, watching exactly ``params`` (no ``tf.function``: the neutral loss
    code validates shapes and labels on the host, which a traced graph could not do, and eager
    execution keeps the kernels the same as in every other parity check).
    """
    params = list(params)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for p in params:
            tape.watch(p)
        loss, outputs = compute()
    grads = tape.gradient(loss, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
    return loss, outputs, list(grads)


def all_finite(tensors: Sequence[Any]) -> bool:
    """Whether every element of every tensor is finite: the per-step check, in few ops.

    One ``reduce_sum`` per tensor, then one test of all the sums: a NaN or an infinity
    (``inf + -inf`` is NaN) makes the sum non-finite, so a finite sum proves its tensor finite.
    A sum of finite values can still overflow; that only costs the detailed scan of
    :func:`finite_flags`, which the caller runs whenever this says False. (Not ``reduce_max``:
    Eigen's max reduction may drop NaNs.)
    """
    sums = [tf.reduce_sum(t) for t in tensors]
    if len({s.dtype for s in sums}) > 1:
        sums = [tf.cast(s, tf.float64) for s in sums]  # widening: a finite sum stays finite
    return bool(tf.reduce_all(tf.math.is_finite(tf.stack(sums))))


def finite_flags(tensors: Sequence[Any]) -> np.ndarray:
    """Per tensor, whether every element is finite; one device-to-host transfer for all."""
    flags = tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])
    return flags.numpy()
