"""Preprocessing layers (Keras's ``layers/preprocessing`` group): Rescaling.

Keras groups the layers that prepare raw data here; dualnet has the one that is plain tensor
math on the model's path, ``Rescaling`` (``y = x·scale + offset``), which Keras models of images
start with (``Rescaling(1/255)``, ``Rescaling(1/127.5, offset=-1)``). torch has no module for it:
a torch model writes the arithmetic (``x * c``, ``x - c``, ``x / c``), which ``from_torch``
maps onto this layer (``dualnet/interop/torch_functions.py``).

==================  ===========================  ==========================  =================
                    torch                        Keras ``Rescaling``         dualnet
==================  ===========================  ==========================  =================
formula             ``x * s + o`` written out    ``cast(x)·s + o``, scale    Keras's, always
                                                 and offset cast to the      (the add of a
                                                 compute dtype; the add      zero offset too)
                                                 happens even for ``o = 0``
integer input       ``x * 0.5`` promotes to      cast to the compute dtype   Keras's
                    the default float dtype      (float32) first
float64             ``s``, ``o`` exact (double)  ``s``, ``o`` rounded to     exact in float64
                                                 float32 (``tf.cast`` of a
                                                 Python float)
float16/bfloat16    CPU ``opmath``: float32,     float16 math: ``s`` and     float32 math,
                    rounded once per op          ``o`` rounded to half, two  rounded once
                                                 roundings in half
per-channel scale   broadcasting rules           a list broadcasts on the    the last axis
                                                 last axis (on axis -3 with  (Keras's default
                                                 ``image_data_format() ==    channels_last)
                                                 "channels_first"``, the
                                                 scale only)
sign of zero        ``x * s`` keeps ``-0.0``     ``x·s + 0.0`` gives         Keras's; pass
                                                 ``+0.0`` for ``x·s = -0``   ``offset=-0.0``
                                                                             for torch's
==================  ===========================  ==========================  =================

Adding ``-0.0`` leaves every value, ``-0.0`` included, exactly as it is (IEEE 754:
``y + (-0) = y``), so ``Rescaling(s, offset=-0.0)`` is bit for bit torch's ``x * s``; with the
default ``offset=0.0`` a ``-0.0`` product becomes ``+0.0`` (the same value, compared equal, but
``1/y`` and ``copysign`` see the sign).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from dualnet.errors import bad_type, bad_value
from dualnet.layers.base import Layer, format_shape

__all__ = ["Rescaling"]

Operand = float | tuple[float, ...]

_EXPECTED = "a finite number or a non-empty 1-D list of finite numbers (one per channel)"


def _operand(value: Any, argument: str, where: str) -> Operand:
    """``scale``/``offset`` as a Python float or a tuple of floats (per channel, last axis)."""

    def number(v: Any) -> float | None:
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer |
                                                             np.floating):  # fmt: skip
            return None
        return float(v)

    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    single = number(value)
    if single is not None:
        if not math.isfinite(single):
            raise bad_value(argument, value, _EXPECTED, where=where)
        return single
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise bad_value(argument, value, f"{_EXPECTED}; got a {value.ndim}-D array",
                            where=where)  # fmt: skip
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise bad_type(argument, value, _EXPECTED, where=where)
    items = [number(v) for v in value]
    if not items or any(v is None or not math.isfinite(v) for v in items):
        raise bad_value(argument, value, _EXPECTED, where=where)
    return tuple(items)  # type: ignore[arg-type]


def _length(operand: Operand) -> int | None:
    return len(operand) if isinstance(operand, tuple) else None


class Rescaling(Layer):
    """Rescales every value: ``y = x·scale + offset`` (Keras's ``Rescaling``).

    Computed as Keras 3 computes it (``keras/src/layers/preprocessing/rescaling.py``): the input
    cast to the layer's dtype (integers included: ``uint8`` pixels become floats), ``scale`` and
    ``offset`` cast to it, one multiplication and one addition, each rounded in that dtype; the
    addition is made even when ``offset`` is 0 (so ``-0.0·s + 0.0 = +0.0``; ``offset=-0.0``
    keeps every bit of ``x·s``, see the module's table). float16/bfloat16 layers compute the
    same two operations in float32 and round the result once to half precision (dualnet's rule
    for half precision; Keras computes them in half, with ``scale`` and ``offset`` rounded to
    half first, so its float16 result may differ by an ulp or two of the output). In float64
    ``scale`` and ``offset`` are exact (Keras's own layer rounds them to float32 first).

    ``scale`` and ``offset`` are numbers, or 1-D lists (one value per channel) broadcast along
    the last axis; a list of one value broadcasts everywhere. No weights, no state: the layer is
    the same function in training and inference; the gradient with respect to ``x`` is
    ``scale`` (per channel where it is a list).

    Args:
        scale: a finite number or a 1-D list of them.
        offset: a finite number or a 1-D list of them; default ``0.0``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        any input ``(batch, ...)``; with a per-channel ``scale`` or ``offset`` of length ``C > 1``
        the last axis must have ``C`` entries. The output has the input's shape.
    """

    # Keras's flag: an incoming mask passes through unchanged.
    supports_masking: ClassVar[bool] = True

    def __init__(self, scale: float | Sequence[float], offset: float | Sequence[float] = 0.0, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._scale = _operand(scale, "scale", where)
        self._offset = _operand(offset, "offset", where)
        lengths = {_length(self._scale), _length(self._offset)} - {None, 1}
        if len(lengths) > 1:
            raise bad_value("offset", offset, f"a number, one entry, or {_length(self._scale)} "
                            "entries like scale (per-channel lists share one length)",
                            where=where)  # fmt: skip
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    scale = property(lambda self: self._scale)
    offset = property(lambda self: self._offset)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        if len(shape) < 1:
            raise ValueError(f"{self._where()} expects inputs of rank >= 1 (batch, ...), got a "
                             "scalar.")  # fmt: skip
        lengths = {k: n for k in ("scale", "offset")
                   if (n := _length(getattr(self, k))) not in (None, 1)}  # fmt: skip
        for argument, n in lengths.items():
            last = shape[-1] if len(shape) > 1 else None
            if len(shape) < 2 or (last is not None and last != n):
                raise ValueError(
                    f"{self._where()}: {argument} has {n} entries (one per channel, last axis), "
                    f"but the input shape {format_shape(shape)} has "
                    f"{'no channel axis' if len(shape) < 2 else f'{last} channels'}; expected "
                    f"inputs (batch, ..., {n})."
                )

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    def get_config(self) -> dict[str, Any]:
        def plain(v: Operand) -> float | list[float]:
            return list(v) if isinstance(v, tuple) else v

        return {**super().get_config(), "scale": plain(self.scale), "offset": plain(self.offset)}
