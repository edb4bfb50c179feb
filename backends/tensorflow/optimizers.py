"""Optimizer primitives on TensorFlow (namesakes of ``backends/torch/optimizers.py``).

The update rules are written once, in :mod:`dualnet.optimizers`. ``keras.optimizers`` is not
used to apply them: Keras keeps a float learning rate in a *float32* variable (``floatx``) even
for float64 weights, evaluates schedules in float32, and computes its scalar coefficients in
the weight dtype, so its float64 trajectories cannot match a float64 torch run tightly; the
tests run the real ``keras.optimizers`` as an external check of ``from_keras_defaults``.

A rule runs once per step on a :class:`Group` (Note [Multi-tensor updates] in
``backends/torch/optimizers.py``); TensorFlow has no multi-tensor kernels, so here a Group's
operator is the per-tensor op in a loop: the same ops as before, in a different order.
"""

from __future__ import annotations

import contextlib
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from dualnet.errors import bad_type

NAME = "tensorflow"


def variable(p: Any, index: int) -> tf.Variable:
    """The ``tf.Variable`` behind ``params[index]`` (a ``keras.Variable`` is unwrapped)."""
    if isinstance(p, keras.Variable):
        p = p.value  # Keras 3 on TF keeps the tf.Variable in `.value`
    if not isinstance(p, tf.Variable) or not p.dtype.is_floating:
        raise bad_type(f"params[{index}]", p, "a floating-point tf.Variable (or keras.Variable)")
    return p


_HALF = (tf.float16, tf.bfloat16)


def _math_dtype(dtype: tf.DType) -> tf.DType:
    """float16/bfloat16 variables are updated in float32 and rounded once (see read/assign)."""
    return tf.float32 if dtype in _HALF else dtype


def gradient(g: Any, p: tf.Variable, index: int) -> tf.Tensor:
    """``grads[index]`` as a dense tensor of the update's compute dtype: ``p``'s, float32 for
    half variables (IndexedSlices are densified)."""
    if isinstance(g, tf.IndexedSlices):
        g = tf.convert_to_tensor(g)
    if not tf.is_tensor(g):
        raise bad_type(f"grads[{index}]", g, "a TensorFlow tensor (or None to skip the variable)")
    if not g.shape.is_fully_defined() and p.shape.is_fully_defined():
        # In a graph, densified slices (an Embedding's gradient) lose their static shape: give
        # them the variable's, checked when the step runs.
        g = tf.ensure_shape(g, p.shape)
    target = _math_dtype(p.dtype)
    return g if g.dtype == target else tf.cast(g, target)


def shape(x: tf.Tensor) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def same_shape(x: tf.Tensor, y: tf.Tensor) -> bool:
    return x.shape == y.shape


def dtype_name(x: tf.Tensor) -> str:
    return x.dtype.name


def slot(p: tf.Variable, value: float) -> tf.Variable:
    """A new non-trainable state variable shaped like ``p``, filled with ``value``."""
    return tf.Variable(tf.fill(tf.shape(p), tf.constant(value, dtype=p.dtype)), trainable=False)


def no_grad():
    """TensorFlow only records gradients inside a GradientTape; nothing to switch off."""
    return contextlib.nullcontext()


def read(v: tf.Variable) -> tf.Tensor:
    """A variable's value in the update's compute dtype (half variables read as float32)."""
    t = tf.convert_to_tensor(v)
    return tf.cast(t, tf.float32) if t.dtype in _HALF else t


def assign(v: tf.Variable, value: tf.Tensor) -> None:
    # A float32 result is rounded once to a half variable's dtype (as torch's copy_ does).
    v.assign(value if value.dtype == v.dtype else tf.cast(value, v.dtype))


def assign_numpy(v: tf.Variable, value: np.ndarray) -> None:
    v.assign(tf.cast(tf.convert_to_tensor(np.asarray(value)), v.dtype))


def to_numpy(v: tf.Variable | tf.Tensor) -> np.ndarray:
    return np.array(v.numpy())


class Group:
    """Tensors updated together by one rule: each operator applied to every tensor. The other
    operand is a Group (element by element), a Python number (converted once to each tensor's
    dtype) or a 0-d tensor (a compiled step's coefficient)."""

    __slots__ = ("items",)

    def __init__(self, items: Any):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def _binary(self, other: Any, op: Any) -> Group:
        if isinstance(other, Group):
            return Group([op(a, b) for a, b in zip(self.items, other.items, strict=True)])
        return Group([op(a, other) for a in self.items])

    def __add__(self, other: Any) -> Group:
        return self._binary(other, lambda a, b: a + b)

    def __radd__(self, other: Any) -> Group:
        return self._binary(other, lambda a, b: b + a)

    def __sub__(self, other: Any) -> Group:
        return self._binary(other, lambda a, b: a - b)

    def __rsub__(self, other: Any) -> Group:
        return self._binary(other, lambda a, b: b - a)

    def __mul__(self, other: Any) -> Group:
        return self._binary(other, lambda a, b: a * b)

    def __rmul__(self, other: Any) -> Group:
        return self._binary(other, lambda a, b: b * a)

    def __truediv__(self, other: Any) -> Group:
        return self._binary(other, lambda a, b: a / b)

    def __neg__(self) -> Group:
        return Group([-a for a in self.items])


def defers(variables: list[tf.Variable]) -> bool:
    """Never: TensorFlow's ops run as they are called (the namesake on torch defers large
    groups to reuse buffers)."""
    return False


def gradients(grads: list[Any], variables: list[tf.Variable]) -> None:
    """None: TensorFlow's gradients go through :func:`gradient` one by one (the namesake on
    torch passes plain ones through in one call)."""
    return None


def group(tensors: list[tf.Tensor], deferred: bool = False) -> Group:
    """Tensors of one compute dtype, for one application of a rule."""
    return Group(tensors)


def sqrt(x: tf.Tensor | Group) -> tf.Tensor | Group:
    if isinstance(x, Group):
        return Group([tf.sqrt(t) for t in x.items])
    return tf.sqrt(x)


def maximum(x: Any, y: Any) -> Any:
    if isinstance(x, Group):
        if isinstance(y, Group):
            return Group([maximum(a, b) for a, b in zip(x.items, y.items, strict=True)])
        return Group([maximum(a, y) for a in x.items])
    if not tf.is_tensor(y):
        # tf.constant(y, dtype) rounds the Python float once; tf.cast(y, ...) would first
        # make a float32 tensor and so round a float64 constant twice.
        y = tf.constant(y, dtype=x.dtype)
    return tf.maximum(x, y)


def select(condition: Any, a: Any, b: Any) -> Any:
    """``a`` where ``condition`` holds, else ``b``: a Python bool picks while tracing or
    eagerly, a bool tensor selects when the step runs."""
    if isinstance(condition, bool):
        return a if condition else b
    if isinstance(a, Group):
        return Group([tf.where(condition, p, q) for p, q in zip(a.items, b.items, strict=True)])
    return tf.where(condition, a, b)


def coefficient(vector: tf.Tensor, index: int, dtype: str) -> tf.Tensor:
    """Entry ``index`` of a compiled step's float64 coefficients as a 0-d tensor of ``dtype``
    (rounded once, as a Python float is when it meets a tensor; ``"bool"``: nonzero)."""
    value = vector[index]
    return tf.not_equal(value, 0.0) if dtype == "bool" else tf.cast(value, dtype)


def assign_all(variables: list[tf.Variable], values: list[tf.Tensor]) -> None:
    for v, value in zip(variables, values, strict=True):
        assign(v, value)


def scratch() -> None:
    """No reusable buffers on TensorFlow (its tensors are immutable; Note [Deferred updates] in
    ``backends/torch/_update_plans.py`` is torch's)."""
    return None


def assign_groups(variables: list[list[tf.Variable]], values: list[Group], pool: None,
                  owned: list[bool]) -> None:  # fmt: skip
    """``variables[j]`` overwritten by the tensors of ``values[j]``, after every value is
    computed (``owned``, which torch uses to hand buffers over, changes nothing here)."""
    assign_all([v for vs in variables for v in vs], [t for g in values for t in g.items])


def clip(x: tf.Tensor, low: float, high: float) -> tf.Tensor:
    return tf.clip_by_value(x, tf.constant(low, x.dtype), tf.constant(high, x.dtype))


def sum_squares(x: tf.Tensor) -> tf.Tensor:
    """``Σ x²`` as a 0-d tensor (summation order is TensorFlow's own)."""
    return tf.reduce_sum(x * x)
