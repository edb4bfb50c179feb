"""Errors and warnings raised by dualnet.

Every error names the argument, the value received and what was expected, and is raised the
same way whichever backend is active (the checks live in the neutral layer, before any framework
is touched).
"""

from __future__ import annotations

from typing import Any


class DualnetWarning(UserWarning):
    """A warning issued by dualnet itself (the test-suite turns these into errors)."""


class BackendUnavailableError(ImportError):
    """A backend was requested whose framework is not installed."""


def describe(value: Any) -> str:
    """A short, safe ``repr`` for error messages (long values are truncated)."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def bad_value(argument: str, value: Any, expected: str, *, where: str = "") -> ValueError:
    """Build the standard ``ValueError``: argument, value received, what was expected."""
    prefix = f"{where}: " if where else ""
    return ValueError(f"{prefix}invalid {argument}={describe(value)}; expected {expected}.")


def bad_type(argument: str, value: Any, expected: str, *, where: str = "") -> TypeError:
    """Build the standard ``TypeError``: argument, type received, what was expected."""
    prefix = f"{where}: " if where else ""
    return TypeError(
        f"{prefix}invalid {argument}={describe(value)} of type {type(value).__name__}; "
        f"expected {expected}."
    )


def unknown_name(kind: str, value: Any, known: list[str]) -> ValueError:
    """Build the standard error for an unknown registry name (activation, loss, ...)."""
    return ValueError(
        f"Unknown {kind} {describe(value)}; expected one of: {', '.join(sorted(known))}."
    )


def check_real(
    argument: str,
    value: Any,
    where: str = "",
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate a finite real number (bools refused), optionally within ``[low, high]``.

    ``low_open``/``high_open`` exclude the bound itself. Returns the value as a Python float.
    """
    import math
    import numbers

    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise bad_type(argument, value, "a real number", where=where)
    if not math.isfinite(value):
        raise bad_value(argument, value, "a finite number", where=where)
    below = low is not None and (value < low or (low_open and value == low))
    above = high is not None and (value > high or (high_open and value == high))
    if below or above:
        if high is None:
            expected = f"a number {'>' if low_open else '>='} {low}"
        elif low is None:
            expected = f"a number {'<' if high_open else '<='} {high}"
        else:
            expected = (
                f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
            )
        raise bad_value(argument, value, expected, where=where)
    return float(value)


class NonFiniteError(FloatingPointError):
    """Training stopped because a loss, gradient or weight became NaN or infinite.

    Raised by ``model.fit`` / ``model.train_step`` *before* the offending update is applied, so
    the weights and optimizer state are those from before the failing step.

    Attributes:
        step: the 1-based update that failed (the optimizer's ``iterations + 1``).
        epoch, batch: where in ``fit`` (1-based; None from ``train_step``).
        what: ``"loss"``, ``"gradient"`` or ``"weight"``: what was found non-finite first.
        parameter: the weight path (``model/layer/kernel``) of the first non-finite gradient
            or weight, or None.
        loss: the loss value of the failing step (may be finite when only a gradient is not).
        history: in ``fit``, the :class:`~dualnet.training.History` of the completed epochs.
    """

    def __init__(self, message: str, *, step: int, what: str, parameter: str | None,
                 loss: float, epoch: int | None = None, batch: int | None = None):  # fmt: skip
        super().__init__(message)
        self.step, self.what, self.parameter, self.loss = step, what, parameter, loss
        self.epoch, self.batch = epoch, batch
        self.history: Any = None


class UnsupportedModelError(ValueError):
    """A model (Keras, torch, or a file) uses something dualnet cannot represent exactly.

    Raised by :func:`dualnet.from_keras`, :func:`dualnet.from_torch` and ``dualnet check``
    after looking at the *whole* model, so the message lists every problem, not only the first.

    Attributes:
        problems: one line per problem, each naming the layer or graph node, the op or setting,
            and what dualnet supports instead.
    """

    def __init__(self, what: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"{what}: {len(self.problems)} unsupported "
                         f"{'item' if len(self.problems) == 1 else 'items'}:\n{lines}")  # fmt: skip
