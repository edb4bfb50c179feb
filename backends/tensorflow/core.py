"""Tensors, dtypes, devices and gradients on TensorFlow (tf.keras = Keras 3)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any

# Keras 3 must run on TensorFlow here, whatever the user's environment says.
os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ start-up chatter off stderr

import keras
import numpy as np
import tensorflow as tf

from dualnet.dtypes import FLOATX, standardize

NAME = "tensorflow"
VERSION = f"{tf.__version__} (keras {keras.__version__})"

if keras.backend.backend() != "tensorflow":  # keras was imported earlier with another backend
    raise ImportError(
        f"dualnet's tensorflow backend needs Keras on TensorFlow, but keras was already imported "
        f"with backend {keras.backend.backend()!r}; set KERAS_BACKEND=tensorflow."
    )

_DTYPES = {
    "float16": tf.float16,
    "bfloat16": tf.bfloat16,
    "float32": tf.float32,
    "float64": tf.float64,
    "int32": tf.int32,
    "int64": tf.int64,
    "bool": tf.bool,
}
_device = "cpu"


def native_dtype(dtype: str) -> tf.DType:
    return _DTYPES[standardize(dtype)]


def dtype_name(x: tf.Tensor) -> str:
    return standardize(x.dtype)


def is_tensor(x: Any) -> bool:
    return tf.is_tensor(x) or isinstance(x, tf.Variable)


def is_plain_tensor(x: Any) -> bool:
    """True when :func:`convert_to_tensor` (no dtype) returns ``x`` itself (the hot-path test
    of ``_ops.tensor``): a tf.Tensor, eager or symbolic, but not a tf.Variable (converted)."""
    return isinstance(x, tf.Tensor) and not isinstance(x, tf.Variable)


def is_symbolic(x: Any) -> bool:
    """True for a graph tensor inside tf.function (values are not known on the host)."""
    return bool(tf.is_symbolic_tensor(x))


def reshape(x: tf.Tensor, shape: tuple[int, ...]) -> tf.Tensor:
    return tf.reshape(x, shape)


def count_nonzero(x: tf.Tensor) -> tf.Tensor:
    return tf.math.count_nonzero(x)


def cuda_available() -> bool:
    return bool(tf.config.list_physical_devices("GPU"))


@contextlib.contextmanager
def device_scope(device: str) -> Iterator[None]:
    """Place new tensors and variables on ``device`` ("cpu" or "cuda") inside the block."""
    global _device
    previous, _device = _device, device
    try:
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            yield
    finally:
        _device = previous


def configure_precision() -> None:
    """Full-precision float32 matmuls: TF32 off (TensorFlow's default is on), as on torch; and
    Grappler's arithmetic optimizer off, which rewrites a graph's ``x / sqrt(y)`` into
    ``x * rsqrt(y)`` (a different rounding: 40% of float32 results differ on random data), so
    a traced step (``tf.function``) applies the same documented rule as the eager one."""
    tf.config.experimental.enable_tensor_float_32_execution(False)
    tf.config.optimizer.set_experimental_options({"arithmetic_optimization": False})


configure_precision()


def convert_to_tensor(x: Any, dtype: str | None = None) -> tf.Tensor:
    """numpy arrays, lists, scalars or TF tensors -> a TF tensor.

    numpy arrays keep their dtype unless ``dtype`` is given; Python floats and lists of floats
    become ``float32`` (Keras's ``floatx``).
    """
    target = None if dtype is None else native_dtype(dtype)
    if is_tensor(x):
        if isinstance(x, tf.Variable):
            x = tf.convert_to_tensor(x)
        return x if target is None or x.dtype == target else tf.cast(x, target)
    arr = np.asarray(x)
    if target is None and arr.dtype.kind == "f" and not isinstance(x, np.ndarray | np.generic):
        target = _DTYPES[FLOATX]
    if target is not None and arr.dtype.name != target.name:
        # Cast through TF rather than numpy so bfloat16 rounding is TF's own.
        return tf.cast(tf.convert_to_tensor(arr), target)
    return tf.convert_to_tensor(arr)


def to_numpy(x: tf.Tensor) -> np.ndarray:
    return np.asarray(x.numpy() if hasattr(x, "numpy") else keras.ops.convert_to_numpy(x))


def vjp(
    fn: Callable[..., tf.Tensor],
    args: Sequence[tf.Tensor],
    wrt: Sequence[int],
    cotangent: np.ndarray,
    params: Sequence[tf.Variable] = (),
) -> tuple[tf.Tensor, list[tf.Tensor]]:
    """Evaluate ``out = fn(*args)`` and the vector-Jacobian product ``cotangent · ∂out/∂a``.

    Gradients are returned for ``args[i]`` for each ``i`` in ``wrt``, then for each of
    ``params``. An input that does not reach the output gets a zero gradient (torch's
    ``allow_unused`` made explicit with ``UnconnectedGradients.ZERO``).
    """
    targets = [args[i] for i in wrt] + list(params)
    with tf.GradientTape(watch_accessed_variables=False) as tape:
        for t in targets:
            tape.watch(t)
        out = fn(*args)
    ct = convert_to_tensor(np.asarray(cotangent), dtype=dtype_name(out))
    grads = tape.gradient(
        out, targets, output_gradients=ct, unconnected_gradients=tf.UnconnectedGradients.ZERO
    )
    return out, list(grads)


def get_mask(x: Any) -> Any:
    """The mask attached to ``x`` (Note [Masks] in :mod:`dualnet.layers.base`), or None."""
    return getattr(x, "_keras_mask", None)


def attach_mask(x: tf.Tensor, mask: Any) -> tf.Tensor:
    """An alias of ``x`` (``tf.identity``) carrying ``mask`` as Keras's ``_keras_mask``; ``x``
    itself is left alone."""
    y = tf.identity(x)
    y._keras_mask = mask if mask is None else convert_to_tensor(mask, "bool")
    return y


def flatten_concat(tensors: Sequence[tf.Tensor]) -> tf.Tensor:
    """Every tensor flattened, concatenated into one vector (one output for a gradient check
    of a layer with several outputs); a single tensor is returned as it is."""
    if len(tensors) == 1:
        return tensors[0]
    return tf.concat([tf.reshape(t, [-1]) for t in tensors], axis=0)
