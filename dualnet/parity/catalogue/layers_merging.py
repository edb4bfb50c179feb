"""Layer entries (Note [Layer entries]) for the merging layers: element-wise merges of two and
three inputs, ties in Maximum/Minimum, Concatenate along the default and an inner axis. Each
exposes one torch/Keras difference (``exposes=``); the bad inputs include the shapes the two
frameworks would broadcast differently.

Half precision: torch and TensorFlow round each pairwise step to half (float32 inside one op,
then one rounding); the bounds count those roundings.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import (
    BadInput,
    LayerCase,
    bilinear_bound,
    float32_math_bound,
    rounding_bound,
)
from dualnet.reference.layers import merging as R

SHAPE = (3, 4)


def product_bound(n: int) -> Callable[..., np.ndarray]:
    """Half-precision bound for a product of ``n`` inputs taken pairwise, each product of two
    halves exact in float32 and rounded once to half: ``γ_{n-1}·|y|`` from the ``n - 1``
    roundings (relative errors multiply), plus ``u·|y|`` for the reference's own rounding.
    Inputs are kept within [0.5, 2] in magnitude so no product reaches float16's subnormals."""

    def bound(ref_abs: np.ndarray | None, exact: np.ndarray, u: float) -> np.ndarray:
        k = n - 1
        return (k * u / (1.0 - k * u) + u) * np.abs(exact)

    bound.needs_abs = False  # type: ignore[attr-defined]
    return bound


def _moderate(n: int) -> Callable[[np.random.Generator], list[np.ndarray]]:
    """``n`` inputs with |x| in [0.5, 2] and random signs (products stay normal in float16)."""

    def make(rng: np.random.Generator) -> list[np.ndarray]:
        return [rng.choice([-1.0, 1.0], SHAPE) * rng.uniform(0.5, 2.0, SHAPE) for _ in range(n)]

    return make


def _tied(sign: float) -> Callable[[np.random.Generator], list[np.ndarray]]:
    """Three inputs whose extreme (max for sign=+1, min for -1) is tied between two of them at
    some elements: x0 = x1 on row 0, x1 = x2 on row 1, x0 = x2 on row 2 (first two columns)."""

    def make(rng: np.random.Generator) -> list[np.ndarray]:
        xs = [rng.standard_normal(SHAPE) for _ in range(3)]
        for row, (i, j) in enumerate([(0, 1), (1, 2), (0, 2)]):
            xs[i][row, :2] = xs[j][row, :2] = sign * 3.0  # beyond every other draw here
        return xs

    return make


def _untied(xs: list[np.ndarray], weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``fd_mask`` for max/min: valid where no two inputs are equal (a tie is a kink)."""
    stack = np.stack(xs)
    tie = np.zeros(stack.shape[1:], dtype=bool)
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            tie |= stack[i] == stack[j]
    return {f"x{i}": ~tie for i in range(len(xs))}


_SHAPE_ERRORS = (
    BadInput(input_shape=[(3, 4), (3, 1)], match=r"same shape.*\(3, 4\), \(3, 1\)"),
    BadInput(input_shape=[(3, 3), (3, 3, 3)], match=r"same shape.*\(3, 3\), \(3, 3, 3\)"),
    BadInput(input_shape=[(3, 4), (2, 4)], match=r"same shape.*\(3, 4\), \(2, 4\)"),
)

register(
    LayerCase(
        name="add-three", layer=L.Add, input_shape=[SHAPE] * 3, reference=R.add, reduction=3,
        half_bound=bilinear_bound(2),  # two pairwise sums, each rounded to half
        exposes="broadcasting: Keras puts a lower-rank input's new axes after the batch, torch "
                "before it; dualnet requires equal shapes (the bad inputs)",
        errors=_SHAPE_ERRORS,
    ),
    LayerCase(
        name="subtract", layer=L.Subtract, input_shape=[SHAPE] * 2, reference=R.subtract,
        reduction=2,
        # One op: float32 (a - b, rounded at most once) then one rounding to half; the
        # reference's rounding: 2 half and 1 float32 roundings of |y|.
        half_bound=float32_math_bound(2, 1),
        exposes="exactly two inputs, as Keras",
        errors=(
            BadInput(input_shape=[SHAPE] * 3, match=r"exactly 2 inputs, got 3"),
            BadInput(input_shape=[SHAPE], match=r"exactly 2 inputs, got 1"),
        ),
    ),
    LayerCase(
        name="multiply-three", layer=L.Multiply, input_shape=[SHAPE] * 3, inputs=_moderate(3),
        reference=R.multiply, half_bound=product_bound(3),
        exposes="products taken left to right, each rounded (as Keras)",
        errors=_SHAPE_ERRORS[:1],
    ),
    LayerCase(
        name="average-three", layer=L.Average, input_shape=[SHAPE] * 3, reference=R.average,
        reduction=3,
        # Two pairwise sums and a division, each rounded to half: γ_3 of the mean of |x|.
        half_bound=bilinear_bound(3),
        exposes="the sum left to right then one division by n (Keras's order; torch.mean "
                "would reduce in its own order)",
        errors=_SHAPE_ERRORS[:1],
    ),
    LayerCase(
        name="maximum-ties", layer=L.Maximum, input_shape=[SHAPE] * 3, inputs=_tied(1.0),
        reference=R.maximum, fd_mask=_untied, half_bound=rounding_bound(0),
        exposes="gradient at a tie: torch.maximum gives half to each input, Keras/TF all to "
                "the first; dualnet the first on both backends",
        errors=_SHAPE_ERRORS[:1],
    ),
    LayerCase(
        name="minimum-ties", layer=L.Minimum, input_shape=[SHAPE] * 3, inputs=_tied(-1.0),
        reference=R.minimum, fd_mask=_untied, half_bound=rounding_bound(0),
        exposes="gradient at a tie: torch.minimum gives half to each input, Keras/TF all to "
                "the first; dualnet the first on both backends",
        errors=_SHAPE_ERRORS[:1],
    ),
    LayerCase(
        name="concatenate-default-axis", layer=L.Concatenate, input_shape=[(2, 3, 2), (2, 3, 4)],
        reference=R.concatenate, half_bound=rounding_bound(0),
        exposes="default axis -1 (Keras); torch.cat's default dim=0 joins the batches",
        errors=(
            BadInput(kwargs={"axis": 0}, input_shape=[(2, 3), (2, 3)], match=r"axis=0"),
            BadInput(input_shape=[(2, 3, 2), (2, 4, 2)], match=r"agree except along axis -1"),
            BadInput(input_shape=[(2, 3, 2), (2, 6)], match=r"same rank"),
            BadInput(kwargs={"axis": 1.5}, error=TypeError, match=r"axis=1\.5"),
        ),
    ),
    LayerCase(
        name="concatenate-axis1-three", layer=L.Concatenate, kwargs={"axis": 1},
        input_shape=[(2, 2, 3), (2, 4, 3), (2, 1, 3)], reference=R.concatenate,
        half_bound=rounding_bound(0),
        exposes="an inner axis (torch's channels-first cat, dim=1) with unequal sizes",
    ),
)  # fmt: skip
