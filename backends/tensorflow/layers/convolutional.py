"""Convolutional layers on tf.keras: custom Keras layers over ``tf.nn`` kernels.

TensorFlow's own ``same`` padding *is* dualnet's rule (the odd pixel after), so forward
convolutions pass ``"SAME"``/``"VALID"`` to the native op. Keras's own layers are not adopted
because in configurations dualnet allows they fail on CPU, where TensorFlow has no kernel:

* ``channels_first``: TensorFlow's CPU convolutions only take channels-last data ("The Conv2D op
  currently only supports the NHWC tensor format on the CPU" in float16/float64); here the data
  is transposed to channels-last around the op (on every device: one code path, two cheap
  transposes);
* ``groups > 1`` in float16/float64: no CPU gradient kernel ("Gradients for grouped convolutions
  are not supported on CPU"); here each group is convolved on its own;
* transposed convolutions with dilation > 1 in float16/float64 ("Current CPU implementations do
  not yet support dilation rates larger than 1"); dilation implies stride 1, where the
  transposed convolution is an ordinary one with the kernel flipped and in/out swapped;
* depthwise convolutions with unequal strides in float16/float64 ("only supports equal length
  strides in the row and column dimensions"); there it runs with stride 1 on the explicitly
  padded input and keeps every s-th row/column.

Each fallback computes the same sums as the native op (only the summation order can differ).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import Layer, activate

from dualnet import activations as _activations

# Dtypes whose CPU kernels lack grouped-convolution gradients, transposed-convolution dilation
# and unequal depthwise strides (float32 and bfloat16 run oneDNN kernels that have them).
_CPU_LIMITED = (tf.float16, tf.float64)


@functools.cache
def _gpu_visible() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def _limited(x: tf.Tensor) -> bool:
    """True where TensorFlow's CPU kernels would refuse: a float16/float64 tensor on the CPU
    (eager tensors say where they are; inside a traced function, where no GPU exists)."""
    if x.dtype not in _CPU_LIMITED:
        return False
    device = getattr(x, "device", "") or ""
    if device:
        return "GPU" not in device.upper()
    return not _gpu_visible()


def _size(x: tf.Tensor, axis: int) -> Any:
    """A static size where known, else the symbolic one (a traced function's None)."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


class _Conv(Layer):
    """Shared: channels-first data moved to channels-last around the op, bias, activation."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        rank = layer.rank
        self._first = layer.data_format == "channels_first"
        self._to_last = (0, *range(2, rank + 2), 1)
        self._to_first = (0, rank + 1, *range(1, rank + 1))
        self._native_padding = "SAME" if layer.padding == "same" else "VALID"

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        if self._first:
            # TensorFlow's CPU convolution kernels take channels-last data only.
            x = tf.transpose(x, self._to_last)
        y = self.convolve(x)
        if self.layer.use_bias:
            y = tf.nn.bias_add(y, self.bias)
        if self.layer.activation is not _activations.linear:
            y = activate(self.layer.activation, y)
        return tf.transpose(y, self._to_first) if self._first else y

    def convolve(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


def _convolution(x: tf.Tensor, kernel: Any, strides: Sequence[int], padding: str,
                 dilation: Sequence[int], groups: int) -> tf.Tensor:  # fmt: skip
    """``tf.nn.convolution`` (channels-last), grouped natively or one group at a time where
    the CPU has no grouped gradient kernel."""
    if groups > 1 and _limited(x):
        xs = tf.split(x, groups, axis=-1)  # group g: input channels g·C/G ..
        ks = tf.split(kernel, groups, axis=-1)  # .. and output channels g·O/G ..
        return tf.concat([tf.nn.convolution(a, k, strides, padding, dilations=dilation)
                          for a, k in zip(xs, ks, strict=True)], axis=-1)  # fmt: skip
    return tf.nn.convolution(x, kernel, strides, padding, dilations=dilation)


class Conv(_Conv):
    """Conv1D/2D/3D: ``tf.nn.convolution`` with TensorFlow's own SAME/VALID; ``causal`` pads
    ``d·(k-1)`` before the steps and runs VALID."""

    def convolve(self, x: tf.Tensor) -> tf.Tensor:
        layer = self.layer
        padding = self._native_padding
        if layer.padding == "causal":
            before = layer.dilation_rate[0] * (layer.kernel_size[0] - 1)
            x = tf.pad(x, [[0, 0], [before, 0], [0, 0]])
        return _convolution(x, self.kernel, layer.strides, padding, layer.dilation_rate,
                            layer.groups)  # fmt: skip


class ConvTranspose(_Conv):
    """Conv1D/2DTranspose: the full transposed convolution (VALID, with ``extra`` rows where
    Keras's window reaches past it), then the window (``dualnet.layers.convolutional``)."""

    def convolve(self, x: tf.Tensor) -> tf.Tensor:
        layer = self.layer
        crop = layer.crop_axes
        sizes = [_size(x, axis) for axis in range(1, layer.rank + 1)]
        if max(layer.dilation_rate) > 1:
            y = self._dilated(x, crop)
        else:
            shape = [tf.shape(x)[0], *(c.native_length(n) for c, n in zip(crop, sizes,
                                                                           strict=True)),
                     layer.filters]  # fmt: skip
            y = tf.nn.conv_transpose(x, self.kernel, tf.stack(shape), layer.strides, "VALID")
        window = [slice(None)]
        window += [slice(c.start, c.start + c.length(n)) for c, n in zip(crop, sizes, strict=True)]
        return y[tuple(window)]

    def _dilated(self, x: tf.Tensor, crop: Sequence[Any]) -> tf.Tensor:
        """Dilation > 1 implies stride 1, where the transposed convolution is an ordinary one:
        pad ``k' - 1`` on both sides and correlate with the kernel flipped in space and with
        in/out swapped (TensorFlow's CPU transposed kernels refuse dilation in
        float16/float64). ``extra`` is 0 with stride 1, so the window is ``[start, start + n +
        offset)`` of this output."""
        rank = self.layer.rank
        kernel = tf.reverse(self.kernel, axis=list(range(rank)))
        kernel = tf.transpose(kernel, (*range(rank), rank + 1, rank))  # (*k, in, out)
        pads = [[0, 0], *([c.effective - 1, c.effective - 1] for c in crop), [0, 0]]
        return tf.nn.convolution(tf.pad(x, pads), kernel, 1, "VALID",
                                 dilations=self.layer.dilation_rate)  # fmt: skip


def _depthwise(x: tf.Tensor, kernel: Any, layer: Any) -> tf.Tensor:
    """``tf.nn.depthwise_conv2d`` (channels-last) with the layer's strides, padding, dilation."""
    sh, sw = layer.strides
    if sh == sw or not _limited(x):
        return tf.nn.depthwise_conv2d(x, kernel, (1, sh, sw, 1),
                                      "SAME" if layer.padding == "same" else "VALID",
                                      dilations=layer.dilation_rate)  # fmt: skip
    # Unequal strides (so no dilation) on a CPU kernel that refuses them: pad explicitly by
    # the layer's rule, correlate at stride 1, keep every s-th row and column.
    x = tf.pad(x, [[0, 0], *_same_pads(x, layer), [0, 0]])
    y = tf.nn.depthwise_conv2d(x, kernel, (1, 1, 1, 1), "VALID")
    return y[:, ::sh, ::sw, :]


def _same_pads(x: tf.Tensor, layer: Any) -> list[list[Any]]:
    """``[before, after]`` per spatial axis (channels-last ``x``): the layer's own amounts for
    static sizes; TensorFlow's ``same`` rule in tensor arithmetic for a traced unknown size."""
    sizes = [_size(x, axis) for axis in range(1, layer.rank + 1)]
    if all(isinstance(n, int) for n in sizes):
        return [list(p) for p in layer.padding_amounts(sizes)]
    if layer.padding == "valid":
        return [[0, 0] for _ in sizes]
    out = []
    for n, k, s in zip(sizes, layer.effective_kernel_size, layer.strides, strict=True):
        total = tf.maximum(0, (-(-n // s) - 1) * s + k - n)  # -(-n // s) = ceil(n / s)
        out.append([total // 2, total - total // 2])
    return out


class DepthwiseConv2D(_Conv):
    """``tf.nn.depthwise_conv2d``: output channel ``c·m + q``, as Keras's kernel layout."""

    def convolve(self, x: tf.Tensor) -> tf.Tensor:
        return _depthwise(x, self.kernel, self.layer)


class SeparableConv2D(_Conv):
    """Depthwise (no bias) then the 1×1 pointwise convolution, as ``tf.nn.separable_conv2d``
    composes them."""

    def convolve(self, x: tf.Tensor) -> tf.Tensor:
        h = _depthwise(x, self.depthwise_kernel, self.layer)
        return tf.nn.convolution(h, self.pointwise_kernel, 1, "VALID")


def conv1d(layer: Any, weights: Sequence[np.ndarray]) -> Conv:
    return Conv(layer, weights)


def conv2d(layer: Any, weights: Sequence[np.ndarray]) -> Conv:
    return Conv(layer, weights)


def conv3d(layer: Any, weights: Sequence[np.ndarray]) -> Conv:
    return Conv(layer, weights)


def conv1d_transpose(layer: Any, weights: Sequence[np.ndarray]) -> ConvTranspose:
    return ConvTranspose(layer, weights)


def conv2d_transpose(layer: Any, weights: Sequence[np.ndarray]) -> ConvTranspose:
    return ConvTranspose(layer, weights)


def depthwise_conv2d(layer: Any, weights: Sequence[np.ndarray]) -> DepthwiseConv2D:
    return DepthwiseConv2D(layer, weights)


def separable_conv2d(layer: Any, weights: Sequence[np.ndarray]) -> SeparableConv2D:
    return SeparableConv2D(layer, weights)
