"""Transposed convolutions: Conv1DTranspose, Conv2DTranspose (see the package docstring)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from dualnet import initializers as _initializers
from dualnet.errors import bad_value
from dualnet.layers import _args
from dualnet.layers.base import WeightSpec, format_shape
from dualnet.layers.convolutional.base_conv import BaseConv, CropAxis

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
        padding: str | int | Sequence[Any] = "valid",
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
            pads = self.explicit_padding
            if pads is not None:
                # torch's ConvTranspose: crop `before` rows at the start and `after` at the end
                # of the full output, then append `op` rows: L = (n-1)·s + k - before - after
                # + op, the window starting at `before`.
                before, after = pads[i]
                offset = k - s - before - after + (op or 0)
                extra = max(0, (op or 0) - after)  # rows past the full output (zeros + bias)
                out.append(CropAxis(start=before, extra=extra, stride=s, offset=offset,
                                    effective=k))  # fmt: skip
                continue
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
            f"{format_shape(shape)} (axis {axis})."
        )

    def declare_weights(self) -> list[WeightSpec]:
        shape = (*self._kernel_size, self._filters, self.in_channels)
        # compute_fans on Keras's (*k, out, in) gives fan_in = k·out, which is torch's fan_in of
        # its (in, out, *k) transposed weight (torch reads size(1)): "standard" matches torch.
        fans = _initializers.compute_fans(shape)
        kernel = WeightSpec(name="kernel", shape=shape, initializer=self.kernel_initializer,
                            fans=fans)  # fmt: skip
        return self._with_bias([kernel], self._filters, fans)

    def _config(self) -> dict[str, Any]:
        return {**super()._config(), "output_padding": self._output_padding}


class Conv1DTranspose(ConvTranspose):
    """1-D transposed convolution (the input-gradient of :class:`Conv1D`), often used to
    upsample: ``full[i·s + τ·d, o] += Σ_c x[i, c] · kernel[τ, o, c]``, then Keras's output
    window of ``full``, bias and activation (module docstring).

    Args:
        filters: output channels.
        kernel_size, strides, dilation_rate: an int or a 1-tuple (dilation > 1 only with
            stride 1).
        padding: ``"valid"`` (output ``n·s + max(k' - s, 0)``), ``"same"`` (output ``n·s``),
            or explicit amounts as torch's ``ConvTranspose1d(padding=p)``: an int or
            ``((before, after),)`` rows **cropped** from the full output (output
            ``(n-1)·s + k' - before - after + op``).
        output_padding: None (default) or an int / 1-tuple ``0 <= op < strides``: output
            ``(n-1)·s + k' + op`` (valid) or ``(n-1)·s + k' mod 2 + op`` (same), as Keras;
            with explicit padding torch's: ``op`` rows appended after the crop (zeros plus
            the bias where they pass the full output).
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
                                                             for ``k=3, s=2, same``; explicit
                                                             ``padding=p``: torch's crop
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
        padding: ``"valid"``, ``"same"`` (output ``n·s`` per axis), or explicit amounts
            cropped from the full output as torch's ``ConvTranspose2d(padding=p)`` (an int, a
            2-tuple or ``(before, after)`` pairs; see :class:`Conv1DTranspose`).
        output_padding: None (default) or an int / 2-tuple, each ``0 <= op < stride`` (Keras's
            lengths, see :class:`Conv1DTranspose`).
        data_format: ``"channels_last"`` (``None``, the default) or ``"channels_first"``.
        activation, use_bias, kernel_initializer, bias_initializer: as :class:`Conv1D`.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Shape:
        input ``(batch, height, width, channels)``; output ``(batch, new_height, new_width,
        filters)``. Weights: ``kernel (kh, kw, filters, channels)`` (torch: ``(channels,
        filters, kh, kw)``), ``bias (filters,)``.

    torch | Keras | dualnet: as :class:`Conv1DTranspose` (weights and output window).
    """

    rank: ClassVar[int] = 2
