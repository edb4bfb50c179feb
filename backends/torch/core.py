"""Tensors, dtypes, devices and gradients on PyTorch."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch

from dualnet.dtypes import FLOATX, standardize

NAME = "torch"
VERSION = torch.__version__

_DTYPES = {
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float32": torch.float32,
    "float64": torch.float64,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
_device = "cpu"


def native_dtype(dtype: str) -> torch.dtype:
    return _DTYPES[standardize(dtype)]


def dtype_name(x: torch.Tensor) -> str:
    return standardize(x.dtype)


def is_tensor(x: Any) -> bool:
    return isinstance(x, torch.Tensor)


def is_plain_tensor(x: Any) -> bool:
    """True when :func:`convert_to_tensor` (no dtype) returns ``x`` itself (the hot-path test
    of ``_ops.tensor``)."""
    return isinstance(x, torch.Tensor)


def is_symbolic(x: Any) -> bool:
    """True while torch.compile traces (values are not known on the host)."""
    return bool(torch.compiler.is_compiling())


def reshape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return x.reshape(shape)


def count_nonzero(x: torch.Tensor) -> torch.Tensor:
    return torch.count_nonzero(x)


def cuda_available() -> bool:
    return torch.cuda.is_available()


@contextlib.contextmanager
def device_scope(device: str) -> Iterator[None]:
    """Place new tensors and parameters on ``device`` ("cpu" or "cuda") inside the block."""
    global _device
    previous, _device = _device, device
    # torch.device(...) as a context manager is a TorchFunctionMode: while it is active every
    # torch call and every tensor attribute read (x.dtype, x.shape) goes through a Python
    # handler (~1 µs each on CPU). When new tensors land on the CPU anyway (the default
    # device, with no other device context around) it changes nothing, so it is skipped.
    already = device == "cpu" and torch.get_default_device().type == "cpu"
    try:
        with contextlib.nullcontext() if already else torch.device(device):
            yield
    finally:
        _device = previous


def configure_precision() -> None:
    """Full-precision float32 matmuls: TF32 off, matching the TensorFlow backend's setting."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


configure_precision()


def convert_to_tensor(x: Any, dtype: str | None = None) -> torch.Tensor:
    """numpy arrays, lists, scalars or torch tensors -> a torch tensor on the current device.

    numpy arrays keep their dtype unless ``dtype`` is given; Python floats and lists of floats
    become ``float32`` (Keras's ``floatx``), as in Keras.
    """
    target = None if dtype is None else native_dtype(dtype)
    if isinstance(x, torch.Tensor):
        return x if target is None or x.dtype == target else x.to(target)
    arr = np.asarray(x)
    if target is None and arr.dtype.kind == "f" and not isinstance(x, np.ndarray | np.generic):
        target = _DTYPES[FLOATX]
    if arr.dtype.name == "bfloat16":
        # torch cannot read ml_dtypes arrays: pass the 16-bit patterns through int16 and
        # reinterpret them, so every value (a NaN's sign and payload too) arrives bit for bit.
        # (ascontiguousarray makes a 0-d array 1-d: the shape is put back.)
        raw = np.ascontiguousarray(arr).view(np.int16).reshape(arr.shape)
        bits = torch.from_numpy(raw).view(torch.bfloat16)
        return bits.to(device=_device, dtype=target or torch.bfloat16)
    return torch.as_tensor(arr, dtype=target, device=_device)


def to_numpy(x: torch.Tensor) -> np.ndarray:
    """A torch tensor -> numpy (bfloat16 becomes an ``ml_dtypes.bfloat16`` array, as in TF)."""
    t = x.detach()
    if t.dtype == torch.bfloat16:
        from dualnet.dtypes import numpy_dtype

        # The 16-bit patterns reinterpreted (a float32 detour would drop a NaN's sign).
        return t.cpu().contiguous().view(torch.int16).numpy().view(numpy_dtype("bfloat16"))
    return t.cpu().numpy()


def vjp(
    fn: Callable[..., torch.Tensor],
    args: Sequence[torch.Tensor],
    wrt: Sequence[int],
    cotangent: np.ndarray,
    params: Sequence[torch.Tensor] = (),
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Evaluate ``out = fn(*args)`` and the vector-Jacobian product ``cotangent · ∂out/∂a``.

    Gradients are returned for ``args[i]`` for each ``i`` in ``wrt``, then for each of
    ``params`` (native parameters that ``fn`` reads). An input that does not reach the output
    gets a zero gradient.
    """
    leaves = list(args)
    for i in wrt:
        leaves[i] = args[i].detach().requires_grad_(True)
    targets = [leaves[i] for i in wrt] + list(params)
    with torch.enable_grad():
        out = fn(*leaves)
        ct = convert_to_tensor(np.asarray(cotangent), dtype=dtype_name(out))
        grads = torch.autograd.grad(out, targets, grad_outputs=ct, allow_unused=True)
    return out.detach(), [
        torch.zeros_like(t) if g is None else g for t, g in zip(targets, grads, strict=True)
    ]


def get_mask(x: Any) -> Any:
    """The mask attached to ``x`` (Note [Masks] in :mod:`dualnet.layers.base`), or None."""
    return getattr(x, "_keras_mask", None)


def attach_mask(x: torch.Tensor, mask: Any) -> torch.Tensor:
    """An alias of ``x`` (a view: no copy, same autograd history) carrying ``mask``; ``x``
    itself is left alone."""
    y = x.view_as(x)
    y._keras_mask = mask if mask is None else convert_to_tensor(mask, "bool").to(x.device)
    return y


def flatten_concat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """Every tensor flattened, concatenated into one vector (one output for a gradient check
    of a layer with several outputs); a single tensor is returned as it is."""
    if len(tensors) == 1:
        return tensors[0]
    return torch.cat([t.reshape(-1) for t in tensors])
