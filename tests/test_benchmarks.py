"""The benchmark harness (dualnet.bench): statistics, timing loop, runner, reports, plots, CLI.

Tiny sizes and budgets; no test asserts a speed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from dualnet._backend import use_backend as dn_backend
from dualnet.bench import report as rep
from dualnet.bench import runner, stats, suite
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


def _config(tmp_path, **kw):
    return runner.Config(modes=("eager",), policy=TINY, json_path=tmp_path / "b.json", **kw)


def _relu_kernel():
    return next(k for k in suite.kernels(quick=True) if k.id == "activation/relu[4x256]/forward")


def test_failures_are_recorded_and_the_run_continues(tmp_path):
    kernels = [
        Kernel(group="activation", name="raises", shape=(2,), build=_raise, elements_moved=4),
        Kernel(group="activation", name="missing", shape=(2,), build=_unavailable),
        _relu_kernel(),
    ]
    config = _config(tmp_path)
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    status = {(r["kernel"], r["backend"]): r["status"] for r in report["results"]}
    assert status[("raises", "torch")] == status[("raises", "tensorflow")] == "failed"
    assert status[("missing", "torch")] == "unavailable"
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
