"""Select catalogue cases, evaluate them, and report (table and JSON)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from dualnet._backend import BACKENDS, backend_module, is_available
from dualnet.errors import bad_value
from dualnet.parity import catalogue
from dualnet.parity.cases import Case, Check

DEVICES = ("cpu", "cuda")
T = TypeVar("T")
# Intra-op threads of every process that evaluates cases: each worker of a parallel run, and the
# command's serial run (``dualnet parity`` pins itself before a framework starts). Kernels round
# differently with another thread count (torch's convolution gradients and LAPACK QR, TF's
# convolutions: last bits, ~1e-7 in float32), so one fixed count makes the report the same for
# every ``-n`` and every machine; and N single-threaded workers use N cores, never more.
THREADS = 1


def available_devices() -> list[str]:
    """``["cpu"]``, plus ``"cuda"`` when *both* frameworks see a GPU."""
    devices = ["cpu"]
    if all(backend_module(b).core.cuda_available() for b in BACKENDS):
        devices.append("cuda")
    return devices


_WORD = re.compile(r"\(|\)|[^\s()]+")


def keyword_matcher(expression: str | None):
    """A pytest ``-k``-like matcher: words joined by ``and``/``or``/``not`` and parentheses;
    each word matches when it is a substring of the candidate's id (case-insensitive)."""
    if not expression:
        return lambda text: True
    tokens = _WORD.findall(expression)
    words: list[str] = []
    parts: list[str] = []
    for token in tokens:
        if token in ("and", "or", "not", "(", ")"):
            parts.append(token)
        else:
            parts.append(f"_w[{len(words)}]")
            words.append(token.lower())
    code = " ".join(parts)
    try:
        compiled = compile(code, "<-k>", "eval")
        eval(compiled, {"__builtins__": {}}, {"_w": [True] * len(words)})  # syntax check
    except SyntaxError:
        raise bad_value("k", expression, "words joined by and/or/not and parentheses") from None

    def match(text: str) -> bool:
        low = text.lower()
        return bool(eval(compiled, {"__builtins__": {}}, {"_w": [w in low for w in words]}))

    return match


def select(
    k: str | None = None,
    *,
    dtypes: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
) -> list[tuple[Case, str, str]]:
    """The (case, dtype, device) triples to run, in catalogue order."""
    match = keyword_matcher(k)
    devices = list(devices) if devices is not None else available_devices()
    for d in devices:
        if d not in DEVICES:
            raise bad_value("device", d, f"one of {', '.join(DEVICES)}")
    out = []
    for case in catalogue.load():
        if families and case.family not in families:
            continue
        for dtype in case.dtypes:
            if dtypes and dtype not in dtypes:
                continue
            for device in devices:
                if match(f"{case.family} {case.name} {dtype} {device}"):
                    out.append((case, dtype, device))
    return out


@functools.cache
def evaluate(case_id: str, dtype: str, device: str) -> tuple[Check, ...]:
    """Evaluate one case (cached, so pytest's per-backend tests do not recompute it)."""
    case = {c.id: c for c in catalogue.load()}[case_id]
    if device == "cuda" and "cuda" not in available_devices():
        return (case.check("forward", dtype, device, "skip", detail="no CUDA device"),)
    return tuple(case.evaluate(dtype, device))


def environment() -> dict[str, Any]:
    env: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        # oneDNN custom ops change TF's CPU numerics ("slightly different numerical results").
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: TF default)"),
    }
    for b in BACKENDS:
        try:
            env[b] = backend_module(b).core.VERSION
        except ImportError as exc:
            env[b] = f"unavailable: {exc}"
    return env


@dataclass
class Report:
    """The rows of one parity run, with the time it took and the environment."""

    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    env: dict[str, Any] = field(default_factory=dict)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def ok(self) -> bool:
        return not self.failures

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out

    def rows(self, *, failures_only: bool = False) -> list[list[Any]]:
        rows = []
        for c in self.checks:
            if failures_only and not c.failed:
                continue
            comps = c.comparisons
            tol = next(iter(comps.values())).tolerance if comps else None
            errs = [
                "" if (d := comps.get(key)) is None else f"{d.max_abs:.2e}"
                for key in ("torch~tensorflow", "torch~ref", "tensorflow~ref")
            ]
            rows.append([
                c.family, c.case, c.check, c.dtype, c.device, *errs,
                "" if tol is None else f"{tol.rtol:.1e}/{tol.atol:.1e}",
                c.status, c.detail,
            ])  # fmt: skip
        return rows

    HEADERS = ("family", "case", "check", "dtype", "device", "torch~tf", "torch~ref", "tf~ref",
               "rtol/atol", "status", "detail")  # fmt: skip

    def table(self, *, failures_only: bool = False, fmt: str = "simple") -> str:
        from tabulate import tabulate

        return tabulate(self.rows(failures_only=failures_only), headers=self.HEADERS,
                        tablefmt=fmt, disable_numparse=True)  # fmt: skip

    def summary_by_family(self) -> list[list[Any]]:
        """Per family and dtype: the worst torch-vs-TensorFlow max abs / max rel error, and the
        worst error-to-bound ratio of any comparison (how close the family came to failing).
        Skipped rows compared nothing and are left out (a family/dtype with only skips has no
        row)."""
        worst: dict[tuple[str, str], list[Any]] = {}
        for c in self.checks:
            if c.status == "skip":  # nothing was compared: it must not look like zero error
                continue
            row = worst.setdefault(
                (c.family, c.dtype), [c.family, c.dtype, 0, 0.0, 0.0, "", 0.0, ""]
            )
            row[2] += 1
            d = c.comparisons.get("torch~tensorflow")
            if d is not None:
                if d.max_abs >= row[3]:
                    row[3], row[5] = d.max_abs, f"{c.case}/{c.check}"
                row[4] = max(row[4], d.max_rel)
            for key, diff in c.comparisons.items():
                if diff.worst_ratio > row[6]:
                    row[6], row[7] = diff.worst_ratio, f"{c.case}/{c.check} ({key})"
        return [[f, dt, n, f"{a:.2e}", f"{r:.2e}", where, f"{q:.2f}", qwhere]
                for f, dt, n, a, r, where, q, qwhere in worst.values()]  # fmt: skip

    SUMMARY_HEADERS = ("family", "dtype", "checks", "torch~tf max abs", "max rel", "where",
                       "worst err/bound", "where")  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "checks": [c.to_dict() for c in self.checks],
        }

    def write_json(self, path: str | Path) -> None:
        """Write atomically: a failure midway leaves no half-written file."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        tmp.replace(path)


def run(
    k: str | None = None,
    *,
    dtypes: Sequence[str] | None = None,
    devices: Sequence[str] | None = None,
    families: Sequence[str] | None = None,
    progress: bool = False,
    workers: int = 1,
) -> Report:
    """Run the selected part of the catalogue and return a :class:`Report`.

    ``workers > 1`` evaluates the selected (case, dtype, device) units in that many worker
    processes (see :func:`map_in_workers`), each with :data:`THREADS` intra-op threads; the rows
    are the serial run's, in its order, and equal to it when the serial process is pinned to
    the same count (:func:`pin_threads`, as ``dualnet parity`` does).
    """
    workers = check_workers(workers)
    selected = select(k, dtypes=dtypes, devices=devices, families=families)
    start = time.perf_counter()
    checks: list[Check] = []
    if workers > 1 and len(selected) > 1:
        for rows in evaluate_in_workers(selected, workers, progress=progress):
            checks.extend(rows)
    else:
        for case, dtype, device in _progress(selected, progress):
            checks.extend(evaluate(case.id, dtype, device))
    return Report(checks=checks, seconds=time.perf_counter() - start, env=environment())


def cores() -> int:
    """The CPU cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no affinity call
        return os.cpu_count() or 1


def check_workers(workers: object) -> int:
    """``workers`` as a count >= 1; ``"auto"`` is :func:`cores`."""
    if workers == "auto":
        return cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise bad_value("workers", workers, "an integer >= 1 or 'auto'")
    return workers


def evaluate_in_workers(
    units: Sequence[tuple[Case, str, str]], workers: int, *, progress: bool = False
) -> list[tuple[Check, ...]]:
    """:func:`evaluate` for every (case, dtype, device) unit in ``workers`` processes: one
    tuple of rows per unit, in the order of ``units`` (the serial order)."""
    jobs = [(case.id, dtype, device) for case, dtype, device in units]
    return map_in_workers(evaluate, jobs, workers, progress=progress)


def map_in_workers(
    fn: Callable[..., T], jobs: Sequence[tuple[Any, ...]], workers: int, *,
    progress: bool = False,
) -> list[T]:  # fmt: skip
    """``[fn(*job) for job in jobs]`` computed in ``workers`` processes, in the order of
    ``jobs`` whatever order the workers finish in.

    The processes are *spawned*, never forked: a fork of a process whose torch/TensorFlow
    thread pools exist inherits locks held by threads that do not exist in the child. Each
    worker imports torch before TensorFlow (through ``backend_module``) and runs both
    frameworks with :data:`THREADS` intra-op threads (:func:`pin_threads`), so N workers keep N
    cores busy without oversubscribing them. ``fn`` must be picklable (a module-level
    function). A job that raises re-raises here, as it would in a serial loop, and no further
    job starts.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    workers = min(check_workers(workers), max(len(jobs), 1))
    results: list[Any] = [None] * len(jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=pin_threads,
                             initargs=(THREADS,)) as pool:  # fmt: skip
        futures = {pool.submit(fn, *job): i for i, job in enumerate(jobs)}
        try:
            for future in _progress_done(as_completed(futures), len(jobs), progress):
                results[futures[future]] = future.result()
        except BaseException:
            pool.shutdown(cancel_futures=True)
            raise
    return results


def pin_threads(threads: int = THREADS) -> Callable[[], None]:
    """Run torch and TensorFlow with ``threads`` intra-op (and inter-op) threads in this
    process, importing torch before TensorFlow; returns a function that gives torch and the
    environment their previous settings back.

    A worker's initializer, and the first thing ``dualnet parity`` does. The environment
    variables come first: OpenMP and TensorFlow read them when their thread pools start; the
    API calls set the same limits where torch's pool exists already. TensorFlow's count is
    fixed for the life of the process once its runtime has started: pinned before that, it
    stays pinned; called after that, its count stays what it was."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise bad_value("threads", threads, "an integer >= 1")
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
             "TF_NUM_INTEROP_THREADS")  # fmt: skip
    saved_env = {name: os.environ.get(name) for name in names}
    for name in names:
        os.environ[name] = str(threads)
    for backend in BACKENDS:  # ("torch", "tensorflow"): torch is imported first
        if is_available(backend):
            backend_module(backend)
    saved_torch: int | None = None
    if is_available("torch"):
        import torch

        saved_torch = torch.get_num_threads()
        torch.set_num_threads(threads)
        with contextlib.suppress(RuntimeError):  # only settable before inter-op work starts
            torch.set_num_interop_threads(threads)
    if is_available("tensorflow"):
        import tensorflow as tf

        with contextlib.suppress(RuntimeError):  # only settable before TF's runtime starts
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)

    def restore() -> None:
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if saved_torch is not None:
            import torch

            torch.set_num_threads(saved_torch)

    return restore


def _progress(items: list[tuple[Case, str, str]], enabled: bool) -> Iterable[tuple[Case, str, str]]:
    if not enabled or not sys.stderr.isatty():
        yield from items
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("parity", total=len(items))
        for item in items:
            bar.update(task, description=f"{item[0].id} {item[1]}")
            yield item
            bar.advance(task)


def _progress_done(done: Iterable[Any], total: int, enabled: bool) -> Iterable[Any]:
    """Finished futures, advancing a progress bar (the parallel run's)."""
    if not enabled or not sys.stderr.isatty():
        yield from done
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task("parity (parallel)", total=total)
        for item in done:
            yield item
            bar.advance(task)
