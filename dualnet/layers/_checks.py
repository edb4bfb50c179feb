"""Validation shared by every layer and model: names, dtypes, shapes, weight lists, and the
arguments every layer takes. Errors name the argument, the value and what was expected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from dualnet.dtypes import FLOAT_DTYPES, FLOATX, numpy_dtype, standardize
from dualnet.errors import bad_type, bad_value

if TYPE_CHECKING:
    from dualnet.layers.base import WeightInfo


def check_name(name: Any, *, where: str) -> str:
    """A layer or model name: a non-empty str without ``/`` (Keras's rule) or ``.`` (torch
    module names cannot contain dots)."""
    if not isinstance(name, str):
        raise bad_type("name", name, "a str", where=where)
    if not name or "/" in name or "." in name:
        raise bad_value("name", name, "a non-empty str without '/' or '.'", where=where)
    return name


def check_dtype(dtype: Any, *, where: str, allowed: tuple[str, ...] = FLOAT_DTYPES) -> str:
    """A layer's weight/compute dtype (an Input's data dtype, integers allowed there): None
    means Keras's floatx (float32)."""
    if dtype is None:
        return FLOATX
    try:
        return standardize(dtype, allowed=allowed)
    except TypeError:
        raise bad_value("dtype", dtype, f"one of {', '.join(allowed)}", where=where) from None


def check_shape(shape: Any, *, argument: str = "shape", where: str) -> tuple[int | None, ...]:
    """A shape without the batch dimension: a tuple/list of positive ints or None."""
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple | list):
        raise bad_type(argument, shape, "a tuple of positive ints (batch dimension excluded)",
                       where=where)  # fmt: skip
    out: list[int | None] = []
    for dim in shape:
        if dim is None:
            out.append(None)
        elif isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
            raise bad_value(argument, tuple(shape), "a tuple of positive ints or None "
                            "(batch dimension excluded)", where=where)  # fmt: skip
        else:
            out.append(int(dim))
    return tuple(out)


def format_shape(shape: Any) -> str:
    """``(None, 3)`` as Keras prints it; a list of shapes for multi-input layers; ``?`` when
    unknown."""
    if shape is None:
        return "?"
    if isinstance(shape, list):
        return "[" + ", ".join(format_shape(s) for s in shape) + "]"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def is_castable(array: np.ndarray) -> bool:
    """Real numbers (floats, bfloat16, ints) can be cast to a float weight; bools, complex
    numbers, strings and objects cannot."""
    return array.dtype.name in FLOAT_DTYPES or array.dtype.kind in "iuf"


def validate_weight_list(
    infos: Sequence[WeightInfo], weights: Sequence[Any], *, where: str
) -> list[np.ndarray]:
    """Check count, shapes and castability of every array, then cast them (nothing assigned).

    Returns the arrays cast to each weight's dtype, in order.
    """
    if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
        raise bad_type("weights", weights, "a list of numpy arrays", where=where)
    if len(weights) != len(infos):
        names = ", ".join(w.path for w in infos) or "none"
        raise ValueError(f"{where}: expected {len(infos)} arrays ({names}), got {len(weights)}.")
    out = []
    for info, value in zip(infos, weights, strict=True):
        array = np.asarray(value)
        if tuple(array.shape) != info.shape:
            raise ValueError(
                f"{where}: weight {info.path!r} has shape {info.shape}, got an array of shape "
                f"{tuple(array.shape)}."
            )
        if not is_castable(array):
            raise TypeError(
                f"{where}: weight {info.path!r} is {info.dtype}; cannot take an array of dtype "
                f"{array.dtype} (expected real numbers)."
            )
        with np.errstate(over="ignore"):  # float64 -> float16 overflow to inf is a rounding
            out.append(np.array(array, dtype=numpy_dtype(info.dtype), copy=True))
    return out


def check_layer_arguments(where: str, *, name: Any, dtype: Any, input_shape: Any,
                          trainable: Any) -> None:  # fmt: skip
    """The arguments every layer takes, checked before a layer's initializers are made: an
    initializer without a seed draws one from dualnet's generator, so a construction that fails
    afterwards would have moved it."""
    check_dtype(dtype, where=where)
    if name is not None:
        check_name(name, where=where)
    if input_shape is not None:
        check_shape(input_shape, argument="input_shape", where=where)
    if not isinstance(trainable, bool):
        raise bad_type("trainable", trainable, "a bool", where=where)
