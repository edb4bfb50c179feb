"""The optimizer base: validated hyper-parameters, the per-variable state, and the update loop
that every rule in :mod:`dualnet.optimizers` runs (clipping, weight decay, the learning rate and
its schedule, half-precision weights updated in float32); the rules and their documentation are
in :mod:`dualnet.optimizers`, which re-exports :class:`Optimizer`."""

from __future__ import annotations

import dataclasses
import operator
import sys
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from types import ModuleType
from typing import Any, ClassVar

import numpy as np

from dualnet import _ops, schedules
from dualnet._backend import backend_module
from dualnet.errors import bad_type, bad_value, check_real, describe
from dualnet.schedules import Schedule

WEIGHT_DECAY_MODES = ("decoupled", "l2")
# Traced updates an optimizer keeps (one per set of variables with a gradient and per value of
# the bool coefficients: Note [Traced updates]); past this many they are all dropped and made
# again as needed, so that ever-changing sets of skipped gradients cannot pile up recorded
# rules and plans (their buffers are the optimizer's one pool, which they share).
_MAX_PROGRAMS = 8
MOMENTUM_FORMS = ("keras", "torch")


# --------------------------------------------------------------------------------- validation
def _bool(owner: str, argument: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_type(argument, value, "a bool", where=owner)
    return value


def _choice(owner: str, argument: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise bad_value(argument, value, f"one of {', '.join(map(repr, choices))}", where=owner)
    return value


def _set(obj: Any, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)  # normalise a field of a frozen dataclass


class _Runtime:
    """The per-backend state of a built optimizer (not part of the spec)."""

    def __init__(
        self,
        backend: ModuleType,
        params: list[Any],
        natives: list[Any],
        slots: dict[str, list[Any]],
    ) -> None:
        self.backend = backend
        self.params = params  # as given (identity is how build() recognises them)
        self.natives = natives  # torch tensors / tf.Variables (keras.Variable unwrapped)
        self.slots = slots
        self.iterations = 0
        self.scratch = backend.scratch()  # buffers reused between updates (torch)
        self.weight_ids = {id(v) for v in natives}
        self.units: dict[tuple[tuple[int, ...], bool], list[_Unit]] = {}  # Optimizer._units
        self.programs: dict[tuple[Any, ...], Any] = {}  # Optimizer._traced


class _Unit:
    """Variables updated together (:meth:`Optimizer._units`): their positions among the
    gradients given (``members``) and among the variables (``indices``), the compute dtype's
    name, the variables and their slots, and whether the backend defers the group's
    operations (Note [Deferred updates] in ``backends/torch/_update_plans.py``)."""

    def __init__(self, rt: _Runtime, B: ModuleType, members: list[int], indices: list[int],
                 dtype: str, grouped: bool):  # fmt: skip
        self.members, self.indices, self.dtype = members, indices, dtype
        self.weights = [rt.natives[i] for i in indices]
        self.slots = {name: [vs[i] for i in indices] for name, vs in rt.slots.items()}
        self.deferred = grouped and B.defers(self.weights)
        # The weights and slots as the rule reads them, when that is the variables themselves
        # (B.read(v) is v: not half precision), else None (read every step).
        lists = [self.weights, *self.slots.values()]
        self.reads = lists if all(B.read(v) is v for vs in lists for v in vs) else None


def _backend_of(params: list[Any]) -> str:
    owners = set()
    for i, p in enumerate(params):
        owner = _ops.tensor_backend(p)
        keras = sys.modules.get("keras")
        if owner is None and keras is not None and isinstance(p, keras.Variable):
            owner = "tensorflow"
        if owner is None:
            raise bad_type(f"params[{i}]", p, "a native torch tensor or tf.Variable")
        owners.add(owner)
    if len(owners) > 1:
        raise bad_value("params", sorted(owners), "variables of a single framework")
    return owners.pop()


# ------------------------------------------------------------------------------------ the base
@dataclass(frozen=True)
class Optimizer:
    """Base optimizer: learning rate, weight decay and gradient clipping shared by all.

    Args:
        learning_rate: a float >= 0 or a :class:`dualnet.schedules.Schedule`, evaluated at the
            number of updates already applied (0 for the first), as in Keras.
        weight_decay: None (off) or a float >= 0.
        weight_decay_mode: ``"decoupled"`` (``w ← w - w·lr·wd`` before the step; Keras) or
            ``"l2"`` (``g ← g + wd·w`` after clipping; torch's ``weight_decay`` except AdamW).
        clipnorm: clip each gradient to L2 norm <= clipnorm.
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: clip all gradients jointly to global L2 norm <= global_clipnorm.
    """

    learning_rate: float | Schedule = 0.001
    _: KW_ONLY
    weight_decay: float | None = None
    weight_decay_mode: str = "decoupled"
    clipnorm: float | None = None
    clipvalue: float | None = None
    global_clipnorm: float | None = None

    name: ClassVar[str] = "optimizer"

    def __post_init__(self) -> None:
        w = type(self).__name__
        lr = self.learning_rate
        if isinstance(lr, dict):
            lr = schedules.deserialize(lr)
        if not isinstance(lr, Schedule):
            if isinstance(lr, bool) or not isinstance(lr, int | float):
                raise bad_type(
                    "learning_rate", lr, "a float >= 0 or a dualnet.schedules.Schedule", where=w
                )
            lr = check_real("learning_rate", where=w, value=lr, low=0.0)
        _set(self, "learning_rate", lr)
        if self.weight_decay is not None:
            _set(
                self,
                "weight_decay",
                check_real("weight_decay", where=w, value=self.weight_decay, low=0.0),
            )
        _choice(w, "weight_decay_mode", self.weight_decay_mode, WEIGHT_DECAY_MODES)
        clips = {k: getattr(self, k) for k in ("clipnorm", "clipvalue", "global_clipnorm")}
        for k, v in clips.items():
            if v is not None:
                _set(self, k, check_real(k, where=w, value=v, low=0.0, low_open=True))
        given = {k: v for k, v in clips.items() if v is not None}
        if len(given) > 1:
            raise bad_value(
                "clipping", given, "at most one of clipnorm, clipvalue, global_clipnorm", where=w
            )
        _set(self, "_rt", None)

    # ---------------------------------------------------------------------- spec-level API
    def slot_names(self) -> tuple[str, ...]:
        """Names of the per-variable state tensors this configuration keeps (Keras's names)."""
        return ()

    def _slot_initial_value(self, slot: str) -> float:
        return 0.0

    def learning_rate_at(self, step: int) -> float:
        """The learning rate used by the update that follows ``step`` applied updates."""
        if isinstance(self.learning_rate, Schedule):
            return self.learning_rate(step)
        return float(self.learning_rate)

    def get_config(self) -> dict[str, Any]:
        """Every hyper-parameter (a schedule as its serialized dict)."""
        config = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        if isinstance(self.learning_rate, Schedule):
            config["learning_rate"] = schedules.serialize(self.learning_rate)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Optimizer:
        """A new, unbuilt optimizer from :meth:`get_config`'s output."""
        config = dict(config)
        if isinstance(config.get("learning_rate"), dict):
            config["learning_rate"] = schedules.deserialize(config["learning_rate"])
        return cls(**config)

    # ------------------------------------------------------------------- runtime (stateful)
    @property
    def built(self) -> bool:
        return self._rt is not None

    @property
    def iterations(self) -> int:
        """Updates applied so far (0 before the first ``apply``)."""
        return 0 if self._rt is None else self._rt.iterations

    @property
    def current_learning_rate(self) -> float:
        """The learning rate the next ``apply`` will use."""
        return self.learning_rate_at(self.iterations)

    @property
    def backend(self) -> str | None:
        """``"torch"``/``"tensorflow"`` once built (the framework owning the variables)."""
        return None if self._rt is None else self._rt.backend.NAME

    def build(self, params: list[Any]) -> None:
        """Create the state for ``params`` (native variables of one framework).

        Building again with the same variables is a no-op; with different ones it is an error
        (make a fresh optimizer with ``type(opt).from_config(opt.get_config())``).
        """
        params = list(params)
        if self._rt is not None:
            if len(params) == len(self._rt.params) and all(map(operator.is_, params,
                                                               self._rt.params)):  # fmt: skip
                return
            raise bad_value(
                "params",
                f"{len(params)} variables",
                "the variables this optimizer was built "
                "with (build a fresh optimizer for new variables)",
                where=type(self).__name__,
            )
        if not params:
            raise bad_value("params", params, "a non-empty list of variables")
        backend = _backend_of(params)
        B = backend_module(backend).optimizers
        natives = [B.variable(p, i) for i, p in enumerate(params)]
        slots = {
            s: [B.slot(p, self._slot_initial_value(s)) for p in natives] for s in self.slot_names()
        }
        _set(self, "_rt", _Runtime(B, params, natives, slots))

    def _snapshot(self) -> tuple[bool, dict[str, list[np.ndarray]], int]:
        """(built, state, iterations): what :meth:`_restore` needs to undo later updates."""
        return (self._rt is not None, self.state(), self.iterations)

    def _restore(self, snapshot: tuple[bool, dict[str, list[np.ndarray]], int]) -> None:
        """Undo every update since :meth:`_snapshot` (an unbuilt optimizer becomes unbuilt)."""
        built, state, iterations = snapshot
        if not built:
            _set(self, "_rt", None)
        elif self._rt is not None:
            self.set_state(state, iterations=iterations)

    def apply(self, grads: list[Any], params: list[Any] | None = None) -> None:
        """Apply one update in place. ``grads[i]`` is the gradient of ``params[i]`` (None: skip).

        Every argument is checked before anything is written, so a bad call leaves the weights
        and the state untouched; so does an error while the new values are computed, except on
        torch between a slot written in place and the weights (Note [Deferred updates] in
        ``backends/torch/_update_plans.py``: its buffers are reserved first, so only an
        interrupt or a failing device stops it there).
        """
        if params is not None:
            self.build(params)
        elif self._rt is None:
            raise bad_value("params", None, "the variables (the optimizer is not built yet)")
        rt = self._rt
        grads = list(grads)
        if len(grads) != len(rt.params):
            raise bad_value(
                "grads",
                f"{len(grads)} gradients",
                f"one per variable ({len(rt.params)})",
                where=type(self).__name__,
            )
        B = rt.backend
        active = [i for i, g in enumerate(grads) if g is not None]
        # Plain gradients of the variables' shapes and dtypes pass as they are in one call;
        # anything else (conversions, errors) goes one by one.
        gs = B.gradients([grads[i] for i in active], [rt.natives[i] for i in active])
        if gs is None:
            gs = [self._gradient(B, grads[i], i) for i in active]
        # Every step-dependent scalar in Python float64, from the count before it moves (Keras).
        k = self._coefficients(rt.iterations)
        with B.no_grad():
            if not self._traced(B, active, gs, k):
                variables, values = self._new_values(B, active, gs, lambda dtype: k)
                B.assign_groups(variables, values, rt.scratch, self._owned(variables))
        rt.iterations += 1

    def _owned(self, variables: list[Any]) -> list[bool]:
        """Per unit the weights, then the slots, which only the optimizer holds (so the backend
        may hand them new buffers, or write their new values straight into them)."""
        return [id(vs[0]) not in self._rt.weight_ids for vs in variables]

    def _traced(self, B: ModuleType, active: list[int], gs: list[Any], k: dict[str, Any]) -> bool:
        """Apply the update as a traced program, if the backend keeps them and the rule can be
        traced; False to run it as usual.

        Note [Traced updates]
        ---------------------
        A deferred update (``backends/torch/optimizers.py``) records the rule's operations and
        then decides, for the whole update, what to fuse, which buffer each result goes to and
        which variables to write in place. Those decisions depend only on the rule, the
        variables and which coefficients are bools, never on the numbers: so the first step
        records the rule once with a :class:`Coefficient` in place of each number (the rule
        only uses them as operands of tensor operations) and keeps the plan; every later step
        binds its gradients, weights and slots to the recorded leaves and its numbers to the
        coefficients, and runs the plan. The operations, their order and so the bits are those
        of the untraced update (``tests/test_optimizers.py`` compares both for every rule);
        what goes is the Python that rebuilt the same plan every step (about 0.1 ms of an
        Adam step on a six-tensor model). A plan is kept per set of variables with a gradient
        and per value of the bool coefficients; a rule that computes with a coefficient in
        Python, or a group the backend does not defer, runs untraced.
        """
        rt = self._rt
        record = getattr(B, "trace", None)
        if record is None:
            return False
        key = (tuple(active), tuple(v for v in k.values() if isinstance(v, bool)))
        program = rt.programs.get(key)
        if program is False:
            return False
        gs = self._clip(B, gs)
        if program is None:
            units = self._units(B, active, gs, True)
            program = False
            if all(unit.deferred for unit in units):
                values_now, symbols = B.coefficients(k)
                leaves: list[Any] = []
                try:
                    variables, values = self._new_values(B, active, gs, lambda dtype: symbols,
                                                         leaves=leaves, clipped=True)  # fmt: skip
                except TypeError:  # the rule computes with a coefficient: untraced
                    variables = None
                if variables is not None:
                    program = record(leaves, variables, values, self._owned(variables),
                                     rt.scratch, values_now) or False  # fmt: skip
            if len(rt.programs) >= _MAX_PROGRAMS:  # (each holds its recorded rule and plan)
                rt.programs.clear()
            rt.programs[key] = program
            if not program:
                return False
        try:
            B.replay(program, self._leaf_lists(B, active, gs), k)
        except BaseException:  # stopped part-way (an interrupt): its buffers may be half-kept
            rt.programs.pop(key, None)
            raise
        return True

    def _leaf_lists(self, B: ModuleType, active: list[int], gs: list[Any]) -> list[list[Any]]:
        """The tensors of every group the rule reads, in the order :meth:`_new_values` makes
        them: per unit the gradients, the weights, then each slot."""
        out = []
        for unit in self._units(B, active, gs, True):
            out.append([gs[j] for j in unit.members])
            reads = unit.reads
            if reads is None:
                reads = [[B.read(v) for v in vs] for vs in (unit.weights, *unit.slots.values())]
            out += reads
        return out

    def _gradient(self, B: ModuleType, g: Any, i: int) -> Any:
        """``g`` as the update's compute dtype, checked against ``params[i]``'s shape."""
        rt = self._rt
        g = B.gradient(g, rt.natives[i], i)
        if not B.same_shape(g, rt.natives[i]):
            raise bad_value(
                f"grads[{i}]",
                f"shape {B.shape(g)}",
                f"the shape of params[{i}], {B.shape(rt.natives[i])}",
                where=type(self).__name__,
            )
        return g

    def _new_values(
        self, B: ModuleType, active: list[int], gs: list[Any],
        coefficients: Callable[[str], dict[str, Any]], *, grouped: bool = True,
        leaves: list[Any] | None = None, clipped: bool = False,
    ) -> tuple[list[Any], list[Any]]:  # fmt: skip
        """Every variable the update writes (weights, then slots) and its new value, computed
        before anything is written. ``coefficients(dtype)`` gives the step's scalars: Python
        floats eagerly, 0-d tensors in a compiled step. ``grouped``: the rule runs once per
        compute dtype on a group of tensors (Note [Multi-tensor updates] in
        ``backends/torch/optimizers.py``), and the result is one list of variables per group
        and the groups, for ``B.assign_groups`` (which may run deferred operations first: Note
        [Deferred updates] in ``backends/torch/_update_plans.py``); else once per variable on
        plain tensors, which is what a tracer needs (its compiler fuses the per-variable ops
        itself): flat lists of variables and tensors. ``leaves``: a list that gets every group
        made from the tensors of :meth:`_leaf_lists`, in that order (Note [Traced updates]);
        ``clipped``: ``gs`` are clipped already."""
        if not clipped:
            gs = self._clip(B, gs)
        variables: list[Any] = []
        values: list[Any] = []
        lists = iter(self._leaf_lists(B, active, gs)) if grouped else None
        for unit in self._units(B, active, gs, grouped):
            js = unit.members
            k = coefficients(unit.dtype)
            if lists is not None:
                g, w, *groups = [B.group(next(lists), unit.deferred)
                                 for _ in range(2 + len(unit.slots))]  # fmt: skip
                slots = dict(zip(unit.slots, groups, strict=True))
                if leaves is not None:
                    leaves += [g, w, *groups]
            else:
                g, w = gs[js[0]], B.read(unit.weights[0])
                slots = {name: B.read(vs[0]) for name, vs in unit.slots.items()}
            if self.weight_decay:
                if self.weight_decay_mode == "decoupled":
                    # lr·wd is one float64 product rounded once (Keras rounds lr and wd to the
                    # weight dtype separately: a last-bit difference).
                    w = w - w * k["lr_wd"]
                else:
                    g = g + w * self.weight_decay  # L2: the decay enters the moments
            w, new_slots = self._update(B, g, w, slots, k)
            written = [unit.weights, *(unit.slots[name] for name in new_slots)]
            variables += written if grouped else [v[0] for v in written]
            values += [w, *new_slots.values()]
        return variables, values

    def _units(self, B: ModuleType, active: list[int], gs: list[Any],
               grouped: bool) -> list[_Unit]:  # fmt: skip
        """How :meth:`_new_values` splits the variables with a gradient: one unit per compute
        dtype (``grouped``) or per variable. Fixed by the variables, so made once per set of
        active variables and kept."""
        key = (tuple(active), grouped)
        units = self._rt.units.get(key)
        if units is None:
            members: dict[Any, list[int]] = {}  # native compute dtype (or variable) -> members
            for j, g in enumerate(gs):
                members.setdefault(g.dtype if grouped else j, []).append(j)
            units = [_Unit(self._rt, B, js, [active[j] for j in js], B.dtype_name(gs[js[0]]),
                           grouped) for js in members.values()]  # fmt: skip
            self._rt.units[key] = units
        return units

    def _coefficients(self, iterations: int) -> dict[str, Any]:
        """The scalars of the update after ``iterations`` applied ones that depend on the step,
        computed in Python float64 (rounded once where they meet a tensor): ``lr`` and, for
        decoupled weight decay, ``lr_wd = lr·wd``; subclasses add their own. The keys never
        depend on ``iterations``; a bool value selects between two forms of the update."""
        lr = self.learning_rate_at(iterations)
        k: dict[str, Any] = {"lr": lr}
        if self.weight_decay and self.weight_decay_mode == "decoupled":
            k["lr_wd"] = lr * self.weight_decay
        return k

    # -------------------------------------------------- compiled steps (dualnet.training)
    def _coefficient_vector(self, iterations: int, *extra: float) -> np.ndarray:
        """:meth:`_coefficients` as float64 numbers (bools as 1/0), then ``extra``: the
        argument a compiled training step takes instead of Python scalars it would otherwise be
        traced with."""
        return np.array([*self._coefficients(iterations).values(), *extra], dtype=np.float64)

    def _compiled_values(self, grads: list[Any], vector: Any) -> tuple[list[Any], list[Any]]:
        """Inside a compiled step: the variables one update writes and their new values, from a
        native gradient per variable and the step's :meth:`_coefficient_vector` as a native
        float64 tensor. The counter is not touched (the step's caller keeps it on the host)."""
        rt = self._rt
        B = rt.backend
        # The keys and kinds never depend on the step: read at step 0, so a tracer sees
        # constants (a read of the count would make torch.compile guard on it).
        kinds = {n: isinstance(v, bool) for n, v in self._coefficients(0).items()}
        gs = [self._gradient(B, g, i) for i, g in enumerate(grads)]

        def coefficients(dtype: str) -> dict[str, Any]:
            return {n: B.coefficient(vector, i, "bool" if flag else dtype)
                    for i, (n, flag) in enumerate(kinds.items())}  # fmt: skip

        with B.no_grad():
            return self._new_values(B, list(range(len(gs))), gs, coefficients, grouped=False)

    def _clip(self, B: ModuleType, gs: list[Any]) -> list[Any]:
        if self.clipvalue is not None:
            c = self.clipvalue
            return [B.clip(g, -c, c) for g in gs]
        if self.clipnorm is not None:
            c = self.clipnorm
            # g·c / max(‖g‖, c): unchanged when ‖g‖ <= c (then the ratio is c/c = 1 exactly).
            return [g * c / B.maximum(B.sqrt(B.sum_squares(g)), c) for g in gs]
        if self.global_clipnorm is not None and gs:
            c = self.global_clipnorm
            total = B.sum_squares(gs[0])
            for g in gs[1:]:
                total = total + B.sum_squares(g)
            norm = B.sqrt(total)
            # (norm - norm) is 0 for a finite norm and NaN for inf/NaN: a non-finite global norm
            # poisons every gradient instead of silently zeroing them (Keras does the same).
            scale = c / B.maximum(norm, c) + (norm - norm)
            return [g * scale for g in gs]
        return gs

    def _update(self, B, g, w, s, k: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
        """The rule: new weights and slots from gradients ``g``, weights ``w``, slots ``s``
        (each a group of tensors) and the step's coefficients ``k`` (:meth:`_coefficients`)."""
        raise NotImplementedError

    def state(self) -> dict[str, list[np.ndarray]]:
        """``{slot name: [numpy array per variable]}`` in each variable's native layout."""
        if self._rt is None:
            return {}
        B = self._rt.backend
        return {k: [B.to_numpy(v) for v in vs] for k, vs in self._rt.slots.items()}

    def set_state(self, state: dict[str, list[np.ndarray]], iterations: int | None = None) -> None:
        """Overwrite the state (same structure as :meth:`state`) and optionally the counter."""
        if self._rt is None:
            raise bad_value("state", "...", "a built optimizer (call build(params) first)")
        rt, B = self._rt, self._rt.backend
        if not isinstance(state, dict) or set(state) != set(rt.slots):
            raise bad_value("state", describe(state), f"a dict with keys {sorted(rt.slots)}")
        for k, arrays in state.items():
            if len(arrays) != len(rt.natives) or any(
                np.shape(a) != B.shape(v) for a, v in zip(arrays, rt.slots[k], strict=False)
            ):
                raise bad_value(
                    f"state[{k!r}]", describe(arrays), "one array per variable, shaped like it"
                )
        if iterations is not None and (
            isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 0
        ):
            raise bad_value("iterations", iterations, "an int >= 0")
        with B.no_grad():
            for k, arrays in state.items():
                for var, a in zip(rt.slots[k], arrays, strict=True):
                    B.assign_numpy(var, a)
        if iterations is not None:
            rt.iterations = iterations
