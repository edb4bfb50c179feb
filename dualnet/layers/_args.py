"""Argument validation shared by the layer groups: every error names the argument, the value
received and what was expected, and is raised before any framework is touched."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet import random as _random
from dualnet.errors import bad_type, bad_value
from dualnet.layers._checks import check_layer_arguments

DATA_FORMATS = ("channels_last", "channels_first")


def is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def positive_int(value: Any, argument: str, where: str, *, minus_one: str | None = None) -> int:
    """A positive int; with ``minus_one`` (what -1 stands for, e.g. ``"one group per
    channel"``) also -1."""
    expected = "a positive int" if minus_one is None else f"a positive int, or -1 for {minus_one}"
    if not is_int(value):
        raise bad_type(argument, value, expected, where=where)
    if value <= 0 and (minus_one is None or value != -1):
        raise bad_value(argument, value, expected, where=where)
    return int(value)


def int_tuple(
    value: Any, n: int, argument: str, where: str, *, minimum: int = 1
) -> tuple[int, ...]:
    """An int or a tuple of ``n`` ints, each ``>= minimum`` (Keras's ``standardize_tuple``)."""
    expected = f"an int >= {minimum} or a tuple of {n} such ints"
    if is_int(value):
        value = (int(value),) * n
    if not isinstance(value, tuple | list) or len(value) != n or not all(is_int(v) for v in value):
        raise bad_type(argument, value, expected, where=where)
    if any(v < minimum for v in value):
        raise bad_value(argument, tuple(value), expected, where=where)
    return tuple(int(v) for v in value)


def int_pairs(value: Any, n: int, argument: str, where: str) -> tuple[tuple[int, int], ...]:
    """Keras's per-axis ``(before, after)`` amounts (ZeroPadding2D's padding, Cropping2D's
    cropping): an int ``p`` (every side), a tuple of ``n`` ints (both sides of each axis) or a
    tuple of ``n`` pairs; every amount an int >= 0."""
    return _pairs(value, n, argument, where, _pairs_expected(n))


def _pairs_expected(n: int) -> str:
    example = " ((top, bottom), (left, right))" if n == 2 else ""
    return (f"an int >= 0, a tuple of {n} ints (one per axis) or a tuple of {n} pairs"
            f"{example}, of ints >= 0")  # fmt: skip


def padding(value: Any, options: Sequence[str], n: int, argument: str, where: str, *,
            explicit: bool = True) -> str | tuple[tuple[int, int], ...]:  # fmt: skip
    """A padding mode, one of ``options`` (case-insensitive, lower-cased), or with ``explicit``
    torch-style amounts over ``n`` spatial axes: an int ``p`` (``p`` before and after every
    axis, torch's symmetric ``padding=p``), a tuple of ``n`` ints (symmetric per axis) or a
    tuple of ``n`` ``(before, after)`` pairs, every amount an int >= 0; returned as a tuple of
    ``n`` pairs. A value of another kind (None, a float) is a ValueError naming what is
    accepted, as an unknown mode string is."""
    if isinstance(value, str) or not explicit:
        return choice(value, options, argument, where)
    modes = ", ".join(repr(o) for o in options)
    expected = f"one of {modes}, or {_pairs_expected(n)}"
    if not is_int(value) and not isinstance(value, tuple | list):
        raise bad_value(argument, value, expected, where=where)
    return _pairs(value, n, argument, where, expected, shown=value)


def _pairs(value: Any, n: int, argument: str, where: str, expected: str, *,
           shown: Any = None) -> tuple[tuple[int, int], ...]:  # fmt: skip
    """:func:`int_pairs`'s rule, with the caller's description of what is accepted; errors
    show ``shown`` (default: the value, an int expanded to ``n`` of them)."""
    if is_int(value):
        value = (value,) * n
    shown = value if shown is None else shown
    if not isinstance(value, tuple | list) or len(value) != n:
        raise bad_type(argument, shown, expected, where=where)
    pairs = []
    for item in value:
        pair = (item, item) if is_int(item) else item
        if not isinstance(pair, tuple | list) or len(pair) != 2 or not all(is_int(v) for v in pair):
            raise bad_type(argument, shown, expected, where=where)
        if any(v < 0 for v in pair):
            raise bad_value(argument, shown, expected, where=where)
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def target_shape(value: Any, argument: str, where: str) -> tuple[int, ...]:
    """A shape to reshape to, batch axis excluded: positive ints, at most one of them -1 (the
    length that makes the sizes match)."""
    expected = "a tuple of positive ints with at most one -1 (batch axis excluded)"
    if not isinstance(value, tuple | list) or not all(is_int(d) for d in value):
        raise bad_type(argument, value, expected, where=where)
    shape = tuple(int(d) for d in value)
    if any(d == 0 or d < -1 for d in shape) or shape.count(-1) > 1:
        raise bad_value(argument, value, expected, where=where)
    return shape


def batch_shape(value: Any, argument: str, where: str) -> tuple[int | None, ...] | None:
    """None, or a non-empty shape *with* the batch axis: positive ints or None (the input's
    size)."""
    if value is None:
        return None
    expected = "None or a tuple of positive ints or None, batch dimension included"
    if not isinstance(value, tuple | list) or not value:
        raise bad_type(argument, value, expected, where=where)
    if any(d is not None and (not is_int(d) or d <= 0) for d in value):
        raise bad_value(argument, tuple(value), expected, where=where)
    return tuple(None if d is None else int(d) for d in value)


def permutation(value: Any, argument: str, where: str) -> tuple[int, ...]:
    """A permutation of the non-batch axes, 1-based as Keras counts them: ``(2, 1)``."""
    expected = "a permutation of 1..k (1-based, batch axis excluded), e.g. (2, 1)"
    if not isinstance(value, tuple | list) or not value or not all(is_int(d) for d in value):
        raise bad_type(argument, value, expected, where=where)
    if sorted(int(d) for d in value) != list(range(1, len(value) + 1)):
        raise bad_value(argument, value, expected, where=where)
    return tuple(int(d) for d in value)


def seed(value: Any, argument: str, where: str) -> int | None:
    """None (one is drawn later from dualnet's generator) or a non-negative int: the rule of
    :func:`dualnet.random.check_seed`, with the layer named."""
    try:
        return _random.check_seed(value, argument=argument)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


def choice(value: Any, options: Sequence[str], argument: str, where: str) -> str:
    """One of ``options`` (case-insensitive, as Keras accepts ``"SAME"``)."""
    if not isinstance(value, str) or value.lower() not in options:
        raise bad_value(argument, value, "one of " + ", ".join(repr(o) for o in options),
                        where=where)  # fmt: skip
    return value.lower()


def data_format(value: Any, where: str) -> str:
    """``None`` is Keras's default image data format, ``channels_last``."""
    return "channels_last" if value is None else choice(value, DATA_FORMATS, "data_format", where)


def boolean(value: Any, argument: str, where: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise bad_type(argument, value, "a bool", where=where)
    return bool(value)


def real(
    value: Any, argument: str, where: str, *, low: float | None = None,
    high: float | None = None, low_open: bool = False, high_open: bool = False,
) -> float:  # fmt: skip
    """A finite real number in ``[low, high]`` (``(`` / ``)`` where open)."""
    lo = "" if low is None else f"{'>' if low_open else '>='} {low}"
    hi = "" if high is None else f"{'<' if high_open else '<='} {high}"
    expected = (
        "a finite number"
        + (f" {lo}" if lo else "")
        + (" and" if lo and hi else "")
        + (f" {hi}" if hi else "")
    )
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise bad_type(argument, value, expected, where=where)
    v = float(value)
    if not np.isfinite(v):
        raise bad_value(argument, value, expected, where=where)
    if low is not None and (v < low or (low_open and v == low)):
        raise bad_value(argument, value, expected, where=where)
    if high is not None and (v > high or (high_open and v == high)):
        raise bad_value(argument, value, expected, where=where)
    return v


def activation(value: Any, where: str) -> Callable[..., Any]:
    try:
        return _activations.get(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


def initializer(value: Any, argument: str, where: str) -> _initializers.Initializer:
    if value is None:
        raise bad_type(argument, value, "an initializer name such as 'zeros' or an Initializer",
                       where=where)  # fmt: skip
    try:
        return _initializers.get(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {argument}: {exc}") from None


def initializers(where: str, *, name: Any, dtype: Any, input_shape: Any, trainable: Any,
                 **values: Any) -> dict[str, _initializers.Initializer]:  # fmt: skip
    """The initializer arguments ``values`` resolved, after :class:`Layer`'s own arguments are
    checked: a named random initializer draws its seed from dualnet's generator when resolved,
    so a layer checks every other argument first (its own, then these), and a construction that
    fails leaves the generator untouched."""
    check_layer_arguments(where, name=name, dtype=dtype, input_shape=input_shape,
                          trainable=trainable)  # fmt: skip
    return {argument: initializer(value, argument, where) for argument, value in values.items()}


def axis(value: Any, argument: str, where: str, *, several: bool = True) -> int | list[int]:
    """An int, or with ``several`` a non-empty list/tuple of distinct ints (a list, as
    ``get_config`` returns it); resolved against the input rank later (:func:`resolve_axes`)."""
    if is_int(value):
        return int(value)
    if not several:
        raise bad_type(argument, value, "an int", where=where)
    return list(axis_list(value, argument, where))


def axis_list(value: Any, argument: str, where: str) -> tuple[int, ...]:
    """An int or a non-empty list/tuple of distinct ints (axes, batch axis 0 included)."""
    items = [value] if is_int(value) else value
    if not isinstance(items, list | tuple) or not items or not all(is_int(a) for a in items):
        raise bad_type(argument, value, "an int or a non-empty list of ints", where=where)
    if len(set(items)) != len(items):
        raise bad_value(argument, value, "distinct axes", where=where)
    return tuple(int(a) for a in items)


def resolve_axes(axes: Sequence[int], rank: int, argument: str, where: str, *,
                 allow_batch: bool = False) -> tuple[int, ...]:  # fmt: skip
    """Negative axes counted from the end; each must lie in ``[1, rank)`` (``[0, rank)`` with
    ``allow_batch``) and appear once."""
    low = 0 if allow_batch else 1
    out = []
    for a in axes:
        r = a + rank if a < 0 else a
        if not low <= r < rank:
            allowed = (f"an axis in [{-rank}, {rank})" if allow_batch
                       else f"an axis in [1, {rank}) or [{-rank + 1}, -1] (the batch axis 0 "
                       "excluded)")  # fmt: skip
            raise bad_value(argument, a, f"{allowed} for inputs of rank {rank}", where=where)
        out.append(r)
    if len(set(out)) != len(out):
        raise bad_value(argument, tuple(axes), "distinct axes", where=where)
    return tuple(out)
