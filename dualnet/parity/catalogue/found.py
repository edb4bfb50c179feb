"""Parity cases for disagreements found by the property-based search (``tests/
test_properties.py``), each pinned here so it is checked on every run, whatever hypothesis draws.

* ``hard_silu`` and ``mish`` near the top of the float range. Their derivative there is 1, but
  differentiating the products ``x·hard_sigmoid(x)`` and ``x·tanh(softplus(x))`` forms the
  cotangent times ``x``, which overflows to ±inf once ``|c·x|`` passes the dtype's maximum;
  TensorFlow then multiplies it by the factor's zero derivative (``Relu6Grad`` and the tanh
  derivative are products with a 0/1 mask or with 0) and the gradient is ``inf·0 = NaN``.
  torch's kernels select instead of multiplying (hardtanh's backward) or differentiate in closed
  form (``F.mish``) and give the right value. Found in float32 at ``x = 3.4e38`` with a
  cotangent of -1.45; the inputs below hold several values whose product with an N(0, 1)
  cotangent overflows.

* ``gelu`` at large ``|x|``: the tanh form gives the same ``inf·0`` on TensorFlow once
  ``x·x`` overflows (``|x| > 1.8e19`` in float32: found at ``x = -3.2e19``), and on torch
  (``F.gelu``'s backward) near the maximum; the exact form on TensorFlow near the maximum,
  where its erfc gradient scales the overflowing cotangent times ``x`` before the zero
  density (found at ``x = 3.4e38``).

* ``keras.initializers.Orthogonal`` in float16 on small shapes: Keras runs the QR in float16,
  and ``WᵀW`` is off by 4-8 units of float16 roundoff whatever the size (2.2e-3 for 2x3,
  3.8e-3 for 3x4; 5e-3 for 256x256), above the catalogue's ``√n·u·gain²`` bound for small
  ``n`` (1.7e-3 for n = 3). Found at shape 3x4; pinned at 2x3 (its seed shows it).

The finite-difference reference says nothing where ``x ± h`` rounds to ``x`` (``|x| >>
1e10``): those elements are compared across backends only, as kinks are.
"""

from __future__ import annotations

import numpy as np

from dualnet import activations as A
from dualnet.parity.cases import FunctionCase, kink_mask, register
from dualnet.parity.catalogue.initializers import InitializerCase
from dualnet.reference import activations as R

FAMILY = "activation"
# Beyond this the float64 finite difference's step is below 1e5 ulps of x, and from ~1e10 on
# x ± h == x: no reference gradient.
FD_RANGE = 1e6


def _near_max(top: float):
    """``top`` and ``-top`` several times (overflowing c·x for |c| > 1), half of it, √top (x·x
    overflows just above), the kinks at ±3 and the bulk between them."""

    def inputs(rng: np.random.Generator) -> dict[str, np.ndarray]:
        root = 2.0 * np.sqrt(top)
        edges = np.array([top, -top, top, -top, top, -top, top / 2, -top / 2, root, -root, 3.0,
                          -3.0, 0.0])  # fmt: skip
        return {"x": np.concatenate([edges, rng.uniform(-6.0, 6.0, size=11)]).reshape(4, 6)}

    return inputs


def _mask(kinks: tuple[float, ...]):
    """No finite difference at the kinks or beyond ``FD_RANGE`` (see the module docstring)."""
    at_kinks = kink_mask(kinks) if kinks else None

    def mask(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        x = np.asarray(arrays["x"], dtype=np.float64)
        ok = np.abs(x) <= FD_RANGE
        return {"x": ok if at_kinks is None else ok & at_kinks(arrays)["x"]}

    return mask


def _case(name: str, fn, reference, kinks: tuple[float, ...], top: float, dtypes, notes: str):
    return FunctionCase(
        name=name, family=FAMILY, inputs=_near_max(top), fn=fn, reference=reference,
        elementwise=True, fd_mask=_mask(kinks), dtypes=dtypes, notes=notes,
    )  # fmt: skip


# 3e38 is finite in float32 and bfloat16 (whose maximum is 3.39e38); float64 has its own case.
register(
    _case("hard_silu-near-max", A.hard_silu, R.hard_silu, (-3.0, 3.0), 3e38,
          ("float32", "bfloat16"), "found by hypothesis: TF's gradient was NaN (inf·0)"),
    _case("hard_silu-near-max-f64", A.hard_silu, R.hard_silu, (-3.0, 3.0), 1.5e308,
          ("float64",), "found by hypothesis: TF's gradient was NaN (inf·0)"),
    _case("gelu-near-max", A.gelu, R.gelu, (), 3e38, ("float32", "bfloat16"),
          "found by hypothesis: TF's gradient was NaN (inf·0) near the maximum"),
    _case("gelu-near-max-f64", A.gelu, R.gelu, (), 1.5e308, ("float64",),
          "found by hypothesis: TF's gradient was NaN (inf·0) near the maximum"),
    _case("gelu-tanh-near-max", lambda x: A.gelu(x, approximate=True),
          lambda x: R.gelu(x, True), (), 3e38, ("float32", "bfloat16"),
          "found by hypothesis: TF's gradient was NaN (inf·0) from |x| = 1.8e19 on"),
    _case("gelu-tanh-near-max-f64", lambda x: A.gelu(x, approximate=True),
          lambda x: R.gelu(x, True), (), 1.5e308, ("float64",),
          "found by hypothesis: TF's gradient was NaN (inf·0) from |x| = 1e154 on"),
    _case("mish-near-max", A.mish, R.mish, (), 3e38, ("float32", "bfloat16"),
          "found by hypothesis: TF's gradient was NaN (inf·0)"),
    _case("mish-near-max-f64", A.mish, R.mish, (), 1.5e308, ("float64",),
          "found by hypothesis: TF's gradient was NaN (inf·0)"),
)  # fmt: skip

register(
    InitializerCase(name="orthogonal-2x3-half", initializer="orthogonal", shape=(2, 3),
                    dtypes=("float16",),
                    notes="found by hypothesis: Keras's float16 QR exceeds the √n·u bound"),
)  # fmt: skip
