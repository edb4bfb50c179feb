"""Activation layers: ReLU, LeakyReLU, PReLU, ELU, Softmax (Keras's ``layers/activations``
group). The functions themselves are :mod:`dualnet.activations`; these layers apply them with
Keras's layer arguments and defaults (PReLU adds a trainable ``alpha``).

Where the frameworks differ
---------------------------
===============  ==========================  ========================  ========================
behaviour        torch                       Keras 3                   dualnet
===============  ==========================  ========================  ========================
LeakyReLU slope  ``nn.LeakyReLU``: 0.01      layer: 0.3 (the function  0.3 (Keras's layer);
                                             ``leaky_relu``: 0.2)      ``negative_slope=0.01``
                                                                       for torch's
PReLU alpha      ``nn.PReLU``: one value,    one per input element     Keras's shape and init;
                 or one per channel (dim     (batch excluded), init    ``shared_axes`` for one
                 1), init 0.25               0; ``shared_axes`` gives  per channel, any init
                                             size 1                    (``alpha_initializer``)
PReLU dy/dx, 0   alpha                       0                         alpha (left side, as
                                                                       leaky_relu)
ReLU options     separate modules (ReLU6,    ``max_value``,            Keras's arguments
                 Hardtanh, Threshold)        ``negative_slope``,
                                             ``threshold``
Softmax axis     ``nn.Softmax()`` without    -1                        -1 (Keras); pass
                 ``dim``: 0 for 1-D and 3-D                            ``axis`` for another
                 inputs, 1 otherwise
===============  ==========================  ========================  ========================

Precision: float16/bfloat16 inputs are computed in float32 and rounded once, as every dualnet
activation is (:mod:`dualnet.activations`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet import initializers as _initializers
from dualnet.errors import bad_value
from dualnet.layers import _args
from dualnet.layers.base import Layer, WeightSpec, format_shape

__all__ = ["ELU", "LeakyReLU", "PReLU", "ReLU", "Softmax"]


class _Elementwise(Layer):
    """An activation of any input of rank >= 1; the output has the input's shape."""

    # Keras's flag (ReLU, LeakyReLU, ELU, Softmax): an incoming mask passes through.
    supports_masking: ClassVar[bool] = True

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        if len(tuple(shape)) < 1:
            raise ValueError(f"{self._where()} expects inputs of rank >= 1, got a scalar.")


class ReLU(_Elementwise):
    """Rectified linear unit with Keras's options (``θ`` = threshold, ``m`` = max_value,
    ``s`` = negative_slope)::

        y = s·(x - θ)       if x <= θ
        y = min(x, m)       if x > θ       (no upper bound when m is None)

    The defaults give ``max(x, 0)``. With ``θ > 0`` the function jumps at ``θ`` (from 0 to θ),
    as Keras's code computes it (``x == θ`` gives 0; Keras's docstring would give ``θ``).
    Derivative: ``s`` for ``x <= θ`` (so 0 at ``x = 0`` for plain relu and ``s`` for the leaky
    form, as :func:`dualnet.activations.relu` and ``leaky_relu``), 1 between, 0 for
    ``x >= m`` (as ``relu6`` at 6).

    Keras's own layer in a float64 model rounds ``max_value`` (when clipping) and a slope used
    without threshold or max_value to float32 (relative error up to ~3e-8); dualnet computes
    with constants of the layer's dtype on both backends.

    torch has no single module for this: ``nn.ReLU`` (defaults), ``nn.LeakyReLU(s)``
    (``negative_slope=s``), ``nn.ReLU6``/``nn.Hardtanh(0, m)`` (``max_value=m``);
    ``nn.Threshold(θ, 0)`` is ``threshold=θ``.

    Args:
        max_value: None (unbounded) or a number >= 0.
        negative_slope: slope below the threshold, a number >= 0 (default 0).
        threshold: a number >= 0 (default 0).
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        any rank >= 1, unchanged.
    """

    def __init__(self, max_value: float | None = None, negative_slope: float = 0.0,
                 threshold: float = 0.0, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._max_value = (
            None if max_value is None else _args.real(max_value, "max_value", where, low=0.0)
        )
        self._negative_slope = _args.real(negative_slope, "negative_slope", where, low=0.0)
        self._threshold = _args.real(threshold, "threshold", where, low=0.0)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    max_value = property(lambda self: self._max_value)
    negative_slope = property(lambda self: self._negative_slope)
    threshold = property(lambda self: self._threshold)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_value": self.max_value,
                "negative_slope": self.negative_slope, "threshold": self.threshold}  # fmt: skip


class LeakyReLU(_Elementwise):
    """``y = x if x > 0 else negative_slope·x``; derivative ``negative_slope`` at 0.

    Default slope 0.3, Keras's *layer* default: torch's ``nn.LeakyReLU`` uses 0.01 and the
    function :func:`dualnet.activations.leaky_relu` (Keras's) 0.2. Pass
    ``negative_slope=0.01`` for torch's.

    Args:
        negative_slope: a number >= 0 (Keras's range; default 0.3).
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        any rank >= 1, unchanged.
    """

    def __init__(self, negative_slope: float = 0.3, *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._negative_slope = _args.real(negative_slope, "negative_slope", type(self).__name__,
                                          low=0.0)  # fmt: skip
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    negative_slope = property(lambda self: self._negative_slope)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "negative_slope": self.negative_slope}


class PReLU(Layer):
    """Parametric ReLU, ``y = x if x > 0 else alpha·x`` with a trainable ``alpha``.

    ``alpha`` has the input's shape without the batch (Keras), with size 1 along each axis in
    ``shared_axes``, and broadcasts over those. Derivatives: ``∂y/∂x = 1`` for ``x > 0`` and
    ``alpha`` for ``x <= 0`` (torch's rule; Keras computes ``relu(x) - alpha·relu(-x)``, whose
    derivative at exactly 0 is 0); ``∂y/∂alpha = min(x, 0)``, summed over shared axes.

    torch's ``nn.PReLU()`` has one alpha for everything, and ``nn.PReLU(C)`` one per channel of
    a channels-first input, both initialised to 0.25; Keras and dualnet initialise to 0. For
    torch's per-channel form on channels-last images ``(batch, H, W, C)`` pass
    ``shared_axes=[1, 2]`` and ``alpha_initializer=dn.initializers.Constant(0.25)``.

    Args:
        alpha_initializer: default ``"zeros"`` (Keras).
        shared_axes: None, or an axis or list of axes (1 = the first after the batch, as
            Keras counts them) along which one alpha is shared.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        rank >= 2 ``(batch, ...)``, unchanged; the sizes of the axes that are not shared must
        be known when the layer is built, and stay fixed afterwards.

    Weights:
        ``alpha``: the input's shape without the batch, 1 on the shared axes.
    """

    # Keras's flag: an incoming mask passes through.
    supports_masking: ClassVar[bool] = True

    def __init__(self, alpha_initializer: Any = "zeros", shared_axes: Any = None, *,
                 name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        if shared_axes is None:
            self._shared_axes = None
        else:
            axes = _args.axis_list(shared_axes, "shared_axes", where)
            if any(a < 1 for a in axes):
                raise bad_value("shared_axes", shared_axes, "axes >= 1 (axis 0 is the batch; "
                                "Keras counts from there, negative axes are not accepted)",
                                where=where)  # fmt: skip
            self._shared_axes = list(axes)
        # Every check before the initializer may draw a seed from the global generator.
        self._alpha_initializer = _args.initializers(
            where, name=name, dtype=dtype, input_shape=input_shape, trainable=trainable,
            alpha_initializer=alpha_initializer,
        )["alpha_initializer"]  # fmt: skip
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    alpha_initializer = property(lambda self: self._alpha_initializer)
    shared_axes = property(lambda self: None if self._shared_axes is None
                           else list(self._shared_axes))  # fmt: skip

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"{self._where()} expects inputs of rank >= 2 (batch, ...), got shape "
                f"{format_shape(shape)}."
            )
        shared = set(self._shared_axes or ())
        too_big = sorted(a for a in shared if a >= len(shape))
        if too_big:
            raise ValueError(
                f"{self._where()}: shared_axes={self._shared_axes} has axis {too_big[0]}; "
                f"expected axes in 1..{len(shape) - 1} for inputs of shape {format_shape(shape)} "
                "(batch excluded)."
            )
        unknown = [a for a in range(1, len(shape)) if a not in shared and shape[a] is None]
        if unknown:
            raise ValueError(
                f"{self._where()} needs the size of axis {unknown[0]} (alpha has one value per "
                f"element along it), got shape {format_shape(shape)}; share the axis with "
                f"shared_axes=[{unknown[0]}] or give its size."
            )
        if self.built:
            built = self._build_shape
            if len(shape) != len(built) or any(
                shape[a] != built[a] for a in range(1, len(shape)) if a not in shared
            ):
                raise ValueError(
                    f"{self._where()} was built for inputs of shape {format_shape(built)} "
                    f"(alpha {format_shape(self.weight_shapes()[0])}); got shape "
                    f"{format_shape(shape)}."
                )

    def declare_weights(self) -> list[WeightSpec]:
        shared = set(self._shared_axes or ())
        shape = tuple(1 if a in shared else d
                      for a, d in enumerate(self._build_shape) if a > 0)  # fmt: skip
        return [WeightSpec(name="alpha", shape=shape, initializer=self.alpha_initializer)]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(),
                "alpha_initializer": _initializers.serialize(self.alpha_initializer),
                "shared_axes": self.shared_axes}  # fmt: skip


class ELU(_Elementwise):
    """Exponential linear unit, ``y = x if x > 0 else alpha·(eˣ - 1)``; derivative ``alpha``
    at 0 (see :func:`dualnet.activations.elu`). Same default (alpha 1) in torch and Keras.

    Args:
        alpha: a finite number (default 1.0).
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        any rank >= 1, unchanged.
    """

    def __init__(self, alpha: float = 1.0, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._alpha = _args.real(alpha, "alpha", type(self).__name__)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    alpha = property(lambda self: self._alpha)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "alpha": self.alpha}


class Softmax(_Elementwise):
    """``y = e^(x - max x) / Σ e^(x - max x)`` over ``axis``; with several axes, over all of
    them at once (``exp(x - logsumexp(x, axis))``, as Keras).

    ``axis`` defaults to -1, as Keras. torch's ``nn.Softmax()`` without ``dim`` picks dim 0 for
    1-D and 3-D inputs (for ``(batch, steps, classes)`` that normalises over the *batch*) and
    dim 1 otherwise; pass the axis explicitly to reproduce a torch model. Axis 0, the batch, is
    allowed as in Keras (each output then depends on the whole batch).

    With a mask (``layer(x, mask=m)``, or one propagated from an ``Embedding(mask_zero=True)``
    or ``Masking``; Note [Masks] in :mod:`dualnet.layers.base`) the softmax runs over the valid
    entries only and masked entries are 0; a slice without any valid entry is all 0 (Keras's
    rule; Keras fills masked entries with -1e9 first, dualnet excludes them exactly). The mask
    covers the input's leading axes and is broadcast over the others, so a (batch, steps) mask
    on (batch, steps, classes) zeroes the padded steps; Keras broadcasts a mask from the
    *right* and raises there (a mask of the input's full shape means the same in both).

    Args:
        axis: an int or a list of ints (batch axis counted as 0, negative from the end).
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        any rank >= 1, unchanged.
    """

    def __init__(self, axis: int | Sequence[int] = -1, *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._axis = _args.axis(axis, "axis", type(self).__name__)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    @property
    def axis(self) -> int | list[int]:
        return self._axis if isinstance(self._axis, int) else list(self._axis)

    def resolve_axes(self, rank: int) -> tuple[int, ...]:
        """The axes for inputs of ``rank`` (batch included): non-negative, in the order given
        (the normalization layers' method of the same name sorts them)."""
        axes = [self._axis] if isinstance(self._axis, int) else self._axis
        return _args.resolve_axes(axes, rank, "axis", self._where(), allow_batch=True)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        super().check_input_shape(shape)
        self.resolve_axes(len(tuple(shape)))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}
