"""Merging layers: Add, Subtract, Multiply, Average, Maximum, Minimum, Concatenate (Keras's
``layers/merging`` group).

Each takes a *list* of tensors (``Add()([x, y])``); in a functional model that is how residual
connections are written::

    x = dn.Input((8,))
    y = dn.layers.Dense(8)(x)
    model = dn.Model(x, dn.layers.Add()([x, y]))

Where the frameworks differ
---------------------------
=================  ==========================  ==========================  ====================
behaviour          torch                       Keras 3                     dualnet
=================  ==========================  ==========================  ====================
shapes             ``+``, ``*``, ``maximum``   size-1 dims broadcast; a    equal shapes (batch
                   broadcast numpy-style (a    lower-rank input gets new   included), else a
                   lower-rank input is padded  axes at position 1, after   clear error naming
                   on the *left*)              the batch                   them
Concatenate axis   ``torch.cat``: ``dim=0``,   ``axis=-1``                 ``axis=-1`` (Keras);
                   the batch axis                                          the batch axis is
                                                                           refused
gradient at ties   ``torch.maximum`` gives     all to the first input of   all to the first
(Maximum/Minimum)  half to each input          the tied pair               (Keras)
Add/Average order  --                          left to right, then ``/n``  the same (Keras)
=================  ==========================  ==========================  ====================

Why no broadcasting: the two frameworks broadcast a lower-rank input differently (Keras inserts
the missing axes after the batch, numpy and torch before it), so ``Add()([x, y])`` with ``x``
of shape ``(3, 3)`` and ``y`` of shape ``(3, 3, 3)`` gives two different results without an
error. dualnet refuses shapes that differ; reshape (``Reshape``, ``RepeatVector``) explicitly.

Masks (Note [Masks] in :mod:`dualnet.layers.base`) are combined as Keras combines them: the
output mask is the OR of the inputs' masks, or none unless every input has one; Concatenate
counts an input without a mask as all valid and joins the masks along its axis (so along the
steps a mask grows with them). Maximum, Minimum and Multiply also read the masks, as Keras's do:
a masked entry never wins a maximum or minimum (where every input is masked the first input's
value stays) and counts as 1 in a product (where every input has a mask and all are masked, the
product is 0). Add, Subtract, Average and Concatenate combine the values as they are.

Element-wise merges of several inputs are evaluated left to right (``((x₀ + x₁) + x₂)...``),
each step rounded to the layer's dtype, as Keras does; torch then rounds identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from dualnet.layers import _args
from dualnet.layers.base import Layer, format_shape

__all__ = ["Add", "Average", "Concatenate", "Maximum", "Minimum", "Multiply", "Subtract"]


def _merged_dim(dims: Sequence[int | None]) -> int | None:
    """The common size of one axis across inputs: the known one, None if none is known."""
    known = [d for d in dims if d is not None]
    return known[0] if known else None


class _MultiInput(Layer):
    """A layer called on a list of tensors; its input shape is the list of their shapes."""

    # Keras's flag for every merging layer: the output mask combines the inputs' (Note [Masks]).
    supports_masking: ClassVar[bool] = True

    multi_input = True

    def _check_built_count(self, shapes: Sequence[Sequence[int | None]]) -> None:
        if self.built and len(shapes) != len(self._build_shape):
            raise ValueError(
                f"{self._where()} was built for {len(self._build_shape)} inputs "
                f"{format_shape(self._build_shape)}; got {len(shapes)} inputs "
                f"{format_shape([tuple(s) for s in shapes])}."
            )


class _Merge(_MultiInput):
    """Element-wise merges: the shape checks every one shares (Note: no broadcasting). The
    constructor is :class:`Layer`'s (keyword arguments only, as Keras's merge layers)."""

    # Number of inputs: (at least, at most); None is unlimited.
    _arity: tuple[int, int | None] = (1, None)

    def _check_count(self, shapes: Sequence[Sequence[int | None]]) -> None:
        low, high = self._arity
        n = len(shapes)
        if high == low and n != low:
            raise ValueError(f"{self._where()} expects exactly {low} inputs, got {n}.")
        if n < low or (high is not None and n > high):
            raise ValueError(f"{self._where()} expects at least {low} inputs, got {n}.")

    def check_input_shape(self, shapes: Sequence[Sequence[int | None]]) -> None:
        shapes = [tuple(s) for s in shapes]
        self._check_count(shapes)
        if any(len(s) < 1 for s in shapes):
            raise ValueError(f"{self._where()} expects inputs of rank >= 1, got a scalar.")
        self._check_built_count(shapes)
        reference = [*shapes, *(self._build_shape or [])]
        ranks = {len(s) for s in reference}
        if len(ranks) == 1:
            rank = ranks.pop()
            if all(len({d for d in (s[a] for s in reference) if d is not None}) <= 1
                   for a in range(rank)):  # fmt: skip
                return
        got = ", ".join(format_shape(s) for s in shapes)
        built = f" (built for {format_shape(self._build_shape)})" if self.built else ""
        raise ValueError(
            f"{self._where()} expects inputs of the same shape, got shapes {got}{built}; "
            "dualnet does not broadcast merged inputs (torch and Keras broadcast a lower-rank "
            "input differently): reshape them explicitly."
        )

    def compute_output_shape(self, input_shape: Sequence[Sequence[int | None]]) -> tuple:
        shapes = [tuple(s) for s in input_shape]
        return tuple(_merged_dim(dims) for dims in zip(*shapes, strict=True))


class Add(_Merge):
    """Element-wise sum of the inputs, ``y = x₀ + x₁ + ...`` (left to right).

    Args:
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        a list of tensors of the same shape (at least one); the output has that shape.
    """


class Subtract(_Merge):
    """``y = x₀ - x₁``, exactly two inputs.

    Args:
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        a list of two tensors of the same shape; the output has that shape.
    """

    _arity = (2, 2)


class Multiply(_Merge):
    """Element-wise product of the inputs, ``y = x₀ · x₁ · ...`` (left to right).

    Args:
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        a list of tensors of the same shape (at least one); the output has that shape.
    """


class Average(_Merge):
    """Element-wise mean, ``y = (x₀ + x₁ + ... + x₍ₙ₋₁₎) / n``: the sum left to right, then
    one division (Keras's order; ``torch.stack(xs).mean(0)`` would sum in another order).

    Args:
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        a list of tensors of the same shape (at least one); the output has that shape.
    """


class Maximum(_Merge):
    """Element-wise maximum of the inputs, ``y = max(x₀, x₁, ...)``; NaN propagates.

    Gradient: each element's gradient goes to the input that holds the maximum; at a tie to
    the first of the tied inputs (Keras/TensorFlow's rule; ``torch.maximum`` would split it in
    halves).

    Args:
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        a list of tensors of the same shape (at least one); the output has that shape.
    """


class Minimum(_Merge):
    """Element-wise minimum of the inputs, ``y = min(x₀, x₁, ...)``; NaN propagates.

    Gradient: to the input holding the minimum; at a tie to the first of the tied inputs
    (Keras/TensorFlow's rule; ``torch.minimum`` would split it in halves).

    Args:
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        a list of tensors of the same shape (at least one); the output has that shape.
    """


class Concatenate(_MultiInput):
    """Concatenates the inputs along ``axis``.

    Args:
        axis: the axis, counted with the batch axis as 0 (negative from the end); default -1,
            the features, as Keras (``torch.cat``'s default ``dim=0`` would stack the batches:
            pass ``axis=1`` for torch's channels-first ``torch.cat(..., dim=1)``). The batch
            axis itself is refused.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        a list of tensors of the same rank (>= 2) whose shapes agree except along ``axis``
        (batch included); the output's ``axis`` is the sum of theirs (None if one is unknown).
    """

    def __init__(self, axis: int = -1, *, name: str | None = None, dtype: Any = None,
                 input_shape: Any = None, trainable: bool = True):  # fmt: skip
        self._axis = _args.axis(axis, "axis", type(self).__name__, several=False)
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    axis = property(lambda self: self._axis)

    def _resolved_axis(self, rank: int) -> int:
        return _args.resolve_axes([self._axis], rank, "axis", self._where())[0]

    def check_input_shape(self, shapes: Sequence[Sequence[int | None]]) -> None:
        shapes = [tuple(s) for s in shapes]
        if not shapes:
            raise ValueError(f"{self._where()} expects at least 1 input, got 0.")
        ranks = {len(s) for s in shapes}
        if len(ranks) != 1:
            raise ValueError(
                f"{self._where()} expects inputs of the same rank, got shapes "
                f"{', '.join(format_shape(s) for s in shapes)}."
            )
        rank = ranks.pop()
        if rank < 2:
            raise ValueError(
                f"{self._where()} expects inputs of rank >= 2 (batch, ...), got shapes "
                f"{', '.join(format_shape(s) for s in shapes)}."
            )
        axis = self._resolved_axis(rank)
        self._check_built_count(shapes)
        pairs = list(zip(shapes, self._build_shape, strict=True)) if self.built else []
        mismatch = any(
            len({d for d in (s[a] for s in shapes) if d is not None}) > 1
            for a in range(rank) if a != axis
        ) or any(
            s[a] is not None and b[a] is not None and s[a] != b[a]
            for s, b in pairs for a in range(rank)
        )  # fmt: skip
        if mismatch:
            built = f" (built for {format_shape(self._build_shape)})" if self.built else ""
            raise ValueError(
                f"{self._where()} expects inputs whose shapes agree except along axis "
                f"{self._axis}, got shapes {', '.join(format_shape(s) for s in shapes)}{built}."
            )

    def compute_output_shape(self, input_shape: Sequence[Sequence[int | None]]) -> tuple:
        shapes = [tuple(s) for s in input_shape]
        axis = self._resolved_axis(len(shapes[0]))
        out = [_merged_dim(dims) for dims in zip(*shapes, strict=True)]
        sizes = [s[axis] for s in shapes]
        out[axis] = None if any(d is None for d in sizes) else sum(sizes)
        return tuple(out)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "axis": self.axis}
