"""What the harness needs from TensorFlow: threads, device sync, tf.function/XLA, gradients.

Same function names as :mod:`dualnet.bench._torch`. Importing this module imports TensorFlow
(after torch, through dualnet's backend loader).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Sequence
from typing import Any

from dualnet._backend import backend_module

_core = backend_module("tensorflow").core  # imports TF; sets TF32 off (dualnet's setting)

import tensorflow as tf  # noqa: E402

NAME = "tensorflow"
MODES = ("eager", "function", "xla")


def set_threads(intra: int, inter: int) -> dict[str, Any]:
    """``tf.config.threading`` intra/inter-op pool sizes.

    TensorFlow reads them when its runtime context is initialised, i.e. at its first op; after
    that the setters raise RuntimeError. The bench CLI therefore calls this before any TF op
    runs (importing TF and Keras runs none). If it is too late the report says so and gives the
    sizes actually in force (0 = TF's default, one thread per core).
    """
    note = ""
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra)
        tf.config.threading.set_inter_op_parallelism_threads(inter)
    except RuntimeError as exc:
        note = f"not set, TensorFlow was already initialised: {exc}"
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "requested": [intra, inter],
        "note": note,
    }


def versions() -> dict[str, Any]:
    import keras

    info = tf.sysconfig.get_build_info()
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tf_cuda_build": bool(info.get("is_cuda_build")),
        "tf_cuda_version": info.get("cuda_version"),
        # oneDNN kernels are on by default for x86 TF builds; the variable turns them off.
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on)"),
    }


def precision() -> dict[str, Any]:
    return {"tensor_float_32_execution": tf.config.experimental.tensor_float_32_execution_enabled()}


def cuda_available() -> bool:
    return _core.cuda_available()


def device_name(device: str) -> str | None:
    if device != "cuda":
        return None
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return details.get("device_name")


def supports_dtype(device: str, dtype: str) -> bool:
    return True


def sync_fn(device: str) -> Callable[[], None]:
    """CUDA: ``tf.test.experimental.sync_devices()`` waits until every op queued on the GPU has
    finished, without copying anything to the host (``.numpy()`` would add a device-to-host
    transfer to the timed work, and only for the tensor read). CPU: eager TF ops and
    tf.function calls return after their kernels ran (TF's eager executor is synchronous unless
    async mode is switched on, and dualnet does not) — nothing to wait for."""
    if device == "cuda":
        return tf.test.experimental.sync_devices
    return lambda: None


def reset_compiled(modes: Collection[str]) -> None:
    """Nothing to reset: every entrant gets its own ``tf.function``, whose traces live on it
    (the counterpart of :func:`dualnet.bench._torch.reset_compiled`)."""
    del modes  # nothing to reset (a body besides the docstring, for AutoGraph's sake)


def _compile(fn: Callable[..., Any], mode: str) -> Callable[..., Any]:
    if mode == "eager":
        return fn
    if mode == "function":
        return tf.function(fn, jit_compile=False)
    if mode == "xla":
        return tf.function(fn, jit_compile=True)
    raise ValueError(f"invalid mode={mode!r} for tensorflow; expected one of {MODES}")


def build_call(
    fn: Callable[..., Any],
    args: Sequence[Any],
    mode: str,
    params: Sequence[Any] | None = None,
    *,
    step: bool = False,
) -> Callable[[], Any]:
    """A zero-argument callable running ``fn(*args)`` or, with ``params``, forward and the
    gradients with respect to ``params`` through a GradientTape with a fixed all-ones
    cotangent. In the compiled modes the tape is inside the tf.function, so forward and
    backward are one graph (one XLA cluster with ``xla``). ``step=True``: ``fn(*args)`` is a
    whole training step (its own tape and update), run or compiled as it is."""
    args = tuple(args)
    if params is None or step:
        compiled = _compile(fn, mode)
        return lambda: compiled(*args)
    # Keras 3 variables wrap a tf.Variable (``.value``); the tape watches the tf.Variable.
    params = [p if isinstance(p, tf.Variable) else p.value for p in params]
    cotangent = tf.ones_like(fn(*args))

    def forward_backward(*a: Any) -> Any:
        with tf.GradientTape(watch_accessed_variables=False) as tape:
            tape.watch(params)
            out = fn(*a)
        return tape.gradient(out, params, output_gradients=cotangent)

    compiled = _compile(forward_backward, mode)
    return lambda: compiled(*args)


def matmul_call(n: int, dtype: str, device: str) -> Callable[[], Any]:
    t = _core.native_dtype(dtype)
    with _core.device_scope(device):
        a = tf.cast(tf.random.normal((n, n)), t)
        b = tf.cast(tf.random.normal((n, n)), t)
    return lambda: tf.linalg.matmul(a, b)
