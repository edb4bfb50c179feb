"""Reshaping layers beyond the generic catalogue tests: the flatten order and what it does to a
following Dense, Keras's own Flatten(channels_first), F.pad's order, half-pixel bilinear and
TensorFlow's float32 resize, shapes in the functional API, and a small network on both backends
against the composed references and Keras's own summary."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch
from tolerances import assert_close, assert_within_gamma

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.reference.layers import pooling as RP
from dualnet.reference.layers import reshaping as R

RNG = np.random.default_rng(4321)
FEATURES = RNG.standard_normal((2, 3, 4, 2))  # a conv output: batch 2, H=3, W=4, C=2 (NHWC)
IMAGE = RNG.standard_normal((2, 5, 6, 2))


def _nchw(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def _numpy(y):
    return dn.to_numpy(y).astype(np.float64)


# -- Flatten and the Dense after it ----------------------------------------------------------


def _flatten_dense(data_format, shape, dense_kernel, head=None):
    """Input -> (Flatten or another head) -> Dense without bias, float64."""
    inputs = dn.Input(shape, dtype="float64")
    flat = (head or dn.layers.Flatten(data_format=data_format, dtype="float64"))(inputs)
    dense = dn.layers.Dense(dense_kernel.shape[1], use_bias=False, dtype="float64")
    model = dn.Model(inputs, dense(flat))
    dense.set_weights([dense_kernel])
    return model


def test_flatten_order_decides_the_dense_kernel_rows(backend):
    """A torch model flattens NCHW features in C, H, W order; its ``nn.Linear`` weight cannot be
    loaded as is after dualnet's (Keras's) H, W, C Flatten: the rows must be reordered."""
    c, h, w, units = 2, 3, 4, 5
    weight = RNG.standard_normal((units, c * h * w))  # torch nn.Linear weight, C·H·W inputs
    torch_out = _nchw(FEATURES).reshape(2, -1) @ weight.T  # torch: x.flatten(1) @ W.T

    naive = _flatten_dense("channels_last", (h, w, c), weight.T)
    assert np.abs(_numpy(naive(FEATURES)) - torch_out).max() > 0.5

    reordered = weight.T.reshape(c, h, w, units).transpose(1, 2, 0, 3).reshape(-1, units)
    ported = _flatten_dense("channels_last", (h, w, c), reordered)
    assert_close(_numpy(ported(FEATURES)), torch_out, "float64", reduction=c * h * w)

    # channels_first data does not restore torch's order: Keras's Flatten moves channels last.
    cf = _flatten_dense("channels_first", (c, h, w), weight.T)
    assert np.abs(_numpy(cf(_nchw(FEATURES))) - torch_out).max() > 0.5
    assert_close(
        _numpy(_flatten_dense("channels_first", (c, h, w), reordered)(_nchw(FEATURES))),
        torch_out,
        "float64",
        reduction=c * h * w,
    )
    # torch's order from channels_first data is a plain reshape.
    plain = _flatten_dense(
        None, (c, h, w), weight.T, head=dn.layers.Reshape((-1,), dtype="float64")
    )
    assert_close(_numpy(plain(_nchw(FEATURES))), torch_out, "float64", reduction=c * h * w)


def test_flatten_channels_first_does_what_keras_does(backend):
    keras = _keras()
    x = _nchw(FEATURES)
    native = keras.layers.Flatten(data_format="channels_first", dtype="float64")(x)
    got = _numpy(dn.layers.Flatten(data_format="channels_first", dtype="float64")(x))
    np.testing.assert_array_equal(got, np.asarray(native))
    np.testing.assert_array_equal(got, FEATURES.reshape(2, -1))  # = channels_last flatten
    assert not np.array_equal(got, x.reshape(2, -1))  # not torch's x.flatten(1)


def test_flatten_rank_one_and_unknown_dims(backend):
    assert _numpy(dn.layers.Flatten()(np.arange(3.0))).shape == (3, 1)  # as Keras
    assert dn.layers.Flatten()(dn.Input((None, 4, 2))).shape == (None, None)
    assert dn.layers.Flatten()(dn.Input((3, 4, 2))).shape == (None, 24)


# -- Reshape, Permute, RepeatVector ----------------------------------------------------------


def test_reshape_and_permute_exclude_the_batch(backend):
    torch = _torch()
    x = torch.as_tensor(FEATURES)
    got = _numpy(dn.layers.Permute((3, 1, 2), dtype="float64")(FEATURES))
    np.testing.assert_array_equal(got, x.permute(0, 3, 1, 2).numpy())  # 1-based, batch excluded
    got = _numpy(dn.layers.Reshape((4, -1), dtype="float64")(FEATURES))
    np.testing.assert_array_equal(got, x.reshape(2, 4, -1).numpy())


def test_functional_shapes_with_unknown_dims():
    x = dn.Input((None, 4, 2))
    assert dn.layers.Reshape((-1, 2))(x).shape == (None, None, 2)
    assert dn.layers.Reshape((8, -1))(dn.Input((4, 2, 2))).shape == (None, 8, 2)
    assert dn.layers.Permute((2, 3, 1))(x).shape == (None, 4, 2, None)
    assert dn.layers.ZeroPadding2D(((1, 2), (0, 3)))(x).shape == (None, None, 7, 2)
    assert dn.layers.Cropping2D(((0, 0), (1, 2)))(x).shape == (None, None, 1, 2)
    assert dn.layers.UpSampling2D((2, 3))(x).shape == (None, None, 12, 2)
    seq = dn.Input((None, 3))
    assert dn.layers.Cropping1D((1, 1))(seq).shape == (None, None, 3)
    assert dn.layers.UpSampling1D(3)(seq).shape == (None, None, 3)
    assert dn.layers.ZeroPadding1D(2)(seq).shape == (None, None, 3)
    assert dn.layers.RepeatVector(4)(dn.Input((3,))).shape == (None, 4, 3)


def test_reshape_mismatch_is_refused_while_building_the_graph_and_on_data(backend):
    with pytest.raises(ValueError, match=r"expects 25 elements per sample for target_shape"):
        dn.layers.Reshape((5, 5))(dn.Input((4, 3, 2)))
    layer = dn.layers.Reshape((-1, 2))
    layer(dn.Input((None, 3)))  # the size is unknown: checked on data
    with pytest.raises(ValueError, match=r"a multiple of 2 elements per sample.*\(2, 3, 3\)"):
        layer(np.zeros((2, 3, 3)))


def test_repeat_vector_gradient_sums_the_copies(backend):
    b = backend_module(backend)
    layer = dn.layers.RepeatVector(3, dtype="float64")
    x = b.core.convert_to_tensor(RNG.standard_normal((2, 4)))
    cotangent = RNG.standard_normal((2, 3, 4))
    _, (grad,) = b.core.vjp(lambda t: layer(t), [x], [0], cotangent)
    assert_close(dn.to_numpy(grad), cotangent.sum(axis=1), "float64", reduction=3)  # 3 copies


# -- padding and cropping --------------------------------------------------------------------


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_zero_padding2d_is_f_pad_left_right_top_bottom(data_format, backend):
    torch = _torch()
    x = IMAGE if data_format == "channels_last" else _nchw(IMAGE)
    (top, bottom), (left, right) = (1, 2), (0, 3)
    got = _numpy(dn.layers.ZeroPadding2D(((top, bottom), (left, right)), data_format,
                                         dtype="float64")(x))  # fmt: skip
    want = torch.nn.functional.pad(torch.as_tensor(_nchw(IMAGE)), (left, right, top, bottom))
    if data_format == "channels_last":
        want = want.permute(0, 2, 3, 1)
    np.testing.assert_array_equal(got, want.numpy())
    # Keras's order read as F.pad's (rows first) pads other sides: same size, other values.
    swapped = torch.nn.functional.pad(torch.as_tensor(_nchw(IMAGE)), (top, bottom, left, right))
    assert swapped.shape != want.shape or not np.array_equal(swapped.numpy(), want.numpy())


def test_cropping_with_a_zero_end_keeps_the_end(backend):
    got = _numpy(dn.layers.Cropping2D(((1, 0), (0, 2)), dtype="float64")(IMAGE))
    np.testing.assert_array_equal(got, IMAGE[:, 1:, :4])


# -- upsampling ------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(2, 2), (3, 2)])
def test_bilinear_is_torch_align_corners_false(size, backend, dtype):
    torch = _torch()
    x = IMAGE[:, :3, :4]
    layer = dn.layers.UpSampling2D(size, interpolation="bilinear", dtype=dtype)
    got = _numpy(layer(x))
    reference = R.up_sampling2d(x, size=size, interpolation="bilinear")
    assert_close(got, reference, dtype, reduction=4)  # K: a weighted sum of 4 pixels
    out = (3 * size[0], 4 * size[1])
    half_pixel = torch.nn.functional.interpolate(torch.as_tensor(_nchw(x)), size=out,
                                                 mode="bilinear", align_corners=False)  # fmt: skip
    assert_close(np.moveaxis(half_pixel.numpy(), 1, -1), reference, "float64", reduction=4)
    corners = torch.nn.functional.interpolate(torch.as_tensor(_nchw(x)), size=out,
                                              mode="bilinear", align_corners=True)  # fmt: skip
    assert np.abs(np.moveaxis(corners.numpy(), 1, -1) - reference).max() > 0.05


def test_bilinear_float64_is_exact_where_keras_rounds_to_float32(backend):
    keras = _keras()
    x = IMAGE[:, :3, :4]
    reference = R.up_sampling2d(x, size=(3, 2), interpolation="bilinear")
    native = keras.layers.UpSampling2D((3, 2), interpolation="bilinear", dtype="float64")(x)
    assert np.abs(np.asarray(native) - reference).max() > 1e-9  # TF's kernel: float32 inside
    got = _numpy(dn.layers.UpSampling2D((3, 2), interpolation="bilinear", dtype="float64")(x))
    # Higham's bound for float64 arithmetic throughout, |got - exact| <= γ_K·Σwᵢ|xᵢ| (the
    # reference on |x|): two 1-D interpolations in a chain, each with 4 roundings (the
    # coordinate, the weight, the 2-term sum), K = 8. The policy's float64 default (rtol 1e-7)
    # would also pass TF's float32 kernel, ~1e-8 off: the claim is float64 accuracy.
    magnitude = R.up_sampling2d(np.abs(x), size=(3, 2), interpolation="bilinear")
    assert_within_gamma(got, reference, magnitude, "float64", reduction=8)


def test_nearest_upsampling_repeats_pixels(backend):
    got = _numpy(dn.layers.UpSampling2D((2, 3), data_format="channels_first",
                                        dtype="float64")(_nchw(IMAGE)))  # fmt: skip
    np.testing.assert_array_equal(got, np.repeat(np.repeat(_nchw(IMAGE), 2, axis=2), 3, axis=3))
    got = _numpy(dn.layers.UpSampling1D(3, dtype="float64")(IMAGE[:, 0]))
    np.testing.assert_array_equal(got, np.repeat(IMAGE[:, 0], 3, axis=1))  # not a tile


# -- a network on both backends --------------------------------------------------------------


def _network(dtype="float32"):
    inputs = dn.Input((5, 6, 2), name="image", dtype=dtype)
    h = dn.layers.ZeroPadding2D(((1, 0), (0, 2)), name="pad", dtype=dtype)(inputs)
    h = dn.layers.MaxPooling2D(3, strides=2, padding="same", name="pool", dtype=dtype)(h)
    out = dn.layers.Flatten(name="flat", dtype=dtype)(h)
    return dn.Model(inputs, out, name="pad_pool_flat")


def _network_reference(x):
    h = R.zero_padding2d(x, padding=((1, 0), (0, 2)))
    h = RP.max_pooling2d(h, pool_size=3, strides=2, padding="same")
    return R.flatten(h)


def test_functional_network_equals_composed_references(backend):
    model = _network("float64")
    want = _network_reference(IMAGE)
    assert want.shape == (2, 3 * 4 * 2)
    np.testing.assert_array_equal(_numpy(model(IMAGE)), want)
    native = model.native
    if backend == "torch":
        out = native(_torch().as_tensor(IMAGE)).detach().numpy()
    else:
        out = np.asarray(native(IMAGE))
    np.testing.assert_array_equal(out, want)
    seq = dn.Sequential([dn.Input((5, 6, 2), dtype="float64"),
                         dn.layers.ZeroPadding2D(((1, 0), (0, 2)), dtype="float64"),
                         dn.layers.MaxPooling2D(3, 2, "same", dtype="float64"),
                         dn.layers.Flatten(dtype="float64")])  # fmt: skip
    np.testing.assert_array_equal(_numpy(seq(IMAGE)), want)


def test_network_summary_shapes_equal_keras(backend):
    keras = _keras()
    model = _network()
    k_in = keras.Input((5, 6, 2), name="image")
    k = keras.layers.ZeroPadding2D(((1, 0), (0, 2)), name="pad")(k_in)
    k = keras.layers.MaxPooling2D(3, strides=2, padding="same", name="pool")(k)
    k_model = keras.Model(k_in, keras.layers.Flatten(name="flat")(k), name="pad_pool_flat")
    shapes = [layer.output_shape for layer in model.layers[1:]]
    assert shapes == [tuple(layer.output.shape) for layer in k_model.layers[1:]]
    assert shapes == [(None, 6, 8, 2), (None, 3, 4, 2), (None, 24)]
    captured, ours = [], []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    model.summary(print_fn=ours.append)
    assert ours == captured


def test_reshaping_layers_in_a_sequential_model(backend):
    layers = [dn.layers.Cropping1D((1, 2), dtype="float64"),
              dn.layers.UpSampling1D(2, dtype="float64"),
              dn.layers.ZeroPadding1D((2, 0), dtype="float64"),
              dn.layers.Permute((2, 1), dtype="float64"),
              dn.layers.Flatten(dtype="float64"),
              dn.layers.RepeatVector(2, dtype="float64")]  # fmt: skip
    model = dn.Sequential([dn.Input((6, 2), dtype="float64"), *layers])
    x = IMAGE[:, 0]
    h = R.zero_padding1d(R.up_sampling1d(R.cropping1d(x, cropping=(1, 2)), size=2),
                         padding=(2, 0))  # fmt: skip
    want = R.repeat_vector(R.flatten(R.permute(h, dims=(2, 1))), n=2)
    np.testing.assert_array_equal(_numpy(model(x)), want)
    assert model.count_params() == 0
