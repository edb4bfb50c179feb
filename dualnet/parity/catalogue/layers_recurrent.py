"""Layer entries (Note [Layer entries]) for the recurrent layers: SimpleRNN, LSTM, GRU (both
variants) and Bidirectional (every merge mode), with random weights (constant weights hide gate
order and bias layout), each chosen to expose one torch/Keras difference (``exposes=``).

Shapes are small (batch <= 4, steps <= 6, units <= 5) and every layer computes in float64 for
the float64 rows. The ``initial_state`` entries differentiate the initial states too; masked
entries use rows that are right-padded, masked at the start, fully masked and with a hole.
Dropout entries run in training mode with a fixed seed: a fresh layer's call is training call 0,
which the reference reproduces (Note [Recurrent dropout masks]).

Tolerance: ``reduction`` is ``K = T·(F + G·u + 1)``, the number of terms that reach the last
output through the steps (each step sums F input and G·u recurrent products and a bias, and the
rounding of every step propagates to the next); the gradients add the sum over the batch,
``B·K``. Half precision is not run: no bound is derived for rounding errors carried through the
recurrence.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import BadInput, LayerCase
from dualnet.reference.layers import recurrent as R

B, T, F, U = 4, 5, 3, 3  # batch, steps, features, units
SHAPE = (B, T, F)
GATES = {L.SimpleRNN: 1, L.LSTM: 4, L.GRU: 3}
STATES = {L.SimpleRNN: 1, L.LSTM: 2, L.GRU: 1}


def _padding_mask(rng: np.random.Generator) -> np.ndarray:
    """(4, 5): right-padded, masked at the start, fully masked, a hole in the middle."""
    return np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 1, 1, 0]], bool)


def _initial_state(cls: type, units: int = U) -> Callable[[np.random.Generator], Mapping]:
    def make(rng: np.random.Generator) -> dict[str, Any]:
        return {"initial_state": [rng.standard_normal((B, units))
                                  for _ in range(STATES[cls])]}  # fmt: skip

    return make


def _case(name: str, cls: type, *, units: int = U, features: int = F, steps: int = T,
          bidirectional: bool = False, **kwargs: Any) -> LayerCase:  # fmt: skip
    """An entry with the module's tolerance, ``K = T·(F + G·u + 1)`` (``B·K`` for gradients)."""
    k = steps * (features + GATES[cls] * units + 1)
    layer = L.Bidirectional if bidirectional else cls
    reference = R.bidirectional if bidirectional else getattr(R, _snake[cls])
    kwargs.setdefault("input_shape", (B, steps, features))
    return LayerCase(name=name, layer=layer, reference=reference, reduction=k,
                     grad_reduction=B * k, **kwargs)  # fmt: skip


def _initial_weights(rng: np.random.Generator, specs: Any) -> list[np.ndarray]:
    """The layer's own initial weights (its initializers, unit_forget_bias included)."""
    return [s.draw("float64") for s in specs]


_snake = {L.SimpleRNN: "simple_rnn", L.LSTM: "lstm", L.GRU: "gru"}


def _bad(cls: type) -> tuple[BadInput, ...]:
    """The bad arguments and inputs every recurrent layer refuses the same way."""
    n = STATES[cls]
    return (
        BadInput(kwargs={"units": 0}, match=r"units=0.*positive int"),
        BadInput(kwargs={"units": 2.5}, error=TypeError, match=r"units=2\.5"),
        BadInput(kwargs={"dropout": 1.0}, match=r"dropout=1\.0.*< 1"),
        BadInput(kwargs={"recurrent_dropout": -0.1}, match=r"recurrent_dropout=-0\.1.*>= 0"),
        BadInput(kwargs={"stateful": True}, match=r"stateful=True.*expected False"),
        BadInput(kwargs={"go_backwards": "yes"}, error=TypeError, match=r"go_backwards='yes'"),
        BadInput(input_shape=(B, F), match=r"expects inputs of rank 3"),
        BadInput(input_shape=SHAPE, call_inputs={"initial_state": [(B, U + 1)] * n},
                 match=r"initial_state expected .*\(4, 3\)"),
        BadInput(input_shape=SHAPE, call_inputs={"initial_state": [(B, U)] * (n + 1)},
                 match=r"initial_state expected"),
    )  # fmt: skip


register(
    # -- SimpleRNN ---------------------------------------------------------------------------
    _case("simple-rnn", L.SimpleRNN, kwargs={"units": U},
          exposes="Keras's one bias = torch's bias_ih + bias_hh; kernel (in, u) = weight_ihᵀ "
                  "(torch's fused rnn_tanh)",
          errors=_bad(L.SimpleRNN)),
    _case("simple-rnn-relu-sequences-state", L.SimpleRNN,
          kwargs={"units": U, "activation": "relu", "return_sequences": True,
                  "return_state": True},
          call_inputs=_initial_state(L.SimpleRNN),
          exposes="relu cell (torch's rnn_relu), every step's output batch-major, the final "
                  "state as a list entry (torch: h_n of shape (1, B, u))"),
    _case("simple-rnn-softsign-backwards", L.SimpleRNN,
          kwargs={"units": U, "activation": "softsign", "return_sequences": True,
                  "go_backwards": True},
          exposes="go_backwards returns the steps in reversed order (torch has no such flag); "
                  "a non-torch activation runs dualnet's loop"),
    _case("simple-rnn-masked-zero-output", L.SimpleRNN,
          kwargs={"units": U, "return_sequences": True, "zero_output_for_mask": True},
          mask=_padding_mask,
          exposes="zero_output_for_mask=True: zeros at masked steps (torch's packed sequences "
                  "give zeros too, but only for right padding)"),
    _case("simple-rnn-dropout", L.SimpleRNN,
          kwargs={"units": U, "dropout": 0.3, "recurrent_dropout": 0.4, "seed": 5,
                  "return_sequences": True}, training=True,
          exposes="input and recurrent dropout masks drawn by dualnet, one each per call "
                  "(torch's RNN has no recurrent dropout)"),
    # -- LSTM --------------------------------------------------------------------------------
    _case("lstm", L.LSTM, kwargs={"units": U},
          exposes="gate order i, f, c, o (the same in torch); one bias = bias_ih + bias_hh; "
                  "random weights (a constant-weight test cannot see a gate swap)",
          errors=_bad(L.LSTM)),
    _case("lstm-sequences-state-initial", L.LSTM,
          kwargs={"units": U, "return_sequences": True, "return_state": True},
          call_inputs=_initial_state(L.LSTM),
          exposes="[output, h, c] as a list (torch: output, (h_n, c_n) with h_n (1, B, u)); "
                  "initial states [h0, c0] batch-major, differentiated"),
    _case("lstm-backwards-state", L.LSTM,
          kwargs={"units": U, "go_backwards": True, "return_state": True},
          exposes="go_backwards: the last output is the one after the *first* step"),
    _case("lstm-no-bias-wide", L.LSTM, units=5, steps=6, input_shape=(2, 6, 4), features=4,
          kwargs={"units": 5, "use_bias": False, "return_sequences": True},
          exposes="use_bias=False (torch's bias=False drops both biases)"),
    _case("lstm-activations", L.LSTM,
          kwargs={"units": U, "activation": "softsign", "recurrent_activation": "hard_sigmoid",
                  "return_sequences": True},
          exposes="non-default activations: torch's fused LSTM cannot run them (dualnet's loop)"),
    _case("lstm-initializers", L.LSTM,
          kwargs={"units": U, "bias_initializer": "random_normal", "return_sequences": True},
          weights=_initial_weights,
          exposes="Keras's initial weights: glorot_uniform kernel, orthogonal recurrent kernel, "
                  "forget slice of the bias 1 even with another bias_initializer "
                  "(unit_forget_bias; torch: U(±1/√u) everywhere)"),
    _case("lstm-masked-initial", L.LSTM,
          kwargs={"units": U, "return_sequences": True, "return_state": True},
          mask=_padding_mask, call_inputs=_initial_state(L.LSTM),
          exposes="masked steps repeat the last output (torch's packed sequences give zeros and "
                  "take right padding only); with initial_state Keras's own layer ignores the "
                  "input's mask (divergence keras-rnn-mask-ignored-with-initial-state)"),
    _case("lstm-dropout", L.LSTM,
          kwargs={"units": U, "dropout": 0.3, "recurrent_dropout": 0.4, "seed": 11,
                  "return_sequences": True}, training=True,
          exposes="recurrent dropout: one input and one recurrent mask per gate (Keras's "
                  "implementation 1), drawn by dualnet (torch's dropout= acts between layers)"),
    _case("lstm-input-dropout", L.LSTM,
          kwargs={"units": U, "dropout": 0.5, "seed": 12, "return_sequences": True},
          training=True,
          exposes="input dropout alone: one mask shared by the gates (torch stays on its fused "
                  "kernel with the sequence masked first)"),
    # -- GRU ---------------------------------------------------------------------------------
    _case("gru", L.GRU, kwargs={"units": U},
          exposes="gate order z, r, h (torch: r, z, n) and bias (2, 3u) = torch's bias_ih and "
                  "bias_hh rows (reset_after=True, torch's formula)",
          errors=_bad(L.GRU)),
    _case("gru-reset-before-sequences", L.GRU,
          kwargs={"units": U, "reset_after": False, "return_sequences": True},
          exposes="reset_after=False: r applied before the recurrent product, bias (3u,) (no "
                  "torch module computes it)"),
    _case("gru-backwards-state-initial", L.GRU,
          kwargs={"units": U, "go_backwards": True, "return_sequences": True,
                  "return_state": True},
          call_inputs=_initial_state(L.GRU),
          exposes="go_backwards with return_sequences: the steps in reversed order; h0 "
                  "differentiated"),
    _case("gru-no-bias", L.GRU,
          kwargs={"units": U, "use_bias": False, "activation": "tanh",
                  "recurrent_activation": "sigmoid", "reset_after": True,
                  "return_sequences": True},
          exposes="use_bias=False on torch's fused GRU (has_biases=False)"),
    _case("gru-masked-backwards", L.GRU,
          kwargs={"units": U, "reset_after": False, "return_sequences": True,
                  "return_state": True, "go_backwards": True},
          mask=_padding_mask,
          exposes="masked steps skipped (state carried, last output repeated), the mask "
                  "reversed with the steps; a fully masked row gives zeros and h0"),
    _case("gru-dropout", L.GRU,
          kwargs={"units": U, "dropout": 0.25, "recurrent_dropout": 0.5, "seed": 21,
                  "return_sequences": True}, training=True,
          exposes="recurrent dropout per gate with reset_after=True (the recurrent mask "
                  "multiplies h before the product, r after it)"),
    _case("gru-reset-before-dropout", L.GRU,
          kwargs={"units": U, "reset_after": False, "dropout": 0.25, "recurrent_dropout": 0.5,
                  "seed": 22}, training=True,
          exposes="recurrent dropout per gate with reset_after=False"),
)  # fmt: skip


# -- Bidirectional ------------------------------------------------------------------------------


def _bi(name: str, inner: type, merge_mode: Any, *, exposes: str, backward: Any = None,
        case: Mapping[str, Any] | None = None, errors: tuple[BadInput, ...] = (),
        **inner_kwargs: Any) -> LayerCase:  # fmt: skip
    """A Bidirectional entry over ``inner(U, **inner_kwargs)`` (and ``backward``); ``case``:
    more LayerCase fields (mask, call_inputs, training)."""
    kwargs = {"layer": inner(U, **inner_kwargs), "merge_mode": merge_mode}
    if backward is not None:
        kwargs["backward_layer"] = backward
    return _case(name, inner, bidirectional=True, kwargs=kwargs, exposes=exposes,
                 errors=errors, **(case or {}))  # fmt: skip


def _both_states(cls: type) -> Callable[[np.random.Generator], Mapping]:
    def make(rng: np.random.Generator) -> dict[str, Any]:
        return {"initial_state": [rng.standard_normal((B, U))
                                  for _ in range(2 * STATES[cls])]}  # fmt: skip

    return make


_BI_ERRORS = (
    BadInput(kwargs={"merge_mode": "max"}, match=r"merge_mode='max'.*'concat', 'sum'"),
    BadInput(kwargs={"layer": L.Dense(3)}, error=TypeError,
             match=r"layer=.*expected a SimpleRNN, LSTM or GRU layer"),
    BadInput(kwargs={"backward_layer": L.LSTM(U)}, match=r"backward_layer=.*go_backwards=True"),
    BadInput(kwargs={"backward_layer": L.LSTM(U, go_backwards=True, return_sequences=True)},
             match=r"backward_layer=.*return_sequences=False"),
    BadInput(input_shape=SHAPE, call_inputs={"initial_state": [(B, U)] * 3},
             match=r"initial_state expected a list of 4 states"),
    BadInput(input_shape=(B, F), match=r"expects inputs of rank 3"),
)  # fmt: skip

register(
    _bi("bidirectional-lstm-concat", L.LSTM, "concat", errors=_BI_ERRORS,
        exposes="return_sequences=False concatenates the two *final* outputs (torch's "
                "output[:, -1] holds the backward direction after its first step instead)"),
    _bi("bidirectional-gru-sum-sequences", L.GRU, "sum", return_sequences=True,
        exposes="the backward sequence re-reversed before the sum (step t on both sides)"),
    _bi("bidirectional-simple-rnn-mul", L.SimpleRNN, "mul", return_sequences=True,
        exposes="merge_mode='mul'"),
    _bi("bidirectional-lstm-ave-state-initial", L.LSTM, "ave", return_state=True,
        case={"call_inputs": _both_states(L.LSTM)},
        exposes="return_state: [merged, h_fw, c_fw, h_bw, c_bw] (torch: h_n (2, B, u)); "
                "initial_state is the forward states then the backward ones"),
    _bi("bidirectional-gru-none-masked", L.GRU, None, return_sequences=True,
        case={"mask": _padding_mask},
        exposes="merge_mode=None: the list [forward, backward]; with a mask and "
                "return_sequences both directions give zeros at masked steps (Keras forces "
                "zero_output_for_mask; a lone GRU repeats the last output)"),
    _bi("bidirectional-lstm-backward-layer-dropout", L.LSTM, "concat", return_sequences=True,
        dropout=0.3, recurrent_dropout=0.3, seed=31,
        backward=L.GRU(U, go_backwards=True, return_sequences=True),
        case={"training": True},
        exposes="an explicit backward_layer of another class; the forward layer's dropout "
                "masks are dualnet's, per gate"),
)  # fmt: skip
