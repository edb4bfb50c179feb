"""SimpleRNN (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dualnet.layers.recurrent.base_rnn import BaseRNN


class SimpleRNN(BaseRNN):
    """Fully connected recurrence (Elman), Keras's layer:
    ``h_t = φ(x_t·kernel + bias + h_{t-1}·recurrent_kernel)``; the output of a step is h_t.

    torch's ``nn.RNN`` is the same with ``nonlinearity`` tanh or relu and two biases (Keras's
    one bias = ``b_ih + b_hh``).

    Args:
        units: the size of h, a positive int.
        activation: φ (default tanh).
        use_bias: add ``bias (units,)``.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras's defaults
            glorot_uniform, orthogonal, zeros.
        dropout, recurrent_dropout, seed: see :class:`~dualnet.layers.LSTM` (one mask each).
        return_sequences, return_state, go_backwards, stateful, unroll, zero_output_for_mask:
            see :mod:`dualnet.layers.recurrent`.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Call arguments:
        initial_state: ``h0`` (or ``[h0]``), ``(batch, units)``; default zeros.

    Shape:
        input ``(batch, timesteps, features)``; output ``(batch, units)``, or ``(batch,
        timesteps, units)`` with ``return_sequences``; with ``return_state`` the list
        ``[output, h]``.
    """

    gates = 1
    gate_names = ("h",)
    has_recurrent_activation = False

    def __init__(
        self,
        units: int,
        activation: str | Callable[..., Any] | None = "tanh",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        seed: int | None = None,
        return_sequences: bool = False,
        return_state: bool = False,
        go_backwards: bool = False,
        stateful: bool = False,
        unroll: bool = False,
        zero_output_for_mask: bool = False,
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        self._configure(
            units=units, activation=activation, recurrent_activation=None, use_bias=use_bias,
            dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, name=name, dtype=dtype,
            input_shape=input_shape, trainable=trainable, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
        )  # fmt: skip
