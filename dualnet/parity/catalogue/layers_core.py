"""Layer entries (Note [Layer entries]) for the core group: Dense on rank-3 inputs and frozen,
Activation, Embedding, Masking. The single-Dense activation sweep lives in ``layers.py`` (the
Dense ModelCase).

Embedding ids are integers (not differentiated); each entry looks up id 0, id ``input_dim-1``
and repeated ids, so the gradient of ``embeddings`` must sum the cotangents of every position
that read a row (a scatter-add: ``grad_reduction`` is the largest repeat count) and leave
unread rows at 0. The forward is an exact copy in every dtype.

The masks these layers make are compared exactly with the reference's rule (``ids != 0``,
``any(x != mask_value)``). The layers of other groups that *consume* such a mask have their
masked entries here too: ``GlobalAveragePooling1D`` (a row without any valid step, where Keras
divides 0 by 0, NaN, and dualnet gives 0), ``BatchNormalization`` in training (moments of the
valid entries; Keras divides by ``n + 1e-7``, a relative 1e-7/n below the float32 bound),
``Softmax`` (over the valid entries; a fully masked step is 0).

Masking's entry holds a fully masked step (every feature equal to ``mask_value``, zeroed) and a
step where only one feature equals it (kept whole); ``mask_value`` is exact in every dtype. The
finite difference is invalid at the fully masked step (a perturbed feature no longer equals
``mask_value`` and unmasks the step), so it is masked there.
"""

from __future__ import annotations

import numpy as np

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.catalogue.layers_pooling import float32_rounded_once
from dualnet.parity.layer_cases import BadInput, LayerCase, bilinear_bound, rounding_bound
from dualnet.reference.layers import activations as RA
from dualnet.reference.layers import core as R
from dualnet.reference.layers import normalization as RN
from dualnet.reference.layers import pooling as RP

EXACT = rounding_bound(0)


def _ids(shape: tuple[int, ...], input_dim: int, repeats: int):
    """Random ids in ``[0, input_dim)`` of ``shape`` with 0 and ``input_dim - 1`` present and
    id 2 ``repeats`` times (the scatter-add's longest sum)."""

    def draw(rng: np.random.Generator) -> np.ndarray:
        ids = rng.integers(3, input_dim - 1, size=shape).ravel()
        ids[0], ids[-1] = 0, input_dim - 1
        ids[1 : 1 + repeats] = 2
        return ids.reshape(shape).astype(np.int64)

    return draw


def _masking_inputs(rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((2, 4, 3))
    x[0, 1, :] = 0.5  # fully masked: zeroed, and masked downstream
    x[1, 2, 0] = 0.5  # one feature equal to mask_value: kept whole
    x[1, 3, :] = 0.5
    return x


def _masking_fd(xs: list[np.ndarray], _: dict) -> dict[str, np.ndarray]:
    # The finite difference would unmask a fully masked step: valid only at kept steps.
    keep = np.any(xs[0] != 0.5, axis=-1, keepdims=True)
    return {"x": np.broadcast_to(keep, xs[0].shape)}


def _steps_mask(rng: np.random.Generator) -> np.ndarray:
    """(3, 5): a row with gaps, a fully masked row, a full row."""
    return np.array([[1, 1, 0, 1, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=bool)


_EMBEDDING_ERRORS = (
    BadInput(kwargs={"input_dim": 0}, error=ValueError, match=r"input_dim=0.*positive int"),
    BadInput(kwargs={"output_dim": 2.5}, error=TypeError, match=r"output_dim=2\.5.*positive int"),
    BadInput(kwargs={"mask_zero": "yes"}, error=TypeError, match=r"mask_zero='yes'.*a bool"),
    BadInput(input_shape=(), error=ValueError, match=r"expects ids of rank >= 1"),
)

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
    LayerCase(
        name="embedding-rank2-repeated-ids", layer=L.Embedding,
        kwargs={"input_dim": 9, "output_dim": 4}, input_shape=(3, 5),
        inputs=_ids((3, 5), 9, repeats=4), reference=R.embedding, grad_reduction=4,
        half_bound=EXACT, errors=_EMBEDDING_ERRORS,
        exposes="ids checked against [0, input_dim) on both backends; the gradient of the "
                "embeddings is a scatter-add (dense on torch, IndexedSlices on TensorFlow)",
    ),
    LayerCase(
        name="embedding-rank1", layer=L.Embedding, kwargs={"input_dim": 6, "output_dim": 3},
        input_shape=(7,), inputs=_ids((7,), 6, repeats=3), reference=R.embedding,
        grad_reduction=3, half_bound=EXACT,
    ),
    LayerCase(
        name="embedding-rank3-mask-zero", layer=L.Embedding,
        kwargs={"input_dim": 11, "output_dim": 2, "mask_zero": True}, input_shape=(2, 3, 4),
        inputs=_ids((2, 3, 4), 11, repeats=5), reference=R.embedding, grad_reduction=5,
        half_bound=EXACT,
        exposes="mask_zero keeps row 0 trainable (torch's padding_idx zeroes it and its "
                "gradient) and gives the mask ids != 0",
    ),
    LayerCase(
        name="masking-partial-and-full-steps", layer=L.Masking, kwargs={"mask_value": 0.5},
        input_shape=(2, 4, 3), inputs=_masking_inputs, reference=R.masking, fd_mask=_masking_fd,
        half_bound=EXACT,
        errors=(
            BadInput(kwargs={"mask_value": "0"}, error=TypeError, match=r"mask_value='0'"),
            BadInput(kwargs={"mask_value": float("nan")}, error=ValueError,
                     match=r"mask_value=nan.*finite"),
            BadInput(input_shape=(3,), error=ValueError, match=r"rank >= 2"),
        ),
    ),
    LayerCase(
        name="global-average-pooling1d-masked", layer=L.GlobalAveragePooling1D,
        input_shape=(3, 5, 2), mask=_steps_mask, reference=RP.global_average_pooling1d,
        reduction=5, half_bound=float32_rounded_once(5),
        exposes="the mean over the valid steps only; a fully masked row gives 0 (Keras: NaN)",
    ),
    LayerCase(
        name="batchnorm-train-masked", layer=L.BatchNormalization, kwargs={"momentum": 0.5},
        input_shape=(3, 5, 2), mask=_steps_mask, training=True,
        reference=RN.batch_normalization, reduction=10,
        exposes="batch moments over the valid steps only, and the moving statistics moved by "
                "them",
    ),
    LayerCase(
        name="batchnorm-train-masked-unbiased", layer=L.BatchNormalization,
        kwargs={"momentum": 0.5, "moving_variance_estimator": "unbiased"},
        input_shape=(3, 5, 2), mask=_steps_mask, training=True,
        reference=RN.batch_normalization, reduction=10,
    ),
    LayerCase(
        name="softmax-masked-steps", layer=L.Softmax, input_shape=(3, 5, 4), mask=_steps_mask,
        reference=RA.softmax, reduction=4,
        exposes="a (batch, steps) mask zeroes the padded steps (Keras broadcasts it from the "
                "right and raises)",
    ),
    LayerCase(
        name="softmax-masked-over-steps", layer=L.Softmax, kwargs={"axis": 1},
        input_shape=(3, 5, 4), mask=_steps_mask, reference=RA.softmax, reduction=5,
    ),
    LayerCase(
        name="global-average-pooling1d-masked-keepdims", layer=L.GlobalAveragePooling1D,
        kwargs={"keepdims": True}, input_shape=(3, 5, 2), mask=_steps_mask,
        reference=RP.global_average_pooling1d, reduction=5,
    ),
)  # fmt: skip
