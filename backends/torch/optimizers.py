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
foreach ops are the plain binary ops, applied element by element as ``a + b``, ``a * 0.9``
are, and the two fused forms whose rounding is exactly theirs (Note [Fused operations]; never
``lerp`` or a general ``addcmul``, which may round once where the rule rounds twice): the bits
are those of the per-tensor rule (``tests/test_optimizers.py`` compares them with
TensorFlow's).
Inside a compiled step (``torch.compile``) a coefficient may be a 0-d tensor; those operators
loop over the tensors, which the compiler traces into one fused kernel anyway.

Note [Deferred updates], Note [Fused operations] and how a traced update runs (Note [Traced
updates] in :mod:`dualnet.optimizer_base`) are in ``backends/torch/_update_plans.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from dualnet.backends.torch import core
from dualnet.backends.torch._update_groups import Coefficient, Group
from dualnet.backends.torch._update_plans import Pool, Program

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
    if g.requires_grad:  # (autograd's gradients do not, unless create_graph=True)
        g = g.detach()
    target = _math_dtype(p.dtype)
    return g if g.dtype == target else g.to(target)


def gradients(grads: list[Any], variables: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """``grads`` as they are when each is a plain torch tensor of its variable's shape and
    dtype, not half precision and not requiring grad (what :func:`gradient` would return
    unchanged); None otherwise (then :func:`gradient`, one by one, converts or raises)."""
    for g, p in zip(grads, variables, strict=True):
        if (type(g) is not torch.Tensor or g.requires_grad or g.dtype != p.dtype
                or p.dtype in _HALF or g.shape != p.shape):  # fmt: skip
            return None
    return grads


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


# Groups of at least this many elements in all are deferred (Note [Deferred updates]): all of
# them, since a traced update makes its plan once (Note [Traced updates]). Recording a small
# group's operations every step cost more than running them (Adam on six 2- to 9-element
# tensors: 166 µs deferred, 124 at once); traced, it costs less (93 µs; SGD 14 µs against 21
# at once). The tests set it past every size to run the operations at once.
DEFERRED_MIN_ELEMENTS = 0


def defers(variables: list[torch.Tensor]) -> bool:
    """Whether the groups of these variables are deferred (Note [Deferred updates])."""
    return sum(v.numel() for v in variables) >= DEFERRED_MIN_ELEMENTS


def group(tensors: list[torch.Tensor], deferred: bool = False) -> Group:
    """Tensors of one compute dtype, for one application of a rule (``deferred``: see
    :func:`defers`)."""
    return Group(tensors, deferred=deferred)


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
        if x.deferred:
            return Group._node("sqrt", x)
        items = x.items
        if all(t.dtype == torch.float64 for t in items):
            return Group(torch._foreach_sqrt(items))
        if (all(t.dtype == torch.float32 and t.device.type == "cpu" and not t.requires_grad
                for t in items) and not torch.compiler.is_compiling()):  # fmt: skip
            # _sqrt's numpy path for every tensor, under one errstate (entering it costs more
            # than a small tensor's root).
            with np.errstate(invalid="ignore"):  # NaN for x < 0, silently, as torch.sqrt
                return Group([torch.from_numpy(np.asarray(np.sqrt(t.numpy()))) for t in items])
        return Group([_sqrt(t) for t in items])
    return _sqrt(x)


def maximum(x: Any, y: Any) -> Any:
    """Elementwise max; ``y`` may be a Python float (rounded to x's dtype, as in TF)."""
    if isinstance(x, Group):
        if x.deferred or (isinstance(y, Group) and y.deferred):
            return Group._node("maximum", x, y)
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


def scratch() -> Pool:
    """The reusable buffers of an optimizer's deferred updates (Note [Deferred updates])."""
    return Pool()


def assign_groups(variables: list[list[torch.Tensor]], values: list[Group], pool: Pool | None,
                  owned: list[bool]) -> None:  # fmt: skip
    """``variables[j]`` overwritten by the tensors of ``values[j]`` (:class:`_Plan` says how:
    deferred operations into ``pool``'s buffers, fused where the rounding allows, a weight's
    ``w ± x`` and a slot's new value written into the variable itself). ``owned[j]``: the
    optimizer owns the variables (its slots), so they may take a value's buffers over."""
    Program(variables, values, owned, pool if pool is not None else Pool()).run()


def trace(leaves: list[Group], variables: list[list[torch.Tensor]], values: list[Group],
          owned: list[bool], pool: Pool,
          coefficients: dict[str, Any]) -> Program | None:  # fmt: skip
    """The update just recorded (deferred ``leaves`` built as :func:`group` builds them, then
    the rule with :func:`coefficients`' numbers), kept to run again (:func:`replay`); None
    when it cannot be: an operation was computed while the rule ran, or the rule made a group
    of its own (of tensors it read), so that this step's tensors would be used forever."""
    known = {id(g) for g in leaves}
    stack, seen = list(values), set()
    while stack:  # every group the values are made of is a recorded leaf or an operation
        g = stack.pop()
        if not isinstance(g, Group) or id(g) in seen:
            continue
        seen.add(id(g))
        if g.op is None:
            if id(g) not in known:
                return None
        else:
            stack.extend(g.args)
    program = Program(variables, values, owned, pool)
    if program.plan.precomputed:
        return None
    program.leaves, program.coefficients = leaves, coefficients
    return program


def replay(program: Program, leaves: list[list[torch.Tensor]], k: dict[str, Any]) -> None:
    """Run a traced update on this step's leaf tensors (in the order :func:`trace` was given
    its leaves) and coefficients ``k``."""
    for leaf, items in zip(program.leaves, leaves, strict=True):
        leaf._items = items
    program.coefficients.update(k)
    try:
        program.run()
    finally:  # the kept program holds no tensor of this step (its gradients, half copies)
        for leaf in program.leaves:
            leaf._items = None


def coefficients(k: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(values, symbols)`` for tracing a rule: ``values`` a dict the symbols read (filled
    with ``k`` now, with each later step's by :func:`replay`), ``symbols`` the rule's
    coefficients, a :class:`Coefficient` for each number (bools stay: a trace is kept per
    value of them)."""
    values = dict(k)
    return values, {name: v if isinstance(v, bool) else Coefficient(values, name)
                    for name, v in k.items()}  # fmt: skip


def clip(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.clamp(x, low, high)


def sum_squares(x: torch.Tensor) -> torch.Tensor:
    """``Σ x²`` as a 0-d tensor (summation order is torch's own)."""
    return torch.sum(x * x)
