"""The benchmark harness (dualnet.bench): statistics, timing loop, runner, reports, plots, CLI.

Tiny sizes and budgets; no test asserts a speed.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dualnet._backend import use_backend as dn_backend
from dualnet._ops import to_numpy as dn_to_numpy
from dualnet.bench import report as rep
from dualnet.bench import runner, stats, suite, suite_cnn, suite_layers
from dualnet.bench.kernels import Kernel, Setup, Unavailable, Unsupported, Workload
from dualnet.bench.timing import Entrant, Policy, prepare, run_interleaved

TINY = Policy(rel_ci=0.5, min_samples=3, budget_s=0.02, block_s=1e-4, warmup=1, warmup_s=0)

# ----------------------------------------------------------------------------- statistics


def test_summary_matches_numpy():
    rng = np.random.default_rng(0)
    samples = list(rng.lognormal(size=101))
    s = stats.summarize(samples)
    assert s.n == 101
    assert s.median == pytest.approx(np.median(samples))
    assert s.q1 == pytest.approx(np.quantile(samples, 0.25))
    assert s.q3 == pytest.approx(np.quantile(samples, 0.75))
    assert (s.min, s.max) == (min(samples), max(samples))
    assert s.ci_low <= s.median <= s.ci_high


@pytest.mark.parametrize("n", [1, 5])
def test_no_ci_below_six_samples(n):
    assert stats.median_ci_ranks(n) is None
    assert stats.summarize([1.0] * n).rel_halfwidth == math.inf


def test_median_ci_ranks_known_values():
    assert stats.median_ci_ranks(6) == (0, 5)  # [min, max] covers with 1 - 2/64 = 96.9%
    assert stats.median_ci_ranks(10) == (1, 8)  # 1 - 2·11/1024 = 97.9%; one rank in: 89%


@pytest.mark.parametrize("n", [6, 7, 10, 25, 50, 100, 299, 301, 1000])
def test_median_ci_coverage_at_least_95_percent(n):
    lo, hi = stats.median_ci_ranks(n)
    # Exact coverage of [x_(lo+1), x_(hi+1)]: P(lo+1 <= B <= hi), B ~ Binomial(n, 1/2).
    coverage = sum(math.comb(n, k) for k in range(lo + 1, hi + 1)) / 2**n
    assert coverage >= 0.95
    if n > 10:  # and not wastefully wide: one rank narrower would drop below 95%
        narrower = sum(math.comb(n, k) for k in range(lo + 2, hi)) / 2**n
        assert narrower < 0.95 + 0.01


def test_precision_stop_rule():
    tight = [1.0 + 0.001 * i for i in range(20)]
    wide = [1.0 + i for i in range(20)]
    assert stats.precise_enough(tight, rel_ci=0.02, min_samples=10)
    assert not stats.precise_enough(wide, rel_ci=0.02, min_samples=10)
    assert not stats.precise_enough(tight[:8], rel_ci=0.02, min_samples=10)


def test_paired_ratios_use_same_round():
    assert stats.paired_ratios([2.0, 4.0, 9.0], [1.0, 2.0]) == [2.0, 2.0]


def test_policy_validation_names_the_argument():
    with pytest.raises(ValueError, match="rel_ci"):
        Policy(rel_ci=0)
    with pytest.raises(ValueError, match="min_samples"):
        Policy(min_samples=0)


# ----------------------------------------------------------------------------- timing loop


class FakeClock:
    """Deterministic clock: each call of an entrant advances time by its cost."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def _fake_entrant(label, clock, costs, log):
    it = iter(costs)

    def call():
        log.append(label)
        clock.now += next(it)

    return Entrant(label=label, call=call)


def test_interleaving_order_is_abba():
    clock, log = FakeClock(), []
    a = _fake_entrant("A", clock, [1.0] * 100, log)
    b = _fake_entrant("B", clock, [2.0] * 100, log)
    policy = Policy(rel_ci=0.01, min_samples=4, max_samples=4, budget_s=1e9)
    rounds = run_interleaved([a, b], policy, clock=clock)
    assert rounds == 4
    assert log == ["A", "B", "B", "A", "A", "B", "B", "A"]
    assert a.samples == [1.0] * 4 and b.samples == [2.0] * 4


def test_stops_when_precise_and_on_budget():
    clock, log = FakeClock(), []
    steady = _fake_entrant("steady", clock, [1.0] * 10_000, log)
    policy = Policy(rel_ci=0.01, min_samples=10, budget_s=1e9)
    assert run_interleaved([steady], policy, clock=clock) == 10  # identical samples: precise
    rng = np.random.default_rng(0)
    noisy = _fake_entrant("noisy", clock, list(rng.uniform(1, 10, 10_000)), log)
    policy = Policy(rel_ci=1e-6, min_samples=10, budget_s=50.0)
    rounds = run_interleaved([noisy], policy, clock=clock)
    assert 3 <= rounds < 20  # stopped by the 50 s budget (~5.5 s per sample), not precision


def test_prepare_times_first_call_separately_and_calibrates_blocks():
    clock, log = FakeClock(), []
    costs = [0.5] + [1e-3] * 10_000  # a slow first call (compilation), then fast calls
    e = _fake_entrant("e", clock, costs, log)
    prepare(e, Policy(block_s=0.01, warmup=2, warmup_s=0), clock=clock)
    assert e.first_call_s == 0.5
    assert e.number >= 10  # a block of >= 10 calls lasts >= block_s
    assert e.ok


def test_entrant_failing_mid_run_is_dropped_and_others_continue():
    clock, log = FakeClock(), []
    good = _fake_entrant("good", clock, [1.0] * 100, log)
    bad = _fake_entrant("bad", clock, [1.0, 1.0], log)  # StopIteration on the third call
    policy = Policy(rel_ci=0.01, min_samples=5, max_samples=5, budget_s=1e9)
    run_interleaved([good, bad], policy, clock=clock)
    assert not bad.ok and "StopIteration" in bad.error
    assert len(good.samples) == 5


# ----------------------------------------------------------------------------- runner (real)


def _raise(setup: Setup) -> Workload:
    raise RuntimeError("boom")


def _unavailable(setup: Setup) -> Workload:
    raise Unavailable("dualnet.nothing is not available")


def _broken_import(setup: Setup) -> Workload:
    import dualnet.no_such_module  # noqa: F401  (a bug in a builder, not a missing part)

    raise AssertionError("unreachable")


def _config(tmp_path, **kw):
    return runner.Config(modes=("eager",), policy=TINY, json_path=tmp_path / "b.json", **kw)


def _relu_kernel():
    return next(k for k in suite.kernels(quick=True) if k.id == "activation/relu[4x256]/forward")


def test_failures_are_recorded_and_the_run_continues(tmp_path):
    kernels = [
        Kernel(group="activation", name="raises", shape=(2,), build=_raise, elements_moved=4),
        Kernel(group="activation", name="missing", shape=(2,), build=_unavailable),
        Kernel(group="activation", name="broken", shape=(2,), build=_broken_import),
        _relu_kernel(),
    ]
    config = _config(tmp_path)
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    status = {(r["kernel"], r["backend"]): r["status"] for r in report["results"]}
    assert status[("raises", "torch")] == status[("raises", "tensorflow")] == "failed"
    assert status[("missing", "torch")] == "unavailable"
    assert status[("broken", "torch")] == status[("broken", "tensorflow")] == "failed"
    assert status[("relu", "torch")] == status[("relu", "tensorflow")] == "ok"
    assert "RuntimeError: boom" in report["results"][0]["error"]
    assert report["complete"] and not report["interrupted"]
    table = rep.tables(report["results"])["activation"]
    assert "FAILED" in table and "UNAVAILABLE" in table


def test_ratio_json_round_trip_and_tables(tmp_path):
    config = _config(tmp_path)
    measurements = runner.plan([_relu_kernel()], config, [], quick=True)
    report = runner.Run(config, {"cpu": {}}, {"cpu": {"copy": {"gbs": 10.0}}}).execute(measurements)
    loaded = rep.load(tmp_path / "b.json")
    assert loaded["results"] == json.loads(json.dumps(report["results"]))
    torch_r, tf_r = loaded["results"]
    assert torch_r["samples"] and tf_r["samples"]
    assert tf_r["ratio"]["name"] == "torch/tensorflow"
    n = min(len(torch_r["samples"]), len(tf_r["samples"]))
    expected = np.median(np.array(torch_r["samples"][:n]) / np.array(tf_r["samples"][:n]))
    assert tf_r["ratio"]["median"] == pytest.approx(expected)
    assert tf_r["gbs"] == pytest.approx(2 * 4 * 256 * 4 / tf_r["stats"]["median"] / 1e9)
    assert tf_r["pct_peak"] == pytest.approx(100 * tf_r["gbs"] / 10.0)
    assert "t/tf" in rep.tables(loaded["results"])["activation"]


def test_interrupt_keeps_what_was_measured(tmp_path):
    def interrupt(setup):
        raise KeyboardInterrupt

    kernels = [_relu_kernel(), Kernel(group="loss", name="ctrl-c", shape=(1,), build=interrupt)]
    config = _config(tmp_path)
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    assert report["interrupted"] and not report["complete"]
    saved = rep.load(tmp_path / "b.json")
    assert saved["interrupted"]
    assert [r["kernel"] for r in saved["results"]] == ["relu", "relu"]


def test_models_forward_backward_and_compiled_modes(tmp_path):
    """The model group end to end (gradients on both backends, tf.function and XLA), and the
    overhead group's hand-written networks."""
    pytest.importorskip("dualnet.models")
    picked = {"model/tutorial[1x3x3x2x2]/forward+backward",
              "overhead/tutorial[1x3x3x2x2]/forward+backward"}  # fmt: skip
    kernels = [k for k in suite.kernels(quick=True) if k.id in picked]
    config = runner.Config(modes=("eager", "compiled"), torch_compile=False, policy=TINY,
                           json_path=None)  # fmt: skip
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    rows = {(r["group"], r["label"], r["mode"]): r for r in report["results"]}
    for key in [("model", "torch", "eager"), ("model", "tensorflow", "eager"),
                ("model", "tensorflow", "function"), ("model", "tensorflow", "xla"),
                ("overhead", "dualnet[torch]", "eager"), ("overhead", "native[torch]", "eager"),
                ("overhead", "dualnet[tensorflow]", "function")]:  # fmt: skip
        assert rows[key]["status"] == "ok", (key, rows[key]["error"])
    assert rows[("model", "torch", "compile")]["status"] == "skipped"
    assert rows[("overhead", "dualnet[torch]", "eager")]["ratio"]["name"] == "dualnet/native"


def test_torch_compile_does_not_recompile_inside_the_timed_region(monkeypatch):
    """Both torch entrants of an overhead row are compiled before the clock starts: building
    the second must not throw away the first one's compiled code (``torch._dynamo.reset()``
    between them did, and the dualnet row then recompiled inside its timed samples). Dynamo's
    counters, read around the timed region, must not move."""
    pytest.importorskip("dualnet.models")
    from torch._dynamo.utils import counters

    kernel = next(k for k in suite.kernels(quick=True)
                  if k.id == "overhead/tutorial[1x3x3x2x2]/forward")  # fmt: skip

    def compiles():
        return (counters["frames"]["total"], counters["frames"]["ok"],
                counters["stats"]["unique_graphs"])  # fmt: skip

    timed = []
    real = runner.run_interleaved

    def watched(entrants, policy):
        before = compiles()
        rounds = real(entrants, policy)
        timed.append((before, compiles(), [e.label for e in entrants]))
        return rounds

    monkeypatch.setattr(runner, "run_interleaved", watched)
    config = runner.Config(modes=("compiled",), torch_compile=True, policy=TINY,
                           backends=("torch",), json_path=None)  # fmt: skip
    start = compiles()
    report = runner.Run(config, {}, {}).execute(runner.plan([kernel], config, [], quick=True))
    rows = {r["label"]: r for r in report["results"]}
    for label in ("dualnet[torch]", "native[torch]"):
        assert rows[label]["status"] == "ok", (label, rows[label]["error"])
        assert rows[label]["mode"] == "compile"
    [(before, after, labels)] = timed
    assert labels == ["dualnet[torch]", "native[torch]"]
    assert before[2] > start[2]  # both compiled (in their untimed first call) ...
    assert after == before  # ... and nothing compiled again while the clock ran


def test_training_step_kernels(tmp_path):
    """One optimizer step on both backends (eager), dualnet vs hand-written (checked equal at
    build); the compiled modes are recorded as unsupported, not faked."""
    pytest.importorskip("dualnet.training")
    picked = {"model/tutorial[1x3x3x2x2]/train", "overhead/tutorial[1x3x3x2x2]/train"}
    kernels = [k for k in suite.kernels(quick=True) if k.id in picked]
    assert len(kernels) == 2
    config = runner.Config(modes=("eager", "compiled"), torch_compile=False, policy=TINY,
                           json_path=None)  # fmt: skip
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    rows = {(r["group"], r["label"], r["mode"]): r for r in report["results"]}
    for key in [("model", "torch", "eager"), ("model", "tensorflow", "eager"),
                ("overhead", "dualnet[torch]", "eager"), ("overhead", "native[torch]", "eager"),
                ("overhead", "dualnet[tensorflow]", "eager"),
                ("overhead", "native[tensorflow]", "eager")]:  # fmt: skip
        assert rows[key]["status"] == "ok", (key, rows[key]["error"])
        assert rows[key]["pass"] == "train"
    assert rows[("overhead", "dualnet[tensorflow]", "eager")]["ratio"]["name"] == "dualnet/native"
    for key in [("model", "tensorflow", "function"), ("model", "tensorflow", "xla"),
                ("overhead", "dualnet[tensorflow]", "function"),
                ("overhead", "native[tensorflow]", "function")]:  # fmt: skip
        assert rows[key]["status"] == "unsupported", key
        assert "runs eagerly only" in rows[key]["error"]
    assert "train" in rep.tables(report["results"])["overhead"]
    with pytest.raises(Unsupported, match="runs eagerly only"):  # torch.compile, unbuilt above
        kernels[0].build(Setup(backend="torch", mode="compile"))


def test_native_training_step_mismatch_is_refused(monkeypatch):
    """The overhead comparison refuses a hand-written step that does different work."""
    real = suite._torch_step

    def two_steps(net, name):
        step = real(net, name)
        return lambda x, y: (step(x, y), step(x, y))[1]

    monkeypatch.setattr(suite, "_torch_step", two_steps)
    kernel = next(k for k in suite.kernels(quick=True)
                  if k.id == "overhead/tutorial[1x3x3x2x2]/train")  # fmt: skip
    with dn_backend("torch"), pytest.raises(AssertionError, match="disagrees with dualnet's"):
        kernel.build(Setup(backend="torch", impl="native"))


# ----------------------------------------------------------------------------- layers and CNNs

# Small stand-ins for the suite's networks (same architectures; the tests need seconds). LeNet
# keeps a 2×2 map before Flatten, so the NHWC/NCHW flatten order still matters.
SMALL_LENET = replace(suite_cnn.LENET, input=(20, 20, 1), batch=4,
                      matmuls=((16 * 16, 25, 6), (4 * 4, 150, 16), (1, 64, 10)))  # fmt: skip
SMALL_BLOCK = replace(suite_cnn.RESNET_BLOCK, input=(8, 8, 4), batch=4,
                      matmuls=((64, 36, 4), (64, 36, 4), (1, 4, 10)))  # fmt: skip


def _small_layer_kernels(pass_):
    conv, spatial = (2, 6, 6, 3, 4), (2, 6, 6, 4)
    return [
        suite_layers._conv_kernel(conv, 3, pass_),
        suite_layers._conv_kernel(conv, 1, pass_),
        suite_layers._conv_kernel(conv, 3, pass_, channels_first=True),
        suite_layers._depthwise_kernel(spatial, pass_),
        suite_layers._pool_kernel("MaxPooling2D", spatial, pass_),
        suite_layers._pool_kernel("AveragePooling2D", spatial, pass_),
        *(suite_layers._norm_kernel(name, spatial, pass_) for name in suite_layers.NORM_NAMES),
    ]


def _execute(kernels, modes=("eager",)):
    """Through the runner (each measurement costs ~0.5 s of garbage collection: use sparingly)."""
    config = runner.Config(modes=modes, torch_compile=False, policy=TINY, json_path=None)
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    return {(r["id"], r["label"], r["mode"]): r for r in report["results"]}


def _build_and_call(kernel, backend, impl="dualnet"):
    """Build one entrant as the runner does and call it once, eagerly: (workload, result)."""
    from dualnet.bench import environment

    with runner._scope(backend, "cpu")():
        work = kernel.build(Setup(backend=backend, impl=impl))
        call = environment.native(backend).build_call(work.fn, work.args, "eager", work.params,
                                                      step=work.step)  # fmt: skip
        return work, call()


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_layer_kernels_run_and_differentiate_the_weights_and_the_input(backend):
    """Every layer row (conv, pool, norm) runs forward and forward+backward; forward+backward is
    the work of a layer inside a network: the gradients of the trainable weights and of the
    input (which the harness differentiates as a parameter)."""
    for kernel in _small_layer_kernels("forward"):
        work, out = _build_and_call(kernel, backend)
        assert work.params is None and not work.step
        expected = work.fn.layer.compute_output_shape(tuple(work.args[0].shape))
        assert tuple(out.shape) == tuple(expected), kernel.id
    for kernel in _small_layer_kernels("forward+backward"):
        work, grads = _build_and_call(kernel, backend)
        assert work.params[-1] is work.args[0], kernel.id
        weights = {"Conv2D": 2, "DepthwiseConv2D": 2, "BatchNormalization": 2,
                   "LayerNormalization": 2}.get(kernel.name.split("-")[0], 0)  # fmt: skip
        assert len(grads) == weights + 1, kernel.id
        assert all(g is not None for g in grads), kernel.id
        assert tuple(grads[-1].shape) == tuple(work.args[0].shape), kernel.id


def test_layer_kernels_through_the_runner_and_compiled():
    """A layer group end to end: GFLOP/s, the table, forward+backward under tf.function/XLA."""
    kernels = [k for k in _small_layer_kernels("forward+backward") if k.name == "Conv2D-3x3"]
    rows = _execute(kernels, modes=("eager", "compiled"))
    assert {m for _, _, m in rows} == {"eager", "compile", "function", "xla"}
    for (kid, label, mode), r in rows.items():
        if mode == "compile":
            assert r["status"] == "skipped"  # torch.compile not requested
        else:
            assert r["status"] == "ok", (kid, label, mode, r["error"])
            assert r["gflops"] > 0
    assert "Conv2D-3x3" in rep.tables(list(rows.values()))["conv"]


def test_layer_work_counts_follow_the_built_layers():
    """FLOPs = 2 × multiply-adds of the layer as built; bytes = input read + output written
    (forward), plus output gradient read and input gradient written (pooling) or output
    gradient and input read and input gradient written (normalization)."""
    with dn_backend("torch"):
        for fwd, both in zip(_small_layer_kernels("forward"),
                             _small_layer_kernels("forward+backward"), strict=True):  # fmt: skip
            work = fwd.build(Setup(backend="torch"))
            x = work.args[0]
            n_in, n_out = x.numel(), work.fn(x).numel()
            if fwd.group == "conv":
                kh, kw, cin, _ = work.fn.layer.weight_shapes()[0]
                # A depthwise kernel (kh, kw, C, multiplier) reads one input channel per output.
                per_output = kh * kw * (1 if fwd.name.startswith("Depthwise") else cin)
                assert fwd.flops == 2 * n_out * per_output, fwd.id
                assert both.flops == 3 * fwd.flops and fwd.elements_moved is None
            elif fwd.group == "pool":
                assert (fwd.elements_moved, both.elements_moved) == (
                    n_in + n_out, 2 * (n_in + n_out)), fwd.id  # fmt: skip
            else:
                assert (fwd.elements_moved, both.elements_moved) == (2 * n_in, 5 * n_in), fwd.id
                assert fwd.flops is None


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_batch_normalization_rows_run_in_their_mode(backend):
    """The training row normalizes with the batch statistics (and updates the moving ones);
    the inference row uses the moving statistics."""
    spatial = (2, 6, 6, 4)
    infer = suite_layers._norm_kernel("BatchNormalization-inference", spatial, "forward")
    train = suite_layers._norm_kernel("BatchNormalization-training", spatial, "forward")
    with runner._scope(backend, "cpu")():
        for kernel, training in ((infer, False), (train, True)):
            work = kernel.build(Setup(backend=backend))
            layer = work.fn.layer
            before = layer.get_weights()
            y = np.asarray(dn_to_numpy(work.fn(work.args[0])), dtype=np.float64)
            x = np.asarray(dn_to_numpy(work.args[0]), dtype=np.float64)
            if training:
                mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
                assert not np.allclose(layer.get_weights()[2], before[2])  # moving mean moved
            else:
                mean, var = before[2], before[3]
            np.testing.assert_allclose(y, (x - mean) / np.sqrt(var + 1e-3), atol=1e-4)


def test_cnn_flop_counts_match_the_models():
    """Each network's declared matmuls are its Conv2D and Dense layers as dualnet builds them."""
    with dn_backend("torch"):
        for spec in (*suite_cnn.NETWORKS, SMALL_LENET, SMALL_BLOCK):
            model = suite_cnn.dualnet_model(spec, "float32")
            found = []
            for layer in model.layers:
                if type(layer).__name__ == "Conv2D":
                    kh, kw, cin, cout = layer.weight_shapes()[0]
                    _, ho, wo, _ = layer.output_shape
                    found.append((ho * wo, kh * kw * cin, cout))
                elif type(layer).__name__ == "Dense":
                    fin, fout = layer.weight_shapes()[0]
                    found.append((1, fin, fout))
            assert tuple(found) == spec.matmuls, spec.name
            forward = sum(2 * spec.batch * m * k * n for m, k, n in found)
            first = 2 * spec.batch * found[0][0] * found[0][1] * found[0][2]
            assert spec.flops("forward") == forward
            assert spec.flops("forward+backward") == spec.flops("train") == 3 * forward - first


def _cnn_kernels(spec, compare):
    return [suite_cnn._model_kernel(spec, "forward", compare),
            suite_cnn._model_kernel(spec, "forward+backward", compare),
            suite_cnn._train_kernel(spec, compare)]  # fmt: skip


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_cnn_rows_run_and_the_native_twins_are_checked(monkeypatch, backend):
    """LeNet and the residual block, forward, forward+backward and a training step, through
    dualnet and through the hand-written NCHW torch / keras.layers networks; each twin is checked
    against dualnet before timing: the output (for the step: the training-mode output, the loss
    and every trainable weight after one step, not the moving statistics)."""
    checks = []
    real = suite._check_same

    def counting(ours, theirs, setup, what="output"):
        checks.append(what)
        return real(ours, theirs, setup, what)

    monkeypatch.setattr(suite, "_check_same", counting)
    for spec in (SMALL_LENET, SMALL_BLOCK):
        for kernel in _cnn_kernels(spec, "backends"):
            work, _ = _build_and_call(kernel, backend)
            assert work.step == (kernel.pass_ == "train")
        for kernel in _cnn_kernels(spec, "overhead"):
            _build_and_call(kernel, backend)
            work, _ = _build_and_call(kernel, backend, impl="native")
            if backend == "torch":  # the idiomatic torch network takes NCHW
                assert tuple(work.args[0].shape) == (spec.batch, spec.input[2], *spec.input[:2])
    assert checks.count("output") == 4 and checks.count("training output") == 2
    assert checks.count("loss") == 2
    # Trainable weights: LeNet 6; the block 2 kernels + 2 × (gamma, beta) + the Dense's 2.
    after = [what for what in checks if what.endswith("after one step")]
    assert len(after) == 6 + 8
    # The moving statistics are not compared (torch updates them with the unbiased variance).
    assert not any("moving" in what for what in after)


def test_cnn_rows_through_the_runner():
    """The residual block's training step against the hand-written ones (a dn/native ratio) and
    its compiled rows (unsupported); forward+backward in training mode under tf.function."""
    from dualnet.bench import environment

    train = [suite_cnn._train_kernel(SMALL_BLOCK, c) for c in ("backends", "overhead")]
    rows = _execute(train[1:])
    rows.update(_execute(train[:1], modes=("compiled",)))
    for (kid, label, mode), r in rows.items():
        if mode == "compile":
            assert r["status"] == "skipped"
        elif mode != "eager":
            assert r["status"] == "unsupported" and "runs eagerly only" in r["error"]
        else:
            assert r["status"] == "ok", (kid, label, mode, r["error"])
    ratio = rows[("overhead/resnet_block[4x8x8x4]/train", "dualnet[tensorflow]", "eager")]["ratio"]
    assert ratio["name"] == "dualnet/native"
    kernel = suite_cnn._model_kernel(SMALL_BLOCK, "forward+backward", "backends")
    with runner._scope("tensorflow", "cpu")():
        work = kernel.build(Setup(backend="tensorflow", mode="function"))
        grads = environment.native("tensorflow").build_call(work.fn, work.args, "function",
                                                            work.params)()  # fmt: skip
    assert len(grads) == 8 and all(g is not None for g in grads)  # 2 kernels, 2×2 BN, Dense 2


def test_cnn_twin_with_the_wrong_flatten_order_is_refused(monkeypatch):
    """nn.Flatten after NCHW walks (c, h, w); the Dense rows must be permuted from dualnet's
    channels-last (h, w, c) order. Without the permutation the row is refused."""
    kernel = suite_cnn._model_kernel(SMALL_LENET, "forward", "overhead")
    with dn_backend("torch"):
        kernel.build(Setup(backend="torch", impl="native"))  # the real conversion passes
        monkeypatch.setattr(suite_cnn, "_flatten_dense_to_torch", lambda k, hwc: k.T)
        with pytest.raises(AssertionError, match="disagrees with dualnet's"):
            kernel.build(Setup(backend="torch", impl="native"))


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
@pytest.mark.parametrize("pass_", ["forward", "forward+backward", "train"])
def test_cnn_twin_with_torch_batchnorm_epsilon_is_refused(monkeypatch, backend, pass_):
    """torch's BatchNorm2d default eps (1e-5) instead of Keras's 1e-3 changes the outputs in
    inference and in training mode: every residual-block row refuses such a twin."""
    monkeypatch.setattr(suite_cnn, "BN_EPSILON", 1e-5)
    kernel = next(k for k in _cnn_kernels(SMALL_BLOCK, "overhead") if k.pass_ == pass_)
    with runner._scope(backend, "cpu")(), pytest.raises(AssertionError, match="disagrees"):
        kernel.build(Setup(backend=backend, impl="native"))


def test_quick_adds_few_layer_and_cnn_kernels():
    """--quick stays short: a few small new kernels, eager-only where they are element-wise."""
    quick = suite.kernels(quick=True)
    new = [k for k in quick if k.group in ("conv", "pool", "norm")
           or k.name in ("lenet", "resnet_block")]  # fmt: skip
    assert len(new) <= 5
    assert all(k.shape[0] <= 64 for k in new)
    for k in new:
        if k.group in ("pool", "norm"):
            assert k.modes == ("eager",)
    full = {k.id for k in suite.kernels()}
    assert "conv/Conv2D-3x3-channels_first[32x32x32x64x64]/forward+backward" in full
    assert "overhead/resnet_block[32x32x32x16]/train" in full


def test_harness_agrees_with_torch_utils_benchmark():
    """A sanity check, not a speed assertion: both timers see the same kernel within 3x."""
    check = runner.timer_agreement(threads=1, policy=TINY, min_run_time=0.05)
    assert 1 / 3 < check["ratio"] < 3, check


def test_suite_covers_every_activation_and_loss():
    from dualnet import activations, losses

    ids = [k.id for k in suite.kernels(quick=True)]
    for fn in {activations.get(n) for n in activations.NAMES}:
        assert any(f"activation/{activations.serialize(fn)}[" in i for i in ids)
    classes = {name for name, *_ in suite.LOSSES} | {c for _, c, *_ in suite.LOSSES}
    assert classes >= set(losses._CLASSES)
    assert len(ids) == len(set(ids))


def test_kernel_validation():
    with pytest.raises(ValueError, match="group"):
        Kernel(group="nope", name="x", shape=(1,), build=_raise)
    with pytest.raises(ValueError, match="shape"):
        Kernel(group="loss", name="x", shape=(0,), build=_raise)


# ----------------------------------------------------------------------------- compare, plots


def _record(kernel, median, spread, label="torch", mode="eager", ratio=None):
    return {
        "id": f"activation/{kernel}[8]/forward", "group": "activation", "kernel": kernel,
        "shape": [8], "pass": "forward", "compare": "backends", "dtype": "float32",
        "device": "cpu", "mode": mode, "backend": label, "impl": "dualnet", "label": label,
        "status": "ok", "error": "", "flops": None, "bytes": 64.0, "first_call_s": 1e-3,
        "stats": {"n": 10, "median": median, "q1": median * 0.99, "q3": median * 1.01,
                  "min": median * 0.9, "max": median * 1.1, "ci_low": median * (1 - spread),
                  "ci_high": median * (1 + spread), "rel_halfwidth": spread},
        "samples": [median] * 10, "converged": True, "gflops": None, "gbs": 64 / median / 1e9,
        "pct_peak": None, "ratio": ratio,
    }  # fmt: skip


def _failed(kernel):
    r = _record(kernel, 1.0, 0.01)
    r.update(status="failed", error="RuntimeError: boom", stats=None)
    return r


def test_compare_two_files(tmp_path):
    old = {"results": [_record("relu", 1.0, 0.01), _record("tanh", 1.0, 0.01),
                       _record("elu", 1.0, 0.2), _record("gone", 1.0, 0.01),
                       _record("selu", 1.0, 0.01), _failed("gelu")]}  # fmt: skip
    new = {"results": [_record("relu", 0.5, 0.01), _record("tanh", 2.0, 0.01),
                       _record("elu", 1.1, 0.2), _record("added", 1.0, 0.01),
                       _failed("selu"), _record("gelu", 1.0, 0.01)]}  # fmt: skip
    a, b = tmp_path / "old.json", tmp_path / "new.json"
    a.write_text(json.dumps(old))
    b.write_text(json.dumps(new))
    table, counts = rep.compare(rep.load(a), rep.load(b))
    assert counts == {"faster": 1, "slower": 1, "~": 1, "now failing": 1, "now ok": 1,
                      "only old": 1, "only new": 1}  # fmt: skip
    assert "-50.0%" in table and "+100.0%" in table
    assert "now failing" in table and "now ok" in table  # a regression to failure is shown

    from dualnet.bench.cli import main

    assert main(["compare", str(a), str(b)]) == 0


def test_plots_are_written(tmp_path):
    from dualnet.bench.plots import write_plots

    ratio = {"name": "torch/tensorflow", "of": ["torch:eager", "tensorflow:eager"],
             "median": 1.3, "ci_low": 1.2, "ci_high": 1.4, "n": 10}  # fmt: skip
    results = []
    for size, t in ((8, 1e-6), (800, 1e-5), (80000, 1e-3)):
        for label, factor in (("torch", 1.3), ("tensorflow", 1.0)):
            r = _record("relu", t * factor, 0.01, label=label,
                        ratio=ratio if label == "tensorflow" else None)  # fmt: skip
            r["shape"], r["bytes"] = [size], 8.0 * size
            results.append(r)
    paths = write_plots({"results": results, "peaks": {"cpu": {"copy": {"gbs": 20.0}}}},
                        tmp_path)  # fmt: skip
    names = sorted(p.name for p in paths)
    assert names == ["ratio_activation.png", "time_vs_size_activation.png"]
    for p in paths:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_list_and_bench_subcommand(capsys):
    from dualnet.cli import main

    assert main(["bench", "--quick", "--list", "-k", "relu6"]) == 0
    out = capsys.readouterr().out.split()
    assert out == ["activation/relu6[4x256]/forward", "activation/relu6[2048x4096]/forward"]
    assert main(["bench", "--list", "-k", "pool/ and backward"]) == 0
    assert capsys.readouterr().out.split() == [
        "pool/MaxPooling2D-2x2[32x32x32x64]/forward+backward",
        "pool/AveragePooling2D-2x2[32x32x32x64]/forward+backward",
    ]


def test_cli_exit_status_is_non_zero_when_an_entrant_failed(tmp_path, monkeypatch, capsys):
    """The tables and JSON are written, and the exit status says the run was not clean."""
    from dualnet.cli import main

    failing = Kernel(group="activation", name="raises", shape=(2,), build=_raise,
                     elements_moved=4, modes=("eager",))  # fmt: skip
    monkeypatch.setattr(suite, "kernels", lambda quick=False: [failing])
    code = main(["bench", "--quick", "--no-plots", "-q", "--device", "cpu", "--out",
                 str(tmp_path)])  # fmt: skip
    assert code == 1
    assert "2 entrant(s) failed: raises[tensorflow], raises[torch]" in capsys.readouterr().err
    assert (tmp_path / "bench.json").exists()
