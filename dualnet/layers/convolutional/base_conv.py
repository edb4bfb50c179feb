"""What every convolution shares: argument validation, TensorFlow's padding rules, shapes and
the config (see the package docstring for the rules and the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet.layers import _args, _spatial
from dualnet.layers.base import Layer, WeightSpec, format_shape


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

    ``padding`` is a mode (``_paddings``) or, where ``_explicit_padding``, torch-style amounts
    (an int, one int per axis or ``(before, after)`` pairs), kept as a tuple of pairs.

    Subclasses set ``rank`` and ``_paddings``, call :meth:`_configure` first and
    :meth:`_finish` last in ``__init__``, implement :meth:`declare_weights` (ending with
    :meth:`_with_bias`), and add their own arguments to :meth:`_config`.
    """

    rank: ClassVar[int] = 2
    _paddings: ClassVar[tuple[str, ...]] = ("valid", "same")
    # Whether padding may be explicit amounts (torch's integer padding).
    _explicit_padding: ClassVar[bool] = True

    # -- construction ---------------------------------------------------------------------

    def _configure(self, *, filters: Any, kernel_size: Any, strides: Any, padding: Any,
                   data_format: Any, dilation_rate: Any) -> None:  # fmt: skip
        where = type(self).__name__
        n = self.rank
        self._filters = None if filters is None else _args.positive_int(filters, "filters", where)
        self._kernel_size = _args.int_tuple(kernel_size, n, "kernel_size", where)
        self._strides = _args.int_tuple(strides, n, "strides", where)
        self._padding = _args.padding(padding, self._paddings, n, "padding", where,
                                      explicit=self._explicit_padding)  # fmt: skip
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
        """The remaining checks, then the initializers (they may draw seeds: every other
        argument is checked first, :func:`dualnet.layers._args.initializers`), then
        :class:`Layer`'s setup."""
        where = type(self).__name__
        self._activation = _args.activation(activation, where)
        self._use_bias = _args.boolean(use_bias, "use_bias", where)
        self._initializers = _args.initializers(where, name=name, dtype=dtype,
                                                input_shape=input_shape, trainable=trainable,
                                                **initializers)  # fmt: skip
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    # -- read-only configuration ----------------------------------------------------------

    kernel_size = property(lambda self: self._kernel_size)
    strides = property(lambda self: self._strides)
    # The padding mode ("valid", ...) or the explicit (before, after) pairs.
    padding = property(lambda self: self._padding)
    data_format = property(lambda self: self._data_format)
    dilation_rate = property(lambda self: self._dilation_rate)
    activation = property(lambda self: self._activation)
    use_bias = property(lambda self: self._use_bias)
    bias_initializer = property(lambda self: self._initializers["bias_initializer"])

    @property
    def explicit_padding(self) -> tuple[tuple[int, int], ...] | None:
        """The explicit ``(before, after)`` amounts per spatial axis, None for a mode."""
        return self._padding if _spatial.is_explicit(self._padding) else None

    @property
    def channel_axis(self) -> int:
        """The channel axis of the input and output, non-negative (batch axis 0): ``rank + 1``
        for channels_last, 1 for channels_first."""
        return _spatial.channel_axis(self.rank + 2, self._data_format)

    @property
    def spatial_axes(self) -> tuple[int, ...]:
        """The spatial axes of the input and output (batch axis 0)."""
        return _spatial.spatial_axes(self.rank + 2, self._data_format)

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
        # A body besides the docstring: tf.function's AutoGraph cannot convert an empty one.
        return None

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        self._check_rank(shape, self.rank + 2, _spatial.layout(self.rank, self._data_format))
        channels = shape[self.channel_axis]
        if channels is None:
            raise ValueError(
                f"{self._where()} expects a known channel dimension (axis {self.channel_axis}, "
                f"data_format={self._data_format!r}), got shape {format_shape(shape)}."
            )
        self._check_channels(channels, shape)
        self._check_same_as_built(shape, [self.channel_axis])
        for i, axis in enumerate(self.spatial_axes):
            n = shape[axis]
            if n is not None and self._output_length(n, i) < 1:
                raise ValueError(self._too_small(shape, axis))

    def _too_small(self, shape: tuple[int | None, ...], axis: int) -> str:
        if self.explicit_padding is not None:
            return (
                f"{self._where()} with padding={self._padding} expects each spatial size plus "
                f"its padding to be at least the dilated kernel size "
                f"{self.effective_kernel_size} (dilation_rate={self._dilation_rate}); got input "
                f"shape {format_shape(shape)} (axis {axis}: {shape[axis]})."
            )
        return (
            f"{self._where()} with padding={self._padding!r} expects each spatial size to be at "
            f"least the dilated kernel size {self.effective_kernel_size} (dilation_rate="
            f"{self._dilation_rate}); got input shape {format_shape(shape)} (axis {axis}: "
            f"{shape[axis]})."
        )

    def _output_length(self, n: int, i: int) -> int:
        """Output length along spatial axis ``i`` (0-based) for an input of length ``n``."""
        k, s = self.effective_kernel_size[i], self._strides[i]
        if self.explicit_padding is not None:  # torch's floor((n + before + after - k')/s) + 1
            return _spatial.padded_length(n, k, s, *self.explicit_padding[i])
        return _spatial.output_length(n, k, s, self._padding)

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        shape = list(_spatial.map_spatial(input_shape, self._data_format, self._output_length))
        shape[self.channel_axis] = self.out_channels
        return tuple(shape)

    def padding_amounts(self, spatial_shape: Sequence[int]) -> tuple[tuple[int, int], ...]:
        """``(before, after)`` zero padding per spatial axis for inputs of these spatial sizes
        (the module docstring's rules; forward convolutions only). Explicit amounts are the
        same for every size."""
        if self.explicit_padding is not None:
            return self.explicit_padding
        out = []
        for n, k, s, d in zip(spatial_shape, self._kernel_size, self._strides,
                              self._dilation_rate, strict=True):  # fmt: skip
            if self._padding == "same":
                out.append(_spatial.same_padding(int(n), k, s, d))
            elif self._padding == "causal":
                out.append((d * (k - 1), 0))  # the past only: y[t] sees x[t - d(k-1) .. t]
            else:
                out.append((0, 0))
        return tuple(out)

    # -- config ---------------------------------------------------------------------------

    def _with_bias(self, specs: list[WeightSpec], units: int,
                   fans: tuple[int, int]) -> list[WeightSpec]:  # fmt: skip
        """``specs`` (the kernels), then with ``use_bias`` a ``bias (units,)``, Keras's order;
        ``fans`` are those of torch's module that owns the bias (its "standard" initializer
        draws U(±1/√fan_in) from them)."""
        if self._use_bias:
            specs.append(WeightSpec(name="bias", shape=(units,),
                                    initializer=self.bias_initializer, fans=fans))  # fmt: skip
        return specs

    def _config(self) -> dict[str, Any]:
        """The constructor arguments but activation, use_bias and the initializers (which
        :meth:`get_config` adds); subclasses add theirs."""
        filters = {} if self._filters is None else {"filters": self._filters}
        return {
            **filters, "kernel_size": self._kernel_size, "strides": self._strides,
            "padding": self._padding_config(), "data_format": self._data_format,
            "dilation_rate": self._dilation_rate,
        }  # fmt: skip

    def _padding_config(self) -> str | list[list[int]]:
        """The mode, or explicit amounts as a list of ``[before, after]`` lists (JSON's)."""
        if self.explicit_padding is None:
            return self._padding
        return [list(pair) for pair in self.explicit_padding]

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
