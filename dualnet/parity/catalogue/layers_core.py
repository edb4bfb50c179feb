"""Layer entries (Note [Layer entries]) for the core group: Dense on rank-3 inputs and frozen,
Activation. The single-Dense activation sweep lives in ``layers.py`` (the Dense ModelCase)."""

from __future__ import annotations

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import BadInput, LayerCase, bilinear_bound
from dualnet.reference.layers import core as R

register(
    LayerCase(
        name="dense-rank3-tanh", layer=L.Dense, kwargs={"units": 3, "activation": "tanh"},
        input_shape=(2, 3, 4), reference=R.dense_layer, reduction=4, half_bound=None,
        errors=(
            BadInput(kwargs={"units": 0}, error=ValueError, match=r"units=0.*positive int"),
            BadInput(input_shape=(4,), error=ValueError, match=r"rank >= 2"),
        ),
    ),
    LayerCase(
        name="dense-linear-half", layer=L.Dense, kwargs={"units": 5}, input_shape=(3, 8),
        reference=R.dense_layer, reduction=8, half_bound=bilinear_bound(8),
    ),
    LayerCase(
        name="activation-gelu", layer=L.Activation, kwargs={"activation": "gelu"},
        input_shape=(3, 5), reference=R.activation_layer,
        errors=(BadInput(kwargs={"activation": "nope"}, error=ValueError, match=r"nope"),),
    ),
)  # fmt: skip
