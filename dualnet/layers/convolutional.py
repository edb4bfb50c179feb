"""Convolutional layers (Keras's ``layers/convolutional`` group): Conv1D, Conv2D, Conv3D,
Conv1DTranspose, Conv2DTranspose, DepthwiseConv2D, SeparableConv2D.

    import dualnet as dn
    conv = dn.layers.Conv2D(8, 3, strides=2, padding="same")   # (B, 16, 16, 3) -> (B, 8, 8, 8)

Every layer here shares :class:`BaseConv`: argument validation, the padding rule, shapes and the
config. The arithmetic of the padding rules lives here too (:meth:`BaseConv.padding_amounts`,
:meth:`ConvTranspose.crop_axes`), so both backends apply the same numbers.

Where torch and Keras differ
----------------------------

=================  =======================  ========================  ========================
topic              torch                    Keras                     dualnet
=================  =======================  ========================  ========================
data layout        channels first           ``data_format=None``:     Keras's; channels_first
                   ``(B, C, ...)``          ``(B, ..., C)``           works on both backends
kernel layout      ``(out, in/groups, *k)`` ``(*k, in/groups, out)``  Keras's, whatever the
                                                                      ``data_format``
transposed kernel  ``(in, out, *k)``        ``(*k, out, in)``         Keras's
depthwise kernel   ``Conv2d(C, C·m,         ``(kh, kw, C, m)``,       Keras's; output channel
                   groups=C)``: ``(C·m, 1,  variable ``kernel``       ``c·m + j`` in all three
                   kh, kw)``
``same`` padding   refuses stride > 1; an   TensorFlow's rule: the    TensorFlow's rule on both
                   int padding is symmetric odd pixel at the end      backends
``causal`` (1-D)   no such option           left pad ``d·(k-1)``      Keras's
transposed         crops ``padding`` both   length ``n·s``, window    Keras's (below); no torch
``same``           sides; ``output_padding`` from TensorFlow's rule   ``(padding, output_
                   extends the end                                    padding)`` reproduces it
strides+dilation   both > 1 allowed         refused (TensorFlow       refused
                                            cannot run it)
default init       U(±1/√fan_in) for kernel ``glorot_uniform``        Keras's; ``"standard"``
                   *and* bias (kernel's     kernel, ``zeros`` bias    for kernel and bias is
                   fan_in)                                            torch's
=================  =======================  ========================  ========================

Padding rules (per spatial axis of size ``n``, kernel ``k``, stride ``s``, dilation ``d``, dilated
kernel ``k' = d·(k-1) + 1``):

* ``valid``: no padding, output ``floor((n - k')/s) + 1``; the input must be at least ``k'``.
* ``same``: output ``ceil(n/s)``; total padding ``max(0, (ceil(n/s) - 1)·s + k' - n)``, of which
  ``total // 2`` goes before and the rest (one more when the total is odd) **after**. For
  ``n = 8, k = 3, s = 2`` that is ``(0, 1)``; torch's ``Conv2d(padding=1)`` pads ``(1, 1)`` and
  gives a different (shifted) result with the same output shape.
* ``causal`` (Conv1D): ``d·(k-1)`` before, none after, then ``valid``: ``y[t]`` sees ``x[≤ t]``.

Transposed convolutions (the gradient of a convolution with respect to its input) first build the
*full* output of length ``(n-1)·s + k'`` (every input row scattered through the kernel), then keep
a window of it, as TensorFlow does:

* the output length is Keras's: ``valid``: ``n·s + max(k' - s, 0)``, or ``(n-1)·s + k' + op`` with
  ``output_padding=op``; ``same``: ``n·s``, or ``(n-1)·s + k' mod 2 + op``;
* the window starts at ``0`` for ``valid`` and at ``max(0, (n-1)·s + k' - L) // 2`` for ``same``
  (TensorFlow's ``same`` rule seen from the output); where the window reaches past the full output
  (``k' < s``, or ``output_padding``) the missing rows are zeros (plus the bias).

For ``k = 3, s = 2, same`` Keras keeps ``full[0 : 2n]`` while torch's ``ConvTranspose2d(padding=1,
output_padding=1)`` keeps ``full[1 : 2n + 1]``: same shape, shifted values.

Bad arguments and inputs (wrong rank, a kernel larger than a ``valid`` input, channels not
divisible by ``groups``, a changed channel count) raise here, before any framework runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet.errors import bad_value
from dualnet.layers import _args
from dualnet.layers.base import Layer, WeightSpec, check_dtype, check_name, check_shape

__all__ = [
    "Conv1D", "Conv1DTranspose", "Conv2D", "Conv2DTranspose", "Conv3D", "DepthwiseConv2D",
    "SeparableConv2D",
]  # fmt: skip

_SPATIAL_NAMES = {1: "steps", 2: "height, width", 3: "depth, height, width"}


def same_padding(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """TensorFlow's ``same`` padding of one axis: ``(before, after)``, the odd pixel after."""
    effective = dilation * (kernel - 1) + 1
    out = -(-size // stride)  # ceil(size / stride): the output length of `same`
    total = max(0, (out - 1) * stride + effective - size)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class CropAxis:
    """Where a transposed convolution's output sits in its full output, along one axis.

    The full output of an input of length ``n`` has ``(n-1)·s + k'`` rows. Backends compute it
    with ``extra`` more rows at the end (zeros before the bias: torch's ``output_padding``, a
    longer ``output_shape`` on TensorFlow) and keep ``[start, start + length(n))``.

    Attributes:
        start: first row kept.
        extra: rows appended after the full output (``< stride``).
        stride: the stride ``s``.
        offset: ``length(n) = n·s + offset`` (affine in ``n``, so it also works on a symbolic
            TensorFlow size).
        effective: the dilated kernel size ``k'``.
    """

    start: int
    extra: int
    stride: int
    offset: int
    effective: int

    def length(self, n: Any) -> Any:
        """The output length for an input of length ``n`` (Keras's rule)."""
        return n * self.stride + self.offset

    def native_length(self, n: Any) -> Any:
        """The length the backend computes before cropping: full output plus ``extra``."""
        return (n - 1) * self.stride + self.effective + self.extra


class BaseConv(Layer):
    """What every convolution shares: validated ``kernel_size``, ``strides``, ``padding``,
    ``data_format``, ``dilation_rate``, ``activation``, ``use_bias``; the padding rule (see the
    module docstring); rank and channel checks; ``get_config``.

    Subclasses set ``rank`` and ``_paddings``, call :meth:`_configure` first and
    :meth:`_finish` last in ``__init__``, and implement :meth:`declare_weights`,
    :meth:`_output_length` and :meth:`_config`.
    """

    rank: ClassVar[int] = 2
    _paddings: ClassVar[tuple[str, ...]] = ("valid", "same")

    # -- construction ---------------------------------------------------------------------

    def _configure(self, *, filters: Any, kernel_size: Any, strides: Any, padding: Any,
                   data_format: Any, dilation_rate: Any) -> None:  # fmt: skip
        where = type(self).__name__
        n = self.rank
        self._filters = None if filters is None else _args.positive_int(filters, "filters", where)
        self._kernel_size = _args.int_tuple(kernel_size, n, "kernel_size", where)
        self._strides = _args.int_tuple(strides, n, "strides", where)
        self._padding = _args.choice(padding, self._paddings, "padding", where)
        self._data_format = _args.data_format(data_format, where)
        self._dilation_rate = _args.int_tuple(dilation_rate, n, "dilation_rate", where)
        if max(self._strides) > 1 and max(self._dilation_rate) > 1:
            # Keras refuses the combination and TensorFlow has no kernel for it.
            raise ValueError(
                f"{where}: strides={self._strides} with dilation_rate={self._dilation_rate}: "
                "strides > 1 together with dilation_rate > 1 is not supported (Keras refuses it "
                "and TensorFlow cannot run it); expected strides=1 or dilation_rate=1."
            )

    def _finish(self, *, activation: Any, use_bias: Any, name: Any, dtype: Any,
                input_shape: Any, trainable: Any, **initializers: Any) -> None:  # fmt: skip
        """The remaining checks, then the initializers (they draw seeds: every other argument
        is checked first, so a failed construction leaves dualnet's generator untouched), then
        :class:`Layer`'s own arguments."""
        where = type(self).__name__
        self._activation = _args.activation(activation, where)
        self._use_bias = _args.boolean(use_bias, "use_bias", where)
        check_dtype(dtype, where=where)
        if name is not None:
            check_name(name, where=where)
        if input_shape is not None:
            check_shape(input_shape, argument="input_shape", where=where)
        self._initializers = {
            argument: _args.initializer(value, argument, where)
            for argument, value in initializers.items()
        }
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    # -- read-only configuration ----------------------------------------------------------

    kernel_size = property(lambda self: self._kernel_size)
    strides = property(lambda self: self._strides)
    padding = property(lambda self: self._padding)
    data_format = property(lambda self: self._data_format)
    dilation_rate = property(lambda self: self._dilation_rate)
    activation = property(lambda self: self._activation)
    use_bias = property(lambda self: self._use_bias)
    bias_initializer = property(lambda self: self._initializers["bias_initializer"])

    @property
    def channel_axis(self) -> int:
        """The channel axis of the input and output (batch axis 0 included)."""
        return -1 if self._data_format == "channels_last" else 1

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        start = 1 if self._data_format == "channels_last" else 2
        return tuple(range(start, start + self.rank))

    @property
    def in_channels(self) -> int | None:
        """The input channel count (None until built)."""
        return None if self._build_shape is None else self._build_shape[self.channel_axis]

    @property
    def effective_kernel_size(self) -> tuple[int, ...]:
        """The dilated kernel ``d·(k-1) + 1`` per spatial axis."""
        return tuple(
            d * (k - 1) + 1 for k, d in zip(self._kernel_size, self._dilation_rate, strict=True)
        )

    @property
    def out_channels(self) -> int:
        return self._filters

    # -- shapes ---------------------------------------------------------------------------

    def _check_channels(self, channels: int, shape: tuple[int | None, ...]) -> None:
        """Subclass hook: refuse a channel count (groups that do not divide it)."""

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        spatial = _SPATIAL_NAMES[self.rank]
        what = (
            f"batch, {spatial}, channels" if self._data_format == "channels_last"
            else f"batch, channels, {spatial}"
        )  # fmt: skip
        self._check_rank(shape, self.rank + 2, what)
        channels = shape[self.channel_axis]
        if channels is None:
            axis = self.channel_axis % len(shape)
            raise ValueError(
                f"{self._where()} expects a known channel dimension (axis {axis}, data_format="
                f"{self._data_format!r}), got shape {shape}."
            )
        self._check_channels(channels, shape)
        self._check_same_as_built(shape, [self.channel_axis % len(shape)])
        for axis in self.spatial_axes:
            n = shape[axis]
            if n is not None and self._output_length(n, axis - self.spatial_axes[0]) < 1:
                raise ValueError(self._too_small(shape, axis))

    def _too_small(self, shape: tuple[int | None, ...], axis: int) -> str:
        return (
            f"{self._where()} with padding={self._padding!r} expects each spatial size to be at "
            f"least the dilated kernel size {self.effective_kernel_size} (dilation_rate="
            f"{self._dilation_rate}); got input shape {shape} (axis {axis}: {shape[axis]})."
        )

    def _output_length(self, n: int, i: int) -> int:
        """Output length along spatial axis ``i`` (0-based) for an input of length ``n``."""
        k, s = self.effective_kernel_size[i], self._strides[i]
        if self._padding == "valid":
            return (n - k) // s + 1 if n >= k else 0
        return -(-n // s)  # same and causal: ceil(n / s)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        shape = list(input_shape)
        for i, axis in enumerate(self.spatial_axes):
            shape[axis] = None if shape[axis] is None else self._output_length(shape[axis], i)
        shape[self.channel_axis] = self.out_channels
        return tuple(shape)

    def padding_amounts(self, spatial_shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(before, after)`` zero padding per spatial axis for inputs of these spatial sizes
        (the module docstring's rules; forward convolutions only)."""
        out = []
        for n, k, s, d in zip(spatial_shape, self._kernel_size, self._strides,
                              self._dilation_rate, strict=True):  # fmt: skip
            if self._padding == "same":
                out.append(same_padding(int(n), k, s, d))
            elif self._padding == "causal":
                out.append((d * (k - 1), 0))  # the past only: y[t] sees x[t - d(k-1) .. t]
            else:
                out.append((0, 0))
        return tuple(out)

    # -- config ---------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), **self._config()}
        config["activation"] = _activations.serialize(self._activation)
        config["use_bias"] = self._use_bias
        for argument, init in self._initializers.items():
            config[argument] = _initializers.serialize(init)
        return config

    def __repr__(self) -> str:
        args = f"kernel_size={self._kernel_size}, strides={self._strides}"
        filters = f"filters={self._filters}, " if self._filters is not None else ""
        return (
            f"<{type(self).__name__} name={self.name!r}, {filters}{args}, "
            f"padding={self._padding!r}>"
        )


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
        padding: str = "valid",
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
                f"it; got {channels} channels (input shape {shape})."
            )

    def declare_weights(self) -> list[WeightSpec]:
        shape = (*self._kernel_size, self.in_channels // self._groups, self._filters)
        # Keras's fans of its kernel layout equal torch's of (out, in/groups, *k): the "standard"
        # initializer gets U(±1/√(k·in/groups)), for the kernel and (through `fans`) the bias.
        fans = _initializers.compute_fans(shape)
        kernel = WeightSpec(name="kernel", shape=shape, initializer=self.kernel_initializer,
                            fans=fans)  # fmt: skip
        if not self._use_bias:
            return [kernel]
        return [kernel, WeightSpec(name="bias", shape=(self._filters,),
                                   initializer=self.bias_initializer, fans=fans)]  # fmt: skip

    def _config(self) -> dict[str, Any]:
        return {
            "filters": self._filters, "kernel_size": self._kernel_size, "strides": self._strides,
            "padding": self._padding, "data_format": self._data_format,
            "dilation_rate": self._dilation_rate, "groups": self._groups,
        }  # fmt: skip


class Conv1D(Conv):
    """1-D convolution over ``(batch, steps, channels)``:
    ``y[t, o] = activation(Σ_{τ,c} x[t·s + τ·d - pad, c] · kernel[τ, c, o] + bias[o])``.

    See the module docstring for the torch | Keras | dualnet table and the padding rules.

    Args:
        filters: output channels (a positive int, divisible by ``groups``).
        kernel_size: an int or a 1-tuple.
        strides: an int or a 1-tuple (default 1).
        padding: ``"valid"`` (default), ``"same"`` (TensorFlow's rule, the odd pixel at the end)
            or ``"causal"`` (left pad ``d·(k-1)``: ``y[t]`` depends on ``x[≤ t]`` only).
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
        padding: ``"valid"`` (default) or ``"same"``.
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


# --------------------------------------------------------------------------------------------
# Transposed convolutions


class ConvTranspose(BaseConv):
    """An ``N``-D transposed convolution; the public classes are :class:`Conv1DTranspose` and
    :class:`Conv2DTranspose`.

    ``full[i·s + t·d, o] += Σ_c x[i, c] · kernel[t, o, c]`` over input positions ``i`` and
    kernel taps ``t``; ``y = activation(full[start : start + L] + bias)`` with Keras's length
    ``L`` and TensorFlow's ``start`` (module docstring).
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int | Sequence[int],
        strides: int | Sequence[int] = 1,
        padding: str = "valid",
        output_padding: int | Sequence[int] | None = None,
        data_format: str | None = None,
        dilation_rate: int | Sequence[int] = 1,
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
        if output_padding is None:
            self._output_padding = None
        else:
            self._output_padding = _args.int_tuple(output_padding, self.rank, "output_padding",
                                                   where, minimum=0)  # fmt: skip
            if any(p >= s for p, s in zip(self._output_padding, self._strides, strict=True)):
                # Rows past the stride would belong to a longer input: Keras and torch refuse.
                raise bad_value("output_padding", output_padding,
                                f"values smaller than strides={self._strides}",
                                where=where)  # fmt: skip
        self._finish(activation=activation, use_bias=use_bias, name=name, dtype=dtype,
                     input_shape=input_shape, trainable=trainable,
                     kernel_initializer=kernel_initializer,
                     bias_initializer=bias_initializer)  # fmt: skip

    filters = property(lambda self: self._filters)
    output_padding = property(lambda self: self._output_padding)
    kernel_initializer = property(lambda self: self._initializers["kernel_initializer"])

    @property
    def crop_axes(self) -> tuple[CropAxis, ...]:
        """Per spatial axis, the window of the full output that is kept (module docstring)."""
        out = []
        for i, (k, s) in enumerate(zip(self.effective_kernel_size, self._strides, strict=True)):
            op = None if self._output_padding is None else self._output_padding[i]
            # Keras's output length L = n·s + offset.
            if self._padding == "valid":
                offset = max(k - s, 0) if op is None else k - s + op
            else:
                offset = 0 if op is None else k % 2 + op - s
            # TensorFlow's `same` rule seen from the output: total padding (n-1)·s + k - L
            # = (k - s) - offset, whatever n; `valid` pads nothing.
            start = max(0, k - s - offset) // 2 if self._padding == "same" else 0
            # The window may reach past the full output ((n-1)·s + k rows): by this many rows.
            extra = max(0, start + offset - (k - s))
            out.append(CropAxis(start=start, extra=extra, stride=s, offset=offset, effective=k))
        return tuple(out)

    def _output_length(self, n: int, i: int) -> int:
        return self.crop_axes[i].length(n)

    def _too_small(self, shape: tuple[int | None, ...], axis: int) -> str:
        return (
            f"{self._where()} with padding={self._padding!r} and output_padding="
            f"{self._output_padding} expects inputs giving a non-empty output; got input shape "
            f"{shape} (axis {axis})."
        )

    def declare_weights(self) -> list[WeightSpec]:
        shape = (*self._kernel_size, self._filters, self.in_channels)
        # compute_fans on Keras's (*k, out, in) gives fan_in = k·out, which is torch's fan_in of
        # its (in, out, *k) transposed weight (torch reads size(1)): "standard" matches torch.
        fans = _initializers.compute_fans(shape)
        kernel = WeightSpec(name="kernel", shape=shape, initializer=self.kernel_initializer,
                            fans=fans)  # fmt: skip
        if not self._use_bias:
            return [kernel]
        return [kernel, WeightSpec(name="bias", shape=(self._filters,),
                                   initializer=self.bias_initializer, fans=fans)]  # fmt: skip

    def _config(self) -> dict[str, Any]:
        return {
            "filters": self._filters, "kernel_size": self._kernel_size, "strides": self._strides,
            "padding": self._padding, "output_padding": self._output_padding,
            "data_format": self._data_format, "dilation_rate": self._dilation_rate,
        }  # fmt: skip


class Conv1DTranspose(ConvTranspose):
    """1-D transposed convolution (the input-gradient of :class:`Conv1D`), often used to
    upsample: ``full[i·s + τ·d, o] += Σ_c x[i, c] · kernel[τ, o, c]``, then Keras's output
    window of ``full``, bias and activation (module docstring).

    Args:
        filters: output channels.
        kernel_size, strides, dilation_rate: an int or a 1-tuple (dilation > 1 only with
            stride 1).
        padding: ``"valid"`` (output ``n·s + max(k' - s, 0)``) or ``"same"`` (output ``n·s``).
        output_padding: None (default) or an int / 1-tuple ``0 <= op < strides``: output
            ``(n-1)·s + k' + op`` (valid) or ``(n-1)·s + k' mod 2 + op`` (same), as Keras.
        data_format: ``"channels_last"`` (``None``, the default) or ``"channels_first"``.
        activation, use_bias, kernel_initializer, bias_initializer: as :class:`Conv1D`
            (``"standard"`` is torch's U(±1/√(k·filters)), torch's fan_in for this layer).
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, steps, channels)``; output ``(batch, new_steps, filters)``. Weights:
        ``kernel (k, filters, channels)`` (torch: ``(channels, filters, k)``), ``bias
        (filters,)``.

    torch | Keras | dualnet:

    ====================  =================================  ==================================
    torch                 Keras                              dualnet
    ====================  =================================  ==================================
    weight ``(in, out,    kernel ``(*k, out, in)``           Keras's
    *k)``
    output ``(n-1)·s -    ``same``: ``n·s``; ``valid``:      Keras's lengths, TensorFlow's
    2p + k' + op``,       ``n·s + max(k' - s, 0)``           window (module docstring); torch's
    window starts at p                                       ``(padding, output_padding)`` gives
                                                             the same shape shifted by one row
                                                             for ``k=3, s=2, same``
    ====================  =================================  ==================================
    """

    rank: ClassVar[int] = 1


class Conv2DTranspose(ConvTranspose):
    """2-D transposed convolution (the input-gradient of :class:`Conv2D`), often used to
    upsample: ``full[i·s + a·d, j·s + b·d, o] += Σ_c x[i, j, c] · kernel[a, b, o, c]``, then
    Keras's output window of ``full``, bias and activation (module docstring).

    Args:
        filters: output channels.
        kernel_size, strides, dilation_rate: an int or a 2-tuple (dilation > 1 only with
            stride 1).
        padding: ``"valid"`` or ``"same"`` (output ``n·s`` per axis).
        output_padding: None (default) or an int / 2-tuple, each ``0 <= op < stride`` (Keras's
            lengths, see :class:`Conv1DTranspose`).
        data_format: ``"channels_last"`` (``None``, the default) or ``"channels_first"``.
        activation, use_bias, kernel_initializer, bias_initializer: as :class:`Conv1D`.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, channels)``; output ``(batch, new_height, new_width,
        filters)``. Weights: ``kernel (kh, kw, filters, channels)`` (torch: ``(channels,
        filters, kh, kw)``), ``bias (filters,)``.

    torch | Keras | dualnet:

    ====================  =================================  ==================================
    torch                 Keras                              dualnet
    ====================  =================================  ==================================
    weight ``(in, out,    kernel ``(*k, out, in)``           Keras's
    *k)``
    output ``(n-1)·s -    ``same``: ``n·s``; ``valid``:      Keras's lengths, TensorFlow's
    2p + k' + op``,       ``n·s + max(k' - s, 0)``           window (module docstring); torch's
    window starts at p                                       ``(padding, output_padding)`` gives
                                                             the same shape shifted by one row
                                                             for ``k=3, s=2, same``
    ====================  =================================  ==================================
    """

    rank: ClassVar[int] = 2


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
        padding: ``"valid"`` or ``"same"`` (TensorFlow's rule).
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
        padding: str = "valid",
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
        if not self._use_bias:
            return [kernel]
        return [kernel, WeightSpec(name="bias", shape=(c * m,),
                                   initializer=self.bias_initializer, fans=fans)]  # fmt: skip

    def _config(self) -> dict[str, Any]:
        return {
            "kernel_size": self._kernel_size, "strides": self._strides, "padding": self._padding,
            "depth_multiplier": self._depth_multiplier, "data_format": self._data_format,
            "dilation_rate": self._dilation_rate,
        }  # fmt: skip


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
        padding: ``"valid"`` or ``"same"`` (TensorFlow's rule), depthwise step.
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
        padding: str = "valid",
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
        if self._use_bias:  # torch's bias belongs to the pointwise Conv2d: its fans
            bias = WeightSpec(name="bias", shape=(self._filters,),
                              initializer=self.bias_initializer, fans=pointwise_fans)  # fmt: skip
            specs.append(bias)
        return specs

    def _config(self) -> dict[str, Any]:
        return {
            "filters": self._filters, "kernel_size": self._kernel_size, "strides": self._strides,
            "padding": self._padding, "data_format": self._data_format,
            "dilation_rate": self._dilation_rate, "depth_multiplier": self._depth_multiplier,
        }  # fmt: skip
