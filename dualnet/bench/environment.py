"""The machine and the frameworks: threads, versions, TF32, and the measured peaks.

Order matters. TensorFlow sizes its thread pools once, when its runtime initialises at the
first op, so :func:`configure` imports torch, then TensorFlow (dualnet's loader imports torch
first), and sets both thread counts before anything executes an op. The report records the
sizes that actually took effect, read back from each framework.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from dualnet._backend import BACKENDS, is_available
from dualnet.bench.stats import summarize
from dualnet.bench.timing import Entrant, Policy, prepare, run_interleaved

# CPU flags that decide which float formats run natively.
_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "avx512_fp16", "amx_bf16", "amx_fp16")


def native(backend: str) -> ModuleType:
    """The harness helpers of ``backend`` (:mod:`dualnet.bench._torch` or ``._tensorflow``)."""
    return import_module(f"dualnet.bench._{backend}")


def available_backends() -> list[str]:
    return [b for b in BACKENDS if is_available(b)]


def default_threads() -> int:
    """The cores this process may run on (affinity-aware where the OS says)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure(threads: int, inter_op: int = 1) -> dict[str, Any]:
    """Import both frameworks and give them the same thread counts, before either runs an op.

    ``inter_op=1`` on both: torch runs the ops of a model one after another, each parallelised
    over the intra-op pool; one inter-op thread gives TensorFlow's graph executor the same
    execution model, so the comparison measures kernels, not schedulers.
    """
    report: dict[str, Any] = {"requested": {"intra_op": threads, "inter_op": inter_op}}
    for backend in available_backends():  # BACKENDS order: torch before tensorflow
        report[backend] = native(backend).set_threads(threads, inter_op)
    report["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS")
    return report


def cpu_info() -> dict[str, Any]:
    info: dict[str, Any] = {"machine": platform.machine(), "model": platform.processor() or None}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not info.get("model_name"):
            info["model_name"] = value.strip()
        elif key == "cpu MHz" and "mhz" not in info:
            info["mhz"] = float(value)
        elif key == "flags" and "flags" not in info:
            present = set(value.split())
            info["flags"] = [f for f in _FLAGS if f in present]
    info["logical_cpus"] = os.cpu_count()
    info["usable_cpus"] = default_threads()
    return info


def derived_cpu_peak_gflops(cpu: dict[str, Any], cores: int) -> dict[str, Any] | None:
    """Theoretical float32 peak = cores × clock × FLOP/cycle, with its assumptions spelled out.

    FLOP/cycle = (vector bits / 32 lanes) × 2 (an FMA is 2 FLOPs) × 2 FMA units (true of recent
    Intel server cores and AMD Zen 4/5; older or smaller cores have 1). The clock is
    /proc/cpuinfo's "cpu MHz" — under a hypervisor often the nominal TSC rate, not the boost
    clock. Informational only: % of peak in the tables uses the *measured* peak.
    """
    if "mhz" not in cpu:
        return None
    flags = cpu.get("flags", [])
    bits = 512 if "avx512f" in flags else 256 if "avx2" in flags else 128
    per_cycle = bits // 32 * 2 * 2
    return {
        "gflops": cores * cpu["mhz"] / 1e3 * per_cycle,
        "how": f"{cores} cores × {cpu['mhz']:.0f} MHz × {per_cycle} FLOP/cycle "
        f"({bits}-bit vectors, FMA = 2 FLOPs, assumed 2 FMA units)",
    }


def load_average() -> list[float] | None:
    """1, 5 and 15-minute load averages: other processes competing for the cores show here."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def busy_warning(threads: int) -> str:
    """A warning line when other processes already keep the cores busy, else ''."""
    load = load_average()
    if load is None or load[0] < 0.5 * threads:
        return ""
    return (f"the machine is busy (1-min load average {load[0]:.1f} with {threads} threads "
            "benchmarked): other processes compete for the cores and a parallel region waits "
            "for its slowest thread — expect noisy, pessimistic numbers (torch's OpenMP pool "
            "suffers most); rerun on an idle machine")  # fmt: skip


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def describe(threads_report: dict[str, Any], devices: list[str]) -> dict[str, Any]:
    """Everything a reader needs to interpret the numbers."""
    import dualnet

    env: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "numpy": np.__version__,
        "dualnet": dualnet.__version__,
        "git_commit": _git_commit(),
        "cpu": cpu_info(),
        "threads": threads_report,
        "devices": devices,
        "load_average": load_average(),
        "frameworks": {},
        "precision": {},
    }
    for backend in available_backends():
        mod = native(backend)
        env["frameworks"].update(mod.versions())
        env["precision"][backend] = mod.precision()
        if "cuda" in devices:
            env.setdefault("gpu", {})[backend] = mod.device_name("cuda")
    return env


def cuda_devices() -> tuple[list[str], str]:
    """``(["cpu"] or ["cpu", "cuda"], reason)``: CUDA only when *both* frameworks see a GPU."""
    seen = {b: native(b).cuda_available() for b in available_backends()}
    if seen and all(seen.values()):
        return ["cpu", "cuda"], ""
    if not any(seen.values()):
        return ["cpu"], "no CUDA device visible to torch or TensorFlow: CUDA benchmarks skipped"
    missing = ", ".join(b for b, ok in seen.items() if not ok)
    return ["cpu"], f"CUDA benchmarks skipped: no GPU visible to {missing}"


def _fastest(calls: dict[str, Any], device: str, policy: Policy) -> tuple[str, float]:
    """The fastest sample among ``calls`` (name -> zero-arg callable), timed interleaved, each
    synchronised with its own framework's device sync.

    A peak is what the machine *can* do, so the fastest sample is used, not the median:
    interference from other processes only ever slows a sample down.
    """
    entrants = [
        Entrant(label=k, call=v, sync=native(k).sync_fn(device) if k in BACKENDS else _no_sync)
        for k, v in calls.items()
    ]
    for entrant in entrants:
        prepare(entrant, policy)
    run_interleaved(entrants, policy)

    timed = [(e.label, summarize(e.samples).min) for e in entrants if e.ok and e.samples]
    return min(timed, key=lambda item: item[1])


def measure_peaks(
    devices: list[str], dtypes: list[str], *, matmul_n: int, copy_bytes: int, policy: Policy
) -> dict[str, Any]:
    """Measured peaks per device: the best GFLOP/s of a large n×n matmul per dtype (numpy,
    torch and TensorFlow; numpy float32 only) and GB/s of a large buffer copy (numpy ``copyto``
    and torch ``copy_``), counting 2 bytes moved per byte copied (read + write, STREAM's "Copy"
    convention; write-allocate traffic is not counted). Each is the fastest sample of the best
    implementation (see :func:`_fastest`)."""
    peaks: dict[str, Any] = {}
    for device in devices:
        entry: dict[str, Any] = {"matmul": {}, "copy": None}
        for dtype in dtypes:
            calls: dict[str, Any] = {}
            if device == "cpu" and dtype == "float32":
                a = np.random.default_rng(0).standard_normal((matmul_n, matmul_n), np.float32)
                calls["numpy"] = lambda a=a: a @ a
            for backend in available_backends():
                mod = native(backend)
                if mod.supports_dtype(device, dtype):
                    calls[backend] = mod.matmul_call(matmul_n, dtype, device)
            who, median = _fastest(calls, device, policy)
            entry["matmul"][dtype] = {
                "gflops": 2 * matmul_n**3 / median / 1e9,
                "how": f"measured: fastest run of a {matmul_n}x{matmul_n} matmul, "
                f"{'/'.join(calls)} (best: {who})",
            }
        calls = {}
        if device == "cpu":
            src = np.ones(copy_bytes // 4, np.float32)
            dst = np.empty_like(src)
            calls["numpy"] = lambda dst=dst, src=src: np.copyto(dst, src)
        if "torch" in available_backends():
            calls["torch"] = native("torch").copy_call(copy_bytes, device)
        if calls:
            who, median = _fastest(calls, device, policy)
            entry["copy"] = {
                "gbs": 2 * copy_bytes / median / 1e9,
                "how": f"measured: fastest copy of a {copy_bytes / 2**20:.0f} MiB buffer, "
                f"{'/'.join(calls)} (best: {who}); bytes = 2 × size (read + write)",
            }
        peaks[device] = entry
    return peaks


def _no_sync() -> None:
    return None
