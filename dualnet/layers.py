"""Layers: one definition, realised on either backend with the same weights.

    import dualnet as dn
    layer = dn.layers.Dense(3, activation="relu")
    y = layer(np.ones((2, 4)))          # built on first call, on the active backend

A layer has two lives (Note [Building and realising]):

* **built**: its input shape is known and its weights exist as numpy arrays, drawn by
  dualnet's portable initializers. No framework is involved, so ``Input -> Dense -> Model``
  graph construction imports neither torch nor TensorFlow, and the same seed gives bit-identical
  weights on both backends.
* **realised**: the weights live in native parameters of one backend (a ``torch.nn.Module`` or a
  ``keras.layers.Layer``, in ``layer.native``). This happens on the first eager call, or when a
  model containing the layer is assembled, on the backend active at that moment; afterwards the
  layer belongs to that backend and refuses the other framework's tensors with a TypeError.

Weights are exchanged in dualnet's *canonical* layout, which is Keras's: a Dense kernel is
``(in, out)``. torch stores ``nn.Linear.weight`` as ``(out, in)``; the torch backend transposes
on the way in and out.

Validation (units, activation names, input shapes, weight lists) happens here, before any
framework is touched, so both backends raise the same errors and a failed call changes nothing.
"""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dualnet import activations as _activations
from dualnet import initializers as _initializers
from dualnet._backend import backend_module, get_backend
from dualnet._ops import tensor_backend
from dualnet.dtypes import FLOAT_DTYPES, FLOATX, numpy_dtype, standardize
from dualnet.errors import bad_type, bad_value, describe

__all__ = [
    "Activation", "Dense", "InputLayer", "Layer", "SymbolicTensor", "WeightInfo", "get",
    "reset_names", "serialize", "unique_name",
]  # fmt: skip

# --------------------------------------------------------------------------------------------
# Names

# Keras-style automatic names ("dense", "dense_1", ...) are generated here, by dualnet, not by
# the framework, so a model has the same layer names (and the same summary) on both backends.
_name_counts: dict[str, int] = {}


def unique_name(base: str) -> str:
    """``base`` the first time, then ``base_1``, ``base_2``, ... (Keras's ``auto_name``)."""
    count = _name_counts.get(base, 0)
    _name_counts[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


_trace: list[tuple[Layer, Any, Any]] | None = None


@contextlib.contextmanager
def tracing() -> Iterator[list[tuple[Layer, Any, Any]]]:
    """Record ``(layer, input, output)`` for every eager layer call inside the block.

    A subclassed model runs its first call under this, which tells the summary and the picture
    which layer feeds which (the objects are kept alive, so ``id()`` stays unique).
    """
    global _trace
    previous, _trace = _trace, []
    try:
        yield _trace
    finally:
        _trace = previous


def reset_names() -> None:
    """Restart automatic naming (``dense`` again), as ``keras.backend.clear_session()`` does."""
    _name_counts.clear()


def snake_case(name: str) -> str:
    """``"MyModel"`` -> ``"my_model"``, ``"InputLayer"`` -> ``"input_layer"``."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


def check_name(name: Any, *, where: str) -> str:
    """A layer or model name: a non-empty str without ``/`` (Keras's rule) or ``.`` (torch
    module names cannot contain dots)."""
    if not isinstance(name, str):
        raise bad_type("name", name, "a str", where=where)
    if not name or "/" in name or "." in name:
        raise bad_value("name", name, "a non-empty str without '/' or '.'", where=where)
    return name


def check_dtype(dtype: Any, *, where: str) -> str:
    """A layer's weight/compute dtype: None means Keras's floatx (float32)."""
    if dtype is None:
        return FLOATX
    try:
        return standardize(dtype, allowed=FLOAT_DTYPES)
    except TypeError:
        raise bad_value("dtype", dtype, f"one of {', '.join(FLOAT_DTYPES)}", where=where) from None


def check_shape(shape: Any, *, argument: str = "shape", where: str) -> tuple[int | None, ...]:
    """A shape without the batch dimension: a tuple/list of positive ints or None."""
    if isinstance(shape, int | np.integer) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, tuple | list):
        raise bad_type(argument, shape, "a tuple of positive ints (batch dimension excluded)",
                       where=where)  # fmt: skip
    out: list[int | None] = []
    for dim in shape:
        if dim is None:
            out.append(None)
        elif isinstance(dim, bool) or not isinstance(dim, int | np.integer) or dim <= 0:
            raise bad_value(argument, tuple(shape), "a tuple of positive ints or None "
                            "(batch dimension excluded)", where=where)  # fmt: skip
        else:
            out.append(int(dim))
    return tuple(out)


def format_shape(shape: Sequence[int | None] | None) -> str:
    """``(None, 3)`` as Keras prints it; ``?`` when unknown."""
    if shape is None:
        return "?"
    return "(" + ", ".join(str(d) for d in shape) + ")"


# --------------------------------------------------------------------------------------------
# Symbolic tensors (the functional API) and weight descriptions


class SymbolicTensor:
    """A placeholder flowing through layers to describe a functional model (Keras's
    ``KerasTensor``): a shape with ``None`` for the batch, a dtype, and where it came from.

    It holds no data and involves no framework.
    """

    __slots__ = ("dtype", "history", "name", "shape")

    def __init__(self, shape: tuple[int | None, ...], dtype: str, history: tuple, name: str):
        self.shape = tuple(shape)
        self.dtype = dtype
        # (layer, node_index, tensor_index): the call of `layer` that produced this tensor.
        self.history = history
        self.name = name

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __repr__(self) -> str:
        return f"<SymbolicTensor shape={self.shape}, dtype={self.dtype}, name={self.name}>"

    def __array__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            "a SymbolicTensor (from dn.Input) holds no values; build a dn.Model(inputs, outputs) "
            "and call the model on data."
        )


@dataclass(frozen=True)
class Node:
    """One call of a layer on symbolic tensors."""

    layer: Layer
    inputs: tuple[SymbolicTensor, ...]
    outputs: tuple[SymbolicTensor, ...]


@dataclass(frozen=True)
class WeightInfo:
    """A description of one weight (canonical layout), as in ``model.weights``.

    Attributes:
        path: ``"<layer name>/<weight name>"`` (prefixed with the model name in a model).
        shape: canonical shape (a Dense kernel is ``(in, out)`` on both backends).
        dtype: the weight dtype.
        trainable: whether optimisers update it (always True for Dense).
    """

    path: str
    shape: tuple[int, ...]
    dtype: str
    trainable: bool = True

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def size(self) -> int:
        return math.prod(self.shape)


def is_castable(array: np.ndarray) -> bool:
    """Real numbers (floats, bfloat16, ints) can be cast to a float weight; bools, complex
    numbers, strings and objects cannot."""
    return array.dtype.name in FLOAT_DTYPES or array.dtype.kind in "iuf"


# --------------------------------------------------------------------------------------------
# Layer base


class Layer:
    """Base class of dualnet layers.

    Subclasses describe their weights (:meth:`_create_weights`, numpy, canonical layout), their
    shape rule (:meth:`compute_output_shape`, :meth:`check_input_shape`) and the name of the
    backend factory that realises them (``backends/<name>/layers.py``).

    Args:
        name: unique within a model; default an automatic Keras-style name (``dense_1``).
        dtype: weight and compute dtype; default float32 (Keras's floatx). Floating inputs of
            another dtype are cast to it, as Keras layers do (torch would raise instead).
        input_shape: the input shape without the batch dimension; lets a :class:`Sequential`
            whose first layer this is build at construction.
    """

    # Name of the factory function in backends/<backend>/layers.py.
    _factory: ClassVar[str] = ""

    def __init__(self, *, name: str | None = None, dtype: Any = None, input_shape: Any = None):
        where = type(self).__name__
        self._dtype = check_dtype(dtype, where=where)
        self._input_shape_arg = (
            None if input_shape is None
            else check_shape(input_shape, argument="input_shape", where=where)
        )  # fmt: skip
        # The name is taken last: a failed construction must not consume an automatic name.
        self._name = (
            check_name(name, where=where) if name is not None
            else unique_name(snake_case(type(self).__name__))
        )  # fmt: skip
        self._build_shape: tuple[int | None, ...] | None = None
        self._pending: list[np.ndarray] | None = None  # built, not yet realised
        self._native: Any = None
        self._backend: str | None = None
        self._inbound_nodes: list[Node] = []

    # -- read-only properties --------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def dtype(self) -> str:
        return self._dtype

    @property
    def built(self) -> bool:
        return self._build_shape is not None

    @property
    def backend(self) -> str | None:
        """The backend the layer is realised on (None until then)."""
        return self._backend

    @property
    def input_shape(self) -> tuple[int | None, ...] | None:
        """The full input shape it was built for (``None`` for the batch), or None."""
        return self._build_shape

    @property
    def output_shape(self) -> tuple[int | None, ...] | None:
        return None if self._build_shape is None else self.compute_output_shape(self._build_shape)

    @property
    def native(self) -> Any:
        """The backend object (``torch.nn.Module`` / ``keras.layers.Layer``); None until
        realised. Layers without weights or native counterpart (InputLayer) keep None."""
        return self._native

    def _where(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    # -- shapes -----------------------------------------------------------------------------

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        """Raise ValueError if this (built) layer cannot take inputs of ``shape``."""

    def compute_output_shape(self, input_shape: Sequence[int | None]) -> tuple[int | None, ...]:
        return tuple(input_shape)

    # -- weights ----------------------------------------------------------------------------

    def weight_names(self) -> tuple[str, ...]:
        return ()

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Canonical weight shapes (needs the layer built)."""
        return []

    @property
    def weights(self) -> list[WeightInfo]:
        if not self.built:
            return []
        return [
            WeightInfo(f"{self.name}/{n}", s, self.dtype)
            for n, s in zip(self.weight_names(), self.weight_shapes(), strict=True)
        ]

    trainable_weights = weights

    @property
    def non_trainable_weights(self) -> list[WeightInfo]:
        return []

    def count_params(self) -> int:
        """Number of scalars in the weights (0 when unbuilt, as Keras's summary shows)."""
        return sum(w.size for w in self.weights)

    def _create_weights(self) -> list[np.ndarray]:
        """Initial weights in canonical layout (called once, when built)."""
        return []

    def build(self, input_shape: Sequence[int | None]) -> None:
        """Fix the input shape (``None`` for unknown dims, the batch first) and draw the weights.

        No framework is used; see :meth:`_realise`. Building twice with the same shape is a
        no-op; with an incompatible shape it raises.
        """
        shape = tuple(None if d is None else int(d) for d in input_shape)
        if self.built:
            self.check_input_shape(shape)
            return
        self.check_input_shape(shape)
        self._build_shape = (None, *shape[1:])  # the batch size is never part of a layer
        try:
            self._pending = [np.asarray(w) for w in self._create_weights()]
        except BaseException:
            self._build_shape = None
            raise

    def _realise(self, backend: str) -> None:
        """Move the weights into native parameters of ``backend`` (once)."""
        if self._backend is not None:
            if self._backend != backend:
                raise ValueError(
                    f"{self._where()} is built on {self._backend!r} and cannot be used on "
                    f"{backend!r}; build a new layer, or move a whole model with "
                    f"model.to_backend({backend!r})."
                )
            return
        if not self.built:
            raise ValueError(f"{self._where()} is not built yet (its input shape is unknown).")
        if self._factory:
            factory = getattr(backend_module(backend).layers, self._factory)
            self._native = factory(self, self._pending)
        self._backend = backend
        self._pending = None

    def get_weights(self) -> list[np.ndarray]:
        """The weights as numpy arrays in canonical layout (copies)."""
        if not self.built:
            return []
        if self._pending is not None:
            return [w.copy() for w in self._pending]
        if self._native is None:
            return []
        return backend_module(self._backend).layers.get_weights(self._native)

    def set_weights(self, weights: Sequence[Any]) -> None:
        """Load canonical-layout arrays; validated completely before anything changes."""
        self._assign(self._validate_weights(weights, where=f"{self._where()}.set_weights"))

    def _validate_weights(self, weights: Sequence[Any], *, where: str) -> list[np.ndarray]:
        infos = self.weights
        return validate_weight_list(infos, weights, where=where)

    def _assign(self, arrays: list[np.ndarray]) -> None:
        if not arrays:
            return
        if self._pending is not None:
            self._pending = arrays
        else:
            backend_module(self._backend).layers.set_weights(self._native, arrays)

    # -- calling ----------------------------------------------------------------------------

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Apply the layer: to a :class:`SymbolicTensor` (functional API) or to data."""
        if kwargs:
            raise TypeError(f"{self._where()}: unexpected keyword arguments {sorted(kwargs)}")
        if isinstance(inputs, SymbolicTensor):
            return self._call_symbolic(inputs)
        if isinstance(inputs, list | tuple):
            raise TypeError(f"{self._where()} takes a single tensor, got a {type(inputs).__name__}")
        return self._call_eager(inputs)

    def _call_symbolic(self, x: SymbolicTensor) -> SymbolicTensor:
        self.build(x.shape)  # validates the shape (no-op when already built for it)
        node_index = len(self._inbound_nodes)
        out = SymbolicTensor(
            self.compute_output_shape(x.shape), self.dtype, (self, node_index, 0),
            name=f"{self.name}_{node_index}" if node_index else self.name,
        )  # fmt: skip
        self._inbound_nodes.append(Node(self, (x,), (out,)))
        return out

    def _call_eager(self, x: Any) -> Any:
        inputs = x
        backend = self._backend or get_backend()
        owner = tensor_backend(x)
        if owner is not None and owner != backend:
            state = "is built on" if self._backend else "will be built on the active backend"
            raise TypeError(
                f"{self._where()} {state} {backend!r} and cannot take a {owner} tensor; convert "
                f"it with dn.to_numpy(x), or move the model with model.to_backend({owner!r})."
            )
        core = backend_module(backend).core
        x = core.convert_to_tensor(x)
        x = self._cast_input(x, core)
        shape = tuple(x.shape)
        if not self.built:
            self.build(shape)
        self.check_input_shape(shape)
        self._realise(backend)
        out = self._forward(x)
        if _trace is not None:
            _trace.append((self, inputs, out))
        return out

    def _cast_input(self, x: Any, core: Any) -> Any:
        # Keras layers cast floating inputs to their compute dtype (torch modules would raise on
        # a float64 input to float32 weights); dualnet follows Keras on both backends.
        return x if core.dtype_name(x) == self.dtype else core.convert_to_tensor(x, self.dtype)

    def _forward(self, x: Any) -> Any:
        return self._native(x)

    # -- config -----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-friendly except custom activation callables)."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        if not isinstance(config, dict):
            raise bad_type("config", config, "a dict from get_config()", where=cls.__name__)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


def validate_weight_list(
    infos: Sequence[WeightInfo], weights: Sequence[Any], *, where: str
) -> list[np.ndarray]:
    """Check count, shapes and castability of every array, then cast them (nothing assigned).

    Returns the arrays cast to each weight's dtype, in order.
    """
    if isinstance(weights, np.ndarray) or not isinstance(weights, Sequence):
        raise bad_type("weights", weights, "a list of numpy arrays", where=where)
    if len(weights) != len(infos):
        names = ", ".join(w.path for w in infos) or "none"
        raise ValueError(f"{where}: expected {len(infos)} arrays ({names}), got {len(weights)}.")
    out = []
    for info, value in zip(infos, weights, strict=True):
        array = np.asarray(value)
        if tuple(array.shape) != info.shape:
            raise ValueError(
                f"{where}: weight {info.path!r} has shape {info.shape}, got an array of shape "
                f"{tuple(array.shape)}."
            )
        if not is_castable(array):
            raise TypeError(
                f"{where}: weight {info.path!r} is {info.dtype}; cannot take an array of dtype "
                f"{array.dtype} (expected real numbers)."
            )
        with np.errstate(over="ignore"):  # float64 -> float16 overflow to inf is a rounding
            out.append(np.array(array, dtype=numpy_dtype(info.dtype), copy=True))
    return out


# --------------------------------------------------------------------------------------------
# Concrete layers


def _check_units(units: Any) -> int:
    if isinstance(units, bool) or not isinstance(units, int | np.integer):
        raise bad_type("units", units, "a positive int", where="Dense")
    if units <= 0:
        raise bad_value("units", units, "a positive int", where="Dense")
    return int(units)


def _check_activation(activation: Any, where: str) -> Callable[..., Any]:
    try:
        return _activations.get(activation)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {exc}") from None


def _check_initializer(value: Any, argument: str, where: str) -> _initializers.Initializer:
    if value is None:
        raise bad_type(argument, value, "an initializer name such as 'zeros' or an Initializer",
                       where=where)  # fmt: skip
    try:
        return _initializers.get(value)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: {argument}: {exc}") from None


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

    _factory = "dense"

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
    ):
        where = "Dense"
        self._units = _check_units(units)
        self._activation = _check_activation(activation, where)
        if not isinstance(use_bias, bool):
            raise bad_type("use_bias", use_bias, "a bool", where=where)
        self._use_bias = use_bias
        # Every check before the initializers draw their seeds: a failed construction must not
        # advance dualnet's global generator.
        check_dtype(dtype, where=where)
        if name is not None:
            check_name(name, where=where)
        if input_shape is not None:
            check_shape(input_shape, argument="input_shape", where=where)
        self._kernel_initializer = _check_initializer(
            kernel_initializer, "kernel_initializer", where
        )
        self._bias_initializer = _check_initializer(bias_initializer, "bias_initializer", where)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)

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

    def weight_names(self) -> tuple[str, ...]:
        return ("kernel", "bias") if self.use_bias else ("kernel",)

    def weight_shapes(self) -> list[tuple[int, ...]]:
        shapes = [(self.in_features, self.units)]
        return [*shapes, (self.units,)] if self.use_bias else shapes

    def _create_weights(self) -> list[np.ndarray]:
        fan_in, units = self.in_features, self.units
        weights = [self.kernel_initializer((fan_in, units), self.dtype)]
        if self.use_bias:
            # torch's nn.Linear bias is U(±1/√fan_in) of the *weight's* fans, which the (units,)
            # shape alone does not give: only such initializers receive the layer's fans.
            fans = (fan_in, units) if self.bias_initializer.uses_layer_fans else None
            weights.append(self.bias_initializer((units,), self.dtype, fans=fans))
        return weights

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

    _factory = "activation"

    def __init__(self, activation: str | Callable[..., Any], *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None):  # fmt: skip
        self._activation = _check_activation(activation, "Activation")
        super().__init__(name=name, dtype=dtype, input_shape=input_shape)

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


_CLASSES: dict[str, type[Layer]] = {"Dense": Dense, "Activation": Activation,
                                    "InputLayer": InputLayer}  # fmt: skip


def serialize(layer: Layer) -> dict[str, Any]:
    """``{"class_name": "Dense", "config": {...}}``."""
    if not isinstance(layer, Layer):
        raise bad_type("layer", layer, "a dualnet layer")
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


def get(config: dict[str, Any], custom_objects: dict[str, type] | None = None) -> Layer:
    """Rebuild a layer from :func:`serialize`'s output."""
    if not isinstance(config, dict) or not {"class_name", "config"} <= set(config):
        raise bad_value("config", config, "a dict {'class_name': str, 'config': dict}")
    classes = {**_CLASSES, **(custom_objects or {})}
    cls = classes.get(config["class_name"])
    if cls is None:
        raise ValueError(
            f"Unknown layer class {describe(config['class_name'])}; expected one of: "
            f"{', '.join(sorted(classes))} (pass custom_objects for your own layers)."
        )
    return cls.from_config(dict(config["config"]))
