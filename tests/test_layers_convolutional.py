"""Convolutional layers: the torch/Keras divergences made visible, Keras's own layers as the
arbiter of the canonical conventions, shapes with unknown dims, models, initializers and errors
(parity per dtype and gradients are in test_layer_catalogue.py)."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import BACKENDS, backend_module
from dualnet.initializers import compute_fans
from dualnet.reference.layers import convolutional as R

L = dn.layers


def _reduction(cls, kwargs, channels):
    """K for the tolerance (``tolerances.assert_close``): the longest sum behind one output, the
    kernel's taps times the input channels of a group, +1 for the bias; a transposed
    convolution's sum is at most that long; SeparableConv2D: both stages' lengths (the taps,
    then the C·m inputs of the pointwise step)."""
    size = kwargs["kernel_size"]
    taps = math.prod(size) if isinstance(size, tuple) else size**cls.rank
    bias = int(kwargs.get("use_bias", True))
    if cls is L.DepthwiseConv2D:
        return taps + bias
    if cls is L.SeparableConv2D:
        return taps + channels * kwargs.get("depth_multiplier", 1) + bias
    return taps * channels // kwargs.get("groups", 1) + bias


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape)


def _weights(layer, seed=1):
    rng = np.random.default_rng(seed)
    return [0.5 * rng.standard_normal(s.shape) for s in layer.weight_specs]


def _run(cls, kwargs, x, backend, weights=None, dtype="float64"):
    """Output of a fresh layer on ``backend`` (numpy) and its canonical weights."""
    with dn.use_backend(backend):
        layer = cls(**kwargs, dtype=dtype)
        layer.build(x.shape)
        layer.set_weights(_weights(layer) if weights is None else weights)
        return dn.to_numpy(layer(x)), layer.get_weights()


# --------------------------------------------------------------------------------------------
# same padding: TensorFlow's rule, not torch's symmetric integer padding


def test_same_stride2_even_size_differs_from_torch_integer_padding(backend):
    torch = _torch()
    x = _x((2, 8, 8, 2))
    y, (kernel, bias) = _run(L.Conv2D, {"filters": 3, "kernel_size": 3, "strides": 2,
                                        "padding": "same"}, x, backend)  # fmt: skip
    expected = R.conv2d(x, kernel, bias, strides=2, padding="same")
    assert_close(y, expected, "float64", reduction=3 * 3 * 2 + 1)
    # torch's own answer: padding=1 gives the same (4, 4) shape but pads (1, 1), not (0, 1).
    xt = torch.as_tensor(x).permute(0, 3, 1, 2)
    wt = torch.as_tensor(kernel).permute(3, 2, 0, 1)
    native = torch.nn.functional.conv2d(xt, wt, torch.as_tensor(bias), stride=2, padding=1)
    native = native.permute(0, 2, 3, 1).numpy()
    assert native.shape == y.shape
    assert np.abs(native - expected).max() > 0.5  # ~2 for these N(0, 1) inputs: not rounding
    with pytest.raises(RuntimeError, match="padding='same' is not supported for strided"):
        torch.nn.functional.conv2d(xt, wt, stride=2, padding="same")


@pytest.mark.parametrize(("n", "k", "s", "d", "pads"), [
    (8, 3, 2, 1, (0, 1)), (7, 3, 2, 1, (1, 1)), (5, 2, 1, 1, (0, 1)), (6, 4, 1, 1, (1, 2)),
    (6, 2, 1, 3, (1, 2)), (4, 3, 3, 1, (1, 1)), (3, 1, 2, 1, (0, 0)), (2, 5, 2, 1, (1, 2)),
])  # fmt: skip
def test_same_padding_amounts_are_tensorflows(n, k, s, d, pads):
    layer = L.Conv1D(1, k, strides=s, dilation_rate=d, padding="same")
    assert layer.padding_amounts((n,)) == (pads,)
    assert layer.compute_output_shape((None, n, 1)) == (None, -(-n // s), 1)


def test_even_kernel_stride1_same_is_torchs_same_string(backend):
    """At stride 1 torch's padding="same" also puts the odd pixel at the end: the only case
    torch's string agrees (it refuses strides > 1)."""
    torch = _torch()
    x = _x((2, 5, 6, 2))
    y, (kernel, bias) = _run(L.Conv2D, {"filters": 3, "kernel_size": (2, 4), "padding": "same"},
                             x, backend)  # fmt: skip
    xt = torch.as_tensor(x).permute(0, 3, 1, 2)
    wt = torch.as_tensor(kernel).permute(3, 2, 0, 1)
    with warnings.catch_warnings():  # torch warns that it pads a copy, as dualnet does here
        warnings.simplefilter("ignore", UserWarning)
        native = torch.nn.functional.conv2d(xt, wt, torch.as_tensor(bias), padding="same")
    assert_close(y, native.permute(0, 2, 3, 1).numpy(), "float64", reduction=2 * 4 * 2 + 1)


def test_causal_conv1d_never_sees_the_future(backend):
    kwargs = {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "causal"}
    x = _x((1, 9, 2))
    y, weights = _run(L.Conv1D, kwargs, x, backend)
    later = x.copy()
    later[:, 5:] += 10.0  # change only steps >= 5
    y_later, _ = _run(L.Conv1D, kwargs, later, backend, weights)
    np.testing.assert_array_equal(y[:, :5], y_later[:, :5])
    assert np.abs(y[:, 5:] - y_later[:, 5:]).min() > 0  # and every later step moved
    # torch's nearest option, symmetric padding d·(k-1)/2, reads the future.
    same = R.conv1d(x, *weights, dilation_rate=2, padding="same")
    assert np.abs(same - y).max() > 0.5
    assert_close(y, R.conv1d(x, *weights, dilation_rate=2, padding="causal"), "float64",
                 reduction=3 * 2 + 1)  # fmt: skip


# --------------------------------------------------------------------------------------------
# Transposed convolutions: Keras's window, which no torch (padding, output_padding) gives


def test_transposed_same_k3_s2_no_torch_padding_pair_reproduces_keras(backend):
    torch = _torch()
    x = _x((2, 4, 3, 2))
    y, (kernel, bias) = _run(L.Conv2DTranspose, {"filters": 3, "kernel_size": 3, "strides": 2,
                                                 "padding": "same"}, x, backend)  # fmt: skip
    expected = R.conv2d_transpose(x, kernel, bias, strides=2, padding="same")
    assert_close(y, expected, "float64", reduction=3 * 3 * 2 + 1)
    assert y.shape == (2, 8, 6, 3)
    xt = torch.as_tensor(x).permute(0, 3, 1, 2)
    wt = torch.as_tensor(kernel).permute(3, 2, 0, 1)  # (*k, out, in) -> (in, out, *k)
    matched_shape = 0
    for padding, output_padding in itertools.product(range(3), range(2)):
        native = torch.nn.functional.conv_transpose2d(
            xt, wt, torch.as_tensor(bias), stride=2, padding=padding,
            output_padding=output_padding,
        ).permute(0, 2, 3, 1).numpy()  # fmt: skip
        if native.shape != expected.shape:
            continue
        matched_shape += 1
        assert np.abs(native - expected).max() > 0.5, (padding, output_padding)
    assert matched_shape == 1  # (1, 1): Keras's shape, torch's window full[1:2n+1]


@pytest.mark.parametrize(("kwargs", "length"), [
    ({"kernel_size": 3, "strides": 2, "padding": "same"}, 10),
    ({"kernel_size": 3, "strides": 2, "padding": "valid"}, 11),
    ({"kernel_size": 2, "strides": 3, "padding": "valid"}, 15),
    ({"kernel_size": 4, "strides": 2, "padding": "same", "output_padding": 1}, 9),
    ({"kernel_size": 4, "strides": 2, "padding": "valid", "output_padding": 1}, 13),
    ({"kernel_size": 3, "dilation_rate": 2, "padding": "valid"}, 9),
])  # fmt: skip
def test_transposed_output_length_is_keras(kwargs, length):
    keras = _keras()
    layer = L.Conv1DTranspose(2, **kwargs)
    assert layer.compute_output_shape((None, 5, 3)) == (None, length, 2)
    assert layer.compute_output_shape((None, None, 3)) == (None, None, 2)
    native = keras.layers.Conv1DTranspose(2, **kwargs)
    assert tuple(native.compute_output_shape((None, 5, 3))) == (None, length, 2)


# --------------------------------------------------------------------------------------------
# Keras's own layers are the arbiter of names, layouts and the math (float32, channels_last:
# the configurations Keras itself runs on a CPU)

KERAS_CASES = [
    ("Conv1D", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 8, 2)),
    ("Conv1D", {"filters": 4, "kernel_size": 2, "dilation_rate": 3, "padding": "causal",
                "groups": 2}, (2, 9, 4)),
    ("Conv2D", {"filters": 3, "kernel_size": (2, 3), "strides": (2, 1), "padding": "same",
                "activation": "relu"}, (2, 8, 7, 2)),
    ("Conv2D", {"filters": 4, "kernel_size": 3, "dilation_rate": 2, "groups": 2,
                "use_bias": False}, (2, 7, 8, 4)),
    ("Conv3D", {"filters": 2, "kernel_size": (2, 3, 2), "strides": 2, "padding": "same"},
     (1, 4, 5, 6, 2)),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 5, "strides": 2, "padding": "same"},
     (2, 5, 3)),
    ("Conv1DTranspose", {"filters": 2, "kernel_size": 2, "strides": 3, "padding": "valid",
                         "output_padding": 1}, (2, 5, 3)),
    ("Conv2DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"},
     (2, 4, 3, 2)),
    ("Conv2DTranspose", {"filters": 3, "kernel_size": (3, 4), "strides": 2, "padding": "same",
                         "output_padding": 1}, (2, 4, 3, 2)),
    ("Conv2DTranspose", {"filters": 2, "kernel_size": 3, "dilation_rate": 2, "padding": "same"},
     (2, 4, 5, 2)),
    ("DepthwiseConv2D", {"kernel_size": 3, "strides": 2, "padding": "same",
                         "depth_multiplier": 2}, (2, 6, 7, 3)),
    ("DepthwiseConv2D", {"kernel_size": (2, 3), "dilation_rate": (2, 1), "padding": "same"},
     (2, 5, 6, 2)),
    ("SeparableConv2D", {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same",
                         "depth_multiplier": 2}, (2, 6, 7, 3)),
]  # fmt: skip


@pytest.mark.parametrize(("name", "kwargs", "shape"), KERAS_CASES,
                         ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(KERAS_CASES)])  # fmt: skip
def test_same_names_shapes_and_values_as_keras(name, kwargs, shape, backend):
    keras = _keras()
    x = _x(shape).astype("float32")
    native = getattr(keras.layers, name)(**kwargs)
    native.build(shape)
    y, weights = _run(getattr(L, name), kwargs, x, backend, dtype="float32")
    with dn.use_backend(backend):
        layer = getattr(L, name)(**kwargs)
        layer.build(shape)
    assert [v.name for v in native.weights] == list(layer.weight_names())
    assert [tuple(v.shape) for v in native.weights] == layer.weight_shapes()
    native.set_weights(weights)
    expected = np.asarray(native(x))
    assert y.shape == expected.shape == layer.compute_output_shape(shape)
    assert_close(y, expected, "float32", reduction=_reduction(getattr(L, name), kwargs, shape[-1]))


# --------------------------------------------------------------------------------------------
# channels_first, layouts


@pytest.mark.parametrize(("cls", "kwargs", "shape"), [
    (L.Conv1D, {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 8, 2)),
    (L.Conv2D, {"filters": 4, "kernel_size": 3, "groups": 2, "padding": "same"}, (2, 5, 6, 4)),
    (L.Conv3D, {"filters": 2, "kernel_size": 2, "strides": 2, "padding": "same"},
     (1, 3, 4, 5, 2)),
    (L.Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
     (2, 3, 4, 2)),
    (L.Conv1DTranspose, {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (2, 4, 3)),
    (L.DepthwiseConv2D, {"kernel_size": 3, "strides": (1, 2), "depth_multiplier": 2},
     (2, 5, 7, 2)),
    (L.SeparableConv2D, {"filters": 3, "kernel_size": 2, "padding": "same"}, (2, 5, 6, 2)),
])  # fmt: skip
def test_channels_first_is_channels_last_transposed_with_the_same_kernel(cls, kwargs, shape,
                                                                         backend):  # fmt: skip
    x = _x(shape)
    y_last, weights = _run(cls, kwargs, x, backend)
    x_first = np.moveaxis(x, -1, 1)
    y_first, w_first = _run(cls, {**kwargs, "data_format": "channels_first"}, x_first, backend,
                            weights)  # fmt: skip
    assert [w.shape for w in w_first] == [w.shape for w in weights]  # layout independent of it
    assert_close(np.moveaxis(y_first, 1, -1), y_last, "float64",
                 reduction=_reduction(cls, kwargs, shape[-1]))  # fmt: skip


def test_torch_native_layouts():
    torch = _torch()
    x = _x((2, 6, 5, 3))
    cases = [
        (L.Conv2D, {"filters": 4, "kernel_size": (2, 3), "groups": 1}, "kernel", (4, 3, 2, 3)),
        (L.Conv2DTranspose, {"filters": 4, "kernel_size": (2, 3)}, "kernel", (3, 4, 2, 3)),
        (L.DepthwiseConv2D, {"kernel_size": (2, 3), "depth_multiplier": 2}, "kernel",
         (6, 1, 2, 3)),
    ]  # fmt: skip
    with dn.use_backend("torch"):
        for cls, kwargs, weight, native_shape in cases:
            layer = cls(**kwargs, dtype="float64")
            layer(x)
            assert tuple(getattr(layer.native, weight).shape) == native_shape
        # A torch nn.Conv2d(C, C·m, groups=C) loaded with the native weight computes the layer.
        layer = L.DepthwiseConv2D((2, 3), depth_multiplier=2, dtype="float64")
        y = dn.to_numpy(layer(x))
        module = torch.nn.Conv2d(3, 6, (2, 3), groups=3, dtype=torch.float64)
        with torch.no_grad():
            module.weight.copy_(layer.native.kernel)
            module.bias.copy_(layer.native.bias)
            native = module(torch.as_tensor(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
    assert_close(y, native.numpy(), "float64", reduction=2 * 3 + 1)
    kernel, _ = layer.get_weights()  # canonical (kh, kw, C, m): channel c·m + q
    native_kernel = dn.to_numpy(layer.native.kernel)
    np.testing.assert_array_equal(native_kernel[1 * 2 + 1, 0], kernel[:, :, 1, 1])


# --------------------------------------------------------------------------------------------
# Initializers


@pytest.mark.parametrize(("cls", "kwargs", "shape"), [
    (L.Conv2D, {"filters": 256, "kernel_size": 3, "groups": 2}, (1, 5, 5, 16)),
    (L.Conv1D, {"filters": 256, "kernel_size": 5}, (1, 7, 12)),
    (L.Conv2DTranspose, {"filters": 256, "kernel_size": (2, 3)}, (1, 3, 3, 10)),
    (L.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 8}, (1, 5, 5, 32)),
])  # fmt: skip
def test_standard_initializer_is_torchs_default(cls, kwargs, shape):
    """``"standard"`` for kernel and bias draws torch's U(±1/√fan_in), torch's own fan_in of
    its module (transposed: weight.size(1)·k; depthwise: k), statistically."""
    torch = _torch()
    if cls is L.DepthwiseConv2D:
        init = {"depthwise_initializer": "standard", "bias_initializer": "standard"}
        module = torch.nn.Conv2d(shape[-1], shape[-1] * kwargs["depth_multiplier"], 3,
                                 groups=shape[-1])  # fmt: skip
    else:
        init = {"kernel_initializer": "standard", "bias_initializer": "standard"}
        rank = cls.rank
        ks = kwargs["kernel_size"]
        if cls is L.Conv2DTranspose:
            module = torch.nn.ConvTranspose2d(shape[-1], kwargs["filters"], ks)
        else:
            module = getattr(torch.nn, f"Conv{rank}d")(shape[-1], kwargs["filters"], ks,
                                                       groups=kwargs.get("groups", 1))  # fmt: skip
    fan_in, _ = torch.nn.init._calculate_fan_in_and_fan_out(module.weight)
    bound = 1.0 / np.sqrt(fan_in)
    # torch's own draws respect the same bound (kernel and bias).
    with torch.no_grad():
        assert float(module.weight.abs().max()) <= bound
        assert float(module.bias.abs().max()) <= bound
    dn.set_random_seed(3)
    layer = cls(**kwargs, **init)
    layer.build(shape)
    kernel, bias = layer.get_weights()
    for w in (kernel, bias):
        # drawn within ±bound and rounded to float32: rounding is monotone, so within ±fl(bound)
        assert np.abs(w).max() <= np.float32(bound)
        assert np.abs(w).max() > 0.9 * bound  # the whole range is used, not a narrower one
    # U(±b) has standard deviation b/√3: within 3% for these sample sizes (>= 2304 draws).
    assert abs(kernel.std() / (bound / np.sqrt(3)) - 1) < 0.03
    if cls is not L.DepthwiseConv2D:  # Keras's glorot fans == torch's fans for the kernel
        assert compute_fans(kernel.shape)[0] == fan_in


def test_default_initializers_are_keras():
    dn.set_random_seed(0)
    layer = L.Conv2D(64, 3)
    layer.build((None, 8, 8, 32))
    kernel, bias = layer.get_weights()
    limit = np.sqrt(6 / (9 * 32 + 9 * 64))  # glorot_uniform with Keras's conv fans
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    np.testing.assert_array_equal(bias, 0)
    sep = L.SeparableConv2D(8, 3, depth_multiplier=2)
    sep.build((None, 8, 8, 4))
    assert sep.weight_names() == ("depthwise_kernel", "pointwise_kernel", "bias")
    depthwise, pointwise, _ = sep.get_weights()
    assert np.abs(depthwise).max() <= np.sqrt(6 / (9 * 4 + 9 * 2))
    assert np.abs(pointwise).max() <= np.sqrt(6 / (8 + 8))


# --------------------------------------------------------------------------------------------
# Shapes, models


def test_functional_unknown_spatial_dims_on_both_backends():
    outputs = {}
    x = _x((2, 7, 9, 3)).astype("float32")
    for backend in BACKENDS:
        dn.models.clear_session()
        dn.set_random_seed(5)
        with dn.use_backend(backend):
            inputs = dn.Input((None, None, 3))
            h = L.Conv2D(4, 3, strides=2, padding="same", activation="tanh")(inputs)
            h = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2)(h)
            h = L.Conv2DTranspose(2, 3, strides=2, padding="same")(h)
            model = dn.Model(inputs, h)
            assert h.shape == (None, None, None, 2)
            assert [o.shape for o in model.outputs] == [(None, None, None, 2)]
            y = dn.to_numpy(model(x))
            native = dn.to_numpy(model.native(backend_module(backend).core.convert_to_tensor(x)))
            np.testing.assert_array_equal(native, y)
            outputs[backend] = y
    assert outputs["torch"].shape == (2, 8, 10, 2)  # ceil(7/2)·2, ceil(9/2)·2
    # Three layers in a chain: their sums' lengths add up (the error bound of a product of
    # matrices), K = (9·3 + 1) + (9 + 1) + (9·8 + 1).
    assert_close(outputs["torch"], outputs["tensorflow"], "float32", reduction=28 + 10 + 73)


# The three convolutions in a chain: their sums' lengths add up (the error bound of a product of
# matrices), K = (9·1 + 1) + (9·4 + 1) + (9·8 + 1).
LENET_K = 10 + 37 + 73


def _lenet(backend):
    dn.models.clear_session()
    dn.set_random_seed(11)
    with dn.use_backend(backend):
        return dn.Sequential([
            dn.Input((12, 12, 1)),
            L.Conv2D(4, 3, strides=2, activation="relu"),
            L.Conv2D(8, 3, strides=2, padding="same", activation="relu"),
            L.Conv2D(10, 3),
        ], name="lenet")  # fmt: skip


def test_lenet_style_sequential_same_output_on_both_backends_and_keras_counts():
    keras = _keras()
    x = _x((3, 12, 12, 1)).astype("float32")
    models = {b: _lenet(b) for b in BACKENDS}
    for a, b in zip(models["torch"].get_weights(), models["tensorflow"].get_weights(),
                    strict=True):  # fmt: skip
        np.testing.assert_array_equal(a, b)
    y = {b: dn.to_numpy(m(x)) for b, m in models.items()}
    assert y["torch"].shape == (3, 1, 1, 10)
    assert_close(y["torch"], y["tensorflow"], "float32", reduction=LENET_K)
    # The native torch / Keras models run the same network.
    torch = _torch()
    native_torch = models["torch"].native(torch.as_tensor(x)).detach().numpy()
    np.testing.assert_array_equal(native_torch, y["torch"])
    np.testing.assert_array_equal(np.asarray(models["tensorflow"].native(x)), y["tensorflow"])
    # The same network in Keras: the same summary, count lines included.
    names = [layer.name for layer in models["torch"].layers]
    k_model = keras.Sequential([
        keras.Input((12, 12, 1)),
        keras.layers.Conv2D(4, 3, strides=2, activation="relu", name=names[0]),
        keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu", name=names[1]),
        keras.layers.Conv2D(10, 3, name=names[2]),
    ], name="lenet")  # fmt: skip
    captured, ours = [], []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    models["torch"].summary(print_fn=ours.append)
    counts = [line for line in captured[0].splitlines() if "params:" in line]
    assert counts == [line for line in ours[0].splitlines() if "params:" in line]
    total = (9 * 1 * 4 + 4) + (9 * 4 * 8 + 8) + (9 * 8 * 10 + 10)
    assert any(line.startswith(f" Total params: {total:,} (") for line in counts), counts
    assert ours[0] == captured[0]
    assert models["tensorflow"].count_params() == k_model.count_params() == total


def test_training_step_agrees_across_backends():
    x = _x((4, 12, 12, 1)).astype("float32")
    target = _x((4, 1, 1, 10), seed=3).astype("float32")
    losses, weights = {}, {}
    for backend in BACKENDS:
        model = _lenet(backend)
        model.compile(optimizer="sgd", loss="mse")
        losses[backend] = model.train_step(x, target)["loss"]
        weights[backend] = model.get_weights()
    # The loss: the forward chain, then the mean of 4·10 squared errors. The step's weights:
    # that, then the first kernel's gradient, a sum over the batch × 5·5 output positions.
    assert_close(losses["torch"], losses["tensorflow"], "float32", reduction=LENET_K + 40)
    for a, b in zip(weights["torch"], weights["tensorflow"], strict=True):
        assert_close(a, b, "float32", reduction=LENET_K + 40 + 4 * 5 * 5)


# --------------------------------------------------------------------------------------------
# Errors: before any framework runs, the same message on both backends


@pytest.mark.parametrize(("cls", "kwargs"), [
    (L.Conv1D, {"filters": 2, "kernel_size": 3}),
    (L.Conv2D, {"filters": 2, "kernel_size": 3}),
    (L.Conv3D, {"filters": 2, "kernel_size": 3}),
    (L.Conv1DTranspose, {"filters": 2, "kernel_size": 3}),
    (L.Conv2DTranspose, {"filters": 2, "kernel_size": 3}),
    (L.DepthwiseConv2D, {"kernel_size": 3}),
    (L.SeparableConv2D, {"filters": 2, "kernel_size": 3}),
])  # fmt: skip
def test_strides_with_dilation_refused_naming_both(cls, kwargs):
    with pytest.raises(ValueError, match=r"strides=\(2,.*dilation_rate=\(3,.*strides > 1 "
                                         r"together with dilation_rate > 1"):  # fmt: skip
        cls(**kwargs, strides=2, dilation_rate=3)
    cls(**kwargs, strides=(2,) + (1,) * (cls.rank - 1), dilation_rate=1)  # each alone is fine
    cls(**kwargs, strides=1, dilation_rate=3)


def test_changed_channel_count_after_build_is_refused_alike():
    messages = {}
    for backend in BACKENDS:
        with dn.use_backend(backend):
            layer = L.Conv2D(2, 3, name="conv")
            layer(_x((1, 5, 5, 3)))
            with pytest.raises(ValueError, match=r"was built for inputs of shape") as info:
                layer(_x((1, 5, 5, 4)))
            messages[backend] = str(info.value)
            layer(_x((2, 7, 6, 3)))  # other spatial sizes and batch are fine
    assert messages["torch"] == messages["tensorflow"]
    assert "(None, 5, 5, 3)" in messages["torch"] and "axis 3" in messages["torch"]


def test_unknown_channels_are_refused():
    with pytest.raises(ValueError, match=r"expects a known channel dimension \(axis 1"):
        L.Conv2D(2, 3, data_format="channels_first")(dn.Input((None, 5, 5)))


def test_failed_construction_consumes_no_seed_and_no_name():
    dn.models.clear_session()
    dn.set_random_seed(1)
    with pytest.raises(ValueError, match="groups"):
        L.Conv2D(3, 3, groups=2)
    with pytest.raises(ValueError, match="output_padding"):
        L.Conv2DTranspose(3, 3, strides=2, output_padding=(1, 2))
    with pytest.raises(TypeError, match="depth_multiplier"):
        L.DepthwiseConv2D(3, depth_multiplier=1.5)
    layer = L.Conv2D(3, 3)
    dn.models.clear_session()
    dn.set_random_seed(1)
    fresh = L.Conv2D(3, 3)
    assert layer.name == fresh.name == "conv2d"
    assert layer.get_config() == fresh.get_config()  # same initializer seeds


@pytest.mark.parametrize(("cls", "kwargs"), [
    (L.Conv1D, {"filters": 4, "kernel_size": 3, "padding": "causal", "groups": 2}),
    (L.Conv3D, {"filters": 2, "kernel_size": (1, 2, 3), "strides": (1, 2, 1),
                "data_format": "channels_first", "activation": "relu"}),
    (L.Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1,
                         "use_bias": False, "kernel_initializer": "standard"}),
    (L.Conv1DTranspose, {"filters": 2, "kernel_size": 3, "dilation_rate": 2}),
    (L.DepthwiseConv2D, {"kernel_size": 3, "depth_multiplier": 3, "padding": "same",
                         "depthwise_initializer": "he_normal"}),
    (L.SeparableConv2D, {"filters": 2, "kernel_size": (3, 1), "depth_multiplier": 2,
                         "pointwise_initializer": "zeros", "bias_initializer": "ones"}),
])  # fmt: skip
def test_config_round_trip_keeps_every_argument(cls, kwargs):
    layer = cls(**kwargs)
    config = layer.get_config()
    clone = dn.layers.get(dn.layers.serialize(layer))
    assert clone.get_config() == config
    for key, value in kwargs.items():
        if not key.endswith("initializer"):
            expected = value
            if key in ("kernel_size", "strides", "dilation_rate", "output_padding"):
                expected = (value,) * cls.rank if isinstance(value, int) else tuple(value)
            assert config[key] == expected, key
    x = _x((1, *(6,) * cls.rank, 4) if kwargs.get("data_format") is None
           else (1, 4, *(6,) * cls.rank))  # fmt: skip
    layer.build(x.shape)
    clone.build(x.shape)
    for a, b in zip(layer.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)  # the seeds travel with the config


def test_graph_building_imports_no_framework():
    code = (
        "import sys, dualnet as dn\n"
        "x = dn.Input(shape=(None, 8, 3))\n"
        "y = dn.layers.Conv2D(4, 3, strides=2, padding='same')(x)\n"
        "y = dn.layers.SeparableConv2D(2, 3, depth_multiplier=2)(y)\n"
        "y = dn.layers.Conv2DTranspose(3, 3, strides=2, padding='same')(y)\n"
        "assert y.shape == (None, None, 4, 3), y.shape\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("cls", "kwargs", "shape"), [
    (L.Conv2DTranspose, {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same"},
     (2, 5, 4, 3)),
    (L.Conv1DTranspose, {"filters": 2, "kernel_size": 3, "dilation_rate": 2}, (2, 6, 3)),
    (L.DepthwiseConv2D, {"kernel_size": 3, "strides": (1, 2), "padding": "same"},
     (2, 5, 7, 3)),
    (L.Conv2D, {"filters": 4, "kernel_size": 3, "groups": 2, "padding": "same",
                "data_format": "channels_first"}, (2, 4, 5, 6)),
])  # fmt: skip
def test_keras_layer_traced_with_unknown_sizes_matches_eager(cls, kwargs, shape):
    """Inside a ``tf.function`` whose input sizes are unknown (None), the shape arithmetic runs
    on symbolic sizes and gives the eager result (float64: the CPU fallbacks' path)."""
    backend_module("tensorflow")
    import tensorflow as tf

    x = _x(shape)
    with dn.use_backend("tensorflow"):
        layer = cls(**kwargs, dtype="float64")
        layer.build(shape)
        layer.set_weights(_weights(layer))
        eager = dn.to_numpy(layer(x))
        spec = tf.TensorSpec([None] * len(shape[:-1]) + [shape[-1]] if kwargs.get("data_format")
                             is None else [None, shape[1], None, None], tf.float64)  # fmt: skip
        traced = tf.function(lambda t: layer.native(t), input_signature=[spec])
        # the same kernels on the same data, only the sizes unknown while tracing: the same bits
        np.testing.assert_array_equal(traced(tf.constant(x)).numpy(), eager)
