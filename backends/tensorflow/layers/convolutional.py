"""Convolutional layers on tf.keras: custom Keras layers over ``tf.nn`` kernels.

TensorFlow's own ``same`` padding *is* dualnet's rule (the odd pixel after), so forward
convolutions pass ``"SAME"``/``"VALID"`` to the native op; explicit (torch-style) amounts are
zeros added by ``tf.pad`` before a ``"VALID"`` convolution (one path for every rank and every
kernel, the CPU fallbacks below included), and a transposed convolution with explicit amounts
crops its full output as torch does (``crop_axes``). Keras's own layers are not adopted
because in configurations dualnet allows they fail on CPU, where TensorFlow has no kernel:

* ``channels_first``: TensorFlow's CPU convolutions only take channels-last data ("The Conv2D op
  currently only supports the NHWC tensor format on the CPU"); here the data is transposed to
  channels-last around the op on every device (one code path, two cheap transposes);
* ``groups > 1``: no CPU gradient kernel ("Gradients for grouped convolutions are not supported
  on CPU"), and no grouped 3-D CPU kernel at all ("input and filter must have the same depth");
  there each group is convolved on its own;
* transposed convolutions with dilation > 1 ("Current CPU implementations do not yet support
  dilation rates larger than 1"); dilation implies stride 1, where the transposed convolution is
  an ordinary one with the kernel flipped and in/out swapped;
* depthwise convolutions with unequal strides ("only supports equal length strides in the row
  and column dimensions"); there it runs with stride 1 on the explicitly padded input and keeps
  every s-th row/column.

Which dtypes refuse depends on the build: with oneDNN (the default on x86 Linux) float32 and
bfloat16 run oneDNN kernels that accept the last three in 1-D and 2-D and float16/float64
refuse them; TensorFlow's own kernels (``TF_ENABLE_ONEDNN_OPTS=0``) refuse them in every
dtype. So the last three fallbacks are taken only on the CPU and only where the kernel
refuses, which :func:`_cpu_refuses` asks it once per configuration, rank and dtype; elsewhere
the native op runs.
Each fallback computes the same sums as the native op (only the summation order can differ).
The refusals are recorded with probes in ``dualnet/parity/divergences.py``.
"""

from __future__ import annotations

import concurrent.futures
import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import tensorflow as tf
from dualnet.backends.tensorflow.layers.base import (
    Layer,
    activate,
    from_channels_last,
    to_channels_last,
)

from dualnet import activations as _activations

_CHANNELS_LAST = {3: "NWC", 4: "NHWC", 5: "NDHWC"}


def _conv(x: tf.Tensor, kernel: Any, strides: Any = 1, padding: str = "VALID",
          dilations: Any = None) -> tf.Tensor:  # fmt: skip
    """``tf.nn.convolution`` on channels-last data, with the layout named explicitly: without
    it a 5-D (Conv3D) op records no ``data_format`` and its gradient raises AttributeError
    (the same TensorFlow defect as 5-D pooling's, see dualnet/parity/divergences.py)."""
    return tf.nn.convolution(x, kernel, strides, padding, dilations=dilations,
                             data_format=_CHANNELS_LAST[len(x.shape)])  # fmt: skip


def _check_grouped(rank: int, dtype: tf.DType) -> None:
    x, k = tf.ones((1, *(3,) * rank, 2), dtype), tf.ones((*(1,) * rank, 1, 2), dtype)  # 2 groups
    _forward_and_gradients(lambda x, k: _conv(x, k, 1, "VALID"), x, k)


def _check_dilated_transposed(rank: int, dtype: tf.DType) -> None:
    x, k = tf.ones((1, *(3,) * rank, 2), dtype), tf.ones((*(2,) * rank, 1, 2), dtype)
    shape = (1, *(5,) * rank, 1)  # 3 + dilated kernel 3 - 1
    _forward_and_gradients(lambda x, k: tf.nn.conv_transpose(x, k, shape, 1, "VALID",
                                                             dilations=2), x, k)  # fmt: skip


def _check_unequal_depthwise_strides(rank: int, dtype: tf.DType) -> None:
    x, k = tf.ones((1, 3, 4, 2), dtype), tf.ones((1, 1, 2, 1), dtype)
    _forward_and_gradients(lambda x, k: tf.nn.depthwise_conv2d(x, k, (1, 1, 2, 1), "VALID"), x, k)


def _forward_and_gradients(fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor], x: tf.Tensor,
                           k: tf.Tensor) -> None:  # fmt: skip
    with tf.GradientTape() as tape:
        tape.watch([x, k])
        y = fn(x, k)
    tape.gradient(y, [x, k])


# The configurations some CPU kernels refuse (module docstring), each checked by running a tiny
# native computation and its gradients.
_CPU_CHECKS: dict[str, Callable[[int, tf.DType], None]] = {
    "grouped": _check_grouped,
    "dilated transposed": _check_dilated_transposed,
    "unequal depthwise strides": _check_unequal_depthwise_strides,
}


def _cpu_accepts(what: str, rank: int, dtype: tf.DType) -> bool:
    with tf.device("/CPU:0"):
        try:
            _CPU_CHECKS[what](rank, dtype)
        except tf.errors.OpError:  # InvalidArgument/Unimplemented: "not supported on CPU"
            return False
    return True


@functools.cache
def _cpu_refuses(what: str, rank: int, dtype: tf.DType) -> bool:
    """Whether this TensorFlow's CPU kernels refuse ``what`` (a key of ``_CPU_CHECKS``) for a
    ``rank``-D convolution in ``dtype``: asked once per question, on a tiny input.

    Asked on a worker thread: a new thread executes eagerly with gradients recorded even when
    the question first comes up while a function is traced (``tf.init_scope`` would reach eager
    execution but pause gradient recording)."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return not pool.submit(_cpu_accepts, what, rank, dtype).result()


@functools.cache
def _gpu_visible() -> bool:
    return bool(tf.config.list_logical_devices("GPU"))


def _refused(what: str, x: tf.Tensor) -> bool:
    """True where TensorFlow's kernel for channels-last ``x`` would refuse ``what``: on the CPU
    (eager tensors say where they are; inside a traced function, where no GPU exists), per
    :func:`_cpu_refuses`."""
    device = getattr(x, "device", "") or ""
    on_cpu = "GPU" not in device.upper() if device else not _gpu_visible()
    return on_cpu and _cpu_refuses(what, x.shape.rank - 2, x.dtype)


def _size(x: tf.Tensor, axis: int) -> Any:
    """A static size where known, else the symbolic one (a traced function's None)."""
    static = x.shape[axis]
    return static if static is not None else tf.shape(x)[axis]


class _Conv(Layer):
    """Shared: channels-first data moved to channels-last around the op, bias, activation."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        # Explicit amounts are padded by `pad` before the op, which then pads nothing.
        self._native_padding = "SAME" if layer.padding == "same" else "VALID"

    def call(self, x: tf.Tensor, training: Any = None) -> tf.Tensor:
        # TensorFlow's CPU convolution kernels take channels-last data only.
        x = to_channels_last(x, self.layer.data_format)
        y = self.convolve(self.pad(x))
        if self.layer.use_bias:
            y = tf.nn.bias_add(y, self.bias)
        if self.layer.activation is not _activations.linear:
            y = activate(self.layer.activation, y)
        return from_channels_last(y, self.layer.data_format)

    def convolve(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def pad(self, x: tf.Tensor) -> tf.Tensor:
        """Channels-last ``x`` with the layer's explicit ``(before, after)`` zeros (torch's
        padding; the same amounts whatever the input size, so a traced unknown size is fine);
        ``x`` itself for a padding mode."""
        pads = self.layer.explicit_padding
        if pads is None or not any(before or after for before, after in pads):
            return x
        return tf.pad(x, [[0, 0], *([before, after] for before, after in pads), [0, 0]])


def _convolution(x: tf.Tensor, kernel: Any, strides: Sequence[int], padding: str,
                 dilation: Sequence[int], groups: int) -> tf.Tensor:  # fmt: skip
    """``tf.nn.convolution`` (channels-last), grouped natively or one group at a time where
    the CPU has no grouped gradient kernel."""
    if groups > 1 and _refused("grouped", x):
        xs = tf.split(x, groups, axis=-1)  # group g: input channels g·C/G ..
        ks = tf.split(kernel, groups, axis=-1)  # .. and output channels g·O/G ..
        return tf.concat([_conv(a, k, strides, padding, dilations=dilation)
                          for a, k in zip(xs, ks, strict=True)], axis=-1)  # fmt: skip
    return _conv(x, kernel, strides, padding, dilations=dilation)


class Conv(_Conv):
    """Conv1D/2D/3D: ``tf.nn.convolution`` with TensorFlow's own SAME/VALID; ``causal`` pads
    ``d·(k-1)`` before the steps and runs VALID, as explicit amounts do (:meth:`_Conv.pad`)."""

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
    Keras's window reaches past it), then the window (``dualnet.layers.convolutional``); explicit
    padding crops that window as torch's ``padding`` does, so nothing is padded first."""

    def pad(self, x: tf.Tensor) -> tf.Tensor:
        return x

    def convolve(self, x: tf.Tensor) -> tf.Tensor:
        layer = self.layer
        crop = layer.crop_axes
        sizes = [_size(x, axis) for axis in range(1, layer.rank + 1)]
        if max(layer.dilation_rate) > 1 and _refused("dilated transposed", x):
            y = self._dilated(x, crop)
        else:
            shape = [tf.shape(x)[0], *(c.native_length(n) for c, n in zip(crop, sizes,
                                                                           strict=True)),
                     layer.filters]  # fmt: skip
            y = tf.nn.conv_transpose(x, self.kernel, tf.stack(shape), layer.strides, "VALID",
                                     dilations=layer.dilation_rate)  # fmt: skip
        window = [slice(None)]
        window += [slice(c.start, c.start + c.length(n)) for c, n in zip(crop, sizes, strict=True)]
        return y[tuple(window)]

    def _dilated(self, x: tf.Tensor, crop: Sequence[Any]) -> tf.Tensor:
        """Dilation > 1 implies stride 1, where the transposed convolution is an ordinary one:
        pad ``k' - 1`` on both sides and correlate with the kernel flipped in space and with
        in/out swapped (for a CPU transposed kernel that refuses dilation). ``extra`` is 0 with
        stride 1, so the window is ``[start, start + n + offset)`` of this output."""
        rank = self.layer.rank
        kernel = tf.reverse(self.kernel, axis=list(range(rank)))
        kernel = tf.transpose(kernel, (*range(rank), rank + 1, rank))  # (*k, in, out)
        pads = [[0, 0], *([c.effective - 1, c.effective - 1] for c in crop), [0, 0]]
        return _conv(tf.pad(x, pads), kernel, 1, "VALID",
                                 dilations=self.layer.dilation_rate)  # fmt: skip


def _depthwise(x: tf.Tensor, kernel: Any, layer: Any) -> tf.Tensor:
    """``tf.nn.depthwise_conv2d`` (channels-last) with the layer's strides, padding, dilation."""
    sh, sw = layer.strides
    if sh == sw or not _refused("unequal depthwise strides", x):
        return tf.nn.depthwise_conv2d(x, kernel, (1, sh, sw, 1),
                                      # explicit amounts: already padded (_Conv.pad)
                                      "SAME" if layer.padding == "same" else "VALID",
                                      dilations=layer.dilation_rate)  # fmt: skip
    # Unequal strides (so no dilation) on a CPU kernel that refuses them: pad explicitly by
    # the layer's rule, correlate at stride 1, keep every s-th row and column.
    x = tf.pad(x, [[0, 0], *_same_pads(x, layer), [0, 0]])
    y = tf.nn.depthwise_conv2d(x, kernel, (1, 1, 1, 1), "VALID")
    return y[:, ::sh, ::sw, :]


def _same_pads(x: tf.Tensor, layer: Any) -> list[list[Any]]:
    """``[before, after]`` per spatial axis (channels-last ``x``) still to pad: TensorFlow's
    ``same`` rule, the layer's own amounts for static sizes and in tensor arithmetic for a
    traced unknown size; none for ``valid`` and for explicit amounts (already padded)."""
    sizes = [_size(x, axis) for axis in range(1, layer.rank + 1)]
    if layer.padding != "same":
        return [[0, 0] for _ in sizes]
    if all(isinstance(n, int) for n in sizes):
        return [list(p) for p in layer.padding_amounts(sizes)]
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
        return _conv(h, self.pointwise_kernel, 1, "VALID")


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
