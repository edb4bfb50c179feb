"""The functional API's graph pieces: a :class:`SymbolicTensor` flows through layer calls and
each call is recorded as a :class:`Node`; no framework is involved."""

from __future__ import annotations

from dataclasses import dataclass
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


@dataclass(frozen=True)
class Node:
    """One call of a layer on symbolic tensors."""

    layer: Layer
    inputs: tuple[SymbolicTensor, ...]
    outputs: tuple[SymbolicTensor, ...]
