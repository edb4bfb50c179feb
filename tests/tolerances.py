"""The parity suite's tolerance policy (:mod:`dualnet.parity.tolerance`) for tests that compare
arrays themselves.

:func:`assert_close` checks ``|actual - expected| <= atol + rtol·|expected|`` (the
``torch.testing.assert_close`` rule, NaN matching NaN and infinities matching exactly) with
``tol.for_reduction(dtype, K)``: the dtype's ``assert_close`` default, times √K for a result that
sums ``K`` terms (the longest sum involved: a convolution's taps × input channels, a Dense
fan-in, the values a normalization averages). A looser bound is ``factor`` times that, and must
say ``why``; the reason travels into the failure message.

:func:`assert_within_gamma` is the derived bound for a sum of ``K`` products that must be
computed in the dtype itself (no lower-precision step inside): Higham's
``|fl(Σxᵢwᵢ) - Σxᵢwᵢ| <= γ_K·Σ|xᵢ||wᵢ|``, ``γ_K = K·u / (1 - K·u)``.

Values that are bit-identical by construction (copies, masks, selections such as max, one
framework against itself on the same ops) are compared with ``np.testing.assert_array_equal``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dualnet.parity import tolerance as tol

UNIT_ROUNDOFF = {"float64": 2.0**-53, "float32": 2.0**-24, "float16": 2.0**-11}


def _name(dtype: Any) -> str:
    return dtype if isinstance(dtype, str) else np.dtype(dtype).name


def bound(
    dtype: Any, *, reduction: int = 1, factor: float = 1.0, why: str | None = None
) -> tol.Tolerance:
    """``tol.for_reduction(dtype, reduction)``, times ``factor`` (>= 1) with its reason ``why``."""
    base = tol.for_reduction(_name(dtype), reduction)
    if factor == 1.0:
        if why is None:
            return base
        return tol.Tolerance(rtol=base.rtol, atol=base.atol, reason=f"{base.reason} ({why})")
    if factor < 1.0 or why is None:
        raise ValueError(f"a looser bound needs factor >= 1 and its reason, got {factor=}, {why=}")
    return base.scaled(factor, f"{base.reason}; x{factor:.3g}: {why}")


def assert_close(
    actual: Any,
    expected: Any,
    dtype: Any,
    *,
    reduction: int = 1,
    factor: float = 1.0,
    why: str | None = None,
    err_msg: str = "",
) -> None:
    """Assert ``|actual - expected| <= atol + rtol·|expected|`` with :func:`bound`'s tolerance."""
    b = bound(dtype, reduction=reduction, factor=factor, why=why)
    message = f"tolerance {b} for {_name(dtype)}: {b.reason}"
    np.testing.assert_allclose(
        np.asarray(actual),
        np.asarray(expected),
        rtol=b.rtol,
        atol=b.atol,
        equal_nan=True,
        err_msg=f"{err_msg} {message}".strip(),
    )


def assert_within_gamma(
    actual: Any, expected: Any, magnitude: Any, dtype: Any, *, reduction: int, err_msg: str = ""
) -> None:
    """Assert ``|actual - expected| <= γ_K·magnitude`` elementwise, ``magnitude`` = ``Σ|xᵢ||wᵢ|``
    of each output's sum (for non-negative weights: the reference evaluated on ``|x|``) and
    ``K = reduction`` the number of roundings along it."""
    u = UNIT_ROUNDOFF[_name(dtype)]
    gamma = reduction * u / (1.0 - reduction * u)
    error = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    limit = gamma * np.asarray(magnitude, np.float64)
    worst = float(np.max(error - limit, initial=-np.inf))
    assert np.all(error <= limit), (
        f"{err_msg} |actual - expected| exceeds gamma_K*sum|x||w| (K={reduction}, "
        f"{_name(dtype)}: gamma_K={gamma:.3g}) by up to {worst:.3g}"
    ).strip()
