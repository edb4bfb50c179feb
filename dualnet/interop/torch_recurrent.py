"""``from_torch``: recurrent and attention modules (``nn.LSTM``, ``nn.GRU``, ``nn.RNN``,
``nn.MultiheadAttention``, ``nn.TransformerEncoderLayer``, ``nn.TransformerEncoder``).

Recurrent modules
-----------------
torch's ``nn.LSTM(num_layers=L, bidirectional=D)`` is L stacked dualnet layers (each
``return_sequences=True, return_state=True``, wrapped in ``Bidirectional(merge_mode="concat")``
when D), with ``Dropout(dropout)`` between them (torch drops the outputs of every layer but the
last, in training). Weights per layer and direction:

===========  ===================================  =========================================
module       torch                                dualnet (Keras layout)
===========  ===================================  =========================================
LSTM         ``weight_ih (4u, in)``, ``weight_hh  ``kernel = W_ihᵀ``, ``recurrent_kernel =
             (4u, u)``, ``bias_ih``, ``bias_hh``  W_hhᵀ``, ``bias = b_ih + b_hh`` (summed in
             gates (i, f, g, o)                   float64, rounded once); same gate order
GRU          gates (r, z, n); ``bias_ih``,        gates (z, r, h): blocks reordered;
             ``bias_hh``                          ``reset_after=True``, ``bias (2, 3u) =
                                                  [b_ih; b_hh]`` (reordered)
RNN          ``nonlinearity`` tanh/relu           ``SimpleRNN(activation)``, bias summed
===========  ===================================  =========================================

The call returns ``(output, (h_n, c_n))`` (LSTM) or ``(output, h_n)``: ``output`` is the last
layer's sequence (time-major again for ``batch_first=False``: the lazy permutation, no layer),
and ``h_n``/``c_n`` are :class:`FinalStates`, usable as ``h_n[i]`` (layer ``i // D``, direction
``i % D``, as torch stacks them). An initial state ``hx`` and ``proj_size`` are not supported.

Attention
---------
``nn.MultiheadAttention`` is ``MultiHeadAttention(num_heads, key_dim=E/heads)`` with the
weights of :func:`dualnet.layers.torch_mha_weights`, called ``(query, value, key=key)``
(Keras's order). ``batch_first=False`` inputs are read time-major through the lazy permutation.
``attn_mask`` is supported when it is a constant causal mask (boolean ``triu(ones, 1)`` or a
float mask with −inf above the diagonal): ``use_causal_mask=True``; ``key_padding_mask`` and
other masks are not (dualnet's mask is a boolean "attend" mask computed by layers, and there
is no layer for logical ops). The second output (attention weights) is not available.
``nn.TransformerEncoderLayer`` (post- or pre-norm, ReLU or GELU) and ``nn.TransformerEncoder``
expand into those layers plus Dense, LayerNormalization, Dropout and Add.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dualnet.interop import torch_functions as fns
from dualnet.interop.torch_import import Converter, Special, Tensor, Unsupported, _to_numpy

__all__ = ["MODULES", "FinalStates"]


class FinalStates(Special):
    """torch's stacked final states ``(layers·directions, B, u)``: ``h_n[i]`` gives one."""

    message = ("a recurrent module's stacked final states (layers·directions, B, units); "
               "supported: indexing one of them, h_n[i]")  # fmt: skip

    def __init__(self, states: list[Any]):
        self.states = states

    def pick(self, cv: Converter, index: Any) -> Tensor:
        if isinstance(index, bool) or not isinstance(index, int):
            raise Unsupported(f"h_n[{index!r}]: supported: h_n[i] with an int i")
        if not -len(self.states) <= index < len(self.states):
            raise Unsupported(f"h_n[{index}] out of range ({len(self.states)} states)")
        return Tensor(self.states[index], (0, 1))


class AttentionWeights(Special):
    message = ("the attention weights returned by nn.MultiheadAttention (dualnet's layer "
               "returns per-head scores only on request; not imported)")  # fmt: skip


def _layers() -> Any:
    from dualnet import layers

    return layers


def batch_major(cv: Converter, x: Tensor, batch_first: bool, what: str) -> Any:
    """The ``(B, T, F)`` symbolic tensor behind a torch ``(B, T, F)`` or (time-major)
    ``(T, B, F)`` tensor."""
    if x.rank != 3:
        raise Unsupported(f"{what} on a rank-{x.rank} input; supported: batched 3-D inputs")
    if batch_first:
        return cv.dense(x)
    if x.perm[1] != 0:
        raise Unsupported(f"{what}(batch_first=False) reads (T, B, F), but dim 1 of its input is "
                          "not the model's batch axis (dualnet takes dim 0 of every model input "
                          "as the batch): transpose a batch-first tensor into it")  # fmt: skip
    if x.perm == (1, 0, 2):
        return x.sym
    return cv.call(cv.layer(_layers().Permute, (x.perm[0], x.perm[2]), suffix="batch_major"),
                   x.sym)  # fmt: skip


def _gate_blocks(w: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """Reorder the gate blocks along axis 0 (GRU: torch (r, z, n) -> Keras (z, r, h))."""
    return np.concatenate([np.split(w, 3, axis=0)[i] for i in order], axis=0)


def _rnn_weights(m: Any, kind: str, layer: int, suffix: str, dtype: str) -> list[np.ndarray]:
    def get(name: str) -> np.ndarray:
        return _to_numpy(getattr(m, f"{name}_l{layer}{suffix}"))

    w_ih, w_hh = get("weight_ih"), get("weight_hh")
    if kind == "GRU":
        order = (1, 0, 2)  # (r, z, n) -> (z, r, n)
        out = [_gate_blocks(w_ih, order).T, _gate_blocks(w_hh, order).T]
        if m.bias:
            out.append(np.stack([_gate_blocks(get("bias_ih"), order),
                                 _gate_blocks(get("bias_hh"), order)]))  # fmt: skip
        return out
    out = [w_ih.T, w_hh.T]
    if m.bias:
        # one bias for both products: the sum in float64, rounded once to the model's dtype
        out.append((get("bias_ih").astype(np.float64) + get("bias_hh")).astype(dtype))
    return out


def rnn(cv: Converter, m: Any, x: Any, hx: Any = None) -> tuple[Any, Any]:
    """``nn.LSTM``/``nn.GRU``/``nn.RNN``: stacked (bidirectional) dualnet layers."""
    layers = _layers()
    kind = type(m).__name__
    problems = []
    if hx is not None:
        problems.append("an initial state hx")
    if getattr(m, "proj_size", 0):
        problems.append(f"proj_size={m.proj_size}")
    if problems:
        raise Unsupported(f"{' and '.join(problems)}; supported: zero initial states, no "
                          "projection")  # fmt: skip
    seq = batch_major(cv, fns.tensor(x), m.batch_first, kind)
    options: dict[str, Any] = {"return_sequences": True, "return_state": True,
                               "use_bias": bool(m.bias)}  # fmt: skip
    cls = {"LSTM": layers.LSTM, "GRU": layers.GRU, "RNN": layers.SimpleRNN}[kind]
    if kind == "RNN":
        options["activation"] = m.nonlinearity
    if kind == "GRU":
        options["reset_after"] = True  # torch's formula: r ⊙ (W_hn·h + b_hn)
    directions = 2 if m.bidirectional else 1
    h_states: list[Any] = []
    c_states: list[Any] = []
    for i in range(m.num_layers):
        with cv.scope(f"l{i}"):
            weights = _rnn_weights(m, kind, i, "", cv.dtype)
            if m.bidirectional:
                weights += _rnn_weights(m, kind, i, "_reverse", cv.dtype)
                inner = cls(m.hidden_size, dtype=cv.dtype, name=cv.name("cell"), **options)
                layer = cv.layer(layers.Bidirectional, inner, merge_mode="concat")
            else:
                layer = cv.layer(cls, m.hidden_size, **options)
            out = cv.call(layer, seq, weights)
            seq, states = out[0], out[1:]
            per = len(states) // directions  # LSTM: (h, c) per direction; GRU/RNN: (h,)
            for d in range(directions):
                h_states.append(states[d * per])
                if per == 2:
                    c_states.append(states[d * per + 1])
            if m.dropout and i < m.num_layers - 1:
                seq = cv.call(cv.layer(layers.Dropout, float(m.dropout), suffix="dropout"), seq)
    if kind == "GRU":
        cv.note("GRU: gate blocks reordered (r, z, n) -> (z, r, h); bias rows [b_ih; b_hh]")
    if kind != "GRU" and m.bias:
        cv.note(f"{kind}: bias = bias_ih + bias_hh (summed in float64)")
    if m.num_layers > 1 or m.bidirectional:
        cv.note(f"{kind}(num_layers={m.num_layers}, bidirectional={m.bidirectional}) -> "
                f"{m.num_layers} stacked layers" + (" in Bidirectional" if m.bidirectional
                                                    else ""))  # fmt: skip
    output = Tensor(seq, (0, 1, 2) if m.batch_first else (1, 0, 2))
    if kind == "LSTM":
        return output, (FinalStates(h_states), FinalStates(c_states))
    return output, FinalStates(h_states)


def _causal(cv: Converter, mask: Any, is_causal: bool) -> bool:
    """Whether a constant attention mask is torch's causal mask (True above the diagonal for
    a boolean mask, −inf there and 0 elsewhere for a float mask)."""
    import torch

    if mask is None:
        if is_causal:
            raise Unsupported("is_causal=True without attn_mask")
        return False
    if isinstance(mask, Tensor | Special) or not isinstance(mask, torch.Tensor):
        raise Unsupported("an attn_mask computed from the inputs; supported: a constant causal "
                          "mask")  # fmt: skip
    if mask.ndim != 2 or mask.shape[0] != mask.shape[1]:
        raise Unsupported(f"an attn_mask of shape {tuple(mask.shape)}; supported: a constant "
                          "(T, T) causal mask")  # fmt: skip
    above = torch.ones(mask.shape, dtype=torch.bool).triu(1)
    if mask.dtype == torch.bool:
        ok = bool(torch.equal(mask, above))
    else:
        ok = bool(torch.all(torch.isneginf(mask[above]))) and bool(torch.all(mask[~above] == 0))
    if not ok:
        raise Unsupported(
            "an attn_mask that is not the causal mask; supported: a constant "
            "causal mask (triu(ones, 1) as bool, or -inf above the diagonal)"
        )
    cv.note("attn_mask: the constant causal mask -> use_causal_mask=True")
    return True


def mha(cv: Converter, m: Any, query: Any, key: Any, value: Any, key_padding_mask: Any = None,
        need_weights: bool = True, attn_mask: Any = None, average_attn_weights: bool = True,
        is_causal: bool = False) -> tuple[Tensor, AttentionWeights]:  # fmt: skip
    """``nn.MultiheadAttention``: ``MultiHeadAttention(heads, key_dim=E/heads)``."""
    from dualnet.layers.attention import torch_mha_weights

    del need_weights, average_attn_weights  # the weights output is not imported
    problems = []
    if m.bias_k is not None:
        problems.append("add_bias_kv=True")
    if m.add_zero_attn:
        problems.append("add_zero_attn=True")
    if key_padding_mask is not None:
        problems.append("key_padding_mask")
    if problems:
        raise Unsupported(
            f"{', '.join(problems)}; supported: no extra key/value bias, no zero "
            "attention, no padding mask (a constant causal attn_mask is fine)"
        )
    causal = _causal(cv, attn_mask, is_causal)
    syms = [batch_major(cv, fns.tensor(t, what), m.batch_first, "MultiheadAttention")
            for t, what in ((query, "query"), (key, "key"), (value, "value"))]  # fmt: skip
    weights = torch_mha_weights(m.state_dict(), m.num_heads)
    layer = cv.layer(_layers().MultiHeadAttention, m.num_heads, m.head_dim,
                     dropout=float(m.dropout), use_bias=m.in_proj_bias is not None)  # fmt: skip
    out = cv.call(layer, syms[0], weights, value=syms[2], key=syms[1], use_causal_mask=causal)
    return Tensor(out, (0, 1, 2) if m.batch_first else (1, 0, 2)), AttentionWeights()


def _encoder_layer(cv: Converter, m: Any, x: Tensor, causal_mask: Any,
                   is_causal: bool) -> Tensor:  # fmt: skip
    """One ``nn.TransformerEncoderLayer``, written out as torch's ``forward`` computes it."""
    import torch.nn as nn
    import torch.nn.functional as F

    from dualnet.interop import torch_modules as mods

    act = m.activation
    kinds = {F.relu: "relu", F.gelu: "gelu"}
    if isinstance(act, nn.ReLU | nn.GELU):
        kind, params = ("relu", {}) if isinstance(act, nn.ReLU) else ("gelu", {
            "approximate": act.approximate})  # fmt: skip
    elif act in kinds:
        kind, params = kinds[act], {}
    else:
        raise Unsupported(f"activation={act!r}; supported: relu, gelu")
    add = fns._binary("Add")

    def attend(y: Tensor) -> Tensor:
        with cv.scope("self_attn"):
            out, _ = mha(cv, m.self_attn, y, y, y, attn_mask=causal_mask, is_causal=is_causal)
        with cv.scope("dropout1"):
            return fns.dropout(cv, out, m.dropout1.p)

    def feed_forward(y: Tensor) -> Tensor:
        with cv.scope("linear1"):
            y = mods.linear(cv, m.linear1, y)
        with cv.scope("activation"):
            y = fns.activation(cv, y, kind, **params)
        with cv.scope("dropout"):
            y = fns.dropout(cv, y, m.dropout.p)
        with cv.scope("linear2"):
            y = mods.linear(cv, m.linear2, y)
        with cv.scope("dropout2"):
            return fns.dropout(cv, y, m.dropout2.p)

    def norm(which: str, y: Tensor) -> Tensor:
        with cv.scope(which):
            return mods.layer_norm(cv, getattr(m, which), y)

    def residual(which: str, a: Tensor, b: Tensor) -> Tensor:
        with cv.scope(which):
            return add(cv, a, b)

    if m.norm_first:  # x + sa(norm1(x)), then x + ff(norm2(x))
        x = residual("add1", x, attend(norm("norm1", x)))
        return residual("add2", x, feed_forward(norm("norm2", x)))
    x = norm("norm1", residual("add1", x, attend(x)))  # post-norm: norm1(x + sa(x)), ...
    return norm("norm2", residual("add2", x, feed_forward(x)))


def encoder_layer(cv: Converter, m: Any, src: Any, src_mask: Any = None,
                  src_key_padding_mask: Any = None, is_causal: bool = False) -> Tensor:  # fmt: skip
    """``nn.TransformerEncoderLayer``."""
    if src_key_padding_mask is not None:
        raise Unsupported("src_key_padding_mask; supported: none (a constant causal src_mask "
                          "is fine)")  # fmt: skip
    cv.note("TransformerEncoderLayer expanded into MultiHeadAttention, Dense, "
            "LayerNormalization, Dropout, Add")  # fmt: skip
    return _encoder_layer(cv, m, fns.tensor(src), src_mask, is_causal)


def encoder(cv: Converter, m: Any, src: Any, mask: Any = None,
            src_key_padding_mask: Any = None, is_causal: bool | None = None) -> Tensor:  # fmt: skip
    """``nn.TransformerEncoder``: its layers in turn, then its ``norm``."""
    from dualnet.interop import torch_modules as mods

    if src_key_padding_mask is not None:
        raise Unsupported("src_key_padding_mask; supported: none")
    x = fns.tensor(src)
    for i, layer in enumerate(m.layers):
        with cv.scope(f"layers_{i}"):
            x = _encoder_layer(cv, layer, x, mask, bool(is_causal))
    if m.norm is not None:
        with cv.scope("norm"):
            x = mods.layer_norm(cv, m.norm, x)
    cv.note(f"TransformerEncoder: {len(m.layers)} layers expanded")
    return x


def _table() -> dict[type, Any]:
    import torch.nn as nn

    return {
        nn.LSTM: rnn,
        nn.GRU: rnn,
        nn.RNN: rnn,
        nn.MultiheadAttention: mha,
        nn.TransformerEncoderLayer: encoder_layer,
        nn.TransformerEncoder: encoder,
    }


MODULES = _table()
