"""How torch runs an optimizer's rule: groups of tensors, deferred and fused operations,
traced plans (``backends/torch/optimizers.py`` is the backend's face; TensorFlow has no
counterpart, its rule runs as written).

Note [Deferred updates]
-----------------------
Written as it reads, a rule makes a new tensor per operator: Adam's is 14 tensors the size of
the model per step. For large models that allocation is what an eager step pays most for, more
than the arithmetic: the allocator returns the freed blocks to the system and the next step
faults them in again (on the 784-512-512-10 MLP, about 3.1 ms of Adam's 4.7 ms per update,
measured with glibc told to keep freed memory, and the forward and backward passes after it ran
~25% slower). So a rule's operators on a deferred :class:`Group` only record the operation,
and :class:`Program` decides, for the whole update and before anything runs (:class:`_Plan`):

* which sums of a product or quotient run as one fused operation (Note [Fused operations]);
* where each result goes: over an operand that nothing reads afterwards (a temporary of this
  step, never a gradient, a weight or a slot, and not a result read later: the same operation
  with one operand also the output, so the same correctly rounded values; only ``+`` and
  ``*`` may write over their *second* operand, as IEEE addition and multiplication commute
  bit for bit while subtraction, division and ``maximum``, which keeps its first operand of
  ``max(-0, +0)``, do not); straight into a slot once nothing reads the slot's old value
  (Adam's ``m`` and ``v``: no copy, no second buffer); else into a buffer of a pool kept
  between steps (:class:`Pool`, one per optimizer), into which temporaries return after
  their last use;
* which variables are updated in place: a weight's new value ``w ± x`` (``w`` the weight
  itself) is written as ``x`` added to or subtracted from it, fused with ``x`` when ``x`` is a
  product by a number or a quotient nothing else reads (SGD's whole update is one
  ``addcmul_``, Adam's last step one ``addcdiv_``); a slot value computed elsewhere takes
  over its buffer (``set_``); anything else is copied.

The pool buffers are reserved before the first operation, and the operations run in the order
the rule wrote them; the only variables written before the last operation are slots whose new
values are final, so on CPU an update cannot stop half-way for want of memory (an interrupt
can still stop it between a slot and the weights, as any in-place optimizer, ``torch.optim``'s
included; off the CPU the correctly rounded float32 square root makes a float64 temporary,
which can fail there too). Adam then keeps two
buffers per weight (the denominator and the step), where the rule written out made fourteen
tensors a step. The arithmetic is the rule's, operation for operation, so the bits are too
(``tests/test_optimizers.py`` compares them with TensorFlow's, which runs the rule as
written, and with the undeferred, unfused path, for every rule and dtype).

Note [Fused operations]
-----------------------
Each pass of an update over the weights costs about as much as the arithmetic it does, and a
rule is mostly sums of a product or a quotient: Adam's ``m + (g - m)·(1 - β₁)``,
``√v / c + ε``, ``w - m·α / d``. torch has three-operand kernels for those, but their rounding
is not always the rule's: ``addcmul(x, a, b)`` computes ``x + a·b`` and on CPUs with FMA the
kernel may round that once (measured with torch's AVX2 and AVX512 kernels: 15% of float32
results differ from ``x + a*b``; its portable kernel does not contract), and ``lerp`` and
``add(alpha=)`` call FMA explicitly. Two forms are exact with any kernel:

* ``addcmul(x, d, 1, value=c)`` = ``x + (c·d)·1``: the product ``c·d`` is rounded, the
  multiplication by 1 is exact, so a contracted ``fma(c·d, 1, x)`` rounds the sum once, as
  ``x + d*c`` does. ``x - d*c`` is the same with ``value=-c`` (IEEE negation is exact and
  rounding symmetric; ``c`` is rounded to the tensor's dtype once, as in ``d*c``). On CPU
  only: CUDA's kernel computes ``fma(value, t1·t2, x)``, one rounding for the product by
  ``c`` and the sum, so on CUDA these stay two operations.
* ``addcdiv(x, n, y, value=±1)`` = ``x ± (n / y)``: the quotient is rounded, the product by
  ±1 exact, then the sum (``y`` or ``x`` may be a number, as a 0-d tensor rounded once; not
  both, which torch's CPU kernel runs unvectorised: 211 µs where the two operations take 64).

So wherever the rule adds or subtracts a product by a Python number or a quotient that nothing
else reads, the two operations run as one of these (:func:`_fusion`; all three of torch's CPU
kernels, default, AVX2 and AVX512, give the rule's bits: ``tests/test_optimizers.py``). Adam's
update goes from 13 passes and a square root to 9 and a square root. ``FUSE`` False
(``_update_groups.py``) runs every operation separately (what the tests compare with).
"""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch
from dualnet.backends.torch._update_groups import (
    Group,
    _fused_operands,
    _fusion,
    _like,
    _one,
    _pending,
    _resolve,
)


class Program:
    """One update: the variables, their new values, and the :class:`_Plan` that computes and
    writes them. Kept by a traced optimizer and run again every step with new leaves (Note
    [Traced updates])."""

    def __init__(self, variables: list[list[torch.Tensor]], values: list[Group],
                 owned: list[bool], pool: Pool):  # fmt: skip
        self.variables, self.values, self.owned = variables, values, owned
        pairs = list(enumerate(zip(variables, values, strict=True)))
        # w ± x where w is the variables themselves (their leaf, read as they are).
        candidates = {j: (vs, g) for j, (vs, g) in pairs
                      if g.op in ("add", "sub") and g._items is None
                      and isinstance(g.args[1], Group) and g.args[0].op is None
                      and all(map(operator.is_, g.args[0].items, vs))}  # fmt: skip
        targets = {j: (vs, g) for j, (vs, g) in pairs if owned[j] and _pending(g)}
        self.plan = _Plan([g for g in values if _deferred(g)], pool, candidates, targets,
                          values)  # fmt: skip
        self.done = self.plan.in_place | self.plan.in_target
        # Leaves read after variables are overwritten by copies or hand-overs (a value that is
        # a leaf, a write's operand) and holding such a variable's tensors: their values are
        # taken before anything is written. (No built-in rule has one: a rule returning a
        # slot's old value as another slot's new one would.)
        overwritten = {id(t) for j, vs in enumerate(variables) if j not in self.done for t in vs}
        late = [g for g in values if isinstance(g, Group) and g.op is None]
        for _, value, spec in self.plan.writes:
            late += [a for a in (value.args if spec is None else spec[1:4])
                     if isinstance(a, Group) and a.op is None]  # fmt: skip
        held = {id(g): g for g in late if any(id(t) in overwritten for t in g._items or ())}
        self.snapshots = list(held.values())

    def run(self) -> None:
        """Every value computed before anything else is written (a slot's new value may go
        straight into it: :class:`_Plan`); then copies, the weights' in-place updates, and
        buffer hand-overs; then the pool gets every buffer back."""
        plan, variables, values = self.plan, self.variables, self.values
        for leaf in self.snapshots:
            leaf._items = [t.clone() for t in leaf._items]
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
        if copies:  # (copy_ rounds a float32 result once to a half variable's dtype)
            torch._foreach_copy_([t for j in copies for t in variables[j]],
                                 [t for j in copies for t in values[j].items])  # fmt: skip
        plan.write()
        for j in swaps:
            for v, t in zip(variables[j], values[j].items, strict=True):
                old = torch.empty(0, dtype=v.dtype, device=v.device).set_(v)
                v.set_(t)  # the slot now owns the new value's storage
                t.set_(old)  # and the pool's tensor the slot's old storage
        plan.release()


def _deferred(x: Any) -> bool:
    """``x`` is a deferred operation (computed into pool buffers), not a leaf or a number."""
    return isinstance(x, Group) and x.op is not None


class Pool:
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

    def __init__(self, outputs: list[Group], pool: Pool,
                 writes: dict[int, tuple[list[torch.Tensor], Group]] | None = None,
                 targets: dict[int, tuple[list[torch.Tensor], Group]] | None = None,
                 after: list[Group] = ()):  # fmt: skip
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
        self.over_x: set[int] = set()  # targets whose first operand is the slot itself
        self._choose_targets(targets or {}, [*outputs, *after])
        self.steps = self._schedule()
        self.computed: list[Group] = []
        self.assigned: dict[int, list[torch.Tensor]] = {}  # pool buffers each result took
        self.ones: dict[int, list[torch.Tensor]] = {}  # Plan._ones
        self.settled = False  # run once: every result has its buffers (release)

    def _single_use(self, inner: Group, node: Group) -> bool:
        """``inner`` is a temporary of this plan that only ``node`` reads, once."""
        return _pending(inner) and id(inner) not in self.pinned \
            and self.uses.get(id(inner)) == 1  # fmt: skip

    def _reads(self, node: Group) -> tuple[Any, ...]:
        return self.reads.get(id(node), node.args)

    def _choose_targets(self, targets: dict[int, tuple[list[torch.Tensor], Group]],
                        after: list[Group]) -> None:  # fmt: skip
        """A slot's new value is computed into the slot itself when every operation that reads
        the slot's old value (the leaf holding exactly the slot tensors) runs no later than the
        one computing the new value, and nothing read after the run (an output, a write) is
        that leaf: then no copy, no buffer swap, and two model-sized buffers fewer in Adam."""
        if not targets:
            return
        position = {id(n): i for i, n in enumerate(self.order)}
        last_read: dict[int, int] = {}  # leaf -> last position that reads it
        leaves: dict[int, Group] = {}
        last = len(self.order)  # read after the run (a value copied, an in-place write)
        reading = [(i, self._reads(n)) for i, n in enumerate(self.order)]
        reading += [(last, (g,)) for g in after]
        for _, value, spec in self.writes:
            reading.append((last, value.args if spec is None else spec[1:4]))
        tensor_read: dict[int, int] = {}  # tensor -> last position that reads it, any leaf
        for i, reads in reading:
            for a in reads:
                if isinstance(a, Group) and a.op is None and a._items:
                    last_read[id(a)] = max(last_read.get(id(a), -1), i)
                    leaves[id(a)] = a
                    for t in a._items:  # (a rule may hold the same tensors in two groups)
                        tensor_read[id(t)] = max(tensor_read.get(id(t), -1), i)
        taken: set[int] = set()
        for j, (variables, value) in targets.items():
            if id(value) not in position or id(value) in self.targets:
                continue
            here = position[id(value)]
            for key, leaf in leaves.items():
                items = leaf._items
                if (key not in taken and len(items) == len(variables)
                        and all(t is v for t, v in zip(items, variables, strict=True))
                        and max(tensor_read[id(v)] for v in variables) <= here):  # fmt: skip
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
                torch._foreach_addcmul_(variables, ds, self._ones(variables), value=value)
            else:
                torch._foreach_addcdiv_(variables, ds, ys, value=value)

    def _ones(self, like: list[torch.Tensor]) -> list[torch.Tensor]:
        """:func:`_one` for each of ``like`` (the variables or a result's buffers: the same
        dtypes and devices every run), made once."""
        ones = self.ones.get(id(like))
        if ones is None or len(ones) != len(like):
            ones = self.ones[id(like)] = [_one(t) for t in like]
        return ones

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
    """The pool keys of ``node``'s result."""
    return [(t.shape, t.dtype, t.device) for t in _like(node)]


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
