"""Activation layers (ReLU, LeakyReLU, PReLU, ELU, Softmax) beyond the generic catalogue tests:
the torch/Keras divergences made visible, the one-sided derivatives at kinks, PReLU's alpha
shapes, use in models and training on both backends, validation.
"""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.reference.layers import activations as R

L = dn.layers


def _grad(backend, layer, x):
    """``∂ sum(layer(x)) / ∂x`` on ``backend``."""
    core = backend_module(backend).core
    _, (g,) = core.vjp(lambda t: layer(t), [core.convert_to_tensor(x)], [0], np.ones(x.shape))
    return dn.to_numpy(g)


def _keras_grad(layer, x):
    import tensorflow as tf

    t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(t)
        y = layer(t)
    return tape.gradient(y, t).numpy()


X = np.random.default_rng(0).normal(size=(4, 5))


def test_leaky_relu_default_slope_is_keras_layer_not_torch(backend):
    torch = _torch()
    x = X.astype("float32")
    torch_default = torch.nn.LeakyReLU()(torch.from_numpy(x)).numpy()
    ours = dn.to_numpy(L.LeakyReLU()(x))
    assert_close(ours, R.leaky_re_lu(x, negative_slope=0.3), "float32")
    assert np.abs(ours - torch_default).max() > 0.1  # 0.3 vs 0.01 on the negative inputs
    torch_like = dn.to_numpy(L.LeakyReLU(negative_slope=0.01)(x))
    assert_close(torch_like, torch_default, "float32")


def test_softmax_default_axis_is_last_where_torch_picks_the_batch(backend):
    torch = _torch()
    x = np.random.default_rng(1).normal(size=(2, 3, 4)).astype("float32")
    with pytest.warns(UserWarning, match="Implicit dimension"):  # torch warns, then uses dim 0
        torch_implicit = torch.nn.Softmax()(torch.from_numpy(x)).numpy()
    assert_close(torch_implicit.sum(axis=0), 1.0, "float32", reduction=2)  # over the batch of 2
    ours = dn.to_numpy(L.Softmax()(x))
    assert_close(ours, R.softmax(x), "float32", reduction=4)  # K: the 4 exponentials summed
    assert_close(ours.sum(axis=-1), 1.0, "float32", reduction=4)
    assert np.abs(ours - torch_implicit).max() > 0.1


def test_softmax_over_several_axes(backend):
    x = np.random.default_rng(2).normal(size=(2, 3, 4))
    out = dn.to_numpy(L.Softmax(axis=[1, 2], dtype="float64")(x))
    assert_close(out.sum(axis=(1, 2)), 1.0, "float64", reduction=12)  # K: 3 x 4 values
    assert_close(out, R.softmax(x, axis=[1, 2]), "float64", reduction=12)


def test_prelu_alpha_shape_and_init_are_keras_not_torch(backend):
    torch = _torch()
    native = torch.nn.PReLU()
    assert native.weight.numel() == 1 and native.weight.item() == 0.25
    layer = L.PReLU()
    layer(np.zeros((2, 3, 4), "float32"))
    assert layer.weight_shapes() == [(3, 4)]  # one alpha per element, batch excluded
    np.testing.assert_array_equal(layer.get_weights()[0], np.zeros((3, 4)))
    shared = L.PReLU(alpha_initializer=dn.initializers.Constant(0.25), shared_axes=[1, 2])
    out = shared(np.full((2, 5, 6, 3), -1.0, "float32"))
    assert shared.weight_shapes() == [(1, 1, 3)]  # one per channel: torch's nn.PReLU(C)
    np.testing.assert_array_equal(dn.to_numpy(out), np.full((2, 5, 6, 3), -0.25))


def test_prelu_in_functional_model_with_unknown_shared_axes(backend):
    inputs = dn.Input((None, None, 3))
    out = L.PReLU(shared_axes=[1, 2], name="prelu")(inputs)
    assert out.shape == (None, None, None, 3)
    model = dn.Model(inputs, out)
    assert model.count_params() == 3
    rng = np.random.default_rng(3)
    alpha = rng.normal(size=(1, 1, 3)).astype("float32")
    model.set_weights([alpha])
    for size in (4, 7):
        x = rng.normal(size=(2, size, size, 3)).astype("float32")
        assert_close(dn.to_numpy(model(x)), R.p_re_lu(x, {"alpha": alpha}), "float32")
    with pytest.raises(ValueError, match=r"needs the size of axis 1.*shared_axes=\[1\]"):
        L.PReLU()(dn.Input((None, 3)))
    layer = L.PReLU()
    layer(np.zeros((2, 3), "float32"))
    with pytest.raises(ValueError, match=r"built for inputs of shape \(None, 3\)"):
        layer(np.zeros((2, 4), "float32"))


def test_prelu_derivative_at_zero_is_alpha_where_keras_gives_zero(backend):
    keras = _keras()
    x = np.array([[0.0, -1.0, 2.0]], "float32")
    k_layer = keras.layers.PReLU(alpha_initializer=keras.initializers.Constant(0.3))
    assert_close(_keras_grad(k_layer, x), [[0.0, 0.3, 1.0]], "float32")
    layer = L.PReLU(alpha_initializer=dn.initializers.Constant(0.3))
    assert_close(_grad(backend, layer, x), [[0.3, 0.3, 1.0]], "float32")


def test_relu_max_value_derivative_is_zero_where_keras_clip_gives_one(backend):
    keras = _keras()
    x = np.array([[0.0, 1.25, 2.0, 1.0, -1.0]], "float32")
    np.testing.assert_array_equal(_keras_grad(keras.layers.ReLU(max_value=1.25), x),
                                  [[0.0, 1.0, 0.0, 1.0, 0.0]])  # fmt: skip
    np.testing.assert_array_equal(_grad(backend, L.ReLU(max_value=1.25), x),
                                  [[0.0, 0.0, 0.0, 1.0, 0.0]])  # fmt: skip


def test_relu_threshold_follows_keras_code_not_its_docstring(backend):
    """At x == θ Keras's code gives s·(x - θ) = 0 (its docstring says x); dualnet follows the
    code, so the function jumps from 0 to θ there."""
    keras = _keras()
    x = np.array([[0.5, 0.49, 0.51, -1.0]], "float64")
    config = {"threshold": 0.5, "negative_slope": 0.2}
    k_out = keras.layers.ReLU(**config, dtype="float64")(x).numpy()
    ours = dn.to_numpy(L.ReLU(**config, dtype="float64")(x))
    assert_close(ours, [[0.0, -0.002, 0.51, -0.3]], "float64")
    assert_close(ours, k_out, "float64")
    assert ours[0, 0] != 0.5  # not the docstring's value


@pytest.mark.parametrize(
    "config",
    [{}, {"negative_slope": 0.1}, {"max_value": 6.0}, {"max_value": 0.7, "threshold": 0.2},
     {"max_value": 1.0, "negative_slope": 0.3, "threshold": 0.5}, {"max_value": 0.0}],
)  # fmt: skip
def test_relu_values_equal_keras_layer(config, backend):
    """Keras's math, computed exactly: Keras's own float64 layer rounds max_value and the
    slope to float32 (``tf.nn.leaky_relu``'s alpha attribute, a float32 cast in clip), an error
    of up to 1.7e-8 relative (within the float64 default, rtol 1e-7), which dualnet does not
    have: each of its outputs is the reference's own float64 ops (a subtraction, a product, a
    min), so it equals the reference bit for bit."""
    keras = _keras()
    x = np.random.default_rng(4).normal(size=(6, 7)) * 2
    ours = dn.to_numpy(L.ReLU(**config, dtype="float64")(x))
    np.testing.assert_array_equal(ours, R.re_lu(x, **config))
    k_out = keras.layers.ReLU(**config, dtype="float64")(x).numpy()
    assert_close(ours, k_out, "float64")
    inexact = config.get("max_value") == 0.7 or config.get("negative_slope") == 0.1
    assert (np.abs(k_out - ours).max() > 1e-9) == inexact


def test_relu_derivatives_at_kinks(backend):
    x = np.array([[0.0, 0.5, 2.0, -1.0, 1.0, 3.0]], "float64")
    layer = L.ReLU(max_value=2.0, negative_slope=0.3, threshold=0.5, dtype="float64")
    # slope up to and at θ, 1 between θ and m, 0 from m on
    np.testing.assert_array_equal(_grad(backend, layer, x), [[0.3, 0.3, 0.0, 0.3, 1.0, 0.0]])
    for layer, want in ((L.ReLU(dtype="float64"), 0.0),
                        (L.ReLU(negative_slope=0.2, dtype="float64"), 0.2),
                        (L.LeakyReLU(dtype="float64"), 0.3),
                        (L.ELU(alpha=0.7, dtype="float64"), 0.7)):  # fmt: skip
        # the slope itself (ELU: alpha·exp(0) = alpha), not a computed value: exact
        assert _grad(backend, layer, np.zeros((1, 1)))[0, 0] == want


def test_non_finite_inputs_propagate(backend):
    x = np.array([[np.nan, -np.inf, np.inf]], "float32")
    for layer in (L.ReLU(max_value=2.0), L.ReLU(max_value=2.0, threshold=0.5)):
        out = dn.to_numpy(layer(x))
        assert np.isnan(out[0, 0]) and out[0, 1] == 0.0 and out[0, 2] == 2.0
    out = dn.to_numpy(L.ReLU(negative_slope=0.5, threshold=1.0)(x))
    assert np.isnan(out[0, 0]) and out[0, 1] == -np.inf and out[0, 2] == np.inf


def test_half_precision_is_float32_math_rounded_once():
    x = (np.random.default_rng(5).normal(size=(8, 9)) * 3).astype("float16")
    layer_args = {"max_value": 2.5, "negative_slope": 0.3, "threshold": 0.5}
    outs = []
    for name in ("torch", "tensorflow"):
        with dn.use_backend(name):
            outs.append(dn.to_numpy(L.ReLU(**layer_args, dtype="float16")(x)))
    np.testing.assert_array_equal(outs[0], outs[1])
    x32 = x.astype("float32")
    below = (x32 - np.float32(0.5)) * np.float32(0.3)
    want = np.where(x32 <= 0.5, below, np.minimum(x32, np.float32(2.5))).astype("float16")
    np.testing.assert_array_equal(outs[0], want)


_TRAINED = {"reduction": 12, "factor": 2.0, "why": "4 Adam steps: x sqrt(4)"}


def test_activation_layers_train_identically_on_both_backends():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(12, 4)), np.eye(3)[rng.integers(0, 3, 12)]
    dn.models.clear_session()
    dn.set_random_seed(2)
    f64 = {"dtype": "float64"}
    with dn.use_backend("torch"):
        model = dn.Sequential([
            dn.Input((4,), dtype="float64"), L.Dense(6, **f64), L.PReLU(**f64),
            L.Dense(6, **f64), L.ReLU(max_value=1.5, negative_slope=0.1, threshold=0.2, **f64),
            L.Dense(6, **f64), L.ELU(alpha=0.5, **f64), L.Dense(6, **f64), L.LeakyReLU(**f64),
            L.Dense(3, **f64), L.Softmax(**f64),
        ])  # fmt: skip
    twin = model.to_backend("tensorflow")
    losses = {}
    for net in (model, twin):
        net.compile(optimizer="adam", loss="categorical_crossentropy")
        losses[net.backend] = [net.train_step(x, y)["loss"] for _ in range(4)]
    # The longest sum: the kernel gradients' over the batch of 12 (fan-ins are 4 and 6); 4 Adam
    # steps carry rounding differences forward like a random walk (x sqrt(4), as the parity
    # suite's network training cases).
    assert_close(losses["torch"], losses["tensorflow"], "float64", **_TRAINED)
    alpha = next(w for w, info in zip(model.get_weights(), model.weights, strict=True)
                 if info.name == "alpha")  # fmt: skip
    assert np.abs(alpha).max() > 0  # PReLU's alpha (init 0) was trained
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        assert_close(a, b, "float64", **_TRAINED)


def test_summary_param_counts_match_keras(backend):
    keras = _keras()
    dn.models.clear_session()
    model = dn.Sequential([dn.Input((3, 4)), L.PReLU(shared_axes=[1]), L.ReLU(),
                           L.Softmax()], name="acts")  # fmt: skip
    k_model = keras.Sequential([keras.Input((3, 4)), keras.layers.PReLU(shared_axes=[1],
                                                                        name="p_re_lu"),
                                keras.layers.ReLU(name="re_lu"),
                                keras.layers.Softmax(name="softmax")], name="acts")  # fmt: skip
    captured, ours = [], []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    model.summary(print_fn=ours.append)
    assert ours[0] == captured[0]
    assert model.count_params() == 4


def test_configs_round_trip():
    layers = [L.ReLU(max_value=2.0, negative_slope=0.1, threshold=0.3), L.LeakyReLU(0.01),
              L.PReLU("ones", shared_axes=2), L.ELU(0.5), L.Softmax(axis=[1, 2]),
              L.Softmax(axis=1)]  # fmt: skip
    for layer in layers:
        clone = dn.layers.get(dn.layers.serialize(layer))
        assert clone.get_config() == layer.get_config()
    assert layers[2].get_config()["shared_axes"] == [2]
    assert layers[4].get_config()["axis"] == [1, 2] and layers[5].get_config()["axis"] == 1
