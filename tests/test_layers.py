"""Layer API: Dense and Activation on both backends, weights, validation (parity is in
test_parity.py, family "layer")."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.reference import layers as R

ACTIVATIONS = ["linear", "relu", "sigmoid", "softmax", "tanh", "leaky_relu"]


def _x(shape=(5, 4), seed=0):
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_forward_matches_reference(activation, backend):
    layer = dn.layers.Dense(3, activation=activation, dtype="float64")
    x = _x()
    y = layer(x)
    assert backend_module(backend).core.is_tensor(y)
    kernel, bias = layer.get_weights()
    np.testing.assert_allclose(dn.to_numpy(y), R.dense(x, kernel, bias, activation), rtol=1e-12,
                               atol=1e-12)  # fmt: skip


def test_dense_rank3_input_uses_last_axis(backend):
    layer = dn.layers.Dense(2, dtype="float64")
    x = _x((2, 3, 4))
    y = dn.to_numpy(layer(x))
    assert y.shape == (2, 3, 2)
    np.testing.assert_allclose(y, R.dense(x, *layer.get_weights()), rtol=1e-12, atol=1e-12)


def test_default_dtype_is_float32_and_inputs_are_cast(backend):
    layer = dn.layers.Dense(2)
    y = layer(_x())  # float64 numpy in, as Keras: cast to the layer's float32
    assert backend_module(backend).core.dtype_name(y) == "float32"
    assert all(w.dtype == np.float32 for w in layer.get_weights())


def test_kernel_is_canonical_in_out_on_both_backends(backend):
    layer = dn.layers.Dense(3, input_shape=(4,))
    layer(_x())
    kernel, bias = layer.get_weights()
    assert kernel.shape == (4, 3) and bias.shape == (3,)
    native = dn.to_numpy(layer.native.kernel)
    if backend == "torch":  # nn.Linear layout (out, in): the transpose of the canonical kernel
        np.testing.assert_array_equal(native, kernel.T)
    else:
        np.testing.assert_array_equal(native, kernel)


def test_same_seed_gives_identical_weights_on_both_backends():
    weights = {}
    for name in dn.BACKENDS:
        with dn.use_backend(name):
            dn.set_random_seed(7)
            layer = dn.layers.Dense(5, bias_initializer="glorot_uniform")
            layer(_x())
            weights[name] = layer.get_weights()
    for a, b in zip(weights["torch"], weights["tensorflow"], strict=True):
        np.testing.assert_array_equal(a, b)


def test_standard_initializer_bias_uses_layer_fans(backend):
    # torch's nn.Linear default: weight and bias U(±1/√in); the bias needs the layer's fan_in.
    layer = dn.layers.Dense(200, kernel_initializer="standard", bias_initializer="standard")
    layer(_x((2, 4)))
    kernel, bias = layer.get_weights()
    bound = 1 / np.sqrt(4)
    assert np.abs(kernel).max() <= bound and np.abs(bias).max() <= bound
    assert np.abs(bias).max() > 0.8 * bound  # drawn from the weight's bound, not (200,)'s


def test_set_weights_roundtrip_and_cast(backend):
    layer = dn.layers.Dense(2)
    x = _x()
    layer(x)
    kernel = np.arange(8.0).reshape(4, 2)  # float64 -> cast to the float32 weights
    layer.set_weights([kernel, np.array([1, 2])])  # ints are castable too
    got = layer.get_weights()
    np.testing.assert_array_equal(got[0], kernel.astype(np.float32))
    assert got[0].dtype == np.float32
    np.testing.assert_allclose(dn.to_numpy(layer(x)), x @ kernel + [1, 2], rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        ([np.zeros((4, 2))], ValueError, r"expected 2 arrays \(dense.*/kernel, .*bias\), got 1"),
        ([np.zeros((2, 4)), np.zeros(2)], ValueError, r"\(4, 2\), got an array of shape \(2, 4"),
        ([np.zeros((4, 2)), np.zeros(3)], ValueError, r"bias' has shape \(2,\)"),
        ([np.zeros((4, 2)), np.zeros(2, complex)], TypeError, "dtype complex128"),
        ([np.zeros((4, 2)), np.array(["a", "b"])], TypeError, "expected real numbers"),
    ],
    ids=["count", "kernel-shape", "bias-shape", "complex", "strings"],
)  # fmt: skip
def test_set_weights_rejects_and_changes_nothing(weights, error, match, backend):
    layer = dn.layers.Dense(2)
    layer(_x())
    before = layer.get_weights()
    with pytest.raises(error, match=match):
        layer.set_weights(weights)
    for a, b in zip(before, layer.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    ("units", "error"),
    [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("3", TypeError), (True, TypeError),
     (None, TypeError)],
)  # fmt: skip
def test_bad_units_are_clear(units, error):
    with pytest.raises(
        error,
        match=rf"Dense: invalid units={re.escape(repr(units))}( of type \w+)?; "
        "expected a positive int",
    ):
        dn.layers.Dense(units)


def test_numpy_int_units_accepted():
    assert dn.layers.Dense(np.int64(3)).units == 3


def test_unknown_activation_is_clear():
    with pytest.raises(ValueError, match=r"Dense: Unknown activation 'reluu'.*relu"):
        dn.layers.Dense(3, activation="reluu")


def test_bad_initializer_and_options_are_clear():
    with pytest.raises(ValueError, match=r"kernel_initializer.*Unknown initializer 'glorot'"):
        dn.layers.Dense(3, kernel_initializer="glorot")
    with pytest.raises(TypeError, match="use_bias="):
        dn.layers.Dense(3, use_bias="yes")
    with pytest.raises(ValueError, match="dtype="):
        dn.layers.Dense(3, dtype="int32")
    with pytest.raises(ValueError, match="name="):
        dn.layers.Dense(3, name="a/b")


def test_failed_construction_consumes_no_name_and_no_seed():
    dn.models.clear_session()
    dn.set_random_seed(3)
    with pytest.raises(ValueError):
        dn.layers.Dense(3, name="bad/name")
    layer = dn.layers.Dense(3)
    assert layer.name == "dense"
    dn.set_random_seed(3)
    assert dn.layers.Dense(3).kernel_initializer.seed == layer.kernel_initializer.seed


def test_mismatched_input_dimension_is_clear(backend):
    layer = dn.layers.Dense(2, name="dense_1")
    layer(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"Dense 'dense_1' expects inputs with last dimension 3, "
                                         r"got shape \(2, 4\)"):  # fmt: skip
        layer(np.ones((2, 4)))


def test_rank_one_input_is_refused(backend):
    with pytest.raises(ValueError, match=r"expects inputs of rank >= 2.*got shape \(3,\)"):
        dn.layers.Dense(2)(np.ones(3))


def test_layer_refuses_the_other_frameworks_tensor():
    with dn.use_backend("torch"):
        layer = dn.layers.Dense(2)
        layer(np.ones((1, 3)))
    tf_tensor = backend_module("tensorflow").core.convert_to_tensor(np.ones((1, 3)))
    expected = "is built on 'torch' and cannot take a tensorflow tensor"
    with dn.use_backend("tensorflow"), pytest.raises(TypeError, match=expected):
        layer(tf_tensor)
    assert layer.backend == "torch"


def test_layer_config_roundtrip_gives_same_weights(backend):
    layer = dn.layers.Dense(3, activation="tanh", use_bias=False, name="d")
    config = layer.get_config()
    clone = dn.layers.Dense.from_config(config)
    assert clone.get_config() == config
    x = _x()
    layer(x)
    clone(x)  # the initializer seeds are in the config: the same weights are drawn
    np.testing.assert_array_equal(layer.get_weights()[0], clone.get_weights()[0])


def test_activation_layer(backend):
    layer = dn.layers.Activation("softmax")
    x = _x()
    np.testing.assert_allclose(dn.to_numpy(layer(x)), dn.reference.activations.softmax(x),
                               rtol=1e-6, atol=1e-6)  # fmt: skip
    assert layer.count_params() == 0 and layer.get_weights() == []


def test_graph_building_imports_no_framework():
    code = (
        "import sys, dualnet as dn\n"
        "x = dn.Input(shape=(3,))\n"
        "y = dn.layers.Dense(2, activation='relu')(x)\n"
        "assert y.shape == (None, 2), y.shape\n"
        "assert 'torch' not in sys.modules and 'tensorflow' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("bad", [{"foo": 1}, {"class_name": "Dense"}, [1, 2], "dense"])
def test_layers_get_malformed_config_is_clear(bad):
    expected = re.escape("expected a dict {'class_name': str, 'config': dict}")
    with pytest.raises(ValueError, match=expected):
        dn.layers.get(bad)
