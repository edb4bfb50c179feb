"""The tolerance policy of the parity suite.

Start from ``torch.testing.assert_close``'s per-dtype defaults (rtol, atol):

========  ========  =====
dtype     rtol      atol
========  ========  =====
float32   1.3e-6    1e-5
float64   1e-7      1e-7
float16   1e-3      1e-5
bfloat16  1.6e-2    1e-5
========  ========  =====

An element passes when ``|actual - expected| <= atol + rtol * |expected|`` (the
``assert_close`` rule), and non-finite values must match exactly (NaN with NaN, +inf with +inf).

Any looser bound is built from a default with :meth:`Tolerance.scaled`, which records *why*:
the reason travels into reports and test failures. Reductions of length K (a matmul's inner
dimension, a sum over classes or a batch) accumulate rounding error roughly like √K·ε when
errors are independent, so :func:`for_reduction` scales by √K rather than by one loose constant.

Gradients are checked against a float64 central finite difference of the reference. Its own
error is estimated element by element (two step sizes, see ``cases.finite_difference``) and
added to the dtype's default bound, so float64 gradients are held to the float64 default plus
what the finite difference itself cannot resolve — not to ``gradcheck``'s loose rtol of 1e-3.

Where an element-wise bound relative to the result cannot hold (a dot product whose terms
cancel), a case derives a per-element bound instead from Higham's ``γ_n = n·u/(1 - n·u)``
(:func:`gamma`, ``u`` the dtype's unit roundoff, :data:`UNIT_ROUNDOFF`).

Error growth over updates (Note [Growth over steps]). A quantity after N training updates
carries every update's rounding difference forward through the recurrence. How much they grow
depends on the recurrence (a contracting one damps them, centered RMSprop's division by a
small variance estimate amplifies them), so no one law fits every optimizer: the bound after N
updates is the one-step bound times a factor *measured* for that configuration
(:func:`for_steps`, :class:`Growth`), with the measurement stated where the case is defined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from dualnet.errors import bad_value


@dataclass(frozen=True, kw_only=True)
class Tolerance:
    """An ``assert_close``-style bound: pass when ``|a - e| <= atol + rtol·|e|``.

    Attributes:
        rtol: relative tolerance.
        atol: absolute tolerance.
        reason: why this bound (the default's source, or why it was loosened).
    """

    rtol: float
    atol: float
    reason: str = "torch.testing.assert_close default"

    def __post_init__(self) -> None:
        for name in ("rtol", "atol"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise bad_value(name, value, "a finite number >= 0", where="Tolerance")

    def scaled(self, factor: float, reason: str) -> Tolerance:
        """Both bounds times ``factor``, with the reason recorded."""
        return replace(self, rtol=self.rtol * factor, atol=self.atol * factor, reason=reason)

    def loosened(self, *, rtol: float | None = None, atol: float | None = None, reason: str):
        """Replace one or both bounds (only ever looser), with the reason recorded."""
        return replace(
            self,
            rtol=max(self.rtol, rtol if rtol is not None else self.rtol),
            atol=max(self.atol, atol if atol is not None else self.atol),
            reason=reason,
        )

    def __str__(self) -> str:
        return f"rtol={self.rtol:.2g}, atol={self.atol:.2g}"


DEFAULTS: dict[str, Tolerance] = {
    "float32": Tolerance(rtol=1.3e-6, atol=1e-5),
    "float64": Tolerance(rtol=1e-7, atol=1e-7),
    "float16": Tolerance(rtol=1e-3, atol=1e-5),
    "bfloat16": Tolerance(rtol=1.6e-2, atol=1e-5),
}
EXACT = Tolerance(rtol=0.0, atol=0.0, reason="bit-identical by construction")


def default(dtype: str) -> Tolerance:
    """The ``assert_close`` default for ``dtype``."""
    try:
        return DEFAULTS[dtype]
    except KeyError:
        raise bad_value("dtype", dtype, f"one of {', '.join(DEFAULTS)}") from None


def for_reduction(dtype: str, length: int) -> Tolerance:
    """The default for ``dtype`` scaled by √length, for results that sum ``length`` terms."""
    if length <= 1:
        return default(dtype)
    factor = math.sqrt(length)
    return default(dtype).scaled(
        factor, f"assert_close default x sqrt(K), K={length}: rounding error of a length-K sum"
    )


def for_steps(dtype: str, length: int, growth: Growth) -> Tolerance:
    """The bound after ``growth.steps`` updates: :func:`for_reduction` ``(dtype, length)`` (one
    update's rounding, ``length`` the longest sum in one update) times ``growth.factor``.

    The one policy for error growth over steps (Note [Growth over steps]): the optimizer and
    training parity families and :func:`dualnet.parity.compare_training` (through
    :func:`grown`) build their multi-step bounds here, in every dtype.
    """
    return grown(for_reduction(dtype, length), growth)


def grown(one: Tolerance, growth: Growth, step: int | None = None) -> Tolerance:
    """``one`` (a one-update bound) times the growth factor after ``step`` updates (default
    ``growth.steps``; other steps interpolate with :meth:`Growth.at`), the reason recorded."""
    if not isinstance(one, Tolerance):
        raise bad_value("one", one, "a Tolerance", where="grown")
    if not isinstance(growth, Growth):
        raise bad_value("growth", growth, "a Growth", where="grown")
    g = growth if step is None else growth.at(step)
    return one.scaled(g.factor, f"{one.reason}; x{g.factor:.3g} after {g.steps} updates ({g.why})")


@dataclass(frozen=True, kw_only=True)
class Growth:
    """How far rounding differences grow over ``steps`` updates, as a factor on the one-step
    bound, with the measurement that justifies it.

    Attributes:
        factor: the multiplier (>= 1) on the one-step bound after ``steps`` updates.
        steps: the number of updates it was measured for (>= 1).
        why: the measurement (``"measured x7 torch~ref after 100 updates; x2 margin"``).
    """

    factor: float
    steps: int
    why: str

    def __post_init__(self) -> None:
        if not (self.factor >= 1.0 and math.isfinite(self.factor)):
            raise bad_value("factor", self.factor, "a finite number >= 1", where="Growth")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or self.steps < 1:
            raise bad_value("steps", self.steps, "an int >= 1", where="Growth")
        if not isinstance(self.why, str) or not self.why.strip():
            raise bad_value("why", self.why, "the measurement that justifies the factor",
                            where="Growth")  # fmt: skip

    @classmethod
    def measured(cls, ratio: float, steps: int, what: str, margin: float = 2.0) -> Growth:
        """A factor of ``margin`` times a measured err/(one-step bound) ``ratio`` (at least 1).

        Args:
            ratio: the largest ``|err| / one-step bound`` measured after ``steps`` updates (over
                torch~tensorflow and each backend~ref).
            steps: the updates the measurement covers.
            what: where it was measured (a case name, a family).
            margin: the safety factor over the measurement (run-to-run and platform spread of
                summation orders).
        """
        factor = max(1.0, margin * ratio)
        return cls(factor=factor, steps=steps,
                   why=f"measured err/bound {ratio:g} after {steps} updates ({what}), "
                   f"x{margin:g} margin")  # fmt: skip

    def at(self, step: int) -> Growth:
        """The factor for an earlier or later ``step``, interpolated like a random walk:
        ``1 + (factor - 1)·√(step/steps)`` (1 at the first update, ``factor`` at ``steps``)."""
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise bad_value("step", step, "an int >= 1", where="Growth.at")
        factor = 1.0 + (self.factor - 1.0) * math.sqrt(step / self.steps)
        return Growth(factor=factor, steps=step, why=self.why)


# compare_training's default: the largest growth factor of the optimizer and training parity
# families (optimizer/rmsprop-centered-momentum-cosine, whose variance estimate v - ḡ² cancels:
# err/bound 9.1 after 100 updates, x2), so no configuration the catalogue measured is reported
# as diverging from rounding alone. tests/test_parity_harness.py checks that it covers them all.
TRAINING_DEFAULT = Growth(
    factor=18.2,
    steps=100,
    why="the largest growth measured by the optimizer and training families (centered "
    "RMSprop: 9.1 after 100 updates), x2",
)


def gamma(n: int, u: float) -> float:
    """Higham's ``γ_n = n·u / (1 - n·u)``: the relative forward-error bound of ``n`` roundings
    (a length-``n`` sum or dot product in any order: ``|fl(Σxᵢyᵢ) - Σxᵢyᵢ| <= γ_n·Σ|xᵢyᵢ|``,
    *Accuracy and Stability of Numerical Algorithms*, §3.1)."""
    if n * u >= 1.0:
        raise bad_value("n", n, f"n·u < 1 (u={u:g})", where="gamma")
    return n * u / (1.0 - n * u)


# Unit roundoff (half the machine epsilon) per dtype.
UNIT_ROUNDOFF: dict[str, float] = {
    "float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11, "bfloat16": 2.0**-8,
}  # fmt: skip


def for_gradient_reference(dtype: str) -> Tolerance:
    """Bound for a backend gradient against the float64 finite-difference reference: the dtype's
    default, to which the comparison adds the finite difference's own per-element error."""
    return default(dtype).scaled(1.0, "assert_close default + the finite difference's own error")
