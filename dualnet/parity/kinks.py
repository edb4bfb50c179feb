"""Kink flips: an activation at its kink in one framework and just off it in the other.

Note [Kink flips]
-----------------
A piecewise-linear activation (relu and its relatives) has a *kink*: a point where its
derivative jumps. Two frameworks compute a layer's pre-activation ``z`` in different summation
orders, so where ``z`` lies within its own rounding error of the kink one may land exactly on
it (or just below) and the other just above. The outputs then agree to rounding (relu gives
``0.0`` on one side, ``3.6e-7`` on the other), but the derivative differs by a whole step
(0 vs 1): every weight gradient *upstream* of that activation (the weights of the layer whose
output it is, and every layer feeding it) moves by one sample's contribution, ~1e-3 of the
gradient's scale, while the layers downstream see only the output's rounding difference. This
is not a porting error: a float64 computation could land on either side too. It is reported as
what it is, and no tolerance is widened to hide it.

Recognising one (:func:`find_flips`), in a layer whose output passes through a kink:

* the two sides lie on different sides of the kink value ``k`` (or one exactly on it):
  ``(a - k)·(b - k) <= 0`` and ``a != b``;
* both are within the layer output's own bound of the kink: ``|a - k|, |b - k| <= atol +
  rtol·|k|``. For relu the side off the kink *is* its pre-activation (``y = z`` for ``z > 0``),
  so this says the pre-activation lies within its rounding error of the kink. The side on the
  kink may hide a pre-activation far below it; that cannot pass unnoticed, because the
  pre-activation is computed from the layer's input and weights, whose own rows must pass
  (a separate activation layer's input is its parent's output, compared in its row; a fused
  ``Dense(activation="relu")`` computes it from a compared input and compared weights).

Which layers have kinks, at which output values (:func:`kink_values`):

=================================  ==========================  ================================
layer                              kinks (output values)       derivative on either side
=================================  ==========================  ================================
``ReLU()``, ``activation="relu"``  0                           0 | 1
``ReLU(max_value=m)``, ``relu6``   0 and m (6)                 0 | 1 | 0
``ReLU(negative_slope=s)``,        0                           s | 1
``LeakyReLU``, ``PReLU``,
``activation="leaky_relu"``
``hard_sigmoid``                   0 and 1                     0 | 1/6 | 0
``hard_silu`` (``hard_swish``)     0 (at ``x = -3``)           0 | ``(2x + 3)/6``
=================================  ==========================  ================================

A ``hard_silu`` flip needs one side exactly on 0 (:func:`kink_is_exact`): near ``x = 0`` its
output is ~0 too, but the function is smooth there, and two sides straddling 0 by rounding
changed no branch.

Not covered: ``ReLU(threshold=θ > 0)`` jumps from 0 to θ at θ (a discontinuity, not a kink: a
flip there is a forward error of θ and fails); the other ``hard_silu`` kink (``x = 3``, where
the output is continuous and not exactly representable); ties in max-pooling and ``Maximum``
(two window entries equal in one framework and a rounding apart in the other route the
gradient differently, the same phenomenon for a different op).

Explaining gradients (:func:`explained_by`): a weight's gradient can only be moved by a flip
in the layer that owns it or downstream of it, i.e. when the weight's layer is the flipped
layer or one of its ancestors in the model's graph. Layers downstream of every flip, and
layers on branches that do not feed one, are not explained by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dualnet.parity.tolerance import Tolerance

__all__ = ["Flip", "ancestors", "explained_by", "find_flips", "kink_is_exact", "kink_values"]

# Output values at the kinks of the registry's piecewise-linear activations.
ACTIVATION_KINKS: dict[str, tuple[float, ...]] = {
    "relu": (0.0,), "relu6": (0.0, 6.0), "leaky_relu": (0.0,), "hard_sigmoid": (0.0, 1.0),
    "hard_silu": (0.0,), "hard_swish": (0.0,),
}  # fmt: skip
# hard_silu's kink is where its output becomes exactly 0 (x <= -3); near x = 0 the output is
# also ~0 but the function is smooth there (slope 1/2), and the two sides may straddle 0 by
# rounding without any change of branch: a flip needs one side exactly on the kink.
EXACT_KINKS = ("hard_silu", "hard_swish")


def kink_is_exact(layer: Any) -> bool:
    """Whether a flip at ``layer``'s kink needs one side exactly on the kink value."""
    return layer.get_config().get("activation") in EXACT_KINKS


def kink_values(layer: Any) -> tuple[float, ...]:
    """The output values at which ``layer``'s output passes through a kink (none for a layer
    without a piecewise-linear activation); see the table in Note [Kink flips]."""
    kind = type(layer).__name__
    config = layer.get_config()
    if kind == "ReLU":
        kinks = [] if config.get("threshold", 0.0) else [0.0]  # θ > 0: a jump, not a kink
        if config.get("max_value") is not None:
            kinks.append(float(config["max_value"]))
        return tuple(kinks)
    if kind in ("LeakyReLU", "PReLU"):
        return (0.0,)
    activation = config.get("activation")  # Activation('relu') and fused Dense/Conv alike
    return ACTIVATION_KINKS.get(activation, ()) if isinstance(activation, str) else ()


@dataclass(frozen=True, kw_only=True)
class Flip:
    """One activation on different sides of a kink in the two frameworks.

    Attributes:
        mode: ``"inference"`` or ``"training"``.
        layer: the layer call's label.
        output: which output of the layer (``"output"``, or ``"output:i"``).
        index: the element's index in that output.
        kink: the output value at the kink.
        values: ``{backend: value}`` of the two sides.
        reference: the float64 reference's value there (None without a per-layer reference).
        pre_activation: ``{backend: value}`` of the layer's input there, when the layer is a
            separate elementwise activation (its input is the pre-activation); else None.
    """

    mode: str
    layer: str
    output: str
    index: tuple[int, ...]
    kink: float
    values: dict[str, float]
    reference: float | None = None
    pre_activation: dict[str, float] | None = None

    def describe(self) -> str:
        sides = ", ".join(f"{k} {v:.9g}" for k, v in self.values.items())
        text = f"{self.layer}{self.index} at kink {self.kink:g}: {sides}"
        if self.pre_activation:
            pre = ", ".join(f"{k} {v:.9g}" for k, v in self.pre_activation.items())
            text += f" (pre-activation {pre})"
        if self.reference is not None:
            text += f"; float64 reference {self.reference:.9g}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "layer": self.layer, "output": self.output,
                "index": list(self.index), "kink": self.kink, "values": self.values,
                "reference": self.reference, "pre_activation": self.pre_activation}  # fmt: skip


def find_flips(a: np.ndarray, b: np.ndarray, kinks: tuple[float, ...], bound: Tolerance,
               mask: np.ndarray | None = None, *,
               exact: bool = False) -> list[tuple[tuple[int, ...], float]]:  # fmt: skip
    """``(index, kink)`` of every element of ``a`` vs ``b`` (one layer output on the two
    sides) that lies on different sides of a kink, both within ``bound`` of it (Note [Kink
    flips]); ``mask`` (True = compared) leaves padded positions out; ``exact``: one side must
    be exactly on the kink (:func:`kink_is_exact`)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or not kinks:
        return []
    selected = np.isfinite(a) & np.isfinite(b) & (a != b)
    if mask is not None:
        selected &= np.broadcast_to(mask, a.shape)
    found = []
    for k in kinks:
        near = bound.atol + bound.rtol * abs(k)
        # Opposite sides (or one exactly on the kink): the product of the offsets is <= 0.
        hit = selected & ((a - k) * (b - k) <= 0) & (np.abs(a - k) <= near) & (
            np.abs(b - k) <= near)  # fmt: skip
        if exact:
            hit &= (a == k) | (b == k)
        found.extend((tuple(int(i) for i in idx), k) for idx in np.argwhere(hit))
    return sorted(found)


def ancestors(parents: dict[str, tuple[str, ...]]) -> dict[str, set[str]]:
    """Per layer call label, the labels of every call it depends on (transitively), itself
    included. ``parents``: each call's direct parents (execution order: parents first)."""
    out: dict[str, set[str]] = {}
    for label, direct in parents.items():
        found = {label}
        for p in direct:
            found |= out.get(p, {p})
        out[label] = found
    return out


def explained_by(layer: str, flips: list[Flip], upstream: dict[str, set[str]]) -> list[Flip]:
    """The flips that can move the gradients of weights of ``layer`` (a layer name): those in
    a call of ``layer`` itself or in a call downstream of one (``upstream``: see
    :func:`ancestors`; a shared layer's calls are ``name``, ``name#1``, ...)."""

    def owns(label: str) -> bool:
        return label.split("#")[0] == layer

    return [f for f in flips if any(owns(u) for u in upstream.get(f.layer, {f.layer}))]
