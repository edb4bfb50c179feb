"""Layer entries (Note [Layer entries]) for MultiHeadAttention: self- and cross-attention,
masks (an attention mask with a query row that may attend to nothing, the query's own mask,
causal), the returned attention scores, portable dropout in training mode, ``key_dim`` other
than ``E/num_heads``, ``output_shape`` and attention over an inner axis of a rank-4 input. Each
exposes one torch/Keras difference (``exposes=``); the gradients cover the query, the value,
the key and every weight.

Tolerance: ``reduction`` is the longest chain of sums behind one output, counted as their
total length: the query and key projections (``E``), the scores (``key_dim``), the softmax
normaliser and the weighted sum of the values (``S`` each) and the output projection
(``N·value_dim``); the value projection (``E_v``) feeds the last two. The gradients run the
same sums backwards.

Half precision is not run: the layer computes in float32 and rounds once, but a bound in the
style of :func:`~dualnet.parity.layer_cases.bilinear_bound` needs the reference on ``|x|`` and
``|W|`` to bound every sum, and the softmax is not monotone in its inputs (``|s|`` gives other
weights), so no such bound follows from it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from dualnet import layers as L
from dualnet.parity.cases import register
from dualnet.parity.layer_cases import BadInput, LayerCase
from dualnet.reference.layers import attention as R

MHA = L.MultiHeadAttention


def _reduction(e_q: int, e_v: int, key_dim: int, value_dim: int, heads: int, s: int) -> int:
    """The longest chain of sums behind one output (see the module docstring)."""
    return max(e_q, e_v) + key_dim + 2 * s + heads * value_dim


def _tensors(**shapes: tuple[int, ...]) -> Callable[[np.random.Generator], dict[str, Any]]:
    """Standard normal call arguments of the given shapes."""
    return lambda rng: {name: rng.standard_normal(shape) for name, shape in shapes.items()}


def _self_attention(shape: tuple[int, ...]) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``inputs`` and ``call_inputs`` giving the same values as query and value (mha(x, x))."""
    x = np.random.default_rng(2024).standard_normal(shape)
    return (lambda rng: x.copy()), (lambda rng: {"value": x.copy()})


def _with_mask(mask: np.ndarray, **shapes: tuple[int, ...]) -> Callable[..., Mapping[str, Any]]:
    """Random call tensors plus a fixed boolean ``attention_mask``."""

    def make(rng: np.random.Generator) -> dict[str, Any]:
        return {**_tensors(**shapes)(rng), "attention_mask": mask.copy()}

    return make


# (B, T, S) = (2, 4, 5): batch 0's query row 1 may attend to nothing (its output is the output
# bias: torch's nn.MultiheadAttention gives NaN, Keras's default path a uniform average), row 2
# to the first key only; batch 1 has its last two keys masked everywhere.
_MASK = np.ones((2, 4, 5), dtype=bool)
_MASK[0, 1] = False
_MASK[0, 2, 1:] = False
_MASK[1, :, 3:] = False

_QUERY_MASK = np.array([[True, True, True, False], [True, False, True, True]])

_SELF_X, _SELF_V = _self_attention((2, 4, 6))

_ERRORS = (
    BadInput(kwargs={"num_heads": 0}, match=r"num_heads=0.*positive int"),
    BadInput(kwargs={"num_heads": 2.0}, error=TypeError, match=r"num_heads=2\.0"),
    BadInput(kwargs={"key_dim": -1}, match=r"key_dim=-1.*positive int"),
    BadInput(kwargs={"value_dim": 0}, match=r"value_dim=0"),
    BadInput(kwargs={"dropout": 1.5}, match=r"dropout=1\.5.*<= 1"),
    BadInput(kwargs={"output_shape": (0,)}, match=r"output_shape=\(0,\)"),
    BadInput(kwargs={"attention_axes": [2]}, input_shape=(2, 4, 6),
             call_inputs={"value": (2, 5, 6)},
             match=r"attention_axes=\[2\].*\[1, 1\]"),
    BadInput(kwargs={"seed": -1}, match=r"seed=-1"),
    BadInput(input_shape=(2, 6), call_inputs={"value": (2, 6)}, match=r"rank >= 3"),
    BadInput(input_shape=(2, 4, 6), call_inputs={"value": (3, 5, 6)},
             match=r"value of shape \(3, 5, 6\).*batch size 2"),
    BadInput(input_shape=(2, 4, 6), call_inputs={"value": (2, 5)}, match=r"query's rank 3"),
    BadInput(input_shape=(2, 4, 6), call_inputs={"value": (2, 5, 6), "key": (2, 3, 6)},
             match=r"key \(2, 3, 6\) and value \(2, 5, 6\)"),
    BadInput(input_shape=(2, 4, 6), call_inputs={"value": (2, 5, 6), "attention_mask": (2, 5, 4)},
             match=r"attention_mask of shape \(2, 5, 4\).*\(2, 4, 5\)"),
    BadInput(input_shape=(2, 4, 6), error=TypeError, match=r"missing the value"),
    BadInput(input_shape=(2, 4, 6), call_inputs={"value": (2, 5, 6)},
             call_options={"return_attention_scores": "yes"}, error=TypeError,
             match=r"return_attention_scores='yes'"),
    BadInput(input_shape=(2, 3, 4, 6), call_inputs={"value": (2, 3, 4, 6)},
             call_options={"use_causal_mask": True}, match=r"expected rank-3 inputs"),
)  # fmt: skip

register(
    LayerCase(
        name="mha-self-attention", layer=MHA, kwargs={"num_heads": 2, "key_dim": 3},
        input_shape=(2, 4, 6), inputs=_SELF_X, call_inputs=_SELF_V,
        reference=R.multi_head_attention, reduction=_reduction(6, 6, 3, 3, 2, 4),
        exposes="per-head kernels (E, N, key_dim) vs torch's packed in_proj_weight (3E, E); the "
                "query scaled by 1/√key_dim before the product; call order (query, value) vs "
                "torch's (query, key, value)",
        errors=_ERRORS,
    ),
    LayerCase(
        name="mha-cross-attention-key", layer=MHA,
        kwargs={"num_heads": 2, "key_dim": 3, "value_dim": 2}, input_shape=(3, 4, 6),
        call_inputs=_tensors(value=(3, 5, 7), key=(3, 5, 5)), reference=R.multi_head_attention,
        reduction=_reduction(7, 7, 3, 2, 2, 5),
        exposes="a key distinct from the value (Keras's third argument, torch's second), each "
                "with its own feature size; value_dim other than key_dim",
    ),
    LayerCase(
        name="mha-attention-mask-empty-row", layer=MHA, kwargs={"num_heads": 2, "key_dim": 3},
        input_shape=(2, 4, 6), call_inputs=_with_mask(_MASK, value=(2, 5, 6)),
        reference=R.multi_head_attention, reduction=_reduction(6, 6, 3, 3, 2, 5),
        exposes="boolean attention_mask True = attend (torch nn.MultiheadAttention: True = "
                "masked); a query row with no key: zero weights, the output bias (torch MHA: "
                "NaN; Keras's default path: the uniform average)",
    ),
    LayerCase(
        name="mha-query-mask-scores", layer=MHA, kwargs={"num_heads": 2, "key_dim": 2},
        input_shape=(2, 4, 5), call_inputs=_tensors(value=(2, 4, 5)), mask=lambda rng:
        _QUERY_MASK, call_options={"return_attention_scores": True},
        reference=R.multi_head_attention, reduction=_reduction(5, 5, 2, 2, 2, 4),
        exposes="the query's mask (Keras's compute_attention_mask: rows (B, T, 1)) masks the "
                "rows and travels to the output (not to the scores); the scores per head "
                "(B, N, T, S), torch MHA averages them over heads by default",
    ),
    LayerCase(
        name="mha-causal-square", layer=MHA, kwargs={"num_heads": 2, "key_dim": 3},
        input_shape=(2, 5, 4), call_inputs=_tensors(value=(2, 5, 4)),
        call_options={"use_causal_mask": True}, reference=R.multi_head_attention,
        reduction=_reduction(4, 4, 3, 3, 2, 5),
        exposes="use_causal_mask: Keras's t >= u, torch's is_causal / attn_mask=triu(1) (True "
                "= masked)",
    ),
    LayerCase(
        name="mha-causal-rectangular-scores", layer=MHA,
        kwargs={"num_heads": 1, "key_dim": 4, "use_bias": False}, input_shape=(2, 3, 4),
        call_inputs=_with_mask(np.array([[[1, 1, 0, 1, 1]] * 3, [[1, 0, 1, 1, 1]] * 3]) != 0,
                               value=(2, 5, 3)),
        call_options={"use_causal_mask": True, "return_attention_scores": True},
        reference=R.multi_head_attention, reduction=_reduction(4, 3, 4, 4, 1, 5),
        exposes="causal with T < S: the top-left triangle (Keras's cumsum comparison), ANDed "
                "with an attention mask; no biases",
    ),
    LayerCase(
        name="mha-dropout-training", layer=MHA,
        kwargs={"num_heads": 2, "key_dim": 3, "dropout": 0.3, "seed": 5}, input_shape=(2, 4, 6),
        call_inputs=_tensors(value=(2, 5, 6)), training=True, reference=R.multi_head_attention,
        reduction=_reduction(6, 6, 3, 3, 2, 5),
        exposes="attention dropout from dualnet's portable keep-mask (B, N, T, S), identical on "
                "both backends (torch's and TF's own generators never agree)",
    ),
    LayerCase(
        name="mha-key-dim-output-shape", layer=MHA,
        kwargs={"num_heads": 2, "key_dim": 5, "value_dim": 2, "output_shape": (2, 3)},
        input_shape=(2, 3, 4), call_inputs=_tensors(value=(2, 4, 6)),
        reference=R.multi_head_attention, reduction=_reduction(6, 6, 5, 2, 2, 4),
        exposes="key_dim (5) other than E/num_heads (2), as torch's nn.MultiheadAttention "
                "cannot; output_shape (2, 3): kernel (N, value_dim, 2, 3)",
    ),
    LayerCase(
        name="mha-rank4-attention-axes", layer=MHA,
        kwargs={"num_heads": 2, "key_dim": 2, "attention_axes": [2]}, input_shape=(2, 3, 2, 4),
        call_inputs=_tensors(value=(2, 3, 4, 5)), call_options={"return_attention_scores": True},
        reference=R.multi_head_attention, reduction=_reduction(5, 5, 2, 2, 2, 4),
        exposes="attention over an inner axis (Keras's attention_axes; axis 1 acts as a batch "
                "axis): scores (B, 3, N, 2, 4); torch has no counterpart",
    ),
)  # fmt: skip
