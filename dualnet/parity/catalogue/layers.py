"""Parity cases for single Dense layers: each activation, with and without bias, tiny and wide.

Each case calls a lone ``dn.layers.Dense`` (realised on the backend by its first call), loads
the same canonical weights on both backends, and compares the output and the gradients with
respect to the input, the kernel ``(in, out)`` and the bias against the float64 reference
:func:`dualnet.reference.layers.dense` (see :class:`~dualnet.parity.catalogue.models.ModelCase`).
Inputs include a zero row, a ±1e3 row (saturation, and sums whose terms cancel) and a ±1e-3 row.
float32/float64 comparisons use the per-element bound derived from the computation
(:func:`dualnet.parity.error_bounds.dense_error_bounds`, Note [Dense error bounds]): Higham's
``γ_K·(|x|·|W| + |b|)`` with ``K = in_features + 1`` for each output, the batch for the kernel
and bias gradients and ``units`` for the input gradient, each sum with its own length.
"""

from __future__ import annotations

import dualnet as dn
from dualnet.parity.cases import register
from dualnet.parity.catalogue.models import ModelCase, edge_inputs


def dense_case(
    in_features: int, units: int, activation: str, *, use_bias: bool = True, batch: int = 6
) -> ModelCase:
    suffix = "" if use_bias else "-nobias"

    def build(dtype: str) -> dn.layers.Dense:
        return dn.layers.Dense(units, activation=activation, use_bias=use_bias, name="dense",
                               dtype=dtype)  # fmt: skip

    return ModelCase(
        name=f"dense-{in_features}x{units}-{activation}{suffix}",
        family="layer",
        build=build,
        units=(in_features, units),
        activations=(activation,),
        use_bias=(use_bias,),
        inputs=edge_inputs(in_features, batch=batch),
        # float16/bfloat16: forward values against Higham's dot-product bound (ModelCase).
        dtypes=("float32", "float64", "float16", "bfloat16"),
    )


register(
    # The tutorial network's layers.
    dense_case(3, 3, "linear"),
    dense_case(3, 3, "relu"),
    dense_case(3, 2, "sigmoid"),
    dense_case(2, 2, "softmax"),
    # With no bias the zero row sits exactly on relu's kink: the backends must agree on
    # relu'(0) = 0 (the finite difference is masked there, see ModelCase.fd_masks).
    dense_case(3, 3, "relu", use_bias=False),
    dense_case(16, 8, "tanh"),
    dense_case(16, 8, "leaky_relu"),
    dense_case(16, 8, "softmax", use_bias=False),
    # A wider layer: K = 65 (forward, with the bias), 8 (kernel gradient), 128 (input gradient).
    dense_case(64, 128, "linear", batch=8),
    dense_case(64, 128, "relu", batch=8),
)
