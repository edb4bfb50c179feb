"""float64 numpy reference of the convolutional layers, written from the definitions (a sum over
kernel taps of shifted input slices), with TensorFlow's padding rules re-derived here (not
imported from dualnet's layers), and torch's explicit padding: ``padding`` an int, one int per
axis or ``(before, after)`` pairs (the config's ``[[before, after], ...]``) pads those zeros
(a transposed convolution crops them from its full output instead, as torch's ``padding``).
Arrays are channels-last inside; ``data_format`` only moves the channel axis of the input and
output. Kernels are in canonical (Keras) layout.

Loops run over kernel taps only; every tap is one vectorised ``einsum``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from dualnet.reference import activations as _activations


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _tuple(value, rank):
    return (int(value),) * rank if np.isscalar(value) else tuple(int(v) for v in value)


def _to_last(x, data_format):
    """channels_first ``(B, C, *S)`` -> ``(B, *S, C)``."""
    return np.moveaxis(x, 1, -1) if data_format == "channels_first" else x


def _from_last(y, data_format):
    return np.moveaxis(y, -1, 1) if data_format == "channels_first" else y


def _finish(y, bias, activation, data_format):
    if bias is not None:
        y = y + _f64(bias)
    y = getattr(_activations, activation or "linear")(y)
    return _from_last(y, data_format)


def _explicit(padding, rank):
    """Explicit amounts as ``(before, after)`` per axis, or None for a mode string: an int pads
    every side, an int per axis both sides of it, a pair ``(before, after)`` as given."""
    if isinstance(padding, str):
        return None
    if np.isscalar(padding):
        padding = [padding] * rank
    return [(int(p), int(p)) if np.isscalar(p) else (int(p[0]), int(p[1])) for p in padding]


def _pads(spatial, kernel, strides, dilation, padding):
    """``(before, after)`` per axis: TensorFlow's ``same`` (odd pixel after), Keras's
    ``causal`` (all before), explicit amounts as given, or none."""
    explicit = _explicit(padding, len(spatial))
    if explicit is not None:
        return explicit
    out = []
    for n, k, s, d in zip(spatial, kernel, strides, dilation, strict=True):
        span = d * (k - 1) + 1
        if padding == "same":
            total = max(0, (math.ceil(n / s) - 1) * s + span - n)
            out.append((total // 2, total - total // 2))
        elif padding == "causal":
            out.append((span - 1, 0))
        else:
            out.append((0, 0))
    return out


def _correlate(x, kernel, strides, dilation, pads, groups):
    """Grouped N-D cross-correlation, channels-last: ``x (B, *S, C)``, ``kernel (*k, C/g, O)``
    -> ``(B, *S', O)``; ``y[p, o] = Σ_t Σ_c x_pad[p·s + t·d, g(o)·C/g + c] · kernel[t, c, o]``."""
    rank = kernel.ndim - 2
    ksize = kernel.shape[:rank]
    cin_g, cout = kernel.shape[rank], kernel.shape[rank + 1]
    x = np.pad(x, [(0, 0), *pads, (0, 0)])
    spatial = x.shape[1 : 1 + rank]
    out = [(n - d * (k - 1) - 1) // s + 1 for n, k, s, d in zip(spatial, ksize, strides, dilation,
                                                                 strict=True)]  # fmt: skip
    b = x.shape[0]
    y = np.zeros((b, *out, groups, cout // groups))
    # Output channel o = g·(O/groups) + j reads input channels g·(C/groups) + c.
    xg_shape = (b, *out, groups, cin_g)
    kg = kernel.reshape(*ksize, cin_g, groups, cout // groups)
    for tap in itertools.product(*(range(k) for k in ksize)):
        window = tuple(
            slice(t * d, t * d + s * (o - 1) + 1, s)
            for t, d, s, o in zip(tap, dilation, strides, out, strict=True)
        )
        patch = x[(slice(None), *window)].reshape(xg_shape)
        y += np.einsum("...gc,cgj->...gj", patch, kg[tap])
    return y.reshape(b, *out, cout)


def _conv(x, kernel, bias, *, strides, padding, data_format, dilation_rate, groups, activation):
    kernel = _f64(kernel)
    rank = kernel.ndim - 2
    x = _to_last(_f64(x), data_format)
    strides, dilation = _tuple(strides, rank), _tuple(dilation_rate, rank)
    pads = _pads(x.shape[1 : 1 + rank], kernel.shape[:rank], strides, dilation, padding)
    y = _correlate(x, kernel, strides, dilation, pads, groups)
    return _finish(y, bias, activation, data_format)


def conv1d(x, kernel, bias=None, *, strides=1, padding="valid", data_format="channels_last",
           dilation_rate=1, groups=1, activation="linear"):  # fmt: skip
    """Conv1D: ``kernel (k, C/groups, filters)``; ``padding`` valid, same or causal."""
    return _conv(x, kernel, bias, strides=strides, padding=padding, data_format=data_format,
                 dilation_rate=dilation_rate, groups=groups, activation=activation)  # fmt: skip


def conv2d(x, kernel, bias=None, *, strides=1, padding="valid", data_format="channels_last",
           dilation_rate=1, groups=1, activation="linear"):  # fmt: skip
    """Conv2D: ``kernel (kh, kw, C/groups, filters)``."""
    return _conv(x, kernel, bias, strides=strides, padding=padding, data_format=data_format,
                 dilation_rate=dilation_rate, groups=groups, activation=activation)  # fmt: skip


def conv3d(x, kernel, bias=None, *, strides=1, padding="valid", data_format="channels_last",
           dilation_rate=1, groups=1, activation="linear"):  # fmt: skip
    """Conv3D: ``kernel (kd, kh, kw, C/groups, filters)``."""
    return _conv(x, kernel, bias, strides=strides, padding=padding, data_format=data_format,
                 dilation_rate=dilation_rate, groups=groups, activation=activation)  # fmt: skip


def _transposed_length(n, k, s, d, padding, output_padding):
    """Keras's output length of a transposed convolution; explicit ``(before, after)``:
    torch's, the full length less both crops plus ``output_padding``."""
    span = d * (k - 1) + 1
    if not isinstance(padding, str):
        before, after = padding
        return (n - 1) * s + span - before - after + (output_padding or 0)
    if padding == "valid":
        return (n - 1) * s + span + (max(span, s) - span if output_padding is None
                                     else output_padding)  # fmt: skip
    return n * s if output_padding is None else (n - 1) * s + span % 2 + output_padding


def _conv_transpose(x, kernel, bias, *, strides, padding, output_padding, data_format,
                    dilation_rate, activation):  # fmt: skip
    """``full[i·s + t·d, o] += Σ_c x[i, c] · kernel[t, o, c]``, then the window TensorFlow keeps:
    the transposed convolution of length ``L`` is the input-gradient of a convolution of an
    ``L``-long input to ``n`` outputs, whose ``same`` padding puts ``total // 2`` before."""
    kernel = _f64(kernel)
    rank = kernel.ndim - 2
    x = _to_last(_f64(x), data_format)
    strides, dilation = _tuple(strides, rank), _tuple(dilation_rate, rank)
    ops = (None,) * rank if output_padding is None else _tuple(output_padding, rank)
    ksize, cout = kernel.shape[:rank], kernel.shape[rank]
    b, spatial = x.shape[0], x.shape[1 : 1 + rank]
    axes = list(zip(spatial, ksize, strides, dilation, ops, strict=True))
    explicit = _explicit(padding, rank)
    modes = [padding] * rank if explicit is None else explicit  # per axis: mode or (b, a)
    full_len = [(n - 1) * s + d * (k - 1) + 1 for n, k, s, d, _ in axes]
    lengths = [_transposed_length(n, k, s, d, mode, op)
               for (n, k, s, d, op), mode in zip(axes, modes, strict=True)]  # fmt: skip
    # The window starts where torch crops (explicit `before`), at TensorFlow's `same` offset,
    # or at 0 (`valid`).
    starts = [mode[0] if explicit is not None else
              max(0, f - length) // 2 if padding == "same" else 0
              for f, length, mode in zip(full_len, lengths, modes, strict=True)]  # fmt: skip
    # Room for the window wherever it reaches past the full output (zeros there).
    size = [max(f, st + length) for f, st, length in zip(full_len, starts, lengths, strict=True)]
    full = np.zeros((b, *size, cout))
    for tap in itertools.product(*(range(k) for k in ksize)):
        window = tuple(
            slice(t * d, t * d + s * (n - 1) + 1, s)
            for t, d, s, n in zip(tap, dilation, strides, spatial, strict=True)
        )
        full[(slice(None), *window)] += np.einsum("...c,oc->...o", x, kernel[tap])
    keep = tuple(slice(st, st + length) for st, length in zip(starts, lengths, strict=True))
    return _finish(full[(slice(None), *keep)], bias, activation, data_format)


def conv1d_transpose(x, kernel, bias=None, *, strides=1, padding="valid", output_padding=None,
                     data_format="channels_last", dilation_rate=1,
                     activation="linear"):  # fmt: skip
    """Conv1DTranspose: ``kernel (k, filters, C)``."""
    return _conv_transpose(x, kernel, bias, strides=strides, padding=padding,
                           output_padding=output_padding, data_format=data_format,
                           dilation_rate=dilation_rate, activation=activation)  # fmt: skip


def conv2d_transpose(x, kernel, bias=None, *, strides=1, padding="valid", output_padding=None,
                     data_format="channels_last", dilation_rate=1,
                     activation="linear"):  # fmt: skip
    """Conv2DTranspose: ``kernel (kh, kw, filters, C)``."""
    return _conv_transpose(x, kernel, bias, strides=strides, padding=padding,
                           output_padding=output_padding, data_format=data_format,
                           dilation_rate=dilation_rate, activation=activation)  # fmt: skip


def _depthwise(x, kernel, *, strides, padding, dilation):
    """``y[p, c·m + q] = Σ_t x_pad[p·s + t·d, c] · kernel[t, c, q]`` (channels-last)."""
    kh, kw, c, m = kernel.shape
    pads = _pads(x.shape[1:3], (kh, kw), strides, dilation, padding)
    # A depthwise convolution is a grouped one with one input channel per group and m outputs
    # per group: kernel (kh, kw, C, m) -> (kh, kw, 1, C·m), output channel c·m + q.
    return _correlate(x, kernel.reshape(kh, kw, 1, c * m), strides, dilation, pads, groups=c)


def depthwise_conv2d(x, kernel, bias=None, *, strides=1, padding="valid", depth_multiplier=1,
                     data_format="channels_last", dilation_rate=1,
                     activation="linear"):  # fmt: skip
    """DepthwiseConv2D: ``kernel (kh, kw, C, depth_multiplier)``, output channel ``c·m + q``."""
    kernel = _f64(kernel)
    if kernel.shape[3] != depth_multiplier:
        raise ValueError(f"depthwise_conv2d: kernel {kernel.shape} for m={depth_multiplier}")
    x = _to_last(_f64(x), data_format)
    y = _depthwise(x, kernel, strides=_tuple(strides, 2), padding=padding,
                   dilation=_tuple(dilation_rate, 2))  # fmt: skip
    return _finish(y, bias, activation, data_format)


def separable_conv2d(x, depthwise_kernel, pointwise_kernel, bias=None, *, strides=1,
                     padding="valid", data_format="channels_last", dilation_rate=1,
                     depth_multiplier=1, activation="linear"):  # fmt: skip
    """SeparableConv2D: depthwise (no bias) then the 1×1 ``pointwise_kernel (1, 1, C·m, F)``."""
    depthwise_kernel = _f64(depthwise_kernel)
    if depthwise_kernel.shape[3] != depth_multiplier:
        raise ValueError(f"separable_conv2d: kernel {depthwise_kernel.shape} for "
                         f"m={depth_multiplier}")  # fmt: skip
    x = _to_last(_f64(x), data_format)
    h = _depthwise(x, depthwise_kernel, strides=_tuple(strides, 2), padding=padding,
                   dilation=_tuple(dilation_rate, 2))  # fmt: skip
    y = np.einsum("bhwc,cf->bhwf", h, _f64(pointwise_kernel)[0, 0])
    return _finish(y, bias, activation, data_format)


# Layer-convention entry points, ``reference(x, weights, **config)`` (what the catalogue and
# :func:`dualnet.reference.layers.for_layer` call); the functions above take the kernels and the
# math arguments explicitly.
_CONV_KEYS = ("strides", "padding", "data_format", "dilation_rate", "groups", "activation")
_TRANSPOSE_KEYS = ("strides", "padding", "output_padding", "data_format", "dilation_rate",
                   "activation")  # fmt: skip
_DEPTHWISE_KEYS = ("strides", "padding", "depth_multiplier", "data_format", "dilation_rate",
                   "activation")  # fmt: skip


def _layer(fn: Callable[..., Any], kernels: tuple[str, ...], keys: tuple[str, ...]):
    """``reference(x, weights, **config)`` -> ``fn(x, *kernels, bias, **math arguments)``."""

    def reference(x, w, **config):
        return fn(x, *(w[k] for k in kernels), w.get("bias"), **{k: config[k] for k in keys})

    reference.__name__ = fn.__name__
    return reference


conv1d_layer = _layer(conv1d, ("kernel",), _CONV_KEYS)
conv2d_layer = _layer(conv2d, ("kernel",), _CONV_KEYS)
conv3d_layer = _layer(conv3d, ("kernel",), _CONV_KEYS)
conv1d_transpose_layer = _layer(conv1d_transpose, ("kernel",), _TRANSPOSE_KEYS)
conv2d_transpose_layer = _layer(conv2d_transpose, ("kernel",), _TRANSPOSE_KEYS)
depthwise_conv2d_layer = _layer(depthwise_conv2d, ("kernel",), _DEPTHWISE_KEYS)
separable_conv2d_layer = _layer(
    separable_conv2d, ("depthwise_kernel", "pointwise_kernel"), _DEPTHWISE_KEYS
)
