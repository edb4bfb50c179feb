"""A small zoo of realistic Keras models with random weights, for import and check tests.

Each factory builds a fresh, built Keras model with seeded random weights (nothing is ever
downloaded: ``keras.applications`` models are made with ``weights=None``); :func:`inputs_for`
draws matching seeded inputs. Build float64 models inside :func:`floatx`. Keras is imported
through ``frameworks.keras()`` (torch first, then TensorFlow).

=====================  ====================================================================
factory                what it exercises
=====================  ====================================================================
resnet50               keras.applications ResNet50: ZeroPadding2D, strided convs, BN
                       (epsilon 1.001e-5), MaxPooling2D, Add, 53 conv layers
mobilenet_v2           keras.applications MobileNetV2 (alpha 0.35): DepthwiseConv2D, ReLU(6),
                       "valid" convs after explicit ZeroPadding2D, inverted residuals
residual_cnn           a small functional residual CNN: conv-BN-ReLU, a shortcut conv, Add
lstm_classifier        Embedding(mask_zero=True) -> LSTM -> Dense: the mask skips padding
bigru_classifier       Embedding(mask_zero=True) -> Bidirectional(GRU, sequences) -> pooling
transformer_encoder    a functional Transformer encoder block: MultiHeadAttention (self
                       attention, padding mask from the Embedding), LayerNormalization,
                       a Dense feed-forward, residual Adds
nested_blocks          a Sequential block used twice inside a functional model (shared)
=====================  ====================================================================
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from frameworks import keras as _keras

VOCAB, STEPS = 40, 12


@contextlib.contextmanager
def floatx(dtype: str) -> Iterator[None]:
    """Build Keras models whose layers default to ``dtype`` inside the block (restored after).

    Keras caches its global dtype policy on first use (``DTypePolicy(floatx())``), after which
    ``set_floatx`` alone no longer changes new layers' dtype: both are set, and restored."""
    keras = _keras()
    previous = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_floatx(previous[0])
        keras.config.set_dtype_policy(previous[1])


def _seeded(seed: int) -> Any:
    keras = _keras()
    keras.utils.set_random_seed(seed)
    return keras


def trained_statistics(model: Any, seed: int = 0) -> Any:
    """Give every BatchNormalization of ``model`` the state of a trained layer (seeded):
    gamma U(0.5, 1.5), beta N(0, 0.1²), moving mean N(0, 0.1²), moving variance U(0.5, 1.5).
    A fresh one (mean 0, variance 1, and MobileNetV2's zero-initialised gammas) would make
    inference nearly the identity and hide the statistics' role."""
    keras = _keras()
    rng = np.random.default_rng(seed)
    for layer in _all_layers(model):
        if isinstance(layer, keras.layers.BatchNormalization):
            draws = {"gamma": lambda n: rng.uniform(0.5, 1.5, n),
                     "beta": lambda n: rng.normal(0.0, 0.1, n),
                     "moving_mean": lambda n: rng.normal(0.0, 0.1, n),
                     "moving_variance": lambda n: rng.uniform(0.5, 1.5, n)}  # fmt: skip
            layer.set_weights([draws[w.name](w.shape).astype(w.dtype) for w in layer.weights])
    return model


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in model.layers:
        out.extend(_all_layers(layer) if hasattr(layer, "layers") else [layer])
    return out


def resnet50(input_shape: tuple[int, ...] = (32, 32, 3), classes: int = 10, seed: int = 0):
    """keras.applications.ResNet50, random weights (``weights=None``), logits out."""
    keras = _seeded(seed)
    model = keras.applications.ResNet50(weights=None, input_shape=input_shape, classes=classes,
                                        classifier_activation=None)  # fmt: skip
    return trained_statistics(model, seed)


def mobilenet_v2(input_shape: tuple[int, ...] = (32, 32, 3), alpha: float = 0.35,
                 classes: int = 10, seed: int = 0):  # fmt: skip
    """keras.applications.MobileNetV2, random weights (``weights=None``), logits out."""
    keras = _seeded(seed)
    model = keras.applications.MobileNetV2(weights=None, input_shape=input_shape, alpha=alpha,
                                           classes=classes, classifier_activation=None)  # fmt: skip
    return trained_statistics(model, seed)


def residual_cnn(input_shape: tuple[int, ...] = (16, 16, 3), seed: int = 0):
    """Two residual stages (conv-BN-ReLU, a strided shortcut conv), pooling, Dense."""
    keras = _seeded(seed)
    L = keras.layers
    inputs = keras.Input(input_shape, name="image")
    h = L.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(inputs)
    h = L.ReLU(name="stem_relu")(L.BatchNormalization(name="stem_bn")(h))
    for i, (filters, stride) in enumerate([(8, 1), (16, 2)]):
        y = L.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                     name=f"block{i}_conv1")(h)  # fmt: skip
        y = L.ReLU(name=f"block{i}_relu1")(L.BatchNormalization(name=f"block{i}_bn1")(y))
        y = L.Conv2D(filters, 3, padding="same", use_bias=False, name=f"block{i}_conv2")(y)
        y = L.BatchNormalization(name=f"block{i}_bn2")(y)
        if stride != 1 or h.shape[-1] != filters:
            h = L.Conv2D(filters, 1, strides=stride, name=f"block{i}_shortcut")(h)
        h = L.ReLU(name=f"block{i}_out")(L.Add(name=f"block{i}_add")([h, y]))
    h = L.GlobalAveragePooling2D(name="pool")(h)
    model = keras.Model(inputs, L.Dense(5, name="logits")(h), name="residual_cnn")
    return trained_statistics(model, seed)


def lstm_classifier(seed: int = 0):
    """Token ids (0 = padding) -> Embedding(mask_zero) -> LSTM -> Dense softmax."""
    keras = _seeded(seed)
    L = keras.layers
    return keras.Sequential([
        keras.Input((STEPS,), dtype="int32", name="tokens"),
        L.Embedding(VOCAB, 8, mask_zero=True, name="embedding"),
        L.LSTM(16, name="lstm"),
        L.Dense(3, activation="softmax", name="classes"),
    ], name="lstm_classifier")  # fmt: skip


def bigru_classifier(seed: int = 0):
    """Token ids -> Embedding(mask_zero) -> Bidirectional(GRU, sequences) -> masked average."""
    keras = _seeded(seed)
    L = keras.layers
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    h = L.Embedding(VOCAB, 8, mask_zero=True, name="embedding")(tokens)
    h = L.Bidirectional(L.GRU(6, return_sequences=True, name="gru"), name="bigru")(h)
    h = L.GlobalAveragePooling1D(name="pool")(h)
    return keras.Model(tokens, L.Dense(2, name="logits")(h), name="bigru_classifier")


def transformer_encoder(dim: int = 16, heads: int = 2, seed: int = 0):
    """One post-norm Transformer encoder block over embedded tokens (padding masked)."""
    keras = _seeded(seed)
    L = keras.layers
    tokens = keras.Input((STEPS,), dtype="int32", name="tokens")
    x = L.Embedding(VOCAB, dim, mask_zero=True, name="embedding")(tokens)
    attended = L.MultiHeadAttention(heads, dim // heads, name="attention")(x, x)
    x = L.LayerNormalization(epsilon=1e-6, name="norm1")(L.Add(name="residual1")([x, attended]))
    ff = L.Dense(2 * dim, activation="gelu", name="ff1")(x)
    ff = L.Dense(dim, name="ff2")(L.Dropout(0.1, name="ff_dropout")(ff))
    x = L.LayerNormalization(epsilon=1e-6, name="norm2")(L.Add(name="residual2")([x, ff]))
    x = L.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(tokens, L.Dense(3, name="logits")(x), name="transformer_encoder")


def nested_blocks(seed: int = 0):
    """A Sequential block (Dense-LayerNorm-Dense) applied to two inputs: one shared block."""
    keras = _seeded(seed)
    L = keras.layers
    block = keras.Sequential([
        keras.Input((6,)), L.Dense(8, activation="tanh", name="block_dense1"),
        L.LayerNormalization(name="block_norm"), L.Dense(4, name="block_dense2"),
    ], name="block")  # fmt: skip
    a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
    merged = L.Concatenate(name="concat")([block(a), block(b)])
    return keras.Model([a, b], L.Dense(2, name="head")(merged), name="nested_blocks")


ZOO: dict[str, Callable[..., Any]] = {
    "resnet50": resnet50, "mobilenet_v2": mobilenet_v2, "residual_cnn": residual_cnn,
    "lstm_classifier": lstm_classifier, "bigru_classifier": bigru_classifier,
    "transformer_encoder": transformer_encoder, "nested_blocks": nested_blocks,
}  # fmt: skip


def inputs_for(model: Any, batch: int = 2, seed: int = 0) -> Any:
    """Seeded inputs for ``model``: N(0, 1) floats in the input dtype, or token ids in
    [1, VOCAB) with trailing padding (0) of a different length per row. A list for several
    inputs, one array otherwise."""
    rng = np.random.default_rng(seed)
    out = []
    for tensor in model.inputs:
        shape = (batch, *tensor.shape[1:])
        if "int" in str(tensor.dtype):
            ids = rng.integers(1, VOCAB, size=shape)
            for row in range(batch):
                ids[row, shape[1] - (2 * row + 1) % shape[1] :] = 0  # row r: 2r+1 padded steps
            out.append(ids.astype(str(tensor.dtype)))
        else:
            out.append(rng.standard_normal(shape).astype(str(tensor.dtype)))
    return out[0] if len(out) == 1 else out
