"""Core layers: Input, Dense, Activation (Keras's ``layers/core`` group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet.errors import bad_type, bad_value
from dualnet.layers import _args
from dualnet.layers.base import (
    Layer,
    Node,
    SymbolicTensor,
    WeightSpec,
    check_layer_arguments,
    check_shape,
    format_shape,
)

__all__ = ["Activation", "Dense", "InputLayer"]


class Dense(Layer):
    """Densely connected layer, ``y = activation(x · kernel + bias)``.

    ``kernel`` has the canonical (Keras) shape ``(in_features, units)``; torch's ``nn.Linear``
    stores the transpose ``(units, in_features)``, which the torch backend keeps internally
    (``y = F.linear(x, weight, bias)``). Inputs of rank > 2 are multiplied along the last axis.

    Defaults follow Keras: kernel ``glorot_uniform``, bias ``zeros``. torch's ``nn.Linear``
    default is U(±1/√in) for both; pass ``kernel_initializer="standard",
    bias_initializer="standard"`` for it (the bias then uses the layer's fans).

    Args:
        units: output features, a positive int.
        activation: a name (``"relu"``), a callable or None (linear), see
            :mod:`dualnet.activations` (applied by dualnet's activation, so the conventions
            documented there hold on both backends).
        use_bias: add a bias vector.
        kernel_initializer, bias_initializer: names, Initializer objects or serialised dicts.
        name, dtype, input_shape: see :class:`Layer`.

    Shape:
        input ``(batch, ..., in_features)`` (rank >= 2, as Keras's Dense), output
        ``(batch, ..., units)``.
    """

    def __init__(
        self,
        units: int,
        activation: str | Callable[..., Any] | None = None,
        use_bias: bool = True,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = "Dense"
        self._units = _args.positive_int(units, "units", where)
        self._activation = _args.activation(activation, where)
        if not isinstance(use_bias, bool):
            raise bad_type("use_bias", use_bias, "a bool", where=where)
        self._use_bias = use_bias
        # Every check before the initializers draw their seeds: a failed construction must not
        # advance dualnet's global generator.
        check_layer_arguments(where, name=name, dtype=dtype, input_shape=input_shape,
                              trainable=trainable)  # fmt: skip
        self._kernel_initializer = _args.initializer(
            kernel_initializer, "kernel_initializer", where
        )
        self._bias_initializer = _args.initializer(bias_initializer, "bias_initializer", where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    units = property(lambda self: self._units)
    activation = property(lambda self: self._activation)
    use_bias = property(lambda self: self._use_bias)
    kernel_initializer = property(lambda self: self._kernel_initializer)
    bias_initializer = property(lambda self: self._bias_initializer)

    @property
    def in_features(self) -> int | None:
        return None if self._build_shape is None else self._build_shape[-1]

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        if len(shape) < 2:
            raise ValueError(
                f"{self._where()} expects inputs of rank >= 2 (batch, ..., features), got shape "
                f"{shape}."
            )
        if shape[-1] is None:
            raise ValueError(
                f"{self._where()} needs a known last dimension (the input features), got shape "
                f"{format_shape(shape)}."
            )
        if self.built and shape[-1] != self.in_features:
            raise ValueError(
                f"{self._where()} expects inputs with last dimension {self.in_features}, got "
                f"shape {shape}."
            )

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*tuple(input_shape)[:-1], self.units)

    def declare_weights(self) -> list[WeightSpec]:
        fans = (self.in_features, self.units)
        kernel = WeightSpec(name="kernel", shape=fans, initializer=self.kernel_initializer)
        if not self.use_bias:
            return [kernel]
        # torch's nn.Linear bias is U(±1/√fan_in) of the *weight's* fans, which the (units,)
        # shape alone does not give: the spec carries the layer's fans for such initializers.
        return [kernel, WeightSpec(name="bias", shape=(self.units,),
                                   initializer=self.bias_initializer, fans=fans)]  # fmt: skip

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": _activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": _initializers.serialize(self.kernel_initializer),
            "bias_initializer": _initializers.serialize(self.bias_initializer),
        }

    def __repr__(self) -> str:
        act = _activations.serialize(self.activation)
        act = act if isinstance(act, str) else getattr(act, "__name__", "custom")
        return f"<Dense name={self.name!r}, units={self.units}, activation={act!r}>"


class Activation(Layer):
    """Applies an activation function, ``y = activation(x)`` (no weights).

    Args:
        activation: a name or callable, see :mod:`dualnet.activations`.
        name, dtype, input_shape: see :class:`Layer`.
    """

    def __init__(self, activation: str | Callable[..., Any], *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._activation = _args.activation(activation, "Activation")
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    activation = property(lambda self: self._activation)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        if len(tuple(shape)) < 1:
            raise ValueError(f"{self._where()} expects inputs of rank >= 1, got a scalar.")

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "activation": _activations.serialize(self.activation)}


class InputLayer(Layer):
    """The layer behind :func:`dualnet.Input`: declares a model input (no weights, no op).

    Args:
        shape: input shape without the batch dimension, e.g. ``(3,)``.
        dtype: the input dtype; floating data is cast to it (default float32).
        name: default ``input_layer``, ``input_layer_1``, ... (Keras 3's names).
    """

    def __init__(self, shape: Any = None, *, dtype: Any = None, name: str | None = None,
                 batch_shape: Any = None):  # fmt: skip
        where = "Input"
        if batch_shape is not None:  # the form stored in configs, as Keras
            if not isinstance(batch_shape, tuple | list) or not batch_shape:
                raise bad_type("batch_shape", batch_shape, "a tuple (None, *shape)", where=where)
            shape = tuple(batch_shape)[1:]
        if shape is None:
            raise bad_value("shape", shape, "a tuple of positive ints (batch dimension "
                            "excluded), e.g. shape=(3,)", where=where)  # fmt: skip
        self._shape = check_shape(shape, where=where)
        super().__init__(name=name, dtype=dtype)
        self._build_shape = (None, *self._shape)
        self._pending = []
        self.output = SymbolicTensor(self._build_shape, self.dtype, (self, 0, 0), self.name)
        self._inbound_nodes.append(Node(self, (), (self.output,)))

    @property
    def shape(self) -> tuple[int | None, ...]:
        return self._shape

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        expected = self._build_shape
        shape = tuple(shape)
        if len(shape) != len(expected) or any(
            e is not None and s is not None and e != s for e, s in zip(expected, shape, strict=True)
        ):
            raise ValueError(
                f"Input {self.name!r} expects shape {format_shape(expected)}, got shape {shape}."
            )

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self._where()} is not callable; use dn.Input(shape) in a model.")

    def _realise(self, backend: str) -> None:
        if self._backend is None:
            self._backend = backend
            self._pending = None

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "batch_shape": list(self._build_shape)}
