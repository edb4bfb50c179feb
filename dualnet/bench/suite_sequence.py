"""Sequence kernels: recurrent layers (group ``rnn``), multi-head attention (``attention``) and a
Transformer encoder block (``model`` and ``overhead``).

Kernels (all inputs batch-major, ``(batch, steps, features)``, as dualnet and Keras take them):

* ``rnn/LSTM``, ``rnn/GRU``: one layer of 256 units on 32 sequences of 100 steps of 128
  features, Keras's defaults (tanh, sigmoid; GRU ``reset_after=True``; ``return_sequences=False``:
  the output is the last step's h). On torch dualnet runs torch's fused kernel (what ``nn.LSTM``
  / ``nn.GRU`` run) with the weights mapped from the canonical layout on every call.
* ``attention/MultiHeadAttention``: self-attention, ``mha(x, x)``, 8 heads of 64 on 32 sequences
  of 128 steps of 512 features, no mask.
* ``transformer_block``: a post-norm Transformer encoder block in the functional API,
  ``MultiHeadAttention(8, 64) + Add + LayerNormalization + Dense(2048, relu) + Dense(512) + Add +
  LayerNormalization``, then ``GlobalAveragePooling1D + Dense(10)`` (a sequence classifier, so
  that the training step has a loss: cross-entropy on logits, SGD), on the attention's input.

Passes: ``forward``; ``forward+backward``: the gradients of the trainable weights and, for the
layer rows, of the input too (the work of a layer inside a network, as the ``conv`` rows); the
block's ``train``: one ``model.train_step``, eager only (:data:`suite.COMPILED_TRAIN_STEP`).

The ``overhead`` group times each of them through dualnet and written by hand:

* torch: ``nn.LSTM`` / ``nn.GRU`` (``batch_first=True``, the output ``h_n[-1]``),
  ``nn.MultiheadAttention(512, 8, batch_first=True)`` called ``mha(x, x, x,
  need_weights=False)`` and, for the block, ``nn.TransformerEncoderLayer(512, 8, 2048,
  dropout=0, batch_first=True, layer_norm_eps=1e-3)`` (Keras's LayerNormalization epsilon;
  torch's default is 1e-5), a mean over the steps and ``nn.Linear``. The forward runs under
  ``no_grad`` in eval mode, where torch's own fast paths (fused multi-head attention and
  encoder layer) apply, as they do for any torch user. The weights are converted from dualnet's
  canonical (Keras) layout: ``weight_ih = kernelᵀ``, ``weight_hh = recurrent_kernelᵀ``, the
  LSTM bias as ``bias_ih`` with ``bias_hh = 0`` (torch adds the two); the GRU's gate blocks
  reordered from Keras's z, r, h to torch's r, z, n and its two bias rows as ``bias_ih`` and
  ``bias_hh``; the attention's per-head kernels ``(E, heads, key_dim)`` flattened, transposed
  and packed as ``in_proj_weight (3E, E)``, the output kernel ``(heads, key_dim, E)`` as
  ``out_proj.weight = kernel.reshape(E, E)ᵀ``.
* Keras: the same layers from ``keras.layers`` (canonical layout: the weights load unchanged).

Before timing, each twin must compute what dualnet computes, or the row is refused
(``suite._check_same``): the output (on torch under ``no_grad`` in eval mode for the forward
pass, the path that is timed) and, for the block's ``train``, the training-mode output, the
loss, and every weight's update in one step divided by the learning rate (SGD's gradient: most
weights move by less than the tolerance in one step, so comparing the weights would pass a twin
that does not update them). The biases, and LayerNormalization's gamma and beta, are first set
to random values (they start at 0 and 1, where a twin that dropped, swapped or misordered them
would pass).

FLOPs count the matrix products only (2 per multiply-add): an LSTM step ``2·B·(in + u)·4u``,
a GRU step ``2·B·(in + u)·3u``; attention ``2·B·T·E·N·H`` per projection (q, k, v, output) and
``2·B·N·T²·H`` for each of the scores and the weighted sum. The gates, the softmax, the
normalizations and the residual adds are not counted. Backward: each product's two operands'
gradients cost one forward each, but the input of the first layer of a network gets no
gradient (nobody asks for the gradient of the data): the layer rows (input differentiated) do
3× the forward, the block 3× the forward less the q, k, v projections' input gradients.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dualnet import _ops
from dualnet._backend import backend_module
from dualnet.bench import suite
from dualnet.bench.kernels import Kernel, Setup, Unavailable, Workload
from dualnet.errors import bad_value

# Keras's LayerNormalization epsilon (dualnet's too); the torch twin is configured to match.
LN_EPSILON = 1e-3
PASSES = ("forward", "forward+backward")


@dataclass(frozen=True)
class Recurrent:
    """A recurrent layer row: ``kind`` ("LSTM" or "GRU") on ``(batch, timesteps, features)``."""

    kind: str
    batch: int
    timesteps: int
    features: int
    units: int

    def __post_init__(self) -> None:
        if self.kind not in ("LSTM", "GRU"):
            raise bad_value("kind", self.kind, "'LSTM' or 'GRU'")

    @property
    def gates(self) -> int:
        return 4 if self.kind == "LSTM" else 3

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.batch, self.timesteps, self.features, self.units)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.batch, self.timesteps, self.features)

    def flops(self, pass_: str) -> int:
        # Per step: x·W (in × G·u) and h·U (u × G·u). Backward: the weight and the input (x, h)
        # gradients, one forward each.
        steps = self.batch * self.timesteps
        forward = 2 * steps * (self.features + self.units) * self.gates * self.units
        return forward if pass_ == "forward" else 3 * forward


@dataclass(frozen=True)
class Attention:
    """Self-attention of ``heads`` heads of ``embed // heads`` on ``(batch, seq, embed)``; with
    ``ff`` and ``classes``, the Transformer block around it."""

    batch: int
    seq: int
    embed: int
    heads: int
    ff: int = 0
    classes: int = 0

    def __post_init__(self) -> None:
        if self.embed % self.heads:
            raise bad_value("heads", self.heads, f"a divisor of embed={self.embed}")

    @property
    def key_dim(self) -> int:
        return self.embed // self.heads

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.batch, self.seq, self.embed)

    def projection_flops(self) -> int:
        """One of the four projections (query, key, value, output)."""
        return 2 * self.batch * self.seq * self.embed * self.heads * self.key_dim

    def attention_flops(self) -> int:
        """The forward FLOPs of the attention layer: four projections, scores, weighted sum."""
        products = 2 * 2 * self.batch * self.heads * self.seq * self.seq * self.key_dim
        return 4 * self.projection_flops() + products

    def flops(self, pass_: str) -> int:
        """The attention layer alone (input differentiated: 3× the forward)."""
        return self.attention_flops() * (1 if pass_ == "forward" else 3)

    def block_flops(self, pass_: str) -> int:
        """The block: attention, the two feed-forward Dense and the classifier's Dense."""
        forward = (self.attention_flops() + 2 * 2 * self.batch * self.seq * self.embed * self.ff
                   + 2 * self.batch * self.embed * self.classes)  # fmt: skip
        if pass_ == "forward":
            return forward
        # The data's own gradient is not needed: the q, k, v projections skip their input one.
        return 3 * forward - 3 * self.projection_flops()


LSTM = Recurrent("LSTM", 32, 100, 128, 256)
GRU = Recurrent("GRU", 32, 100, 128, 256)
MHA = Attention(32, 128, 512, 8)
BLOCK = Attention(32, 128, 512, 8, ff=2048, classes=10)
QUICK_LSTM = Recurrent("LSTM", 8, 50, 128, 256)
QUICK_MHA = Attention(8, 128, 256, 4)


def _layers(*names: str) -> Any:
    layers = suite._require("dualnet.layers")
    missing = [n for n in names if not hasattr(layers, n)]
    if missing:
        raise Unavailable(f"dn.layers lacks {', '.join(missing)}")
    return layers


def _randomise(layer: Any, rng: np.random.Generator) -> None:
    """Random biases, gamma and beta (they start at 0 and 1, and the LSTM's forget bias at 1):
    a twin that dropped, swapped or misordered them would otherwise compute the same thing."""
    arrays = []
    for info, w in zip(layer.weights, layer.get_weights(), strict=True):
        leaf = info.path.rsplit("/", 1)[-1]
        if leaf in ("bias", "gamma", "beta"):
            w = w + rng.normal(0.0, 0.2, w.shape).astype(w.dtype)
        arrays.append(w)
    layer.set_weights(arrays)


def _differentiable(t: Any, backend: str) -> Any:
    """The input as a leaf the harness differentiates (made outside the clock)."""
    if backend == "torch":
        return t.detach().clone().requires_grad_(True)
    import tensorflow as tf

    return tf.Variable(t, trainable=True)


# ----------------------------------------------------------------------------- layer rows


def _make_layer(spec: Recurrent | Attention, setup: Setup) -> tuple[Any, Callable[[Any], Any]]:
    """The seeded, randomised, built dualnet layer and the one-argument call that is timed."""
    suite._seed(setup.seed)
    rng = np.random.default_rng([setup.seed, 1])
    if isinstance(spec, Recurrent):
        layer = getattr(_layers(spec.kind), spec.kind)(spec.units, dtype=setup.dtype)
        layer.build(spec.input_shape)
        _randomise(layer, rng)
        return layer, layer
    L = _layers("MultiHeadAttention")
    layer = L.MultiHeadAttention(spec.heads, spec.key_dim, dtype=setup.dtype)
    layer.build(spec.shape, value=spec.shape)
    _randomise(layer, rng)

    def self_attention(t: Any) -> Any:
        return layer(t, t)

    return layer, self_attention


def _layer_kernel(spec: Recurrent | Attention, pass_: str, compare: str,
                  modes: tuple[str, ...] = ("eager", "compiled")) -> Kernel:  # fmt: skip
    backward = pass_ == "forward+backward"

    def build(setup: Setup) -> Workload:
        layer, fn = _make_layer(spec, setup)
        x = suite._tensor(suite._normal(spec.input_shape if isinstance(spec, Recurrent)
                                        else spec.shape, setup.seed), setup.dtype)  # fmt: skip
        out = fn(x)  # realise on the active backend and device, outside the clock
        if setup.impl == "dualnet":
            if not backward:
                return Workload(fn=fn, args=(x,))
            xd = _differentiable(x, setup.backend)
            return Workload(
                fn=fn, args=(xd,), params=[*suite.native_parameters(layer, setup.backend), xd]
            )
        weights = layer.get_weights()
        if setup.backend == "torch":
            net = torch_layer(spec, weights, setup).eval()
            params = list(net.parameters())
        else:
            net = keras_layer(spec, weights, setup)
            params = list(net.trainable_variables)
        _check_forward(out, net, x, setup)
        if not backward:
            return Workload(fn=net, args=(x,))
        xd = _differentiable(x, setup.backend)
        return Workload(fn=net, args=(xd,), params=[*params, xd])

    if isinstance(spec, Recurrent):
        group, name = "rnn", spec.kind
        note = f"shape = (batch, timesteps, features, units); {spec.kind} defaults, last output"
    else:
        group, name = "attention", "MultiHeadAttention"
        note = (f"shape = (batch, sequence, embed); self-attention, {spec.heads} heads of "
                f"{spec.key_dim}, no mask")  # fmt: skip
    if backward:
        note += "; gradients of the weights and the input"
    return Kernel(group=group if compare == "backends" else "overhead", name=name,
                  shape=spec.shape, build=build, flops=spec.flops(pass_), pass_=pass_,
                  compare=compare, modes=modes, note=note)  # fmt: skip


def _check_forward(ours: Any, net: Any, x: Any, setup: Setup) -> None:
    """The twin's output, computed the way the timed forward computes it (torch: ``no_grad``,
    where the fused fast paths apply), must be dualnet's."""
    if setup.backend == "torch":
        import torch

        with torch.no_grad():
            theirs = net(x)
    else:
        theirs = net(x)
    suite._check_same(ours, theirs, setup)


# ----------------------------------------------------------------------------- weight layouts


def lstm_to_torch(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> dict[str, Any]:
    """Keras's LSTM weights as ``nn.LSTM``'s (same gate order i, f, c/g, o): torch computes
    ``x·W_ihᵀ + b_ih + h·W_hhᵀ + b_hh``, so Keras's one bias goes to ``b_ih`` and ``b_hh = 0``."""
    return {"weight_ih_l0": kernel.T, "weight_hh_l0": recurrent.T, "bias_ih_l0": bias,
            "bias_hh_l0": np.zeros_like(bias)}  # fmt: skip


def gru_gates_to_torch(w: np.ndarray, units: int) -> np.ndarray:
    """Keras's GRU gate blocks z, r, h along the last axis -> torch's r, z, n."""
    u = units
    return np.concatenate([w[..., u : 2 * u], w[..., :u], w[..., 2 * u :]], axis=-1)


def gru_to_torch(kernel: np.ndarray, recurrent: np.ndarray, bias: np.ndarray) -> dict[str, Any]:
    """Keras's GRU (``reset_after=True``) weights as ``nn.GRU``'s: gates reordered, the bias's
    input row as ``b_ih`` and its recurrent row as ``b_hh`` (inside the reset product, as in
    torch's ``n = tanh(W_in·x + b_in + r ⊙ (W_hn·h + b_hn))``)."""
    u = recurrent.shape[0]
    return {"weight_ih_l0": gru_gates_to_torch(kernel, u).T,
            "weight_hh_l0": gru_gates_to_torch(recurrent, u).T,
            "bias_ih_l0": gru_gates_to_torch(bias[0], u),
            "bias_hh_l0": gru_gates_to_torch(bias[1], u)}  # fmt: skip


def mha_to_torch(weights: Sequence[np.ndarray], prefix: str = "") -> dict[str, Any]:
    """Keras's MultiHeadAttention weights (query, key, value: kernel ``(E, N, H)`` and bias
    ``(N, H)``; output: kernel ``(N, H, E)``, bias ``(E,)``) as ``nn.MultiheadAttention``'s
    (``key_dim = E/N``): ``in_proj_weight (3E, E)`` = the three kernels flattened to ``(E,
    N·H)``, transposed and stacked; row ``n·H + h`` is head n's channel h, as torch splits
    them."""
    qk, qb, kk, kb, vk, vb, ok, ob = weights
    e = qk.shape[0]
    return {
        f"{prefix}in_proj_weight": np.concatenate([k.reshape(e, -1).T for k in (qk, kk, vk)]),
        f"{prefix}in_proj_bias": np.concatenate([b.reshape(-1) for b in (qb, kb, vb)]),
        f"{prefix}out_proj.weight": ok.reshape(-1, ok.shape[-1]).T,
        f"{prefix}out_proj.bias": ob,
    }


def _load_torch(net: Any, state: dict[str, np.ndarray], setup: Setup) -> Any:
    """Copy ``state`` (every parameter named) into ``net``, then move it to the device/dtype."""
    import torch

    params = dict(net.named_parameters())
    if sorted(params) != sorted(state):
        raise AssertionError(f"torch parameters {sorted(params)} <- {sorted(state)}")
    with torch.no_grad():
        for name, value in state.items():
            value = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
            if tuple(params[name].shape) != value.shape:
                raise AssertionError(f"{name}: torch {tuple(params[name].shape)} <- {value.shape}")
            params[name].copy_(torch.as_tensor(value))
    dtype = backend_module("torch").core.native_dtype(setup.dtype)
    return net.to(device=setup.device, dtype=dtype)


# ----------------------------------------------------------------------------- layer twins


def torch_layer(spec: Recurrent | Attention, weights: Sequence[np.ndarray], setup: Setup) -> Any:
    """The hand-written torch module of a layer row, with dualnet's weights."""
    import torch
    from torch import nn

    if isinstance(spec, Recurrent):
        cls = nn.LSTM if spec.kind == "LSTM" else nn.GRU
        convert = lstm_to_torch if spec.kind == "LSTM" else gru_to_torch

        class LastState(nn.Module):
            """The recurrent layer's last h (Keras's output without return_sequences)."""

            def __init__(self) -> None:
                super().__init__()
                self.rnn = cls(spec.features, spec.units, batch_first=True)

            def forward(self, x: torch.Tensor) -> torch.Tensor:
                _, state = self.rnn(x)
                h = state[0] if isinstance(state, tuple) else state  # LSTM: (h_n, c_n)
                return h[-1]  # h_n is (layers·directions, batch, units)

        net = LastState()
        state = {f"rnn.{k}": v for k, v in convert(*weights).items()}
        return _load_torch(net, state, setup)

    class SelfAttention(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mha = nn.MultiheadAttention(spec.embed, spec.heads, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # need_weights=False: no averaged weights to compute (the fused path).
            return self.mha(x, x, x, need_weights=False)[0]

    return _load_torch(SelfAttention(), mha_to_torch(weights, "mha."), setup)


def keras_layer(spec: Recurrent | Attention, weights: Sequence[np.ndarray], setup: Setup) -> Any:
    """The same layer from ``keras.layers`` (a model around it, so that it is called with one
    argument and carries its own weights), with dualnet's weights unchanged."""
    import keras

    dt = setup.dtype
    if isinstance(spec, Recurrent):
        inputs = keras.Input(spec.input_shape[1:], dtype=dt)
        outputs = getattr(keras.layers, spec.kind)(spec.units, dtype=dt)(inputs)
    else:
        inputs = keras.Input(spec.shape[1:], dtype=dt)
        outputs = keras.layers.MultiHeadAttention(spec.heads, spec.key_dim, dtype=dt)(
            inputs, inputs
        )
    net = keras.Model(inputs, outputs)
    net.set_weights([np.asarray(w, dtype=np.float32) for w in weights])
    return net


# ----------------------------------------------------------------------------- the block


def dualnet_block(spec: Attention, dtype: str) -> tuple[Any, dict[str, Any]]:
    """The block as a functional ``dn.Model`` and its layers by role (for the twins)."""
    models = suite._require("dualnet.models")
    L = _layers("MultiHeadAttention", "LayerNormalization", "Add", "GlobalAveragePooling1D")
    parts = {
        "attention": L.MultiHeadAttention(spec.heads, spec.key_dim, dtype=dtype),
        "norm1": L.LayerNormalization(dtype=dtype),
        "linear1": L.Dense(spec.ff, activation="relu", dtype=dtype),
        "linear2": L.Dense(spec.embed, dtype=dtype),
        "norm2": L.LayerNormalization(dtype=dtype),
        "fc": L.Dense(spec.classes, dtype=dtype),
    }
    inputs = models.Input(spec.shape[1:], dtype=dtype)
    y = parts["norm1"](L.Add(dtype=dtype)([inputs, parts["attention"](inputs, inputs)]))
    f = parts["linear2"](parts["linear1"](y))
    y = parts["norm2"](L.Add(dtype=dtype)([y, f]))
    y = L.GlobalAveragePooling1D(dtype=dtype)(y)
    return models.Model(inputs, parts["fc"](y)), parts


def _build_block(spec: Attention, setup: Setup) -> tuple[Any, dict[str, Any], np.ndarray]:
    suite._seed(setup.seed)
    model, parts = dualnet_block(spec, setup.dtype)
    rng = np.random.default_rng([setup.seed, 1])
    for layer in parts.values():
        _randomise(layer, rng)
    x = suite._normal(spec.shape, setup.seed)
    model(suite._tensor(x, setup.dtype))  # realise on the active backend/device, untimed
    return model, parts, x


def block_torch_state(parts: dict[str, Any]) -> dict[str, np.ndarray]:
    """The block's weights (dualnet's layers by role) as the torch twin's parameters."""
    w = {role: layer.get_weights() for role, layer in parts.items()}
    state = mha_to_torch(w["attention"], "encoder.self_attn.")
    for role in ("linear1", "linear2", "norm1", "norm2"):
        a, b = w[role]
        state[f"encoder.{role}.weight"] = a.T if role.startswith("linear") else a
        state[f"encoder.{role}.bias"] = b
    state["fc.weight"], state["fc.bias"] = w["fc"][0].T, w["fc"][1]
    return state


def torch_block(spec: Attention, parts: dict[str, Any], setup: Setup) -> Any:
    """``nn.TransformerEncoderLayer`` (post-norm, relu, no dropout, Keras's epsilon), a mean
    over the steps and ``nn.Linear``: what a torch user writes for this classifier."""
    import torch
    from torch import nn

    class EncoderClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = nn.TransformerEncoderLayer(
                spec.embed, spec.heads, spec.ff, dropout=0.0, activation="relu",
                layer_norm_eps=LN_EPSILON, batch_first=True, norm_first=False,
            )  # fmt: skip
            self.fc = nn.Linear(spec.embed, spec.classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.encoder(x).mean(dim=1))

    return _load_torch(EncoderClassifier(), block_torch_state(parts), setup)


def keras_block(spec: Attention, parts: dict[str, Any],
                setup: Setup) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The same block from ``keras.layers``, the weights set layer by layer; the model and its
    layers by role."""
    import keras

    dt = setup.dtype
    K = keras.layers
    twin = {
        "attention": K.MultiHeadAttention(spec.heads, spec.key_dim, dtype=dt),
        "norm1": K.LayerNormalization(epsilon=LN_EPSILON, dtype=dt),
        "linear1": K.Dense(spec.ff, activation="relu", dtype=dt),
        "linear2": K.Dense(spec.embed, dtype=dt),
        "norm2": K.LayerNormalization(epsilon=LN_EPSILON, dtype=dt),
        "fc": K.Dense(spec.classes, dtype=dt),
    }
    inputs = keras.Input(spec.shape[1:], dtype=dt)
    y = twin["norm1"](K.Add(dtype=dt)([inputs, twin["attention"](inputs, inputs)]))
    y = twin["norm2"](K.Add(dtype=dt)([y, twin["linear2"](twin["linear1"](y))]))
    net = keras.Model(inputs, twin["fc"](K.GlobalAveragePooling1D(dtype=dt)(y)))
    for role, layer in twin.items():
        layer.set_weights([np.asarray(w, dtype=np.float32) for w in parts[role].get_weights()])
    return net, twin


def _block_kernel(spec: Attention, pass_: str, compare: str,
                  modes: tuple[str, ...] = ("eager", "compiled")) -> Kernel:  # fmt: skip
    backward = pass_ == "forward+backward"

    def build(setup: Setup) -> Workload:
        model, parts, x_np = _build_block(spec, setup)
        x = suite._tensor(x_np, setup.dtype)
        if setup.impl == "dualnet":
            params = suite.native_parameters(model, setup.backend) if backward else None
            return Workload(fn=model, args=(x,), params=params)
        if setup.backend == "torch":
            net = torch_block(spec, parts, setup).train(backward)  # eval: no dropout anyway
            params = list(net.parameters())
        else:
            net, _ = keras_block(spec, parts, setup)
            params = list(net.trainable_variables)
        _check_forward(model(x), net, x, setup)
        return Workload(fn=net, args=(x,), params=params if backward else None)

    return Kernel(group="model" if compare == "backends" else "overhead",
                  name="transformer_block", shape=spec.shape, build=build,
                  flops=spec.block_flops(pass_), pass_=pass_, compare=compare, modes=modes,
                  note=_block_note(spec))  # fmt: skip


def _block_note(spec: Attention) -> str:
    return (f"shape = (batch, sequence, embed); {spec.heads} heads, feed-forward {spec.ff}, "
            f"then mean over the steps and Dense({spec.classes})")  # fmt: skip


def _block_train_kernel(spec: Attention, compare: str) -> Kernel:
    def build(setup: Setup) -> Workload:
        suite.require_eager_train_step(setup)
        optimizers = suite._require("dualnet.optimizers")
        model, parts, x_np = _build_block(spec, setup)
        labels = np.random.default_rng([setup.seed, 2]).integers(0, spec.classes, spec.batch)
        y_np = np.eye(spec.classes, dtype=np.float32)[labels]
        x, y = suite._tensor(x_np, setup.dtype), suite._tensor(y_np, setup.dtype)
        model.compile(optimizer=optimizers.SGD(suite.LEARNING_RATE),
                      loss=suite._train_loss("transformer_block"), run_eagerly=True)  # fmt: skip
        if setup.impl == "dualnet":
            model.train_step(x, y)  # build the optimizer, outside the clock
            return Workload(fn=model.train_step, args=(x, y), step=True)
        if setup.backend == "torch":
            net = torch_block(spec, parts, setup).train()
            step = suite._torch_step(net, "transformer_block")

            def theirs() -> dict[str, np.ndarray]:
                return {k: v.detach().cpu().float().numpy() for k, v in net.named_parameters()}

            def ours() -> dict[str, np.ndarray]:
                return block_torch_state(parts)
        else:
            net, twin = keras_block(spec, parts, setup)
            step = suite._keras_step(net, "transformer_block")

            def theirs() -> dict[str, np.ndarray]:
                return {v.path: np.asarray(v, dtype=np.float32) for v in net.weights}

            def ours() -> dict[str, np.ndarray]:
                return {
                    v.path: w
                    for role, layer in twin.items()
                    for v, w in zip(layer.weights, parts[role].get_weights(), strict=True)
                }

        native_out = net(x) if setup.backend == "torch" else net(x, training=True)
        suite._check_same(model(x, training=True), native_out, setup, what="training output")
        before = ours()  # the twin's start too: it was loaded from these
        loss = model.train_step(x, y)["loss"]
        native_loss = float(_ops.to_numpy(step(x, y)))
        suite._check_same(np.array([loss]), np.array([native_loss]), setup, what="loss")
        ours_after, theirs_after = ours(), theirs()
        for name, start in before.items():
            # The update over the learning rate (SGD's gradient), not the weights after the step:
            # lr·g is below the tolerance for most weights here, so a twin that did not update
            # them (or updated them wrongly) would pass a comparison of the weights.
            lr = suite.LEARNING_RATE
            suite._check_same((ours_after[name] - start) / lr, (theirs_after[name] - start) / lr,
                              setup, what=f"{name}: update / lr after one step")  # fmt: skip
        return Workload(fn=step, args=(x, y), step=True)

    return Kernel(group="model" if compare == "backends" else "overhead",
                  name="transformer_block", shape=spec.shape, build=build,
                  flops=spec.block_flops("train"), pass_="train", compare=compare,
                  note=_block_note(spec) + f"; cross-entropy on logits, SGD "
                  f"lr={suite.LEARNING_RATE}")  # fmt: skip


# ----------------------------------------------------------------------------- the suite


def kernels(quick: bool = False) -> list[Kernel]:
    """The sequence kernels, by group. ``quick=True``: a small LSTM's and a small attention's
    forward, eager, torch vs TensorFlow — a few seconds."""
    if quick:
        eager = ("eager",)
        return [_layer_kernel(QUICK_LSTM, "forward", "backends", eager),
                _layer_kernel(QUICK_MHA, "forward", "backends", eager)]  # fmt: skip
    out: list[Kernel] = []
    for compare in ("backends", "overhead"):
        for spec in (LSTM, GRU, MHA):
            out += [_layer_kernel(spec, p, compare) for p in PASSES]
        out += [_block_kernel(BLOCK, p, compare) for p in PASSES]
        out.append(_block_train_kernel(BLOCK, compare))
    return out
