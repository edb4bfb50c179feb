"""Layer entries (Note [Layer entries]) for the pooling group: window and global pooling.

Maps are tiny (batch 2, 5x6, 2 channels) and chosen so each entry meets a place where torch and
Keras part: odd lengths with stride 2 under ``"valid"`` (the last row is dropped), ``"same"``
padding whose odd position falls at the end (5 rows need 1+1, 6 columns need 0+1 for k=3, s=2),
all-negative maps where a zero pad would win a max, ``"same"`` means whose border windows hold
fewer real positions than the window size, channels_first on both backends; and torch's explicit
padding: symmetric amounts where TensorFlow's ``same`` is asymmetric, ``count_include_pad`` both
ways, ``ceil_mode`` where it adds a last partial window (whose divisor never counts the overhang)
and where torch's rule drops the window that would start in the right padding.

Max pooling's gradient is undefined at ties: inputs are continuous random draws, and
:func:`max_kinks` masks the finite difference of the two leading elements of any window whose
top two values lie within a few finite-difference steps of each other (they are still compared
between torch and TensorFlow).

Half precision: max pooling is exact (``rounding_bound(0)``); means are taken in float32 and
rounded once (:func:`float32_rounded_once`). With explicit padding TensorFlow's float32 mean is
``(S/k)/(c/k)`` (Note in ``backends/tensorflow/layers/pooling.py``): three roundings more than
the sum's, so those entries count ``k + 3`` terms.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from dualnet import layers as L
from dualnet.layers._spatial import padded_length
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import BadInput, LayerCase, rounding_bound
from dualnet.reference.layers import pooling as R

# Finite-difference steps are ~6e-6 (and half that): a window whose two leading values are
# closer than this may change its argmax under the perturbation.
TIE_MARGIN = 1e-4
EXACT = rounding_bound(0)


def float32_rounded_once(terms: int) -> Callable[..., np.ndarray]:
    """Half-precision bound for a result computed in float32 from half inputs and rounded once
    to the half dtype: a weighted sum of ``terms`` values with non-negative weights (a mean, a
    linear interpolation), whose reference on ``|x|`` is ``Σ wᵢ|xᵢ|``.

    The float32 value ``a`` is within ``γ_K(u₃₂)·Σwᵢ|xᵢ|`` of the exact ``b`` (Higham's bound for
    a sum of ``K`` products, ``u₃₂ = 2⁻²⁴``); the two sides of the comparison are ``fl(a)`` and
    ``fl(b)``, and ``|fl(a) − fl(b)| <= |a − b| + u|a| + u|b|``.
    """
    u32 = 2.0**-24
    gamma = terms * u32 / (1.0 - terms * u32)

    def bound(ref_abs: np.ndarray, exact: np.ndarray, u: float) -> np.ndarray:
        return (1.0 + u) * gamma * ref_abs + 2.0 * u * np.abs(exact)

    bound.needs_abs = True  # type: ignore[attr-defined]
    return bound


def _negative(shape: tuple[int, ...]) -> Callable[[np.random.Generator], np.ndarray]:
    """Every value in [−3, −0.5]: a zero pad would win every border window."""
    return lambda rng: -rng.uniform(0.5, 3.0, shape)


def _taps(x: np.ndarray, pool_size: tuple[int, ...], strides: tuple[int, ...], padding: Any,
          data_format: str,
          ceil_mode: bool = False) -> Iterator[tuple[np.ndarray, np.ndarray]]:  # fmt: skip
    """Per window tap, the values (−inf on padding) and the flat input indices (−1 on padding)
    of every window, channels last; ``padding`` a mode or explicit ``(before, after)`` pairs
    (with torch's ``ceil_mode``)."""
    index = np.arange(x.size).reshape(x.shape)
    if data_format == "channels_first":
        x, index = np.moveaxis(x, 1, -1), np.moveaxis(index, 1, -1)
    plan = []
    for i, (n, k, s) in enumerate(zip(x.shape[1:-1], pool_size, strides, strict=True)):
        if not isinstance(padding, str):
            before, after = padding[i]
            out = padded_length(n, k, s, before, after, ceil_mode)
        elif padding == "same":
            out = -(-n // s)
            before = max(0, (out - 1) * s + k - n) // 2
        else:
            out, before = (n - k) // s + 1, 0
        plan.append((out, before, max(0, (out - 1) * s + k - n - before)))
    widths = [(0, 0), *((b, a) for _, b, a in plan), (0, 0)]
    xp = np.pad(x, widths, constant_values=-np.inf)
    ip = np.pad(index, widths, constant_values=-1)
    for offsets in itertools.product(*(range(k) for k in pool_size)):
        steps = zip(offsets, plan, strides, strict=True)
        window = (slice(None), *(slice(j, j + (o - 1) * s + 1, s) for j, (o, _, _), s in steps),
                  slice(None))  # fmt: skip
        yield xp[window], ip[window]


def _near_ties(x: np.ndarray, taps: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """True where the finite difference is valid: False for the leading two elements of
    windows whose top two values are within TIE_MARGIN."""
    first = np.full(taps[0][0].shape, -np.inf)
    second = first.copy()
    for values, _ in taps:
        second = np.maximum(second, np.minimum(first, values))
        first = np.maximum(first, values)
    close = first - second < TIE_MARGIN
    bad = np.zeros(x.size, dtype=bool)
    for values, index in taps:
        hit = close & (values >= second) & (index >= 0)
        bad[index[hit]] = True
    return ~bad.reshape(x.shape)


def max_kinks(pool_size, strides=None, padding="valid", data_format="channels_last",
              ceil_mode=False):  # fmt: skip
    """``fd_mask`` for window max pooling (explicit ``padding`` as ``(before, after)`` pairs)."""
    strides = pool_size if strides is None else strides

    def mask(inputs: list[np.ndarray], weights: dict) -> dict[str, np.ndarray]:
        x = inputs[0]
        taps = _taps(x, pool_size, strides, padding, data_format, ceil_mode)
        return {"x": _near_ties(x, list(taps))}

    return mask


def global_max_kinks(data_format="channels_last"):
    """``fd_mask`` for global max pooling: one window covering every position."""

    def mask(inputs: list[np.ndarray], weights: dict) -> dict[str, np.ndarray]:
        x = inputs[0]
        spatial = x.shape[2:] if data_format == "channels_first" else x.shape[1:-1]
        ones = (1,) * len(spatial)
        return {"x": _near_ties(x, list(_taps(x, spatial, ones, "valid", data_format)))}

    return mask


def _windows_per_element(pool_size, strides) -> int:
    """The most windows one input element belongs to: its gradient sums that many terms."""
    return int(np.prod([-(-k // s) for k, s in zip(pool_size, strides, strict=True)]))


_RANK_2D = r"expects inputs of rank 4 \(batch, height, width, channels\)"

register(
    # -- MaxPooling2D ------------------------------------------------------------------------
    LayerCase(
        name="max-pooling2d-defaults", layer=L.MaxPooling2D, input_shape=(2, 5, 6, 2),
        reference=R.max_pooling2d, fd_mask=max_kinks((2, 2)), half_bound=EXACT,
        exposes="strides=None means pool_size (torch: kernel_size), pool (2, 2) by default; "
                "'valid' drops the 5th row",
        errors=(
            BadInput(kwargs={"pool_size": 0}, error=ValueError,
                     match=r"pool_size=\(0, 0\).*int >= 1"),
            BadInput(kwargs={"strides": (2, 0)}, error=ValueError, match=r"strides=\(2, 0\)"),
            BadInput(kwargs={"strides": "2"}, error=TypeError, match=r"strides='2'"),
            BadInput(kwargs={"pool_size": (2, 2, 2)}, error=TypeError, match=r"pool_size="),
            BadInput(kwargs={"padding": "full"}, error=ValueError, match=r"padding='full'"),
            BadInput(kwargs={"data_format": "NHWC"}, error=ValueError, match=r"data_format="),
            BadInput(input_shape=(2, 5, 6), error=ValueError, match=_RANK_2D),
            BadInput(input_shape=(2, 1, 6, 2), error=ValueError,
                     match=r"expects spatial dimensions >= pool_size=\(2, 2\) with "
                           r"padding='valid'"),
        ),
    ),
    LayerCase(
        name="max-pooling2d-same-negative", layer=L.MaxPooling2D,
        kwargs={"pool_size": 3, "strides": 2, "padding": "same"}, input_shape=(2, 5, 6, 2),
        inputs=_negative((2, 5, 6, 2)), reference=R.max_pooling2d,
        fd_mask=max_kinks((3, 3), (2, 2), "same"), reduction=1,
        grad_reduction=_windows_per_element((3, 3), (2, 2)),
        half_bound=EXACT,
        exposes="all-negative borders: a zero pad would win; 6 columns pad 0+1 (TF's odd "
                "position at the end, which torch's symmetric padding cannot express)",
    ),
    LayerCase(
        name="max-pooling2d-channels-first", layer=L.MaxPooling2D,
        kwargs={"pool_size": (3, 2), "strides": (2, 1), "padding": "same",
                "data_format": "channels_first"},
        input_shape=(2, 2, 5, 6), inputs=_negative((2, 2, 5, 6)), reference=R.max_pooling2d,
        fd_mask=max_kinks((3, 2), (2, 1), "same", "channels_first"),
        reduction=1, grad_reduction=_windows_per_element((3, 2), (2, 1)), half_bound=EXACT,
        exposes="channels_first (torch's layout) on both backends; even window with stride 1 "
                "pads only at the end",
        errors=(BadInput(input_shape=(2, 5, 6, 2, 1), error=ValueError,
                         match=r"rank 4 \(batch, channels, height, width\)"),),
    ),
    # -- MaxPooling1D / 3D ------------------------------------------------------------------
    LayerCase(
        name="max-pooling1d-same-negative", layer=L.MaxPooling1D,
        kwargs={"pool_size": 3, "strides": 2, "padding": "same"}, input_shape=(2, 6, 2),
        inputs=_negative((2, 6, 2)), reference=R.max_pooling1d,
        fd_mask=max_kinks((3,), (2,), "same"), reduction=1, grad_reduction=2, half_bound=EXACT,
        exposes="6 steps with k=3, s=2 pad 0+1: the extra position at the end, negative values",
        errors=(
            BadInput(input_shape=(2, 6), error=ValueError,
                     match=r"rank 3 \(batch, steps, channels\)"),
            BadInput(kwargs={"padding": "valid", "pool_size": 7}, input_shape=(2, 6, 2),
                     error=ValueError, match=r"pool_size=\(7,\)"),
        ),
    ),
    LayerCase(
        name="max-pooling3d-same", layer=L.MaxPooling3D, kwargs={"padding": "same"},
        input_shape=(2, 3, 4, 3, 2), inputs=_negative((2, 3, 4, 3, 2)),
        reference=R.max_pooling3d, fd_mask=max_kinks((2, 2, 2), (2, 2, 2), "same"),
        half_bound=EXACT,
        exposes="3-D pooling in float64 and float16, which TensorFlow's CPU has no kernel for; "
                "odd lengths pad at the end",
        errors=(BadInput(input_shape=(2, 3, 4, 2), error=ValueError, match=r"rank 5"),),
    ),
    LayerCase(
        name="max-pooling3d-channels-first", layer=L.MaxPooling3D,
        kwargs={"pool_size": 2, "strides": (1, 2, 1), "data_format": "channels_first"},
        input_shape=(2, 2, 3, 4, 3), reference=R.max_pooling3d,
        fd_mask=max_kinks((2, 2, 2), (1, 2, 1), "valid", "channels_first"),
        reduction=1, grad_reduction=_windows_per_element((2, 2, 2), (1, 2, 1)), half_bound=EXACT,
        exposes="channels_first 3-D with overlapping windows (stride 1 along two axes)",
    ),
    # -- AveragePooling ---------------------------------------------------------------------
    LayerCase(
        name="average-pooling2d-same-odd", layer=L.AveragePooling2D,
        kwargs={"pool_size": 3, "strides": 2, "padding": "same"}, input_shape=(2, 5, 6, 2),
        reference=R.average_pooling2d, reduction=9, half_bound=float32_rounded_once(9),
        exposes="torch's count_include_pad=True divides border windows by 9; Keras by the real "
                "positions; 6 columns pad 0+1 at the end (no torch padding= equivalent)",
        errors=(
            BadInput(kwargs={"pool_size": (3, 3, 3)}, error=TypeError, match=r"pool_size="),
            BadInput(kwargs={"pool_size": -1}, error=ValueError, match=r"pool_size=\(-1, -1\)"),
            BadInput(input_shape=(2, 5, 6), error=ValueError, match=_RANK_2D),
        ),
    ),
    LayerCase(
        name="average-pooling2d-same-symmetric", layer=L.AveragePooling2D,
        kwargs={"pool_size": 3, "strides": 2, "padding": "same"}, input_shape=(2, 5, 7, 2),
        reference=R.average_pooling2d, reduction=9, half_bound=float32_rounded_once(9),
        exposes="symmetric 'same' padding (1+1 on both axes): torch's padding=1 matches the "
                "windows, but its default count_include_pad=True divisor does not",
    ),
    LayerCase(
        name="average-pooling2d-valid-channels-first", layer=L.AveragePooling2D,
        kwargs={"pool_size": (2, 3), "strides": (1, 2), "data_format": "channels_first"},
        input_shape=(2, 2, 5, 6), reference=R.average_pooling2d, reduction=6,
        half_bound=float32_rounded_once(6),
        exposes="channels_first on both backends; overlapping rows (stride 1 < pool 2)",
        errors=(BadInput(kwargs={"data_format": "channels_first"}, input_shape=(2, 2, 5, 2),
                         error=ValueError, match=r"pool_size=\(2, 3\)"),),
    ),
    LayerCase(
        name="average-pooling1d-same-even-stride1", layer=L.AveragePooling1D,
        kwargs={"pool_size": 2, "strides": 1, "padding": "same"}, input_shape=(2, 6, 2),
        reference=R.average_pooling1d, reduction=2, half_bound=float32_rounded_once(2),
        exposes="even pool with stride 1 pads one position at the end only; the last window "
                "divides by 1 (torch's count_include_pad would halve it)",
        errors=(BadInput(input_shape=(2, 6, 2, 1), error=ValueError, match=r"rank 3"),),
    ),
    LayerCase(
        name="average-pooling1d-channels-first", layer=L.AveragePooling1D,
        kwargs={"pool_size": 3, "strides": 2, "padding": "same", "data_format": "channels_first"},
        input_shape=(2, 2, 7), reference=R.average_pooling1d, reduction=3,
        half_bound=float32_rounded_once(3),
        exposes="channels_first 1-D; 7 steps pad 1+1 (the symmetric case)",
    ),
    LayerCase(
        name="average-pooling3d-same", layer=L.AveragePooling3D,
        kwargs={"pool_size": 2, "padding": "same"}, input_shape=(2, 3, 4, 3, 2),
        reference=R.average_pooling3d, reduction=8, half_bound=float32_rounded_once(8),
        exposes="3-D means in float64 and half precision (no TensorFlow CPU kernel); odd lengths "
                "leave border windows with 4 of 8 real positions",
        errors=(BadInput(kwargs={"pool_size": (2, 2)}, error=TypeError, match=r"pool_size="),),
    ),
    # -- Global pooling ---------------------------------------------------------------------
    LayerCase(
        name="global-average-pooling2d", layer=L.GlobalAveragePooling2D,
        input_shape=(2, 5, 6, 2), reference=R.global_average_pooling2d, reduction=30,
        half_bound=float32_rounded_once(30),
        exposes="channels_last mean over H, W (torch: x.mean((2, 3)) on NCHW)",
        errors=(
            BadInput(kwargs={"keepdims": "yes"}, error=TypeError, match=r"keepdims='yes'"),
            BadInput(kwargs={"data_format": "nchw"}, error=ValueError, match=r"data_format="),
            BadInput(input_shape=(2, 5, 6), error=ValueError, match=_RANK_2D),
        ),
    ),
    LayerCase(
        name="global-average-pooling2d-keepdims-channels-first", layer=L.GlobalAveragePooling2D,
        kwargs={"data_format": "channels_first", "keepdims": True}, input_shape=(2, 2, 5, 6),
        reference=R.global_average_pooling2d, reduction=30, half_bound=float32_rounded_once(30),
        exposes="keepdims=True keeps (N, C, 1, 1) as torch's adaptive_avg_pool2d(x, 1)",
    ),
    LayerCase(
        name="global-average-pooling1d", layer=L.GlobalAveragePooling1D, input_shape=(2, 6, 2),
        reference=R.global_average_pooling1d, reduction=6, half_bound=float32_rounded_once(6),
        exposes="mean over steps of (batch, steps, channels) (torch: x.mean(2) on (N, C, L))",
        errors=(BadInput(input_shape=(2, 6), error=ValueError,
                         match=r"rank 3 \(batch, steps, channels\)"),),
    ),
    LayerCase(
        name="global-max-pooling1d-keepdims", layer=L.GlobalMaxPooling1D,
        kwargs={"keepdims": True}, input_shape=(2, 6, 2), inputs=_negative((2, 6, 2)),
        reference=R.global_max_pooling1d, fd_mask=global_max_kinks(), half_bound=EXACT,
        exposes="keepdims=True keeps the steps axis with length 1",
        errors=(BadInput(input_shape=(2, 6, 2, 2), error=ValueError, match=r"rank 3"),),
    ),
    LayerCase(
        name="global-max-pooling2d-channels-first", layer=L.GlobalMaxPooling2D,
        kwargs={"data_format": "channels_first"}, input_shape=(2, 2, 5, 6),
        reference=R.global_max_pooling2d, fd_mask=global_max_kinks("channels_first"),
        half_bound=EXACT, exposes="channels_first: the max over axes 2, 3 (torch's layout)",
        errors=(BadInput(kwargs={"keepdims": 1}, error=TypeError, match=r"keepdims=1"),),
    ),
    # -- explicit (torch-style) padding ---------------------------------------------------
    LayerCase(
        name="max-pooling2d-explicit-pad1-negative", layer=L.MaxPooling2D,
        kwargs={"pool_size": 3, "strides": 2, "padding": 1}, input_shape=(2, 6, 5, 2),
        inputs=_negative((2, 6, 5, 2)), reference=R.max_pooling2d,
        fd_mask=max_kinks((3, 3), (2, 2), ((1, 1), (1, 1))), reduction=1,
        grad_reduction=_windows_per_element((3, 3), (2, 2)), half_bound=EXACT,
        exposes="torch's MaxPool2d(3, 2, padding=1) on all-negative borders: the −inf padding "
                "never wins (a zero pad would win every border window); pads (1, 1) on 6 rows "
                "where TensorFlow's same pads (0, 1)",
        errors=(
            BadInput(kwargs={"padding": 2}, error=ValueError,
                     match=r"padding=2.*at most half the pool size.*at most \(1, 1\)"),
            BadInput(kwargs={"padding": ((0, 0), (2, 0))}, error=ValueError,
                     match=r"at most half the pool size"),
            BadInput(kwargs={"padding": -1}, error=ValueError, match=r"padding=-1"),
            BadInput(kwargs={"padding": (1, 1, 1)}, error=TypeError, match=r"padding=\(1, 1, 1\)"),
            BadInput(kwargs={"padding": "valid", "ceil_mode": True}, error=ValueError,
                     match=r"ceil_mode=True.*False with padding='valid'.*explicit padding"),
            BadInput(kwargs={"ceil_mode": 1}, error=TypeError, match=r"ceil_mode=1.*bool"),
            BadInput(kwargs={"pool_size": 2, "strides": 2, "padding": ((0, 0), (0, 1))},
                     input_shape=(2, 1, 5, 2), error=ValueError,
                     match=r"expects each spatial dimension plus its padding"),
        ),
    ),
    LayerCase(
        name="max-pooling2d-ceil-pairs-negative-cf", layer=L.MaxPooling2D,
        kwargs={"pool_size": 3, "strides": 2, "padding": ((1, 0), (0, 1)), "ceil_mode": True,
                "data_format": "channels_first"},
        input_shape=(2, 2, 5, 6), inputs=_negative((2, 2, 5, 6)), reference=R.max_pooling2d,
        fd_mask=max_kinks((3, 3), (2, 2), ((1, 0), (0, 1)), "channels_first", True),
        reduction=1, grad_reduction=_windows_per_element((3, 3), (2, 2)), half_bound=EXACT,
        exposes="ceil_mode with unequal pairs, all-negative: the last partial window of each "
                "axis reaches past the padding (rows 3 of 2 full, columns 3 of 2 full); its "
                "overhang never wins either",
    ),
    LayerCase(
        name="max-pooling1d-ceil-dropped", layer=L.MaxPooling1D,
        kwargs={"pool_size": 3, "strides": 3, "padding": 1, "ceil_mode": True},
        input_shape=(2, 5, 2), inputs=_negative((2, 5, 2)), reference=R.max_pooling1d,
        fd_mask=max_kinks((3,), (3,), ((1, 1),), ceil_mode=True), reduction=1, half_bound=EXACT,
        exposes="ceil_mode where torch's rule drops the extra window: on 5 steps with k=3, s=3, "
                "p=1 the third window would start at step 5, in the right padding (2 outputs, "
                "not 3)",
        errors=(BadInput(kwargs={"padding": "same", "ceil_mode": True}, error=ValueError,
                         match=r"ceil_mode=True"),),
    ),
    LayerCase(
        name="max-pooling3d-explicit-ceil", layer=L.MaxPooling3D,
        kwargs={"pool_size": 2, "padding": 1, "ceil_mode": True}, input_shape=(2, 3, 4, 3, 2),
        inputs=_negative((2, 3, 4, 3, 2)), reference=R.max_pooling3d,
        fd_mask=max_kinks((2, 2, 2), (2, 2, 2), ((1, 1),) * 3, ceil_mode=True),
        half_bound=EXACT,
        exposes="3-D explicit padding with ceil_mode in float64/float16 (TensorFlow's CPU has no "
                "kernel: folded into 2-D pools), −inf padding on negative values",
    ),
    LayerCase(
        name="average-pooling2d-explicit-pad1-count-pad", layer=L.AveragePooling2D,
        kwargs={"pool_size": 3, "strides": 2, "padding": 1}, input_shape=(2, 6, 5, 2),
        reference=R.average_pooling2d, reduction=9, half_bound=float32_rounded_once(9 + 3),
        exposes="torch's AvgPool2d(3, 2, padding=1) default count_include_pad=True: a corner "
                "window divides by 9 (4 real values), where Keras's same divides by the real "
                "positions; pads (1, 1) on 6 rows where same pads (0, 1)",
        errors=(
            BadInput(kwargs={"padding": "same", "count_include_pad": False}, error=ValueError,
                     match=r"count_include_pad=False.*True with padding='same'"),
            BadInput(kwargs={"count_include_pad": "no"}, error=TypeError,
                     match=r"count_include_pad='no'"),
            BadInput(kwargs={"pool_size": 1, "padding": 1}, error=ValueError,
                     match=r"padding=1.*at most \(0, 0\)"),
        ),
    ),
    LayerCase(
        name="average-pooling2d-explicit-real-only-cf", layer=L.AveragePooling2D,
        kwargs={"pool_size": (3, 2), "strides": (2, 1), "padding": (1, 1),
                "count_include_pad": False, "data_format": "channels_first"},
        input_shape=(2, 2, 5, 6), reference=R.average_pooling2d, reduction=6,
        half_bound=float32_rounded_once(6 + 3),
        exposes="count_include_pad=False: border windows divide by their real positions (torch's "
                "option; dualnet's default counts the padding as torch does); channels_first",
    ),
    LayerCase(
        name="average-pooling2d-ceil-overhang", layer=L.AveragePooling2D,
        kwargs={"pool_size": 3, "strides": 3, "padding": 1, "ceil_mode": True},
        input_shape=(2, 5, 6, 2), reference=R.average_pooling2d, reduction=9,
        half_bound=float32_rounded_once(9 + 3),
        exposes="ceil_mode both ways: on 5 rows torch's rule drops the window that would start "
                "in the padding; on 6 columns a last window [5, 8) adds, dividing by 2 (the real "
                "column and the padded one, never the overhang past n + p)",
    ),
    LayerCase(
        name="average-pooling2d-ceil-overhang-real-only-cf", layer=L.AveragePooling2D,
        kwargs={"pool_size": 3, "strides": 3, "padding": 1, "ceil_mode": True,
                "count_include_pad": False, "data_format": "channels_first"},
        input_shape=(2, 2, 5, 6), reference=R.average_pooling2d, reduction=9,
        half_bound=float32_rounded_once(9 + 3),
        exposes="ceil_mode with count_include_pad=False: the partial last column window "
                "divides by its one real column",
    ),
    LayerCase(
        name="average-pooling1d-explicit-pair-ceil", layer=L.AveragePooling1D,
        kwargs={"pool_size": 4, "strides": 2, "padding": ((2, 1),), "ceil_mode": True},
        input_shape=(2, 6, 2), reference=R.average_pooling1d, reduction=4,
        half_bound=float32_rounded_once(4 + 3),
        exposes="an unequal pair (2, 1) with ceil_mode: the last window [4, 8) holds two real "
                "steps, one padded (counted) and one overhang (not counted): divisor 3",
        errors=(BadInput(kwargs={"padding": (1, 1)}, error=TypeError,
                         match=r"padding=\(1, 1\).*tuple of 1 ints"),),
    ),
    LayerCase(
        name="average-pooling3d-explicit-ceil", layer=L.AveragePooling3D,
        kwargs={"pool_size": 2, "padding": (1, 0, 1), "ceil_mode": True},
        input_shape=(2, 3, 4, 3, 2), reference=R.average_pooling3d, reduction=8,
        half_bound=float32_rounded_once(8 + 3),
        exposes="3-D means with explicit padding and ceil_mode in float64/half precision (no "
                "TensorFlow CPU kernel; the divisor map folded the same way)",
    ),
)  # fmt: skip
