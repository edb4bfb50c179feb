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


def for_gradient_reference(dtype: str) -> Tolerance:
    """Bound for a backend gradient against the float64 finite-difference reference: the dtype's
    default, to which the comparison adds the finite difference's own per-element error."""
    return default(dtype).scaled(1.0, "assert_close default + the finite difference's own error")
