"""UnitNormalization (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet.layers.normalization.base_normalization import BaseNormalization

# Keras's UnitNormalization: x·min(rsqrt(Σx²), 1/UNIT_EPSILON), i.e. the norm floored at 1e-12.
UNIT_EPSILON = 1e-12


class UnitNormalization(BaseNormalization):
    """Scales each sample to unit L2 norm over ``axis``: ``y = x · min(1/‖x‖, 1e12)`` (Keras's
    formula), the norm taken over the axes in ``axis``. No weights.

    It is torch's ``F.normalize(x, dim=axis, eps=1e-12)`` = ``x / max(‖x‖, 1e-12)``: the same
    function. A vector of norm below 1e-12 is multiplied by 1e12; a zero vector gives zeros, and
    the gradient there is the derivative of that branch, ``1e12·g`` (finite on both backends).
    Half precision inputs are normalised in float32 and rounded once (Keras sums the squares in
    float16, which overflows for norms above ~256).

    Args:
        axis: an int or a list of ints (not the batch axis).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        any input of rank >= 2; the output has the input's shape.
    """

    # Keras's flag: an incoming mask passes through.
    supports_masking: ClassVar[bool] = True

    _sized_axes = False

    def __init__(
        self,
        axis: int | Sequence[int] = -1,
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        self._configure_axis(axis)
        self._finish(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    epsilon = UNIT_EPSILON
