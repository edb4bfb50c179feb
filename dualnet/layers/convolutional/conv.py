"""Convolutions: Conv1D, Conv2D, Conv3D (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from dualnet import initializers as _initializers
from dualnet.errors import bad_value
from dualnet.layers import _args
from dualnet.layers.base import WeightSpec, format_shape
from dualnet.layers.convolutional.base_conv import BaseConv

# --------------------------------------------------------------------------------------------
# Convolutions


class Conv(BaseConv):
    """An ``N``-D convolution (cross-correlation, as both frameworks compute it); the public
    classes are :class:`Conv1D`, :class:`Conv2D`, :class:`Conv3D`.

    ``y[p, o] = activation(Σ_t Σ_c x[p·s + t·d - pad_before, c] · kernel[t, c', o] + bias[o])``
    with ``c = g·(C/groups) + c'`` for output channel ``o`` of group ``g = o // (filters/groups)``.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str | int | Sequence[Any] = "valid",
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
        groups: int = 1,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
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
        self._groups = _args.positive_int(groups, "groups", where)
        if self._filters % self._groups:
            raise bad_value("groups", groups, f"a divisor of filters={self._filters}",
                            where=where)  # fmt: skip
        self._finish(activation=activation, use_bias=use_bias, name=name, dtype=dtype,
                     input_shape=input_shape, trainable=trainable,
                     kernel_initializer=kernel_initializer,
                     bias_initializer=bias_initializer)  # fmt: skip

    filters = property(lambda self: self._filters)
    groups = property(lambda self: self._groups)
    kernel_initializer = property(lambda self: self._initializers["kernel_initializer"])

    def _check_channels(self, channels: int, shape: tuple[int | None, ...]) -> None:
        if channels % self._groups:
            raise ValueError(
                f"{self._where()}: groups={self._groups} expects input channels divisible by "
                f"it; got {channels} channels (input shape {format_shape(shape)})."
            )

    def declare_weights(self) -> list[WeightSpec]:
        shape = (*self._kernel_size, self.in_channels // self._groups, self._filters)
        # Keras's fans of its kernel layout equal torch's of (out, in/groups, *k): the "standard"
        # initializer gets U(±1/√(k·in/groups)), for the kernel and (through `fans`) the bias.
        fans = _initializers.compute_fans(shape)
        kernel = WeightSpec(name="kernel", shape=shape, initializer=self.kernel_initializer,
                            fans=fans)  # fmt: skip
        return self._with_bias([kernel], self._filters, fans)

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "groups": self._groups}


class Conv1D(Conv):
    """1-D convolution over ``(batch, steps, channels)``:
    ``y[t, o] = activation(Σ_{τ,c} x[t·s + τ·d - pad, c] · kernel[τ, c, o] + bias[o])``.

    See the module docstring for the torch | Keras | dualnet table and the padding rules.

    Args:
        filters: output channels (a positive int, divisible by ``groups``).
        kernel_size: an int or a 1-tuple.
        strides: an int or a 1-tuple (default 1).
        padding: ``"valid"`` (default), ``"same"`` (TensorFlow's rule, the odd pixel at the end)
            or ``"causal"`` (left pad ``d·(k-1)``: ``y[t]`` depends on ``x[≤ t]`` only); or
            explicit zeros as torch's ``padding``: an int ``p`` (``p`` before and after), a
            1-tuple, or ``((before, after),)``.
        data_format: ``"channels_last"`` (``None``, the default) or ``"channels_first"``.
        dilation_rate: an int or a 1-tuple; > 1 only with ``strides=1``.
        groups: split the input channels into this many groups, each convolved with its own
            ``filters/groups`` output channels (the input channels must be divisible by it).
        activation: a name, a callable or None (see :mod:`dualnet.activations`).
        use_bias: add a bias per output channel.
        kernel_initializer: default ``"glorot_uniform"`` (Keras); ``"standard"`` is torch's.
        bias_initializer: default ``"zeros"`` (Keras); ``"standard"`` is torch's U(±1/√fan_in).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, steps, channels)`` (``(batch, channels, steps)`` for channels_first);
        output ``(batch, new_steps, filters)``. Weights: ``kernel (k, channels/groups,
        filters)``, ``bias (filters,)``; torch's ``nn.Conv1d`` stores ``(filters,
        channels/groups, k)``.
    """

    rank: ClassVar[int] = 1
    _paddings: ClassVar[tuple[str, ...]] = ("valid", "same", "causal")


class Conv2D(Conv):
    """2-D convolution over ``(batch, height, width, channels)``:
    ``y[i, j, o] = activation(Σ_{a,b,c} x[i·sh + a·dh - top, j·sw + b·dw - left, c] ·
    kernel[a, b, c, o] + bias[o])`` (grouped: ``c`` runs over the group of ``o``).

    See the module docstring for the torch | Keras | dualnet table and the ``same`` padding rule
    (torch's symmetric integer padding shifts the result for even sizes with stride 2).

    Args:
        filters: output channels (a positive int, divisible by ``groups``).
        kernel_size: an int or a 2-tuple.
        strides: an int or a 2-tuple (default 1).
        padding: ``"valid"`` (default), ``"same"``, or explicit zeros as torch's ``padding``:
            an int (every side), a 2-tuple (symmetric per axis, torch's ``(ph, pw)``) or
            ``((top, bottom), (left, right))``.
        data_format: ``"channels_last"`` (``None``, the default) or ``"channels_first"``.
        dilation_rate: an int or a 2-tuple; > 1 only with ``strides=1``.
        groups: grouped convolution (the input channels must be divisible by it).
        activation, use_bias, kernel_initializer, bias_initializer: as :class:`Conv1D`.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, channels)`` (channels_first: ``(batch, channels, height,
        width)``); output ``(batch, new_height, new_width, filters)``. Weights: ``kernel (kh,
        kw, channels/groups, filters)`` (torch: ``(filters, channels/groups, kh, kw)``),
        ``bias (filters,)``.
    """

    rank: ClassVar[int] = 2


class Conv3D(Conv):
    """3-D convolution over ``(batch, depth, height, width, channels)``, the 3-D analogue of
    :class:`Conv2D` (same arguments with 3-tuples).

    Shape:
        input ``(batch, depth, height, width, channels)`` (channels_first: channels on axis 1);
        output ``(batch, new_depth, new_height, new_width, filters)``. Weights: ``kernel (kd,
        kh, kw, channels/groups, filters)`` (torch: ``(filters, channels/groups, kd, kh, kw)``),
        ``bias (filters,)``.
    """

    rank: ClassVar[int] = 3
