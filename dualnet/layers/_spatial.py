"""Spatial layout and window arithmetic shared by the layers that take ``data_format``
(convolutions, pooling, padding, cropping, upsampling, spatial dropout): where the channel and
spatial axes are, how an input layout is named in errors and docstrings, and TensorFlow's
``"same"`` padding rule, which convolutions and pooling both follow.

Axes count the batch as axis 0 and are non-negative: a rank-4 channels_last input has spatial
axes ``(1, 2)`` and channel axis 3.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

_SPATIAL_NAMES = {1: "steps", 2: "height, width", 3: "depth, height, width"}


def spatial_axes(ndim: int, data_format: str) -> tuple[int, ...]:
    """The spatial axes of a rank-``ndim`` input (batch first)."""
    return tuple(range(2, ndim)) if data_format == "channels_first" else tuple(range(1, ndim - 1))


def channel_axis(ndim: int, data_format: str) -> int:
    """The channel axis of a rank-``ndim`` input (batch first), non-negative."""
    return 1 if data_format == "channels_first" else ndim - 1


def layout(spatial_dims: int, data_format: str) -> str:
    """The axes of an input with ``spatial_dims`` spatial axes, as errors and docstrings name
    them: ``"batch, height, width, channels"`` (channels_last 2-D), ``"batch, channels, steps"``
    (channels_first 1-D), ..."""
    spatial = _SPATIAL_NAMES[spatial_dims]
    if data_format == "channels_first":
        return f"batch, channels, {spatial}"
    return f"batch, {spatial}, channels"


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's ``"same"`` padding of one axis of length ``size``: ``(before, after)``.

    The output has ``ceil(size / stride)`` positions; the padding is what the last window needs,
    ``max(0, (out - 1)·stride + k' - size)`` with the dilated window ``k' = dilation·(kernel - 1)
    + 1``, split with the odd position **after** (torch's symmetric integer padding puts it on
    both sides). Pooling windows are not dilated (``dilation=1``).
    """
    effective = dilation * (kernel - 1) + 1
    out = -(-size // stride)  # ceil(size / stride)
    # max(0, ...): with stride > k' the last window may end before the input does.
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


def output_length(size: int | None, window: int, stride: int, padding: str) -> int | None:
    """Output length of one axis for a (dilated) ``window`` moved by ``stride``: ``"valid"``
    ``floor((size - window) / stride) + 1`` (0 when the window does not fit), ``"same"`` and
    ``"causal"`` ``ceil(size / stride)``. None (an unknown size) stays None."""
    if size is None:
        return None
    if padding == "valid":
        return (size - window) // stride + 1 if size >= window else 0
    return -(-size // stride)


Pairs = tuple[tuple[int, int], ...]


def is_explicit(padding: Any) -> bool:
    """Whether ``padding`` (a layer's validated padding) is explicit amounts, not a mode."""
    return not isinstance(padding, str)


def padded_length(size: int, window: int, stride: int, before: int, after: int,
                  ceil_mode: bool = False) -> int:  # fmt: skip
    """Output length of one axis with explicit padding, torch's formula (convolutions and
    pooling; ``window`` is the dilated kernel):

    ``out = floor_or_ceil((size + before + after - window) / stride) + 1``, and with
    ``ceil_mode`` ``out - 1`` where the last window would start in the right padding,
    ``(out - 1)·stride >= size + before`` (torch's rule: every window starts inside the input
    or its left padding). Below 1 (the padded input shorter than the window) it is 0.
    """
    span = size + before + after - window
    # -(-a // b) = ceil(a / b) for ints, also for a negative a (then 0 or less).
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    return max(out, 0)


def window_counts(size: int, window: int, stride: int, before: int, after: int,
                  ceil_mode: bool, count_include_pad: bool) -> tuple[int, ...]:  # fmt: skip
    """torch's average-pooling divisor of each window along one axis, explicit padding.

    Window ``o`` covers ``[o·stride − before, o·stride − before + window)``; the divisor counts
    the part of it inside ``[−before, size + after)`` (``count_include_pad``: the explicit
    zeros count, the ceil_mode overhang past ``size + after`` never does) or inside
    ``[0, size)`` (real positions only). A window box is a product of intervals, so the count
    of a window of several axes is the product of these per-axis counts."""
    out = padded_length(size, window, stride, before, after, ceil_mode)
    low, high = (-before, size + after) if count_include_pad else (0, size)
    counts = []
    for o in range(out):
        start = o * stride - before
        counts.append(min(start + window, high) - max(start, low))
    return tuple(counts)


def map_spatial(
    shape: Sequence[int | None], data_format: str, length: Callable[[int, int], int]
) -> tuple[int | None, ...]:
    """``shape`` (batch first) with each known spatial length ``n`` of the ``i``-th spatial
    axis replaced by ``length(n, i)``; unknown lengths stay None, other axes are kept."""
    out = list(shape)
    for i, axis in enumerate(spatial_axes(len(out), data_format)):
        out[axis] = None if out[axis] is None else length(out[axis], i)
    return tuple(out)
