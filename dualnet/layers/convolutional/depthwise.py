"""Depthwise and separable convolutions: DepthwiseConv2D, SeparableConv2D (see the package
docstring)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from dualnet import initializers as _initializers
from dualnet.layers import _args
from dualnet.layers.base import WeightSpec
from dualnet.layers.convolutional.base_conv import BaseConv

# --------------------------------------------------------------------------------------------
# Depthwise and separable convolutions


class DepthwiseConv2D(BaseConv):
    """Depthwise 2-D convolution: each input channel convolved with its own ``depth_multiplier``
    filters,
    ``y[i, j, c·m + q] = activation(Σ_{a,b} x[i·s + a·d - top, j·s + b·d - left, c] ·
    kernel[a, b, c, q] + bias[c·m + q])``.

    ====================  =================================  ==================================
    torch                 Keras                              dualnet
    ====================  =================================  ==================================
    ``Conv2d(C, C·m,      ``DepthwiseConv2D``, variable      Keras's (output channel ``c·m + q``
    groups=C)``, weight   ``kernel (kh, kw, C, m)``          in all three)
    ``(C·m, 1, kh, kw)``
    fan_in ``kh·kw``      glorot fans ``(C·kh·kw,            Keras's by default; ``"standard"``
                          m·kh·kw)``                         is torch's U(±1/√(kh·kw))
    ====================  =================================  ==================================

    Args:
        kernel_size, strides, dilation_rate: an int or a 2-tuple (dilation > 1 only with
            stride 1).
        padding: ``"valid"``, ``"same"`` (TensorFlow's rule), or explicit zeros as torch's
            ``padding`` (an int, a 2-tuple or ``((top, bottom), (left, right))``).
        depth_multiplier: filters per input channel ``m`` (a positive int).
        data_format: ``"channels_last"`` (``None``, the default) or ``"channels_first"``.
        activation, use_bias: as :class:`Conv2D`.
        depthwise_initializer: default ``"glorot_uniform"``; ``"standard"`` for torch's.
        bias_initializer: default ``"zeros"``; ``"standard"`` for torch's.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, C)``; output ``(batch, new_height, new_width, C·m)``.
        Weights: ``kernel (kh, kw, C, m)``, ``bias (C·m,)``.
    """

    def __init__(
        self,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str | int | Sequence[Any] = "valid",
        depth_multiplier: int = 1,
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = type(self).__name__
        self._configure(filters=None, kernel_size=kernel_size, strides=strides, padding=padding,
                        data_format=data_format, dilation_rate=dilation_rate)  # fmt: skip
        self._depth_multiplier = _args.positive_int(depth_multiplier, "depth_multiplier", where)
        self._finish(activation=activation, use_bias=use_bias, name=name, dtype=dtype,
                     input_shape=input_shape, trainable=trainable,
                     depthwise_initializer=depthwise_initializer,
                     bias_initializer=bias_initializer)  # fmt: skip

    depth_multiplier = property(lambda self: self._depth_multiplier)
    depthwise_initializer = property(lambda self: self._initializers["depthwise_initializer"])

    @property
    def out_channels(self) -> int | None:
        c = self.in_channels
        return None if c is None else c * self._depth_multiplier

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        shape = super().compute_output_shape(input_shape)
        c = tuple(input_shape)[self.channel_axis]
        out = list(shape)
        out[self.channel_axis] = None if c is None else c * self._depth_multiplier
        return tuple(out)

    def declare_weights(self) -> list[WeightSpec]:
        c, m = self.in_channels, self._depth_multiplier
        shape = (*self._kernel_size, c, m)
        # torch's fans of its (C·m, 1, kh, kw) weight (one input channel per filter), used by
        # "standard" only; Keras's glorot keeps compute_fans of (kh, kw, C, m).
        taps = math.prod(self._kernel_size)
        fans = (taps, c * m * taps)
        kernel = WeightSpec(name="kernel", shape=shape, initializer=self.depthwise_initializer,
                            fans=fans)  # fmt: skip
        return self._with_bias([kernel], c * m, fans)

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "depth_multiplier": self._depth_multiplier}


class SeparableConv2D(BaseConv):
    """Depthwise-separable 2-D convolution: a :class:`DepthwiseConv2D` without bias (``m``
    filters per channel) followed by a 1×1 convolution to ``filters`` channels,
    ``y = activation(pointwise(depthwise(x)) + bias)``.

    ====================  =================================  ==================================
    torch                 Keras                              dualnet
    ====================  =================================  ==================================
    two modules:          ``depthwise_kernel (kh, kw, C,     Keras's names and layouts
    ``Conv2d(C, C·m,      m)``, ``pointwise_kernel (1, 1,
    groups=C,             C·m, filters)``, ``bias``
    bias=False)``,
    ``Conv2d(C·m,
    filters, 1)``
    init U(±1/√fan_in)    glorot_uniform (both kernels),     Keras's; ``"standard"`` gives
    per module            zeros                              torch's per kernel; the bias uses
                                                             the pointwise fans (C·m)
    ====================  =================================  ==================================

    Args:
        filters: output channels.
        kernel_size, strides, dilation_rate: of the depthwise step (an int or a 2-tuple;
            dilation > 1 only with stride 1).
        padding: ``"valid"``, ``"same"`` (TensorFlow's rule) or explicit amounts as
            :class:`DepthwiseConv2D`'s, depthwise step.
        data_format: ``"channels_last"`` (``None``, the default) or ``"channels_first"``.
        depth_multiplier: depthwise filters per input channel ``m``.
        activation, use_bias: as :class:`Conv2D`.
        depthwise_initializer, pointwise_initializer: default ``"glorot_uniform"``.
        bias_initializer: default ``"zeros"``.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, C)``; output ``(batch, new_height, new_width, filters)``.
        Weights: ``depthwise_kernel (kh, kw, C, m)``, ``pointwise_kernel (1, 1, C·m,
        filters)``, ``bias (filters,)``.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str | int | Sequence[Any] = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        depth_multiplier: int = 1,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        depthwise_initializer: Any = "glorot_uniform",
        pointwise_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = type(self).__name__
        self._configure(filters=filters, kernel_size=kernel_size, strides=strides,
                        padding=padding, data_format=data_format,
                        dilation_rate=dilation_rate)  # fmt: skip
        self._depth_multiplier = _args.positive_int(depth_multiplier, "depth_multiplier", where)
        self._finish(activation=activation, use_bias=use_bias, name=name, dtype=dtype,
                     input_shape=input_shape, trainable=trainable,
                     depthwise_initializer=depthwise_initializer,
                     pointwise_initializer=pointwise_initializer,
                     bias_initializer=bias_initializer)  # fmt: skip

    filters = property(lambda self: self._filters)
    depth_multiplier = property(lambda self: self._depth_multiplier)
    depthwise_initializer = property(lambda self: self._initializers["depthwise_initializer"])
    pointwise_initializer = property(lambda self: self._initializers["pointwise_initializer"])

    def declare_weights(self) -> list[WeightSpec]:
        c, m = self.in_channels, self._depth_multiplier
        taps = math.prod(self._kernel_size)
        depthwise_fans = (taps, c * m * taps)  # torch's depthwise Conv2d (see DepthwiseConv2D)
        pointwise_shape = (1, 1, c * m, self._filters)
        pointwise_fans = _initializers.compute_fans(pointwise_shape)  # (C·m, filters), as torch
        specs = [
            WeightSpec(name="depthwise_kernel", shape=(*self._kernel_size, c, m),
                       initializer=self.depthwise_initializer, fans=depthwise_fans),
            WeightSpec(name="pointwise_kernel", shape=pointwise_shape,
                       initializer=self.pointwise_initializer, fans=pointwise_fans),
        ]  # fmt: skip
        # torch's bias belongs to the pointwise Conv2d: its fans.
        return self._with_bias(specs, self._filters, pointwise_fans)

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "depth_multiplier": self._depth_multiplier}
