"""The catalogue's convolutional networks as a user meets them: summary text and parameter
counts equal to the same network built with Keras's own layers (on both backends), the native
framework model runs it, and ``to_backend``/``from_config`` keep the weights, the moving
statistics and the dropout masks."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import backend_module
from dualnet.parity.catalogue.training_networks import dropout_cnn, lenet, residual
from dualnet.parity.network_training import NetworkTrainingCase

NETWORKS = {"lenet": lenet, "residual": residual, "dropout_cnn": dropout_cnn}
SHAPES = {"lenet": (28, 28, 1), "residual": (8, 8, 4), "dropout_cnn": (10, 10, 2)}
# K for an inference forward: the sums' lengths in a chain add up (the error bound of a product
# of matrices). lenet: conv 5·5·1 + 1, conv 5·5·4 + 1, Dense 4·4·6 + 1; residual: two bias-free
# convs 3·3·4 (BatchNormalization in inference is elementwise), the 8·8 pooling, Dense 4 + 1;
# dropout_cnn: conv 3·3·2 + 1, Dense 5·5·4 + 1.
FORWARD_K = {"lenet": 26 + 101 + 97, "residual": 36 + 36 + 64 + 5, "dropout_cnn": 19 + 101}


def _keras_twin(name: str):
    """The same network written with keras.layers (Keras's own names and defaults)."""
    keras = _keras()
    L = keras.layers
    if name == "lenet":
        return keras.Sequential([
            keras.Input((28, 28, 1)), L.Conv2D(4, 5, activation="relu", name="conv1"),
            L.MaxPooling2D(2, name="pool1"), L.Conv2D(6, 5, activation="relu", name="conv2"),
            L.MaxPooling2D(2, name="pool2"), L.Flatten(name="flatten"), L.Dense(10, name="logits"),
        ], name="lenet")  # fmt: skip
    if name == "dropout_cnn":
        return keras.Sequential([
            keras.Input((10, 10, 2)),
            L.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv"),
            L.Dropout(0.3, seed=11, name="dropout"), L.Flatten(name="flatten"),
            L.Dense(3, name="logits"),
        ], name="dropout_cnn")  # fmt: skip
    inputs = keras.Input((8, 8, 4), name="image")
    h = L.Conv2D(4, 3, padding="same", use_bias=False, name="conv1")(inputs)
    h = L.ReLU(name="relu1")(L.BatchNormalization(name="bn1")(h))
    h = L.BatchNormalization(name="bn2")(
        L.Conv2D(4, 3, padding="same", use_bias=False, name="conv2")(h)
    )
    h = L.ReLU(name="relu2")(L.Add(name="add")([inputs, h]))
    out = L.Dense(3, name="logits")(L.GlobalAveragePooling2D(name="pool")(h))
    return keras.Model(inputs, out, name="residual")


def _summary(model) -> str:
    out = []
    model.summary(print_fn=out.append)
    return out[0]


@pytest.mark.parametrize("name", NETWORKS)
def test_summary_equals_keras(name, backend):
    model = NETWORKS[name]("float32")
    twin = _keras_twin(name)
    captured = []
    twin.summary(print_fn=lambda text, line_break=False: captured.append(text))
    assert _summary(model) == captured[0]
    # Keras prefixes a Sequential's paths with the model name, a functional model's not.
    assert [w.path.split("/")[-2:] for w in model.weights] == [
        w.path.split("/")[-2:] for w in twin.weights
    ]
    assert len(model.trainable_weights) == len(twin.trainable_weights)
    assert len(model.non_trainable_weights) == len(twin.non_trainable_weights)


@pytest.mark.parametrize("name", NETWORKS)
def test_keras_twin_computes_the_same_with_the_same_weights(name, backend):
    """Keras's own layers given dualnet's canonical weights give dualnet's outputs: the
    canonical layout is Keras's, and dualnet's conventions are Keras's."""
    model = NETWORKS[name]("float32")
    twin = _keras_twin(name)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.0, 0.3, w.shape).astype("float32") for w in model.weights]
    weights = [np.abs(w) + 0.5 if "variance" in info.path else w
               for w, info in zip(weights, model.weights, strict=True)]  # fmt: skip
    model.set_weights(weights)
    twin.set_weights(weights)
    x = rng.normal(size=(3, *SHAPES[name])).astype("float32")
    assert_close(dn.to_numpy(model(x)), np.asarray(twin(x)), "float32", reduction=FORWARD_K[name])


@pytest.mark.parametrize("name", NETWORKS)
def test_native_model_runs_and_clone_keeps_state(name, backend):
    model = NETWORKS[name]("float32")
    x = np.random.default_rng(1).normal(size=(4, *SHAPES[name])).astype("float32")
    model.compile(optimizer="adam", loss=dn.losses.CategoricalCrossentropy(from_logits=True))
    labels = np.eye(dn.to_numpy(model(x)).shape[-1], dtype="float32")[[0, 1, 2, 0]]
    model.train_step(x, labels)  # moves BatchNormalization's moving statistics
    native = model.native
    xt = backend_module(backend).core.convert_to_tensor(x)
    direct = native(xt) if backend == "tensorflow" else native(xt, training=False)
    # model(x) runs the native model's ops in inference: the same bits
    np.testing.assert_array_equal(dn.to_numpy(direct), dn.to_numpy(model(x)))
    other = "tensorflow" if backend == "torch" else "torch"
    clone = model.to_backend(other)
    for a, b in zip(model.get_weights(), clone.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert_close(dn.to_numpy(clone(x)), dn.to_numpy(model(x)), "float32",
                 reduction=FORWARD_K[name])  # fmt: skip
    rebuilt = type(model).from_config(model.get_config())
    assert _summary(rebuilt) == _summary(model)


def test_mixed_dtype_model_casts_per_layer_on_both_backends(backend):
    """A float64 layer after a float32 one computes in float64 inside a model too (the native
    model's path), as a lone call and Keras do: the same dtypes and values on both backends."""
    inputs = dn.Input((3,))
    h = dn.layers.Dense(4, dtype="float64", name="d64")(inputs)
    r = dn.layers.ReLU(dtype="float64", name="relu")(dn.layers.Dense(4, name="d32")(inputs))
    out = dn.layers.Add(dtype="float64", name="add")([h, r])
    model = dn.Model(inputs, out)
    x = np.random.default_rng(0).normal(size=(2, 3)).astype("float32")
    y = model(x)
    assert backend_module(backend).core.dtype_name(y) == "float64"
    w = model.get_weights()
    x32 = x.astype(np.float64)
    # d32 rounds its output to float32 (its sum in another order than numpy's: float32 rounding
    # apart, K = 3 inputs + bias); ReLU and Add then run in float64.
    d32 = (x.astype(np.float32) @ w[2].astype(np.float32) + w[3]).astype(np.float32)
    expected = (x32 @ w[0] + w[1]) + np.maximum(d32.astype(np.float64), 0.0)
    assert_close(dn.to_numpy(y), expected, "float32", reduction=4)


def _data(name: str, n: int = 4):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(n, *SHAPES[name])).astype("float32")
    classes = {"lenet": 10, "residual": 3, "dropout_cnn": 3}[name]
    return x, np.eye(classes, dtype="float32")[np.arange(n) % classes]


@pytest.mark.parametrize("name", ["residual", "dropout_cnn"])
def test_value_and_gradients_changes_nothing(name, backend):
    """The parity helper runs a training-mode forward (batch statistics, dropout masks) and
    puts the moving statistics and the dropout call count back."""
    model = NETWORKS[name]("float32")
    x, y = _data(name)
    loss = dn.losses.CategoricalCrossentropy(from_logits=True)
    before = model.get_weights()
    state = [layer.get_runtime_state() for layer in model.layers]
    first = dn.training.value_and_gradients(model, x, y, loss)
    for a, b in zip(model.get_weights(), before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [layer.get_runtime_state() for layer in model.layers] == state
    second = dn.training.value_and_gradients(model, x, y, loss)  # the same masks again
    assert first[0] == second[0]


def test_to_backend_carries_the_next_dropout_mask(backend):
    """After training steps, the twin on the other backend continues with the same masks."""
    model = NETWORKS["dropout_cnn"]("float64")
    x, y = _data("dropout_cnn")
    loss = dn.losses.CategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=dn.optimizers.SGD(0.1), loss=loss)
    for _ in range(3):
        model.train_step(x, y)
    other = "tensorflow" if backend == "torch" else "torch"
    twin = model.to_backend(other)
    assert twin.layers[1].training_calls == model.layers[1].training_calls == 3
    twin.compile(optimizer=dn.optimizers.SGD(0.1), loss=loss)
    a, b = model.train_step(x, y)["loss"], twin.train_step(x, y)["loss"]
    # float64, mask 3 on both; the loss before the update: the forward (FORWARD_K), then the
    # mean over 4·3 cross-entropies
    assert_close(a, b, "float64", reduction=FORWARD_K["dropout_cnn"] + 12)


class _WrongReference(NetworkTrainingCase):
    """The network case with a reference loss off by 1e-3 (relative and absolute) and a moving
    statistics update off the same way: every anchored row must fail."""

    def reference_loss(self, model, x, y, weights, call=0):
        value, after = super().reference_loss(model, x, y, weights, call)
        frozen = [not w.trainable for w in model.weights]
        after = [a * 1.001 + 1e-3 if f else a for a, f in zip(after, frozen, strict=True)]
        return value * 1.001 + 1e-3, after


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_network_case_fails_against_a_wrong_reference(dtype):
    growth = dn.parity.Growth(factor=1.0, steps=3, why="3 updates: the one-step bound")
    kwargs = {"build": residual, "input_shape": (8, 8, 4), "classes": 3, "growth": growth,
              "optimizer": dn.optimizers.Adam(0.01), "reduction": 64, "steps": 3}  # fmt: skip
    right = NetworkTrainingCase(name="residual-short", **kwargs).evaluate(dtype, "cpu")
    assert all(r.status == "pass" for r in right), [r.explain() for r in right]
    wrong = _WrongReference(name="residual-short", **kwargs).evaluate(dtype, "cpu")
    status = {r.check: r.status for r in wrong}
    # loss and state are anchored every step; grad1's finite difference scales by 1.001; the
    # weights row compares the backends with each other only (so it still passes).
    assert status == {"loss": "FAIL", "state": "FAIL", "grad1": "FAIL", "weights": "pass"}, [
        r.explain() for r in wrong
    ]
