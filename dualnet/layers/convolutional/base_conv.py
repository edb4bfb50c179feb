"""What every convolution shares: argument validation, TensorFlow's padding rules, shapes and
the config (see the package docstring for the rules and the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet.layers import _args
from dualnet.layers.base import Layer, check_dtype, check_name, check_shape

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
