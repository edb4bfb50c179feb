"""Rescaling beyond the generic catalogue tests: against Keras's own layer on the same input
(bit for bit in float32, Keras's float32 rounding of the operands in float64, Keras's half
arithmetic in float16), exactly the float32-then-round-once rule in half precision, the sign of
zero (Keras's ``+ offset`` always runs; ``offset=-0.0`` keeps ``x·s``), TensorFlow's scalar
cache and channels_first image format, integer inputs, masks, config, save/load and summary."""

from __future__ import annotations

import json

import numpy as np
import pytest
from frameworks import keras as _keras

import dualnet as dn
from dualnet.reference.layers import preprocessing as R

RNG = np.random.default_rng(2024)
PIXELS = RNG.uniform(0.0, 255.0, (2, 4, 4, 3))
SIGNED = RNG.standard_normal((3, 5, 3)) * 4.0
# (scale, offset): Keras's [-1, 1] and [0, 1] image ranges, per-channel lists, an inexact scale.
OPERANDS = {
    "minus-one-to-one": (1 / 127.5, -1.0),
    "unit-range": (1 / 255, 0.0),
    "per-channel": ([0.5, -2.0, 1 / 3], [0.1, 0.0, -0.25]),
    "per-channel-scale-only": ([1 / 3, 0.7, 3.0], 0.5),
}


def _numpy(y):
    return np.asarray(dn.to_numpy(y))


def _keras_rescaling(scale, offset, dtype):
    keras = _keras()
    return keras.layers.Rescaling(scale, offset=offset, dtype=dtype)


def _float32_rule(x, scale, offset, dtype):
    """dualnet's math in numpy: ``x`` cast to the layer's dtype, then ``x·s + o`` in the compute
    dtype (float32 for half precision) with ``s``, ``o`` exact in it, rounded once to
    ``dtype``."""
    from dualnet.dtypes import numpy_dtype

    store = numpy_dtype(dtype)
    compute = np.float64 if dtype == "float64" else np.float32
    xc = np.asarray(x).astype(store).astype(compute)
    y = xc * np.asarray(scale, compute) + np.asarray(offset, compute)
    return y.astype(store)


# -- against Keras's own layer ------------------------------------------------------------------


@pytest.mark.parametrize("operands", OPERANDS, ids=list(OPERANDS))
def test_float32_is_keras_bit_for_bit(backend, operands):
    scale, offset = OPERANDS[operands]
    x = (PIXELS if operands in ("minus-one-to-one", "unit-range") else SIGNED).astype(np.float32)
    want = np.asarray(_keras_rescaling(scale, offset, "float32")(x))
    got = _numpy(dn.layers.Rescaling(scale, offset, dtype="float32")(x))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, R.rescaling(x, scale=scale, offset=offset), rtol=1.3e-6,
                               atol=1e-5)  # fmt: skip


# dualnet tensors hold int32/int64 integers (a uint8 array is refused by every layer call).
@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_input_is_cast_first_as_keras(backend, dtype):
    x = RNG.integers(0, 256, (2, 3, 3, 3)).astype(dtype)
    want = np.asarray(_keras_rescaling(1 / 255, -0.5, "float32")(x))
    got = _numpy(dn.layers.Rescaling(1 / 255, -0.5)(x))
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("operands", OPERANDS, ids=list(OPERANDS))
def test_float64_operands_are_exact_where_keras_rounds_them_to_float32(backend, operands):
    scale, offset = OPERANDS[operands]
    x = SIGNED[..., :3]
    got = _numpy(dn.layers.Rescaling(scale, offset, dtype="float64")(x))
    np.testing.assert_array_equal(got, x * np.asarray(scale) + np.asarray(offset))
    # Keras casts a Python float with tf.cast, through a float32 tensor: its float64 layer
    # computes with the operands rounded to float32 (what dualnet's TensorFlow builder avoids).
    keras_y = np.asarray(_keras_rescaling(scale, offset, "float64")(x))
    rounded = x * np.asarray(scale, np.float32).astype(np.float64) + \
        np.asarray(offset, np.float32).astype(np.float64)  # fmt: skip
    np.testing.assert_array_equal(keras_y, rounded)
    assert not np.array_equal(keras_y, got)  # 1/127.5, 0.1, 1/3... are not float32 numbers


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("operands", OPERANDS, ids=list(OPERANDS))
def test_half_precision_is_float32_math_rounded_once(backend, operands, dtype):
    scale, offset = OPERANDS[operands]
    x = PIXELS if operands in ("minus-one-to-one", "unit-range") else SIGNED
    want = _float32_rule(x, scale, offset, dtype)
    got = _numpy(dn.layers.Rescaling(scale, offset, dtype=dtype)(x.astype(want.dtype)))
    assert got.dtype == want.dtype
    np.testing.assert_array_equal(got.astype(np.float64), want.astype(np.float64))


def test_float16_differs_from_keras_half_arithmetic_by_at_most_an_ulp_or_two(backend):
    """Keras rounds 1/127.5 to float16, then the product and the sum: within 2 ulps of the
    result plus the cancellation's absolute error (the product is up to 2 before the -1)."""
    x = PIXELS.astype(np.float16)
    keras_y = np.asarray(_keras_rescaling(1 / 127.5, -1.0, "float16")(x)).astype(np.float64)
    got = _numpy(dn.layers.Rescaling(1 / 127.5, -1.0, dtype="float16")(x)).astype(np.float64)
    exact = R.rescaling(x, scale=1 / 127.5, offset=-1.0)
    u = 2.0**-11
    # Keras: scale (u), product (u) on |x·s| <= 2, sum (u) on |y|; ours: u|y| (+ float32).
    bound = 2 * u * np.abs(exact) + 3 * u * 2.0 + 2.0**-24
    assert np.all(np.abs(got - keras_y) <= bound)
    assert np.all(np.abs(got - exact) <= u * np.abs(exact) + 2.0**-24 + 4 * 2.0**-24)
    assert not np.array_equal(got, keras_y)  # the two roundings do differ on these pixels


# -- the sign of zero ---------------------------------------------------------------------------


def test_zero_offset_is_added_as_keras_adds_it(backend):
    x = np.array([[-0.0, 0.0, -1.0]], np.float32)
    keras_y = np.asarray(_keras_rescaling(2.0, 0.0, "float32")(x))
    got = _numpy(dn.layers.Rescaling(2.0)(x))
    # -0·2 + 0 = +0 (IEEE), in Keras as in dualnet: torch's x * 2 would keep -0.
    np.testing.assert_array_equal(np.signbit(got), [[False, False, True]])
    np.testing.assert_array_equal(np.signbit(got), np.signbit(keras_y))


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_negative_zero_offset_keeps_every_bit_of_the_product(backend, dtype):
    # Converting +0.0 first fills TensorFlow's eager cache of Python-scalar constants, which
    # would hand back +0.0 for -0.0 to a tf.cast (Keras's own layer reads it that way).
    dn.layers.Rescaling(2.0, 0.0, dtype=dtype)(np.zeros((1, 3), np.float32))
    x = np.array([[-0.0, 0.0, -3.0]], np.float32)
    got = _numpy(dn.layers.Rescaling(2.0, -0.0, dtype=dtype)(x)).astype(np.float64)
    np.testing.assert_array_equal(np.signbit(got), [[True, False, True]])
    neg = _numpy(dn.layers.Rescaling(-1.0, -0.0, dtype=dtype)(x)).astype(np.float64)
    np.testing.assert_array_equal(np.signbit(neg), [[False, True, False]])  # exactly -x


# -- configuration, layouts, masks --------------------------------------------------------------


def test_channels_first_image_format_does_not_move_the_channels(backend):
    """Keras's Rescaling broadcasts a list scale on axis -3 when the global image format is
    channels_first (its offset stays on the last axis); dualnet's layer always uses the last
    axis, on both backends, whatever Keras's global setting."""
    keras = _keras()
    x = SIGNED[:, :3, :].astype(np.float32)  # (3, 3, 3): both rules would broadcast
    scale, offset = [0.5, -2.0, 4.0], [1.0, 2.0, 3.0]
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        got = _numpy(dn.layers.Rescaling(scale, offset)(x))
    finally:
        keras.config.set_image_data_format(before)
    np.testing.assert_array_equal(got, _float32_rule(x, scale, offset, "float32"))


def test_mask_passes_through_as_in_keras(backend):
    keras = _keras()
    assert dn.layers.Rescaling.supports_masking is keras.layers.Rescaling(1.0).supports_masking
    inputs = dn.Input((4,), dtype="int32")
    h = dn.layers.Embedding(6, 3, mask_zero=True)(inputs)
    model = dn.Model(inputs, dn.layers.Rescaling([1.0, 2.0, 3.0], 0.5)(h))
    ids = np.array([[1, 2, 0, 0], [3, 0, 4, 5]], np.int32)
    y = model(ids)
    np.testing.assert_array_equal(dn.to_numpy(y._keras_mask), ids != 0)
    table = model.get_weights()[0]
    np.testing.assert_array_equal(_numpy(y), _float32_rule(table[ids], [1.0, 2.0, 3.0], 0.5,
                                                           "float32"))  # fmt: skip


@pytest.mark.parametrize("operands", OPERANDS, ids=list(OPERANDS))
def test_config_round_trip_is_json_and_keeps_negative_zero(operands):
    scale, offset = OPERANDS[operands]
    layer = dn.layers.Rescaling(scale, offset, name="pre")
    config = json.loads(json.dumps(layer.get_config()))
    assert config["scale"] == scale and config["offset"] == offset
    again = dn.layers.Rescaling.from_config(config)
    assert (again.scale, again.offset) == (layer.scale, layer.offset)
    zero = dn.layers.Rescaling.from_config(json.loads(json.dumps(
        dn.layers.Rescaling(2.0, -0.0).get_config())))  # fmt: skip
    assert np.signbit(zero.offset)


def test_numpy_operands_are_accepted_as_keras_serializes_them():
    layer = dn.layers.Rescaling(np.array([0.5, 2.0], np.float32), np.float64(-1.0))
    assert layer.scale == (0.5, 2.0) and layer.offset == -1.0
    assert dn.layers.Rescaling(np.array(3.0)).scale == 3.0


def test_save_load_and_summary(backend, tmp_path):
    model = dn.Sequential([dn.layers.Rescaling(1 / 127.5, -1.0, input_shape=(4, 4, 3)),
                           dn.layers.Rescaling([1.0, 2.0, 3.0], -0.0)])  # fmt: skip
    x = PIXELS.astype(np.float32)
    y = _numpy(model(x))
    path = tmp_path / "rescaling.safetensors"
    model.save(path)
    again = dn.load_model(path)
    np.testing.assert_array_equal(_numpy(again(x)), y)
    lines = []
    model.summary(print_fn=lines.append)
    text = "\n".join(lines)
    assert "Rescaling" in text and "(None, 4, 4, 3)" in text
    assert model.count_params() == 0


def test_call_error_names_the_channels_on_both_backends(backend):
    layer = dn.layers.Rescaling([1.0, 2.0])
    with pytest.raises(ValueError, match=r"scale has 2 entries .* has 3 channels; expected "
                                         r"inputs \(batch, \.\.\., 2\)"):  # fmt: skip
        layer(np.zeros((2, 3), np.float32))
    assert not layer.built  # nothing half-changed
