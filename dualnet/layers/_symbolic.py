"""The functional API's graph pieces: a :class:`SymbolicTensor` flows through layer calls and
each call is recorded as a :class:`Node`; no framework is involved."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dualnet.layers.base import Layer


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


def symbolic_in(value: Any) -> list[SymbolicTensor]:
    """The symbolic tensors in a call argument: the tensor itself, those of a list, or none."""
    if isinstance(value, SymbolicTensor):
        return [value]
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, SymbolicTensor)]
    return []


@dataclass(frozen=True)
class Node:
    """One call of a layer on symbolic tensors.

    Attributes:
        layer: the layer called.
        inputs: the first argument's tensors (one, or a list for a merging layer).
        outputs: the tensors it returned (several for a layer with several outputs).
        kwargs: the other call arguments (``initial_state``, MultiHeadAttention's ``value`` ...):
            symbolic tensors, lists of them, or plain options.
    """

    layer: Layer
    inputs: tuple[SymbolicTensor, ...]
    outputs: tuple[SymbolicTensor, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def parents(self) -> list[SymbolicTensor]:
        """Every symbolic tensor the call reads: the inputs, then those among ``kwargs``."""
        return [*self.inputs, *(t for v in self.kwargs.values() for t in symbolic_in(v))]


@dataclass(frozen=True)
class Ref:
    """A tensor slot in a model's execution plan (the ``index``-th tensor of the graph)."""

    index: int


def template(value: Any, ids: dict[int, int]) -> Any:
    """A call argument with its symbolic tensors replaced by :class:`Ref` slots."""
    if isinstance(value, SymbolicTensor):
        return Ref(ids[id(value)])
    if isinstance(value, list | tuple) and any(isinstance(v, SymbolicTensor) for v in value):
        return [template(v, ids) for v in value]
    return value


def resolve(value: Any, values: Any) -> Any:
    """The inverse of :func:`template`: slots replaced by ``values[index]``."""
    if isinstance(value, Ref):
        return values[value.index]
    if isinstance(value, list) and any(isinstance(v, Ref) for v in value):
        return [resolve(v, values) for v in value]
    return value
