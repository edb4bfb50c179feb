"""The layer base: weights declared once, built without a framework, realised on one backend.

    import dualnet as dn
    layer = dn.layers.Conv2D(8, 3, padding="same")
    y = layer(np.ones((2, 16, 16, 3)))          # built on first call, on the active backend

Note [Building and realising]
-----------------------------
A layer has two lives:

* **built**: its input shape is known and its weights exist as numpy arrays, drawn by
  dualnet's portable initializers from the layer's :class:`WeightSpec` declaration. No
  framework is involved, so ``Input -> Conv2D -> Model`` graph construction imports neither torch
  nor TensorFlow, and the same seed gives bit-identical weights on both backends.
* **realised**: the weights live in native variables of one backend (a ``torch.nn.Module`` or a
  ``keras.layers.Layer``, in ``layer.native``), made by the backend's *builder* for the layer.
  This happens on the first eager call, or when a model containing the layer is assembled, on the
  backend active at that moment; afterwards the layer belongs to that backend.

Note [Declared weights]
-----------------------
A layer declares its weights once, in :meth:`Layer.declare_weights`: name, canonical (Keras)
shape, initializer, trainable or not. Everything else is generic: the weight list and its order
(Keras's: per layer, in declaration order), ``get_weights``/``set_weights``, the summary's
trainable/non-trainable counts, which native variables the optimizer updates, gradients in
canonical layout. Each backend's builder only says how the native tensor maps to the canonical one
(torch: a permutation and reshape per weight, see ``backends/torch/layers/base.py``; Keras's
layout *is* the canonical one). The builder is found by name: the layer class ``Conv2D`` defined
in ``dualnet/layers/convolutional.py`` is realised by ``conv2d`` in
``backends/<framework>/layers/convolutional.py`` (Keras's snake_case of the class name).

Note [Training flag]
--------------------
Every call takes ``training`` as Keras does: ``layer(x, training=True)``. ``None`` inherits the
value of the enclosing model or layer call, and is False at the top level (a bare call, predict
and evaluate run inference; fit and train_step run training). A layer whose ``trainable`` is
False contributes no trainable weights, and a frozen normalization layer runs in inference mode
whatever ``training`` says (Keras's rule for BatchNormalization).

Note [Masks]
------------
A mask marks which steps of a sequence are real (True) and which are padding (False): a boolean
tensor with the input's leading axes (``(batch, steps)`` for ``(batch, steps, features)``). As in
Keras, it travels *with* the tensor, as its ``_keras_mask`` attribute, on both backends (torch
tensors accept attributes too):

* layers that make one: ``Embedding(mask_zero=True)`` (``ids != 0``), ``Masking``;
* layers that consume one: recurrent layers skip masked steps, ``GlobalAveragePooling1D``
  averages the valid steps, ``MultiHeadAttention`` does not attend to masked keys, losses (and
  metrics) weight the valid steps only (Keras's rule: the mean over valid entries);
* layers with ``supports_masking`` pass it on (Dense, Dropout, LayerNormalization, ...) or
  combine several (merging layers); any other layer drops it, with Keras's warning.

On TensorFlow Keras's own ``Layer.__call__`` does this; on torch
``backends/torch/layers/base.Module.__call__`` does the same (torch itself has no masks). A call
may pass one explicitly: ``layer(x, mask=m)`` (attached to an alias of ``x``, never to ``x``).

Note [Call arguments]
---------------------
Some layers take more than one tensor or option per call: an RNN's ``initial_state``,
MultiHeadAttention's ``value``, ``key``, ``attention_mask``, ``use_causal_mask``. A layer lists
them in :attr:`Layer.call_arguments`; they are validated by :meth:`Layer.check_call_arguments`
(tensors given by their shapes) before any framework runs, recorded in the functional graph's
:class:`Node` (``kwargs``), and passed to the native call as keywords. A layer may return several
tensors (an RNN with ``return_state``): :meth:`Layer.compute_output_shape` then returns a list of
shapes, and a call returns a list.

Validation (arguments, input shapes, weight lists) happens here, before any framework is touched,
so both backends raise the same errors and a failed call changes nothing.
"""

from __future__ import annotations

import contextlib
import importlib
import math
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dualnet import initializers as _initializers
from dualnet._backend import backend_module, get_backend
from dualnet._ops import tensor_backend
from dualnet.dtypes import FLOAT_DTYPES
from dualnet.errors import bad_type
from dualnet.layers._checks import (
    check_dtype,
    check_layer_arguments,
    check_name,
    check_shape,
    format_shape,
    is_castable,
    validate_weight_list,
)
from dualnet.layers._symbolic import Node, SymbolicTensor

__all__ = [
    "Layer", "Node", "SymbolicTensor", "WeightInfo", "WeightSpec", "builder_location",
    "check_dtype", "check_layer_arguments", "check_name", "check_shape", "format_shape",
    "is_castable", "reset_names", "snake_case", "training_scope", "unique_name",
    "validate_weight_list",
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


def reset_names() -> None:
    """Restart automatic naming (``dense`` again), as ``keras.backend.clear_session()`` does."""
    _name_counts.clear()


def snake_case(name: str) -> str:
    """Keras's ``to_snake_case``: ``"MyModel"`` -> ``"my_model"``, ``"Conv2D"`` -> ``"conv2d"``,
    ``"ReLU"`` -> ``"re_lu"``, ``"BatchNormalization"`` -> ``"batch_normalization"``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


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


# The training flag of the innermost enclosing call (Note [Training flag]).
_training: bool = False


@contextlib.contextmanager
def training_scope(training: bool) -> Iterator[None]:
    """Calls inside the block that pass ``training=None`` inherit ``training``."""
    global _training
    previous, _training = _training, bool(training)
    try:
        yield
    finally:
        _training = previous


def resolve_training(training: Any, where: str) -> bool:
    """``None`` -> the enclosing call's flag; else a bool (numpy bools too)."""
    if training is None:
        return _training
    if not isinstance(training, bool | np.bool_):
        raise bad_type("training", training, "a bool or None", where=where)
    return bool(training)


# --------------------------------------------------------------------------------------------
# Weight descriptions


@dataclass(frozen=True, kw_only=True)
class WeightSpec:
    """One weight as a layer declares it (Note [Declared weights]).

    Attributes:
        name: the Keras variable name (``kernel``, ``bias``, ``gamma``, ``moving_mean``, ...).
        shape: the canonical shape, which is Keras's (a Conv2D kernel is ``(kh, kw, in, out)``).
        initializer: draws the initial value (portable numpy unless ``native=True``).
        trainable: False for state that optimizers never update (BatchNorm's moving statistics).
        fans: ``(fan_in, fan_out)`` of the layer's main weight, passed to initializers whose
            ``uses_layer_fans`` is set (torch's default bias, U(±1/√fan_in) of the *kernel*).
    """

    name: str
    shape: tuple[int, ...]
    initializer: _initializers.Initializer
    trainable: bool = True
    fans: tuple[int, int] | None = None

    def draw(self, dtype: str) -> np.ndarray:
        fans = self.fans if self.initializer.uses_layer_fans else None
        return np.asarray(self.initializer(self.shape, dtype, fans=fans))


@dataclass(frozen=True)
class WeightInfo:
    """A description of one weight (canonical layout), as in ``model.weights``.

    Attributes:
        path: ``"<layer name>/<weight name>"`` (prefixed with the model name in a model).
        shape: canonical shape (a Dense kernel is ``(in, out)`` on both backends).
        dtype: the weight dtype.
        trainable: whether optimisers update it (False for moving statistics and for the
            weights of a layer whose ``trainable`` is False).
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


def builder_location(cls: type) -> tuple[str, str]:
    """``(group module, builder name)`` of the backend builder that realises layer class ``cls``:
    the neutral group the class (or its nearest dualnet ancestor) is defined in, and Keras's
    snake_case of that class's name (``Conv2D`` in ``dualnet.layers.convolutional`` ->
    ``("convolutional", "conv2d")``)."""
    for klass in cls.__mro__:
        module = klass.__module__
        if module.startswith("dualnet.layers.") and module != __name__:
            builder = klass.__dict__.get("_builder") or snake_case(klass.__name__)
            # A large group is a package (dualnet/layers/convolutional/conv.py): the group is
            # the component after dualnet.layers, as the backends' file names are.
            return module.split(".")[2], builder
    raise TypeError(
        f"{cls.__name__} derives from no dualnet layer class with a backend builder; subclass "
        "one of dn.layers (Dense, Conv2D, ...) or write builders for both backends."
    )


# --------------------------------------------------------------------------------------------
# Layer base


class Layer:
    """Base class of dualnet layers.

    Subclasses describe their weights (:meth:`declare_weights`), their shape rule
    (:meth:`compute_output_shape`, :meth:`check_input_shape`) and validate their arguments in
    ``__init__``; the backend builders (Note [Declared weights]) do the rest.

    Args:
        name: unique within a model; default an automatic Keras-style name (``conv2d_1``).
        dtype: weight and compute dtype; default float32 (Keras's floatx). Floating inputs of
            another dtype are cast to it, as Keras layers do (torch would raise instead).
        input_shape: the input shape without the batch dimension; lets a :class:`Sequential`
            whose first layer this is build at construction.
        trainable: False freezes the weights (and puts normalization layers in inference mode).
    """

    # The builder's name, when it is not Keras's snake_case of the class name.
    _builder: ClassVar[str | None] = None
    # Takes a list of tensors (merging layers).
    multi_input: ClassVar[bool] = False
    # A frozen layer (trainable=False) runs in inference mode (Keras: BatchNormalization).
    frozen_means_inference: ClassVar[bool] = False
    # Attributes that are state but not weights (a dropout layer's count of training calls,
    # which picks its next mask): carried by model.to_backend, restored after a parity probe.
    runtime_state: ClassVar[tuple[str, ...]] = ()
    # Keras's flag: the layer accepts an incoming mask (Note [Masks]) and passes it on
    # unchanged unless its backend modules compute another one (``compute_mask``).
    supports_masking: ClassVar[bool] = False
    # Keyword arguments of a call besides the input, ``training`` and ``mask`` (an RNN's
    # ``initial_state``); validated by :meth:`check_call_arguments`.
    call_arguments: ClassVar[tuple[str, ...]] = ()
    # The inputs are integer ids (Embedding): never cast to the layer's floating dtype.
    integer_input: ClassVar[bool] = False
    # The dtypes ``dtype=`` accepts: floating for every layer with weights or math; an Input
    # may declare integer ids too.
    allowed_dtypes: ClassVar[tuple[str, ...]] = FLOAT_DTYPES

    def get_runtime_state(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.runtime_state}

    def set_runtime_state(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def __init__(self, *, name: str | None = None, dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        self._dtype = check_dtype(dtype, where=where, allowed=self.allowed_dtypes)
        self._input_shape_arg = (
            None if input_shape is None
            else check_shape(input_shape, argument="input_shape", where=where)
        )  # fmt: skip
        if not isinstance(trainable, bool):
            raise bad_type("trainable", trainable, "a bool", where=where)
        self._trainable = trainable
        # The name is taken last: a failed construction must not consume an automatic name.
        self._name = (
            check_name(name, where=where) if name is not None
            else unique_name(snake_case(type(self).__name__))
        )  # fmt: skip
        self._build_shape: Any = None
        self._call_shapes: dict[str, Any] = {}
        self._specs: tuple[WeightSpec, ...] = ()
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
    def input_shape(self) -> Any:
        """The full input shape it was built for (``None`` for the batch), or None; a list of
        shapes for a multi-input layer."""
        return self._build_shape

    @property
    def output_shape(self) -> tuple[int | None, ...] | None:
        if self._build_shape is None:
            return None
        return self.compute_output_shape(self._build_shape, **self._call_shapes)

    @property
    def native(self) -> Any:
        """The backend object (``torch.nn.Module`` / ``keras.layers.Layer``); None until
        realised. Layers without native counterpart (InputLayer) keep None."""
        return self._native

    @property
    def trainable(self) -> bool:
        """Whether optimizers update the layer's weights (Keras's ``layer.trainable``)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise bad_type("trainable", value, "a bool", where=self._where())
        self._trainable = value
        if self._native is not None:
            backend_module(self._backend).layers.set_trainable(self._native, value)

    def _where(self) -> str:
        return f"{type(self).__name__} {self.name!r}"

    # -- shapes -----------------------------------------------------------------------------

    def check_input_shape(self, shape: Any) -> None:
        """Raise ValueError if this layer cannot take inputs of ``shape`` (batch first)."""
        # A body besides the docstring: tf.function's AutoGraph cannot convert an empty one.
        return None

    def compute_output_shape(self, input_shape: Any, **call_arguments: Any) -> Any:
        """The output shape (batch first), or a list of shapes for a layer with several outputs.
        ``call_arguments``: the call's other arguments, tensors given by their shapes."""
        return tuple(input_shape)

    @property
    def call_shapes(self) -> dict[str, Any]:
        """The shapes of the tensor call arguments the layer was built with (batch dimension
        None; MultiHeadAttention's ``value`` and ``key``), by argument name."""
        return dict(self._call_shapes)

    def check_call_arguments(self, input_shape: Any, **call_arguments: Any) -> None:
        """Raise a clear error if the call's other arguments (tensors given by their shapes) do
        not fit inputs of ``input_shape``; runs before any framework is touched."""
        # A body besides the docstring: tf.function's AutoGraph cannot convert an empty one.
        return None

    def check_call(self, shape: Any, training: bool) -> None:
        """Raise ValueError if a call on inputs of ``shape`` (batch included) in this mode cannot
        run (BatchNormalization's unbiased variance needs two values per channel); called before
        the layer is realised, so a refused call binds nothing."""
        # A body besides the docstring: tf.function's AutoGraph cannot convert an empty one.
        return None

    def _check_rank(self, shape: Sequence[int | None], ranks: int | Sequence[int],
                    what: str) -> None:  # fmt: skip
        """The common "wrong rank" error: ``ranks`` allowed ranks (batch included)."""
        allowed = (ranks,) if isinstance(ranks, int) else tuple(ranks)
        if len(shape) not in allowed:
            expected = " or ".join(str(r) for r in allowed)
            raise ValueError(
                f"{self._where()} expects inputs of rank {expected} ({what}), got shape "
                f"{format_shape(shape)}."
            )

    def _check_same_as_built(self, shape: Sequence[int | None], axes: Sequence[int]) -> None:
        """A built layer refuses inputs whose ``axes`` (e.g. the channels) changed size."""
        if not self.built:
            return
        for axis in axes:
            expected = self._build_shape[axis]
            if expected is not None and shape[axis] is not None and shape[axis] != expected:
                raise ValueError(
                    f"{self._where()} was built for inputs of shape "
                    f"{format_shape(self._build_shape)}; got shape {format_shape(shape)} "
                    f"(axis {axis})."
                )

    # -- weights ----------------------------------------------------------------------------

    def declare_weights(self) -> list[WeightSpec]:
        """The layer's weights, in Keras's order (called once, when the layer is built; the
        input shape is ``self.input_shape``)."""
        return []

    @property
    def weight_specs(self) -> tuple[WeightSpec, ...]:
        return self._specs

    def weight_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self._specs)

    def weight_shapes(self) -> list[tuple[int, ...]]:
        """Canonical weight shapes (empty until built)."""
        return [s.shape for s in self._specs]

    @property
    def weights(self) -> list[WeightInfo]:
        return [
            WeightInfo(f"{self.name}/{s.name}", s.shape, self.dtype, s.trainable and self.trainable)
            for s in self._specs
        ]

    @property
    def trainable_weights(self) -> list[WeightInfo]:
        return [w for w in self.weights if w.trainable]

    @property
    def non_trainable_weights(self) -> list[WeightInfo]:
        return [w for w in self.weights if not w.trainable]

    def count_params(self) -> int:
        """Number of scalars in the weights (0 when unbuilt, as Keras's summary shows)."""
        return sum(w.size for w in self.weights)

    def _normalise_shape(self, input_shape: Any) -> Any:
        def one(s: Any) -> tuple[int | None, ...]:
            return tuple(None if d is None else int(d) for d in s)

        if self.multi_input:
            if not isinstance(input_shape, list | tuple) or not all(
                isinstance(s, list | tuple) for s in input_shape
            ):
                raise bad_type("input_shape", input_shape, "a list of shapes (one per input)",
                               where=self._where())  # fmt: skip
            return [one(s) for s in input_shape]
        return one(input_shape)

    def build(self, input_shape: Any, **call_shapes: Any) -> None:
        """Fix the input shape (``None`` for unknown dims, the batch first) and draw the weights.

        ``call_shapes``: the shapes of tensor call arguments that size weights
        (MultiHeadAttention's ``value`` and ``key``). No framework is used; see
        :meth:`_realise`. Building twice with the same shape is a no-op; with an incompatible
        shape it raises.
        """
        shape = self._normalise_shape(input_shape)
        self.check_input_shape(shape)
        if self.built:
            return
        # The batch size is never part of a layer.
        unbatched = [(None, *s[1:]) for s in shape] if self.multi_input else (None, *shape[1:])
        self._build_shape = unbatched
        self._call_shapes = {k: _unbatched(v) for k, v in call_shapes.items() if v is not None}
        try:
            # shape errors before any weight is drawn
            self.compute_output_shape(unbatched, **self._call_shapes)
            self._specs = tuple(self.declare_weights())
            self._pending = [s.draw(self.dtype) for s in self._specs]
        except BaseException:
            self._build_shape, self._specs, self._call_shapes = None, (), {}
            raise

    def _realise(self, backend: str) -> None:
        """Move the weights into native variables of ``backend`` (once)."""
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
        layers = backend_module(backend).layers
        self._native = layers.build(self, self._pending)
        if not self._trainable:
            layers.set_trainable(self._native, False)
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
        self._assign(validate_weight_list(self.weights, weights,
                                          where=f"{self._where()}.set_weights"))  # fmt: skip

    def _assign(self, arrays: list[np.ndarray]) -> None:
        if not arrays:
            return
        if self._pending is not None:
            self._pending = arrays
        else:
            backend_module(self._backend).layers.set_weights(self._native, arrays)

    # -- calling ----------------------------------------------------------------------------

    def __call__(self, inputs: Any, training: Any = None, mask: Any = None,
                 **kwargs: Any) -> Any:  # fmt: skip
        """Apply the layer to a :class:`SymbolicTensor` (functional API) or to data.

        ``training``: see Note [Training flag]. ``mask``: a boolean mask of the input (batch and
        steps, no feature axis), by default the one attached to it (Note [Masks]).
        ``kwargs``: the layer's :attr:`call_arguments` (an RNN's ``initial_state``)."""
        unknown = sorted(set(kwargs) - set(self.call_arguments))
        if unknown:
            takes = f"; it takes {list(self.call_arguments)}" if self.call_arguments else ""
            raise TypeError(f"{self._where()}: unexpected keyword arguments {unknown}{takes}")
        training = resolve_training(training, self._where())
        items = inputs if isinstance(inputs, list | tuple) else None
        # (No annotation on `first`: AutoGraph cannot convert a branch that annotates a name.)
        first = inputs
        if self.multi_input:
            if items is None or len(items) < 1:
                raise TypeError(
                    f"{self._where()} takes a list of tensors, got a {type(inputs).__name__}"
                )
            first = list(items)
        elif items is not None:
            raise TypeError(f"{self._where()} takes a single tensor, got a {type(inputs).__name__}")
        tensors = [*(first if self.multi_input else [first]),
                   *(t for v in kwargs.values() for t in _tensors_in(v))]  # fmt: skip
        symbolic = [isinstance(t, SymbolicTensor) for t in tensors]
        if any(symbolic):
            if not all(symbolic):
                raise TypeError(f"{self._where()}: mix of symbolic and concrete inputs")
            if mask is not None:
                raise TypeError(
                    f"{self._where()}: mask= cannot be given in a functional model; masks come "
                    "from the layers that make them (Embedding(mask_zero=True), Masking)."
                )
            return self._call_symbolic(first if self.multi_input else [first], kwargs)
        return self._call_eager(first, training, mask, kwargs)

    def _check_arguments(self, shape: Any, call_shapes: dict[str, Any]) -> None:
        """The input's shape, then the other call arguments' (given by their shapes)."""
        self.check_input_shape(self._normalise_shape(shape))
        if self.call_arguments:
            self.check_call_arguments(shape, **call_shapes)

    def _build_for(self, shape: Any, call_shapes: dict[str, Any]) -> None:
        """:meth:`build` with the shapes of the tensor call arguments (options left out)."""
        self.build(shape, **{k: v for k, v in call_shapes.items() if _is_shape(v)})

    def _call_symbolic(self, xs: list[SymbolicTensor], kwargs: dict[str, Any]) -> Any:
        shapes = [x.shape for x in xs] if self.multi_input else xs[0].shape
        call_shapes = {k: _shape_of(v) for k, v in kwargs.items()}
        self._check_arguments(shapes, call_shapes)
        self._build_for(shapes, call_shapes)  # validates the shape (no-op when built for it)
        node_index = len(self._inbound_nodes)
        out_shape = self.compute_output_shape(shapes, **call_shapes)
        several = isinstance(out_shape, list)
        out_shapes = out_shape if several else [out_shape]
        base = f"{self.name}_{node_index}" if node_index else self.name
        outs = tuple(
            SymbolicTensor(s, self.dtype, (self, node_index, i), name=f"{base}_{i}" if i else base)
            for i, s in enumerate(out_shapes)
        )
        self._inbound_nodes.append(Node(self, tuple(xs), outs, dict(kwargs)))
        return list(outs) if several else outs[0]

    def _call_eager(self, x: Any, training: bool, mask: Any, kwargs: dict[str, Any]) -> Any:
        inputs = x
        backend = self._backend or get_backend()
        items = x if self.multi_input else [x]
        for item in [*items, *(t for v in kwargs.values() for t in _tensors_in(v))]:
            owner = tensor_backend(item)
            if owner is not None and owner != backend:
                state = "is built on" if self._backend else "will be built on the active backend"
                raise TypeError(
                    f"{self._where()} {state} {backend!r} and cannot take a {owner} tensor; "
                    f"convert it with dn.to_numpy(x), or move the model with "
                    f"model.to_backend({owner!r})."
                )
        core = backend_module(backend).core
        masks = [core.get_mask(t) for t in items]
        if mask is not None:
            given = mask if self.multi_input else [mask]
            if not isinstance(given, list | tuple) or len(given) != len(items):
                raise bad_type("mask", mask, "one mask per input (a list for a merging layer)",
                               where=self._where())  # fmt: skip
            masks = [None if m is None else core.convert_to_tensor(m, "bool") for m in given]
        items = [self._cast_input(core.convert_to_tensor(t), core) for t in items]
        kw = {k: self._convert_argument(v, core) for k, v in kwargs.items()}
        shapes = [tuple(t.shape) for t in items]
        shape = shapes if self.multi_input else shapes[0]
        call_shapes = {k: _shape_of(v) for k, v in kw.items()}
        self._check_arguments(shape, call_shapes)
        for t, m in zip(shapes, masks, strict=True):
            if m is not None:
                _check_mask(self, tuple(m.shape), t)
        self.check_call(self._normalise_shape(shape), training)
        if not self.built:
            self._build_for(shape, call_shapes)
        self._realise(backend)
        items = [t if m is None else core.attach_mask(t, m)
                 for t, m in zip(items, masks, strict=True)]  # fmt: skip
        with training_scope(training):
            out = self._native(items if self.multi_input else items[0], training=training, **kw)
        if isinstance(out, tuple):
            out = list(out)
        if _trace is not None:
            _trace.append((self, inputs, out))
        return out

    def _convert_argument(self, value: Any, core: Any) -> Any:
        """A call argument as the native call takes it: tensors converted (floating ones cast
        to the layer's dtype, their masks kept), lists of tensors as lists, options as given."""
        if isinstance(value, list | tuple) and any(_is_tensor(v) for v in value):
            return [self._convert_argument(v, core) for v in value]
        if not _is_tensor(value):
            return value
        mask = core.get_mask(value)
        t = core.convert_to_tensor(value)
        if core.dtype_name(t).startswith(("float", "bfloat")) and core.dtype_name(t) != self.dtype:
            t = core.convert_to_tensor(t, self.dtype)
        return t if mask is None else core.attach_mask(t, mask)

    def _cast_input(self, x: Any, core: Any) -> Any:
        # Keras layers cast floating inputs to their compute dtype (torch modules would raise on
        # a float64 input to float32 weights); dualnet follows Keras on both backends. Integer
        # ids (Embedding) are the builder's to check and convert.
        if self.integer_input:
            return x
        return x if core.dtype_name(x) == self.dtype else core.convert_to_tensor(x, self.dtype)

    # -- config -----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        """The constructor arguments (JSON-friendly except custom activation callables)."""
        config: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if not self._trainable:
            config["trainable"] = False
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        if not isinstance(config, dict):
            raise bad_type("config", config, "a dict from get_config()", where=cls.__name__)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} name={self.name!r}, built={self.built}>"


def _is_tensor(value: Any) -> bool:
    """An array-like call argument (not an option such as ``return_state=True``)."""
    return isinstance(value, SymbolicTensor | np.ndarray) or tensor_backend(value) is not None


def _tensors_in(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [v for v in value if _is_tensor(v)]
    return [value] if _is_tensor(value) else []


def _shape_of(value: Any) -> Any:
    """A call argument with its tensors replaced by their shapes (options as they are)."""
    if isinstance(value, list | tuple) and any(_is_tensor(v) for v in value):
        return [_shape_of(v) for v in value]
    if _is_tensor(value):
        return tuple(None if d is None else int(d) for d in value.shape)
    return value


def _is_shape(value: Any) -> bool:
    """A tensor's shape, or a list of them, as :func:`_shape_of` makes them."""
    if isinstance(value, list):
        return bool(value) and all(_is_shape(v) for v in value)
    return isinstance(value, tuple)


def _unbatched(shape: Any) -> Any:
    if isinstance(shape, list):
        return [_unbatched(s) for s in shape]
    return (None, *tuple(shape)[1:])


def _check_mask(layer: Layer, mask_shape: tuple, input_shape: tuple) -> None:
    """A mask covers the input's leading axes (batch, steps): its shape is a prefix of the
    input's (``(B, T)`` for ``(B, T, C)``)."""
    n = len(mask_shape)
    if n == 0 or n > len(input_shape) or tuple(input_shape[:n]) != tuple(mask_shape):
        raise ValueError(
            f"{layer._where()}: mask of shape {format_shape(mask_shape)} does not fit inputs of "
            f"shape {format_shape(input_shape)}; expected the input's leading axes, e.g. "
            f"{format_shape(input_shape[:2])}."
        )


def import_group(backend: str, group: str) -> Any:
    """``dualnet.backends.<backend>.layers.<group>`` (imports the framework on first use)."""
    backend_module(backend)
    return importlib.import_module(f"dualnet.backends.{backend}.layers.{group}")
