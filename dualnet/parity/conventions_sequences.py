"""torch/Keras splits met by the sequence layers (Embedding, MultiHeadAttention, recurrent
layers), as plain records that :mod:`dualnet.parity.conventions` turns into
:class:`~dualnet.parity.conventions.Convention` entries. Each probe runs torch's default on a
tiny input and returns how far it lands from dualnet's documented rule."""

from __future__ import annotations

from typing import Any

import numpy as np

from dualnet.parity._frameworks import rng as _rng
from dualnet.parity._frameworks import torch as _torch
from dualnet.reference.layers import attention as RA
from dualnet.reference.layers import recurrent as RR


def _probe_embedding_init() -> float:
    torch = _torch()
    torch.manual_seed(0)
    w = torch.nn.Embedding(100, 8).weight.detach()
    return float(w.abs().max()) - 0.05  # Keras's U(-0.05, 0.05) never exceeds 0.05


def _probe_embedding_padding() -> float:
    torch = _torch()
    emb = torch.nn.Embedding(3, 2, padding_idx=0)
    torch.nn.init.ones_(emb.weight)
    ids = torch.tensor([[0, 1, 0]])
    emb(ids).sum().backward()
    # Keras's mask_zero: row 0 is an ordinary row, read twice: its gradient is 2 per entry and
    # its value 1; torch zeroes both.
    return max(
        float((emb.weight.grad[0] - 2.0).abs().max()),
        float((emb.weight.detach()[0] - 1.0).abs().max()),
    )


def _mha_setup(seed: int = 0):
    """A torch nn.MultiheadAttention (E=4, 2 heads, random biases), inputs, and the module's
    weights in dualnet's canonical layout, named."""
    from dualnet.layers.attention import torch_mha_weights

    torch = _torch()
    torch.manual_seed(seed)
    module = torch.nn.MultiheadAttention(4, 2, batch_first=True).double()
    with torch.no_grad():
        module.in_proj_bias.normal_()
        module.out_proj.bias.normal_()
    rng = _rng()
    q, k, v = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 5, 4))
    names = [f"{p}/{w}" for p in ("query", "key", "value", "attention_output")
             for w in ("kernel", "bias")]  # fmt: skip
    weights = dict(zip(names, torch_mha_weights(module.state_dict(), 2), strict=True))
    return torch, module, q, k, v, weights


_CONFIG = {"num_heads": 2, "key_dim": 2}


def _probe_mha_boolean_mask() -> float:
    """torch's attn_mask marks the masked positions; the rule (Keras, SDPA) the attended ones:
    the same boolean array in both conventions."""
    torch, module, q, _, v, w = _mha_setup()
    mask = _rng().random((3, 5)) < 0.5
    mask[:, 0] = ~mask[:, 1]  # every row keeps a key in both readings (torch stays finite)
    native, _ = module(*(torch.from_numpy(a) for a in (q, v, v)),
                       attn_mask=torch.from_numpy(mask), need_weights=False)  # fmt: skip
    rule = RA.multi_head_attention(q, w, **_CONFIG, value=v,
                                   attention_mask=np.broadcast_to(mask, (2, 3, 5)))  # fmt: skip
    return float(np.max(np.abs(native.detach().numpy() - rule)))


def _probe_mha_call_order() -> float:
    """torch calls (query, key, value), Keras (query, value, key): a distinct key and value
    passed in one framework's order to the other's."""
    torch, module, q, k, v, w = _mha_setup()
    native, _ = module(*(torch.from_numpy(a) for a in (q, v, k)), need_weights=False)
    rule = RA.multi_head_attention(q, w, **_CONFIG, value=v, key=k)
    return float(np.max(np.abs(native.detach().numpy() - rule)))


def _probe_mha_scores_averaged() -> float:
    """torch returns the attention weights averaged over the heads (average_attn_weights=True);
    Keras per head, (B, N, T, S): the averaged weights against head 0's."""
    torch, module, q, _, v, w = _mha_setup()
    _, weights = module(*(torch.from_numpy(a) for a in (q, v, v)))
    _, scores = RA.multi_head_attention(q, w, **_CONFIG, value=v, return_attention_scores=True)
    return float(np.max(np.abs(weights.detach().numpy() - scores[:, 0])))


def _rnn_weights(rng: np.random.Generator, features: int, units: int, gates: int) -> dict:
    return {"kernel": rng.normal(size=(features, gates * units)),
            "recurrent_kernel": rng.normal(size=(units, gates * units)),
            "bias": rng.normal(size=(gates * units,))}  # fmt: skip


def _load_torch_rnn(torch, module, w_ih, w_hh, b_ih, b_hh, suffix: str = "l0") -> None:
    with torch.no_grad():
        for name, value in (("weight_ih", w_ih), ("weight_hh", w_hh), ("bias_ih", b_ih),
                            ("bias_hh", b_hh)):  # fmt: skip
            getattr(module, f"{name}_{suffix}").copy_(torch.as_tensor(value))


def _probe_gru_gate_order() -> float:
    """torch's nn.GRU given Keras's weights transposed, bias rows as its two biases, but the
    gate blocks left in Keras's z, r, h order (torch reads r, z, n)."""
    torch = _torch()
    rng = _rng()
    x, u = rng.normal(size=(2, 4, 3)), 2
    w = _rnn_weights(rng, 3, u, 3)
    w["bias"] = rng.normal(size=(2, 3 * u))
    rule = RR.gru(x, w, units=u, reset_after=True)
    module = torch.nn.GRU(3, u, batch_first=True).double()
    _load_torch_rnn(torch, module, w["kernel"].T, w["recurrent_kernel"].T, w["bias"][0],
                    w["bias"][1])  # fmt: skip
    native = module(torch.as_tensor(x))[0][:, -1].detach().numpy()
    return float(np.max(np.abs(native - rule)))


def _probe_rnn_bias_split() -> float:
    """Keras's one LSTM bias copied into both of torch's (bias_ih and bias_hh): counted twice."""
    torch = _torch()
    rng = _rng()
    x, u = rng.normal(size=(2, 4, 3)), 2
    w = _rnn_weights(rng, 3, u, 4)
    rule = RR.lstm(x, w, units=u)
    module = torch.nn.LSTM(3, u, batch_first=True).double()
    _load_torch_rnn(torch, module, w["kernel"].T, w["recurrent_kernel"].T, w["bias"], w["bias"])
    native = module(torch.as_tensor(x))[0][:, -1].detach().numpy()
    return float(np.max(np.abs(native - rule)))


def _probe_lstm_forget_bias() -> float:
    """The forget slice of torch's default LSTM bias (bias_ih + bias_hh), against Keras's 1."""
    torch = _torch()
    torch.manual_seed(0)
    u = 8
    module = torch.nn.LSTM(3, u)
    forget = (module.bias_ih_l0 + module.bias_hh_l0)[u : 2 * u].detach().numpy()
    return float(np.max(np.abs(forget - 1.0)))


def _probe_rnn_masked_output() -> float:
    """torch's packed sequences give zeros at padded steps; Keras repeats the last output."""
    torch = _torch()
    rng = _rng()
    x, u = rng.normal(size=(2, 4, 3)), 2
    w = _rnn_weights(rng, 3, u, 4)
    mask = np.array([[True, True, True, True], [True, True, False, False]])
    rule = RR.lstm(x, w, units=u, mask=mask, return_sequences=True)
    module = torch.nn.LSTM(3, u, batch_first=True).double()
    _load_torch_rnn(torch, module, w["kernel"].T, w["recurrent_kernel"].T, w["bias"],
                    np.zeros_like(w["bias"]))  # fmt: skip
    rnn = torch.nn.utils.rnn
    packed = rnn.pack_padded_sequence(torch.as_tensor(x), torch.tensor([4, 2]), batch_first=True)
    native = rnn.pad_packed_sequence(module(packed)[0], batch_first=True)[0].detach().numpy()
    return float(np.max(np.abs(native - rule)))


def _probe_bidirectional_last_output() -> float:
    """torch's bidirectional output[:, -1] (the backward direction after its *first* step)
    against Keras's concatenation of the two final outputs."""
    torch = _torch()
    rng = _rng()
    x, u = rng.normal(size=(2, 4, 3)), 2
    fw, bw = _rnn_weights(rng, 3, u, 4), _rnn_weights(rng, 3, u, 4)
    rule = np.concatenate([RR.lstm(x, fw, units=u),
                           RR.lstm(x, bw, units=u, go_backwards=True)], axis=-1)  # fmt: skip
    module = torch.nn.LSTM(3, u, batch_first=True, bidirectional=True).double()
    for w, suffix in ((fw, "l0"), (bw, "l0_reverse")):
        _load_torch_rnn(torch, module, w["kernel"].T, w["recurrent_kernel"].T, w["bias"],
                        np.zeros_like(w["bias"]), suffix)  # fmt: skip
    native = module(torch.as_tensor(x))[0][:, -1].detach().numpy()
    return float(np.max(np.abs(native - rule)))


RECORDS: list[dict[str, Any]] = [
    dict(
        id="embedding-init", what="Embedding initial values", keras="U(-0.05, 0.05) ('uniform')",
        torch="N(0, 1)", dualnet="Keras's (embeddings_initializer=RandomNormal(stddev=1.0) for "
        "torch's)", case="layer/embedding-rank2-repeated-ids", probe=_probe_embedding_init,
        threshold=0.5,
    ),
    dict(
        id="embedding-padding", what="Embedding padding id 0",
        keras="mask_zero: a mask ids != 0 for the layers downstream; row 0 trained as any row",
        torch="padding_idx: row 0 zeroed, and its gradient", dualnet="Keras's (no padding_idx)",
        case="layer/embedding-rank3-mask-zero", probe=_probe_embedding_padding, threshold=0.5,
    ),

    dict(
        id="mha-boolean-mask", what="MultiHeadAttention boolean attention mask",
        keras="True = attend (also torch's scaled_dot_product_attention)",
        torch="nn.MultiheadAttention attn_mask / key_padding_mask: True = masked",
        dualnet="Keras's (pass ~mask for a torch-style one; torch's key_padding_mask is the "
        "value's mask negated)",
        case="layer/mha-attention-mask-empty-row", probe=_probe_mha_boolean_mask, threshold=0.1,
    ),
    dict(
        id="mha-call-order", what="MultiHeadAttention call order",
        keras="(query, value, key=None)", torch="(query, key, value)",
        dualnet="Keras's; torch_mha_weights() maps torch's weights (key_dim = E/heads)",
        case="layer/mha-cross-attention-key", probe=_probe_mha_call_order, threshold=0.1,
    ),
    dict(
        id="mha-scores-per-head", what="MultiHeadAttention returned attention weights",
        keras="per head, (B, N, T, S), before dropout",
        torch="need_weights=True (default) averages over heads: (B, T, S)",
        dualnet="Keras's (return_attention_scores=True; average axis 1 for torch's)",
        case="layer/mha-query-mask-scores", probe=_probe_mha_scores_averaged, threshold=1e-3,
    ),

dict(
    id="gru-gate-order", what="GRU gate blocks in the weights", keras="z, r, h",
    torch="r, z, n", dualnet="Keras's; reordered for torch's fused kernel",
    case="layer/gru", probe=_probe_gru_gate_order, threshold=0.1,
),
dict(
    id="rnn-bias-split", what="LSTM/SimpleRNN biases", keras="one bias",
    torch="bias_ih + bias_hh", dualnet="Keras's one bias (torch's sum; bias_hh = 0 on torch)",
    case="layer/lstm", probe=_probe_rnn_bias_split, threshold=0.1,
),
dict(
    id="lstm-forget-bias-init", what="LSTM initial bias",
    keras="forget slice 1 (unit_forget_bias), zeros elsewhere; orthogonal recurrent kernel",
    torch="U(±1/√u) for every weight and both biases",
    dualnet="Keras's (initializers and unit_forget_bias=False for torch's)",
    case="layer/lstm-initializers", probe=_probe_lstm_forget_bias, threshold=0.1,
),
dict(
    id="rnn-masked-steps", what="recurrent output at masked (padded) steps",
    keras="repeats the last valid output (zero_output_for_mask=False)",
    torch="packed sequences: zeros (right padding only)",
    dualnet="Keras's, any mask (zero_output_for_mask=True for zeros)",
    case="layer/lstm-masked-initial", probe=_probe_rnn_masked_output, threshold=0.1,
),
dict(
    id="bidirectional-final-output", what="Bidirectional output without return_sequences",
    keras="the two final outputs concatenated",
    torch="output[:, -1]: the backward half is after its first step",
    dualnet="Keras's", case="layer/bidirectional-lstm-concat",
    probe=_probe_bidirectional_last_output, threshold=0.1,
),
]  # fmt: skip
