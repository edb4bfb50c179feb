"""Normalization layers beyond the generic catalogue tests: each torch/Keras divergence made
visible (torch's own module with its defaults gives other numbers, dualnet gives the reference's
on both backends, and torch's convention is one argument away), BatchNormalization's moving
statistics through ``fit``/``train_step``, freezing, summaries against Keras's own, shapes in
functional and Sequential models and their native torch/Keras models."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.reference import layers as RL
from dualnet.reference.layers import normalization as R

L = dn.layers


def _config(layer):
    return RL.layer_config(layer)


def _named(layer):
    return dict(zip(layer.weight_names(), layer.get_weights(), strict=True))


def _np(x):
    return np.asarray(dn.to_numpy(x), dtype=np.float64)


def _rng(seed=0):
    return np.random.default_rng(seed)


def _named_initial(layer):
    """Weights as they were before the first training call (Keras's initial values)."""
    shapes = dict(zip(layer.weight_names(), layer.weight_shapes(), strict=True))
    init = {"gamma": 1.0, "beta": 0.0, "moving_mean": 0.0, "moving_variance": 1.0}
    return {name: np.full(shape, init[name]) for name, shape in shapes.items()}


# -- BatchNormalization: the moving statistics -------------------------------------------------


def test_bn_moving_variance_differs_from_torch_default_and_matches_reference(backend, dtype):
    """At batch 8, torch's nn.BatchNorm1d (momentum 0.1 on the batch, unbiased variance) moves
    the statistics elsewhere than Keras's rule; dualnet follows the reference on both backends,
    and ``torch_defaults()`` reproduces torch's module exactly."""
    torch = _torch()
    x = 1.5 * _rng(1).standard_normal((8, 3)) + 0.5
    layer = L.BatchNormalization(dtype=dtype)
    y = _np(layer(x, training=True))
    mean, variance = layer.get_weights()[2:]
    ref_y, state = R.batch_normalization(x, _named_initial(layer), **_config(layer), training=True)
    # K = 8 throughout: each channel's statistics sum the batch of 8
    assert_close(y, ref_y, dtype, reduction=8)
    assert_close(mean, state["moving_mean"], dtype, reduction=8)
    assert_close(variance, state["moving_variance"], dtype, reduction=8)

    native = torch.nn.BatchNorm1d(3).double()  # torch's defaults, training mode
    native(torch.from_numpy(x))
    biased = np.var(x, axis=0)
    # torch: 0.9·old + 0.1·(batch, unbiased); Keras: 0.99·old + 0.01·batch. Far apart:
    assert_close(native.running_mean.numpy(), 0.1 * x.mean(0), "float64", reduction=8)
    assert_close(native.running_var.numpy(), 0.9 + 0.1 * biased * 8 / 7, "float64", reduction=8)
    assert np.max(np.abs(native.running_mean.numpy() - mean)) > 1e-2
    assert np.max(np.abs(native.running_var.numpy() - variance)) > 1e-2

    # Matched momentum and epsilon: only the variance estimator differs, by (1-m)·σ²/7.
    matched = L.BatchNormalization(momentum=0.9, epsilon=1e-5, dtype=dtype)
    matched(x, training=True)
    gap = np.abs(native.running_var.numpy() - matched.get_weights()[3])
    assert_close(gap, 0.1 * biased / 7, dtype, reduction=8)
    assert np.min(gap) > 1e-3  # 35x the float32 bound (atol 1e-5·√8)

    torch_like = L.BatchNormalization.torch_defaults(dtype=dtype)
    y_torch_like = _np(torch_like(x, training=True))
    fresh = torch.nn.BatchNorm1d(3).double()
    y_native = fresh(torch.from_numpy(x)).detach().numpy()
    assert_close(y_torch_like, y_native, dtype, reduction=8)
    assert_close(torch_like.get_weights()[2], fresh.running_mean.numpy(), dtype, reduction=8)
    assert_close(torch_like.get_weights()[3], fresh.running_var.numpy(), dtype, reduction=8)


def test_bn_matches_keras_own_layer(backend):
    """Keras's own BatchNormalization is the oracle of the default rule: output and moving
    statistics after a training call, then inference with them."""
    keras = _keras()
    x = _rng(2).standard_normal((6, 2, 2, 3)).astype("float32")
    layer = L.BatchNormalization(momentum=0.8)
    native = keras.layers.BatchNormalization(momentum=0.8)
    k = 6 * 2 * 2  # the values of a channel
    assert_close(_np(layer(x, training=True)), np.asarray(native(x, training=True)), "float32",
                 reduction=k)  # fmt: skip
    for ours, theirs in zip(layer.get_weights(), native.get_weights(), strict=True):
        assert_close(ours, theirs, "float32", reduction=k)
    assert_close(_np(layer(x)), np.asarray(native(x)), "float32", reduction=k)


def test_bn_channels_first_torch_defaults_is_batchnorm2d(backend):
    """torch's whole convention: ``torch_defaults(axis=1)`` on NCHW data is nn.BatchNorm2d in
    training (output, running statistics) and then in eval mode."""
    torch = _torch()
    x = _rng(3).standard_normal((4, 3, 2, 2)).astype("float32")
    layer = L.BatchNormalization.torch_defaults(axis=1)
    native = torch.nn.BatchNorm2d(3)
    k = 4 * 2 * 2  # the values of a channel
    assert_close(_np(layer(x, training=True)), native(torch.from_numpy(x)).detach().numpy(),
                 "float32", reduction=k)  # fmt: skip
    assert_close(layer.get_weights()[2], native.running_mean.numpy(), "float32", reduction=k)
    assert_close(layer.get_weights()[3], native.running_var.numpy(), "float32", reduction=k)
    native.eval()
    assert_close(_np(layer(x)), native(torch.from_numpy(x)).detach().numpy(), "float32",
                 reduction=k)  # fmt: skip


def test_bn_epsilon_visible_on_a_tiny_variance_channel(backend):
    x = _rng(4).standard_normal((8, 2))
    x[:, 1] *= 1e-3
    layer = L.BatchNormalization(dtype="float64")
    keras_eps = _np(layer(x, training=True))
    torch_eps = _np(L.BatchNormalization(epsilon=1e-5, dtype="float64")(x, training=True))
    # Channel 0 (variance ~1) barely moves; channel 1 (variance ~1e-6) is ~3x apart.
    assert np.max(np.abs(keras_eps[:, 0] - torch_eps[:, 0])) < 1e-2
    assert np.max(np.abs(torch_eps[:, 1])) > 2.5 * np.max(np.abs(keras_eps[:, 1]))
    ref, _ = R.batch_normalization(x, _named_initial(layer), **_config(layer), training=True)
    assert_close(keras_eps, ref, "float64", reduction=8)


def test_bn_half_precision_moving_statistics_rounded_once(backend):
    """float16: normalised and updated in float32, each moving statistic rounded once."""
    x = _rng(5).standard_normal((8, 3)).astype("float16")
    layer = L.BatchNormalization(dtype="float16")
    y = layer(x, training=True)
    assert backend_module(backend).core.dtype_name(y) == "float16"
    ref_y, state = R.batch_normalization(x.astype("float64"), _named_initial(layer),
                                         **_config(layer), training=True)  # fmt: skip
    mean, variance = layer.get_weights()[2:]
    assert mean.dtype == variance.dtype == np.float16
    np.testing.assert_array_equal(mean, state["moving_mean"].astype("float16"))
    np.testing.assert_array_equal(variance, state["moving_variance"].astype("float16"))
    # the sums in float32 and one rounding to float16: the float16 default, K = 1
    assert_close(_np(y), ref_y, "float16")


def test_bn_unbiased_estimator_refuses_one_value_per_channel(backend):
    """One value per channel: Keras's rule gives variance 0 and the output β (torch's module
    raises); the unbiased estimator cannot divide by n - 1 = 0 and says so, changing nothing."""
    x = np.array([[1.0, -2.0, 3.0]])
    layer = L.BatchNormalization(beta_initializer="ones", dtype="float64")
    np.testing.assert_array_equal(_np(layer(x, training=True)), np.ones((1, 3)))
    assert_close(layer.get_weights()[2], 0.01 * x[0], "float64")  # K = 1: one value
    assert_close(layer.get_weights()[3], np.full(3, 0.99), "float64")

    unbiased = L.BatchNormalization(moving_variance_estimator="unbiased", dtype="float64")
    unbiased(x)  # inference is fine
    before = unbiased.get_weights()
    with pytest.raises(ValueError, match=r"moving_variance_estimator='unbiased'.*got n=1"):
        unbiased(x, training=True)
    for got, want in zip(unbiased.get_weights(), before, strict=True):
        np.testing.assert_array_equal(got, want)


def test_bn_moving_statistics_outside_the_gradient(backend):
    """The update is not part of the autograd graph: the gradient of a training call is the
    batch-statistics one, and the moving statistics carry no graph."""
    layer = L.BatchNormalization(dtype="float64")
    x = _rng(6).standard_normal((5, 3))
    layer.build(x.shape)
    layer._realise(backend)
    b = backend_module(backend)
    params = b.layers.params(layer.native)
    cot = _rng(7).standard_normal(x.shape)
    _, grads = b.core.vjp(lambda t: layer(t, training=True), [b.core.convert_to_tensor(x)], [0],
                          cot, params=params)  # fmt: skip
    # d/dx of the batch-normalised output: (γ/σ)(g - mean(g) - x̂·mean(g·x̂)) per channel.
    mu, sigma = x.mean(0), np.sqrt(x.var(0) + 1e-3)
    xhat = (x - mu) / sigma
    expected = (cot - cot.mean(0) - xhat * (cot * xhat).mean(0)) / sigma
    assert_close(_np(grads[0]), expected, "float64", reduction=5)  # the means over the batch
    if backend == "torch":
        assert not layer.native.moving_mean.requires_grad
        assert layer.native.moving_mean.grad_fn is None
        assert layer.native.moving_variance.grad_fn is None


def test_bn_tf_function_updates_moving_statistics():
    """The Keras layer's update runs inside ``tf.function`` too, with an unknown batch size,
    and equals the eager update."""
    import tensorflow as tf

    x = _rng(8).standard_normal((6, 3)).astype("float32")
    with dn.use_backend("tensorflow"):
        eager = L.BatchNormalization(moving_variance_estimator="unbiased")
        graph = L.BatchNormalization(moving_variance_estimator="unbiased")
        for layer in (eager, graph):
            layer(x)  # realise
        step = tf.function(lambda t: graph.native(t, training=True),
                           input_signature=[tf.TensorSpec((None, 3), tf.float32)])  # fmt: skip
        for _ in range(2):
            y_eager = eager(x, training=True)
            y_graph = step(tf.constant(x))
        # the same Keras ops traced and eager, on the same data: the same bits
        np.testing.assert_array_equal(np.asarray(y_graph), _np(y_eager))
        for got, want in zip(graph.get_weights(), eager.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
        assert np.any(graph.get_weights()[2] != 0.0)  # the update ran: the mean moved from 0
        with pytest.raises(tf.errors.InvalidArgumentError, match="n > 1"):
            step(tf.constant(x[:1]))


def test_bn_frozen_layer_runs_inference_and_never_updates(backend):
    layer = L.BatchNormalization(trainable=False, dtype="float64")
    x = _rng(9).standard_normal((4, 3))
    weights = [np.array([1.5, 0.5, 2.0]), np.array([0.1, 0.2, 0.3]),
               np.array([0.5, -0.5, 0.0]), np.array([2.0, 1.0, 0.5])]  # fmt: skip
    layer.build(x.shape)
    layer.set_weights(weights)
    y = _np(layer(x, training=True))
    want = R.batch_normalization(x, _named(layer), **_config(layer), training=False)
    assert_close(y, want, "float64")  # K = 1: inference is elementwise
    for got, want in zip(layer.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(got, want)
    assert [w.trainable for w in layer.weights] == [False] * 4


# -- BatchNormalization in models --------------------------------------------------------------


def _bn_net(dtype="float32", first=False):
    dn.set_random_seed(0)
    head = [L.BatchNormalization(name="bn", dtype=dtype), L.Dense(2, name="head", dtype=dtype)]
    layers = head if first else [L.Dense(4, name="hidden", dtype=dtype), *head]
    return dn.Sequential([dn.Input((3,), dtype=dtype), *layers], name="bn_net")


def _keras_bn_net(frozen=False):
    keras = _keras()
    bn = keras.layers.BatchNormalization(name="bn")
    bn.trainable = not frozen
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(4, name="hidden"), bn,
                             keras.layers.Dense(2, name="head")], name="bn_net")  # fmt: skip


def _summary(model):
    out = []
    model.summary(print_fn=out.append)
    return out[0]


def _keras_summary(model):
    out = []
    model.summary(print_fn=lambda text, line_break=False: out.append(text))
    return out[0]


def _count_lines(text):
    return [line.strip() for line in text.splitlines() if "params:" in line]


@pytest.mark.parametrize("frozen", (False, True))
def test_summary_counts_equal_keras(backend, frozen):
    model = _bn_net()
    bn = model.layers[1]
    bn.trainable = not frozen
    k_model = _keras_bn_net(frozen)
    ours, theirs = _count_lines(_summary(model)), _count_lines(_keras_summary(k_model))
    assert ours == theirs
    assert theirs[2].startswith("Non-trainable params: " + ("16" if frozen else "8"))
    assert _summary(model) == _keras_summary(k_model)
    expected = [False] * 4 if frozen else [True, True, False, False]
    assert [w.trainable for w in bn.weights] == expected


@pytest.mark.parametrize(("center", "scale"), ((True, True), (False, True), (True, False)))
def test_weight_order_equals_keras(backend, center, scale):
    """Names, shapes and get_weights() order are Keras's (gamma, beta, moving_mean,
    moving_variance, the absent ones left out), in the canonical list and natively."""
    keras = _keras()
    values = {"gamma": 2.0, "beta": 3.0, "moving_mean": 4.0, "moving_variance": 5.0}
    inits = {f"{name}_initializer": value for name, value in values.items()}
    layer = L.BatchNormalization(
        center=center, scale=scale, **{k: dn.initializers.Constant(v) for k, v in inits.items()}
    )
    native = keras.layers.BatchNormalization(
        center=center, scale=scale, **{k: keras.initializers.Constant(v) for k, v in inits.items()}
    )
    native.build((None, 3))
    layer(np.zeros((2, 3)))
    names = [v.name for v in native.weights]
    assert [w.name for w in layer.weights] == names
    assert names[-2:] == ["moving_mean", "moving_variance"] and len(names) == 2 + center + scale
    for ours, theirs in zip(layer.get_weights(), native.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    if backend == "torch":  # parameters first, then buffers: Keras's order in the state dict
        assert list(layer.native.state_dict()) == names
    else:
        assert [v.name for v in layer.native.weights] == names


@pytest.mark.parametrize("dtype", ("float32", "float64"))
def test_fit_three_steps_same_moving_statistics_as_reference(dtype):
    """BatchNormalization first (its inputs are the data): 3 ``fit`` updates from the same
    batches give the moving statistics of 3 float64 reference updates, on both backends."""
    rng = _rng(10)
    x = rng.standard_normal((12, 3)) * np.array([1.0, 3.0, 0.2]) + np.array([0.0, 1.0, -2.0])
    y = rng.standard_normal((12, 2))
    stats = {}
    for backend in ("torch", "tensorflow"):
        with dn.use_backend(backend):
            model = _bn_net(dtype, first=True)
            model.compile(optimizer=dn.optimizers.SGD(0.1), loss="mse")
            model.fit(x, y, batch_size=4, epochs=1, shuffle=False, verbose=0)
            stats[backend] = model.layers[0].get_weights()[2:]
    bn = L.BatchNormalization()
    bn.build((None, 3))
    named = _named_initial(bn)
    for start in (0, 4, 8):
        _, state = R.batch_normalization(x[start : start + 4], named, **_config(bn),
                                         training=True)  # fmt: skip
        named.update(state)
    # K = 12: after 3 updates the moving statistics are weighted sums over the 3 batches of 4
    for mean, variance in stats.values():
        assert_close(mean, named["moving_mean"], dtype, reduction=12)
        assert_close(variance, named["moving_variance"], dtype, reduction=12)
    for a, b in zip(stats["torch"], stats["tensorflow"], strict=True):
        assert_close(a, b, dtype, reduction=12)


def test_train_step_moving_statistics_follow_reference_each_step():
    """Dense -> BatchNormalization -> Dense: each ``train_step`` moves the statistics as the
    float64 reference does from that backend's own weights before the step; after 3 steps the
    two backends agree."""
    rng = _rng(11)
    x, y = rng.standard_normal((12, 3)), rng.standard_normal((12, 2))
    final = {}
    for backend in ("torch", "tensorflow"):
        with dn.use_backend(backend):
            model = _bn_net("float64")
            model.compile(optimizer=dn.optimizers.SGD(0.1), loss="mse")
            for start in (0, 4, 8):
                before = model.get_weights()
                _, after = RL.model_forward(model, x[start : start + 4], before, training=True)
                model.train_step(x[start : start + 4], y[start : start + 4])
                # K: the Dense's 3 inputs and bias, then the batch of 4, in a chain
                assert_close(model.layers[1].get_weights()[2], after[4], "float64", reduction=8)
                assert_close(model.layers[1].get_weights()[3], after[5], "float64", reduction=8)
            final[backend] = model.get_weights()
    # The longest sum: the loss's mean over 4·2 values; 3 SGD steps carry rounding differences
    # forward like a random walk (x sqrt(3), as the parity suite's network training cases).
    for a, b in zip(final["torch"], final["tensorflow"], strict=True):
        assert_close(a, b, "float64", reduction=8, factor=3**0.5, why="3 SGD steps: x sqrt(3)")


def test_frozen_bn_in_fit_keeps_and_uses_moving_statistics(backend):
    model = _bn_net("float64")
    bn = model.layers[1]
    bn.trainable = False
    moving = [np.array([0.1, -0.2, 0.3, 0.0]), np.array([0.5, 2.0, 1.0, 1.5])]
    bn.set_weights([*bn.get_weights()[:2], *moving])
    frozen_before = bn.get_weights()
    rng = _rng(12)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 2))
    # Training mode uses the moving statistics: a frozen layer runs its inference ops, the same
    # output as inference bit for bit.
    np.testing.assert_array_equal(_np(model(x, training=True)), _np(model(x)))
    kernel_before = model.layers[0].get_weights()[0]
    model.compile(optimizer=dn.optimizers.SGD(0.1), loss="mse")
    model.fit(x, y, batch_size=4, epochs=2, verbose=0)
    for got, want in zip(bn.get_weights(), frozen_before, strict=True):
        np.testing.assert_array_equal(got, want)
    assert np.max(np.abs(model.layers[0].get_weights()[0] - kernel_before)) > 1e-3  # trained


# -- the other layers: divergences from torch's modules ------------------------------------------


def test_layer_norm_epsilon_differs_from_torch_default(backend):
    torch = _torch()
    x = 0.01 * _rng(13).standard_normal((3, 5))  # variance ~1e-4, between the two epsilons
    ours = _np(L.LayerNormalization(dtype="float64")(x))
    native = torch.nn.LayerNorm(5).double()(torch.from_numpy(x)).detach().numpy()
    assert np.max(np.abs(ours - native)) > 0.1
    want = R.layer_normalization(x, {"gamma": np.ones(5), "beta": np.zeros(5)})
    assert_close(ours, want, "float64", reduction=5)  # K: the 5 features
    matched = _np(L.LayerNormalization(epsilon=1e-5, dtype="float64")(x))
    assert_close(matched, native, "float64", reduction=5)


def test_layer_norm_on_images_axis_last_vs_torch_chw(backend):
    """Keras's axis=-1 normalises each pixel over its channels; torch's LayerNorm([C, H, W])
    normalises each image over everything, which is ``axis=[1, 2, 3]`` (γ as (H, W, C))."""
    torch = _torch()
    x = _rng(14).standard_normal((2, 3, 3, 4))
    nchw = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    native = torch.nn.LayerNorm([4, 3, 3], eps=1e-3).double()
    with torch.no_grad():
        native.weight.copy_(torch.from_numpy(_rng(15).standard_normal((4, 3, 3))))
    want = native(nchw).detach().numpy().transpose(0, 2, 3, 1)
    per_pixel = _np(L.LayerNormalization(dtype="float64")(x))
    assert np.max(np.abs(per_pixel - want)) > 0.5
    layer = L.LayerNormalization(axis=[1, 2, 3], dtype="float64")
    layer.build(x.shape)
    assert layer.weight_shapes() == [(3, 3, 4), (3, 3, 4)]
    layer.set_weights([native.weight.detach().numpy().transpose(1, 2, 0), np.zeros((3, 3, 4))])
    assert_close(_np(layer(x)), want, "float64", reduction=3 * 3 * 4)  # K: a whole image


def test_layer_norm_mixed_sign_axes_resolved_before_sorting(backend):
    x = _rng(16).standard_normal((2, 3, 2, 4))
    layer = L.LayerNormalization(axis=[-1, 1], dtype="float64")
    layer.build(x.shape)
    assert layer.axes == (1, 3) and layer.weight_shapes() == [(3, 4), (3, 4)]
    gamma = _rng(17).standard_normal((3, 4))
    layer.set_weights([gamma, np.zeros((3, 4))])
    y = _np(layer(x))
    want = R.layer_normalization(x, {"gamma": gamma, "beta": np.zeros((3, 4))}, axis=[-1, 1])
    assert_close(y, want, "float64", reduction=3 * 4)  # K: axes 1 and 3
    # Keras's own layer makes γ (4, 3) (axes sorted as given) and reshapes it to (1, 3, 1, 4):
    # even loaded with the right values (γ transposed), it scales the wrong elements.
    keras = _keras()
    native = keras.layers.LayerNormalization(axis=[-1, 1], dtype="float64")
    native.build(x.shape)
    assert tuple(native.gamma.shape) == (4, 3)
    native.gamma.assign(gamma.T)
    assert np.max(np.abs(np.asarray(native(x)) - y)) > 0.5


def test_group_norm_matches_torch_group_norm_with_its_epsilon(backend):
    torch = _torch()
    x = 0.01 * _rng(18).standard_normal((2, 2, 3, 4))
    nchw = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    native = torch.nn.GroupNorm(2, 4).double()(nchw).detach().numpy().transpose(0, 2, 3, 1)
    ours = _np(L.GroupNormalization(groups=2, dtype="float64")(x))
    assert np.max(np.abs(ours - native)) > 0.1  # epsilon 1e-3 vs 1e-5 at variance ~1e-4
    matched = _np(L.GroupNormalization(groups=2, epsilon=1e-5, dtype="float64")(x))
    k = 2 * 3 * 2  # a group: H·W × 2 channels
    assert_close(matched, native, "float64", reduction=k)
    channels_first = L.GroupNormalization(groups=2, axis=1, epsilon=1e-5, dtype="float64")
    assert_close(_np(channels_first(nchw.numpy())).transpose(0, 2, 3, 1), native, "float64",
                 reduction=k)  # fmt: skip


def test_rms_norm_epsilon_differs_from_torch_default(backend):
    torch = _torch()
    x = 1e-3 * _rng(19).standard_normal((2, 6)).astype("float32")  # mean square ~1e-6
    ours = _np(L.RMSNormalization()(x))
    native = torch.nn.RMSNorm(6)(torch.from_numpy(x)).detach().numpy()  # eps=None
    assert np.max(np.abs(ours - native)) > 0.1
    assert_close(ours, R.rms_normalization(x, {"scale": np.ones(6)}), "float32", reduction=6)
    machine = L.RMSNormalization(epsilon=float(np.finfo("float32").eps))
    assert_close(_np(machine(x)), native, "float32", reduction=6)


def test_rms_norm_scale_broadcast_over_non_trailing_axes(backend):
    x = _rng(20).standard_normal((2, 3, 4, 4))  # W == C: a misplaced scale would broadcast
    layer = L.RMSNormalization(axis=[1, 2], dtype="float64")
    layer.build(x.shape)
    scale = _rng(21).standard_normal((3, 4))
    layer.set_weights([scale])
    want = x / np.sqrt(np.mean(x**2, axis=(1, 2), keepdims=True) + 1e-6) * scale[:, :, None]
    assert_close(_np(layer(x)), want, "float64", reduction=3 * 4)  # K: axes 1 and 2


def test_unit_normalization_zero_vector_and_torch_normalize(backend):
    torch = _torch()
    x = _rng(22).standard_normal((3, 4))
    x[1] = 0.0
    layer = L.UnitNormalization(dtype="float64")
    y = _np(layer(x))
    native = torch.nn.functional.normalize(torch.from_numpy(x), dim=-1).numpy()
    assert_close(y, native, "float64", reduction=4)  # K: the 4 squares summed
    np.testing.assert_array_equal(y[1], 0.0)
    b = backend_module(backend)
    cot = _rng(23).standard_normal(x.shape)
    _, (grad,) = b.core.vjp(lambda t: layer(t), [b.core.convert_to_tensor(x)], [0], cot)
    grad = _np(grad)
    assert np.all(np.isfinite(grad))
    assert_close(grad[1] / 1e12, cot[1], "float64")  # the capped branch's derivative


def test_unit_normalization_half_precision_norm_in_float32(backend):
    """Keras's own layer sums the squares in float16, which overflows past a norm of ~256 and
    returns zeros; dualnet computes the norm in float32 and rounds the result once."""
    keras = _keras()
    x = np.array([[300.0, 0.0], [3.0, 4.0]], dtype="float16")
    np.testing.assert_array_equal(np.asarray(keras.layers.UnitNormalization(dtype="float16")(x))[0],
                                  [0.0, 0.0])  # fmt: skip
    y = L.UnitNormalization(dtype="float16")(x)
    assert backend_module(backend).core.dtype_name(y) == "float16"
    np.testing.assert_array_equal(_np(y), np.array([[1.0, 0.0], [0.6, 0.8]], "float16"))


# -- shapes, models, validation --------------------------------------------------------------------


def _stack():
    return [
        L.BatchNormalization(name="bn"),
        L.LayerNormalization(name="ln"),
        L.GroupNormalization(groups=2, name="gn"),
        L.RMSNormalization(name="rms"),
        L.UnitNormalization(name="unit"),
    ]


def test_functional_model_keeps_none_dims_and_native_model_runs(backend):
    inputs = dn.Input((None, 4))
    h = inputs
    for layer in _stack():
        h = layer(h)
        assert h.shape == (None, None, 4)
    model = dn.Model(inputs, h)
    x = _rng(24).standard_normal((2, 5, 4)).astype("float32")
    y = _np(model(x))
    assert y.shape == (2, 5, 4)
    # whatever the layers before computed, the last one's output has unit norm: K = its 4 squares
    assert_close(np.linalg.norm(y, axis=-1), 1.0, "float32", reduction=4)
    # model(x) runs the native model's ops: the same bits
    np.testing.assert_array_equal(
        _np(model.native(backend_module(backend).core.convert_to_tensor(x))), y
    )


def test_sequential_with_every_layer_and_channels_first(backend):
    model = dn.Sequential([
        dn.Input((4, 3, 3)),
        L.BatchNormalization(axis=1),
        L.GroupNormalization(groups=2, axis=1),
        L.LayerNormalization(axis=[1, 2, 3]),
        L.RMSNormalization(axis=[2, 3]),
        L.UnitNormalization(axis=[1, 2, 3]),
    ])  # fmt: skip
    x = _rng(25).standard_normal((2, 4, 3, 3)).astype("float32")
    y = _np(model(x, training=True))
    ref, _ = RL.model_forward(model, x, model.get_weights(), training=True)
    # Five normalizations in a chain: their sums' lengths add up, K = 2·3·3 (BN, training) +
    # 2·3·3 (GN) + 4·3·3 (LN) + 3·3 (RMS) + 4·3·3 (Unit); in inference BN's is elementwise.
    assert_close(y, ref, "float32", reduction=18 + 18 + 36 + 9 + 36)
    assert_close(_np(model.native(backend_module(backend).core.convert_to_tensor(x))),
                 RL.model_forward(model, x, model.get_weights())[0], "float32",
                 reduction=1 + 18 + 36 + 9 + 36)  # fmt: skip


def test_config_round_trip_keeps_torch_defaults():
    layer = L.BatchNormalization.torch_defaults(axis=1, center=False)
    clone = L.get(L.serialize(layer))
    assert clone.get_config() == layer.get_config()
    assert (clone.momentum, clone.epsilon, clone.moving_variance_estimator, clone.axis,
            clone.center) == (0.9, 1e-5, "unbiased", 1, False)  # fmt: skip


def test_built_layer_refuses_other_channels_or_rank(backend):
    layer = L.BatchNormalization()
    layer(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"built for inputs of shape \(None, 3\).*axis 1"):
        layer(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"built for inputs of rank 2"):
        layer(np.zeros((2, 5, 3)))
    ln = L.LayerNormalization(axis=[1, 2])
    ln(np.zeros((2, 3, 4, 5)))
    with pytest.raises(ValueError, match=r"axis 2"):
        ln(np.zeros((2, 3, 5, 5)))
    ln(np.zeros((7, 3, 4, 2)))  # other sizes along the other axes are fine


def test_unknown_normalised_size_is_refused():
    with pytest.raises(ValueError, match=r"size of axis 2 \(axis=-1\).*known"):
        L.LayerNormalization()(dn.Input((3, None)))
    assert L.UnitNormalization()(dn.Input((3, None))).shape == (None, 3, None)


def test_validation_before_any_seed_is_drawn():
    dn.set_random_seed(0)
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNormalization(momentum=-0.1, gamma_initializer="glorot_uniform")
    a = L.LayerNormalization(gamma_initializer="glorot_uniform").gamma_initializer.seed
    dn.set_random_seed(0)
    b = L.LayerNormalization(gamma_initializer="glorot_uniform").gamma_initializer.seed
    assert a == b
