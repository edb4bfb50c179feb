"""What every loss shares: the ``Loss`` spec base (validation, Keras 3's reduction, masks and
``sample_weight``, the config), the shape and dtype rules, and the plans kept per call
signature. The losses themselves, their math and the torch | Keras | dualnet table are in
:mod:`dualnet.losses`.

Note [Checked once per signature]
---------------------------------
A training loop calls its loss with the same shapes and dtypes at every step, and most losses
check only those (MSE, MAE, Huber, SmoothL1, the categorical and binary cross-entropies; not
the sparse one, which checks the labels' values, nor ``clip="torch"`` on probabilities). For
them a call on native tensors of the active backend (eager, no mask, no ``sample_weight``) is
checked in full the first time its *signature* is seen (the loss's configuration, each
argument's type, shape, dtype and device) and, once every check has passed, the decisions it
took are kept: the compute and output dtypes, the reshapes of Keras's trailing-axis rule, the
class axis, the divisor. A later call with that signature runs the same operations in the same
order without repeating the checks (~5 µs instead of ~20 µs on torch), so results are identical
bit for bit, and a call with any other signature is checked in full again: a bad call still
raises the same error, because no bad call ever has a kept signature.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dualnet import _ops
from dualnet.dtypes import ALL_DTYPES, FLOAT_DTYPES, FLOATX
from dualnet.errors import bad_type, bad_value

REDUCTIONS: tuple[str, ...] = ("sum_over_batch_size", "sum", "none", "mean")
# keras.config.epsilon(): probabilities are clipped to [EPSILON, 1 - EPSILON] before the log.
EPSILON = 1e-7
# torch.nn.BCELoss clamps log(p) and log(1 - p) at this value instead of clipping p.
TORCH_LOG_CLAMP = -100.0
CLIP_MODES: tuple[str, ...] = ("keras", "torch")
_LOW_PRECISION = ("float16", "bfloat16")


# --------------------------------------------------------------------------- validation helpers


def _flag(argument: str, value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise bad_type(argument, value, "a bool", where=where)
    return value


def _int(argument: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise bad_type(argument, value, "an int", where=where)
    return int(value)


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in x.shape)


def _losses():
    return _ops.backend().losses


def _dtype_of(x: Any, argument: str, where: str) -> str:
    try:
        return _ops.backend().core.dtype_name(x)
    except TypeError:
        raise bad_type(
            argument, x, f"numbers of one of the dtypes {', '.join(ALL_DTYPES)}", where=where
        ) from None


def _canonical_axis(axis: int, rank: int, where: str) -> int:
    if not -rank <= axis < rank:
        raise bad_value("axis", axis, f"an axis of y_pred, which has rank {rank}", where=where)
    return axis % rank


def _shape_error(where: str, t_shape, p_shape, expected: str) -> ValueError:
    return ValueError(
        f"{where}: y_true.shape={t_shape} does not match y_pred.shape={p_shape}; expected "
        f"{expected}."
    )


Shape = tuple[int, ...]


def _align_shapes(ts: Shape, ps: Shape, where: str) -> tuple[Shape | None, Shape | None]:
    """Keras's ``squeeze_or_expand_to_same_rank`` on shapes: a trailing axis of size 1 on one
    side is squeezed (or, against a rank-1 partner, that partner is expanded); then shapes must
    match exactly. No other broadcasting: torch's MSELoss would silently broadcast (B,) with
    (B, 1) to (B, B). Returns the shapes to reshape ``y_true`` and ``y_pred`` to (None: as
    they are)."""
    t_to = p_to = None
    if len(ts) == len(ps) + 1 and ts[-1] == 1:
        t_to, p_to = (None, (*ps, 1)) if len(ps) == 1 else (ts[:-1], None)
    elif len(ps) == len(ts) + 1 and ps[-1] == 1:
        t_to, p_to = ((*ts, 1), None) if len(ts) == 1 else (None, ps[:-1])
    if (ts if t_to is None else t_to) != (ps if p_to is None else p_to):
        raise _shape_error(where, ts, ps, "equal shapes (up to a trailing axis of size 1)")
    return t_to, p_to


def _reshaped(t: Any, p: Any, t_to: Shape | None, p_to: Shape | None) -> tuple[Any, Any]:
    """``t`` and ``p`` reshaped as :func:`_align_shapes` says."""
    reshape = _losses().reshape
    return (t if t_to is None else reshape(t, t_to)), (p if p_to is None else reshape(p, p_to))


@dataclass(frozen=True)
class _Plan:
    """What a call of a loss whose checks depend only on its signature does once they have
    passed (Note [Checked once per signature]): the casts, the reshapes, the class axis and
    the divisor, all fixed by the shapes and dtypes."""

    compute: str
    out_dtype: str
    casts: tuple[bool, bool, bool]  # whether y_pred, y_true and the result change dtype
    t_to: Shape | None
    p_to: Shape | None
    axis: Any  # what _layout gave for the kernel
    count: int


# The signatures whose plans one loss keeps (more: forgotten, and checked again).
_MAX_PLANS = 64


def _targets(y_true: Any, p: Any, compute: str, where: str) -> Any:
    """Dense targets: any numeric dtype, cast to the compute dtype."""
    t = _ops.tensor(y_true)
    _dtype_of(t, "y_true", where)
    return _ops.tensor(t, compute)


def _weight(sample_weight: Any, values: Any, compute: str, where: str) -> tuple[Any, Any]:
    """Shape ``sample_weight`` against the per-sample ``values`` (see the module docstring)."""
    if sample_weight is None:
        return None, values
    w = _ops.tensor(sample_weight)
    if _dtype_of(w, "sample_weight", where) == "bool":
        w = _ops.tensor(w, "int32")
    w = _ops.tensor(w, compute)
    ws, vs = _shape(w), _shape(values)
    reshape = _losses().reshape
    if len(ws) == 0:
        return w, values
    if len(vs) == len(ws) + 1 and vs[-1] == 1:  # Keras's trailing-1 rule, values side
        if len(ws) == 1:
            w = reshape(w, (*ws, 1))
        else:
            values = reshape(values, vs[:-1])
    elif len(ws) == len(vs) + 1 and ws[-1] == 1:  # Keras's trailing-1 rule, weight side
        if len(vs) == 1:
            values = reshape(values, (*vs, 1))
        else:
            w = reshape(w, ws[:-1])
    elif 0 < len(ws) < len(vs) and vs[: len(ws)] == ws:
        # One weight per sample: expand on the right. Keras 3 would multiply along the *last*
        # axis instead (an error, or silently wrong weights when B equals the last axis).
        w = reshape(w, ws + (1,) * (len(vs) - len(ws)))
    w_s, v_s = _shape(w), _shape(values)
    ok = len(w_s) == 0 or (
        len(w_s) == len(v_s) and all(a in (1, b) for a, b in zip(w_s, v_s, strict=True))
    )
    if not ok:
        raise ValueError(
            f"{where}: invalid sample_weight of shape {ws} for per-sample losses of shape "
            f"{vs}; expected a scalar, shape {vs}, or a leading part of it such as "
            f"{vs[:1]} (one weight per sample)."
        )
    return w, values


# --------------------------------------------------------------------------- the spec objects


@dataclass(frozen=True, kw_only=True)
class Loss:
    """Base class: reduction, name, sample weights and dtype handling (see the module docstring).

    Args:
        reduction: ``"sum_over_batch_size"`` (default), ``"mean"`` (the same), ``"sum"`` or
            ``"none"`` (``None`` is accepted for ``"none"``, as in Keras).
        name: a name for the loss (defaults to the Keras name, e.g. ``"mean_squared_error"``).
    """

    reduction: str | None = "sum_over_batch_size"
    name: str | None = None
    default_name: ClassVar[str] = "loss"

    def __post_init__(self) -> None:
        where = type(self).__name__
        reduction = "none" if self.reduction is None else self.reduction
        if not isinstance(reduction, str) or reduction not in REDUCTIONS:
            raise bad_value(
                "reduction", self.reduction, f"one of {', '.join(map(repr, REDUCTIONS))}",
                where=where,
            )  # fmt: skip
        object.__setattr__(self, "reduction", reduction)
        if self.name is None:
            object.__setattr__(self, "name", self.default_name)
        elif not isinstance(self.name, str):
            raise bad_type("name", self.name, "a str or None", where=where)
        self._validate(where)

    def _validate(self, where: str) -> None:
        """Subclasses check their own configuration here."""
        # A body besides the docstring: tf.function's AutoGraph cannot convert an empty one.
        return None

    def _values(self, y_true: Any, p: Any, compute: str, where: str) -> tuple[Any, int | None]:
        """Per-sample losses of native ``p`` (already in ``compute`` dtype), and the divisor of
        ``sum_over_batch_size`` when it is not the number of values."""
        t, p, axis = self._laid_out(y_true, p, compute, where)
        return self._kernel(t, p, axis), None

    def _laid_out(self, y_true: Any, p: Any, compute: str, where: str) -> tuple[Any, Any, Any]:
        """Dense targets in ``compute`` dtype, checked and reshaped against ``p`` by
        :meth:`_layout`, and the axis it gives."""
        t = _targets(y_true, p, compute, where)
        t_to, p_to, axis = self._layout(_shape(t), _shape(p), where)
        t, p = _reshaped(t, p, t_to, p_to)
        return t, p, axis

    def _layout(self, ts: Shape, ps: Shape, where: str) -> tuple[Shape | None, Shape | None,
                                                                 Any]:  # fmt: skip
        """The shape checks of ``y_true`` (shape ``ts``) against ``y_pred`` (``ps``): the
        shapes to reshape them to and what :meth:`_kernel` needs of the axes (None: nothing,
        the loss reduces the last)."""
        raise NotImplementedError

    def _kernel(self, t: Any, p: Any, axis: Any) -> Any:
        """The per-sample losses of laid-out targets ``t`` and predictions ``p``."""
        raise NotImplementedError

    def _whole(self, t: Any, p: Any, axis: Any, count: int) -> Any:
        """The unweighted, unmasked ``sum_over_batch_size`` loss (``count`` per-sample values)
        in one backend kernel, where the backend has one for it; None: the per-sample values
        and the reduction."""
        return None

    def _signature_checked(self) -> bool:
        """Whether every check of a call depends only on the call's signature (shapes, dtypes,
        the configuration), never on values (Note [Checked once per signature])."""
        return False

    def _signature(self, y_true: Any, y_pred: Any) -> tuple[Any, ...] | None:
        """The key of a call that may reuse a plan: native tensors of the active backend (not
        traced, no mask), as ``(backend, type, shape, dtype, device)`` of each; None
        otherwise."""
        core = _ops.backend().core
        if not (core.is_plain_tensor(y_true) and core.is_plain_tensor(y_pred)):
            return None
        if getattr(y_pred, "_keras_mask", None) is not None or core.is_symbolic(y_pred):
            return None
        return (core.NAME, type(y_true), tuple(y_true.shape), y_true.dtype,
                getattr(y_true, "device", None), type(y_pred), tuple(y_pred.shape), y_pred.dtype,
                getattr(y_pred, "device", None))  # fmt: skip

    def _run_plan(self, plan: _Plan, y_true: Any, y_pred: Any) -> Any:
        """A checked signature's call: the full path's operations, in its order, without its
        checks (Note [Checked once per signature])."""
        core = _ops.backend().core
        cast_p, cast_t, cast_out = plan.casts  # (a conversion to a tensor's own dtype is x)
        p = core.convert_to_tensor(y_pred, plan.compute) if cast_p else y_pred
        t = core.convert_to_tensor(y_true, plan.compute) if cast_t else y_true
        t, p = _reshaped(t, p, plan.t_to, plan.p_to)
        reduction = "sum_over_batch_size" if self.reduction == "mean" else self.reduction
        out = self._whole(t, p, plan.axis, plan.count) if reduction == "sum_over_batch_size" \
            else None  # fmt: skip
        if out is None:
            out = _losses().reduce(self._kernel(t, p, plan.axis), None, reduction, plan.count)
        return core.convert_to_tensor(out, plan.out_dtype) if cast_out else out

    def __call__(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> Any:
        """The loss of ``y_pred`` against ``y_true``, weighted and reduced.

        Args:
            y_true: targets, the shape of ``y_pred`` (class labels without the class axis for
                :class:`SparseCategoricalCrossentropy`).
            y_pred: predictions (probabilities or logits for the cross-entropies).
            sample_weight: optional weights; a scalar, the per-sample loss shape, or a leading
                part of it.

        Returns:
            A native scalar (``"sum"``, ``"sum_over_batch_size"``, ``"mean"``) or the weighted
            per-sample values (``"none"``), in ``y_pred``'s floating dtype.
        """
        key = None
        if sample_weight is None and self._signature_checked():
            key = self._signature(y_true, y_pred)
            if key is not None:
                plan = self.__dict__.get("_plans", {}).get(key)
                if plan is not None:
                    return self._run_plan(plan, y_true, y_pred)
        where = type(self).__name__
        mask = getattr(y_pred, "_keras_mask", None)  # read before any conversion drops it
        p = _ops.tensor(y_pred)
        out_dtype = _dtype_of(p, "y_pred", where)
        if out_dtype not in FLOAT_DTYPES:  # integer/bool predictions: Keras casts to floatx
            out_dtype = FLOATX
        if len(_shape(p)) == 0:
            raise bad_value("y_pred.shape", (), "at least one dimension", where=where)
        # Half precision is computed in float32 and rounded once at the end (module docstring).
        compute = "float32" if out_dtype in _LOW_PRECISION else out_dtype
        p = _ops.tensor(p, compute)
        values, count = self._values(y_true, p, compute, where)
        weight, values = _weight(sample_weight, values, compute, where)
        if mask is not None:
            weight, values, count = self._masked(mask, weight, values, count, compute, where)
        if count is None:
            count = math.prod(_shape(values))
        reduction = "sum_over_batch_size" if self.reduction == "mean" else self.reduction
        out = None
        if (weight is None and mask is None and reduction == "sum_over_batch_size"
                and type(self)._whole is not Loss._whole):  # fmt: skip
            out = self._whole(*self._laid_out(y_true, p, compute, where), count)
        if out is None:
            out = _losses().reduce(values, weight, reduction, count)
        if key is not None:  # every check passed: this signature's later calls skip them
            t_to, p_to, axis = self._layout(_shape(y_true), _shape(p), where)
            name = _ops.backend().core.dtype_name
            casts = (name(y_pred) != compute, name(y_true) != compute, name(out) != out_dtype)
            plans = self.__dict__.setdefault("_plans", {})
            if len(plans) >= _MAX_PLANS:
                plans.clear()
            plans[key] = _Plan(compute, out_dtype, casts, t_to, p_to, axis, count)
        return _ops.tensor(out, out_dtype)

    def _masked(self, mask: Any, weight: Any, values: Any, count: int | None, compute: str,
                where: str) -> tuple[Any, Any, Any]:  # fmt: skip
        """Step 4 of the reduction: the mask as 0/1 weights, and the number of valid entries
        as the divisor (counted on the host, where the loss's value goes anyway)."""
        if count is not None:
            raise NotImplementedError(
                f"{where}: a mask on y_pred together with ignore_class is not supported; mask the "
                "labels with ignore_class or the predictions with a mask, not both."
            )
        core = _ops.backend().core
        if core.is_symbolic(mask):  # tf.function / torch.compile: the count stays on the device
            m, values = _weight(mask, values, compute, where)  # bool -> 0/1 in compute dtype
            weight = m if weight is None else weight * m
            # The valid entries of m broadcast to the values' (static) shape.
            factor = math.prod(_shape(values)) // max(math.prod(_shape(m)), 1)
            return weight, values, core.count_nonzero(m) * factor
        flags = np.asarray(_ops.to_numpy(mask), dtype=bool)
        m, values = _weight(flags.astype(np.float64), values, compute, where)
        weight = m if weight is None else weight * m
        valid = int(np.count_nonzero(np.broadcast_to(_ops.to_numpy(m) != 0, _shape(values))))
        return weight, values, valid

    def call(self, y_true: Any, y_pred: Any) -> Any:
        """The unweighted per-sample losses (what ``reduction="none"`` returns without weights)."""
        return dataclasses.replace(self, reduction="none")(y_true, y_pred)

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments, as a dict (``from_config`` inverts it)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Loss:
        if not isinstance(config, dict):
            raise bad_type("config", config, "a dict from get_config()", where=cls.__name__)
        known = {f.name for f in dataclasses.fields(cls)}
        for key in config:
            if key not in known:
                raise bad_value(
                    "config", key, f"keys among {', '.join(sorted(known))}", where=cls.__name__
                )
        return cls(**config)
