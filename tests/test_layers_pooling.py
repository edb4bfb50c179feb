"""Pooling layers beyond the generic catalogue tests: each torch/Keras divergence made visible
(torch's own default gives another answer, dualnet gives the reference's on both backends),
shapes in the functional API, models on both backends, channels_first, the dtype workarounds."""

from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import tf as _tf
from frameworks import torch as _torch
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.reference.layers import pooling as R

RNG = np.random.default_rng(1234)
X = RNG.standard_normal((2, 5, 6, 2))  # batch 2, 5x6 maps, 2 channels (channels_last)
X_ODD = RNG.standard_normal((2, 5, 7, 2))  # 5 and 7: "same" with k=3, s=2 pads 1+1 on both
NEGATIVE = -RNG.uniform(0.5, 3.0, (2, 5, 6, 2))


def _nchw(x):
    return np.ascontiguousarray(np.moveaxis(x, -1, 1))


def _nhwc(y):
    return np.moveaxis(y, 1, -1)


def _config(layer):
    return {k: v for k, v in layer.get_config().items() if k not in ("name", "dtype")}


def _run(layer, x):
    return dn.to_numpy(layer(x)).astype(np.float64)


def _rounded(x, dtype):
    """``x`` as the layer sees it: rounded to ``dtype`` (a max pool then selects exactly)."""
    return x.astype(dtype).astype(np.float64)


# -- average pooling: the divisor ------------------------------------------------------------


def test_average_same_divides_by_real_positions_not_torchs_default(backend, dtype):
    """5x7 with k=3, s=2 pads one row/column on each side: torch's ``padding=1`` builds the
    same windows, but its default ``count_include_pad=True`` divides border windows by 9."""
    torch = _torch()
    layer = dn.layers.AveragePooling2D(3, strides=2, padding="same", dtype=dtype)
    got = _run(layer, X_ODD)
    expected = R.average_pooling2d(X_ODD, pool_size=3, strides=2, padding="same")
    assert_close(got, expected, dtype, reduction=9)  # K: a 3x3 window's sum
    native = torch.nn.functional.avg_pool2d(torch.as_tensor(_nchw(X_ODD)), 3, 2, padding=1)
    torch_default = _nhwc(native.numpy())
    assert torch_default.shape == expected.shape  # same shapes: the trap gives no error
    gap = np.abs(torch_default - expected)
    assert gap[:, 0, 0].min() > 0  # the corner window: 4 real positions, torch divides by 9
    assert gap.max() > 0.1
    # interior windows agree
    assert_close(torch_default[:, 1:-1, 1:-1], expected[:, 1:-1, 1:-1], "float64", reduction=9)


def test_torch_default_divisor_is_explicit_zero_padding_then_valid(backend):
    """The documented way to get torch's count_include_pad=True: ZeroPadding2D then "valid"."""
    torch = _torch()
    model = dn.Sequential([dn.Input((5, 7, 2), dtype="float64"),
                           dn.layers.ZeroPadding2D(1, dtype="float64"),
                           dn.layers.AveragePooling2D(3, 2, dtype="float64")])  # fmt: skip
    native = torch.nn.functional.avg_pool2d(torch.as_tensor(_nchw(X_ODD)), 3, 2, padding=1)
    assert_close(dn.to_numpy(model(X_ODD)), _nhwc(native.numpy()), "float64", reduction=9)


def test_same_padding_puts_the_odd_position_at_the_end(backend):
    """6 columns with k=3, s=2 need one padded column: TensorFlow adds it at the end. torch's
    symmetric ``padding=1`` gives the same output shape with shifted windows."""
    torch = _torch()
    layer = dn.layers.MaxPooling2D(3, strides=2, padding="same", dtype="float64")
    got = _run(layer, X)
    expected = R.max_pooling2d(X, pool_size=3, strides=2, padding="same")
    np.testing.assert_array_equal(got, expected)
    shifted = torch.nn.functional.max_pool2d(torch.as_tensor(_nchw(X)), 3, 2, padding=1)
    shifted = _nhwc(shifted.numpy())
    assert shifted.shape == expected.shape
    assert np.abs(shifted - expected).max() > 0.1
    # Rows (5 = 1 + 5 + 1, symmetric) agree where the columns do: only column windows moved.
    assert not np.array_equal(shifted[:, :, 0], expected[:, :, 0])


# -- max pooling: padding never wins ---------------------------------------------------------


def test_max_same_padding_never_wins_over_negative_borders(backend, dtype):
    layer = dn.layers.MaxPooling2D(3, strides=2, padding="same", dtype=dtype)
    got = _run(layer, NEGATIVE)
    expected = R.max_pooling2d(NEGATIVE, pool_size=3, strides=2, padding="same")
    np.testing.assert_array_equal(got, R.max_pooling2d(_rounded(NEGATIVE, dtype), pool_size=3,
                                                       strides=2, padding="same"))  # fmt: skip
    assert got.max() < 0
    # A converter that pads with zeros (TF's amounts, 1+1 rows and 0+1 columns) then pools
    # "valid" returns 0 in every border window.
    zero_padded = R.max_pooling2d(np.pad(NEGATIVE, ((0, 0), (1, 1), (0, 1), (0, 0))),
                                  pool_size=3, strides=2)  # fmt: skip
    assert zero_padded.shape == expected.shape
    assert (zero_padded[:, 0] == 0).all() and (zero_padded[:, :, -1] == 0).all()


def test_max_pooling_gradient_goes_to_the_window_argmax(backend):
    """Inputs without ties: the gradient of the sum is 1 at each window's argmax, on the
    native framework's autodiff."""
    b = backend_module(backend)
    layer = dn.layers.MaxPooling2D(3, strides=2, padding="same", dtype="float64")
    x = b.core.convert_to_tensor(NEGATIVE)
    out = layer(x)
    ones = np.ones(tuple(out.shape))
    _, (grad,) = b.core.vjp(lambda t: layer(t), [x], [0], ones)
    grad = dn.to_numpy(grad)
    assert grad.sum() == out.shape[0] * out.shape[1] * out.shape[2] * out.shape[3]
    winners = np.isin(NEGATIVE, dn.to_numpy(out))
    assert set(np.unique(grad[~winners])) == {0.0}


# -- strides, channels_first, shapes ---------------------------------------------------------


def test_strides_none_means_pool_size(backend):
    layer = dn.layers.MaxPooling2D()
    assert layer.pool_size == (2, 2) and layer.strides == (2, 2)
    assert dn.layers.AveragePooling1D(3).strides == (3,)
    assert dn.layers.MaxPooling3D(pool_size=(1, 2, 3)).strides == (1, 2, 3)
    y = _run(layer, X)
    assert y.shape == (2, 2, 3, 2)  # the 5th row is dropped ("valid")
    np.testing.assert_array_equal(y, R.max_pooling2d(_rounded(X, "float32"), pool_size=2,
                                                     strides=2))  # fmt: skip
    assert layer.get_config()["strides"] == (2, 2)


def test_average_pooling_needs_a_pool_size_as_in_keras():
    with pytest.raises(TypeError, match="pool_size"):
        dn.layers.AveragePooling2D()


@pytest.mark.parametrize(
    ("cls", "kwargs", "reduction"),
    [(dn.layers.MaxPooling2D, {"pool_size": 3, "strides": 2, "padding": "same"}, None),
     (dn.layers.AveragePooling2D, {"pool_size": (3, 2), "strides": (2, 1), "padding": "same"},
      6),
     (dn.layers.AveragePooling2D, {"pool_size": 2}, 4),
     (dn.layers.GlobalMaxPooling2D, {"keepdims": True}, None),
     (dn.layers.GlobalAveragePooling2D, {}, 5 * 6)],
    ids=["max-same", "avg-same", "avg-valid", "global-max", "global-avg"],
)  # fmt: skip
def test_channels_first_is_channels_last_transposed(cls, kwargs, reduction, backend, dtype):
    """``reduction``: the window's size for a mean (None: a max selects, exactly)."""
    last = _run(cls(**kwargs, dtype=dtype), X)
    first = _run(cls(**kwargs, data_format="channels_first", dtype=dtype), _nchw(X))
    if first.ndim == 4:
        first = _nhwc(first)
    if reduction is None:
        np.testing.assert_array_equal(first, last)
    else:
        assert_close(first, last, dtype, reduction=reduction)


def test_functional_shapes_keep_unknown_dims():
    x = dn.Input((None, None, 3))
    assert dn.layers.MaxPooling2D(3, 2, "same")(x).shape == (None, None, None, 3)
    assert dn.layers.GlobalAveragePooling2D()(x).shape == (None, 3)
    assert dn.layers.GlobalMaxPooling2D(keepdims=True)(x).shape == (None, 1, 1, 3)
    y = dn.Input((5, None, 2))
    assert dn.layers.AveragePooling2D((2, 3), (1, 2))(y).shape == (None, 4, None, 2)
    z = dn.Input((2, 7))  # channels_first 1-D
    pooled = dn.layers.AveragePooling1D(3, 2, "same", data_format="channels_first")(z)
    assert pooled.shape == (None, 2, 4)


def test_valid_pool_larger_than_input_is_refused_while_building_the_graph():
    with pytest.raises(ValueError, match=r"pool_size=\(3, 3\) with padding='valid'"):
        dn.layers.MaxPooling2D(3)(dn.Input((2, 6, 1)))
    # "same" pads instead: one output position
    same = dn.layers.MaxPooling2D(3, padding="same")(dn.Input((2, 6, 1)))
    assert same.shape == (None, 1, 2, 1)


def test_a_built_pooling_layer_takes_other_sizes(backend):
    """No weights: like Keras's, a pooling layer pools maps of any size once built."""
    layer = dn.layers.AveragePooling2D(3, 2, "same", dtype="float64")
    for x in (X, X_ODD):
        want = R.average_pooling2d(x, pool_size=3, strides=2, padding="same")
        assert_close(_run(layer, x), want, "float64", reduction=9)


# -- models on both backends -----------------------------------------------------------------


def test_pooling_in_sequential_and_functional_models(backend):
    layers = [dn.layers.MaxPooling2D(3, 2, "same", dtype="float64"),
              dn.layers.AveragePooling2D(2, 1, dtype="float64"),
              dn.layers.GlobalMaxPooling2D(dtype="float64")]  # fmt: skip
    seq = dn.Sequential([dn.Input((5, 6, 2), dtype="float64"), *layers])
    inputs = dn.Input((5, 6, 2), dtype="float64")
    h = dn.layers.AveragePooling2D(3, 2, "same", dtype="float64")(inputs)
    functional = dn.Model(inputs, dn.layers.GlobalAveragePooling2D(dtype="float64")(h))
    h = R.max_pooling2d(X, pool_size=3, strides=2, padding="same")
    want_seq = R.global_max_pooling2d(R.average_pooling2d(h, pool_size=2, strides=1))
    want_fun = R.global_average_pooling2d(R.average_pooling2d(X, pool_size=3, strides=2,
                                                              padding="same"))  # fmt: skip
    # K: the means' lengths in a chain: 2x2 windows (seq); 3x3 windows, then the 3x3 map (fun)
    for model, want, k in ((seq, want_seq, 4), (functional, want_fun, 9 + 9)):
        assert_close(dn.to_numpy(model(X)), want, "float64", reduction=k)
        assert model.count_params() == 0
        native = model.native  # the framework's own model runs the layers
        if backend == "torch":
            torch = _torch()
            out = native(torch.as_tensor(X)).detach().numpy()
        else:
            out = np.asarray(native(X))
        assert_close(out, want, "float64", reduction=k)


def test_summary_shapes_equal_keras(backend):
    keras = _keras()
    inputs = dn.Input((5, 6, 2), name="image")
    h = dn.layers.MaxPooling2D(3, 2, "same", name="max")(inputs)
    h = dn.layers.AveragePooling2D(2, 1, "same", data_format="channels_first", name="avg")(h)
    out = dn.layers.GlobalAveragePooling2D(keepdims=True, name="gap")(h)
    model = dn.Model(inputs, out, name="pools")
    k_in = keras.Input((5, 6, 2), name="image")
    k = keras.layers.MaxPooling2D(3, 2, "same", name="max")(k_in)
    k = keras.layers.AveragePooling2D(2, 1, "same", data_format="channels_first", name="avg")(k)
    k_out = keras.layers.GlobalAveragePooling2D(keepdims=True, name="gap")(k)
    k_model = keras.Model(k_in, k_out, name="pools")
    dn_shapes = [layer.output_shape for layer in model.layers[1:]]
    assert dn_shapes == [tuple(layer.output.shape) for layer in k_model.layers[1:]]
    captured, ours = [], []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    model.summary(print_fn=ours.append)
    assert ours == captured


# -- dtype workarounds -----------------------------------------------------------------------


def test_half_average_is_taken_in_float32_and_rounded_once(backend):
    """TensorFlow's own float16 AvgPool accumulates in half precision; dualnet averages in
    float32 and rounds once, on both backends, which gives the correctly rounded mean here."""
    tf = _tf()
    x16 = (100 * X).astype(np.float16)
    exact = R.average_pooling2d(x16.astype(np.float64), pool_size=3, strides=2, padding="same")
    rounded = exact.astype(np.float16)
    got = dn.to_numpy(dn.layers.AveragePooling2D(3, 2, "same", dtype="float16")(x16))
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, rounded)
    native = tf.nn.avg_pool(tf.constant(x16), 3, 2, "SAME").numpy()
    assert (native != rounded).sum() > 0


def test_3d_pooling_in_float64_and_float16_which_tensorflow_cpu_lacks(backend):
    tf = _tf()
    x = RNG.standard_normal((2, 3, 4, 3, 2))
    with pytest.raises((tf.errors.InvalidArgumentError, tf.errors.NotFoundError)):
        tf.nn.max_pool3d(tf.constant(x), 2, 2, "SAME", "NDHWC")  # no float64 kernel
    for cls, ref in ((dn.layers.MaxPooling3D, R.max_pooling3d),
                     (dn.layers.AveragePooling3D, R.average_pooling3d)):  # fmt: skip
        got = _run(cls(2, padding="same", dtype="float64"), x)
        half = _run(cls(2, padding="same", dtype="float16"), x)
        expected = ref(_rounded(x, "float16"), pool_size=2, padding="same").astype(np.float16)
        if cls is dn.layers.MaxPooling3D:  # a max selects: exact in every dtype
            np.testing.assert_array_equal(got, ref(x, pool_size=2, padding="same"))
            np.testing.assert_array_equal(half, expected)
        else:
            assert_close(got, ref(x, pool_size=2, padding="same"), "float64", reduction=8)
            # summed in float32 and rounded once to float16: one float16 rounding, K = 1
            assert_close(half, expected, "float16")


def test_config_round_trip_keeps_resolved_strides():
    layer = dn.layers.AveragePooling2D((2, 3), padding="SAME", data_format="channels_first")
    config = layer.get_config()
    assert config["strides"] == (2, 3) and config["padding"] == "same"
    clone = dn.layers.AveragePooling2D.from_config(config)
    assert clone.get_config() == config


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [(lambda: dn.layers.MaxPooling2D(2.5), TypeError, r"MaxPooling2D: invalid pool_size=2.5"),
     (lambda: dn.layers.MaxPooling1D(True), TypeError, r"pool_size=True"),
     (lambda: dn.layers.AveragePooling3D((2, 2, 0)), ValueError, r"pool_size=\(2, 2, 0\)"),
     (lambda: dn.layers.MaxPooling2D(padding=None), ValueError, r"padding=None"),
     (lambda: dn.layers.GlobalAveragePooling1D(data_format="channels"), ValueError,
      r"data_format='channels'")],
)  # fmt: skip
def test_bad_arguments_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_catalogue_tie_mask_covers_near_ties_only():
    """The catalogue's finite-difference mask for max pooling: the two leading elements of a
    window whose top two values are closer than a few steps are masked, nothing else."""
    from dualnet.parity.catalogue.layers_pooling import TIE_MARGIN, max_kinks

    x = np.arange(2 * 4 * 4 * 1, dtype=np.float64).reshape(2, 4, 4, 1)  # no ties: no mask
    mask = max_kinks((2, 2))([x], {})["x"]
    assert mask.all()
    x[0, 0, 0, 0] = x[0, 1, 1, 0] - TIE_MARGIN / 10  # runner-up of window (0, 0) nearly ties
    mask = max_kinks((2, 2))([x], {})["x"]
    assert not mask[0, 0, 0, 0] and not mask[0, 1, 1, 0]
    assert mask.sum() == mask.size - 2
    # Under "same" the padding (-inf) never counts as a runner-up.
    lone = np.array([[[1.0], [5.0], [3.0]]])
    assert max_kinks((2,), (2,), "same")([lone], {})["x"].all()


# -- explicit (torch-style) padding, ceil_mode, count_include_pad ----------------------------

# (dims, pool_size, strides, padding, ceil_mode, count_include_pad, input shape (channels
# first, torch's layout)): symmetric amounts torch itself takes; the awkward spots on purpose.
TORCH_POOLS = [
    (2, 3, 2, 1, False, True, (2, 3, 6, 5)),  # pads (1, 1) where TF's "same" pads (0, 1) on 6
    (2, 3, 2, 1, False, False, (2, 3, 6, 5)),  # border windows divide by their real positions
    (2, 3, 3, 1, True, True, (2, 3, 5, 6)),  # rows: the ceil window is dropped; columns: added
    (2, 3, 3, 1, True, False, (2, 3, 5, 6)),
    (2, 2, 2, 0, True, True, (2, 3, 5, 7)),  # padding=0 is explicit: MaxPool2d(2, ceil_mode=True)
    (2, (3, 2), (2, 1), (1, 0), True, True, (2, 2, 5, 6)),  # per-axis amounts
    (1, 4, 2, 2, True, True, (2, 3, 7)),  # even window, pad = k/2 (the most torch takes)
    (1, 3, 3, 1, True, False, (2, 3, 5)),  # dropped: the 3rd window would start at step 5
    (3, 2, 2, 1, True, True, (1, 2, 3, 4, 5)),
    (3, 3, (1, 2, 2), (0, 1, 1), False, False, (1, 2, 3, 4, 5)),
]  # fmt: skip
_POOL_IDS = [f"{d}d-k{k}-s{s}-p{p}" + ("-ceil" if c else "") + ("" if i else "-real")
             for d, k, s, p, c, i, _ in TORCH_POOLS]  # fmt: skip


@pytest.mark.parametrize(("dims", "k", "s", "p", "ceil", "include", "shape"), TORCH_POOLS,
                         ids=_POOL_IDS)  # fmt: skip
def test_explicit_padding_is_torchs_pooling(dims, k, s, p, ceil, include, shape, backend, dtype):
    """Max and mean with torch's padding, ``ceil_mode`` and ``count_include_pad`` against
    torch's own ``F.max_pool{n}d``/``F.avg_pool{n}d`` and the reference, on negative values (a
    zero pad would win every border window of the max)."""
    torch = _torch()
    F = torch.nn.functional
    x = -RNG.uniform(0.5, 3.0, shape)
    common = {"pool_size": k, "strides": s, "padding": p, "ceil_mode": ceil,
              "data_format": "channels_first"}  # fmt: skip
    xt = torch.as_tensor(x)
    native_max = getattr(F, f"max_pool{dims}d")(xt, k, s, p, ceil_mode=ceil).numpy()
    native_avg = getattr(F, f"avg_pool{dims}d")(xt, k, s, p, ceil, include).numpy()
    max_layer = getattr(dn.layers, f"MaxPooling{dims}D")(**common, dtype=dtype)
    avg_layer = getattr(dn.layers, f"AveragePooling{dims}D")(**common, count_include_pad=include,
                                                             dtype=dtype)  # fmt: skip
    got_max, got_avg = _run(max_layer, x), _run(avg_layer, x)
    assert got_max.shape == native_max.shape == max_layer.compute_output_shape(shape)
    assert got_avg.shape == native_avg.shape == avg_layer.compute_output_shape(shape)
    np.testing.assert_array_equal(got_max, _rounded(native_max, dtype))  # a max selects
    assert got_max.max() < 0  # the padding never won
    window = int(np.prod(max_layer.pool_size))
    assert_close(got_avg, native_avg, dtype, reduction=window)  # K: the window's sum
    config = _config(avg_layer)
    expected = getattr(R, f"average_pooling{dims}d")(x, **config)
    assert_close(got_avg, expected, dtype, reduction=window)


def test_reference_follows_torch_on_every_small_configuration():
    """The float64 reference (written independently, by enumerating windows) and the layers'
    output lengths against torch on every small 1-D case: sizes 1..9, windows 1..5, strides
    1..4, every padding torch accepts, ceil_mode and count_include_pad both ways; and the
    inputs torch finds too small are refused by the layer too."""
    torch = _torch()
    F = torch.nn.functional
    rng = np.random.default_rng(7)
    checked = 0
    for n, k, s, ceil, include in itertools.product(range(1, 10), range(1, 6), range(1, 5),
                                                    (False, True), (False, True)):  # fmt: skip
        for p in range(k // 2 + 1):
            x = rng.standard_normal((1, 2, n))
            kw = {"pool_size": k, "strides": s, "padding": p, "ceil_mode": ceil,
                  "data_format": "channels_first"}  # fmt: skip
            layer = dn.layers.AveragePooling1D(**kw, count_include_pad=include)
            try:
                want = F.avg_pool1d(torch.as_tensor(x), k, s, p, ceil, include).numpy()
                want_max = F.max_pool1d(torch.as_tensor(x), k, s, p, ceil_mode=ceil).numpy()
            except RuntimeError:  # torch: "Output size is too small"
                with pytest.raises(ValueError, match="plus its padding"):
                    layer.check_input_shape(x.shape)
                continue
            assert layer.compute_output_shape(x.shape) == want.shape
            assert_close(R.average_pooling1d(x, count_include_pad=include, **kw), want,
                         "float64", reduction=k)  # fmt: skip
            np.testing.assert_array_equal(R.max_pooling1d(x, **kw), want_max)
            checked += 1
    assert checked > 1000  # the configurations torch accepts (1432 of them)


def test_asymmetric_explicit_padding_is_torchs_pad_then_pool(backend, dtype):
    """Unequal ``(before, after)`` amounts, which torch's pooling cannot take: max pooling is
    ``F.pad(x, value=-inf)`` then an unpadded pool; a mean with count_include_pad counts the
    explicit zeros (``F.pad`` then an unpadded mean), but never the ceil_mode overhang."""
    torch = _torch()
    F = torch.nn.functional
    pads = ((1, 0), (0, 1))
    got = _run(dn.layers.MaxPooling2D(3, 2, padding=pads, dtype=dtype), NEGATIVE)
    padded = F.pad(torch.as_tensor(_nchw(NEGATIVE)), (0, 1, 1, 0), value=-float("inf"))
    np.testing.assert_array_equal(got, _rounded(_nhwc(F.max_pool2d(padded, 3, 2).numpy()),
                                                dtype))  # fmt: skip
    layer = dn.layers.AveragePooling2D(3, 2, padding=pads, dtype=dtype)
    zeros = _nhwc(F.avg_pool2d(F.pad(torch.as_tensor(_nchw(X)), (0, 1, 1, 0)), 3, 2).numpy())
    assert_close(_run(layer, X), zeros, dtype, reduction=9)
    # ceil_mode, k=4, s=3: on 5 rows with (2, 1) the windows start at -2, 1, 4, the last one
    # [4, 8) holding row 4, the padded row 5 and the overhang 6, 7; on 6 columns with (1, 1)
    # at -1, 2, 5, the last one [5, 9) holding column 5, the padded 6 and the overhang 7, 8.
    # The overhang never counts: the corner window divides by 2·2, the first row's by 4·2.
    ceil = dn.layers.AveragePooling2D(4, 3, padding=((2, 1), (1, 1)), ceil_mode=True,
                                      dtype=dtype)  # fmt: skip
    y = _run(ceil, X)
    assert y.shape == (2, 3, 3, 2)
    assert_close(y[:, 2, 2], _rounded(X, dtype)[:, 4, 5] / 4, dtype)
    assert_close(y[:, 0, 2], X[:, :2, 5].sum(axis=1) / 8, dtype, reduction=16)
    assert_close(y, R.average_pooling2d(X, **_config(ceil)), dtype, reduction=16)


def test_valid_and_same_keep_keras_while_explicit_amounts_follow_torch(backend):
    """With ``"same"`` the divisor is Keras's (real positions); ``padding=1`` with the same
    windows (5x7, k=3, s=2 pads 1 + 1) is torch's default divisor, counting the padded zeros."""
    same = _run(dn.layers.AveragePooling2D(3, 2, padding="same", dtype="float64"), X_ODD)
    torch_like = _run(dn.layers.AveragePooling2D(3, 2, padding=1, dtype="float64"), X_ODD)
    np.testing.assert_allclose(torch_like[:, 0, 0], same[:, 0, 0] * 4 / 9, rtol=1e-12)
    assert_close(torch_like[:, 1:-1, 1:-1], same[:, 1:-1, 1:-1], "float64", reduction=9)
    real = dn.layers.AveragePooling2D(3, 2, padding=1, count_include_pad=False, dtype="float64")
    assert_close(_run(real, X_ODD), same, "float64", reduction=9)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [(lambda: dn.layers.MaxPooling2D(3, padding=2), ValueError,
      r"MaxPooling2D: invalid padding=2; expected amounts of at most half the pool size.*"
      r"at most \(1, 1\)\), as torch requires"),
     (lambda: dn.layers.AveragePooling1D(2, padding=((0, 2),)), ValueError, r"at most \(1,\)"),
     (lambda: dn.layers.MaxPooling1D(3, padding=-1), ValueError, r"padding=-1.*ints >= 0"),
     (lambda: dn.layers.MaxPooling2D(ceil_mode=True), ValueError,
      r"invalid ceil_mode=True; expected False with padding='valid'"),
     (lambda: dn.layers.AveragePooling2D(2, padding="same", count_include_pad=False), ValueError,
      r"invalid count_include_pad=False; expected True with padding='same'"),
     (lambda: dn.layers.AveragePooling2D(2, padding=1, ceil_mode="yes"), TypeError,
      r"ceil_mode='yes'.*bool"),
     (lambda: dn.layers.MaxPooling2D(2, padding=0, count_include_pad=False), TypeError,
      r"count_include_pad"),  # torch's max pooling has no such option; neither has dualnet's
     (lambda: dn.layers.MaxPooling2D(2, padding=(1, 1, 1)), TypeError, r"padding=\(1, 1, 1\)")],
    ids=["over-half", "over-half-pair", "negative", "ceil-valid", "count-same", "ceil-type",
         "max-count", "wrong-length"],
)  # fmt: skip
def test_explicit_padding_errors_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_explicit_padding_shapes_config_and_summary(backend):
    inputs = dn.Input((2, 5, 6))  # channels_first, torch's layout
    h = dn.layers.MaxPooling2D(3, 3, padding=1, ceil_mode=True, data_format="channels_first",
                               name="max")(inputs)  # fmt: skip
    out = dn.layers.AveragePooling2D(2, 1, padding=((1, 0), (0, 1)),
                                     data_format="channels_first", name="avg")(h)  # fmt: skip
    assert h.shape == (None, 2, 2, 3) and out.shape == (None, 2, 2, 3)
    assert dn.layers.MaxPooling2D(2, padding=0, ceil_mode=True)(dn.Input((None, 5, 1))).shape \
        == (None, None, 3, 1)  # fmt: skip
    model = dn.Model(inputs, out)
    lines = []
    model.summary(print_fn=lines.append)
    assert "(None, 2, 2, 3)" in lines[0]
    layer = model.layers[-1]
    config = layer.get_config()
    assert config["padding"] == [[1, 0], [0, 1]]  # JSON's list of [before, after] pairs
    assert config["ceil_mode"] is False and config["count_include_pad"] is True
    assert "count_include_pad" not in model.layers[1].get_config()
    clone = dn.layers.AveragePooling2D.from_config(json.loads(json.dumps(config)))
    assert clone.get_config() == config and clone.padding == ((1, 0), (0, 1))
    x = RNG.standard_normal((2, 2, 5, 6))
    y = dn.to_numpy(model(x))
    h_ref = R.max_pooling2d(x, **_config(model.layers[1]))
    assert_close(y, R.average_pooling2d(h_ref, **config), "float32", reduction=4)


def test_tensorflow_adopts_keras_max_pooling_for_modes_only():
    """``"valid"``/``"same"`` max pooling is Keras's own layer (it exports to ``.keras``);
    explicit amounts, which Keras's layer cannot take, run the custom layer."""
    keras = _keras()
    with dn.use_backend("tensorflow"):
        for padding, adopted in (("same", True), ("valid", True), (1, False)):
            layer = dn.layers.MaxPooling2D(3, 2, padding=padding)
            layer.build((None, 5, 6, 2))
            layer._realise("tensorflow")
            assert isinstance(layer.native, keras.layers.MaxPooling2D) == adopted, padding


@pytest.mark.parametrize("cls", [dn.layers.MaxPooling2D, dn.layers.AveragePooling2D])
def test_explicit_pooling_traced_with_unknown_sizes_matches_eager(cls):
    """Inside a ``tf.function`` whose spatial sizes are unknown the window lengths and the
    divisor map are computed symbolically, and give the eager bits."""
    tf = _tf()
    x = NEGATIVE[:, :, :5]  # 5 x 5: ceil adds a window on both axes
    with dn.use_backend("tensorflow"):
        layer = cls(3, 2, padding=((1, 0), (1, 1)), ceil_mode=True, dtype="float64")
        eager = dn.to_numpy(layer(x))
        spec = tf.TensorSpec([None, None, None, 2], tf.float64)
        traced = tf.function(lambda t: layer.native(t), input_signature=[spec])
        np.testing.assert_array_equal(traced(tf.constant(x)).numpy(), eager)
    assert eager.shape == (2, 3, 3, 2)


# -- wrong references must fail ---------------------------------------------------------------


def _case(name):
    from dualnet.parity import catalogue

    (case,) = [c for c in catalogue.load() if getattr(c, "name", None) == name]
    return case


def _zero_padded_max(x, weights=None, **config):
    """Max pooling over zeros: the explicit amounts padded with 0 (a converter's mistake)."""
    nd = np.ndim(x) - 2
    explicit = [tuple(p) for p in config["padding"]]
    if config["data_format"] == "channels_first":
        pads = [(0, 0), (0, 0), *explicit]
    else:
        pads = [(0, 0), *explicit, (0, 0)]
    return getattr(R, f"max_pooling{nd}d")(np.pad(x, pads), **{**config, "padding": 0})


def _counting_the_padding(x, weights=None, **config):
    """A mean that counts the explicit padding whatever count_include_pad says."""
    nd = np.ndim(x) - 2
    return getattr(R, f"average_pooling{nd}d")(x, **{**config, "count_include_pad": True})


def _counting_the_overhang(x, weights=None, **config):
    """A mean that divides every window by the full window size, the ceil_mode overhang past
    the padding included."""
    nd = np.ndim(x) - 2
    config.pop("training", None)  # the reference's call keyword, not the layer's
    layer = getattr(dn.layers, f"AveragePooling{nd}D")(**config)
    spatial = np.shape(x)[2:] if config["data_format"] == "channels_first" else np.shape(x)[1:-1]
    counts = np.ones(())
    for per_axis in layer.window_counts(spatial):  # torch's divisor, a product over axes
        counts = np.multiply.outer(counts, per_axis)
    counts = counts[None, None] if config["data_format"] == "channels_first" else counts[..., None]
    right = getattr(R, f"average_pooling{nd}d")(x, **config)
    return right * counts / np.prod(layer.pool_size)


@pytest.mark.parametrize(
    ("name", "wrong"),
    [("max-pooling2d-explicit-pad1-negative", _zero_padded_max),
     ("max-pooling2d-ceil-pairs-negative-cf", _zero_padded_max),
     ("average-pooling2d-explicit-real-only-cf", _counting_the_padding),
     ("average-pooling2d-ceil-overhang-real-only-cf", _counting_the_padding),
     ("average-pooling2d-ceil-overhang", _counting_the_overhang),
     ("average-pooling1d-explicit-pair-ceil", _counting_the_overhang)],
    ids=["max-zero-pad", "max-zero-pad-ceil", "mean-counts-pad", "mean-counts-pad-ceil",
         "mean-counts-overhang", "mean-counts-overhang-pair"],
)  # fmt: skip
def test_a_wrong_padding_rule_in_the_reference_fails(name, wrong):
    """The catalogue's entries catch a reference that pads max pooling with zeros, counts the
    padding when count_include_pad=False, or counts the ceil_mode overhang: the forward row
    FAILs in float32 while torch and TensorFlow agree with each other."""
    case = _case(name)
    right = case.evaluate("float32", "cpu")
    assert all(r.status == "pass" for r in right), [r.explain() for r in right if r.failed]
    rows = dataclasses.replace(case, reference=wrong).evaluate("float32", "cpu")
    status = {r.check: r.status for r in rows}
    assert status["forward"] == "FAIL", [r.explain() for r in rows]
    for r in rows:
        cross = r.comparisons.get("torch~tensorflow")
        assert cross is None or cross.passed, r.explain()
