"""Robust statistics for timing samples: median, IQR, a distribution-free CI for the median.

Timing samples are skewed (a floor set by the hardware, a long tail from interrupts, page
faults and the other tenants of the machine), so everything here is order statistics: no mean,
no standard deviation, no normality assumption.

The confidence interval of the median is the classical sign-test interval: with ``n`` i.i.d.
samples, the number of samples below the true median is Binomial(n, 1/2), so
``[x_(j), x_(n+1-j)]`` (1-based order statistics) covers the median with probability
``1 - 2·P(B ≤ j-1)``. We take the largest ``j`` keeping that probability ≥ ``confidence``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from dualnet.errors import bad_value

CONFIDENCE = 0.95


def quantile(sorted_values: Sequence[float], q: float) -> float:
    """The ``q``-quantile of already sorted values, linear interpolation (numpy's default)."""
    if not sorted_values:
        raise bad_value("values", sorted_values, "at least one sample")
    position = q * (len(sorted_values) - 1)
    lo = math.floor(position)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (position - lo)


@functools.lru_cache(maxsize=4096)
def median_ci_ranks(n: int, confidence: float = CONFIDENCE) -> tuple[int, int] | None:
    """0-based ranks ``(lo, hi)`` of the sign-test CI for the median, or None if ``n`` is too
    small for any interval narrower than [min, max] to reach ``confidence`` (n < 6 at 95%)."""
    alpha = 1.0 - confidence
    if n > 300:
        # Normal approximation to Binomial(n, 1/2): rank n/2 ± z·√n/2 (error < 1 rank here).
        z = _z(1.0 - alpha / 2)
        j = math.floor(n / 2 - z * math.sqrt(n) / 2)
        return (max(j - 1, 0), min(n - j, n - 1))
    total = 2**n
    tail = 0  # exact integer arithmetic: P(B ≤ k) = Σ_{i≤k} C(n, i) / 2^n
    j = 0
    for k in range(n):
        tail += math.comb(n, k)
        if 2 * tail / total > alpha:  # two-sided coverage would drop below `confidence`
            break
        j = k + 1  # P(B ≤ k) small enough: x_(k+1) may be the lower end
    if j == 0:
        return None
    return (j - 1, n - j)


def _z(p: float) -> float:
    """Standard normal quantile by bisection on erf (only used for large n; no scipy needed)."""
    lo, hi = -10.0, 10.0
    for _ in range(100):
        mid = (lo + hi) / 2
        if 0.5 * (1 + math.erf(mid / math.sqrt(2))) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


@dataclass(frozen=True, kw_only=True)
class Summary:
    """Order statistics of one set of per-call times (seconds).

    ``rel_halfwidth`` is the half-width of the median's CI divided by the median: the precision
    the stop rule asks for. It is ``inf`` when there are too few samples for a CI.
    """

    n: int
    median: float
    q1: float
    q3: float
    min: float
    max: float
    ci_low: float
    ci_high: float
    rel_halfwidth: float

    def to_dict(self) -> dict[str, float | None]:
        """JSON-ready: a non-finite value (no CI yet) becomes None (strict JSON has no inf)."""
        return {k: (v if math.isfinite(v) else None) for k, v in asdict(self).items()}


def summarize(samples: Sequence[float], confidence: float = CONFIDENCE) -> Summary:
    """Median, quartiles, extremes and the median's CI of ``samples``."""
    values = sorted(samples)
    if not values:
        raise bad_value("samples", samples, "at least one sample")
    median = quantile(values, 0.5)
    ranks = median_ci_ranks(len(values), confidence)
    if ranks is None:
        lo, hi, rel = values[0], values[-1], math.inf
    else:
        lo, hi = values[ranks[0]], values[ranks[1]]
        rel = (hi - lo) / 2 / median if median > 0 else math.inf
    return Summary(
        n=len(values),
        median=median,
        q1=quantile(values, 0.25),
        q3=quantile(values, 0.75),
        min=values[0],
        max=values[-1],
        ci_low=lo,
        ci_high=hi,
        rel_halfwidth=rel,
    )


def precise_enough(samples: Sequence[float], rel_ci: float, min_samples: int) -> bool:
    """The stop rule: at least ``min_samples`` and the median's 95% CI half-width ≤ ``rel_ci``
    × median."""
    if len(samples) < min_samples:
        return False
    return summarize(samples).rel_halfwidth <= rel_ci


def paired_ratios(a: Sequence[float], b: Sequence[float]) -> list[float]:
    """``a_i / b_i`` for samples taken in the same interleaved round (drift cancels in each)."""
    n = min(len(a), len(b))
    return [a[i] / b[i] for i in range(n) if b[i] > 0]
