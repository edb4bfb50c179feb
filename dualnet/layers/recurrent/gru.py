"""GRU (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dualnet.layers import _args
from dualnet.layers.recurrent.base_rnn import BaseRNN


class GRU(BaseRNN):
    """Gated recurrent unit (Cho et al., 2014), Keras's layer, both variants.

    Gates in Keras's order z (update), r (reset), h (candidate); ``W = kernel``, ``U =
    recurrent_kernel``, ``σ = recurrent_activation``, ``φ = activation``; ``b_x``, ``b_h`` the
    bias rows (``reset_after=True``: ``bias (2, 3·units)`` = [input row; recurrent row]).
    At each step, ``reset_after=True`` (Keras's default and torch's formula)::

        z = σ(x·W_z + b_xz + h·U_z + b_hz)
        r = σ(x·W_r + b_xr + h·U_r + b_hr)
        ĥ = φ(x·W_h + b_xh + r ⊙ (h·U_h + b_hh))
        h_t = z ⊙ h + (1 - z) ⊙ ĥ

    and ``reset_after=False`` (the original formula; ``bias (3·units,)``, no torch module)::

        z = σ(x·W_z + h·U_z + b_z),  r = σ(x·W_r + h·U_r + b_r)
        ĥ = φ(x·W_h + (r ⊙ h)·U_h + b_h)
        h_t = z ⊙ h + (1 - z) ⊙ ĥ

    torch's ``nn.GRU`` orders its gates r, z, n: the blocks are reordered on the way to its
    fused kernel, and its two biases are Keras's two rows (reordered the same way).

    Args:
        units: the size of h, a positive int.
        activation: φ (default tanh); recurrent_activation: σ (default sigmoid).
        use_bias: add the bias.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras's defaults
            glorot_uniform, orthogonal, zeros.
        reset_after: apply the reset gate after the recurrent matrix product (True, Keras 3's
            default and torch's) or before it (False).
        dropout, recurrent_dropout, seed: see :class:`~dualnet.layers.LSTM`.
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

    gates = 3
    gate_names = ("z", "r", "h")

    def __init__(
        self,
        units: int,
        activation: str | Callable[..., Any] | None = "tanh",
        recurrent_activation: str | Callable[..., Any] | None = "sigmoid",
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
        reset_after: bool = True,
        zero_output_for_mask: bool = False,
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        self._reset_after = _args.boolean(reset_after, "reset_after", type(self).__name__)
        self._configure(
            units=units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, name=name, dtype=dtype,
            input_shape=input_shape, trainable=trainable, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
        )  # fmt: skip

    reset_after = property(lambda self: self._reset_after)

    def bias_shape(self) -> tuple[int, ...]:
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def _own_config(self) -> dict[str, Any]:
        return {"reset_after": self.reset_after}
