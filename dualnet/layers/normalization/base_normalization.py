"""What the normalization layers share (see the package docstring for the torch | Keras |
dualnet table): the ``axis`` argument resolved against the input rank, the shape checks, the
learned γ and β, the initializers and the config."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet import initializers as _initializers
from dualnet.layers import _args
from dualnet.layers.base import Layer, WeightSpec, format_shape


class BaseNormalization(Layer):
    """The axes named by ``axis`` (the normalised axes, or BatchNormalization's and
    GroupNormalization's channel axis), resolved against the input rank (negative axes counted
    from the end, never the batch axis) and sorted; the shape checks; the config.

    Subclasses call :meth:`_configure_axis` first and :meth:`_finish` last in ``__init__`` and
    add their own arguments to :meth:`_config`.
    """

    # The weights are shaped by the sizes of these axes, which must then be known.
    _sized_axes: ClassVar[bool] = True
    # ``axis`` may list several axes; False where it is the one channel axis (BN, GN).
    _several_axes: ClassVar[bool] = True

    # -- construction ---------------------------------------------------------------------

    def _configure_axis(self, axis: Any) -> None:
        """``axis``: an int, or (where several are allowed) a list kept as given for the
        config; resolved when the layer sees an input rank."""
        where = type(self).__name__
        self._axis = _args.axis(axis, "axis", where, several=self._several_axes)

    def _finish(self, *, name: Any, dtype: Any, input_shape: Any, trainable: Any,
                **initializers: Any) -> None:  # fmt: skip
        """:class:`Layer`'s arguments checked, then the initializers resolved (they may draw
        seeds: :func:`dualnet.layers._args.initializers`), then :class:`Layer`'s setup."""
        self._initializers = _args.initializers(type(self).__name__, name=name, dtype=dtype,
                                                input_shape=input_shape, trainable=trainable,
                                                **initializers)  # fmt: skip
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    # -- axes and shapes ------------------------------------------------------------------

    axis = property(lambda self: self._axis)

    def resolve_axes(self, rank: int) -> tuple[int, ...]:
        """The axes for inputs of ``rank`` (batch included): non-negative, sorted."""
        axes = (self._axis,) if isinstance(self._axis, int) else tuple(self._axis)
        return tuple(sorted(_args.resolve_axes(axes, rank, "axis", self._where())))

    @property
    def axes(self) -> tuple[int, ...]:
        """The resolved axes of the built layer (empty before it is built)."""
        return () if self._build_shape is None else self.resolve_axes(len(self._build_shape))

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"{self._where()} expects inputs of rank >= 2 (batch first), got shape "
                f"{format_shape(shape)}."
            )
        axes = self.resolve_axes(len(shape))
        if self._sized_axes:
            unknown = [a for a in axes if shape[a] is None]
            if unknown:
                raise ValueError(
                    f"{self._where()} needs the size of axis {unknown[0]} (axis={self._axis!r}) "
                    f"to be known, got shape {format_shape(shape)}."
                )
        if self.built:
            built = self._build_shape
            if len(shape) != len(built):
                raise ValueError(
                    f"{self._where()} was built for inputs of rank {len(built)} (shape "
                    f"{format_shape(built)}); got shape {format_shape(shape)}."
                )
            self._check_same_as_built(shape, axes)

    def _weight_shape(self) -> tuple[int, ...]:
        """The sizes of the resolved axes, in increasing axis order (the built layer's)."""
        return tuple(self._build_shape[a] for a in self.axes)

    # -- config ---------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        return {"axis": self._axis}

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), **self._config()}
        for argument, init in self._initializers.items():
            config[argument] = _initializers.serialize(init)
        return config


def epsilon_argument(value: Any, where: str) -> float:
    """``epsilon``, added to a variance or a mean square: a finite number > 0."""
    return _args.real(value, "epsilon", where, low=0.0, low_open=True)


class AffineNormalization(BaseNormalization):
    """BatchNormalization, LayerNormalization, GroupNormalization: ``y = γ·(x - μ)/√(σ² + ε) +
    β`` with ``epsilon``, a learned γ (``scale``) and β (``center``) shaped by the resolved
    axes. Subclasses call :meth:`_configure_affine` and pass ``beta_initializer`` and
    ``gamma_initializer`` to :meth:`_finish`."""

    def _configure_affine(self, epsilon: Any, center: Any, scale: Any) -> None:
        where = type(self).__name__
        self._epsilon = epsilon_argument(epsilon, where)
        self._center = _args.boolean(center, "center", where)
        self._scale = _args.boolean(scale, "scale", where)

    epsilon = property(lambda self: self._epsilon)
    center = property(lambda self: self._center)
    scale = property(lambda self: self._scale)
    beta_initializer = property(lambda self: self._initializers["beta_initializer"])
    gamma_initializer = property(lambda self: self._initializers["gamma_initializer"])

    def declare_weights(self) -> list[WeightSpec]:
        """``gamma`` (if ``scale``), then ``beta`` (if ``center``): Keras's order."""
        shape = self._weight_shape()
        specs = []
        if self.scale:
            specs.append(WeightSpec(name="gamma", shape=shape, initializer=self.gamma_initializer))
        if self.center:
            specs.append(WeightSpec(name="beta", shape=shape, initializer=self.beta_initializer))
        return specs

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "epsilon": self.epsilon, "center": self.center,
                "scale": self.scale}  # fmt: skip


class ChannelNormalization(AffineNormalization):
    """BatchNormalization and GroupNormalization: ``axis`` is one channel axis (an int), and
    γ, β have one value per channel."""

    _several_axes = False

    @property
    def channel_axis(self) -> int | None:
        """The channel axis of the built layer, non-negative (batch axis 0), as a convolution's
        ``channel_axis``; None before the layer is built."""
        axes = self.axes
        return axes[0] if axes else None
