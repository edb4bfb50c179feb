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


# ------------------------------------------------------------------ compiled training steps


def state_variables(model: Any) -> list[tf.Variable]:
    """The non-trainable variables a training forward pass may write (moving statistics), which
    a compiled step puts back on the steps it skips (Note [Compiled training] in
    :mod:`dualnet.training_steps`)."""
    return [getattr(v, "value", v) for v in model.native.non_trainable_variables]


class CompiledStep:
    """One training step traced once by ``tf.function`` (XLA with ``jit=True``): forward, loss,
    gradients, the finiteness check and the optimizer update, with the update skipped on the
    device when a value is non-finite or an earlier step failed (Note [Compiled training]).

    ``step(inputs, y, vector)``: ``inputs`` the model's input tensors, ``vector`` the
    optimizer's float64 coefficients followed by the step number. Returns ``(loss, outputs,
    mask)`` (outputs and mask None unless ``outputs=True``). :meth:`failure` reads the record of
    the first failing step since :meth:`reset` (one host transfer when nothing failed).
    """

    def __init__(self, forward: Callable[[Any, Any], tuple[Any, Any]], params: Sequence[Any],
                 state: Sequence[tf.Variable], update: Callable[[list[Any], Any], Any], *,
                 jit: bool, outputs: bool):  # fmt: skip
        self._forward, self._update = forward, update
        self._params, self._state = list(params), list(state)
        self._outputs = outputs
        checked = 1 + 2 * len(self._params)  # the loss, every gradient, every weight
        self.failed_at = tf.Variable(tf.constant(0, tf.int64), trainable=False)
        self.flags = tf.Variable(tf.ones([checked], tf.bool), trainable=False)
        self._fn = tf.function(self._step, jit_compile=jit)

    def __call__(self, inputs: Any, y: Any, vector: np.ndarray) -> tuple[Any, Any, Any]:
        return self._fn(inputs, y, tf.constant(vector, tf.float64))

    def _step(self, inputs: Any, y: Any, vector: tf.Tensor) -> tuple[Any, Any, Any]:
        step = tf.cast(vector[-1], tf.int64)  # exact: step numbers stay far below 2**53
        skip = tf.not_equal(self.failed_at, 0)  # an earlier step since the last read failed
        saved = [tf.identity(v) for v in self._state]  # read before the forward writes them
        loss, outputs, grads = value_and_grads(lambda: self._forward(inputs, y), self._params)
        if saved:
            tf.cond(skip, lambda: _assign_all(self._state, saved), lambda: tf.constant(False))
        weights = [tf.convert_to_tensor(p) for p in self._params]  # before the update
        flags = _finite_flags([loss, *grads, *weights])
        ok = tf.reduce_all(flags)
        first = tf.logical_and(tf.logical_not(ok), tf.logical_not(skip))

        def record() -> tf.Tensor:
            self.flags.assign(flags)
            self.failed_at.assign(step)
            return tf.constant(True)

        tf.cond(first, record, lambda: tf.constant(False))

        def apply() -> tf.Tensor:
            variables, values = self._update(grads, vector)
            return _assign_all(variables, values)

        tf.cond(tf.logical_and(ok, tf.logical_not(skip)), apply, lambda: tf.constant(False))
        if not self._outputs:
            return loss, None, None
        return loss, outputs, getattr(outputs, "_keras_mask", None)

    def failure(self) -> tuple[int, np.ndarray]:
        """``(step, flags)`` of the first failing step since :meth:`reset` (step 0: none; its
        loss is the one that step returned); flags per checked tensor (the loss, the
        gradients, the weights), as :func:`finite_flags`."""
        step = int(self.failed_at.numpy())
        return step, (self.flags.numpy() if step else np.ones(0, bool))

    def reset(self) -> None:
        self.failed_at.assign(0)


def _assign_all(variables: Sequence[Any], values: Sequence[Any]) -> tf.Tensor:
    for v, value in zip(variables, values, strict=True):
        v.assign(value if value.dtype == v.dtype else tf.cast(value, v.dtype))
    return tf.constant(True)


def _finite_flags(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Per tensor, whether it is all finite, on the device: the sums of :func:`all_finite`
    first; only when one is not finite (a NaN, an infinity, or an overflowing sum of finite
    values) the exact per-tensor scan, in a branch that costs nothing otherwise."""
    sums = [tf.cast(tf.reduce_sum(t), tf.float64) for t in tensors]  # widening is exact
    cheap = tf.reduce_all(tf.math.is_finite(tf.stack(sums)))
    return tf.cond(
        cheap,
        lambda: tf.ones([len(tensors)], tf.bool),
        lambda: tf.stack([tf.reduce_all(tf.math.is_finite(t)) for t in tensors]),
    )


def host_values(tensors: Sequence[Any]) -> np.ndarray:
    """0-d tensors as one float64 array: one device-to-host transfer for a block of steps."""
    return tf.stack([tf.cast(t, tf.float64) for t in tensors]).numpy()
