"""Plan, build, time and record the benchmark kernels.

One *measurement* is a kernel at one dtype, device and mode, with its entrants timed
interleaved in one process (:mod:`dualnet.bench.timing`):

* ``compare="backends"``, mode ``eager``: torch eager vs TensorFlow eager.
* ``compare="backends"``, mode ``compiled``: ``torch.compile`` vs ``tf.function`` vs
  ``tf.function(jit_compile=True)`` (XLA); both TF variants are compared with torch.compile.
* ``compare="overhead"``: per backend, dualnet's model vs the same network written in plain
  torch / plain Keras, in the same mode.

Each entrant becomes one record (a flat dict) in the JSON file, which is rewritten after every
measurement, so an interrupted run keeps what it measured.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dualnet._backend import backend_module, use_backend
from dualnet.bench import environment
from dualnet.bench.kernels import Kernel, Setup, Unavailable, Unsupported
from dualnet.bench.stats import paired_ratios, summarize
from dualnet.bench.timing import Entrant, Policy, prepare, run_interleaved
from dualnet.dtypes import numpy_dtype
from dualnet.errors import bad_value

SCHEMA = 1
MODE_GROUPS = ("eager", "compiled")


@dataclass(frozen=True, kw_only=True)
class Config:
    """What to run and how.

    Args:
        devices: devices to run on (CUDA only when present; see ``environment.cuda_devices``).
        dtypes: dtypes to run; None = per device defaults (:func:`default_dtypes`).
        modes: subset of ``("eager", "compiled")``.
        torch_compile: include ``torch.compile`` in the compiled mode (slow to compile on
            small CPUs; its compile time is reported as ``first_call_s``).
        policy: the timing policy (precision target, budget).
        backends: backends to compare.
        json_path: where the JSON file is written (rewritten after each measurement).
    """

    devices: tuple[str, ...] = ("cpu",)
    dtypes: tuple[str, ...] | None = None
    modes: tuple[str, ...] = MODE_GROUPS
    torch_compile: bool = True
    policy: Policy = field(default_factory=Policy)
    backends: tuple[str, ...] = ("torch", "tensorflow")
    json_path: Path | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for mode in self.modes:
            if mode not in MODE_GROUPS:
                raise bad_value("modes", mode, f"a subset of {MODE_GROUPS}")


def default_dtypes(device: str, cpu_flags: Sequence[str], quick: bool) -> tuple[str, ...]:
    """float32 everywhere; on CUDA also bfloat16 and float16; on CPU bfloat16 when the CPU
    has native bf16 arithmetic (AVX512-BF16 or AMX) — elsewhere it is emulated and its time
    says nothing about the frameworks. ``--quick``: float32 only."""
    if quick:
        return ("float32",)
    if device == "cuda":
        return ("float32", "bfloat16", "float16")
    if {"avx512_bf16", "amx_bf16"} & set(cpu_flags):
        return ("float32", "bfloat16")
    return ("float32",)


@dataclass(frozen=True)
class Planned:
    """One entrant to build: which backend/implementation, and its native mode."""

    label: str
    backend: str
    impl: str
    mode: str
    skip_reason: str = ""


def plan_entrants(kernel: Kernel, mode_group: str, config: Config) -> list[list[Planned]]:
    """The interleaved measurements for one kernel in one mode group (lists of entrants)."""
    native_mode = {"torch": "compile", "tensorflow": "function"}
    if kernel.compare == "overhead":
        out = []
        for b in config.backends:
            mode = "eager" if mode_group == "eager" else native_mode[b]
            skip = _skip(b, mode, config)
            out.append(
                [Planned(f"{impl}[{b}]", b, impl, mode, skip) for impl in ("dualnet", "native")]
            )
        return out
    if mode_group == "eager":
        return [[Planned(b, b, "dualnet", "eager") for b in config.backends]]
    entrants = []
    if "torch" in config.backends:
        entrants.append(
            Planned("torch", "torch", "dualnet", "compile", _skip("torch", "compile", config))
        )
    if "tensorflow" in config.backends:
        entrants += [Planned("tensorflow", "tensorflow", "dualnet", m) for m in ("function", "xla")]
    return [entrants]


def _skip(backend: str, mode: str, config: Config) -> str:
    if backend == "torch" and mode == "compile" and not config.torch_compile:
        return "torch.compile not requested (--torch-compile to include it)"
    return ""


def _scope(backend: str, device: str) -> Callable[[], contextlib.AbstractContextManager[Any]]:
    @contextlib.contextmanager
    def scope() -> Iterator[None]:
        with use_backend(backend), backend_module(backend).core.device_scope(device):
            yield

    return scope


def _status_of(exc: BaseException) -> str:
    """``unavailable``/``unsupported`` only where a builder says so (``Unavailable``, raised by
    ``suite._require`` for a missing part, and ``Unsupported``); anything else, a stray
    ImportError included, is a failure: a broken builder must not pass for a missing one."""
    if isinstance(exc, Unavailable):
        return "unavailable"
    if isinstance(exc, Unsupported):
        return "unsupported"
    return "failed"


def _build(
    kernel: Kernel, planned: Planned, device: str, dtype: str, config: Config
) -> tuple[Entrant | None, str, str]:
    """Build one entrant's zero-argument call; ``(entrant, status, error)``."""
    if planned.skip_reason:
        return None, "skipped", planned.skip_reason
    mod = environment.native(planned.backend)
    if not mod.supports_dtype(device, dtype):
        return None, "unsupported", f"{planned.backend} has no {dtype} on {device}"
    setup = Setup(backend=planned.backend, device=device, dtype=dtype, impl=planned.impl,
                  seed=config.seed, mode=planned.mode)  # fmt: skip
    scope = _scope(planned.backend, device)
    try:
        with scope():
            workload = kernel.build(setup)
            mode = "eager" if workload.self_compiled else planned.mode  # it compiles itself
            call = mod.build_call(workload.fn, workload.args, mode, workload.params,
                                  step=workload.step)  # fmt: skip
    except Exception as exc:
        return None, _status_of(exc), f"{type(exc).__name__}: {exc}"
    entrant = Entrant(label=planned.label, call=call, sync=mod.sync_fn(device), scope=scope)
    return entrant, "ok", ""


def _reset_compiled(group: list[Planned]) -> None:
    """Clear the compilers' caches once for the whole measurement, before any entrant is built.
    Once only: torch's reset (``torch._dynamo.reset()``) discards the code of everything
    compiled before it, so a reset while building the second entrant would make the first one
    recompile inside its timed samples."""
    modes: dict[str, set[str]] = {}
    for planned in group:
        if not planned.skip_reason:
            modes.setdefault(planned.backend, set()).add(planned.mode)
    for backend, backend_modes in modes.items():
        environment.native(backend).reset_compiled(backend_modes)


def measure(
    kernel: Kernel,
    group: list[Planned],
    device: str,
    dtype: str,
    config: Config,
    peaks: dict[str, Any],
    index: int,
) -> list[dict[str, Any]]:
    """Build, warm up and time one interleaved measurement; one record per entrant."""
    started = time.perf_counter()
    # Once per measurement, before building any entrant, never between two: torch's reset
    # discards every compiled function, which would recompile inside the timed samples.
    _reset_compiled(group)
    built: list[tuple[Planned, Entrant | None, str, str]] = []
    for planned in group:
        entrant, status, error = _build(kernel, planned, device, dtype, config)
        if entrant is not None:
            prepare(entrant, config.policy)
            if not entrant.ok:
                status, error = "failed", entrant.error or ""
        built.append((planned, entrant, status, error))
    live = [e for _, e, status, _ in built if e is not None and status == "ok"]
    rounds = run_interleaved(live, config.policy) if live else 0
    itemsize = numpy_dtype(dtype).itemsize
    records = []
    for planned, entrant, status, error in built:
        if entrant is not None and status == "ok" and not entrant.ok:
            status, error = "failed", entrant.error or ""  # raised mid-measurement
        record: dict[str, Any] = {
            "measurement": index,
            "id": kernel.id,
            "group": kernel.group,
            "kernel": kernel.name,
            "shape": list(kernel.shape),
            "pass": kernel.pass_,
            "compare": kernel.compare,
            "dtype": dtype,
            "device": device,
            "mode": planned.mode,
            "backend": planned.backend,
            "impl": planned.impl,
            "label": planned.label,
            "status": status,
            "error": error,
            "flops": kernel.flops,
            "bytes": None
            if kernel.elements_moved is None
            else kernel.elements_moved * itemsize + kernel.fixed_bytes,
            "first_call_s": None if entrant is None else entrant.first_call_s,
            "number": None if entrant is None else entrant.number,
            "rounds": rounds,
            "wall_s": None,  # the whole measurement's wall time, build and warm-up included
            "samples": [] if entrant is None or status != "ok" else list(entrant.samples),
            "stats": None,
            "converged": False,
            "gflops": None,
            "gbs": None,
            "pct_peak": None,
            "ratio": None,
        }
        if record["samples"]:
            stats = summarize(record["samples"])
            record["stats"] = stats.to_dict()
            record["converged"] = stats.rel_halfwidth <= config.policy.rel_ci
            _normalise(record, stats.median, peaks.get(device, {}))
        records.append(record)
    _add_ratios(records, built)
    wall = time.perf_counter() - started
    for record in records:
        record["wall_s"] = wall
    return records


def _normalise(record: dict[str, Any], median: float, peak: dict[str, Any]) -> None:
    """GFLOP/s (compute-like kernels) or GB/s (element-wise), and % of the measured peak."""
    if record["flops"]:
        record["gflops"] = record["flops"] / median / 1e9
        best = peak.get("matmul", {}).get(record["dtype"])
        if best:
            record["pct_peak"] = 100 * record["gflops"] / best["gflops"]
    elif record["bytes"]:
        record["gbs"] = record["bytes"] / median / 1e9
        best = peak.get("copy")
        if best:
            record["pct_peak"] = 100 * record["gbs"] / best["gbs"]


def _add_ratios(records: list[dict[str, Any]], built: list[Any]) -> None:
    """torch/TF on each TF record (backends) or dualnet/native on the dualnet record
    (overhead), from samples of the same interleaved round."""
    by_label = {r["label"]: r for r in records if r["samples"]}
    pairs = []
    for r in records:
        if r["compare"] == "overhead" and r["impl"] == "dualnet":
            pairs.append((r, r, by_label.get(f"native[{r['backend']}]"), "dualnet/native"))
        elif r["compare"] == "backends" and r["backend"] == "tensorflow":
            pairs.append((r, by_label.get("torch"), r, "torch/tensorflow"))
    for target, num, den, name in pairs:
        if num is None or den is None or not num["samples"] or not den["samples"]:
            continue
        ratios = paired_ratios(num["samples"], den["samples"])
        if not ratios:
            continue
        s = summarize(ratios)
        target["ratio"] = {
            "name": name,
            "of": [num["label"] + ":" + num["mode"], den["label"] + ":" + den["mode"]],
            "median": s.median,
            "ci_low": s.ci_low,
            "ci_high": s.ci_high,
            "n": s.n,
        }


def _selected_dtypes(kernel: Kernel, device: str, config: Config, defaults: tuple[str, ...]):
    dtypes = config.dtypes if config.dtypes is not None else defaults
    return [d for d in dtypes if kernel.dtypes is None or d in kernel.dtypes]


def plan(kernels: Sequence[Kernel], config: Config, cpu_flags: Sequence[str], quick: bool):
    """Every measurement to run, in order: ``(kernel, entrants, device, dtype)``."""
    out = []
    for device in config.devices:
        defaults = default_dtypes(device, cpu_flags, quick)
        for kernel in kernels:
            for dtype in _selected_dtypes(kernel, device, config, defaults):
                for mode_group in (m for m in config.modes if m in kernel.modes):
                    for group in plan_entrants(kernel, mode_group, config):
                        out.append((kernel, group, device, dtype))
    return out


def write_json(report: dict[str, Any], path: Path) -> None:
    """Atomic rewrite (write a sibling file, then rename): a Ctrl-C never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, default=_jsonable))  # compact: rewritten often
    os.replace(tmp, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


def timer_agreement(threads: int, policy: Policy, min_run_time: float) -> dict[str, Any] | None:
    """Time one torch kernel (dn.activations.relu on 256×1024 float32) with this harness and
    with ``torch.utils.benchmark.Timer.blocked_autorange``, both with ``threads`` intra-op
    threads: the two medians should agree (a sanity check of the harness, recorded in the
    JSON)."""
    if "torch" not in environment.available_backends():
        return None
    import numpy as np
    import torch

    from dualnet import _ops, activations

    with use_backend("torch"):
        x = _ops.tensor(np.random.default_rng(0).standard_normal((256, 1024), np.float32))

    def call() -> Any:
        return activations.relu(x)

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)  # Timer(num_threads=threads) does the same for its part
    try:
        entrant = Entrant(label="harness", call=call, scope=_scope("torch", "cpu"))
        prepare(entrant, policy)
        run_interleaved([entrant], policy)
        ours = summarize(entrant.samples).median
    finally:
        torch.set_num_threads(previous)
    with use_backend("torch"):
        theirs = environment.native("torch").timer_median(call, threads, min_run_time)
    return {
        "kernel": "activation/relu[256x1024] float32 cpu eager (torch)",
        "threads": threads,
        "harness_median_s": ours,
        "torch_utils_benchmark_median_s": theirs,
        "ratio": ours / theirs,
    }


class Run:
    """A benchmark run: holds the report and rewrites the JSON as records arrive."""

    def __init__(self, config: Config, environment_info: dict[str, Any], peaks: dict[str, Any]):
        self.config = config
        self.report: dict[str, Any] = {
            "schema": SCHEMA,
            "environment": environment_info,
            "peaks": peaks,
            "config": {
                "devices": list(config.devices),
                "dtypes": None if config.dtypes is None else list(config.dtypes),
                "modes": list(config.modes),
                "torch_compile": config.torch_compile,
                "policy": asdict(config.policy),
            },
            "results": [],
            "interrupted": False,
            "complete": False,
            "wall_s": None,
        }
        self._start = time.perf_counter()

    def save(self) -> None:
        self.report["wall_s"] = time.perf_counter() - self._start
        if self.config.json_path is not None:
            write_json(self.report, self.config.json_path)

    def execute(
        self,
        measurements: Sequence[tuple[Kernel, list[Planned], str, str]],
        progress: Callable[[str], None] | None = None,
    ) -> dict[str, Any]:
        """Run every measurement; Ctrl-C stops early and keeps (and saves) what was measured."""
        try:
            for index, (kernel, group, device, dtype) in enumerate(measurements):
                mode = "/".join(sorted({p.mode for p in group}))
                if progress is not None:
                    progress(f"{kernel.id} {dtype} {device} {mode}")
                records = measure(
                    kernel, group, device, dtype, self.config, self.report["peaks"], index
                )
                self.report["results"].extend(records)
                self.save()
                gc.collect()  # free this kernel's tensors before the next one allocates
            self.report["complete"] = True
        except KeyboardInterrupt:
            self.report["interrupted"] = True
        finally:
            self.report["load_average_end"] = environment.load_average()
            self.save()
        return self.report
