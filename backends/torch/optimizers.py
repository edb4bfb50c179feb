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

Note [Multi-tensor updates]
---------------------------
A rule runs once per step on a :class:`Group` (every variable of one compute dtype), not once
per variable: each Python operator of the rule is one ``torch._foreach_*`` call over all the
tensors, so the Python cost of a step no longer grows with the number of variables. The
foreach ops are the plain binary ops (never the fused ``addcmul``/``lerp`` forms, whose single
rounding differs), applied element by element as ``a + b``, ``a * 0.9`` are: the bits are
those of the per-tensor rule (``tests/test_optimizers.py`` compares them with TensorFlow's).
Inside a compiled step (``torch.compile``) a coefficient may be a 0-d tensor; those operators
loop over the tensors, which the compiler traces into one fused kernel anyway.
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


def same_shape(x: torch.Tensor, y: torch.Tensor) -> bool:
    return x.shape == y.shape


def dtype_name(x: torch.Tensor) -> str:
    return str(x.dtype).removeprefix("torch.")


def slot(p: torch.Tensor, value: float) -> torch.Tensor:
    """A new state tensor shaped like ``p``, filled with ``value`` (rounded once to p's dtype)."""
    return torch.full_like(p, value, requires_grad=False)


def no_grad():
    """Updates are not part of the autograd graph."""
    return torch.no_grad()


def read(v: torch.Tensor) -> torch.Tensor:
    """A variable's value in the update's compute dtype (half variables read as float32). The
    variable itself otherwise: the rules only read it, inside :func:`no_grad`."""
    return v.detach().float() if v.dtype in _HALF else v


def assign(v: torch.Tensor, value: torch.Tensor) -> None:
    v.copy_(value)  # copy_ rounds a float32 result once to a half variable's dtype


def assign_numpy(v: torch.Tensor, value: np.ndarray) -> None:
    # core's conversion reads ml_dtypes bfloat16 arrays, which torch.as_tensor cannot.
    v.copy_(core.convert_to_tensor(np.asarray(value)).to(device=v.device, dtype=v.dtype))


def to_numpy(v: torch.Tensor) -> np.ndarray:
    return core.to_numpy(v).copy()  # bfloat16 comes back as ml_dtypes.bfloat16, as on TF


class Group:
    """Tensors updated together by one rule (Note [Multi-tensor updates]): each operator is
    one ``torch._foreach_*`` call. The other operand is a Group (element by element), a Python
    number (rounded once to each tensor's dtype, as ``t * 0.9``) or a 0-d tensor (a compiled
    step's coefficient)."""

    __slots__ = ("items",)

    def __init__(self, items: Any):
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def _binary(self, other: Any, foreach: Any, single: Any) -> Group:
        if isinstance(other, Group):
            return Group(foreach(self.items, other.items))
        if isinstance(other, torch.Tensor):  # traced into one kernel inside torch.compile
            return Group([single(a, other) for a in self.items])
        return Group(foreach(self.items, other))

    def __add__(self, other: Any) -> Group:
        return self._binary(other, torch._foreach_add, torch.add)

    __radd__ = __add__  # IEEE addition commutes, bit for bit

    def __sub__(self, other: Any) -> Group:
        return self._binary(other, torch._foreach_sub, torch.sub)

    def __rsub__(self, other: Any) -> Group:
        # c - x is c + (-x) exactly (negation is exact, both are one correctly rounded sum).
        return Group(torch._foreach_neg(self.items)) + other

    def __mul__(self, other: Any) -> Group:
        return self._binary(other, torch._foreach_mul, torch.mul)

    __rmul__ = __mul__  # IEEE multiplication commutes, bit for bit

    def __truediv__(self, other: Any) -> Group:
        # (No __rtruediv__: torch computes c / t as reciprocal(t) * c, two roundings.)
        return self._binary(other, torch._foreach_div, torch.div)

    def __neg__(self) -> Group:
        return Group(torch._foreach_neg(self.items))


def group(tensors: list[torch.Tensor]) -> Group:
    """Tensors of one compute dtype, for one application of a rule."""
    return Group(tensors)


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    if x.dtype == torch.float64:
        return torch.sqrt(x)
    if (x.dtype == torch.float32 and x.device.type == "cpu" and not x.requires_grad
            and not torch.compiler.is_compiling()):  # fmt: skip
        # numpy's float32 square root is the IEEE instruction (correctly rounded), ~6x cheaper
        # than the float64 round trip below (which was the costliest part of an Adam step).
        with np.errstate(invalid="ignore"):  # NaN for x < 0, silently, as torch.sqrt
            return torch.from_numpy(np.asarray(np.sqrt(x.numpy())))  # asarray: 0-d results too
    return torch.sqrt(x.double()).to(x.dtype)


def sqrt(x: torch.Tensor | Group) -> torch.Tensor | Group:
    """Square root, correctly rounded below float64.

    torch's vectorised CPU ``sqrt`` (a 0.5001-ulp bound) is not IEEE-exact: on an AVX512
    machine about 17% of float32 results (and ~1% of float64 ones) are 1 ulp away from the
    correctly rounded value that TensorFlow (and numpy) return. The float64 square root of a
    float32/float16/bfloat16 value, rounded once, *is* the correctly rounded result (53 bits
    ≥ 2·24 + 2), and so is numpy's float32 one (the IEEE instruction), which CPU tensors use
    outside compiled code. float64 keeps torch's own (≤ 1 ulp).
    """
    if isinstance(x, Group):
        if all(t.dtype == torch.float64 for t in x.items):
            return Group(torch._foreach_sqrt(x.items))
        return Group([_sqrt(t) for t in x.items])
    return _sqrt(x)


def maximum(x: Any, y: Any) -> Any:
    """Elementwise max; ``y`` may be a Python float (rounded to x's dtype, as in TF)."""
    if isinstance(x, Group):
        if isinstance(y, Group):
            return Group(torch._foreach_maximum(x.items, y.items))
        return Group([maximum(t, y) for t in x.items])
    if isinstance(y, torch.Tensor):
        return torch.maximum(x, y)
    return torch.maximum(x, torch.tensor(y, dtype=x.dtype, device=x.device))


def select(condition: Any, a: Any, b: Any) -> Any:
    """``a`` where ``condition`` holds, else ``b``: a Python bool picks on the host (eager
    steps), a 0-d bool tensor selects on the device (compiled steps)."""
    if isinstance(condition, bool):
        return a if condition else b
    if isinstance(a, Group):
        return Group([torch.where(condition, p, q) for p, q in zip(a.items, b.items, strict=True)])
    return torch.where(condition, a, b)


def coefficient(vector: torch.Tensor, index: int, dtype: str) -> torch.Tensor:
    """Entry ``index`` of a compiled step's float64 coefficients as a 0-d tensor of ``dtype``
    (rounded once, as a Python float is when it meets a tensor; ``"bool"``: nonzero)."""
    value = vector[index]
    return value != 0 if dtype == "bool" else value.to(core.native_dtype(dtype))


def assign_all(variables: list[torch.Tensor], values: list[torch.Tensor]) -> None:
    """Every variable overwritten by its new value in one call (float32 results rounded once
    to half variables, as ``copy_`` does)."""
    torch._foreach_copy_(variables, values)


def clip(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.clamp(x, low, high)


def sum_squares(x: torch.Tensor) -> torch.Tensor:
    """``Σ x²`` as a 0-d tensor (summation order is torch's own)."""
    return torch.sum(x * x)
