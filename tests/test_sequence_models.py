"""The catalogue's sequence models as a user meets them: Keras's own layers given dualnet's
weights compute what dualnet computes on padded batches (the masks included), the functional
Transformer block survives ``get_config``/``from_config`` with its call arguments, and
``dn.parity.compare_training`` names the step and the weight where two runs part ways."""

from __future__ import annotations

import numpy as np
import pytest
from frameworks import keras as _keras
from tolerances import assert_close

import dualnet as dn
from dualnet.parity.catalogue.training_sequences import (
    STEPS,
    VOCAB,
    causal_transformer,
    gru_tagger,
    padded_ids,
    text_classifier,
    transformer_block,
)

MODELS = {"text_classifier": text_classifier, "gru_tagger": gru_tagger,
          "transformer": transformer_block, "causal_transformer": causal_transformer}  # fmt: skip
# K for the forward (the longest chain of sums): LSTM gates 8 + 6 inputs per step over 7
# steps; the tagger likewise; the Transformer: projections 8, scores 4 over 7 keys, FF 8 + 16.
FORWARD_K = {"text_classifier": 7 * 14, "gru_tagger": 7 * 11, "transformer": 64,
             "causal_transformer": 64}  # fmt: skip


def _keras_twin(name: str):
    keras = _keras()
    L = keras.layers
    if name == "text_classifier":
        return keras.Sequential([
            keras.Input((STEPS,), dtype="int32"), L.Embedding(VOCAB, 8, mask_zero=True),
            L.LSTM(6), L.Dense(3),
        ])  # fmt: skip
    if name == "gru_tagger":
        return keras.Sequential([
            keras.Input((STEPS,), dtype="int32"), L.Embedding(VOCAB, 6, mask_zero=True),
            L.Bidirectional(L.GRU(5, return_sequences=True)), L.Dense(4),
        ])  # fmt: skip
    ids = keras.Input((STEPS,), dtype="int32")
    x = L.Embedding(VOCAB, 8, mask_zero=True)(ids)
    # return_attention_scores=True takes Keras's explicit path (masked softmax, then zeros):
    # its default path averages the values uniformly for a padded query, which has no key to
    # attend to; those rows never reach the pooled output either way.
    h, _ = L.MultiHeadAttention(2, 4)(x, x, use_causal_mask=name == "causal_transformer",
                                      return_attention_scores=True)  # fmt: skip
    h = L.LayerNormalization()(L.Add()([x, h]))
    f = L.Dense(8)(L.Dense(16, activation="relu")(h))
    h = L.LayerNormalization()(L.Add()([h, f]))
    return keras.Model(ids, L.Dense(3)(L.GlobalAveragePooling1D()(h)))


@pytest.mark.parametrize("name", MODELS)
def test_keras_twin_computes_the_same_with_the_same_weights(name, backend):
    """Keras's own layers (and Keras's own mask propagation) given dualnet's canonical weights
    give dualnet's outputs on a padded batch, on both backends."""
    model = MODELS[name]("float32")
    twin = _keras_twin(name)
    rng = np.random.default_rng(0)
    weights = [rng.normal(0.0, 0.4, w.shape).astype("float32") for w in model.weights]
    model.set_weights(weights)
    twin.set_weights(weights)
    x = padded_ids(rng, 6)
    got = dn.to_numpy(model(x))
    want = np.asarray(twin(x))
    if name == "gru_tagger":  # per-step outputs: only the valid steps are defined by the mask
        valid = x != 0
        got, want = got[valid], want[valid]
    assert_close(got, want, "float32", reduction=FORWARD_K[name])


@pytest.mark.parametrize("name", MODELS)
def test_padding_does_not_change_the_valid_outputs(name, backend):
    """What a mask is for: the prediction for a sequence is the same whatever sits in its
    padded steps' ids (masked), here compared with the ids of the padding replaced by others."""
    model = MODELS[name]("float64")
    rng = np.random.default_rng(1)
    x = padded_ids(rng, 5)
    logits = dn.to_numpy(model(x))
    # Keras's mask_zero makes id 0 the padding: a sequence with fewer steps is a prefix.
    shorter = x.copy()
    shorter[:, -1] = 0
    out = dn.to_numpy(model(shorter))
    full = x[:, -1] != 0
    assert full.any() and (~full).any()
    # Rows that were already padded at the last step are unchanged (float64: the same ops on
    # the same valid values, up to the order of a reduction over masked zeros)...
    np.testing.assert_allclose(out[~full], logits[~full], rtol=0, atol=1e-12)
    # ...and the rows that lost their last step changed: the mask is live, not all-true.
    changed = np.abs(out[full] - logits[full]).reshape(int(full.sum()), -1).max(axis=-1)
    assert np.all(changed > 1e-9)


def test_functional_call_arguments_survive_config(backend):
    model = causal_transformer("float64")
    clone = dn.Model.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    nodes = [n for n in model.get_config()["nodes"] if n["layer"] == "attention"]
    assert nodes[0]["kwargs"]["use_causal_mask"] is True
    assert nodes[0]["kwargs"]["value"] == {"tensor": ["embedding", 0, 0]}
    x = padded_ids(np.random.default_rng(2), 4)
    np.testing.assert_array_equal(dn.to_numpy(clone(x)), dn.to_numpy(model(x)))


def test_compare_training_names_a_perturbed_recurrent_weight():
    """A twin whose LSTM recurrent kernel differs in one entry by 1e-4 is located at the
    first update, on that parameter."""
    dn.set_random_seed(0)
    with dn.use_backend("torch"):
        model = text_classifier("float64")
    twin = model.to_backend("tensorflow")
    lstm = next(layer for layer in twin.layers if layer.name == "lstm")
    kernel, recurrent, bias = lstm.get_weights()
    recurrent[2, 3] += 1e-4
    lstm.set_weights([kernel, recurrent, bias])
    rng = np.random.default_rng(0)
    x = padded_ids(rng, 16)
    y = np.eye(3)[rng.integers(0, 3, 16)]
    loss = dn.losses.CategoricalCrossentropy(from_logits=True)
    report = dn.parity.compare_training(model, x, y, loss=loss, optimizer="adam", steps=3,
                                        batch_size=8, other=twin)  # fmt: skip
    assert report.first_divergence["step"] == 1, report.table()
    assert report.first_divergence["parameter"] == "text_classifier/lstm/recurrent_kernel"
    same = dn.parity.compare_training(model, x, y, loss=loss, optimizer="adam", steps=5,
                                      batch_size=8)  # fmt: skip
    assert same.ok, same.table()


def test_compare_training_names_attention_weights_with_slashes():
    """Weight names such as ``attention/query/kernel`` are located whole: the learning rates
    agree for iterations 0..3 and part at the fifth update, where the first divergence is
    found, on a weight of the model."""
    dn.set_random_seed(0)
    with dn.use_backend("torch"):
        model = transformer_block("float64")
    schedules = dn.optimizers.schedules
    pair = {
        "torch": dn.optimizers.SGD(schedules.PiecewiseConstantDecay([3], [0.1, 0.1])),
        "tensorflow": dn.optimizers.SGD(schedules.PiecewiseConstantDecay([3], [0.1, 0.2])),
    }
    rng = np.random.default_rng(0)
    x = padded_ids(rng, 8)
    y = np.eye(3)[rng.integers(0, 3, 8)]
    report = dn.parity.compare_training(
        model, x, y, loss=dn.losses.CategoricalCrossentropy(from_logits=True), optimizer=pair,
        steps=5,
    )  # fmt: skip
    first = report.first_divergence
    assert first["step"] == 5, report.table()
    names = {w.path for w in model.trainable_weights}
    assert first["parameter"] in names and set(first["all"]) <= names | {"loss"}
    assert "transformer/attention/query/kernel" in names
