"""Training parity of sequence models (Note [Network training cases]): a padded-sequence text
classifier (Embedding with ``mask_zero`` -> LSTM -> Dense), a bidirectional GRU tagger with a
per-timestep loss, and a Transformer encoder block in the functional API (MultiHeadAttention +
Add + LayerNormalization + feed-forward + Add + LayerNormalization) with a padding mask, and its
causal variant. Each is trained 100 steps by ``model.train_step`` on both backends from the same
weights and batches; every step's loss is checked against the float64 reference evaluated on
that backend's weights, with the masks the reference derives itself (padding id 0)."""

from __future__ import annotations

import numpy as np

import dualnet as dn
from dualnet import layers as L
from dualnet import optimizers as O
from dualnet.parity import tolerance as tol
from dualnet.parity.cases import register
from dualnet.parity.network_training import NetworkTrainingCase

VOCAB, STEPS = 20, 7


def padded_ids(rng: np.random.Generator, samples: int, steps: int = STEPS) -> np.ndarray:
    """Id sequences of random lengths 1..steps padded with 0 at the end (Keras's
    ``pad_sequences(padding="post")``); ids 1..VOCAB-1. Every length occurs, the full one too."""
    lengths = rng.integers(1, steps + 1, samples)
    lengths[:2] = (1, steps)
    ids = rng.integers(1, VOCAB, (samples, steps))
    return np.where(np.arange(steps) < lengths[:, None], ids, 0).astype(np.int32)


def classifier_data(rng: np.random.Generator, samples: int) -> tuple[np.ndarray, np.ndarray]:
    x = padded_ids(rng, samples)
    return x, np.eye(3)[rng.integers(0, 3, samples)]


def tagger_data(rng: np.random.Generator, samples: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-timestep integer tags; the tags of padded steps are random too: the mask must keep
    them out of the loss."""
    x = padded_ids(rng, samples)
    return x, rng.integers(0, 4, x.shape).astype(np.int32)


def text_classifier(dtype: str) -> dn.Model:
    return dn.Sequential([
        dn.Input((STEPS,), dtype="int32"),
        L.Embedding(VOCAB, 8, mask_zero=True, dtype=dtype, name="embedding"),
        L.LSTM(6, dtype=dtype, name="lstm"),
        L.Dense(3, dtype=dtype, name="logits"),
    ], name="text_classifier")  # fmt: skip


def gru_tagger(dtype: str) -> dn.Model:
    return dn.Sequential([
        dn.Input((STEPS,), dtype="int32"),
        L.Embedding(VOCAB, 6, mask_zero=True, dtype=dtype, name="embedding"),
        L.Bidirectional(L.GRU(5, return_sequences=True, dtype=dtype, name="gru"),
                        dtype=dtype, name="bigru"),
        L.Dense(4, dtype=dtype, name="tags"),
    ], name="gru_tagger")  # fmt: skip


def transformer_block(dtype: str, *, causal: bool = False) -> dn.Model:
    """A post-norm Transformer encoder block on embedded ids, pooled over valid steps."""
    ids = dn.Input((STEPS,), dtype="int32", name="ids")
    x = L.Embedding(VOCAB, 8, mask_zero=True, dtype=dtype, name="embedding")(ids)
    attention = L.MultiHeadAttention(2, 4, dtype=dtype, name="attention")
    h = attention(x, x, use_causal_mask=causal)
    h = L.LayerNormalization(dtype=dtype, name="norm1")(L.Add(dtype=dtype, name="add1")([x, h]))
    f = L.Dense(16, activation="relu", dtype=dtype, name="ff1")(h)
    f = L.Dense(8, dtype=dtype, name="ff2")(f)
    h = L.LayerNormalization(dtype=dtype, name="norm2")(L.Add(dtype=dtype, name="add2")([h, f]))
    pooled = L.GlobalAveragePooling1D(dtype=dtype, name="pool")(h)
    logits = L.Dense(3, dtype=dtype, name="logits")(pooled)
    return dn.Model(ids, logits, name="causal_transformer" if causal else "transformer")


def causal_transformer(dtype: str) -> dn.Model:
    return transformer_block(dtype, causal=True)


# Growth of the torch-vs-TensorFlow drift over the 100 updates, measured per case
# (tol.Growth.measured: twice the largest err/one-step bound of the loss, state and weights
# rows, float32 and float64, CPU, one thread, TensorFlow's compiled step; 2026-12-01).
MEASURED = {
    "text-classifier-embedding-lstm": 0.00762,
    "bigru-tagger": 0.0144,
    "transformer-block-padding-mask": 5.98,
    "transformer-block-causal": 1.43,
}
GROWTH = {name: tol.Growth.measured(ratio, 100, name) for name, ratio in MEASURED.items()}


register(
    NetworkTrainingCase(
        name="text-classifier-embedding-lstm", growth=GROWTH["text-classifier-embedding-lstm"],
        build=text_classifier, input_shape=(STEPS,),
        classes=3, optimizer=O.Adam(0.01), reduction=14, data=classifier_data,
        notes="padded sequences: the LSTM skips masked steps (mask from Embedding(mask_zero))",
    ),
    NetworkTrainingCase(
        name="bigru-tagger", growth=GROWTH["bigru-tagger"],
        build=gru_tagger, input_shape=(STEPS,), classes=4,
        optimizer=O.Adam(0.01), reduction=11, data=tagger_data, sparse=True,
        notes="per-timestep loss averaged over valid steps; GRU gate order z,r,h vs r,z,n",
    ),
    NetworkTrainingCase(
        name="transformer-block-padding-mask", growth=GROWTH["transformer-block-padding-mask"],
        build=transformer_block, input_shape=(STEPS,),
        classes=3, optimizer=O.Adam(0.005), reduction=16, data=classifier_data,
        notes="MultiHeadAttention with the padding mask of the keys (and queries)",
    ),
    NetworkTrainingCase(
        name="transformer-block-causal", growth=GROWTH["transformer-block-causal"],
        build=causal_transformer, input_shape=(STEPS,),
        classes=3, optimizer=O.Adam(0.005), reduction=16, data=classifier_data,
        notes="use_causal_mask=True combined with the padding mask",
    ),
)  # fmt: skip
