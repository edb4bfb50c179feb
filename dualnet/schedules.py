"""Learning-rate schedules: ``lr(step)`` as plain Python float64 arithmetic.

A schedule maps the optimizer's iteration count to a learning rate. ``step`` is the number of
updates *already applied* (0 for the first update), as in Keras, which evaluates
``learning_rate(optimizer.iterations)`` before incrementing the counter. The value is computed
in Python (float64) and then rounded once to the dtype of each weight, on both backends, so
the two backends see the identical learning rate by construction.

Keras evaluates its own schedules with backend ops in the dtype of ``initial_learning_rate``
(float32 for a Python float), so ``keras.optimizers.schedules.X(...)(step)`` differs from
dualnet's value by float32 rounding (≈1e-7 relative); the formulas are the same.

==========================  ==========================================================
schedule                    ``lr(step)``
==========================  ==========================================================
ExponentialDecay            ``lr0 · rate^(step / decay_steps)`` (exponent floored if
                            ``staircase``); Keras's ExponentialDecay
InverseTimeDecay            ``lr0 / (1 + rate · step / decay_steps)`` (floored if
                            ``staircase``); Keras's InverseTimeDecay, torch Adagrad's
                            ``lr_decay`` is ``InverseTimeDecay(lr, 1, lr_decay)``
PiecewiseConstantDecay      ``values[i]`` for ``boundaries[i-1] < step <= boundaries[i]``
CosineDecay                 linear warm-up, then ``½(1 + cos(π·s/decay_steps))`` decay
                            (Keras 3 semantics, see the class)
StepDecay                   ``lr0 · gamma^⌊step / step_size⌋`` (torch ``StepLR``,
                            counted in optimizer steps instead of epochs)
==========================  ==========================================================
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dualnet.errors import bad_type, bad_value, unknown_name

__all__ = [
    "CosineDecay", "ExponentialDecay", "InverseTimeDecay", "PiecewiseConstantDecay", "Schedule",
    "StepDecay", "deserialize", "get", "serialize",
]  # fmt: skip


def _real(owner: str, argument: str, value: Any, *, low: float | None = None,
          low_inclusive: bool = True, high: float | None = None) -> float:  # fmt: skip
    """Validate a finite real number in an optional range; returns it as a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad_type(argument, value, "a real number", where=owner)
    if not math.isfinite(value):
        raise bad_value(argument, value, "a finite number", where=owner)
    if low is not None and (value < low or (not low_inclusive and value == low)):
        op = ">=" if low_inclusive else ">"
        raise bad_value(argument, value, f"a number {op} {low}", where=owner)
    if high is not None and value > high:
        raise bad_value(argument, value, f"a number <= {high}", where=owner)
    return float(value)


def _positive_int(owner: str, argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad_type(argument, value, "a positive int", where=owner)
    if value <= 0:
        raise bad_value(argument, value, "an int > 0", where=owner)
    return value


def _check_step(owner: str, step: Any) -> int:
    if isinstance(step, np.integer):
        step = int(step)
    if isinstance(step, bool) or not isinstance(step, int):
        # Floats and tensors are refused, so the value is computed the same way everywhere.
        raise bad_type("step", step, "an int (the optimizer's iteration count)", where=owner)
    if step < 0:
        raise bad_value("step", step, "an int >= 0", where=owner)
    return step


@dataclass(frozen=True)
class Schedule:
    """Base class: a frozen, validated ``step -> learning rate`` map (float64 Python)."""

    name: ClassVar[str] = "Schedule"

    def __call__(self, step: int) -> float:
        return self._value(_check_step(type(self).__name__, step))

    def _value(self, step: int) -> float:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (lists for tuples), so ``from_config`` rebuilds it."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Schedule:
        return cls(**config)


@dataclass(frozen=True)
class _Decay(Schedule):
    """The ``(initial_learning_rate, decay_steps, decay_rate, staircase)`` fields and their
    validation, shared by :class:`ExponentialDecay` and :class:`InverseTimeDecay`."""

    initial_learning_rate: float
    decay_steps: int
    decay_rate: float
    staircase: bool = False

    def __post_init__(self) -> None:
        w = type(self).__name__
        _real(w, "initial_learning_rate", self.initial_learning_rate, low=0.0)
        _positive_int(w, "decay_steps", self.decay_steps)
        _real(w, "decay_rate", self.decay_rate, low=0.0)
        if not isinstance(self.staircase, bool):
            raise bad_type("staircase", self.staircase, "a bool", where=w)

    def _progress(self, step: int) -> float:
        """``step / decay_steps``, floored with ``staircase``."""
        p = step / self.decay_steps
        return math.floor(p) if self.staircase else p


@dataclass(frozen=True)
class ExponentialDecay(_Decay):
    """``lr(step) = initial_learning_rate · decay_rate^(step / decay_steps)``.

    With ``staircase=True`` the exponent is ``⌊step / decay_steps⌋``. Same formula and
    defaults as ``keras.optimizers.schedules.ExponentialDecay``.

    Args:
        initial_learning_rate: value at step 0 (>= 0).
        decay_steps: steps per factor of ``decay_rate`` (int > 0).
        decay_rate: multiplicative factor (>= 0).
        staircase: decay in discrete jumps.
    """

    def _value(self, step: int) -> float:
        p = self._progress(step)
        return float(self.initial_learning_rate) * float(self.decay_rate) ** p


@dataclass(frozen=True)
class InverseTimeDecay(_Decay):
    """``lr(step) = initial_learning_rate / (1 + decay_rate · step / decay_steps)``.

    With ``staircase=True`` the ratio ``step / decay_steps`` is floored. Same as Keras's
    ``InverseTimeDecay``. torch's ``Adagrad(lr_decay=d)`` uses
    ``lr / (1 + (t-1)·d)`` at update ``t`` (1-based), i.e. ``InverseTimeDecay(lr, 1, d)``.

    Args:
        initial_learning_rate: value at step 0 (>= 0).
        decay_steps: int > 0.
        decay_rate: >= 0.
        staircase: floor ``step / decay_steps``.
    """

    def _value(self, step: int) -> float:
        p = self._progress(step)
        return float(self.initial_learning_rate) / (1.0 + float(self.decay_rate) * p)


@dataclass(frozen=True)
class PiecewiseConstantDecay(Schedule):
    """Piecewise constant: ``values[0]`` while ``step <= boundaries[0]``, ``values[i]`` while
    ``boundaries[i-1] < step <= boundaries[i]``, ``values[-1]`` after ``boundaries[-1]``.

    The boundary step itself belongs to the *earlier* piece, as in Keras.

    Args:
        boundaries: strictly increasing ints (steps).
        values: ``len(boundaries) + 1`` learning rates (>= 0).
    """

    boundaries: tuple[int, ...]
    values: tuple[float, ...]

    def __post_init__(self) -> None:
        w = "PiecewiseConstantDecay"
        if not isinstance(self.boundaries, list | tuple) or not self.boundaries:
            raise bad_type("boundaries", self.boundaries, "a non-empty list of ints", where=w)
        if not isinstance(self.values, list | tuple):
            raise bad_type("values", self.values, "a list of floats", where=w)
        for b in self.boundaries:
            if isinstance(b, bool) or not isinstance(b, int) or b < 0:
                raise bad_value("boundaries", self.boundaries, "a list of ints >= 0", where=w)
        if any(b1 >= b2 for b1, b2 in zip(self.boundaries, self.boundaries[1:], strict=False)):
            raise bad_value("boundaries", self.boundaries, "strictly increasing steps", where=w)
        if len(self.values) != len(self.boundaries) + 1:
            raise bad_value(
                "values", self.values,
                f"len(boundaries) + 1 = {len(self.boundaries) + 1} values", where=w,
            )  # fmt: skip
        for v in self.values:
            _real(w, "values", v, low=0.0)
        # Stored as tuples so the schedule is immutable and hashable.
        object.__setattr__(self, "boundaries", tuple(self.boundaries))
        object.__setattr__(self, "values", tuple(float(v) for v in self.values))

    def _value(self, step: int) -> float:
        for boundary, value in zip(self.boundaries, self.values, strict=False):
            if step <= boundary:  # the boundary belongs to the earlier piece (Keras)
                return value
        return self.values[-1]


@dataclass(frozen=True)
class CosineDecay(Schedule):
    """Cosine decay with optional linear warm-up (Keras 3 ``CosineDecay`` semantics).

    Without warm-up (``warmup_target is None``), with ``s = min(step, decay_steps)``::

        lr = initial_learning_rate · ((1 - alpha) · ½(1 + cos(π s / decay_steps)) + alpha)

    With warm-up, for ``step < warmup_steps`` the rate rises linearly from
    ``initial_learning_rate`` to ``warmup_target``::

        lr = initial_learning_rate + (warmup_target - initial_learning_rate) · step / warmup_steps

    then decays from ``warmup_target`` as above with ``s = min(step - warmup_steps,
    decay_steps)``. ``alpha`` is the final rate as a *fraction* of the peak.

    Args:
        initial_learning_rate: start value (>= 0).
        decay_steps: length of the cosine (int > 0).
        alpha: final fraction, in [0, 1].
        warmup_target: peak after warm-up, or None for no warm-up.
        warmup_steps: warm-up length (int >= 0; > 0 requires ``warmup_target``).
    """

    initial_learning_rate: float
    decay_steps: int
    alpha: float = 0.0
    warmup_target: float | None = None
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        w = "CosineDecay"
        _real(w, "initial_learning_rate", self.initial_learning_rate, low=0.0)
        _positive_int(w, "decay_steps", self.decay_steps)
        _real(w, "alpha", self.alpha, low=0.0, high=1.0)
        if self.warmup_target is not None:
            _real(w, "warmup_target", self.warmup_target, low=0.0)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int):
            raise bad_type("warmup_steps", self.warmup_steps, "an int >= 0", where=w)
        if self.warmup_steps < 0:
            raise bad_value("warmup_steps", self.warmup_steps, "an int >= 0", where=w)
        if self.warmup_steps > 0 and self.warmup_target is None:
            raise bad_value("warmup_target", None, "a learning rate when warmup_steps > 0", where=w)

    def _decay(self, step: float, peak: float) -> float:
        fraction = min(step, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return peak * ((1.0 - self.alpha) * cosine + self.alpha)

    def _value(self, step: int) -> float:
        lr0 = float(self.initial_learning_rate)
        if self.warmup_target is None:
            return self._decay(step, lr0)
        target = float(self.warmup_target)
        if step < self.warmup_steps:
            return (target - lr0) * (step / self.warmup_steps) + lr0
        return self._decay(step - self.warmup_steps, target)


@dataclass(frozen=True)
class StepDecay(Schedule):
    """``lr(step) = initial_learning_rate · gamma^⌊step / step_size⌋``.

    torch's ``StepLR`` with the step counted in optimizer updates (``StepLR`` is usually
    stepped once per epoch: pass ``step_size = epochs_per_decay · steps_per_epoch``). Keras has
    no StepDecay; it equals ``ExponentialDecay(lr, step_size, gamma, staircase=True)``.

    Args:
        initial_learning_rate: value at step 0 (>= 0).
        step_size: updates between decays (int > 0).
        gamma: factor per decay (>= 0; torch's default 0.1).
    """

    initial_learning_rate: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        w = "StepDecay"
        _real(w, "initial_learning_rate", self.initial_learning_rate, low=0.0)
        _positive_int(w, "step_size", self.step_size)
        _real(w, "gamma", self.gamma, low=0.0)

    def _value(self, step: int) -> float:
        return float(self.initial_learning_rate) * float(self.gamma) ** (step // self.step_size)


_REGISTRY: dict[str, type[Schedule]] = {
    "ExponentialDecay": ExponentialDecay,
    "InverseTimeDecay": InverseTimeDecay,
    "PiecewiseConstantDecay": PiecewiseConstantDecay,
    "CosineDecay": CosineDecay,
    "StepDecay": StepDecay,
}
NAMES: tuple[str, ...] = tuple(_REGISTRY)


def serialize(schedule: Schedule) -> dict[str, Any]:
    """``{"class_name": ..., "config": ...}`` (the Keras serialization shape)."""
    if not isinstance(schedule, Schedule):
        raise bad_type("schedule", schedule, "a dualnet.schedules.Schedule")
    return {"class_name": type(schedule).__name__, "config": schedule.get_config()}


def deserialize(config: dict[str, Any]) -> Schedule:
    """Inverse of :func:`serialize`."""
    if not isinstance(config, dict) or "class_name" not in config:
        raise bad_type("config", config, "a dict with 'class_name' and 'config'")
    name = config["class_name"]
    if name not in _REGISTRY:
        raise unknown_name("schedule", name, list(_REGISTRY))
    return _REGISTRY[name].from_config(dict(config.get("config", {})))


def get(identifier: Schedule | dict[str, Any]) -> Schedule:
    """A schedule object (returned as is) or a serialized dict."""
    if isinstance(identifier, Schedule):
        return identifier
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise bad_type("schedule", identifier, "a Schedule or a serialized schedule dict")
