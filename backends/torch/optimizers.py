"""Optimizer primitives on PyTorch.

The update rules themselves are written once, in :mod:`dualnet.optimizers`, with Python
operators on native tensors and the few functions below (Keras's own layout: a neutral
``update_step`` over backend ops). Every function here has a namesake in
``backends/tensorflow/optimizers.py``.

Scalars enter the rules as Python floats; ``tensor * 0.9`` rounds 0.9 once to the tensor's
dtype, exactly as TensorFlow converts the constant, so the elementwise arithmetic of the two
backends is the same sequence of correctly rounded IEEE operations. For float16/bfloat16
variables that is only true in float32 (torch multiplies a half tensor by a Python scalar in
float32, TensorFlow rounds the scalar to half first), so half variables, their gradients and
their slots are read as float32, the rule runs in float32, and each result is rounded once to
the variable's dtype when it is written back — on both backends.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from dualnet.backends.torch import core

from dualnet.errors import bad_type

NAME = "torch"


def variable(p: Any, index: int) -> torch.Tensor:
    """The native variable behind ``params[index]``: a floating torch tensor (nn.Parameter)."""
    if not isinstance(p, torch.Tensor) or not p.is_floating_point():
        raise bad_type(f"params[{index}]", p, "a floating-point torch tensor (nn.Parameter)")
    return p


_HALF = (torch.float16, torch.bfloat16)


def _math_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16/bfloat16 variables are updated in float32 and rounded once (see read/assign)."""
    return torch.float32 if dtype in _HALF else dtype


def gradient(g: Any, p: torch.Tensor, index: int) -> torch.Tensor:
    """``grads[index]`` in the update's compute dtype: ``p``'s, float32 for half variables."""
    if not isinstance(g, torch.Tensor):
        raise bad_type(f"grads[{index}]", g, "a torch tensor (or None to skip the variable)")
    g = g.detach()
    target = _math_dtype(p.dtype)
    return g if g.dtype == target else g.to(target)


def shape(x: torch.Tensor) -> tuple[int, ...]:
    return tuple(x.shape)


def dtype_name(x: torch.Tensor) -> str:
    return str(x.dtype).removeprefix("torch.")


def slot(p: torch.Tensor, value: float) -> torch.Tensor:
    """A new state tensor shaped like ``p``, filled with ``value`` (rounded once to p's dtype)."""
    return torch.full_like(p, value, requires_grad=False)


def no_grad():
    """Updates are not part of the autograd graph."""
    return torch.no_grad()


def read(v: torch.Tensor) -> torch.Tensor:
    """A variable's value in the update's compute dtype (half variables read as float32)."""
    v = v.detach()
    return v.float() if v.dtype in _HALF else v


def assign(v: torch.Tensor, value: torch.Tensor) -> None:
    v.copy_(value)  # copy_ rounds a float32 result once to a half variable's dtype


def assign_numpy(v: torch.Tensor, value: np.ndarray) -> None:
    # core's conversion reads ml_dtypes bfloat16 arrays, which torch.as_tensor cannot.
    v.copy_(core.convert_to_tensor(np.asarray(value)).to(device=v.device, dtype=v.dtype))


def to_numpy(v: torch.Tensor) -> np.ndarray:
    return core.to_numpy(v).copy()  # bfloat16 comes back as ml_dtypes.bfloat16, as on TF


def sqrt(x: torch.Tensor) -> torch.Tensor:
    """Square root, correctly rounded below float64.

    torch's vectorised CPU ``sqrt`` (SLEEF, a 0.5001-ulp bound) is not IEEE-exact: on an
    AVX512 machine about 17% of float32 results (and ~1% of float64 ones) are 1 ulp away from
    the correctly rounded value that TensorFlow (and numpy) return. The float64 square root of
    a float32/float16/bfloat16 value, rounded once, *is* the correctly rounded result (53 bits
    ≥ 2·24 + 2), so narrower dtypes go through float64. float64 keeps torch's own (≤ 1 ulp).
    """
    if x.dtype == torch.float64:
        return torch.sqrt(x)
    return torch.sqrt(x.double()).to(x.dtype)


def maximum(x: torch.Tensor, y: torch.Tensor | float) -> torch.Tensor:
    """Elementwise max; ``y`` may be a Python float (rounded to x's dtype, as in TF)."""
    if isinstance(y, torch.Tensor):
        return torch.maximum(x, y)
    return torch.maximum(x, torch.tensor(y, dtype=x.dtype, device=x.device))


def clip(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.clamp(x, low, high)


def sum_squares(x: torch.Tensor) -> torch.Tensor:
    """``Σ x²`` as a 0-d tensor (summation order is torch's own)."""
    return torch.sum(x * x)
