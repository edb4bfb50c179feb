"""Native-op departures met by the sequence layers (Embedding, Masking, MultiHeadAttention,
recurrent layers), as plain records that :mod:`dualnet.parity.divergences` turns into
:class:`~dualnet.parity.divergences.Divergence` entries (this module imports nothing of it).
Each probe runs the native op on a tiny input and returns how far it lands from the rule."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from dualnet.parity._frameworks import tf as _tf
from dualnet.parity._frameworks import torch as _torch
from dualnet.reference.layers import recurrent as RR


def _probe_keras_global_average_pooling1d_fully_masked() -> float:
    _tf()
    import keras
    import numpy as np

    x = np.ones((1, 3, 2), "float32")
    mask = np.zeros((1, 3), bool)  # no valid step
    y = keras.layers.GlobalAveragePooling1D()(x, mask=mask).numpy()
    return float(np.max(np.abs(y - 0.0))) if np.all(np.isfinite(y)) else math.inf


def _probe_keras_embedding_fractional_id() -> float:
    _tf()
    import keras
    import numpy as np

    layer = keras.layers.Embedding(4, 2, embeddings_initializer="ones")
    try:
        y = layer(np.array([[1.7]])).numpy()
    except Exception:
        return 0.0
    return 1.0 if np.all(y == 1.0) else 0.0  # accepted 1.7 and returned row 1


def _probe_keras_masking_half_precision() -> float:
    _tf()
    import keras
    import numpy as np

    x = np.full((1, 2, 3), 0.1, "float16")  # every feature equals mask_value in float16
    mask = keras.layers.Masking(mask_value=0.1, dtype="float16").compute_mask(
        keras.ops.convert_to_tensor(x)
    )
    return float(np.sum(np.asarray(mask)))  # steps left unmasked (want 0)


def _probe_torch_mha_empty_row() -> float:
    """torch nn.MultiheadAttention with its default need_weights=True on a query row whose
    every key is masked: NaN (inf here) where the rule gives the output bias."""
    torch = _torch()
    torch.manual_seed(0)
    module = torch.nn.MultiheadAttention(4, 2, batch_first=True).double()
    q, v = torch.randn(1, 2, 4, dtype=torch.float64), torch.randn(1, 3, 4, dtype=torch.float64)
    masked = torch.tensor([[False, False, False], [True, True, True]])  # row 1: nothing
    out, _ = module(q, v, v, attn_mask=masked)  # need_weights=True, the default
    row = out[0, 1].detach().numpy()
    if not np.all(np.isfinite(row)):
        return math.inf
    return float(np.max(np.abs(row - module.out_proj.bias.detach().numpy())))


def _probe_keras_mha_empty_row_default_path() -> float:
    """Keras's own MultiHeadAttention without dropout and return_attention_scores goes through
    ops.dot_product_attention, which gives a row with no key the uniform average of the values;
    its explicit path (Softmax, which zeroes masked positions) gives zeros. Returns
    max|default - explicit| on that row."""
    _tf()
    import keras

    rng = np.random.default_rng(0)
    layer = keras.layers.MultiHeadAttention(2, 2, dtype="float64")
    q, v = rng.normal(size=(1, 3, 4)), rng.normal(size=(1, 4, 4))
    mask = np.ones((1, 3, 4), bool)
    mask[0, 1] = False
    default = np.asarray(layer(q, v, attention_mask=mask))
    explicit, _ = layer(q, v, attention_mask=mask, return_attention_scores=True)
    return float(np.max(np.abs(default[0, 1] - np.asarray(explicit)[0, 1])))


def _probe_keras_mha_seeded_initializer_repeats() -> float:
    """Keras clones a seeded kernel_initializer per projection, and a seeded Keras initializer
    returns the same values at every call: a self-attention layer starts with Wq = Wk = Wv.
    Returns 1.0 while the query and key kernels are equal, 0.0 once they differ."""
    _tf()
    import keras

    layer = keras.layers.MultiHeadAttention(
        2, 4, kernel_initializer=keras.initializers.GlorotUniform(seed=1)
    )
    x = np.zeros((1, 3, 8), "float32")
    layer(x, x)
    w = layer.get_weights()
    return 1.0 if np.array_equal(w[0], w[2]) else 0.0


def _probe_keras_rnn_mask_with_initial_state() -> float:
    _tf()
    import keras

    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 4, 3))
    mask = np.array([[True, True, False, False], [True, True, True, False]])
    h0 = [rng.normal(size=(2, 2)), rng.normal(size=(2, 2))]
    layer = keras.layers.LSTM(2, dtype="float64")
    layer.build(x.shape)
    weights = [rng.normal(size=tuple(v.shape)) for v in layer.weights]
    layer.set_weights(weights)
    t = keras.ops.convert_to_tensor(x)
    t._keras_mask = keras.ops.convert_to_tensor(mask)  # what Masking/Embedding attach
    native = layer(t, initial_state=[keras.ops.convert_to_tensor(h) for h in h0]).numpy()
    named = dict(zip(("kernel", "recurrent_kernel", "bias"), weights, strict=True))
    exact = RR.lstm(x, named, units=2, mask=mask, initial_state=h0)
    return float(np.max(np.abs(native - exact)))


RECORDS: list[dict[str, Any]] = [
    dict(
        id="keras-global-average-pooling1d-fully-masked",
        framework="tensorflow", api="keras.layers.GlobalAveragePooling1D(mask=...)", dtype="all",
        symptom="a row whose mask has no valid step is 0/0 = NaN (and NaN gradients)",
        dualnet="divides by max(valid steps, 1): such a row pools to 0, its gradient is 0, on "
                "both backends (a subclass of Keras's layer on TensorFlow)",
        probe=_probe_keras_global_average_pooling1d_fully_masked, threshold=1.0,
    ),
    dict(
        id="keras-embedding-fractional-id",
        framework="tensorflow", api="keras.layers.Embedding", dtype="float ids",
        symptom="a floating id is cast to int32 without a check: 1.7 looks up row 1; out-of-range "
                "ids raise on CPU but give a zero row on GPU (tf.gather)",
        dualnet="ids checked on every call (one min/max reduction): a fractional, non-finite or "
                "out-of-range id raises the same ValueError on both backends "
                "(tf.debugging assertions with that message inside tf.function)",
        probe=_probe_keras_embedding_fractional_id, threshold=0.5,
    ),
    dict(
        id="keras-masking-half-precision",
        framework="tensorflow", api="keras.layers.Masking", dtype="float16, bfloat16",
        symptom="mask_value is compared in float32 (Keras's promotion of a Python float), so a "
                "float16 step padded with 0.1 is never masked",
        dualnet="mask_value rounded to the input's dtype before the comparison on both backends "
                "(a custom Keras layer on TensorFlow; torch's comparison does it natively)",
        probe=_probe_keras_masking_half_precision, threshold=0.5,
    ),

    dict(
        id="torch-mha-empty-row-nan", framework="torch",
        api="nn.MultiheadAttention (need_weights=True, the default)", dtype="all",
        symptom="a query row whose every key is masked (attn_mask or key_padding_mask) is NaN "
        "(0/0 in its explicit softmax); with need_weights=False it runs SDPA and gives zeros "
        "(the output bias)",
        dualnet="zero attention weights on every path (the output is the output bias), zero "
        "gradients to that row; SDPA is given every key for such a row and its result zeroed, "
        "so no kernel on any device sees an empty row",
        probe=_probe_torch_mha_empty_row, threshold=1e-6,
    ),
    dict(
        id="keras-mha-empty-row-uniform", framework="tensorflow",
        api="keras.layers.MultiHeadAttention (no dropout, no return_attention_scores: "
        "ops.dot_product_attention)", dtype="all",
        symptom="a query row with no key gets the uniform average of the values (-1e9 fill, "
        "softmax); the same layer with return_attention_scores=True or dropout gives zeros "
        "(Softmax zeroes masked positions): 0.51 apart on the probe's row",
        dualnet="a custom Keras layer with the explicit path's ops: zeros on every path "
        "(tests/test_layers_attention.py checks it against Keras's own layer)",
        probe=_probe_keras_mha_empty_row_default_path, threshold=1e-3,
    ),
    dict(
        id="keras-mha-seeded-initializer-repeats", framework="tensorflow",
        api="keras.layers.MultiHeadAttention(kernel_initializer=<seeded initializer>)",
        dtype="all",
        symptom="the initializer is cloned per projection and a seeded Keras initializer repeats "
        "its values: Wq = Wk = Wv in self-attention (unseeded clones draw unrelated values)",
        dualnet="one seed per projection derived from the initializer's (the query keeps it): "
        "distinct kernels, reproducible",
        probe=_probe_keras_mha_seeded_initializer_repeats, threshold=0.5,
    ),

dict(
    id="keras-rnn-mask-ignored-with-initial-state", framework="tensorflow",
    api="keras.layers.LSTM/GRU/SimpleRNN called with initial_state", dtype="all",
    symptom="Layer.__call__ fills `mask` from the input only for a call with one tensor "
    "argument: with initial_state the mask attached by Masking/Embedding is dropped and the "
    "layer runs over the padding (0.29 off on right-padded rows)",
    dualnet="the input's mask is passed explicitly (backends/tensorflow/layers/recurrent.py)",
    probe=_probe_keras_rnn_mask_with_initial_state, threshold=1e-6,
),
]  # fmt: skip
