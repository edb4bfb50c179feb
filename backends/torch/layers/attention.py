"""Attention layers on PyTorch (builders named like the neutral classes).

MultiHeadAttention (Note [Multi-head attention] in :mod:`dualnet.layers.attention`):

* the weights are stored in the canonical layout (``query/kernel (E, N, H)``, ...): a
  projection is ``F.linear`` on the kernel viewed as ``(E, N·H)`` and transposed (a view, no
  copy), so nothing is re-laid out per call (measured: as fast as a contiguous ``(N·H, E)``
  weight in torch's own layout, which would need a :class:`Layout`);
* the attention itself is ``F.scaled_dot_product_attention`` (torch's fused kernels) unless the
  call needs the weights (``return_attention_scores``) or drops them (training with
  ``dropout > 0``): then ``matmul`` + ``softmax`` + the portable keep-mask, written out;
* the boolean mask is True = attend for both (SDPA's convention; ``nn.MultiheadAttention``'s
  is the opposite). A query row with no key to attend to is given every key (so no kernel
  ever sees an empty row, which some give NaN for) and its result is replaced by zeros: the
  documented zero weights, with a zero gradient, on any device;
* float16/bfloat16: computed in float32, rounded once at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from dualnet.backends.torch.layers.base import HALF, Module, host_draw

from dualnet.layers.attention import fold_permutation


def _fold(x: torch.Tensor, perm: tuple[int, ...] | None, n_att: int) -> torch.Tensor:
    """``(B, *others, *attention, E)`` in ``perm``'s order -> ``(B·others, attention, E)``."""
    if perm is None:
        return x
    x = x.permute(perm)
    return x.reshape(-1, math.prod(x.shape[x.dim() - 1 - n_att : -1]), x.shape[-1])


class MultiHeadAttention(Module):
    """Projections by ``F.linear``, attention by SDPA or explicitly (see the module note)."""

    def __init__(self, layer: Any, weights: Sequence[np.ndarray]):
        super().__init__(layer, weights)
        self.__dict__["names"] = frozenset(layer.weight_names())

    def _weight(self, name: str) -> torch.Tensor | None:
        return getattr(self, name) if name in self.names else None

    def _project(self, x: torch.Tensor, name: str, dtype: torch.dtype) -> torch.Tensor:
        """``x (B', L, E) -> (B', N, L, H)``: ``x·kernel + bias`` per head."""
        kernel = self._weight(f"{name}/kernel").to(dtype)
        features, heads, size = kernel.shape
        bias = self._weight(f"{name}/bias")
        bias = None if bias is None else bias.to(dtype).reshape(heads * size)
        y = F.linear(x, kernel.reshape(features, heads * size).t(), bias)
        return y.unflatten(-1, (heads, size)).transpose(1, 2)

    def forward(self, query: torch.Tensor, training: bool = False, value: Any = None,
                key: Any = None, attention_mask: Any = None,
                return_attention_scores: bool = False, use_causal_mask: bool = False,
                mask: Any = None, value_mask: Any = None, key_mask: Any = None) -> Any:  # fmt: skip
        layer = self.layer
        out_dtype = query.dtype
        dtype = torch.float32 if out_dtype in HALF else out_dtype  # half: float32 math
        rank = query.dim()
        layer.check_input_masks(tuple(query.shape), mask, value_mask, key_mask)
        axes = layer.resolved_axes(rank)
        # Rank 3 with the sequence axis (the default) needs no fold.
        perm = None if axes == (1,) and rank == 3 else fold_permutation(rank, axes)
        xq = _fold(query.to(dtype), perm, len(axes))
        xv = _fold(value.to(dtype), perm, len(axes))
        xk = xv if key is None else _fold(key.to(dtype), perm, len(axes))
        q = self._project(xq, "query", dtype)  # (B', N, T, H)
        k = self._project(xk, "key", dtype)
        v = self._project(xv, "value", dtype)
        allowed = _attention_mask(xq.shape[1], xv.shape[1], q.device, attention_mask, mask,
                                  value_mask, key_mask if key is not None else None,
                                  use_causal_mask)  # fmt: skip
        scores_shape = (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
        # Every training call draws (and counts), so the mask sequence does not depend on the
        # path; None for dropout 0.
        keep = host_draw(layer.next_keep_mask, scores_shape) if training else None
        rows = None if allowed is None else allowed.any(-1, keepdim=True)  # (B, T, 1)
        # A row with no key to attend to attends to all of them, then gives zeros (below).
        safe = None if allowed is None else (allowed | ~rows).unsqueeze(1)
        probs = None
        if return_attention_scores or keep is not None:
            # Keras scales the query before the product.
            scores = torch.matmul(q * layer.scale, k.transpose(-1, -2))
            if safe is not None:
                scores = scores.masked_fill(~safe, -math.inf)  # exp(-inf) = 0 exactly
            probs = torch.softmax(scores, dim=-1)
            if allowed is not None:
                probs = torch.where(allowed.unsqueeze(1), probs, 0.0)  # empty rows -> 0
            weights = probs
            if keep is not None:
                keep_t = torch.from_numpy(keep).to(device=probs.device)
                # The factor as a Python float: rounded once to the compute dtype (Dropout's).
                weights = torch.where(keep_t, probs * layer.dropout_scale, 0.0)
            context = torch.matmul(weights, v)
        elif allowed is None or (use_causal_mask and _causal_only(attention_mask, mask,
                                                                   value_mask, key_mask, key)
                                 and xq.shape[1] == xv.shape[1]):  # fmt: skip
            # Causal alone on a square (T = S) needs no mask tensor: SDPA's top-left tril is
            # Keras's t >= u.
            context = F.scaled_dot_product_attention(q, k, v, scale=layer.scale,
                                                     is_causal=allowed is not None)  # fmt: skip
        else:
            context = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, scale=layer.scale)
            context = torch.where(rows.unsqueeze(1), context, 0.0)  # empty rows -> 0
        out = self._output(context, dtype)
        out = _unfold(out, perm, query.shape, len(axes), len(out.shape) - 2).to(out_dtype)
        if not return_attention_scores:
            return out
        return [out, _unfold_scores(probs, query.shape, value.shape, axes).to(out_dtype)]

    def compute_mask(self, x: Any, mask: Any) -> Any:
        """The output carries the query's mask, the scores none (Keras)."""
        return None if mask is None else [mask, None]

    def _output(self, context: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """``(B', N, T, Hv) -> (B', T, *output_shape)``: ``Σ_{n,h} context·kernel + bias``."""
        kernel = self._weight("attention_output/kernel").to(dtype)
        heads, size = kernel.shape[:2]
        features = kernel.shape[2:]
        bias = self._weight("attention_output/bias")
        bias = None if bias is None else bias.to(dtype).reshape(-1)
        flat = context.transpose(1, 2).reshape(context.shape[0], context.shape[2], heads * size)
        y = F.linear(flat, kernel.reshape(heads * size, -1).t(), bias)
        return y.unflatten(-1, features)


def _causal_only(attention_mask: Any, mask: Any, value_mask: Any, key_mask: Any,
                 key: Any) -> bool:  # fmt: skip
    return attention_mask is None and mask is None and value_mask is None and (
        key is None or key_mask is None)  # fmt: skip


def _attention_mask(t: int, s: int, device: torch.device, attention_mask: Any, mask: Any,
                    value_mask: Any, key_mask: Any,
                    causal: bool) -> torch.Tensor | None:  # fmt: skip
    """Keras's ``_compute_attention_mask``: the AND of every mask given, True = attend, of a
    shape broadcastable to ``(B, T, S)`` (None when there is none)."""
    parts = []
    if attention_mask is not None:
        am = attention_mask
        parts.append(am if am.dtype == torch.bool else am != 0)  # nonzero = attend
    if mask is not None:
        parts.append(mask.to(torch.bool)[:, :, None])  # the query's: rows
    for m in (value_mask, key_mask):
        if m is not None:
            parts.append(m.to(torch.bool)[:, None, :])  # the value's/key's: columns
    if causal:
        parts.append(torch.ones((1, t, s), dtype=torch.bool, device=device).tril())  # t >= u
    if not parts:
        return None
    allowed = parts[0]
    for part in parts[1:]:
        allowed = allowed & part
    # (B or 1, T, S), a broadcast view: one shape for the row test and SDPA's attn_mask.
    return allowed.expand(allowed.shape[0], t, s)


def _unfold(y: torch.Tensor, perm: tuple[int, ...] | None, shape: Sequence[int], n_att: int,
            n_features: int) -> torch.Tensor:  # fmt: skip
    """The inverse of :func:`_fold` for the output ``(B', T, *features)``."""
    if perm is None:
        return y
    rank = len(shape)
    folded = [shape[a] for a in perm[:-1]]  # (B, *others, *attention) in perm's order
    y = y.reshape(*folded, *y.shape[2:])
    inverse = [int(i) for i in np.argsort(perm[:-1])]
    return y.permute(*inverse, *range(rank - 1, rank - 1 + n_features))


def _unfold_scores(p: torch.Tensor, q_shape: Sequence[int], v_shape: Sequence[int],
                   axes: Sequence[int]) -> torch.Tensor:  # fmt: skip
    """``(B', N, T, S) -> (B, *others, N, *query attention axes, *key attention axes)``."""
    others = [q_shape[a] for a in range(1, len(q_shape) - 1) if a not in axes]
    return p.reshape(q_shape[0], *others, p.shape[1], *(q_shape[a] for a in axes),
                     *(v_shape[a] for a in axes))  # fmt: skip


def multi_head_attention(layer: Any, weights: Sequence[np.ndarray]) -> MultiHeadAttention:
    return MultiHeadAttention(layer, weights)
