"""``dn.from_keras``: every Keras layer class dualnet maps, in several configurations, imported
on both backends and compared with the Keras model's own output; the realistic models of
``keras_models.py``; and the refusals.

Tolerances. float32: ``tolerances.assert_close`` with K = the case's longest sum (a Dense
fan-in + 1, a convolution's taps × input channels / groups + 1, a recurrent layer's steps ×
(features + units + 1), a normalization's averaged values; the models: the sums of their layers
added along the whole network, the bound of a product of matrices). float64: the largest
difference at most 1e-12 of the largest Keras output, except where TensorFlow's own float64
kernels round a constant to float32 (records ``tf-leaky_relu-float64-slope`` and
``tf-gelu-float64-constants`` in ``dualnet/parity/divergences.py``): there Keras itself is off
by float32 rounding, and the bound is four float32 roundings (4·2⁻²⁴) of the largest output;
likewise ``tf-resize-bilinear-float64`` (bilinear UpSampling2D), ``keras-relu-float64-max-value``
(LeakyReLU's slope) and ``keras-float32-hyperparameters`` (MultiHeadAttention's 1/√key_dim).

Training mode: the layers without randomness also run with ``training=True`` on both sides,
and every weight (BatchNormalization's moving statistics after their update) is compared after
the call. Noise layers (Dropout, GaussianNoise, ...) draw dualnet's portable masks, never
Keras's, so they are compared in inference only.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras_models as Z
import numpy as np
import pytest
from frameworks import keras as _keras
from tolerances import assert_close

import dualnet as dn
from dualnet._backend import BACKENDS
from dualnet.errors import UnsupportedModelError

# Where Keras's float64 path rounds through float32 (a constant, or a whole float32 computation
# such as TF's bilinear resize: the input, the interpolation and the output each rounded once),
# its error is a few float32 roundings of the output's scale.
FLOAT32_ROUNDINGS = 4 * 2.0**-24
FLOAT64_RELATIVE = 1e-12


@dataclass(frozen=True)
class Case:
    """One Keras model to import: ``build(keras)`` returns it (built under the case's dtype).

    Attributes:
        k: the longest sum (the float32 bound's K).
        noise: random in training mode (compared in inference only).
        divergence: a TensorFlow float64 record that puts Keras itself off by float32 rounding.
        valid_rows: compare only the steps a padding mask keeps (MultiHeadAttention's fully
            masked query rows: Keras gives a uniform average, dualnet zeros; both are masked).
        float64: Keras runs it in float64 (TensorFlow has no float64 3-D pooling kernels).
    """

    id: str
    build: Callable[[Any], Any]
    k: int = 1
    noise: bool = False
    divergence: str | None = None
    valid_rows: bool = False
    float64: bool = True


def one(make: Callable[[Any], Any], *shapes: Any) -> Callable[[Any], Any]:
    """A functional model around one layer: ``make(L)`` applied to Inputs of ``shapes`` (an
    ``("ids", steps)`` shape is int32 token ids)."""

    def build(keras: Any) -> Any:
        inputs = [keras.Input((s[1],), dtype="int32") if s[0] == "ids" else keras.Input(s)
                  for s in shapes]  # fmt: skip
        x = inputs if len(inputs) > 1 else inputs[0]
        return keras.Model(x, make(keras.layers)(x))

    return build


def chain(*makes: Callable[[Any], Any], shape: Any) -> Callable[[Any], Any]:
    """A Sequential of ``make(L)`` layers after an Input of ``shape``."""

    def build(keras: Any) -> Any:
        first = keras.Input((shape[1],), dtype="int32") if shape[0] == "ids" else keras.Input(shape)
        return keras.Sequential([first, *(m(keras.layers) for m in makes)])

    return build


def emb(L: Any) -> Any:
    return L.Embedding(Z.VOCAB, 3, mask_zero=True)


IDS = ("ids", Z.STEPS)
RNN_K = Z.STEPS * (3 + 4 + 1)  # steps × (features + units + 1)
# gelu_tanh is dualnet's name for torch's GELU(approximate="tanh"): Keras has no such name.
ACTIVATIONS = [*(n for n in dn.activations.NAMES if n != "gelu_tanh"), "swish", "hard_swish"]
# Keras's MultiHeadAttention scales by tf.cast(1/sqrt(key_dim), float64): the Python float goes
# through float32 first (key_dim 3: 1/sqrt(3) is not a float32).
MHA_SCALE = "keras-float32-hyperparameters"
F64_DIVERGENT = {"leaky_relu": "tf-leaky_relu-float64-slope", "gelu": "tf-gelu-float64-constants"}

CASES = [
    Case("dense", one(lambda L: L.Dense(4, activation="relu"), (5,)), k=6),
    Case("dense-3d-nobias", one(lambda L: L.Dense(3, use_bias=False), (4, 5)), k=5),
    *(Case(f"activation-{a}", one(lambda L, a=a: L.Activation(a), (6,)),
           k=6 if "softmax" in a else 1, divergence=F64_DIVERGENT.get(a))
      for a in ACTIVATIONS),
    Case("embedding", one(lambda L: L.Embedding(Z.VOCAB, 4), IDS)),
    Case("embedding-mask-lstm", chain(emb, lambda L: L.LSTM(4), shape=IDS), k=RNN_K),
    Case("masking-gru", one(lambda L: lambda x: L.GRU(4)(L.Masking(0.0)(x)), (Z.STEPS, 3)),
         k=RNN_K),
    Case("conv1d-causal-dilated", one(lambda L: L.Conv1D(4, 3, padding="causal",
                                                         dilation_rate=2), (9, 3)), k=10),
    Case("conv1d-same-stride2", one(lambda L: L.Conv1D(4, 3, 2, padding="same"), (9, 3)), k=10),
    Case("conv2d-valid", one(lambda L: L.Conv2D(4, 3, activation="tanh"), (7, 7, 3)), k=28),
    Case("conv2d-same-stride2", one(lambda L: L.Conv2D(4, 3, 2, padding="same"), (8, 8, 3)),
         k=28),
    Case("conv2d-groups-dilated", one(lambda L: L.Conv2D(4, 3, padding="same", groups=2,
                                                         dilation_rate=2), (8, 8, 4)), k=19),
    Case("conv3d", one(lambda L: L.Conv3D(2, 2, padding="same"), (4, 4, 4, 2)), k=17),
    Case("conv1d-transpose", one(lambda L: L.Conv1DTranspose(3, 3, 2), (5, 2)), k=7),
    Case("conv2d-transpose-same", one(lambda L: L.Conv2DTranspose(3, 3, 2, padding="same"),
                                      (4, 4, 2)), k=19),
    Case("conv2d-transpose-output-padding",
         one(lambda L: L.Conv2DTranspose(3, 3, 2, output_padding=1), (4, 4, 2)), k=19),
    Case("depthwise-same-stride2", one(lambda L: L.DepthwiseConv2D(3, 2, padding="same",
                                                                   depth_multiplier=2),
                                       (8, 8, 3)), k=10),
    Case("separable", one(lambda L: L.SeparableConv2D(4, 3, padding="same"), (6, 6, 3)), k=13),
    *(Case(f"{p.lower()}-{pad}", one(lambda L, p=p, pad=pad, s=s: getattr(L, p)(
        2, strides=s, padding=pad), shape), k=8, float64=not p.endswith("3D"))
      for p, shape in [("MaxPooling1D", (9, 3)), ("AveragePooling1D", (9, 3)),
                       ("MaxPooling2D", (7, 7, 2)), ("AveragePooling2D", (7, 7, 2)),
                       ("MaxPooling3D", (5, 5, 5, 2)), ("AveragePooling3D", (5, 5, 5, 2))]
      for pad, s in [("valid", None), ("same", 1)]),
    Case("maxpool2d-channels-first", one(lambda L: L.MaxPooling2D(2, data_format="channels_first"),
                                         (2, 6, 6))),
    Case("global-pools", one(lambda L: lambda x: L.Concatenate()([
        L.GlobalAveragePooling2D()(x), L.GlobalMaxPooling2D()(x),
        L.Flatten()(L.GlobalAveragePooling2D(keepdims=True, data_format="channels_first")(x))]),
        (4, 5, 3)), k=20),
    Case("global-pools-1d", one(lambda L: lambda x: L.Add()([L.GlobalAveragePooling1D()(x),
                                                             L.GlobalMaxPooling1D()(x)]),
                                (7, 3)), k=7),
    Case("global-average-masked", chain(emb, lambda L: L.GlobalAveragePooling1D(), shape=IDS),
         k=Z.STEPS),
    Case("batchnorm", one(lambda L: L.BatchNormalization(), (5, 5, 3)), k=50),
    Case("batchnorm-axis1-nocenter", one(lambda L: L.BatchNormalization(
        axis=1, center=False, momentum=0.9, epsilon=1e-5), (3, 5, 5)), k=50),
    Case("batchnorm-noscale-dense", one(lambda L: L.BatchNormalization(scale=False), (6,)), k=2),
    Case("batchnorm-frozen", one(lambda L: L.BatchNormalization(trainable=False), (5, 3)),
         k=2),
    Case("groupnorm", one(lambda L: L.GroupNormalization(2), (4, 4, 6)), k=48),
    Case("layernorm", one(lambda L: L.LayerNormalization(axis=[1, 2]), (4, 5)), k=20),
    Case("rmsnorm", one(lambda L: L.RMSNormalization(), (4, 5)), k=5),
    Case("unitnorm", one(lambda L: L.UnitNormalization(), (4, 5)), k=5),
    # Keras's float64 Rescaling casts its Python-float operands through float32.
    Case("rescaling", one(lambda L: L.Rescaling(1 / 127.5, offset=-1.0), (4, 4, 3)),
         divergence="keras-float32-hyperparameters"),
    Case("rescaling-per-channel", one(lambda L: L.Rescaling(
        np.array([0.5, -2.0, 1 / 3]), offset=(0.1, 0.0, -0.25)), (5, 3)),
        divergence="keras-float32-hyperparameters"),
    *(Case(f"noise-{n}", one(make, (4, 6)), noise=True) for n, make in [
        ("dropout", lambda L: L.Dropout(0.5, noise_shape=(None, 1, 6), seed=3)),
        ("gaussian-dropout", lambda L: L.GaussianDropout(0.3)),
        ("gaussian-noise", lambda L: L.GaussianNoise(0.2)),
        ("spatial-dropout1d", lambda L: L.SpatialDropout1D(0.5))]),
    Case("noise-spatial-dropout2d", one(lambda L: L.SpatialDropout2D(0.5), (3, 3, 2)), noise=True),
    Case("reshaping", one(lambda L: lambda x: L.Reshape((6, 5))(L.Permute((2, 1))(
        L.Cropping1D((1, 2))(L.ZeroPadding1D((2, 1))(L.UpSampling1D(2)(x))))), (3, 5))),
    Case("reshaping-2d", one(lambda L: lambda x: L.Flatten()(L.Cropping2D(((1, 0), (0, 2)))(
        L.ZeroPadding2D(((1, 2), (0, 1)))(L.UpSampling2D(2, interpolation="bilinear")(x)))),
        (3, 4, 2)), divergence="tf-resize-bilinear-float64"),
    Case("repeat-vector", one(lambda L: L.RepeatVector(3), (4,))),
    *(Case(f"merge-{m.lower()}", one(lambda L, m=m: getattr(L, m)(), (3, 4), (3, 4)))
      for m in ["Add", "Average", "Maximum", "Minimum", "Multiply", "Subtract"]),
    Case("merge-concatenate-axis1", one(lambda L: L.Concatenate(axis=1), (3, 4), (2, 4))),
    Case("elu", one(lambda L: L.ELU(0.5), (6,))),
    Case("leaky-relu", one(lambda L: L.LeakyReLU(0.1), (6,)),
         divergence="keras-relu-float64-max-value"),
    Case("prelu-shared", one(lambda L: L.PReLU(shared_axes=[1, 2]), (3, 3, 4))),
    Case("relu6", one(lambda L: L.ReLU(max_value=6.0), (6,))),
    Case("relu-threshold", one(lambda L: L.ReLU(negative_slope=0.1, threshold=0.5), (6,))),
    Case("softmax-axis1", one(lambda L: L.Softmax(axis=1), (5, 3)), k=5),
    Case("simple-rnn-sequences", one(lambda L: L.SimpleRNN(4, return_sequences=True),
                                     (Z.STEPS, 3)), k=RNN_K),
    Case("lstm-backwards-state", one(lambda L: L.LSTM(4, go_backwards=True, return_state=True),
                                     (Z.STEPS, 3)), k=RNN_K),
    Case("lstm-initial-state", one(lambda L: lambda xs: L.LSTM(4)(
        xs[0], initial_state=[xs[1], xs[2]]), (Z.STEPS, 3), (4,), (4,)), k=RNN_K),
    *(Case(f"gru-reset-after-{r}", one(lambda L, r=r: L.GRU(4, reset_after=r,
                                                           return_sequences=True),
                                       (Z.STEPS, 3)), k=RNN_K)
      for r in (True, False)),
    *(Case(f"bidirectional-{m}", chain(emb, lambda L, m=m: L.Bidirectional(
        L.LSTM(4, return_sequences=True), merge_mode=m), shape=IDS), k=RNN_K)
      for m in ("concat", "sum", "mul", "ave")),
    Case("bidirectional-none-gru", one(lambda L: L.Bidirectional(L.GRU(4), merge_mode=None),
                                       (Z.STEPS, 3)), k=RNN_K),
    Case("mha-self", one(lambda L: lambda x: L.MultiHeadAttention(2, 3)(x, x), (5, 4)), k=12,
         divergence=MHA_SCALE),
    Case("mha-cross-key-causal", one(lambda L: lambda xs: L.MultiHeadAttention(
        2, 3, value_dim=2, output_shape=5)(xs[0], xs[1], key=xs[2], use_causal_mask=True),
        (5, 4), (5, 3), (5, 2)), k=12, divergence=MHA_SCALE),
    Case("mha-attention-mask-scores", one(lambda L: lambda xs: L.MultiHeadAttention(2, 3)(
        xs[0], xs[0], attention_mask=L.Activation("relu")(xs[1]),
        return_attention_scores=True), (4, 4), (4, 4)), k=12, divergence=MHA_SCALE),
    Case("mha-padding-mask", one(lambda L: lambda x: L.MultiHeadAttention(2, 3)(
        emb(L)(x), emb(L)(x)), IDS), k=Z.STEPS + 6, valid_rows=True,
        divergence=MHA_SCALE),
    Case("shared-layer-two-inputs", one(lambda L: lambda xs: (lambda d: L.Subtract()(
        [d(xs[0]), d(xs[1])]))(L.Dense(3)), (4,), (4,)), k=5),
]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Helpers


def randomize(model: Any, seed: int = 0) -> Any:
    """Seeded weights of realistic scale: N(0, 0.5²), BatchNormalization's as a trained
    layer's (``keras_models.trained_statistics``)."""
    rng = np.random.default_rng(seed)
    for layer in Z._all_layers(model):
        if layer.weights and "BatchNormalization" not in type(layer).__name__:
            layer.set_weights([rng.normal(0.0, 0.5, w.shape).astype(w.dtype)
                               for w in layer.weights])  # fmt: skip
    return Z.trained_statistics(model, seed)


def case_inputs(model: Any, case: Case, dtype: str) -> Any:
    x = Z.inputs_for(model, batch=3, seed=1)
    if case.id == "mha-attention-mask-scores":  # the mask input: relu(N(0,1)) > 0 attends
        x[1] = np.where(x[1] > 0, 1.0, 0.0).astype(dtype)
    return x


def _flat(out: Any) -> list[np.ndarray]:
    items = out if isinstance(out, list | tuple) else [out]
    return [np.asarray(dn.to_numpy(o) if not isinstance(o, np.ndarray) else o) for o in items]


def _keras_flat(out: Any) -> list[np.ndarray]:
    items = out if isinstance(out, list | tuple) else [out]
    return [np.asarray(o) for o in items]


def check_outputs(actual: list[np.ndarray], expected: list[np.ndarray], dtype: str, k: int,
                  divergence: str | None = None, what: str = "") -> float:  # fmt: skip
    """Assert the case's bound; returns the worst |dualnet - keras| / max|keras|."""
    assert len(actual) == len(expected), what
    worst = 0.0
    for a, e in zip(actual, expected, strict=True):
        assert a.shape == e.shape and a.dtype == e.dtype, (what, a.shape, e.shape, a.dtype, e.dtype)
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        err = float(np.max(np.abs(a.astype(np.float64) - e))) if e.size else 0.0
        rel = err / scale if scale else err
        worst = max(worst, rel)
        assert np.array_equal(np.isfinite(a), np.isfinite(e)), what
        if dtype == "float32":
            assert_close(a, e, dtype, reduction=k, err_msg=what)
        elif divergence is not None:
            # Keras's float64 kernel rounds a constant to float32 (the record `divergence`).
            assert rel <= FLOAT32_ROUNDINGS, f"{what}: {rel:.3g} ({divergence})"
        else:
            assert rel <= FLOAT64_RELATIVE, f"{what}: relative error {rel:.3g}"
    return worst


_BUILT: dict[tuple[str, str], Any] = {}


def keras_model(case: Case, dtype: str) -> Any:
    """The case's Keras model in ``dtype`` (built once per dtype)."""
    key = (case.id, dtype)
    if key not in _BUILT:
        with Z.floatx(dtype):
            _BUILT[key] = randomize(case.build(_keras()))
    return _BUILT[key]


# --------------------------------------------------------------------------------------------
# Layers


def _grid(cases: list[Case]) -> list[Any]:
    return [pytest.param(c, d, id=f"{c.id}-{d}") for c in cases for d in ("float32", "float64")
            if d == "float32" or c.float64]  # fmt: skip


@pytest.mark.parametrize(("case", "dtype"), _grid(CASES))
def test_layer(case: Case, dtype: str, backend: str) -> None:
    km = keras_model(case, dtype)
    x = case_inputs(km, case, dtype)
    model = dn.from_keras(km)
    assert model.backend == backend and model.name == km.name
    names = sorted(layer.name for layer in model.layers if type(layer).__name__ != "InputLayer")
    assert names == sorted(layer.name for layer in Z._all_layers(km)
                           if type(layer).__name__ != "InputLayer")  # fmt: skip
    expected = _keras_flat(km(x))
    actual = _flat(model(x))
    if case.valid_rows:  # only the steps the padding mask keeps
        keep = x != 0
        actual, expected = [a[keep] for a in actual], [e[keep] for e in expected]
    check_outputs(actual, expected, dtype, case.k, case.divergence, f"{case.id} inference")


@pytest.mark.parametrize(("case", "dtype"), _grid([c for c in CASES if not c.noise]))
def test_layer_training(case: Case, dtype: str, backend: str) -> None:
    """``training=True`` on both sides: batch statistics, and every weight after the call
    (BatchNormalization's moving statistics updated)."""
    km = keras_model(case, dtype)
    x = case_inputs(km, case, dtype)
    model = dn.from_keras(km)
    before = km.get_weights()
    try:
        expected = _keras_flat(km(x, training=True))
        actual = _flat(model(x, training=True))
        if case.valid_rows:
            keep = x != 0
            actual, expected = [a[keep] for a in actual], [e[keep] for e in expected]
        check_outputs(actual, expected, dtype, case.k, case.divergence, f"{case.id} training")
        twins = {layer.name: layer for layer in model.layers}
        for layer in Z._all_layers(km):
            if layer.weights:
                check_outputs(twins[layer.name].get_weights(), layer.get_weights(), dtype,
                              case.k, None, f"{case.id} {layer.name} after training")  # fmt: skip
    finally:
        km.set_weights(before)


# --------------------------------------------------------------------------------------------
# Realistic models


def network_k(model: Any) -> int:
    """The sum over ``model``'s layers of each one's longest sum (dualnet layers, built)."""
    total = 0
    for layer in model.layers:
        shape = layer.input_shape
        config = layer.get_config()
        if not isinstance(shape, tuple):
            total += 1
            continue
        name = type(layer).__name__
        if name == "Dense":
            total += shape[-1] + 1
        elif name.startswith(("Conv", "Depthwise", "Separable")):
            taps = int(np.prod(config["kernel_size"]))
            channels = shape[-1] if config.get("data_format") != "channels_first" else shape[1]
            total += taps * channels // config.get("groups", 1) + channels + 1
        elif name in ("LSTM", "GRU", "SimpleRNN", "Bidirectional"):
            units = config.get("units") or config["layer"]["config"]["units"]
            total += shape[1] * (shape[-1] + units + 1)
        elif name.startswith("Global") or name in ("LayerNormalization", "MultiHeadAttention"):
            total += int(np.prod([d for d in shape[1:] if d]))
        else:
            total += 1
    return total


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(Z.ZOO))
def test_model(name: str, dtype: str, backend: str) -> None:
    with Z.floatx(dtype):
        km = Z.ZOO[name]()
    x = Z.inputs_for(km, batch=2, seed=1)
    start = time.perf_counter()
    model = dn.from_keras(km)
    seconds = time.perf_counter() - start
    assert model.name == Z.ZOO[name].__name__ or name in ("resnet50", "mobilenet_v2")
    assert model.count_params() == km.count_params()
    # The Transformer's float64 Keras path rounds GELU's 1/√2 and MHA's 1/√key_dim to float32.
    divergence = "tf-gelu-float64-constants" if name == "transformer_encoder" else None
    worst = check_outputs(_flat(model(x)), _keras_flat(km(x)), dtype, network_k(model),
                          divergence, name)  # fmt: skip
    print(f"{name} {dtype} {backend}: import {seconds:.2f}s, worst relative {worst:.3g}, "
          f"K={network_k(model)}")  # fmt: skip


def test_model_training_resnet_block(backend: str) -> None:
    """A residual CNN in training mode: batch statistics through three BatchNormalizations and
    the moving statistics after one call, as Keras computes them."""
    km = Z.residual_cnn()
    x = Z.inputs_for(km, batch=4, seed=2)
    model = dn.from_keras(km)
    expected = np.asarray(km(x, training=True))
    actual = _flat(model(x, training=True))[0]
    # K: the inference chain's, plus the batch statistics' sums (batch × H × W).
    check_outputs([actual], [expected], "float32", network_k(model) + 4 * 16 * 16, None,
                  "residual_cnn training")  # fmt: skip
    twins = {layer.name: layer for layer in model.layers}
    for layer in km.layers:
        if "BatchNormalization" in type(layer).__name__:
            check_outputs(twins[layer.name].get_weights(), layer.get_weights(), "float32",
                          4 * 16 * 16, None, f"{layer.name} moving statistics")  # fmt: skip


# --------------------------------------------------------------------------------------------
# Refusals


def _refused(km: Any) -> UnsupportedModelError:
    with pytest.raises(UnsupportedModelError) as info:
        dn.from_keras(km)
    return info.value


def test_regularizer_and_constraint_both_listed() -> None:
    keras = _keras()
    L = keras.layers
    inputs = keras.Input((4,))
    h = L.Dense(3, kernel_regularizer=keras.regularizers.L2(0.01), name="reg")(inputs)
    out = L.Dense(2, bias_constraint=keras.constraints.MaxNorm(2.0), name="cons")(h)
    error = _refused(keras.Model(inputs, out))
    assert len(error.problems) == 2
    assert "layer 'reg' (Dense): kernel_regularizer=L2(l2=0.01" in error.problems[0]
    assert "layer 'cons' (Dense): bias_constraint=MaxNorm(" in error.problems[1]
    assert "2 unsupported items" in str(error)


def test_activity_regularizer_and_dtype_policy() -> None:
    keras = _keras()
    L = keras.layers
    error = _refused(keras.Sequential([
        keras.Input((4,)), L.Dense(3, activity_regularizer="l2", name="act"),
        L.Dense(2, dtype="mixed_float16", name="mixed")]))  # fmt: skip
    assert any("'act'" in p and "activity_regularizer" in p for p in error.problems)
    assert any("'mixed'" in p and "mixed_float16" in p for p in error.problems)


def test_unsupported_classes_listed_with_what_is_supported() -> None:
    keras = _keras()
    L = keras.layers

    class MyDense(L.Dense):
        pass

    inputs = keras.Input((4,))
    h = L.Lambda(lambda t: t * 2, name="double")(inputs)
    h = MyDense(3, name="mine")(h)
    h = L.Dropout(0.5, name="mc")(h, training=True)
    out = keras.ops.add(h, 1.0)
    error = _refused(keras.Model(inputs, out))
    text = "\n".join(error.problems)
    assert "layer 'double' (Lambda)" in text and "arbitrary Python function" in text
    assert "layer 'mine' (MyDense)" in text and "Conv2D" in text
    assert "layer 'mc' (Dropout): called with training=True" in text
    assert "(Add)" in text


def test_subclassed_model_refused() -> None:
    keras = _keras()

    class Net(keras.Model):
        def __init__(self):
            super().__init__(name="net")
            self.dense = keras.layers.Dense(2)

        def call(self, x):
            return self.dense(x)

    net = Net()
    net(np.zeros((1, 3), "float32"))
    error = _refused(net)
    assert "model 'net' (Net)" in error.problems[0] and "functional" in error.problems[0]


@pytest.mark.filterwarnings("ignore:You passed `rms_scaling=True`")
def test_settings_without_equivalent() -> None:
    keras = _keras()
    L = keras.layers
    error = _refused(keras.Sequential([
        keras.Input(batch_shape=(2, 4, 6)), L.LayerNormalization(rms_scaling=True, name="ln"),
        L.BatchNormalization(renorm=True, name="bn"), L.LSTM(2, stateful=True, name="lstm"),
        L.Dense(2, name="a.b")]))  # fmt: skip
    text = "\n".join(error.problems)
    assert "'ln' (LayerNormalization): rms_scaling=True" in text
    assert "'bn' (BatchNormalization): renorm=True" in text
    assert "'lstm' (LSTM)" in text and "stateful" in text
    assert "'a.b' (Dense)" in text and "Rename" in text


def test_rescaling_operands_and_channels_first_scale() -> None:
    """Serialized numpy operands import by value; a per-channel scale under Keras's
    channels_first image format (broadcast on axis -3 by Keras) is refused, a per-channel
    offset (the last axis in both) is not."""
    keras = _keras()
    L = keras.layers
    km = keras.Sequential([keras.Input((2, 3)), L.Rescaling(np.array([1.0, 2.0, 3.0]),
                                                            offset=0.5, name="pre")])  # fmt: skip
    assert dn.from_keras(km).layers[-1].scale == (1.0, 2.0, 3.0)
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")
    try:
        error = _refused(keras.Sequential([keras.Input((3, 2, 2)),
                                           L.Rescaling([1.0, 2.0, 3.0], name="pre")]))  # fmt: skip
        offset_only = keras.Sequential([keras.Input((2, 3)),
                                        L.Rescaling(2.0, offset=[1.0, 2.0, 3.0])])  # fmt: skip
        x = np.random.default_rng(0).standard_normal((2, 2, 3)).astype(np.float32)
        np.testing.assert_array_equal(dn.to_numpy(dn.from_keras(offset_only)(x)),
                                      np.asarray(offset_only(x)))  # fmt: skip
    finally:
        keras.config.set_image_data_format(before)
    assert "'pre' (Rescaling): scale=[1.0, 2.0, 3.0] per channel" in error.problems[0]
    assert "channels_first" in error.problems[0]


def test_bad_arguments_and_state_kept() -> None:
    keras = _keras()
    with pytest.raises(TypeError, match="from_keras: invalid model="):
        dn.from_keras(object())
    with pytest.raises(ValueError, match="backend"):
        dn.from_keras(Z.nested_blocks(), backend="jax")
    unbuilt = keras.Sequential([keras.layers.Dense(2)])
    assert "not built" in _refused(unbuilt).problems[0]
    dn.set_random_seed(5)
    expected = dn.random.generator().integers(0, 10**9)
    dn.set_random_seed(5)
    bad = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="x.y")])
    _refused(bad)
    assert dn.random.generator().integers(0, 10**9) == expected  # global state restored


def test_name_argument_and_model_name() -> None:
    km = Z.nested_blocks()
    assert dn.from_keras(km, name="twin").name == "twin"
    assert dn.from_keras(Z.mobilenet_v2()).name == "mobilenetv2_0_35_32"


def test_importing_does_not_load_a_framework() -> None:
    code = (
        "import sys, dualnet, dualnet.interop.keras_import, dualnet.interop.keras_layers; "
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cross_backend_twins_agree() -> None:
    """The two backends' twins of one Keras model give the same numbers as each other."""
    km = Z.transformer_encoder()
    x = Z.inputs_for(km, batch=3, seed=4)
    outs = [_flat(dn.from_keras(km, backend=b)(x))[0] for b in BACKENDS]
    assert_close(outs[0], outs[1], "float32", reduction=network_k(dn.from_keras(km)))


def test_mask_refusals() -> None:
    """An explicit mask argument, and a mask Keras itself drops (a call with initial_state)."""
    keras = _keras()
    L = keras.layers
    seq, given = keras.Input((5, 2)), keras.Input((5,), dtype="bool")
    error = _refused(keras.Model([seq, given], L.LSTM(3, name="explicit")(seq, mask=given)))
    assert "layer 'explicit' (LSTM): called with mask=" in error.problems[0]
    ids, h, c = keras.Input((5,), dtype="int32"), keras.Input((3,)), keras.Input((3,))
    x = L.Embedding(10, 2, mask_zero=True)(ids)
    error = _refused(keras.Model([ids, h, c], L.LSTM(3, name="state")(x, initial_state=[h, c])))
    assert "layer 'state' (LSTM): Keras ignores the mask" in error.problems[0]


def test_nested_models_and_initializers(backend: str) -> None:
    """A Sequential inside a Sequential stays a Sequential (flattened); a functional model
    inside one makes the twin functional. Initializers dualnet has are carried into the twin's
    config; one it lacks (Identity) leaves dualnet's default."""
    keras = _keras()
    L = keras.layers
    inner = keras.Sequential([
        keras.Input((4,)), L.Dense(3, kernel_initializer="he_normal", name="he"),
        L.Dense(3, kernel_initializer=keras.initializers.Identity(), name="identity")])  # fmt: skip
    outer = randomize(keras.Sequential([keras.Input((4,)), inner, L.Dense(2, name="head")]))
    x = np.random.default_rng(3).standard_normal((2, 4)).astype("float32")
    twin = dn.from_keras(outer)
    assert isinstance(twin, dn.Sequential) and [t.name for t in twin.layers] == [
        "he", "identity", "head"]  # fmt: skip
    check_outputs(_flat(twin(x)), [np.asarray(outer(x))], "float32", 10)
    configs = {t.name: t.get_config()["kernel_initializer"]["class_name"] for t in twin.layers}
    assert configs == {"he": "HeNormal", "identity": "GlorotUniform", "head": "GlorotUniform"}
    inputs = keras.Input((4,))
    block = keras.Model(inputs, L.Dense(3, name="inside")(inputs), name="block")
    outer = randomize(keras.Sequential([keras.Input((4,)), block, L.Dense(2, name="after")]))
    twin = dn.from_keras(outer)
    assert not isinstance(twin, dn.Sequential)
    check_outputs(_flat(twin(x)), [np.asarray(outer(x))], "float32", 10)
