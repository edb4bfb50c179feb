"""Explicit (torch-style) padding of convolutions: torch's own ``F.conv*d`` and
``F.conv_transpose*d`` are the arbiter (pooling's explicit padding is in test_layers_pooling.py;
parity per dtype and gradients in test_layer_catalogue.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from frameworks import torch as _torch
from test_layers_convolutional import _reduction, _run, _weights, _x
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.reference import layers as RL

L = dn.layers


EXPLICIT = [  # (layer, kwargs, input shape (channels first), torch's F.pad list or None)
    (L.Conv2D, {"filters": 3, "kernel_size": 3, "strides": 2, "padding": 1}, (2, 2, 8, 6), None),
    (L.Conv2D, {"filters": 2, "kernel_size": (2, 3), "padding": ((1, 2), (0, 3)), "groups": 2},
     (2, 4, 5, 6), [0, 3, 1, 2]),
    (L.Conv1D, {"filters": 2, "kernel_size": 4, "strides": 2, "padding": 2}, (2, 3, 8), None),
    (L.Conv1D, {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": ((4, 0),)},
     (2, 3, 9), [4, 0]),
    (L.Conv3D, {"filters": 2, "kernel_size": 2, "strides": 2, "padding": (1, 0, 1)},
     (1, 2, 3, 4, 4), None),
    (L.DepthwiseConv2D, {"kernel_size": 3, "strides": (1, 2), "padding": 1,
                         "depth_multiplier": 2}, (2, 3, 6, 6), None),
    (L.SeparableConv2D, {"filters": 3, "kernel_size": 3, "strides": 2,
                         "padding": ((1, 0), (2, 1))}, (2, 2, 6, 5), [2, 1, 1, 0]),
]  # fmt: skip


def _torch_conv(cls, kwargs, x, weights, pad):
    """torch's own module computation: ``F.conv{n}d(padding=p)`` (symmetric) or ``F.pad`` and
    an unpadded convolution (pairs), channels first, with torch's weight layouts."""
    torch = _torch()
    F = torch.nn.functional
    t = torch.as_tensor
    rank = x.ndim - 2
    xt = t(x) if pad is None else F.pad(t(x), pad)
    padding = kwargs["padding"] if pad is None else 0
    common = {"stride": kwargs.get("strides", 1), "padding": padding,
              "dilation": kwargs.get("dilation_rate", 1)}  # fmt: skip
    conv = getattr(F, f"conv{rank}d")
    if cls in (L.DepthwiseConv2D, L.SeparableConv2D):
        kh, kw, c, m = weights[0].shape
        depthwise = t(weights[0]).permute(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
        bias = t(weights[-1]) if cls is L.DepthwiseConv2D else None
        y = conv(xt, depthwise, bias, groups=c, **common)
        if cls is L.SeparableConv2D:
            y = conv(y, t(weights[1]).permute(3, 2, 0, 1), t(weights[2]))
        return y.numpy()
    kernel = t(weights[0]).permute(rank + 1, rank, *range(rank))  # (k…, i/g, o) -> (o, i/g, k…)
    return conv(xt, kernel, t(weights[1]), groups=kwargs.get("groups", 1), **common).numpy()


@pytest.mark.parametrize(("cls", "kwargs", "shape", "pad"), EXPLICIT,
                         ids=[f"{c.__name__}-{i}" for i, (c, _, _, _) in
                              enumerate(EXPLICIT)])  # fmt: skip
def test_explicit_padding_is_torchs_convolution(cls, kwargs, shape, pad, backend):
    x = _x(shape)
    kwargs = {**kwargs, "data_format": "channels_first"}
    y, weights = _run(cls, kwargs, x, backend)
    native = _torch_conv(cls, kwargs, x, weights, pad)
    assert y.shape == native.shape == cls(**kwargs).compute_output_shape(shape)
    k = _reduction(cls, kwargs, shape[1])
    assert_close(y, native, "float64", reduction=k)
    with dn.use_backend(backend):
        layer = cls(**kwargs)
        layer.build(shape)
    reference = RL.for_layer(layer)  # the float64 reference, from the layer's config
    named = dict(zip(layer.weight_names(), weights, strict=True))
    assert_close(y, reference(x, named, **RL.layer_config(layer)), "float64", reduction=k)


@pytest.mark.parametrize(("rank", "kwargs", "n"), [
    (2, {"kernel_size": 3, "strides": 2, "padding": 1, "output_padding": 1}, 4),
    (2, {"kernel_size": (3, 4), "strides": 2, "padding": (2, 1)}, 3),
    (1, {"kernel_size": 3, "strides": 3, "padding": 1, "output_padding": 2}, 4),
    (1, {"kernel_size": 3, "dilation_rate": 2, "padding": 3}, 5),
])  # fmt: skip
def test_explicit_padding_is_torchs_transposed_convolution(rank, kwargs, n, backend):
    """A transposed convolution's explicit padding is torch's: ``padding`` rows cropped from
    both ends of the full output, ``output_padding`` rows (zeros plus the bias) appended."""
    torch = _torch()
    cls = {1: L.Conv1DTranspose, 2: L.Conv2DTranspose}[rank]
    kwargs = {"filters": 2, **kwargs, "data_format": "channels_first"}
    x = _x((2, 3, *(n,) * rank))
    y, (kernel, bias) = _run(cls, kwargs, x, backend)
    native = getattr(torch.nn.functional, f"conv_transpose{rank}d")(
        torch.as_tensor(x), torch.as_tensor(kernel).permute(rank + 1, rank, *range(rank)),
        torch.as_tensor(bias), stride=kwargs.get("strides", 1), padding=kwargs["padding"],
        output_padding=kwargs.get("output_padding", 0), dilation=kwargs.get("dilation_rate", 1),
    ).numpy()  # fmt: skip
    assert y.shape == native.shape == cls(**kwargs).compute_output_shape(x.shape)
    assert_close(y, native, "float64", reduction=_reduction(cls, kwargs, 3))


def test_explicit_padding_config_errors_and_modes():
    layer = L.Conv2D(4, 3, strides=2, padding=(1, 2))
    assert layer.padding == ((1, 1), (2, 2)) and layer.padding_amounts((9, 9)) == layer.padding
    config = layer.get_config()
    assert config["padding"] == [[1, 1], [2, 2]]  # JSON's list of [before, after] pairs
    clone = L.Conv2D.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config
    assert layer.compute_output_shape((None, 8, 7, 3)) == (None, 4, 5, 4)  # torch's floor rule
    assert L.Conv1D(2, 3, padding="valid").explicit_padding is None
    x = _x((2, 7, 6, 3))
    zero, weights = _run(L.Conv2D, {"filters": 2, "kernel_size": 3, "padding": 0}, x, "torch")
    valid, _ = _run(L.Conv2D, {"filters": 2, "kernel_size": 3}, x, "torch", weights)
    np.testing.assert_array_equal(zero, valid)  # padding=0 is "valid"
    for build, match in ((lambda: L.Conv2D(2, 3, padding=-1), r"Conv2D: invalid padding=-1"),
                         (lambda: L.DepthwiseConv2D(3, padding=((1, 1), (0, -1))),
                          r"padding=\(\(1, 1\), \(0, -1\)\).*ints >= 0"),
                         (lambda: L.Conv1D(2, 3, padding=None),
                          r"padding=None.*'causal'")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            build()
    with pytest.raises(ValueError, match=r"padding=\(\(0, 0\), \(1, 1\)\) expects each spatial "
                                         r"size plus its padding"):  # fmt: skip
        L.Conv2D(2, 3, padding=((0, 0), (1, 1)))(dn.Input((2, 6, 1)))


def test_explicit_conv_traced_with_unknown_sizes_matches_eager():
    backend_module("tensorflow")
    import tensorflow as tf

    x = _x((2, 3, 7, 6))
    with dn.use_backend("tensorflow"):
        layer = L.DepthwiseConv2D(3, strides=(1, 2), padding=((1, 0), (2, 1)),
                                  data_format="channels_first", dtype="float64")  # fmt: skip
        layer.build(x.shape)
        layer.set_weights(_weights(layer))
        eager = dn.to_numpy(layer(x))
        spec = tf.TensorSpec([None, 3, None, None], tf.float64)
        traced = tf.function(lambda t: layer.native(t), input_signature=[spec])
        np.testing.assert_array_equal(traced(tf.constant(x)).numpy(), eager)
