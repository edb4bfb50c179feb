"""Element-wise comparison with ``assert_close`` semantics and a full error report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dualnet.parity.tolerance import Tolerance


@dataclass(frozen=True, kw_only=True)
class Diff:
    """The outcome of comparing ``actual`` to ``expected`` under a :class:`Tolerance`.

    Attributes:
        max_abs: greatest ``|a - e|`` over positions where both are finite.
        max_rel: greatest ``|a - e| / |e|`` over finite positions with ``e != 0``.
        worst_index: index of the element that most exceeds (or comes closest to) its bound.
        worst_actual, worst_expected: the two values there.
        mismatched: elements outside the bound, non-finite mismatches included.
        nonfinite_mismatched: positions where NaN/±inf differ (never masked, always failures).
        nonfinite_matched: positions where both sides hold the same NaN/±inf. They pass (as
            ``assert_close(equal_nan=True)``: e.g. e^x overflowing on both sides and in the
            reference) and are counted so a report can show them.
        total: elements compared.
        worst_ratio: the largest ``|a - e| / (atol + rtol·|e|)``: below 1 passes; how close
            the comparison came to failing (inf for a non-finite mismatch).
        passed: no mismatched element and equal shapes.
        note: set when shapes differ.
    """

    max_abs: float
    max_rel: float
    worst_index: tuple[int, ...]
    worst_actual: float
    worst_expected: float
    mismatched: int
    nonfinite_mismatched: int
    total: int
    tolerance: Tolerance
    passed: bool
    worst_ratio: float = 0.0
    nonfinite_matched: int = 0
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def message(self, label: str = "Tensor-likes") -> str:
        """A ``torch.testing.assert_close``-style explanation."""
        if self.note:
            return f"{label}: {self.note}"
        head = f"{label} are {'close' if self.passed else 'not close'}!"
        pct = 100.0 * self.mismatched / max(self.total, 1)
        lines = [
            head,
            f"Mismatched elements: {self.mismatched} / {self.total} ({pct:.1f}%)",
            f"Non-finite mismatches (NaN/inf on one side only or of different sign): "
            f"{self.nonfinite_mismatched} (matching NaN/inf on both sides: "
            f"{self.nonfinite_matched})",
            f"Greatest absolute difference: {self.max_abs:.6g} (up to {self.tolerance.atol:g} "
            f"allowed)",
            f"Greatest relative difference: {self.max_rel:.6g} (up to {self.tolerance.rtol:g} "
            f"allowed)",
            f"Worst element at index {self.worst_index}: actual {self.worst_actual!r}, expected "
            f"{self.worst_expected!r}",
            f"Tolerance: {self.tolerance} ({self.tolerance.reason})",
        ]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_abs": _json_float(self.max_abs),
            "max_rel": _json_float(self.max_rel),
            "worst_index": list(self.worst_index),
            "worst_actual": _json_float(self.worst_actual),
            "worst_expected": _json_float(self.worst_expected),
            "worst_ratio": _json_float(self.worst_ratio),
            "mismatched": self.mismatched,
            "nonfinite_mismatched": self.nonfinite_mismatched,
            "nonfinite_matched": self.nonfinite_matched,
            "total": self.total,
            "rtol": self.tolerance.rtol,
            "atol": self.tolerance.atol,
            "tolerance_reason": self.tolerance.reason,
            "passed": self.passed,
            "note": self.note,
            **self.extra,
        }


def _json_float(x: float) -> float | str:
    return x if np.isfinite(x) else str(x)


def compare(
    actual: Any,
    expected: Any,
    tolerance: Tolerance,
    *,
    mask: np.ndarray | None = None,
    extra_atol: np.ndarray | float | None = None,
) -> Diff:
    """Compare two arrays element-wise in float64.

    Args:
        actual, expected: array-likes of the same shape.
        tolerance: the bound.
        mask: optional boolean array; only ``True`` positions are compared.
        extra_atol: optional per-element absolute allowance added to the bound: the expected
            value's own error when it is an estimate (a finite difference).

    A position where either side is non-finite passes only if both are the same non-finite
    value (NaN and NaN, +inf and +inf, -inf and -inf).
    """
    a = np.asarray(actual, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if a.shape != e.shape:
        return Diff(
            max_abs=float("inf"), max_rel=float("inf"), worst_index=(), worst_actual=float("nan"),
            worst_expected=float("nan"), mismatched=max(a.size, e.size), nonfinite_mismatched=0,
            total=max(a.size, e.size), tolerance=tolerance, passed=False,
            note=f"shape mismatch: actual {a.shape} vs expected {e.shape}",
        )  # fmt: skip
    selected = np.ones(a.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    finite = np.isfinite(a) & np.isfinite(e)
    # Non-finite positions: same class required (NaN==NaN counts as equal here, on purpose).
    same_nonfinite = (np.isnan(a) & np.isnan(e)) | (np.isinf(a) & np.isinf(e) & (a == e))
    nonfinite_bad = selected & ~finite & ~same_nonfinite
    both = selected & finite
    abs_err = np.abs(np.where(both, a, 0.0) - np.where(both, e, 0.0))
    # Bounds only matter where both are finite; 0·inf (rtol=0, e=±inf) would warn and be NaN.
    bound = tolerance.atol + tolerance.rtol * np.abs(np.where(both, e, 0.0))
    if extra_atol is not None:
        bound = bound + np.where(both, np.broadcast_to(extra_atol, bound.shape), 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel_err = np.where(both & (e != 0), abs_err / np.abs(e), 0.0)
        # How far past its bound each element is; +inf where the bound is 0 and the error isn't.
        ratio = np.where(
            both, np.where(bound > 0, abs_err / bound, np.where(abs_err > 0, np.inf, 0.0)), 0.0
        )
    ratio = np.where(nonfinite_bad, np.inf, ratio)
    bad = (both & (abs_err > bound)) | nonfinite_bad
    if a.size:
        worst = np.unravel_index(int(np.argmax(ratio)), a.shape)
        worst_index = tuple(int(i) for i in worst)
        worst_actual, worst_expected = float(a[worst]), float(e[worst])
    else:
        worst_index, worst_actual, worst_expected = (), float("nan"), float("nan")
    mismatched = int(bad.sum())
    total = int(selected.sum())
    return Diff(
        max_abs=float(abs_err.max()) if a.size else 0.0,
        max_rel=float(rel_err.max()) if a.size else 0.0,
        worst_index=worst_index,
        worst_actual=worst_actual,
        worst_expected=worst_expected,
        mismatched=mismatched,
        nonfinite_mismatched=int(nonfinite_bad.sum()),
        total=total,
        tolerance=tolerance,
        # A comparison of nothing (empty arrays, or a mask that selects nothing) proves
        # nothing: it fails, so a check cannot pass by comparing no elements.
        passed=mismatched == 0 and total > 0,
        worst_ratio=float(ratio.max()) if a.size else 0.0,
        nonfinite_matched=int((selected & ~finite & same_nonfinite).sum()),
        note="" if total else "nothing compared",
    )
