"""Core layers: Input, Dense, Activation, Embedding, Masking (Keras's ``layers/core`` group)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet.dtypes import FLOAT_DTYPES, INT_DTYPES
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

__all__ = ["Activation", "Dense", "Embedding", "InputLayer", "Masking"]


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

    # Keras's flag: an incoming mask passes through (Note [Masks] in dualnet.layers.base).
    supports_masking: ClassVar[bool] = True

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

    # Keras's flag: an incoming mask passes through.
    supports_masking: ClassVar[bool] = True

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

    # Integer ids (for an Embedding) and booleans are data dtypes too.
    allowed_dtypes: ClassVar[tuple[str, ...]] = (*FLOAT_DTYPES, *INT_DTYPES, "bool")

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


class Embedding(Layer):
    """Looks up a dense vector per integer id: ``y[..., :] = embeddings[ids[...], :]``.

    The weight ``embeddings`` has shape ``(input_dim, output_dim)`` (the same layout in torch's
    ``nn.Embedding.weight`` and Keras). Inputs are ids of any rank >= 1 (batch first); the
    output has one more axis, ``(batch, ..., output_dim)``. The gradient with respect to
    ``embeddings`` is a scatter-add: row ``i`` receives the sum of the output gradients at every
    position whose id is ``i`` (a repeated id sums; rows never looked up get 0).

    Ids are checked on every call, at the cost of one min/max reduction (plus one comparison
    for floating ids): an id outside ``[0, input_dim)`` raises a ``ValueError`` naming the value
    and the range on both backends (torch raises an ``IndexError`` on CPU and a device-side
    assert on CUDA; TensorFlow raises on CPU but returns a row of zeros on GPU). Inside
    ``tf.function`` the same message comes from ``tf.debugging`` assertions. Floating ids are
    accepted when they hold whole numbers (Keras casts them to int32, truncating 1.7 to 1;
    dualnet refuses a fractional or non-finite id instead); a float16/bfloat16 input cannot hold
    every id above 2048/256 exactly, so pass ids as integers.

    ``mask_zero=True`` makes id 0 padding: the output carries the mask ``ids != 0`` (Note
    [Masks] in :mod:`dualnet.layers.base`) for the layers downstream; row 0 stays an ordinary,
    trainable row (its value is used at padded positions, and their gradient reaches it unless
    the downstream layers ignore masked steps). Keras's ``supports_masking`` is ``mask_zero``:
    without it an incoming mask is dropped, with Keras's warning; with it the output mask is
    ``ids != 0`` whatever came in.

    ====================  ===========================  =========================  ============
    behaviour             torch ``nn.Embedding``       Keras ``Embedding``        dualnet
    ====================  ===========================  =========================  ============
    initial values        N(0, 1)                      U(-0.05, 0.05)             Keras's
                                                       (``"uniform"``)            (torch's:
                                                                                  ``RandomNormal
                                                                                  (stddev=1.0)``)
    padding               ``padding_idx``: that row    ``mask_zero``: a mask      Keras's
                          is zero and gets no          ``ids != 0``; row 0
                          gradient                     trained as any row
    out-of-range id       IndexError (CPU), device     error (CPU), zeros (GPU)   ValueError
                          assert (CUDA)                                           (both)
    fractional float id   refused (needs int ids)      truncated to int32         ValueError
    max_norm, sparse,     available                    none                       none
    scale_grad_by_freq
    ====================  ===========================  =========================  ============

    Args:
        input_dim: the number of ids (vocabulary size, largest id + 1), a positive int.
        output_dim: the size of each vector, a positive int.
        embeddings_initializer: name, Initializer or serialised dict; default Keras's
            ``"uniform"``, ``RandomUniform(-0.05, 0.05)``.
        mask_zero: id 0 is padding: propagate the mask ``ids != 0``.
        name, dtype, input_shape, trainable: see :class:`Layer` (``dtype`` is the vectors'
            dtype; the ids keep theirs).

    Shape:
        input ``(batch, ...)`` ids (integer, or floats holding whole numbers), output
        ``(batch, ..., output_dim)``.
    """

    integer_input: ClassVar[bool] = True

    def __init__(
        self,
        input_dim: int,
        output_dim: int,
        embeddings_initializer: Any = "uniform",
        mask_zero: bool = False,
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = "Embedding"
        self._input_dim = _args.positive_int(input_dim, "input_dim", where)
        self._output_dim = _args.positive_int(output_dim, "output_dim", where)
        self._mask_zero = _args.boolean(mask_zero, "mask_zero", where)
        if isinstance(embeddings_initializer, str) and embeddings_initializer == "uniform":
            # Keras's alias of its RandomUniform initializer (default bounds ±0.05).
            embeddings_initializer = "random_uniform"
        self._embeddings_initializer = _args.initializers(
            where, name=name, dtype=dtype, input_shape=input_shape, trainable=trainable,
            embeddings_initializer=embeddings_initializer,
        )["embeddings_initializer"]  # fmt: skip
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    input_dim = property(lambda self: self._input_dim)
    output_dim = property(lambda self: self._output_dim)
    embeddings_initializer = property(lambda self: self._embeddings_initializer)
    mask_zero = property(lambda self: self._mask_zero)

    @property  # type: ignore[override]
    def supports_masking(self) -> bool:
        """Keras sets it per layer: ``mask_zero``."""
        return self._mask_zero

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        if len(tuple(shape)) < 1:
            raise ValueError(f"{self._where()} expects ids of rank >= 1 (batch, ...), got a "
                             "scalar.")  # fmt: skip

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return (*tuple(input_shape), self.output_dim)

    def declare_weights(self) -> list[WeightSpec]:
        # Fans (input_dim, output_dim) as Keras computes them for a 2-D weight.
        return [WeightSpec(name="embeddings", shape=(self.input_dim, self.output_dim),
                           initializer=self.embeddings_initializer)]  # fmt: skip

    # -- the id check (Note in the class docstring); both backends raise these messages --------

    def id_range(self) -> str:
        n = self.input_dim
        return f"expected integer ids in [0, {n}) (input_dim={n})"

    def bad_id(self, value: Any) -> ValueError:
        """The error for an id outside ``[0, input_dim)`` or a fractional/non-finite float id."""
        value = value.item() if hasattr(value, "item") else value
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # 12.0 is reported as the id 12
        return ValueError(f"{self._where()}: invalid id {value!r} in inputs; "
                          f"{self.id_range()}.")  # fmt: skip

    def graph_id_message(self) -> str:
        """The message of the ``tf.debugging`` assertions inside ``tf.function`` (the values
        are not known when the graph is traced; TensorFlow appends them)."""
        return f"{self._where()}: invalid ids in inputs; {self.id_range()}."

    def check_ids(self, low: Any, high: Any) -> None:
        """Raise :meth:`bad_id` unless ``0 <= low`` and ``high < input_dim`` (the min and max
        id, already known to be whole numbers)."""
        if low < 0:
            raise self.bad_id(low)
        if high >= self.input_dim:
            raise self.bad_id(high)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": _initializers.serialize(self.embeddings_initializer),
            "mask_zero": self.mask_zero,
        }


class Masking(Layer):
    """Masks the steps whose features all equal ``mask_value``.

    ``keep[b, t] = any_f x[b, t, f] != mask_value``; the output is ``x`` where ``keep`` and 0
    elsewhere (a fully masked step is zeroed, as Keras does), and carries the mask ``keep`` (Note
    [Masks] in :mod:`dualnet.layers.base`), whatever mask came in. A step where only some
    features equal ``mask_value`` is kept whole. ``mask_value`` is compared in the layer's
    dtype (rounded to it, as the inputs are). The gradient is 1 at kept steps and 0 at masked
    ones. torch has no such layer (nor masks).

    Args:
        mask_value: a finite number, default 0.0.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        input ``(batch, ..., features)`` (rank >= 2), output the same; the mask
        ``(batch, ...)``.
    """

    supports_masking: ClassVar[bool] = True

    def __init__(self, mask_value: float = 0.0, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._mask_value = _args.real(mask_value, "mask_value", "Masking")
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    mask_value = property(lambda self: self._mask_value)

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        if len(tuple(shape)) < 2:
            raise ValueError(
                f"{self._where()} expects inputs of rank >= 2 (batch, ..., features), got shape "
                f"{format_shape(tuple(shape))}."
            )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "mask_value": self.mask_value}
