"""What SimpleRNN, LSTM and GRU share (see the package docstring for the math and the torch |
Keras | dualnet table): the arguments, the weight declaration, the shapes of the outputs and of
the initial states, and the dropout masks.

Note [Recurrent dropout masks]
------------------------------
Keras draws a layer's dropout masks once per call and uses them at every step. How many it
draws depends on the cell's implementation: with ``recurrent_dropout == 0`` one input mask
``(batch, features)`` shared by the gates (so the input sequence can be masked once and the fused
kernel still run); with ``recurrent_dropout > 0`` (which forces Keras's ``implementation=1``)
one input mask and one recurrent mask *per gate* (LSTM 4, GRU 3). dualnet keeps those semantics
and draws the masks itself (Note [Portable noise] in :mod:`dualnet.layers.regularization`):

* training call ``k`` (from 0) of a layer with ``seed`` draws from
  ``np.random.default_rng([seed, k])`` (:func:`~dualnet.layers.regularization.generator_for`),
  first the input uniforms ``(n, batch, features)``, then the recurrent uniforms ``(n, batch,
  units)``, both whenever either rate is positive (so neither mask depends on the other rate);
  ``n`` is :attr:`BaseRNN.mask_count`. An element is kept where its uniform is ``>= rate``;
* a kept element is multiplied by ``1/(1 - rate)`` (computed in float64, rounded once to the
  compute dtype), a dropped one by 0: Keras's ``x · dropout(ones)``;
* every training call advances the count (:attr:`training_calls`), even with both rates 0;
  inference draws nothing.

A rate must lie in [0, 1): Keras clips any number to [0, 1] and then ignores a rate of exactly 1
(``0 < rate < 1`` guards its masks), which dualnet refuses rather than copy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet import random as _random
from dualnet.errors import bad_type, bad_value
from dualnet.layers import _args
from dualnet.layers.base import Layer, WeightSpec, format_shape
from dualnet.layers.regularization import generator_for


def dropout_masks(seed: int, call: int, batch: int, features: int, units: int, count: int,
                  rate: float, recurrent_rate: float
                  ) -> tuple[np.ndarray | None, np.ndarray | None]:  # fmt: skip
    """The dropout factors of training call ``call`` (Note [Recurrent dropout masks]):
    ``(input (count, batch, features), recurrent (count, batch, units))`` in float64, each
    ``keep/(1 - rate)``, or None where its rate is 0."""
    if rate <= 0.0 and recurrent_rate <= 0.0:
        return None, None
    rng = generator_for(seed, call)
    uniforms = (rng.random((count, batch, features)), rng.random((count, batch, units)))
    return tuple(  # type: ignore[return-value]
        None if r <= 0.0 else np.where(u >= r, 1.0 / (1.0 - r), 0.0)
        for u, r in zip(uniforms, (rate, recurrent_rate), strict=True)
    )


class BaseRNN(Layer):
    """A recurrent layer over ``(batch, timesteps, features)`` inputs (subclasses give the cell).

    Class attributes: ``gates`` (G: the blocks of ``units`` columns in the kernels, Keras's
    order ``gate_names``) and ``state_names`` (the carried states, ``("h",)`` or ``("h",
    "c")``).
    """

    gates: ClassVar[int]
    gate_names: ClassVar[tuple[str, ...]]
    state_names: ClassVar[tuple[str, ...]] = ("h",)
    has_recurrent_activation: ClassVar[bool] = True
    supports_masking: ClassVar[bool] = True
    call_arguments: ClassVar[tuple[str, ...]] = ("initial_state",)
    # The count of training calls picks the next dropout masks (Note [Recurrent dropout
    # masks]); carried by model.to_backend, restored after a parity probe.
    runtime_state: ClassVar[tuple[str, ...]] = ("_training_calls",)

    def _configure(self, *, units: Any, activation: Any, recurrent_activation: Any,
                   use_bias: Any, dropout: Any, recurrent_dropout: Any, seed: Any,
                   return_sequences: Any, return_state: Any, go_backwards: Any, stateful: Any,
                   unroll: Any, zero_output_for_mask: Any, name: Any, dtype: Any,
                   input_shape: Any, trainable: Any, **initializers: Any) -> None:  # fmt: skip
        """Validate and store the shared arguments (subclasses store their own first), resolve
        the initializers (after every check: they may draw seeds), then :class:`Layer`'s
        setup."""
        where = type(self).__name__
        self._units = _args.positive_int(units, "units", where)
        self._activation = _args.activation(activation, where)
        self._recurrent_activation = (
            _args.activation(recurrent_activation, where) if self.has_recurrent_activation
            else None
        )  # fmt: skip
        self._use_bias = _args.boolean(use_bias, "use_bias", where)
        self._dropout = _args.real(dropout, "dropout", where, low=0.0, high=1.0, high_open=True)
        self._recurrent_dropout = _args.real(recurrent_dropout, "recurrent_dropout", where,
                                             low=0.0, high=1.0, high_open=True)  # fmt: skip
        seed = _args.seed(seed, "seed", where)
        for argument, value in (("return_sequences", return_sequences),
                                ("return_state", return_state), ("go_backwards", go_backwards),
                                ("unroll", unroll),
                                ("zero_output_for_mask", zero_output_for_mask)):  # fmt: skip
            setattr(self, f"_{argument}", _args.boolean(value, argument, where))
        if not isinstance(stateful, bool | np.bool_):
            raise bad_type("stateful", stateful, "False", where=where)
        if stateful:
            raise bad_value("stateful", stateful, "False (stateful layers are not supported: "
                            "pass the last states as initial_state of the next call)",
                            where=where)  # fmt: skip
        self._initializers = _args.initializers(where, name=name, dtype=dtype,
                                                input_shape=input_shape, trainable=trainable,
                                                **initializers)  # fmt: skip
        # Only after every check: a failed construction leaves dualnet's generator alone. A
        # layer without dropout needs no seed (Keras's seed=None stays None).
        if seed is None and (self._dropout > 0.0 or self._recurrent_dropout > 0.0):
            seed = _random.draw_seed()
        self._seed = seed
        self._training_calls = 0
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    # -- arguments --------------------------------------------------------------------------

    units = property(lambda self: self._units)
    activation = property(lambda self: self._activation)
    recurrent_activation = property(lambda self: self._recurrent_activation)
    use_bias = property(lambda self: self._use_bias)
    dropout = property(lambda self: self._dropout)
    recurrent_dropout = property(lambda self: self._recurrent_dropout)
    seed = property(lambda self: self._seed)
    return_sequences = property(lambda self: self._return_sequences)
    return_state = property(lambda self: self._return_state)
    go_backwards = property(lambda self: self._go_backwards)
    stateful = property(lambda self: False)
    unroll = property(lambda self: self._unroll)
    zero_output_for_mask = property(lambda self: self._zero_output_for_mask)
    kernel_initializer = property(lambda self: self._initializers["kernel_initializer"])
    recurrent_initializer = property(lambda self: self._initializers["recurrent_initializer"])
    bias_initializer = property(lambda self: self._initializers["bias_initializer"])

    @property
    def in_features(self) -> int | None:
        return None if self._build_shape is None else self._build_shape[-1]

    @property
    def mask_count(self) -> int:
        """How many input (and recurrent) dropout masks a training call draws: one per gate
        with recurrent dropout, else one shared by the gates (Keras's implementations 1, 2)."""
        return self.gates if self._recurrent_dropout > 0.0 else 1

    # -- dropout ----------------------------------------------------------------------------

    @property
    def training_calls(self) -> int:
        """Training-mode calls so far: the next one draws with call index ``training_calls``."""
        return self._training_calls

    def next_dropout_masks(self, batch: int) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The dropout factors of the next training call (:func:`dropout_masks`), advancing
        the count."""
        call = self._training_calls
        self._training_calls += 1
        return dropout_masks(self._seed, call, batch, self.in_features, self.units,
                             self.mask_count, self._dropout, self._recurrent_dropout)  # fmt: skip

    # -- shapes -----------------------------------------------------------------------------

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        check_sequence_shape(self, shape)

    def state_shapes(self, batch: int | None) -> list[tuple[int | None, int]]:
        """The shape of each carried state (the initial states must have these)."""
        return [(batch, self.units) for _ in self.state_names]

    def compute_output_shape(self, input_shape: Sequence[int | None],
                             **call_kwargs: Any) -> Any:  # fmt: skip
        shape = tuple(input_shape)
        out = (shape[0], shape[1], self.units) if self.return_sequences else (shape[0], self.units)
        return [out, *self.state_shapes(shape[0])] if self.return_state else out

    def check_call_arguments(self, input_shape: Sequence[int | None], initial_state: Any = None,
                             **call_kwargs: Any) -> None:  # fmt: skip
        """``initial_state``: None, or one shape per state (a single shape for a one-state
        layer), each ``(batch, units)``."""
        if initial_state is None:
            return
        expected = self.state_shapes(input_shape[0])
        if len(expected) > 1:
            what = (f"a list of {len(expected)} tensors of shape {format_shape(expected[0])} "
                    f"({', '.join(self.state_names)})")  # fmt: skip
        else:
            what = f"a tensor (or a list of one) of shape {format_shape(expected[0])}"
        shapes = [initial_state] if _is_shape(initial_state) else initial_state
        if not isinstance(shapes, list | tuple) or not all(_is_shape(s) for s in shapes):
            raise TypeError(f"{self._where()}: initial_state expected {what}, got "
                            f"{initial_state!r}.")  # fmt: skip
        got = [tuple(s) for s in shapes]
        if len(got) != len(expected) or not all(
            len(g) == 2 and all(e is None or d is None or e == d
                                for e, d in zip(want, g, strict=True))
            for g, want in zip(got, expected, strict=False)
        ):  # fmt: skip
            raise ValueError(f"{self._where()}: initial_state expected {what}, got "
                             f"{format_shape(got)}.")  # fmt: skip

    # -- weights ----------------------------------------------------------------------------

    def bias_shape(self) -> tuple[int, ...]:
        return (self.gates * self.units,)

    def bias_spec_initializer(self) -> Any:
        """The initializer the bias is drawn with (LSTM's forces the forget slice to 1)."""
        return self.bias_initializer

    def declare_weights(self) -> list[WeightSpec]:
        """``kernel (features, G·units)``, ``recurrent_kernel (units, G·units)``, ``bias``
        (Keras's names, shapes and order; gate blocks in Keras's order)."""
        width = self.gates * self.units
        specs = [
            WeightSpec(name="kernel", shape=(self.in_features, width),
                       initializer=self.kernel_initializer),
            WeightSpec(name="recurrent_kernel", shape=(self.units, width),
                       initializer=self.recurrent_initializer),
        ]  # fmt: skip
        if self.use_bias:
            specs.append(WeightSpec(name="bias", shape=self.bias_shape(),
                                    initializer=self.bias_spec_initializer(),
                                    fans=(self.in_features, width)))  # fmt: skip
        return specs

    # -- config -----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "units": self.units,
                  "activation": _activations.serialize(self.activation)}  # fmt: skip
        if self.has_recurrent_activation:
            config["recurrent_activation"] = _activations.serialize(self.recurrent_activation)
        config["use_bias"] = self.use_bias
        for argument, init in self._initializers.items():
            config[argument] = _initializers.serialize(init)
        config.update(
            self._own_config(), dropout=self.dropout, recurrent_dropout=self.recurrent_dropout,
            seed=self.seed, return_sequences=self.return_sequences,
            return_state=self.return_state, go_backwards=self.go_backwards, stateful=False,
            unroll=self.unroll, zero_output_for_mask=self.zero_output_for_mask,
        )  # fmt: skip
        return config

    def _own_config(self) -> dict[str, Any]:
        """Subclass arguments (unit_forget_bias, reset_after)."""
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, units={self.units}>"


def check_sequence_shape(layer: Layer, shape: Sequence[int | None]) -> None:
    """``(batch, timesteps, features)`` with known features (the built layer's, once built)."""
    shape = tuple(shape)
    layer._check_rank(shape, 3, "batch, timesteps, features")
    if shape[-1] is None:
        raise ValueError(
            f"{layer._where()} needs a known last dimension (the input features), got shape "
            f"{format_shape(shape)}."
        )
    layer._check_same_as_built(shape, (2,))


def _is_shape(value: Any) -> bool:
    """A tensor's shape as the call gives it: a tuple of ints or None."""
    return isinstance(value, tuple) and all(d is None or _args.is_int(d) for d in value)


def standard(fn: Callable[..., Any], name: str) -> bool:
    """Whether ``fn`` is dualnet's built-in activation ``name`` (the fused kernels' math)."""
    return fn is _activations.get(name)
