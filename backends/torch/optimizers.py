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

Note [Deferred updates]
-----------------------
Written as it reads, a rule makes a new tensor per operator: Adam's is 14 tensors the size of
the model per step. For large models that allocation is what an eager step pays most for, more
than the arithmetic: the allocator returns the freed blocks to the system and the next step
faults them in again (on the 784-512-512-10 MLP, about 3.1 ms of Adam's 4.7 ms per update,
measured with glibc told to keep freed memory, and the forward and backward passes after it ran
~25% slower). So a group of at least
:data:`DEFERRED_MIN_ELEMENTS` elements is *deferred*: its operators only record the operation
(a :class:`Group` node), and :func:`assign_groups` runs them all, in the order the rule wrote
them, before writing any variable (an error still leaves the weights and the state untouched).
Running them with every use known, it

* writes a result over an operand that nothing reads afterwards (the operand is a temporary of
  this step, never a gradient, a weight or a slot, and not a result the caller reads): the
  same operation with one operand also the output, so the same correctly rounded values. Only
  ``+`` and ``*`` may write over their *second* operand (IEEE addition and multiplication
  commute bit for bit; subtraction, division and ``maximum``, which keeps its first operand of
  ``max(-0, +0)``, do not);
* takes every other result from a pool of buffers kept between steps (:func:`scratch`, one per
  optimizer), into which each temporary returns after its last use and each result after it is
  written. From the second step on, an update allocates nothing; the pool holds as many buffers
  as the rule has temporaries alive at once (Adam: four per weight, five with AMSGrad; the
  immediate path allocates those and more, every step).

Then the variables are written (:func:`assign_groups`): a new weight ``w - x`` or ``w + x``
(``w`` the weight read as it is, ``x`` deferred, or computed at once in a small group, where
``w ± x`` alone is recorded) is written as ``x`` subtracted from or added to the weight in
place, the same operation with its result where it goes; a new slot value takes
over its buffer (``set_``: the slot tensor, which only the optimizer holds, points to the new
storage and the pool gets the old one); anything else is copied. That saves a pass over the
weights and one per slot.

The arithmetic is that of the immediate path, operation for operation, so the bits are too
(``tests/test_optimizers.py`` runs every rule both ways in every dtype). Fusing operations
(``addcmul``, ``lerp``, ``addcdiv``) would round once where the rule rounds twice; it is not
done. Small groups run immediately: recording costs more than allocating a few thousand
elements.
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
    if g.requires_grad:  # (autograd's gradients do not, unless create_graph=True)
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
    step's coefficient).

    A Group of large tensors is *deferred* (Note [Deferred updates]): its operators record the
    operation and :func:`assign_groups` runs the recorded ones, the same operations in the same
    order, into reused buffers."""

    __slots__ = ("_items", "args", "deferred", "op")

    def __init__(self, items: Any, *, deferred: bool = False):
        self._items: list[torch.Tensor] | None = list(items)
        self.op: str | None = None  # None: a leaf (the tensors given, never written)
        self.args: tuple[Any, ...] = ()
        self.deferred = deferred

    @classmethod
    def _node(cls, op: str, *args: Any) -> Group:
        node = cls.__new__(cls)
        node._items, node.op, node.args, node.deferred = None, op, args, True
        return node

    @property
    def items(self) -> list[torch.Tensor]:
        if self._items is None:  # read before assign_groups: run it now, into new tensors
            _Plan([self], _Pool()).run()
        return self._items  # type: ignore[return-value]

    def _weights(self) -> bool:
        """A leaf of model weights (``nn.Parameter``s, read as they are): the only tensors an
        update writes in place."""
        return self.op is None and all(isinstance(t, torch.nn.Parameter)
                                       for t in self._items)  # type: ignore[union-attr]  # fmt: skip

    def __len__(self) -> int:
        return len(self.items) if self.op is None else len(self.args[0])

    def _binary(self, other: Any, name: str, foreach: Any, single: Any) -> Group:
        if self.deferred or (isinstance(other, Group) and other.deferred):
            return Group._node(name, self, other)
        if name in ("add", "sub") and isinstance(other, Group) and self._weights():
            # w ± x, the new value of the weights: recorded, and written in place by
            # assign_groups (the same operation where its result goes; Note [Deferred
            # updates]) instead of computed into new tensors and copied.
            return Group._node(name, self, other)
        if isinstance(other, Group):
            return Group(foreach(self.items, other.items))
        if isinstance(other, torch.Tensor):  # traced into one kernel inside torch.compile
            return Group([single(a, other) for a in self.items])
        return Group(foreach(self.items, other))

    def __add__(self, other: Any) -> Group:
        return self._binary(other, "add", torch._foreach_add, torch.add)

    __radd__ = __add__  # IEEE addition commutes, bit for bit

    def __sub__(self, other: Any) -> Group:
        return self._binary(other, "sub", torch._foreach_sub, torch.sub)

    def __rsub__(self, other: Any) -> Group:
        # c - x is c + (-x) exactly (negation is exact, both are one correctly rounded sum).
        return -self + other

    def __mul__(self, other: Any) -> Group:
        return self._binary(other, "mul", torch._foreach_mul, torch.mul)

    __rmul__ = __mul__  # IEEE multiplication commutes, bit for bit

    def __truediv__(self, other: Any) -> Group:
        # (No __rtruediv__: torch computes c / t as reciprocal(t) * c, two roundings.)
        return self._binary(other, "div", torch._foreach_div, torch.div)

    def __neg__(self) -> Group:
        if self.deferred:
            return Group._node("neg", self)
        return Group(torch._foreach_neg(self.items))


# Groups of at least this many elements in all are deferred (Note [Deferred updates]); below
# it the Python bookkeeping costs more than the allocations it saves.
DEFERRED_MIN_ELEMENTS = 1 << 15


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


def scratch() -> _Pool:
    """The reusable buffers of an optimizer's deferred updates (Note [Deferred updates])."""
    return _Pool()


def assign_groups(variables: list[list[torch.Tensor]], values: list[Group], pool: _Pool | None,
                  owned: list[bool]) -> None:  # fmt: skip
    """``variables[j]`` overwritten by the tensors of ``values[j]``. Every value is computed
    before any variable is written: the deferred operations run first, into ``pool``'s buffers
    (Note [Deferred updates]). Then, in this order: the variables that take a copy of their
    value, in one ``_foreach_copy_``; a weight whose value is ``w ± x`` (``w`` the weight
    itself, ``x`` deferred) gets ``x`` added or subtracted in place, the same operation
    written where its result goes; a variable the optimizer owns (``owned[j]``: its slots)
    takes its value's buffers over (``set_``, no copy), its old buffers going to the pool.
    The pool then gets every buffer back for the next step."""
    pool = pool if pool is not None else _Pool()
    fused = {j for j, (vs, g) in enumerate(zip(variables, values, strict=True))
             if g.op in ("add", "sub") and g._items is None and isinstance(g.args[1], Group)
             and g.args[0].op is None and all(a is v for a, v in zip(g.args[0].items, vs,
                                                                      strict=True))}  # fmt: skip
    outputs = [g.args[1] if j in fused else g for j, g in enumerate(values)]
    computed = [g for g in outputs if _deferred(g)]
    if computed:
        _Plan(computed, pool).run()
    taken: set[int] = set()
    swaps, copies = [], []
    for j, (vs, g) in enumerate(zip(variables, values, strict=True)):
        if j in fused:
            continue
        same = _deferred(g) and all(v.dtype == t.dtype and v.shape == t.shape
                                    for v, t in zip(vs, g.items, strict=True))  # fmt: skip
        if owned[j] and same and id(g) not in taken:
            taken.add(id(g))
            swaps.append(j)
        else:
            copies.append(j)
    if copies:
        assign_all([t for j in copies for t in variables[j]],
                   [t for j in copies for t in values[j].items])  # fmt: skip
    for j in fused:
        op = torch._foreach_add_ if values[j].op == "add" else torch._foreach_sub_
        op(variables[j], outputs[j].items)
    for j in swaps:
        for v, t in zip(variables[j], values[j].items, strict=True):
            old = torch.empty(0, dtype=v.dtype, device=v.device).set_(v)
            v.set_(t)  # the slot now owns the new value's storage
            t.set_(old)  # and the pool's tensor the slot's old storage
    done: set[int] = set()
    for g in computed:
        if id(g) not in done and g._items is not None:
            done.add(id(g))
            pool.give(g._items)
            g._items = None


def _deferred(x: Any) -> bool:
    """``x`` is a deferred operation (computed into pool buffers), not a leaf or a number."""
    return isinstance(x, Group) and x.op is not None


class _Pool:
    """Free scratch tensors by (shape, dtype, device), kept from one step to the next."""

    __slots__ = ("free",)

    def __init__(self) -> None:
        self.free: dict[tuple[Any, ...], list[torch.Tensor]] = {}

    def take(self, like: torch.Tensor) -> torch.Tensor:
        stack = self.free.get((like.shape, like.dtype, like.device))
        return stack.pop() if stack else torch.empty(like.shape, dtype=like.dtype,
                                                     device=like.device)  # fmt: skip

    def give(self, tensors: list[torch.Tensor]) -> None:
        for t in tensors:
            self.free.setdefault((t.shape, t.dtype, t.device), []).append(t)


# Per operation: (foreach in place, per-tensor with out=, commutes bit for bit).
_OPS: dict[str, tuple[Any, Any, bool]] = {
    "add": (torch._foreach_add_, torch.add, True),
    "mul": (torch._foreach_mul_, torch.mul, True),
    "sub": (torch._foreach_sub_, torch.sub, False),
    "div": (torch._foreach_div_, torch.div, False),
    # max(-0, +0) keeps its first operand: not commutative in the bits.
    "maximum": (torch._foreach_maximum_, torch.maximum, False),
}


def _operand(x: Any, like: torch.Tensor) -> Any:
    """A Python number as torch.maximum needs it (a 0-d tensor of the other's dtype)."""
    return torch.tensor(x, dtype=like.dtype, device=like.device) if isinstance(x, float | int) \
        else x  # fmt: skip


class _Plan:
    """The deferred operations behind ``outputs``, run in the order the rule wrote them
    (Note [Deferred updates])."""

    def __init__(self, outputs: list[Group], pool: _Pool):
        self.pool = pool
        self.pinned = {id(g) for g in outputs}  # results the caller reads: never overwritten
        self.uses: dict[int, int] = {}
        self.order: list[Group] = []
        seen: set[int] = set()
        stack: list[tuple[Group, bool]] = [(g, False) for g in reversed(outputs)]
        while stack:  # depth first, operands before the operation that reads them
            node, expanded = stack.pop()
            if expanded:
                self.order.append(node)
                continue
            if id(node) in seen or node.op is None or node._items is not None:
                continue
            seen.add(id(node))
            stack.append((node, True))
            for a in node.args:
                if isinstance(a, Group) and a.op is not None and a._items is None:
                    self.uses[id(a)] = self.uses.get(id(a), 0) + 1
                    stack.append((a, False))

    def _dying(self, a: Any, node: Group) -> bool:
        """``a`` is a temporary that nothing reads after ``node``: ``node`` may overwrite it."""
        return (isinstance(a, Group) and a.op is not None and id(a) not in self.pinned
                and self.uses.get(id(a)) == sum(b is a for b in node.args))  # fmt: skip

    def run(self) -> None:
        for node in self.order:
            node._items = self._compute(node)
            for a in {id(a): a for a in node.args if isinstance(a, Group)}.values():
                if id(a) not in self.uses:
                    continue
                self.uses[id(a)] -= sum(b is a for b in node.args)
                if self.uses[id(a)] == 0 and id(a) not in self.pinned and a._items is not None:
                    if a._items is not node._items:  # not overwritten by node: free
                        self.pool.give(a._items)
                    a._items = None

    def _compute(self, node: Group) -> list[torch.Tensor]:
        x = node.args[0]
        xs = x.items
        if node.op in ("neg", "sqrt"):
            out = xs if self._dying(x, node) else [self.pool.take(t) for t in xs]
            for t, o in zip(xs, out, strict=True):
                _sqrt_into(t, o) if node.op == "sqrt" else torch.neg(t, out=o)
            return out
        y = node.args[1]
        ys = y.items if isinstance(y, Group) else None
        inplace, single, commutes = _OPS[node.op]
        if ys is None and (node.op == "maximum" or isinstance(y, torch.Tensor)):
            scalar = [_operand(y, t) for t in xs]  # per tensor: a 0-d tensor operand
        else:
            scalar = None
        into_x = self._dying(x, node)
        into_y = not into_x and commutes and ys is not None and self._dying(y, node)
        if into_x or into_y:
            into, other = (xs, ys) if into_x else (ys, xs)
            if scalar is not None:
                for t, c in zip(into, scalar, strict=True):
                    single(t, c, out=t)
            else:  # one foreach call: the same op, rounded the same way, written in place
                inplace(into, other if other is not None else y)
            return into
        out = [self.pool.take(t) for t in xs]
        for j, (t, o) in enumerate(zip(xs, out, strict=True)):
            operand = ys[j] if ys is not None else scalar[j] if scalar is not None else y
            single(t, operand, out=o)
        return out


def _sqrt_into(x: torch.Tensor, out: torch.Tensor) -> None:
    """:func:`sqrt` of ``x`` written into ``out`` (which may be ``x``), correctly rounded."""
    if x.dtype == torch.float64:
        torch.sqrt(x, out=out)
    elif x.dtype == torch.float32 and x.device.type == "cpu" and not torch.compiler.is_compiling():
        with np.errstate(invalid="ignore"):  # NaN for x < 0, silently, as torch.sqrt
            np.sqrt(x.detach().numpy(), out=out.numpy())  # the IEEE instruction (see _sqrt)
    else:
        out.copy_(torch.sqrt(x.double()))  # the float64 root rounded once, as in _sqrt


def clip(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.clamp(x, low, high)


def sum_squares(x: torch.Tensor) -> torch.Tensor:
    """``Σ x²`` as a 0-d tensor (summation order is torch's own)."""
    return torch.sum(x * x)
