"""float64 references of the attention layers.

Written from the math of Note [Multi-head attention] in :mod:`dualnet.layers.attention` with
numpy's ``einsum`` on the unfolded axes (Keras's equations), not with the backends' fold into
``(batch, sequence, features)``; only the dropout keep-masks come from the neutral function
that defines them (:func:`dualnet.layers.regularization.keep_mask`). ``call`` is the index of
the training call (0 for a fresh layer).
"""

from __future__ import annotations

import math
import string

import numpy as np

from dualnet.layers.regularization import keep_mask


def _f64(x):
    return np.asarray(x, dtype=np.float64)


def _axes(rank, attention_axes):
    """Attention axes of an input of ``rank`` (Keras: negative ones counted from the end, so
    that -2 is the last sequence axis; default all axes between the batch and the features)."""
    if attention_axes is None:
        return tuple(range(1, rank - 1))
    return tuple(sorted(a + rank if a < 0 else a for a in attention_axes))


def _masked_softmax(scores, allowed, n_axes):
    """Softmax over the last ``n_axes`` axes among the ``allowed`` entries; 0 where not allowed,
    and 0 on a whole row that allows nothing (dualnet's rule, Keras's Softmax layer)."""
    axes = tuple(range(scores.ndim - n_axes, scores.ndim))
    shifted = np.where(allowed, scores, -np.inf)
    top = np.max(shifted, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)  # a row without allowed entries: exp(-inf) = 0
    e = np.where(allowed, np.exp(shifted - top), 0.0)
    total = np.sum(e, axis=axes, keepdims=True)
    return np.where(total > 0, e / np.where(total > 0, total, 1.0), 0.0)


def multi_head_attention(query, w, *, num_heads, key_dim, value_dim=None, dropout=0.0,
                         use_bias=True, output_shape=None, attention_axes=None, seed=None,
                         training=False, call=0, value=None, key=None, attention_mask=None,
                         return_attention_scores=False, use_causal_mask=False, mask=None,
                         value_mask=None, key_mask=None, **_):  # fmt: skip
    """Keras's MultiHeadAttention: ``(query, value, key=None)`` -> output, or ``[output,
    scores]`` with ``return_attention_scores``. ``mask``/``value_mask``/``key_mask``: the
    inputs' masks ``(B, T)``/``(B, S)``."""
    xq = _f64(query)
    xv = _f64(value)
    xk = xv if key is None else _f64(key)
    rank = xq.ndim
    axes = _axes(rank, attention_axes)
    letters = string.ascii_lowercase
    # Input axes 0..rank-2 of the query: a, b, ...; the key/value's attention axes get their
    # own letters (A, B, ...); the head is Y, the channel Z (Keras's _build_attention_equation).
    q_idx = letters[: rank - 1]
    k_idx = "".join(string.ascii_uppercase[axes.index(i)] if i in axes else q_idx[i]
                    for i in range(rank - 1))  # fmt: skip
    batch_like = "".join(q_idx[i] for i in range(rank - 1) if i not in axes)
    q_att = "".join(q_idx[i] for i in axes)
    k_att = "".join(k_idx[i] for i in axes)

    def project(x, name, idx):
        y = np.einsum(f"{idx}z,zYH->{idx}YH", x, _f64(w[f"{name}/kernel"]))
        return y + _f64(w[f"{name}/bias"]) if use_bias else y

    q = project(xq, "query", q_idx)
    k = project(xk, "key", k_idx)
    v = project(xv, "value", k_idx)
    # The query is scaled before the product (Keras).
    q = q * (1.0 / math.sqrt(float(key_dim)))
    scores_idx = f"{batch_like}Y{q_att}{k_att}"
    scores = np.einsum(f"{q_idx}YH,{k_idx}YH->{scores_idx}", q, k)

    allowed = np.ones(scores.shape, dtype=bool)
    t, s = xq.shape[1], xv.shape[1]
    if attention_mask is not None:  # (B, T, S), nonzero = attend; broadcast over the heads
        allowed = allowed & (np.asarray(attention_mask) != 0)[:, None]
    if mask is not None:  # the query's mask: rows
        allowed = allowed & np.asarray(mask, dtype=bool)[:, None, :, None]
    if value_mask is not None:  # the value's mask: columns
        allowed = allowed & np.asarray(value_mask, dtype=bool)[:, None, None, :]
    if key is not None and key_mask is not None:
        allowed = allowed & np.asarray(key_mask, dtype=bool)[:, None, None, :]
    if use_causal_mask:  # t >= u, top-left aligned (Keras's cumsum comparison)
        allowed = allowed & np.tril(np.ones((t, s), dtype=bool))
    probs = _masked_softmax(scores, allowed, len(axes))

    dropped = probs
    if training and dropout > 0.0:
        keep = keep_mask(seed, call, probs.shape, dropout)
        scale = 0.0 if dropout >= 1.0 else 1.0 / (1.0 - dropout)
        dropped = np.where(keep, probs * scale, 0.0)
    context = np.einsum(f"{scores_idx},{k_idx}YH->{q_idx}YH", dropped, v)
    kernel = _f64(w["attention_output/kernel"])
    out_idx = letters[rank - 1 : rank - 1 + kernel.ndim - 2]
    out = np.einsum(f"{q_idx}YH,YH{out_idx}->{q_idx}{out_idx}", context, kernel)
    if use_bias:
        out = out + _f64(w["attention_output/bias"])
    return [out, probs] if return_attention_scores else out


def multi_head_attention_mask(x, mask, *, return_attention_scores=False, **_):
    """The output's mask: the query's (Keras); the scores carry none."""
    return [mask, None] if return_attention_scores else mask
