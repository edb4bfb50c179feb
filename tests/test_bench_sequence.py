"""The sequence benchmarks (:mod:`dualnet.bench.suite_sequence`): work counts, the hand-written
twins' checks and the registration. Tiny sizes (the suite's specs, shrunk); no timing assertion.
"""

from __future__ import annotations

import numpy as np
import pytest

from dualnet._backend import use_backend as dn_backend
from dualnet.bench import environment, runner, suite
from dualnet.bench import report as rep
from dualnet.bench import suite_sequence as seq
from dualnet.bench.kernels import GROUPS, Setup
from dualnet.bench.timing import Policy

TINY = Policy(rel_ci=0.5, min_samples=3, budget_s=0.02, block_s=1e-4, warmup=1, warmup_s=0)
SMALL_LSTM = seq.Recurrent("LSTM", 2, 5, 3, 4)
SMALL_GRU = seq.Recurrent("GRU", 2, 5, 3, 4)
SMALL_MHA = seq.Attention(2, 6, 8, 2)
SMALL_BLOCK = seq.Attention(2, 6, 8, 2, ff=16, classes=3)
LAYERS = (SMALL_LSTM, SMALL_GRU, SMALL_MHA)


def _kernels(compare):
    out = [seq._layer_kernel(spec, p, compare) for spec in LAYERS for p in seq.PASSES]
    out += [seq._block_kernel(SMALL_BLOCK, p, compare) for p in seq.PASSES]
    return [*out, seq._block_train_kernel(SMALL_BLOCK, compare)]


def _build_and_call(kernel, backend, impl="dualnet"):
    """Build one entrant as the runner does and call it once, eagerly: (workload, result)."""
    with runner._scope(backend, "cpu")():
        work = kernel.build(Setup(backend=backend, impl=impl))
        call = environment.native(backend).build_call(work.fn, work.args, "eager", work.params,
                                                      step=work.step)  # fmt: skip
        return work, call()


def _product_flops(batch_rows, a, b):
    return 2 * batch_rows * a * b


def _attention_flops(layer, batch, seq_len):
    """From the built layer's weights: q, k, v projections (E, N, H), the output (N, H, E), and
    the scores and weighted sum (N heads of H over T×T)."""
    (e, n, h), (_, _, ve) = layer.weight_shapes()[0], layer.weight_shapes()[-2]
    projections = 3 * _product_flops(batch * seq_len, e, n * h) + _product_flops(
        batch * seq_len, n * h, ve)  # fmt: skip
    return projections + 2 * _product_flops(batch * n * seq_len * seq_len, h, 1)


def test_flop_counts_follow_the_built_layers():
    """2 × the multiply-adds of the layers as dualnet builds them; the layer rows differentiate
    the input too (3× the forward); the block skips the data's own gradient."""
    assert seq.LSTM.flops("forward") == 2 * 32 * 100 * (128 + 256) * 4 * 256
    assert seq.MHA.flops("forward") == 4 * 2 * 32 * 128 * 512 * 512 + 2 * 2 * 32 * 8 * 128**2 * 64
    with dn_backend("torch"):
        for spec in (SMALL_LSTM, SMALL_GRU, seq.GRU):
            layer, _ = seq._make_layer(spec, Setup(backend="torch"))
            (fin, cols), (units, _) = layer.weight_shapes()[:2]
            forward = _product_flops(spec.batch * spec.timesteps, fin + units, cols)
            assert spec.flops("forward") == forward, spec
            assert spec.flops("forward+backward") == 3 * forward
        layer, _ = seq._make_layer(SMALL_MHA, Setup(backend="torch"))
        forward = _attention_flops(layer, SMALL_MHA.batch, SMALL_MHA.seq)
        assert SMALL_MHA.flops("forward") == forward
        assert SMALL_MHA.flops("forward+backward") == 3 * forward
        for spec in (SMALL_BLOCK, seq.BLOCK):
            _, parts = seq.dualnet_block(spec, "float32")
            b, t, e = spec.shape
            forward = _attention_flops(parts["attention"], b, t)
            for role, rows in (("linear1", b * t), ("linear2", b * t), ("fc", b)):
                fin, fout = parts[role].weight_shapes()[0]
                forward += _product_flops(rows, fin, fout)
            assert spec.block_flops("forward") == forward
            qkv_input_grads = 3 * _product_flops(b * t, e, e)
            assert spec.block_flops("forward+backward") == 3 * forward - qkv_input_grads
            assert spec.block_flops("train") == spec.block_flops("forward+backward")


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_rows_run_and_every_twin_is_checked(monkeypatch, backend):
    """Every row builds and runs through dualnet; every hand-written twin (nn.LSTM, nn.GRU,
    nn.MultiheadAttention, nn.TransformerEncoderLayer; keras.layers) is checked against dualnet
    before it may be timed: the output, and for the step the training output, the loss and all
    the weights after one step. The layer rows differentiate the weights and the input."""
    checks = []
    real = suite._check_same

    def counting(ours, theirs, setup, what="output"):
        checks.append(what)
        return real(ours, theirs, setup, what)

    monkeypatch.setattr(suite, "_check_same", counting)
    for kernel in _kernels("backends"):
        work, result = _build_and_call(kernel, backend)
        if kernel.pass_ == "forward+backward" and kernel.group != "model":
            n_weights = 8 if kernel.group == "attention" else 3  # q, k, v, out; kernels + bias
            assert len(result) == n_weights + 1 and work.params[-1] is work.args[0], kernel.id
            assert tuple(result[-1].shape) == tuple(work.args[0].shape)
        assert work.step == (kernel.pass_ == "train")
    assert not checks  # the torch-vs-TF rows compare speed, not twins
    for kernel in _kernels("overhead"):
        _build_and_call(kernel, backend)
        _build_and_call(kernel, backend, impl="native")
    assert checks.count("output") == 2 * 4  # 3 layers and the block, two passes each
    assert checks.count("training output") == checks.count("loss") == 1
    after = [what for what in checks if what.endswith("after one step")]
    # Compared in the twin's own layout: torch packs q, k, v (in_proj weight and bias), Keras
    # keeps 8 attention weights; then 2 LayerNormalization, 2 + 1 Dense.
    assert len(after) == (4 if backend == "torch" else 8) + 4 + 4 + 2


def test_twin_with_keras_gru_gate_order_is_refused(monkeypatch):
    """nn.GRU orders its gates r, z, n; Keras z, r, h. A twin loaded without the reordering has
    the right shapes and is refused."""
    kernel = seq._layer_kernel(SMALL_GRU, "forward", "overhead")
    with dn_backend("torch"):
        kernel.build(Setup(backend="torch", impl="native"))  # the real conversion passes
        monkeypatch.setattr(seq, "gru_gates_to_torch", lambda w, units: w)
        with pytest.raises(AssertionError, match="disagrees with dualnet's"):
            kernel.build(Setup(backend="torch", impl="native"))


def test_twin_with_untransposed_attention_output_is_refused(monkeypatch):
    """``out_proj.weight`` is the output kernel flattened to (N·H, E) and *transposed*; with
    ``key_dim = E/N`` the untransposed matrix has the same shape and is refused."""
    real = seq.mha_to_torch

    def untransposed(weights, prefix=""):
        state = real(weights, prefix)
        state[f"{prefix}out_proj.weight"] = state[f"{prefix}out_proj.weight"].T
        return state

    kernel = seq._layer_kernel(SMALL_MHA, "forward+backward", "overhead")
    with dn_backend("torch"):
        monkeypatch.setattr(seq, "mha_to_torch", untransposed)
        with pytest.raises(AssertionError, match="disagrees with dualnet's"):
            kernel.build(Setup(backend="torch", impl="native"))


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_block_twin_step_without_the_update_is_refused(monkeypatch, backend):
    """A hand-written step that computes the loss and the gradients but does not apply them
    gives the same loss, and weights within the tolerance of dualnet's (lr·g is small): the
    updates themselves are compared, and it is refused."""
    import torch

    def no_update(net, name):
        if backend == "torch":

            def step(x, y):
                loss = torch.nn.functional.cross_entropy(net(x), y)
                loss.backward()
                return loss
        else:
            import keras
            import tensorflow as tf

            def step(x, y):
                with tf.GradientTape() as tape:
                    loss = keras.losses.CategoricalCrossentropy(from_logits=True)(
                        y, net(x, training=True))  # fmt: skip
                tape.gradient(loss, net.trainable_variables)
                return loss

        return step

    kernel = seq._block_train_kernel(SMALL_BLOCK, "overhead")
    monkeypatch.setattr(suite, "_torch_step" if backend == "torch" else "_keras_step", no_update)
    with runner._scope(backend, "cpu")(), pytest.raises(AssertionError, match="update / lr"):
        kernel.build(Setup(backend=backend, impl="native"))


@pytest.mark.parametrize(("backend", "pass_"), [("torch", "forward"), ("torch", "train"),
                                                ("tensorflow", "forward")])  # fmt: skip
def test_block_twin_with_torch_layer_norm_epsilon_is_refused(monkeypatch, backend, pass_):
    """torch's LayerNorm default eps (1e-5) instead of Keras's 1e-3 is refused (on torch in the
    fast inference path and in training; on Keras too)."""
    monkeypatch.setattr(seq, "LN_EPSILON", 1e-5)
    kernel = next(k for k in _kernels("overhead")
                  if k.name == "transformer_block" and k.pass_ == pass_)  # fmt: skip
    with runner._scope(backend, "cpu")(), pytest.raises(AssertionError, match="disagrees"):
        kernel.build(Setup(backend=backend, impl="native"))


def test_rows_through_the_runner_and_the_table():
    """A backends row and an overhead row end to end: ok, a t/tf and a dn/native ratio, the
    new groups' tables; the block's forward+backward under tf.function."""
    kernels = [seq._layer_kernel(SMALL_LSTM, "forward", "backends"),
               seq._layer_kernel(SMALL_MHA, "forward+backward", "overhead")]  # fmt: skip
    config = runner.Config(modes=("eager",), torch_compile=False, policy=TINY, json_path=None)
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    rows = {(r["id"], r["label"]): r for r in report["results"]}
    for key, r in rows.items():
        assert r["status"] == "ok", (key, r["error"])
        assert r["gflops"] > 0
    assert rows[("rnn/LSTM[2x5x3x4]/forward", "tensorflow")]["ratio"]["name"] == "torch/tensorflow"
    mha = "overhead/MultiHeadAttention[2x6x8]/forward+backward"
    assert rows[(mha, "dualnet[torch]")]["ratio"]["name"] == "dualnet/native"
    tables = rep.tables(report["results"])
    assert "LSTM" in tables["rnn"] and "MultiHeadAttention" in tables["overhead"]
    kernel = seq._block_kernel(SMALL_BLOCK, "forward+backward", "backends")
    with runner._scope("tensorflow", "cpu")():
        work = kernel.build(Setup(backend="tensorflow", mode="function"))
        grads = environment.native("tensorflow").build_call(work.fn, work.args, "function",
                                                            work.params)()  # fmt: skip
    assert len(grads) == 8 + 4 + 4 + 2 and all(g is not None for g in grads)


def test_registered_in_the_suite():
    """The full suite has every row at the issue's sizes; --quick adds two small eager rows."""
    assert {"rnn", "attention"} <= set(GROUPS)
    full = {k.id for k in suite.kernels()}
    for kid in ("rnn/LSTM[32x100x128x256]/forward", "rnn/GRU[32x100x128x256]/forward+backward",
                "attention/MultiHeadAttention[32x128x512]/forward+backward",
                "model/transformer_block[32x128x512]/train",
                "overhead/GRU[32x100x128x256]/forward",
                "overhead/MultiHeadAttention[32x128x512]/forward",
                "overhead/transformer_block[32x128x512]/train"):  # fmt: skip
        assert kid in full, kid
    quick = [k for k in suite.kernels(quick=True) if k.group in ("rnn", "attention")]
    assert len(quick) == 2 and all(k.modes == ("eager",) and k.shape[0] <= 8 for k in quick)
    assert not any(k.name == "transformer_block" for k in suite.kernels(quick=True))
    with pytest.raises(ValueError, match="heads"):
        seq.Attention(2, 6, 8, 3)
    with pytest.raises(ValueError, match="kind"):
        seq.Recurrent("RNN", 2, 5, 3, 4)
    assert np.isfinite(seq.BLOCK.block_flops("train"))
