"""Groups of tensors that one optimizer rule updates together, on torch: the operators a rule
is written with, recorded as operations (Note [Deferred updates] in
``backends/torch/_update_plans.py``), and the exact fused forms of a sum of a product or a
quotient (Note [Fused operations], there too); :class:`Coefficient` is a traced rule's
number (Note [Traced updates] in :mod:`dualnet.optimizer_base`)."""

from __future__ import annotations

from typing import Any

import torch

# False: every operation of a rule runs separately (the tests compare the bits of both ways).
FUSE = True


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
                from dualnet.backends.torch import _update_plans  # (it builds on this module)

                _update_plans._Plan([self], _update_plans.Pool()).run()
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
        return _negated(v) if self.sign < 0 else v

    def __neg__(self) -> Coefficient:
        return Coefficient(self.values, self.name, -self.sign)

    def _refuse(self, *args: Any) -> Any:
        raise TypeError(f"the coefficient {self.name!r} of a traced update is only an operand "
                        "of the rule's tensor operations")  # fmt: skip

    __bool__ = __float__ = __int__ = __index__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __pow__ = __rpow__ = _refuse
    __lt__ = __le__ = __gt__ = __ge__ = __eq__ = __ne__ = _refuse
    __hash__ = object.__hash__


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
    if not FUSE or op not in ("add", "sub"):
        return None
    pairs = [(b, a, 1 if op == "add" else -1)] + ([(a, b, 1)] if op == "add" else [])
    for inner, x, sign in pairs:
        if not (isinstance(inner, Group) and inner.op in ("mul", "div")
                and inner._items is None and inner is not x and absorbable(inner)):  # fmt: skip
            continue
        d, c = inner.args
        if not isinstance(d, Group):
            continue
        if inner.op == "mul" and isinstance(x, Group) and _number(c) \
                and _device_type(d) == "cpu":  # fmt: skip
            # x - d·c = x + (-c)·d: IEEE negation is exact and rounding is symmetric. (CPU
            # only: CUDA's addcmul computes fma(value, t1·t2, x), rounding the product by c
            # and the sum once.)
            return ("addcmul", x, d, None, _negated(c) if sign < 0 else c, inner)
        if inner.op == "div" and ((isinstance(x, Group) and (isinstance(c, Group) or _number(c)))
                                  or (_number(x) and isinstance(c, Group))):  # fmt: skip
            # (Not with both x and y numbers: torch's CPU kernel vectorises a loop with one
            # broadcast operand only; with two, addcdiv took 211 µs where the division and the
            # sum take 64 on 0.4 M float32 elements.)
            return ("addcdiv", x, d, c, sign, inner)
    return None


def _negated(c: Any) -> Any:
    """``-c``, with an int 0 negated to -0.0 (as the separate ``x - d*0`` would subtract a zero
    of ``d``'s sign: ``x + (-0.0)·d`` keeps that sign)."""
    return -float(c) if isinstance(c, int) and c == 0 else -c


def _like(g: Group) -> list[torch.Tensor]:
    """Tensors with the shapes, dtypes and devices of ``g``'s: its own, or those of the first
    computed group it is made from (every operation is elementwise over tensors of one shape,
    dtype and device, and its first argument is a group, so this walks back to one)."""
    while g._items is None:
        g = next(a for a in g.args if isinstance(a, Group))
    return g._items


def _device_type(g: Group) -> str:
    """The device type of a group's tensors, or "mixed"."""
    types = {t.device.type for t in _like(g)}
    return types.pop() if len(types) == 1 else "mixed" if types else "cpu"


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


def _pending(x: Any) -> bool:
    """``x`` is an operation not computed yet (a plan computes it)."""
    return isinstance(x, Group) and x.op is not None and x._items is None
