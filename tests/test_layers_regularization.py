"""Regularization layers (Dropout, SpatialDropout1D/2D, GaussianNoise, GaussianDropout) beyond
the generic catalogue tests: the portable mask sequence call after call and inside models and
training, the torch/Keras divergences made visible, shapes in the functional API, validation.
"""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import tf as _tf
from frameworks import torch as _torch
from tolerances import assert_close

import dualnet as dn
from dualnet import random as dn_random
from dualnet._backend import BACKENDS, backend_module
from dualnet.layers.regularization import keep_mask, standard_normal
from dualnet.reference.layers import regularization as R

L = dn.layers


def _training_calls(layer_factory, x, calls):
    """Outputs of ``calls`` successive training calls of a fresh layer, per backend."""
    out = {}
    for name in BACKENDS:
        with dn.use_backend(name):
            layer = layer_factory()
            out[name] = [dn.to_numpy(layer(x, training=True)) for _ in range(calls)]
            assert layer.training_calls == calls
    return out


def test_same_seed_gives_the_same_dropout_masks_call_after_call():
    x = np.ones((4, 10), "float64")
    outs = _training_calls(lambda: L.Dropout(0.5, seed=123, dtype="float64"), x, 5)
    for k in range(5):
        np.testing.assert_array_equal(outs["torch"][k], outs["tensorflow"][k])
        keep = keep_mask(123, k, x.shape, 0.5)
        np.testing.assert_array_equal(outs["torch"][k], np.where(keep, 2.0, 0.0))
        reference = R.dropout(x, rate=0.5, seed=123, training=True, call=k)
        np.testing.assert_array_equal(outs["torch"][k], reference)
    # A new mask at every call, not one mask repeated.
    masks = {tuple(o.ravel() != 0) for o in outs["torch"]}
    assert len(masks) == 5


@pytest.mark.parametrize(
    "factory",
    [
        lambda: L.SpatialDropout1D(0.5, seed=9, dtype="float64"),
        lambda: L.GaussianNoise(0.4, seed=9, dtype="float64"),
        lambda: L.GaussianDropout(0.4, seed=9, dtype="float64"),
        lambda: L.Dropout(0.3, noise_shape=(None, 1, 4), seed=9, dtype="float64"),
    ],
    ids=["spatial1d", "gaussian_noise", "gaussian_dropout", "noise_shape"],
)
def test_same_seed_same_noise_on_both_backends_for_every_noise_layer(factory):
    x = np.random.default_rng(0).normal(size=(3, 5, 4))
    outs = _training_calls(factory, x, 3)
    for k in range(3):
        np.testing.assert_array_equal(outs["torch"][k], outs["tensorflow"][k])
    assert not np.array_equal(outs["torch"][0], outs["torch"][1])


def test_gaussian_layers_apply_the_documented_noise(backend):
    x = np.random.default_rng(1).normal(size=(4, 6))
    noise = L.GaussianNoise(0.25, seed=4, dtype="float64")
    mult = L.GaussianDropout(0.2, seed=4, dtype="float64")
    # The noise is drawn and scaled in float64 numpy (as here), then the backend adds or
    # multiplies once, as here: the same bits.
    for k in range(2):
        n = standard_normal(4, k, x.shape)
        np.testing.assert_array_equal(dn.to_numpy(noise(x, training=True)), x + 0.25 * n)
        sigma = np.sqrt(0.2 / 0.8)
        np.testing.assert_array_equal(dn.to_numpy(mult(x, training=True)), x * (1 + sigma * n))


@pytest.mark.parametrize("cls", [L.Dropout, L.GaussianNoise, L.GaussianDropout])
def test_inference_is_the_identity_and_draws_nothing(cls, backend):
    layer = cls(0.5, seed=1)
    x = np.random.default_rng(2).normal(size=(3, 4)).astype("float32")
    np.testing.assert_array_equal(dn.to_numpy(layer(x)), x)  # a bare call: inference
    np.testing.assert_array_equal(dn.to_numpy(layer(x, training=False)), x)
    assert layer.training_calls == 0
    assert not np.array_equal(dn.to_numpy(layer(x, training=True)), x)
    assert layer.training_calls == 1


def test_rate_zero_still_counts_the_call(backend):
    layer = L.Dropout(0.0, seed=1)
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(dn.to_numpy(layer(x, training=True)), x)
    assert layer.training_calls == 1


def test_torch_module_starts_in_training_mode_dualnet_bare_call_is_inference(backend):
    """The divergence: a fresh ``nn.Dropout`` drops units when called; Keras's and dualnet's
    bare call is inference."""
    torch = _torch()
    x = np.ones((8, 50), "float32")
    native = torch.nn.Dropout(0.5)
    assert native.training
    assert (native(torch.from_numpy(x)) == 0).any()
    np.testing.assert_array_equal(dn.to_numpy(L.Dropout(0.5, seed=0)(x)), x)


def test_native_masks_differ_between_frameworks_even_with_equal_seeds():
    """Why dualnet draws masks itself: torch's and TensorFlow's generators give different
    masks for the same seed, and dualnet's masks are the same on both backends."""
    torch = _torch()
    keras = _keras()
    x = np.ones((4, 64), "float32")
    torch.manual_seed(42)
    torch_mask = torch.nn.functional.dropout(torch.from_numpy(x), 0.5, training=True).numpy() != 0
    keras_mask = keras.layers.Dropout(0.5, seed=42)(x, training=True).numpy() != 0
    assert not np.array_equal(torch_mask, keras_mask)
    masks = []
    for name in BACKENDS:
        with dn.use_backend(name):
            masks.append(dn.to_numpy(L.Dropout(0.5, seed=42)(x, training=True)) != 0)
    np.testing.assert_array_equal(masks[0], masks[1])


def test_dropped_infinity_is_zero_where_torch_gives_nan(backend):
    """torch multiplies by the mask (a dropped inf becomes ``inf·0 = NaN``); Keras and dualnet
    select with ``where``: a dropped unit is 0 whatever it held."""
    torch = _torch()
    x = np.array([[np.inf, -np.inf, 1.0]], "float32")
    assert np.isnan(torch.nn.functional.dropout(torch.from_numpy(x), 1.0, True).numpy()).any()
    np.testing.assert_array_equal(dn.to_numpy(L.Dropout(1.0, seed=0)(x, training=True)),
                                  np.zeros_like(x))  # fmt: skip
    keep = keep_mask(3, 0, (1, 3), 0.5)
    y = dn.to_numpy(L.Dropout(0.5, seed=3)(x, training=True))
    assert not np.isnan(y).any()
    np.testing.assert_array_equal(y[~keep], 0.0)


def test_rate_one_gives_zero_gradient_not_nan(backend):
    layer = L.Dropout(1.0, seed=0)
    x = backend_module(backend).core.convert_to_tensor(np.ones((2, 3), "float32"))
    _, grads = backend_module(backend).core.vjp(lambda t: layer(t, training=True), [x], [0],
                                                np.ones((2, 3), "float32"))  # fmt: skip
    np.testing.assert_array_equal(dn.to_numpy(grads[0]), np.zeros((2, 3)))


def test_spatial_dropout2d_drops_whole_maps_where_torch_drops_dim_1(backend):
    """Channels last: dualnet's mask is constant over (H, W) per (sample, channel); torch's
    nn.Dropout2d on the same tensor treats dim 1 (here H) as the channels."""
    torch = _torch()
    x = np.ones((2, 6, 5, 8), "float32")
    torch.manual_seed(0)
    native = torch.nn.Dropout2d(0.5)(torch.from_numpy(x)).numpy() != 0
    assert not np.all(native == native[:, :1, :1, :])  # varies over H: not per channel
    for fmt in ("channels_last", "channels_first"):
        kept = dn.to_numpy(L.SpatialDropout2D(0.5, fmt, seed=5)(x, training=True)) != 0
        first = kept[:, :1, :1, :] if fmt == "channels_last" else kept[:, :, :1, :1]
        assert np.all(kept == first), fmt  # constant over the spatial axes
        assert kept.any() and not kept.all()


def test_unseeded_layer_draws_its_seed_from_dualnet_and_copies_keep_it():
    dn.set_random_seed(7)
    a = L.Dropout(0.5)
    dn.set_random_seed(7)
    b = L.Dropout(0.5)
    assert isinstance(a.seed, int) and a.seed == b.seed
    config = a.get_config()
    assert config["seed"] == a.seed  # Keras would store None: its copies draw other masks
    clone = L.Dropout.from_config(config)
    x = np.ones((3, 20), "float32")
    with dn.use_backend("torch"):
        y1 = dn.to_numpy(a(x, training=True))
    with dn.use_backend("tensorflow"):
        y2 = dn.to_numpy(clone(x, training=True))
    np.testing.assert_array_equal(y1, y2)


def test_failed_construction_draws_no_seed():
    dn.set_random_seed(3)
    with pytest.raises(ValueError, match=r"rate=2"):
        L.Dropout(2)
    with pytest.raises(TypeError, match=r"seed='1'"):
        L.GaussianNoise(0.1, seed="1")
    after_failures = dn_random.draw_seed()
    dn.set_random_seed(3)
    assert dn_random.draw_seed() == after_failures


def test_gaussian_dropout_rate_one_is_refused_where_keras_fails_at_call():
    keras = _keras()
    layer = keras.layers.GaussianDropout(1.0)  # Keras accepts the argument...
    with pytest.raises(ZeroDivisionError):  # ...and divides by zero when it trains
        layer(np.ones((2, 2), "float32"), training=True)
    with pytest.raises(ValueError, match=r"GaussianDropout: invalid rate=1\.0.*< 1"):
        L.GaussianDropout(1.0)
    assert L.Dropout(1.0).rate == 1.0  # Dropout accepts 1, as both frameworks do


def test_sequential_with_dropout_trains_identically_on_both_backends():
    """Five train_step updates from the same weights on torch and TensorFlow: the same masks
    at every step, so the same losses (float64, within the policy's bound)."""
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6)), rng.normal(size=(16, 2))
    dn.models.clear_session()
    dn.set_random_seed(1)
    with dn.use_backend("torch"):
        model = dn.Sequential([
            dn.Input((6,), dtype="float64"),
            L.Dense(32, activation="relu", dtype="float64"),
            L.Dropout(0.5, dtype="float64"),
            L.Dense(2, dtype="float64"),
        ])  # fmt: skip
    twin = model.to_backend("tensorflow")
    initial = model.get_weights()
    losses = {}
    for m in (model, twin):
        m.compile(optimizer="sgd", loss="mse")
        losses[m.backend] = [m.train_step(x, y)["loss"] for _ in range(5)]
        assert m.layers[1].training_calls == 5
    # The longest sum: the second Dense's 32 inputs and bias; 5 SGD steps carry rounding
    # differences forward like a random walk (x sqrt(5), as the parity suite's network cases).
    trained = {"reduction": 33, "factor": 5**0.5, "why": "5 SGD steps: x sqrt(5)"}
    assert_close(losses["torch"], losses["tensorflow"], "float64", **trained)
    for a, b in zip(model.get_weights(), twin.get_weights(), strict=True):
        assert_close(a, b, "float64", **trained)
    # The dropout did act: the same training without it gives other losses.
    dn.models.clear_session()
    with dn.use_backend("torch"):
        plain = dn.Sequential([dn.Input((6,), dtype="float64"),
                               L.Dense(32, activation="relu", dtype="float64"),
                               L.Dense(2, dtype="float64")])  # fmt: skip
    plain.set_weights(initial)
    plain.compile(optimizer="sgd", loss="mse")
    plain_losses = [plain.train_step(x, y)["loss"] for _ in range(5)]
    assert abs(plain_losses[0] - losses["torch"][0]) > 1e-3


def test_dropout_in_a_functional_model_with_unknown_length(backend):
    inputs = dn.Input((None, 4))
    out = L.Dropout(0.5, noise_shape=(None, 1, 4), seed=2)(inputs)
    assert out.shape == (None, None, 4)
    model = dn.Model(inputs, out)
    for steps in (3, 5):
        x = np.ones((2, steps, 4), "float32")
        np.testing.assert_array_equal(dn.to_numpy(model(x)), x)
        kept = dn.to_numpy(model(x, training=True)) != 0
        assert np.all(kept == kept[:, :1, :])  # the same features dropped at every step
    assert model.layers[1].training_calls == 2


def test_masks_inside_tf_function_follow_the_eager_sequence():
    tf = _tf()
    with dn.use_backend("tensorflow"):
        layer = L.Dropout(0.5, seed=11)
        x = np.ones((3, 8), "float32")
        layer(x)  # realise (inference: no draw)
        traced = tf.function(lambda t: layer.native(t, training=True))
        outs = [traced(tf.constant(x)).numpy() for _ in range(3)]
    assert layer.training_calls == 3
    for k, out in enumerate(outs):
        np.testing.assert_array_equal(out != 0, keep_mask(11, k, x.shape, 0.5))


def test_summary_matches_keras_and_counts_no_params(backend):
    keras = _keras()
    dn.models.clear_session()
    model = dn.Sequential([dn.Input((5,)), L.Dense(3), L.Dropout(0.2, seed=0),
                           L.GaussianNoise(0.1, seed=0)], name="reg")  # fmt: skip
    k_model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, name="dense"),
                                keras.layers.Dropout(0.2, name="dropout"),
                                keras.layers.GaussianNoise(0.1, name="gaussian_noise")],
                               name="reg")  # fmt: skip
    captured, ours = [], []
    k_model.summary(print_fn=lambda text, line_break=False: captured.append(text))
    model.summary(print_fn=ours.append)
    assert ours[0] == captured[0]
    assert model.count_params() == 18


def test_bad_noise_shape_and_rank_are_clear(backend):
    with pytest.raises(TypeError, match=r"noise_shape='ab'"):
        L.Dropout(0.5, noise_shape="ab")
    layer = L.Dropout(0.5, noise_shape=(None, 3, 1))
    with pytest.raises(ValueError, match=r"noise_shape=\(None, 3, 1\) does not fit inputs of "
                                         r"shape \(2, 4, 5\)"):  # fmt: skip
        layer(np.zeros((2, 4, 5), "float32"))
    assert not layer.built
    with pytest.raises(ValueError, match=r"SpatialDropout1D .* expects inputs of rank 3"):
        L.SpatialDropout1D(0.5)(np.zeros((2, 3), "float32"))
