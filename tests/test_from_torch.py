"""``dn.from_torch``: every supported module and op, the zoo's architectures, train mode, and
the errors.

Each case imports a torch module on both backends and compares the dualnet model's output with
the module's own (eval mode unless said otherwise):

* float32: ``assert_close``'s rule with :func:`dualnet.parity.tolerance.for_reduction` of the
  case's longest reduction K (a matmul's inner dimension, a convolution's ``C_in·k…``, a
  recurrence's ``T·(F + u)``, a network's sum of its layers' K along the deepest path, stated
  per case);
* float64 (the module converted with ``.double()``): ``|dualnet - torch| <= 1e-12·max|torch|``.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch_models
from torch import nn

import dualnet as dn
from dualnet.errors import UnsupportedModelError
from dualnet.parity import tolerance

BACKENDS = ("torch", "tensorflow")
REL64 = 1e-12  # the float64 bound, relative to the output's largest magnitude


class Fn(nn.Module):
    """A module whose forward is ``fn(self, x)`` (for functional calls and ops)."""

    def __init__(self, fn, **modules: nn.Module):
        super().__init__()
        self.fn = fn
        for name, module in modules.items():
            self.add_module(name, module)

    def forward(self, x):
        return self.fn(self, x)


class Fn2(Fn):
    """``fn(self, x, y)`` (fx traces fixed arities only)."""

    def forward(self, x, y):
        return self.fn(self, x, y)


def _randn(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(7))


def _ids(*shape: int, vocab: int = 20) -> torch.Tensor:
    return torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(7))


def _assert_matches(actual: np.ndarray, expected: np.ndarray, dtype: str, k: int, what: str):
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    assert np.isfinite(expected).all() and np.isfinite(actual).all(), what
    err = np.abs(actual.astype(np.float64) - expected)
    if dtype == "float64":
        worst = err.max() / max(np.abs(expected).max(), np.finfo(np.float64).tiny)
        assert worst <= REL64, f"{what}: float64 relative error {worst:.3g} > {REL64}"
        return
    tol = tolerance.for_reduction(dtype, k)
    bound = tol.atol + tol.rtol * np.abs(expected)
    bad = err > bound
    assert not bad.any(), (f"{what}: {bad.sum()} / {bad.size} elements off, worst "
                           f"{err.max():.3g} ({tol}: {tol.reason})")  # fmt: skip


def _run(model: dn.Model, inputs: tuple[torch.Tensor, ...], training: bool = False) -> np.ndarray:
    xs = [t.numpy() for t in inputs]
    out = model(xs[0] if len(xs) == 1 else xs, training=training)
    return dn.to_numpy(out)


def _check(module: nn.Module, inputs, backend: str, dtype: str, k: int) -> dn.Model:
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    if dtype == "float64":
        module = copy.deepcopy(module).double()
        inputs = tuple(t.double() if t.is_floating_point() else t for t in inputs)
    else:
        module = copy.deepcopy(module)
    module.eval()
    with torch.no_grad():
        expected = module(*inputs).numpy()
    model = dn.from_torch(module, inputs if len(inputs) > 1 else inputs[0], backend=backend)
    assert model.backend == backend
    _assert_matches(_run(model, inputs), expected, dtype, k, f"{type(module).__name__}")
    return model


# -- one case per module / op: (id, module factory, inputs factory, K) ------------------------

IMG = (2, 3, 9, 9)
SEQ = (2, 5, 6)

# fmt: off
MODULE_CASES = [
    ("linear", lambda: nn.Linear(6, 4), lambda: _randn(2, 6), 6),
    ("linear_rank3", lambda: nn.Linear(6, 4), lambda: _randn(*SEQ), 6),
    ("linear_no_bias", lambda: nn.Linear(6, 4, bias=False), lambda: _randn(2, 6), 6),
    ("conv1d_pad1", lambda: nn.Conv1d(3, 4, 3, padding=1), lambda: _randn(2, 3, 10), 9),
    ("conv2d_stride2_pad1", lambda: nn.Conv2d(3, 4, 3, 2, 1), lambda: _randn(*IMG), 27),
    ("conv2d_valid", lambda: nn.Conv2d(3, 4, (3, 2)), lambda: _randn(*IMG), 18),
    ("conv2d_same", lambda: nn.Conv2d(3, 4, 4, padding="same"), lambda: _randn(*IMG), 48),
    ("conv2d_asym_pad", lambda: nn.Conv2d(3, 4, 3, padding=(2, 0)), lambda: _randn(*IMG), 27),
    ("conv2d_dilated", lambda: nn.Conv2d(3, 4, 3, padding=2, dilation=2), lambda: _randn(*IMG),
     27),
    ("conv2d_groups", lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2), lambda: _randn(2, 4, 7, 7),
     18),
    ("conv2d_depthwise", lambda: nn.Conv2d(4, 8, 3, 2, 1, groups=4), lambda: _randn(2, 4, 7, 7),
     9),
    ("conv3d", lambda: nn.Conv3d(2, 3, 3, padding=1), lambda: _randn(2, 2, 4, 5, 5), 54),
    ("conv_transpose2d", lambda: nn.ConvTranspose2d(3, 4, 3, 2, 1, output_padding=1),
     lambda: _randn(2, 3, 5, 5), 27),
    ("conv_transpose1d", lambda: nn.ConvTranspose1d(3, 4, 4, 2), lambda: _randn(2, 3, 6), 12),
    # kernel < stride: torch's length (n-1)·s + k, not Keras's "valid" n·s + max(k - s, 0)
    ("conv_transpose1d_k2_s3", lambda: nn.ConvTranspose1d(3, 4, 2, stride=3),
     lambda: _randn(2, 3, 5), 6),
    ("conv_transpose2d_k2_s3", lambda: nn.ConvTranspose2d(3, 4, 2, stride=3),
     lambda: _randn(2, 3, 5, 5), 12),
    ("batchnorm1d_2d", lambda: nn.BatchNorm1d(6), lambda: _randn(4, 6), 1),
    ("batchnorm1d_3d", lambda: nn.BatchNorm1d(5, eps=1e-3), lambda: _randn(*SEQ), 1),
    ("batchnorm2d", lambda: nn.BatchNorm2d(3, momentum=0.3), lambda: _randn(*IMG), 1),
    ("batchnorm2d_no_affine", lambda: nn.BatchNorm2d(3, affine=False), lambda: _randn(*IMG), 1),
    ("layernorm", lambda: nn.LayerNorm(6), lambda: _randn(*SEQ), 6),
    ("layernorm_2axes", lambda: nn.LayerNorm([5, 6], eps=1e-6), lambda: _randn(*SEQ), 30),
    ("layernorm_no_affine", lambda: nn.LayerNorm(6, elementwise_affine=False),
     lambda: _randn(*SEQ), 6),
    ("groupnorm", lambda: nn.GroupNorm(2, 4), lambda: _randn(2, 4, 5, 5), 50),
    ("embedding", lambda: nn.Embedding(20, 4), lambda: _ids(2, 5), 1),
    ("maxpool2d_3_2_1", lambda: nn.MaxPool2d(3, 2, 1), lambda: _randn(*IMG), 1),
    ("maxpool2d_ceil", lambda: nn.MaxPool2d(2, ceil_mode=True), lambda: _randn(*IMG), 1),
    ("maxpool1d", lambda: nn.MaxPool1d(2), lambda: _randn(2, 3, 9), 1),
    ("avgpool2d_pad_counted", lambda: nn.AvgPool2d(3, 2, 1), lambda: _randn(*IMG), 9),
    ("avgpool2d_pad_not_counted", lambda: nn.AvgPool2d(3, 2, 1, count_include_pad=False),
     lambda: _randn(*IMG), 9),
    ("avgpool2d_ceil", lambda: nn.AvgPool2d(2, ceil_mode=True), lambda: _randn(*IMG), 4),
    ("avgpool1d", lambda: nn.AvgPool1d(3, 2), lambda: _randn(2, 3, 9), 3),
    ("adaptive_avg_1", lambda: nn.AdaptiveAvgPool2d(1), lambda: _randn(*IMG), 81),
    ("adaptive_avg_3x3", lambda: nn.AdaptiveAvgPool2d((3, 3)), lambda: _randn(*IMG), 9),
    ("adaptive_avg1d_1", lambda: nn.AdaptiveAvgPool1d(1), lambda: _randn(2, 3, 9), 9),
    ("adaptive_max_1", lambda: nn.AdaptiveMaxPool2d((1, 1)), lambda: _randn(*IMG), 1),
    ("flatten", lambda: nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(98, 3)),
     lambda: _randn(*IMG), 98),
    ("dropout_eval", lambda: nn.Sequential(nn.Dropout(0.5), nn.Linear(6, 3)),
     lambda: _randn(2, 6), 6),
    ("dropout2d_eval", lambda: nn.Dropout2d(0.3), lambda: _randn(*IMG), 1),
    ("zeropad2d", lambda: nn.ZeroPad2d((1, 2, 0, 3)), lambda: _randn(*IMG), 1),
    ("upsample_nearest", lambda: nn.Upsample(scale_factor=2), lambda: _randn(*IMG), 1),
    ("identity", lambda: nn.Sequential(nn.Identity(), nn.Linear(6, 2)), lambda: _randn(2, 6), 6),
    # activation modules
    ("relu", nn.ReLU, lambda: _randn(*IMG), 1),
    ("relu6", nn.ReLU6, lambda: _randn(*IMG) * 5, 1),
    ("hardtanh_0_3", lambda: nn.Hardtanh(0.0, 3.0), lambda: _randn(*IMG) * 3, 1),
    ("leaky_relu", lambda: nn.LeakyReLU(0.1), lambda: _randn(*IMG), 1),
    ("elu", lambda: nn.ELU(0.5), lambda: _randn(*IMG), 1),
    ("gelu", nn.GELU, lambda: _randn(*IMG), 1),
    ("gelu_tanh", lambda: nn.GELU(approximate="tanh"), lambda: _randn(*IMG), 1),
    ("silu", nn.SiLU, lambda: _randn(*IMG), 1),
    ("sigmoid", nn.Sigmoid, lambda: _randn(*IMG), 1),
    ("tanh", nn.Tanh, lambda: _randn(*IMG), 1),
    ("hardswish", nn.Hardswish, lambda: _randn(*IMG) * 4, 1),
    ("hardsigmoid", nn.Hardsigmoid, lambda: _randn(*IMG) * 4, 1),
    ("mish", nn.Mish, lambda: _randn(*IMG), 1),
    ("selu", nn.SELU, lambda: _randn(*IMG), 1),
    ("softsign", nn.Softsign, lambda: _randn(*IMG), 1),
    ("softplus", nn.Softplus, lambda: _randn(*IMG), 1),
    ("softmax_dim1", lambda: nn.Softmax(dim=1), lambda: _randn(*IMG), 3),
    ("log_softmax_last", lambda: nn.LogSoftmax(dim=-1), lambda: _randn(*SEQ), 6),
    ("prelu_channels", lambda: nn.PReLU(3, init=0.2), lambda: _randn(*IMG), 1),
    ("prelu_shared", lambda: nn.PReLU(init=0.3), lambda: _randn(*SEQ), 1),
]

OP_CASES = [
    ("F_relu", lambda: Fn(lambda s, x: F.relu(x)), lambda: _randn(*IMG), 1),
    ("torch_sigmoid", lambda: Fn(lambda s, x: torch.sigmoid(x)), lambda: _randn(*IMG), 1),
    ("method_tanh", lambda: Fn(lambda s, x: x.tanh()), lambda: _randn(*IMG), 1),
    ("method_relu", lambda: Fn(lambda s, x: x.relu()), lambda: _randn(*IMG), 1),
    ("F_gelu_tanh", lambda: Fn(lambda s, x: F.gelu(x, approximate="tanh")),
     lambda: _randn(*IMG), 1),
    ("F_leaky_relu", lambda: Fn(lambda s, x: F.leaky_relu(x, 0.2)), lambda: _randn(*IMG), 1),
    ("F_relu6", lambda: Fn(lambda s, x: F.relu6(x)), None, 1),
    ("method_softmax", lambda: Fn(lambda s, x: x.softmax(-1)), lambda: _randn(*SEQ), 6),
    ("add_sub_mul", lambda: Fn2(lambda s, x, y: (x + y) * (x - y)),
     lambda: (_randn(*SEQ), _randn(*SEQ) + 1), 1),
    ("iadd", lambda: Fn(lambda s, x: _iadd(s.a(x), s.b(x)), a=nn.Linear(6, 6),
                        b=nn.Linear(6, 6)), lambda: _randn(2, 6), 12),
    ("cat_channels", lambda: Fn(lambda s, x: torch.cat([s.a(x), x], dim=1),
                                a=nn.Conv2d(3, 2, 1)), lambda: _randn(*IMG), 3),
    ("cat_last", lambda: Fn(lambda s, x: torch.cat((x, x.relu()), -1)), lambda: _randn(*SEQ), 1),
    ("view_size0", lambda: Fn(lambda s, x: s.fc(x.view(x.size(0), -1)), fc=nn.Linear(243, 3)),
     lambda: _randn(*IMG), 243),
    ("reshape_shape", lambda: Fn(lambda s, x: x.reshape(x.shape[0], 3, -1)),
     lambda: _randn(*IMG), 1),
    ("flatten_2", lambda: Fn(lambda s, x: torch.flatten(x, 2)), lambda: _randn(*IMG), 1),
    ("unsqueeze_squeeze", lambda: Fn(lambda s, x: x.unsqueeze(1).relu().squeeze(1)),
     lambda: _randn(*SEQ), 1),
    ("permute_linear", lambda: Fn(lambda s, x: s.fc(x.permute(0, 2, 3, 1)), fc=nn.Linear(3, 4)),
     lambda: _randn(*IMG), 3),
    ("transpose_back", lambda: Fn(lambda s, x: s.fc(x.transpose(1, 2)).transpose(1, 2),
                                  fc=nn.Linear(5, 4)), lambda: _randn(*SEQ), 5),
    ("mean_spatial", lambda: Fn(lambda s, x: x.mean((2, 3))), lambda: _randn(*IMG), 81),
    ("mean_keepdim", lambda: Fn(lambda s, x: torch.mean(x, dim=[-1, -2], keepdim=True)),
     lambda: _randn(*IMG), 81),
    ("mean_steps", lambda: Fn(lambda s, x: x.mean(dim=1)), lambda: _randn(*SEQ), 5),
    ("getitem_last_step", lambda: Fn(lambda s, x: x[:, -1]), lambda: _randn(*SEQ), 1),
    ("getitem_slices", lambda: Fn(lambda s, x: x[:, 1:3, ..., :4]), lambda: _randn(*IMG), 1),
    ("getitem_channel", lambda: Fn(lambda s, x: x[:, :, 2]), lambda: _randn(*SEQ), 1),
    ("F_adaptive_avg_pool", lambda: Fn(lambda s, x: F.adaptive_avg_pool2d(x, (1, 1))),
     lambda: _randn(*IMG), 81),
    ("F_max_pool", lambda: Fn(lambda s, x: F.max_pool2d(x, 3, 2, 1)), lambda: _randn(*IMG), 1),
    ("F_dropout_eval", lambda: Fn(lambda s, x: F.dropout(x, 0.3, s.training)),
     lambda: _randn(*SEQ), 1),
    ("contiguous", lambda: Fn(lambda s, x: x.transpose(1, 2).contiguous().transpose(1, 2)),
     lambda: _randn(*SEQ), 1),
]


# fmt: on


def _iadd(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a += b
    return a


# fmt: off
RECURRENT_CASES = [
    ("lstm", lambda: Fn(lambda s, x: s.rnn(x)[0], rnn=nn.LSTM(6, 4, batch_first=True)), 5 * 10),
    ("lstm_time_major", lambda: Fn(lambda s, x: s.rnn(x.transpose(0, 1))[0].transpose(0, 1),
                                   rnn=nn.LSTM(6, 4)), 5 * 10),
    ("lstm_bidirectional_2layers", lambda: Fn(lambda s, x: s.rnn(x)[0], rnn=nn.LSTM(
        6, 4, num_layers=2, bidirectional=True, batch_first=True, dropout=0.5)), 2 * 5 * 14),
    ("lstm_final_h", lambda: Fn(lambda s, x: s.rnn(x)[1][0][-1], rnn=nn.LSTM(
        6, 4, num_layers=2, batch_first=True)), 2 * 5 * 10),
    ("lstm_final_c_no_bias", lambda: Fn(lambda s, x: s.rnn(x)[1][1][0], rnn=nn.LSTM(
        6, 4, bias=False, batch_first=True)), 5 * 10),
    ("gru", lambda: Fn(lambda s, x: s.rnn(x)[0], rnn=nn.GRU(6, 4, batch_first=True)), 5 * 10),
    ("gru_bidirectional_h", lambda: Fn(lambda s, x: torch.cat([s.rnn(x)[1][0], s.rnn(x)[1][1]],
                                                              1),
                                       rnn=nn.GRU(6, 4, batch_first=True,
                                                  bidirectional=True)), 5 * 10),
    ("rnn_relu", lambda: Fn(lambda s, x: s.rnn(x)[0], rnn=nn.RNN(
        6, 4, nonlinearity="relu", batch_first=True)), 5 * 10),
    ("rnn_tanh_time_major", lambda: Fn(lambda s, x: s.rnn(x.permute(1, 0, 2))[0][-1],
                                       rnn=nn.RNN(6, 4)), 5 * 10),
    ("mha_batch_first", lambda: Fn(lambda s, x: s.mha(x, x, x)[0], mha=nn.MultiheadAttention(
        6, 2, batch_first=True)), 3 * 6),
    ("mha_time_major_causal", lambda: Fn(lambda s, x: s.mha(
        x.transpose(0, 1), x.transpose(0, 1), x.transpose(0, 1),
        attn_mask=torch.triu(torch.ones(5, 5, dtype=torch.bool), 1))[0].transpose(0, 1),
        mha=nn.MultiheadAttention(6, 3)), 3 * 6),
    ("mha_no_bias", lambda: Fn(lambda s, x: s.mha(x, x, x, need_weights=False)[0],
                               mha=nn.MultiheadAttention(6, 2, bias=False,
                                                         batch_first=True)), 3 * 6),
    ("transformer_layer_prenorm_relu", lambda: nn.TransformerEncoderLayer(
        6, 2, 8, activation="relu", batch_first=True, norm_first=True), 4 * 8),
]
# fmt: on


# torch warns that padding="same" with an even kernel copies the input: the case is on purpose
@pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "make", "inputs", "k"), MODULE_CASES + OP_CASES,
                         ids=[c[0] for c in MODULE_CASES + OP_CASES])  # fmt: skip
def test_module_and_op(case, make, inputs, k, backend, dtype):
    torch.manual_seed(0)
    inputs = inputs() if inputs is not None else _randn(*IMG) * 4
    _check(make(), inputs, backend, dtype, k)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "make", "k"), RECURRENT_CASES,
                         ids=[c[0] for c in RECURRENT_CASES])  # fmt: skip
def test_recurrent_and_attention(case, make, k, backend, dtype):
    torch.manual_seed(0)
    _check(make(), _randn(*SEQ), backend, dtype, k)


# -- architectures ---------------------------------------------------------------------------

# K along the deepest path (sum of the layers' reduction lengths), rounded up: ResNet-18 at
# width 8: 7·7·3 + 16 3×3 convolutions of up to 64 channels (9·64) + the head;
# MobileNetV2: 27 + 1×1 convolutions up to 384 inputs; recurrent: T·(F + u) per layer and
# direction; Transformer: per block the projections, T keys and the feed-forward.
ARCHITECTURE_K = {"resnet18": 16 * 576 + 147 + 64, "mobilenet_v2": 12 * 384,
                  "lstm_classifier": 2 * 7 * 64, "lstm_time_major": 2 * 7 * 64,
                  "gru_classifier": 2 * 7 * 48, "transformer_encoder": 2 * (3 * 32 + 6 + 96),
                  "torch_transformer_encoder": 2 * (3 * 32 + 6 + 96)}  # fmt: skip


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("arch", list(torch_models.ARCHITECTURES))
def test_architecture(arch, backend, dtype):
    make, inputs = torch_models.ARCHITECTURES[arch]
    x = inputs(2, torch.Generator().manual_seed(3))
    model = _check(make(), x, backend, dtype, ARCHITECTURE_K[arch])
    assert model.torch_import.layers == len(model.layers) - 1  # every layer but the input


def _train_mode_check(module: nn.Module, x: torch.Tensor, backend: str, dtype: str, k: int):
    """One forward in train mode on both sides: outputs and updated running statistics."""
    if dtype == "float64":
        module, x = module.double(), x.double()
    model = dn.from_torch(module, x, backend=backend)
    module.train()
    expected = module(x).detach().numpy()
    _assert_matches(_run(model, (x,), training=True), expected, dtype, k, "train output")
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    layers = [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert len(norms) == len(layers) > 0
    for m, layer in zip(norms, layers, strict=True):
        mean, var = layer.get_weights()[-2:]
        # the running statistics: one batch reduction over N·H·W values
        n = x.shape[0] * math.prod(x.shape[2:])
        _assert_matches(mean, m.running_mean.numpy(), dtype, n, f"{layer.name} moving_mean")
        _assert_matches(var, m.running_var.numpy(), dtype, n, f"{layer.name} moving_variance")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_batchnorm_train_mode(backend, dtype):
    module = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4, momentum=0.3),
                           nn.ReLU(), nn.Conv2d(4, 2, 1), nn.BatchNorm2d(2))  # fmt: skip
    _train_mode_check(module, _randn(4, 3, 6, 6), backend, dtype, 36)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resnet_train_mode(backend):
    module = torch_models.resnet18_like(width=8)
    _train_mode_check(module, _randn(4, 3, 32, 32), backend, "float64", 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropout_train_mode_is_dualnets(backend):
    """In training, Dropout draws dualnet's portable mask: the same on both backends, and the
    kept values scaled by 1/(1-p) as torch does."""
    module = nn.Sequential(nn.Linear(6, 32), nn.Dropout(0.5))
    x = _randn(3, 6)
    dn.set_random_seed(1)  # the layers' seeds are drawn at import
    model = dn.from_torch(module, x, backend=backend)
    other = model.to_backend(BACKENDS[1 - BACKENDS.index(backend)])  # same seeds
    out = _run(model, (x,), training=True)
    with torch.no_grad():
        full = module[0](x).numpy()
    kept = out != 0
    assert 0 < kept.mean() < 1
    _assert_matches(out[kept], full[kept] * 2, "float32", 6, "kept values")
    np.testing.assert_array_equal(_run(other, (x,), training=True) != 0, kept)


# -- the import itself -------------------------------------------------------------------------


def test_module_left_unchanged_and_names_follow_nodes():
    module = torch_models.resnet18_like(width=8)
    module.layer1.train()  # a mixed state must come back as it was
    flags = {name: m.training for name, m in module.named_modules()}
    state = {k: v.clone() for k, v in module.state_dict().items()}
    model = dn.from_torch(module, _randn(2, 3, 32, 32), name="resnet")
    assert {name: m.training for name, m in module.named_modules()} == flags
    for key, value in module.state_dict().items():
        assert torch.equal(value, state[key]), key
    names = [layer.name for layer in model.layers]
    assert model.name == "resnet"
    assert {"layer1_0_conv1", "layer1_0_bn1", "fc"} <= set(names)
    conv = next(layer for layer in model.layers if layer.name == "conv1")
    assert conv.padding == ((3, 3), (3, 3)) or list(map(tuple, conv.padding)) == [(3, 3), (3, 3)]
    assert conv.data_format == "channels_first"
    bn = next(layer for layer in model.layers if layer.name == "bn1")
    assert (bn.momentum, bn.epsilon, bn.moving_variance_estimator) == (0.9, 1e-5, "unbiased")


def test_integer_inputs_and_two_inputs():
    module = Fn2(lambda s, ids, x: s.fc(torch.cat([s.emb(ids), x], -1)),
                emb=nn.Embedding(10, 3), fc=nn.Linear(5, 2))  # fmt: skip
    inputs = (_ids(2, 4, vocab=10), _randn(2, 4, 2))
    model = _check(module, inputs, "torch", "float32", 5)
    assert [t.dtype for t in model.inputs] == ["int64", "float32"]


# -- scalar operands: Rescaling, bit for bit -------------------------------------------------


def _inplace_chain(x: torch.Tensor) -> torch.Tensor:
    y = x.relu()
    y *= 2.0
    y += 1.0
    y -= 0.5
    y /= 2
    return y


# (id, forward): each maps onto Rescaling layers that compute torch's very operations, so the
# comparison is exact, the sign of every zero included (Note [Scalar operands]).
SCALAR_CASES = [
    ("mul_2_5", lambda s, x: x * 2.5),
    ("rmul_int", lambda s, x: 3 * x),
    ("mul_negative", lambda s, x: x * -0.3),
    ("add_1", lambda s, x: x + 1),
    ("radd", lambda s, x: 0.1 + x),
    ("sub_c", lambda s, x: x - 0.75),
    ("rsub_1", lambda s, x: 1 - x),
    ("sub_zero", lambda s, x: x - 0.0),
    ("div_4", lambda s, x: x / 4),
    ("div_quarter", lambda s, x: x / -0.25),
    ("neg", lambda s, x: -x),
    ("torch_neg", lambda s, x: torch.neg(x)),
    ("torch_functions", lambda s, x: torch.div(torch.sub(torch.add(torch.mul(x, 3.0), 2.0),
                                                         0.5), 8)),
    ("torch_rsub", lambda s, x: torch.rsub(x, 2.0)),
    ("methods", lambda s, x: x.mul(2.5).add(1).sub(0.5).div(2).neg()),
    ("inplace", lambda s, x: _inplace_chain(x)),
    ("mobilenet_preprocessing", lambda s, x: x * (1 / 127.5) - 1),
]  # fmt: skip


def _with_zeros(x: torch.Tensor) -> torch.Tensor:
    """Image-range values with ±0 and 127.5 (where ``x/127.5 - 1`` cancels) on purpose."""
    x = x.abs() * 60.0
    flat = x.view(-1)
    flat[:4] = torch.tensor([-0.0, 0.0, 127.5, 255.0])
    return x


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("case", "forward"), SCALAR_CASES, ids=[c[0] for c in SCALAR_CASES])
def test_scalar_operands_are_rescaling_bit_for_bit(case, forward, backend, dtype):
    x = _with_zeros(_randn(*IMG)).to(getattr(torch, dtype))
    module = Fn(forward)
    expected = module(x.clone()).numpy()
    model = dn.from_torch(module, x.clone(), backend=backend)
    kinds = {type(layer).__name__ for layer in model.layers}
    assert "Rescaling" in kinds and kinds <= {"InputLayer", "Rescaling", "ReLU"}, kinds
    actual = dn.to_numpy(model(x.numpy()))
    assert actual.dtype == expected.dtype
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def test_mobilenet_preprocessing_then_conv():
    """``x * (1/127.5) - 1`` before a conv stem: two Rescaling layers, then the convolution."""
    module = Fn(lambda s, x: F.relu6(s.conv(x * (1 / 127.5) - 1)), conv=nn.Conv2d(3, 4, 3, 2, 1))
    model = _check(module, _with_zeros(_randn(*IMG)), "torch", "float32", 27)
    scaling = [layer for layer in model.layers if type(layer).__name__ == "Rescaling"]
    assert [(r.scale, r.offset) for r in scaling] == [(1 / 127.5, -0.0), (1.0, -1.0)]


@pytest.mark.parametrize(("case", "forward", "fragment"), [
    ("div_3", lambda s, x: x / 3, "x / 3.0: 1/3.0 is not exact in float32, and torch divides"),
    ("div_by_zero", lambda s, x: x / 0.0, "1/0.0 is not exact"),
    ("div_huge", lambda s, x: x / 2.0**127, "is not exact in float32"),
    ("reciprocal", lambda s, x: 2.0 / x, "a number divided by a tensor"),
    ("floor_div_mode", lambda s, x: torch.div(x, 2, rounding_mode="floor"), "rounding_mode"),
    ("alpha", lambda s, x: torch.add(x, 2.0, alpha=3), "alpha=3"),
    ("mul_inf", lambda s, x: x * math.inf, "scale=inf"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else "")  # fmt: skip
def test_scalar_operands_refused(case, forward, fragment):
    problems = _problems(Fn(forward), _randn(2, 6))
    assert len(problems) == 1 and fragment in problems[0], problems


def test_scalar_arithmetic_on_integer_tensors_refused():
    module = Fn2(lambda s, ids, x: s.emb(ids * 2) + x, emb=nn.Embedding(10, 3))
    with pytest.raises(UnsupportedModelError) as info:
        dn.from_torch(module, (_ids(2, 4, vocab=5), _randn(2, 4, 3)))
    assert any("int64 tensor" in p for p in info.value.problems), info.value.problems


# -- errors ----------------------------------------------------------------------------------


def _problems(module: nn.Module, x: torch.Tensor) -> list[str]:
    with pytest.raises(UnsupportedModelError) as info:
        dn.from_torch(module, x)
    return info.value.problems


def test_every_unsupported_node_is_listed():
    module = Fn(lambda s, x: torch.cumsum(s.up(s.conv(x)), dim=1),
                conv=nn.Conv2d(3, 3, 3, padding_mode="reflect", padding=1),
                up=nn.Upsample(scale_factor=2, mode="bicubic"))  # fmt: skip
    problems = _problems(module, _randn(*IMG))
    assert len(problems) == 3, problems
    conv, up, cumsum = problems
    assert "node 'conv'" in conv and "padding_mode='reflect'" in conv
    assert "node 'up'" in up and "mode='bicubic'" in up and "nearest" in up
    assert "node 'cumsum'" in cumsum and "torch.cumsum" in cumsum
    assert "supported functions:" in cumsum and "torch.cat" in cumsum


def test_unknown_module_lists_the_supported_ones():
    (problem,) = _problems(nn.Sequential(nn.Linear(6, 6), nn.Hardshrink()), _randn(2, 6))
    assert "node '1'" in problem or "Hardshrink" in problem
    assert "nn.Linear" in problem and "nn.LSTM" in problem


@pytest.mark.parametrize(("case", "module", "x", "fragment"), [
    ("embedding_padding_idx", nn.Embedding(5, 3, padding_idx=0), _ids(2, 3, vocab=5),
     "padding_idx=0"),
    ("bn_no_running_stats", nn.BatchNorm2d(3, track_running_stats=False), _randn(*IMG),
     "track_running_stats=False"),
    ("bn_cumulative", nn.BatchNorm2d(3, momentum=None), _randn(*IMG), "momentum=None"),
    ("conv_stride_dilation", nn.Conv2d(3, 3, 3, stride=2, dilation=2), _randn(2, 3, 12, 12),
     "stride=(2, 2) with dilation=(2, 2)"),
    ("avgpool_divisor", nn.AvgPool2d(2, divisor_override=3), _randn(*IMG), "divisor_override"),
    ("softplus_low_threshold", nn.Softplus(threshold=1.0), _randn(*IMG), "threshold >= 20"),
    ("adaptive_max_indices", nn.AdaptiveMaxPool2d(1, return_indices=True), _randn(*IMG),
     "return_indices=True"),
    ("tensor_constant_operand", Fn(lambda s, x: x * torch.tensor(2.0)), _randn(2, 6),
     "constant"),
    ("broadcast", Fn(lambda s, x: x + x.mean(1, keepdim=True)), _randn(*SEQ), "no broadcasting"),
    ("batch_moved", Fn(lambda s, x: s.fc(x.transpose(0, 1)), fc=nn.Linear(6, 2)),
     _randn(*SEQ), "batch axis"),
    ("reshape_batch", Fn(lambda s, x: x.reshape(-1, 6)), _randn(*SEQ), "batch"),
    ("time_major_input", nn.LSTM(6, 4), _randn(*SEQ), "batch_first=False"),
    ("key_padding_mask", Fn(lambda s, x: s.m(x, x, x, key_padding_mask=x[:, :, 0] > 0)[0],
                            m=nn.MultiheadAttention(6, 2, batch_first=True)),
     _randn(*SEQ), "key_padding_mask"),
    ("attention_weights", Fn(lambda s, x: s.m(x, x, x)[1],
                             m=nn.MultiheadAttention(6, 2, batch_first=True)),
     _randn(*SEQ), "attention weights"),
    ("parameter_in_forward", Fn(lambda s, x: x + s.fc.weight.sum(), fc=nn.Linear(6, 2)),
     _randn(2, 6), "constant"),
], ids=lambda v: v if isinstance(v, str) and " " not in v else "")  # fmt: skip
def test_unsupported_setting(case, module, x, fragment):
    problems = _problems(module, x)
    assert any(fragment in p for p in problems), problems


def test_untraceable_control_flow_wraps_fx_error():
    def forward(s, x):
        if x.sum() > 0:  # depends on the values: fx cannot trace it
            return x.relu()
        return x

    with pytest.raises(UnsupportedModelError, match=r"torch\.fx could not trace") as info:
        dn.from_torch(Fn(forward), _randn(2, 6))
    assert isinstance(info.value.__cause__, Exception)


@pytest.mark.parametrize(("kwargs", "error", "fragment"), [
    ({"module": "not a module", "example_inputs": np.zeros((2, 3))}, TypeError, "module="),
    ({"module": nn.Linear(3, 2), "example_inputs": [1, 2]}, TypeError, "example_inputs="),
    ({"module": nn.Linear(3, 2), "example_inputs": torch.zeros(3)}, ValueError, "batch axis"),
    ({"module": nn.Linear(3, 2), "example_inputs": (torch.zeros(2, 3), torch.zeros(3, 3))},
     ValueError, "batch size"),
    ({"module": nn.Linear(3, 2), "example_inputs": torch.zeros(2, 4)}, ValueError,
     "running it raised"),
    ({"module": nn.Linear(3, 2), "example_inputs": torch.zeros(2, 3), "backend": "jax"},
     ValueError, "backend="),
    ({"module": nn.Linear(3, 2).half(), "example_inputs": torch.zeros(2, 3).half()},
     UnsupportedModelError, "float16"),
], ids=["module", "inputs_type", "inputs_rank", "inputs_batch", "inputs_shape", "backend",
        "dtype"])  # fmt: skip
def test_bad_arguments(kwargs, error, fragment):
    with pytest.raises(error, match=fragment.replace("(", r"\(")):
        dn.from_torch(**kwargs)


# -- mutation and batch-size constants: refused rather than imported wrong --------------------


def _relu_in_place_then_reread(s, x):
    a = s.lin(x)
    b = s.act(a)  # ReLU(inplace=True) mutates a, which the sum below reads
    return a + b


def _relu_in_place_statement(s, x):
    y = s.lin(x)
    y.relu_()  # the result is unused; y itself is mutated
    return y


@pytest.mark.parametrize("forward", [_relu_in_place_then_reread, _relu_in_place_statement],
                         ids=["reread", "statement"])  # fmt: skip
def test_in_place_op_whose_input_is_read_again_is_refused(forward):
    module = Fn(forward, lin=nn.Linear(4, 3), act=nn.ReLU(inplace=True))
    with pytest.raises(UnsupportedModelError, match="an in-place op on 'lin', which is read "
                       "again afterwards"):  # fmt: skip
        dn.from_torch(module, _randn(8, 4))


def test_batch_size_as_an_operand_is_refused():
    module = Fn(lambda s, x: s.lin(x) / x.size(0), lin=nn.Linear(4, 3))
    with pytest.raises(UnsupportedModelError, match=r"computed from the batch size \(size\) "
                       r"would be frozen at the example's batch size 8"):  # fmt: skip
        dn.from_torch(module, _randn(8, 4))


@pytest.mark.parametrize("backend", BACKENDS)
def test_in_place_ops_nothing_rereads_and_sizes_in_reshapes_import(backend):
    """``ReLU(inplace=True)`` on a tensor nothing else reads, ``h += 1`` and ``x.size(0)``
    inside ``view`` are their out-of-place forms: traced at batch 8, right at batch 3."""

    def forward(s, x):
        h = s.act(s.lin(x))
        h += 1.0
        return h.view(x.size(0) * 1, 2, 3)

    module = Fn(forward, lin=nn.Linear(4, 6), act=nn.ReLU(inplace=True)).double()
    model = dn.from_torch(copy.deepcopy(module), _randn(8, 4).double(), backend=backend)
    x = _randn(3, 4).double()
    with torch.no_grad():
        want = module(x).numpy()
    np.testing.assert_allclose(model.predict(x.numpy()), want, rtol=REL64, atol=0)
