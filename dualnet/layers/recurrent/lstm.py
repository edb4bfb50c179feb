"""LSTM (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from dualnet import initializers as _initializers
from dualnet.layers import _args
from dualnet.layers.recurrent.base_rnn import BaseRNN


class UnitForgetBias:
    """LSTM's bias initializer with ``unit_forget_bias``: ``[init((u,)), ones(u),
    init((2u,))]``, Keras's construction (the forget slice is 1 whatever ``init`` is; ``init``
    is called twice, as Keras calls it)."""

    uses_layer_fans: ClassVar[bool] = True

    def __init__(self, inner: _initializers.Initializer, units: int):
        self.inner, self.units = inner, units

    def __call__(self, shape: Any, dtype: Any = "float32", *,
                 fans: tuple[int, int] | None = None) -> np.ndarray:  # fmt: skip
        fans = fans if self.inner.uses_layer_fans else None
        u = self.units
        parts = [self.inner((u,), dtype, fans=fans), _initializers.Ones()((u,), dtype),
                 self.inner((2 * u,), dtype, fans=fans)]  # fmt: skip
        return np.concatenate(parts)


class LSTM(BaseRNN):
    """Long short-term memory (Hochreiter & Schmidhuber, 1997), Keras's layer.

    With gates in Keras's (and torch's) order i, f, c, o, ``W = kernel``, ``U =
    recurrent_kernel``, ``σ = recurrent_activation``, ``φ = activation``, at each step::

        [zi, zf, zc, zo] = x_t·W + h_{t-1}·U + bias          (blocks of `units` columns)
        i, f, o = σ(zi), σ(zf), σ(zo)
        c_t = f·c_{t-1} + i·φ(zc)
        h_t = o·φ(c_t)                                       (the output of the step)

    The states are ``[h, c]``. See :mod:`dualnet.layers.recurrent` for masks, ``go_backwards``,
    dropout and the torch | Keras | dualnet table.

    Args:
        units: the size of h and c, a positive int.
        activation: φ (default tanh); recurrent_activation: σ (default sigmoid).
        use_bias: add ``bias (4·units,)``.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras's defaults
            glorot_uniform, orthogonal, zeros.
        unit_forget_bias: the forget slice of the initial bias is 1 (whatever
            ``bias_initializer`` is; Keras's rule).
        dropout, recurrent_dropout, seed: dropout of the inputs and of h in the recurrence,
            rates in [0, 1), Note [Recurrent dropout masks].
        return_sequences, return_state, go_backwards, stateful, unroll, zero_output_for_mask:
            see :mod:`dualnet.layers.recurrent`.
        name, dtype, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.

    Call arguments:
        initial_state: ``[h0, c0]``, each ``(batch, units)``; default zeros.

    Shape:
        input ``(batch, timesteps, features)``; output ``(batch, units)``, or ``(batch,
        timesteps, units)`` with ``return_sequences``; with ``return_state`` the list
        ``[output, h, c]``.
    """

    gates = 4
    gate_names = ("i", "f", "c", "o")
    state_names = ("h", "c")

    def __init__(
        self,
        units: int,
        activation: str | Callable[..., Any] | None = "tanh",
        recurrent_activation: str | Callable[..., Any] | None = "sigmoid",
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        recurrent_initializer: Any = "orthogonal",
        bias_initializer: Any = "zeros",
        unit_forget_bias: bool = True,
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
        self._unit_forget_bias = _args.boolean(unit_forget_bias, "unit_forget_bias",
                                               type(self).__name__)  # fmt: skip
        self._configure(
            units=units, activation=activation, recurrent_activation=recurrent_activation,
            use_bias=use_bias, dropout=dropout, recurrent_dropout=recurrent_dropout, seed=seed,
            return_sequences=return_sequences, return_state=return_state,
            go_backwards=go_backwards, stateful=stateful, unroll=unroll,
            zero_output_for_mask=zero_output_for_mask, name=name, dtype=dtype,
            input_shape=input_shape, trainable=trainable, kernel_initializer=kernel_initializer,
            recurrent_initializer=recurrent_initializer, bias_initializer=bias_initializer,
        )  # fmt: skip

    unit_forget_bias = property(lambda self: self._unit_forget_bias)

    def bias_spec_initializer(self) -> Any:
        if self.unit_forget_bias:
            return UnitForgetBias(self.bias_initializer, self.units)
        return self.bias_initializer

    def _own_config(self) -> dict[str, Any]:
        return {"unit_forget_bias": self.unit_forget_bias}
