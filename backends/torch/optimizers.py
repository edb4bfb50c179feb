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
(``tests/test_optimizers.py`` runs every rule both ways in every dtype). Small groups run
immediately: recording costs more than allocating a few thousand elements.

Note [Fused operations]
-----------------------
Each pass of an update over the weights costs about as much as the arithmetic it does, and a
rule is mostly sums of a product or a quotient: Adam's ``m + (g - m)·(1 - β₁)``,
``√v / c + ε``, ``w - m·α / d``. torch has three-operand kernels for those, but their rounding
is not always the rule's: ``addcmul(x, a, b)`` computes ``x + a·b`` and on CPUs with FMA the
kernel may round that once (measured on AVX512: 15% of float32 results differ from
``x + a*b``), and ``lerp`` and ``add(alpha=)`` call FMA explicitly. Two forms are exact for
any kernel:

* ``addcmul(x, d, 1, value=c)`` = ``x + (c·d)·1``: the product ``c·d`` is rounded, the
  multiplication by 1 is exact, so a contracted ``fma(c·d, 1, x)`` rounds the sum once, as
  ``x + d*c`` does. ``x - d*c`` is the same with ``value=-c`` (IEEE negation is exact and
  rounding symmetric; ``c`` is rounded to the tensor's dtype once, as in ``d*c``).
* ``addcdiv(x, n, y, value=±1)`` = ``x ± (n / y)``: the quotient is rounded, the product by
  ±1 exact, then the sum (``y`` or ``x`` may be a number, as a 0-d tensor rounded once; not
  both, which torch's CPU kernel runs unvectorised).

So wherever the rule adds or subtracts a product by a Python number or a quotient that nothing
else reads, the two operations run as one of these (:func:`_fusion`): in a deferred plan, for
an immediate group (a product or quotient by a number is then computed only when something
reads it as it is), and for a weight's in-place write (``w - g·lr``, SGD's whole update, is one
``addcmul_`` into the weights). Adam's update goes from 13 passes and a square root to 8 and
a square root, with the same bits (``tests/test_optimizers.py``: both paths, every rule and
dtype, against TensorFlow's separately rounded operations, on every CPU kernel torch
dispatches to).
"""

from __future__ import annotations

import operator
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
    def _node(cls, op: str, *args: Any, deferred: bool = True) -> Group:
        node = cls.__new__(cls)
        node._items, node.op, node.args, node.deferred = None, op, args, deferred
        return node

    @property
    def items(self) -> list[torch.Tensor]:
        if self._items is None:
            if self.deferred:  # read before assign_groups: run it now, into new tensors
                _Plan([self], _Pool()).run()
            else:  # a lazy product or quotient by a number, read as it is
                x, c = self.args
                self._items = (torch._foreach_mul if self.op == "mul"
                               else torch._foreach_div)(x.items, c)  # fmt: skip
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
        if name in ("mul", "div") and _number(other):
            # x·c, x/c: computed when read, unless a sum takes them in whole (Note [Fused
            # operations]).
            return Group._node(name, self, other, deferred=False)
        fused = _fusion(name, self, other, lambda inner: True)
        if fused is not None:  # (a lazy operand is a pure function of its own: never stale)
            return Group(_run_fused(fused))
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


def _number(x: Any) -> bool:
    """A Python number operand (rounded once to the tensor's dtype where it meets one), or a
    traced rule's :class:`Coefficient`."""
    return isinstance(x, float | int | Coefficient) and not isinstance(x, bool)


def _resolve(x: Any) -> Any:
    """A number operand's value now (a :class:`Coefficient` reads the step's)."""
    return x.value() if isinstance(x, Coefficient) else x


class Coefficient:
    """A step-dependent number of a traced rule (Note [Traced updates]): ``k[name]`` (negated
    with ``sign`` -1) of the step being run. Only operands of the rule's tensor operations
    take one; Python arithmetic or a test on it raises TypeError, which makes the optimizer
    run that rule untraced."""

    __slots__ = ("name", "sign", "values")

    def __init__(self, values: dict[str, Any], name: str, sign: int = 1):
        self.values, self.name, self.sign = values, name, sign

    def value(self) -> float:
        v = self.values[self.name]
        return -v if self.sign < 0 else v

    def __neg__(self) -> Coefficient:
        return Coefficient(self.values, self.name, -self.sign)

    def _refuse(self, *args: Any) -> Any:
        raise TypeError(f"the coefficient {self.name!r} of a traced update is only an operand "
                        "of the rule's tensor operations")  # fmt: skip

    __bool__ = __float__ = __int__ = __index__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = _refuse


_ONES: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}


def _one(like: torch.Tensor) -> torch.Tensor:
    """A 0-d 1 of ``like``'s dtype and device: ``addcmul``'s exact second factor (Note [Fused
    operations])."""
    key = (like.dtype, like.device)
    one = _ONES.get(key)
    if one is None:
        one = _ONES[key] = torch.ones((), dtype=like.dtype, device=like.device)
    return one


def _scalar(x: Any, like: torch.Tensor) -> torch.Tensor:
    """A Python number as a 0-d tensor of ``like``'s dtype: rounded once, as ``t + x`` rounds
    it."""
    return torch.tensor(x, dtype=like.dtype, device=like.device)


def _fusion(op: str | None, a: Any, b: Any, absorbable: Any) -> tuple | None:
    """How ``a op b`` runs as one fused operation with the rounding of the two (Note [Fused
    operations]): ``("addcmul", x, d, None, value, inner)`` for ``x + value·d`` or
    ``("addcdiv", x, n, y, value, inner)`` for ``x + value·(n / y)``, where ``inner`` is the
    product or quotient operand taken in whole (``absorbable(inner)`` must allow it); None
    when the operation has no such form."""
    if op not in ("add", "sub"):
        return None
    pairs = [(b, a, 1 if op == "add" else -1)] + ([(a, b, 1)] if op == "add" else [])
    for inner, x, sign in pairs:
        if not (isinstance(inner, Group) and inner.op in ("mul", "div")
                and inner._items is None and inner is not x and absorbable(inner)):  # fmt: skip
            continue
        d, c = inner.args
        if not isinstance(d, Group):
            continue
        if inner.op == "mul" and isinstance(x, Group) and _number(c):
            # x - d·c = x + (-c)·d: IEEE negation is exact and rounding is symmetric.
            return ("addcmul", x, d, None, -c if sign < 0 else c, inner)
        if inner.op == "div" and ((isinstance(x, Group) and (isinstance(c, Group) or _number(c)))
                                  or (_number(x) and isinstance(c, Group))):  # fmt: skip
            # (Not with both x and y numbers: torch's CPU kernel vectorises a loop with one
            # broadcast operand only; with two, addcdiv took 211 µs where the division and the
            # sum take 64 on 0.4 M float32 elements.)
            return ("addcdiv", x, d, c, sign, inner)
    return None


def _fused_operands(spec: tuple) -> tuple[list[torch.Tensor], list[torch.Tensor],
                                          list[torch.Tensor] | None]:  # fmt: skip
    """``(x, d, y)`` of a fused operation as tensor lists (numbers as 0-d tensors of the
    other operand's dtype; ``y`` None for ``addcmul``, whose second factor is :func:`_one`)."""
    kind, x, d, y, _, _ = spec
    ds = d.items
    xs = x.items if isinstance(x, Group) else [_scalar(_resolve(x), t) for t in ds]
    if kind == "addcmul":
        return xs, ds, None
    return xs, ds, y.items if isinstance(y, Group) else [_scalar(_resolve(y), t) for t in ds]


def _run_fused(spec: tuple) -> list[torch.Tensor]:
    """A fused operation (:func:`_fusion`) into new tensors."""
    xs, ds, ys = _fused_operands(spec)
    value = _resolve(spec[4])
    if ys is None:
        return torch._foreach_addcmul(xs, ds, [_one(t) for t in ds], value=value)
    return torch._foreach_addcdiv(xs, ds, ys, value=value)


# Groups of at least this many elements in all are deferred (Note [Deferred updates]); below
# it the Python bookkeeping costs more than the allocations it saves.
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


def scratch() -> _Pool:
    """The reusable buffers of an optimizer's deferred updates (Note [Deferred updates])."""
    return _Pool()


def assign_groups(variables: list[list[torch.Tensor]], values: list[Group], pool: _Pool | None,
                  owned: list[bool]) -> None:  # fmt: skip
    """``variables[j]`` overwritten by the tensors of ``values[j]`` (:class:`_Plan` says how:
    deferred operations into ``pool``'s buffers, fused where the rounding allows, a weight's
    ``w ± x`` and a slot's new value written into the variable itself). ``owned[j]``: the
    optimizer owns the variables (its slots), so they may take a value's buffers over."""
    _Program(variables, values, owned, pool if pool is not None else _Pool()).run()


class _Program:
    """One update: the variables, their new values, and the :class:`_Plan` that computes and
    writes them. Kept by a traced optimizer and run again every step with new leaves (Note
    [Traced updates])."""

    def __init__(self, variables: list[list[torch.Tensor]], values: list[Group],
                 owned: list[bool], pool: _Pool):  # fmt: skip
        self.variables, self.values, self.owned = variables, values, owned
        pairs = list(enumerate(zip(variables, values, strict=True)))
        # w ± x where w is the variables themselves (their leaf, read as they are).
        candidates = {j: (vs, g) for j, (vs, g) in pairs
                      if g.op in ("add", "sub") and g._items is None
                      and isinstance(g.args[1], Group) and g.args[0].op is None
                      and all(map(operator.is_, g.args[0].items, vs))}  # fmt: skip
        targets = {j: (vs, g) for j, (vs, g) in pairs if owned[j] and _pending(g)}
        self.plan = _Plan([g for g in values if _deferred(g)], pool, candidates, targets)
        self.done = self.plan.in_place | self.plan.in_target

    def run(self) -> None:
        """Every value computed before anything else is written (a slot's new value may go
        straight into it: :class:`_Plan`); then copies, the weights' in-place updates, and
        buffer hand-overs; then the pool gets every buffer back."""
        plan, variables, values = self.plan, self.variables, self.values
        plan.run()
        taken: set[int] = set()
        swaps, copies = [], []
        for j, (vs, g) in enumerate(zip(variables, values, strict=True)):
            if j in self.done:
                continue
            same = _deferred(g) and all(v.dtype == t.dtype and v.shape == t.shape
                                        for v, t in zip(vs, g.items, strict=True))  # fmt: skip
            if self.owned[j] and same and id(g) not in taken:
                taken.add(id(g))
                swaps.append(j)
            else:
                copies.append(j)
        if copies:
            assign_all([t for j in copies for t in variables[j]],
                       [t for j in copies for t in values[j].items])  # fmt: skip
        plan.write()
        for j in swaps:
            for v, t in zip(variables[j], values[j].items, strict=True):
                old = torch.empty(0, dtype=v.dtype, device=v.device).set_(v)
                v.set_(t)  # the slot now owns the new value's storage
                t.set_(old)  # and the pool's tensor the slot's old storage
        plan.release()


def trace(leaves: list[Group], variables: list[list[torch.Tensor]], values: list[Group],
          owned: list[bool], pool: _Pool,
          coefficients: dict[str, Any]) -> _Program | None:  # fmt: skip
    """The update just recorded (deferred ``leaves`` built as :func:`group` builds them, then
    the rule with :func:`coefficients`' numbers), kept to run again (:func:`replay`); None
    when it cannot be (an operation was computed while the rule ran, so its result would be
    this step's forever)."""
    program = _Program(variables, values, owned, pool)
    if program.plan.precomputed:
        return None
    program.leaves, program.coefficients = leaves, coefficients
    return program


def replay(program: _Program, leaves: list[list[torch.Tensor]], k: dict[str, Any]) -> None:
    """Run a traced update on this step's leaf tensors (in the order :func:`trace` was given
    its leaves) and coefficients ``k``."""
    for leaf, items in zip(program.leaves, leaves, strict=True):
        leaf._items = items
    program.coefficients.update(k)
    program.run()


def coefficients(k: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(values, symbols)`` for tracing a rule: ``values`` a dict the symbols read (filled
    with ``k`` now, with each later step's by :func:`replay`), ``symbols`` the rule's
    coefficients, a :class:`Coefficient` for each number (bools stay: a trace is kept per
    value of them)."""
    values = dict(k)
    return values, {name: v if isinstance(v, bool) else Coefficient(values, name)
                    for name, v in k.items()}  # fmt: skip


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
    """The deferred operations behind ``outputs``, run in the order the rule wrote them (Note
    [Deferred updates]), with sums of a product or quotient fused (Note [Fused operations]).

    ``writes``: ``{j: (weights, w ± x)}``, variables that :meth:`write` may update in place
    afterwards (:attr:`in_place`: those it does). ``targets``: ``{j: (slots, value)}``,
    variables the optimizer owns whose new value may be computed straight into them once
    nothing reads their old value (:attr:`in_target`: those that are). Every decision is made
    here, before anything runs; :meth:`run` reserves the buffers it will take from the pool
    first, so once it starts writing it allocates nothing."""

    def __init__(self, outputs: list[Group], pool: _Pool,
                 writes: dict[int, tuple[list[torch.Tensor], Group]] | None = None,
                 targets: dict[int, tuple[list[torch.Tensor], Group]] | None = None):  # fmt: skip
        self.pool = pool
        self.pinned = {id(g) for g in outputs}  # results read after the run: never overwritten
        self.uses: dict[int, int] = {}
        self.precomputed = False
        order: list[Group] = []
        seen: set[int] = set()
        stack: list[tuple[Group, bool]] = [(g, False) for g in reversed(outputs)]
        while stack:  # depth first, operands before the operation that reads them
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            if id(node) in seen or node.op is None:
                continue
            if node._items is not None:  # computed already (read while the rule ran)
                self.precomputed = True
                continue
            seen.add(id(node))
            stack.append((node, True))
            for a in node.args:
                if _pending(a):
                    self.uses[id(a)] = self.uses.get(id(a), 0) + 1
                    stack.append((a, False))
        # What each fused operation reads instead of its arguments, and the absorbed operands.
        self.reads: dict[int, tuple[Any, ...]] = {}
        self.fused: dict[int, tuple] = {}
        absorbed: set[int] = set()
        self.in_place: set[int] = set()
        self.writes: list[tuple[list[torch.Tensor], Group, tuple | None]] = []
        for j, (variables, value) in (writes or {}).items():
            # v ± x in place: only a new value no other operation reads (else it is computed
            # once, and written as the targets below or copied).
            if self.uses.get(id(value)) or sum(g is value for g in outputs) != 1:
                continue
            self.in_place.add(j)
            absorbed.add(id(value))
            x = value.args[1]
            spec = None
            if _pending(x) and x.op in ("mul", "div") and self.uses.get(id(x)) == 1 \
                    and id(x) not in self.pinned:  # fmt: skip
                # read by nothing else: v ± d·c or v ± n/y as one operation.
                spec = _fusion(value.op, _WEIGHTS, x, lambda inner: True)
            if spec is not None:
                absorbed.add(id(x))
                self.pinned.update(id(a) for a in x.args if isinstance(a, Group))
            else:
                self.pinned.add(id(x))
            self.writes.append((variables, value, spec))
        for node in order:
            if id(node) in absorbed or node.op not in ("add", "sub"):
                continue
            spec = _fusion(node.op, *node.args,
                           lambda inner, node=node: self._single_use(inner, node))  # fmt: skip
            if spec is not None:
                absorbed.add(id(spec[5]))
                self.fused[id(node)] = spec
                self.reads[id(node)] = tuple(a for a in spec[1:4] if a is not None)
        self.order = [node for node in order if id(node) not in absorbed]
        self.targets: dict[int, list[torch.Tensor]] = {}
        self.in_target: set[int] = set()
        self._choose_targets(targets or {}, outputs)
        self.steps = self._schedule()
        self.computed: list[Group] = []
        self.assigned: dict[int, list[torch.Tensor]] = {}  # pool buffers each result took
        self.settled = False  # run once: every result has its buffers (release)

    def _single_use(self, inner: Group, node: Group) -> bool:
        """``inner`` is a temporary of this plan that only ``node`` reads, once."""
        return _pending(inner) and id(inner) not in self.pinned \
            and self.uses.get(id(inner)) == 1  # fmt: skip

    def _reads(self, node: Group) -> tuple[Any, ...]:
        return self.reads.get(id(node), node.args)

    def _choose_targets(self, targets: dict[int, tuple[list[torch.Tensor], Group]],
                        outputs: list[Group]) -> None:  # fmt: skip
        """A slot's new value is computed into the slot itself when every operation that reads
        the slot's old value (the leaf holding exactly the slot tensors) runs no later than the
        one computing the new value, and nothing read after the run (an output, a write) is
        that leaf: then no copy, no buffer swap, and two model-sized buffers fewer in Adam."""
        if not targets:
            return
        position = {id(n): i for i, n in enumerate(self.order)}
        last_read: dict[int, int] = {}  # leaf -> last position that reads it
        leaves: dict[int, Group] = {}
        after = len(self.order)  # read after the run
        reading = [(i, self._reads(n)) for i, n in enumerate(self.order)]
        reading += [(after, (g,)) for g in outputs]
        for _, value, spec in self.writes:
            reading.append((after, value.args if spec is None else spec[1:4]))
        for i, reads in reading:
            for a in reads:
                if isinstance(a, Group) and a.op is None and a._items:
                    last_read[id(a)] = max(last_read.get(id(a), -1), i)
                    leaves[id(a)] = a
        taken: set[int] = set()
        self.over_x: set[int] = set()  # targets whose first operand is the slot itself
        for j, (variables, value) in targets.items():
            if id(value) not in position or id(value) in self.targets:
                continue
            for key, leaf in leaves.items():
                items = leaf._items
                if (key not in taken and len(items) == len(variables)
                        and all(t is v for t, v in zip(items, variables, strict=True))
                        and last_read[key] <= position[id(value)]):  # fmt: skip
                    taken.add(key)
                    self.targets[id(value)] = list(variables)
                    self.in_target.add(j)
                    spec = self.fused.get(id(value))
                    if (spec[1] if spec is not None else value.args[0]) is leaf:
                        self.over_x.add(id(value))
                    break

    def _destination(self, node: Group, uses: dict[int, int]) -> str:
        """Where ``node``'s result goes: ``"target"`` (its variables), over an operand that
        dies here (``"x"``, the first; ``"d"``, a fused operation's second; ``"y"``, the
        divisor or a commuting second operand), or ``"pool"``."""
        if id(node) in self.targets:
            return "target"
        reads = self._reads(node)

        def dying(a: Any) -> bool:  # a temporary nothing reads after node: node may overwrite
            return (isinstance(a, Group) and a.op is not None and id(a) not in self.pinned
                    and uses.get(id(a)) == sum(b is a for b in reads))  # fmt: skip

        spec = self.fused.get(id(node))
        if spec is not None:
            x, d, y = spec[1:4]
            return "x" if dying(x) else "d" if dying(d) else "y" if dying(y) else "pool"
        if dying(node.args[0]):
            return "x"
        if node.op in _OPS and _OPS[node.op][2] and dying(node.args[1]):
            return "y"
        return "pool"

    def _schedule(self) -> list[tuple[Group, str, list[Group]]]:
        """Per operation, in order: where its result goes and the temporaries that die after
        it (their buffers back to the pool, unless the operation wrote over them)."""
        uses = dict(self.uses)
        steps = []
        for node in self.order:
            dest = self._destination(node, uses)
            reads = self._reads(node)
            freed = []
            for a in {id(a): a for a in reads if isinstance(a, Group)}.values():
                if id(a) in uses:
                    uses[id(a)] -= sum(b is a for b in reads)
                    if uses[id(a)] == 0 and id(a) not in self.pinned:
                        freed.append(a)
            steps.append((node, dest, freed))
        return steps

    def _operand(self, node: Group, dest: str) -> Any:
        """The operand ``dest`` names (``"x"``, ``"d"``, ``"y"``)."""
        spec = self.fused.get(id(node))
        args = spec[1:4] if spec is not None else (node.args[0], None, node.args[-1])
        return args["xdy".index(dest)]

    def _reserve(self) -> None:
        """Put in the pool every buffer the run will take that it lacks, before anything runs
        (so an update cannot fail half-way for want of memory)."""
        free = {key: len(ts) for key, ts in self.pool.free.items()}
        missing: list[tuple[Any, ...]] = []
        for node, dest, freed in self.steps:
            if dest == "pool":
                for key in _keys(node):
                    if free.get(key, 0):
                        free[key] -= 1
                    else:
                        missing.append(key)
            written = self._operand(node, dest) if dest in ("x", "d", "y") else None
            for a in freed:
                if a is not written:
                    for key in _keys(a):
                        free[key] = free.get(key, 0) + 1
        self.pool.give([torch.empty(shape, dtype=dtype, device=device)
                        for shape, dtype, device in missing])  # fmt: skip

    def run(self) -> None:
        if not self.settled:  # (from the second run on, every result has its buffers)
            self._reserve()
        self.computed = []
        for node, dest, freed in self.steps:
            out = self._compute(node, dest)
            node._items = out
            self.computed.append(node)
            for a in freed:
                if a._items is not out and not self.settled:  # not overwritten by node: free
                    self.pool.give(a._items)
                a._items = None

    def write(self) -> None:
        """The weights' in-place updates ``w ± x`` (after :meth:`run`)."""
        for variables, value, spec in self.writes:
            if spec is None:
                op = torch._foreach_add_ if value.op == "add" else torch._foreach_sub_
                op(variables, value.args[1].items)
                continue
            _, ds, ys = _fused_operands(spec)
            value = _resolve(spec[4])
            if ys is None:
                torch._foreach_addcmul_(variables, ds, [_one(t) for t in ds], value=value)
            else:
                torch._foreach_addcdiv_(variables, ds, ys, value=value)

    def release(self) -> None:
        """Every buffer this plan computed back to the pool, for the next step (a target's
        are its variables: only forgotten). A plan run again (Note [Traced updates]) keeps
        the buffers each result got the first time: the same operations in the same order
        take and free them the same way every run, and between runs they only hold
        temporaries, so other plans may use them too."""
        for node in self.computed:
            if node._items is not None and id(node) not in self.targets and not self.settled:
                self.pool.give(node._items)
            node._items = None
        self.settled = True

    def _compute(self, node: Group, dest: str) -> list[torch.Tensor]:
        spec = self.fused.get(id(node))
        if spec is not None:
            return self._compute_fused(node, spec, dest)
        x = node.args[0]
        xs = x.items
        out = self._out(node, dest, xs)
        if node.op == "sqrt":
            _sqrt_all(xs, out)
            return out
        if node.op == "neg":
            for t, o in zip(xs, out, strict=True):
                torch.neg(t, out=o)
            return out
        y = _resolve(node.args[1])
        ys = y.items if isinstance(y, Group) else None
        inplace, single, _ = _OPS[node.op]
        if ys is None and (node.op == "maximum" or isinstance(y, torch.Tensor)):
            scalar = [_operand(y, t) for t in xs]  # per tensor: a 0-d tensor operand
        else:
            scalar = None
        into, other = (xs, ys) if self._over_x(node, dest) else (ys, xs) if dest == "y" \
            else (None, None)  # fmt: skip
        if into is not None:
            if scalar is not None:
                for t, c in zip(into, scalar, strict=True):
                    single(t, c, out=t)
            else:  # one foreach call: the same op, rounded the same way, written in place
                inplace(into, other if other is not None else y)
            return out
        for j, (t, o) in enumerate(zip(xs, out, strict=True)):
            operand = ys[j] if ys is not None else scalar[j] if scalar is not None else y
            single(t, operand, out=o)
        return out

    def _over_x(self, node: Group, dest: str) -> bool:
        """``node``'s result goes over its first operand's own tensors (that operand dies
        here, or it is the slot the result is written into)."""
        return dest == "x" or (dest == "target" and id(node) in self.over_x)

    def _out(self, node: Group, dest: str, like: list[torch.Tensor]) -> list[torch.Tensor]:
        if dest == "target":
            return self.targets[id(node)]
        if dest == "pool":
            out = self.assigned.get(id(node))
            if out is None:
                out = self.assigned[id(node)] = [self.pool.take(t) for t in like]
            return out
        return self._operand(node, dest).items

    def _compute_fused(self, node: Group, spec: tuple, dest: str) -> list[torch.Tensor]:
        """``x + value·d`` (addcmul) or ``x + value·(d / y)`` (addcdiv), written where
        ``dest`` says."""
        value = _resolve(spec[4])
        xs, ds, ys = _fused_operands(spec)
        out = self._out(node, dest, ds)
        if self._over_x(node, dest):  # in place: one foreach call over x's own tensors
            if ys is None:
                torch._foreach_addcmul_(xs, ds, [_one(a) for a in ds], value=value)
            else:
                torch._foreach_addcdiv_(xs, ds, ys, value=value)
            return out
        for t, a, b, o in zip(xs, ds, ys or [None] * len(ds), out, strict=True):
            if b is None:
                torch.addcmul(t, a, _one(a), value=value, out=o)
            else:
                torch.addcdiv(t, a, b, value=value, out=o)
        return out


def _keys(node: Group) -> list[tuple[Any, ...]]:
    """The pool keys of ``node``'s result: those of its first tensor operand (every operation
    is elementwise over tensors of one shape, dtype and device)."""
    while node._items is None:
        node = next(a for a in node.args if isinstance(a, Group))
    return [(t.shape, t.dtype, t.device) for t in node._items]


def _pending(x: Any) -> bool:
    """``x`` is an operation not computed yet (a plan computes it)."""
    return isinstance(x, Group) and x.op is not None and x._items is None


# Where a write's fusion (:func:`_fusion`) expects the weights: they are its ``x``.
_WEIGHTS = Group([])


def _sqrt_all(xs: list[torch.Tensor], out: list[torch.Tensor]) -> None:
    """:func:`sqrt` of each ``x`` written into its ``out`` (which may be ``x``), correctly
    rounded."""
    with np.errstate(invalid="ignore"):  # NaN for x < 0, silently, as torch.sqrt
        for x, o in zip(xs, out, strict=True):
            if x.dtype == torch.float64:
                torch.sqrt(x, out=o)
            elif (x.dtype == torch.float32 and x.device.type == "cpu"
                  and not torch.compiler.is_compiling()):  # fmt: skip
                np.sqrt(x.detach().numpy(), out=o.numpy())  # the IEEE instruction (see _sqrt)
            else:
                o.copy_(torch.sqrt(x.double()))  # the float64 root rounded once, as in _sqrt


def clip(x: torch.Tensor, low: float, high: float) -> torch.Tensor:
    return torch.clamp(x, low, high)


def sum_squares(x: torch.Tensor) -> torch.Tensor:
    """``Σ x²`` as a 0-d tensor (summation order is torch's own)."""
    return torch.sum(x * x)
