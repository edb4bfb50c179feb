"""``dualnet bench``: time every kernel on torch and tf.keras; ``dualnet bench compare A B``.

Also run as ``python benchmarks/run.py``. See ``benchmarks/README.md`` for the methodology.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from dualnet.bench.kernels import GROUPS
from dualnet.bench.timing import Policy

QUICK_POLICY = Policy(rel_ci=0.05, min_samples=6, budget_s=0.2, block_s=2e-3, warmup=2,
                      warmup_s=0.01, gap_s=3e-3)  # fmt: skip
FULL_POLICY = Policy(rel_ci=0.01, min_samples=10, budget_s=2.0, block_s=5e-3, warmup=3,
                     warmup_s=0.05, gap_s=10e-3)  # fmt: skip
# Peak measurements: n for the n×n matmul, bytes for the copy (≥ 4× a 32 MiB L3).
QUICK_PEAK = {"matmul_n": 2048, "copy_bytes": 128 * 2**20}
FULL_PEAK = {"matmul_n": 2048, "copy_bytes": 256 * 2**20}
CUDA_PEAK = {"matmul_n": 8192, "copy_bytes": 1024 * 2**20}


def build_parser(prog: str = "dualnet bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="`%(prog)s compare OLD.json NEW.json` shows the changes between two runs.",
    )  # fmt: skip
    parser.add_argument("--quick", action="store_true",
                        help="small sizes, float32, eager + tf.function/XLA, loose precision "
                             "(about a minute on two cores)")  # fmt: skip
    parser.add_argument("-k", help="select kernels like pytest -k on ids such as "
                                   "'activation/relu[4x256]/forward'")  # fmt: skip
    parser.add_argument("--group", action="append",
                        choices=GROUPS,
                        help="only this group (repeatable)")  # fmt: skip
    parser.add_argument("--device", default="all", choices=("cpu", "cuda", "all"),
                        help="cpu, cuda, or all available (default)")  # fmt: skip
    parser.add_argument("--dtype", action="append",
                        choices=("float32", "bfloat16", "float16", "float64"),
                        help="only this dtype (repeatable; default: float32, plus bfloat16 on "
                             "CPUs with native bf16 and bfloat16/float16 on CUDA)")  # fmt: skip
    parser.add_argument("--mode", action="append", choices=("eager", "compiled"),
                        help="eager and/or compiled (torch.compile vs tf.function and XLA); "
                             "default both")  # fmt: skip
    tc = parser.add_mutually_exclusive_group()
    tc.add_argument(
        "--torch-compile",
        dest="torch_compile",
        action="store_true",
        default=None,
        help="include torch.compile (default: yes, except with --quick)",
    )
    tc.add_argument(
        "--no-torch-compile",
        dest="torch_compile",
        action="store_false",
        help="skip torch.compile (its compilation is slow on small CPUs)",
    )
    parser.add_argument("--threads", type=int, help="intra-op threads for both frameworks "
                        "(default: the usable cores)")  # fmt: skip
    parser.add_argument(
        "--inter-op", type=int, default=1, help="inter-op threads for both frameworks (default 1)"
    )
    parser.add_argument("--rel-ci", type=float,
                        help="target 95%% CI half-width of each median, relative (default 0.01; "
                             "--quick 0.05)")  # fmt: skip
    parser.add_argument(
        "--budget", type=float, help="seconds of sampling per measurement (default 2; --quick 0.2)"
    )
    parser.add_argument("--out", default="bench-out", help="output directory (default bench-out)")
    parser.add_argument("--json", help="JSON path (default OUT/bench.json)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument("--list", action="store_true", help="list the selected kernels and exit")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    return parser


def compare_main(argv: Sequence[str]) -> int:
    from dualnet.bench import report

    parser = argparse.ArgumentParser(
        prog="dualnet bench compare", description="median changes between two bench JSON files"
    )
    parser.add_argument("old")
    parser.add_argument("new")
    args = parser.parse_args(argv)
    table, counts = report.compare(report.load(args.old), report.load(args.new))
    print(table)
    print("\n" + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print("(faster/slower: the two medians' 95% CIs do not overlap; ~: within noise)")
    return 0


def main(argv: Sequence[str] | None = None, prog: str = "dualnet bench") -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["compare"]:
        return compare_main(argv[1:])
    args = build_parser(prog).parse_args(argv)
    return run_main(args)


def _policy(args: argparse.Namespace) -> Policy:
    from dataclasses import replace

    policy = QUICK_POLICY if args.quick else FULL_POLICY
    if args.rel_ci is not None:
        policy = replace(policy, rel_ci=args.rel_ci)
    if args.budget is not None:
        policy = replace(policy, budget_s=args.budget)
    return policy


def run_main(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    from dualnet.bench import environment, suite
    from dualnet.parity.runner import keyword_matcher

    match = keyword_matcher(args.k)
    kernels = [k for k in suite.kernels(quick=args.quick)
               if match(k.id) and (not args.group or k.group in args.group)]  # fmt: skip
    if args.list:
        for k in kernels:
            print(k.id)
        return 0
    if not kernels:
        print(f"no kernel matches -k {args.k!r} / --group {args.group}", file=sys.stderr)
        return 4

    # 1. Threads first: TensorFlow fixes its pools at its first op (environment.configure).
    threads = args.threads or environment.default_threads()
    threads_report = environment.configure(threads, args.inter_op)
    # 2. Devices.
    devices, why_not = environment.cuda_devices()
    notes = []
    if args.device == "cuda" and "cuda" not in devices:
        print(f"{why_not}; nothing to run on --device cuda.", file=sys.stderr)
        return 4
    if args.device != "all":
        devices = [args.device]
    elif why_not:
        notes.append(why_not)
    env = environment.describe(threads_report, devices)
    torch_compile = (not args.quick) if args.torch_compile is None else args.torch_compile

    from dualnet.bench import runner

    out_dir = Path(args.out)
    json_path = Path(args.json) if args.json else out_dir / "bench.json"
    modes = tuple(args.mode or runner.MODE_GROUPS)
    config = runner.Config(devices=tuple(devices),
                           dtypes=None if args.dtype is None else tuple(args.dtype),
                           modes=modes, torch_compile=torch_compile, policy=_policy(args),
                           json_path=json_path)  # fmt: skip
    flags = env["cpu"].get("flags", [])
    measurements = runner.plan(kernels, config, flags, args.quick)
    for line in _thread_lines(threads_report):
        notes.append(line)
    busy = environment.busy_warning(threads)
    if busy:
        notes.append(busy)
        print(f"warning: {busy}", file=sys.stderr)
    if not torch_compile and "compiled" in modes:
        notes.append(
            "torch.compile skipped (--quick default; --torch-compile to include it): "
            "the compiled rows have tf.function and XLA only, no torch/tf ratio"
        )
    if "compiled" in modes and any(k.pass_ == "train" for k in kernels):
        notes.append("training step: eager only; compiled rows unsupported — "
                     + suite.COMPILED_TRAIN_STEP)  # fmt: skip

    progress = _Progress(enabled=not args.quiet, total=len(measurements) + 2)
    with progress:
        progress.step("measuring peaks")
        dtypes_by_device = {d: sorted({dt for _, _, dev, dt in measurements if dev == d} |
                                      {"float32"}) for d in devices}  # fmt: skip
        peaks = {}
        for device in devices:
            sizes = CUDA_PEAK if device == "cuda" else QUICK_PEAK if args.quick else FULL_PEAK
            peaks.update(environment.measure_peaks([device], dtypes_by_device[device],
                                                   policy=QUICK_POLICY, **sizes))  # fmt: skip
        cpu = env["cpu"]
        peaks.setdefault("cpu", {})["derived"] = environment.derived_cpu_peak_gflops(cpu, threads)
        progress.step("checking the harness against torch.utils.benchmark")
        env["timer_check"] = runner.timer_agreement(threads, QUICK_POLICY, min_run_time=0.2)
        run = runner.Run(config, env, peaks)
        run.report["notes"] = notes
        report = run.execute(measurements, progress=progress.step)
    _print_report(report, notes)
    if not args.no_plots:
        from dualnet.bench.plots import write_plots

        for path in write_plots(report, out_dir):
            print(f"wrote {path}")
    print(f"wrote {json_path}")
    print(f"total {time.perf_counter() - started:.0f} s")
    if report["interrupted"]:
        print("interrupted: the JSON and tables hold what was measured before Ctrl-C")
        return 130
    failed = sorted({f"{r['kernel']}[{r['backend']}]" for r in report["results"]
                     if r["status"] == "failed"})  # fmt: skip
    if failed:  # the tables and JSON are written; the exit status says the run was not clean
        print(f"{len(failed)} entrant(s) failed: {', '.join(failed[:10])}"
              + (" ..." if len(failed) > 10 else ""), file=sys.stderr)  # fmt: skip
        return 1
    return 0


def _thread_lines(report: dict) -> list[str]:
    lines = []
    req = report["requested"]
    for backend in ("torch", "tensorflow"):
        r = report.get(backend)
        if r is None:
            continue
        lines.append(f"{backend} threads: intra-op {r['intra_op']}, inter-op {r['inter_op']} "
                     f"(requested {req['intra_op']}/{req['inter_op']})"
                     + (f" — {r['note']}" if r["note"] else ""))  # fmt: skip
    return lines


def _print_report(report: dict, notes: list[str]) -> None:
    from tabulate import tabulate

    from dualnet.bench import report as rep

    env = report["environment"]
    print(f"\n{env['cpu'].get('model_name')} | {env['frameworks']} | devices {env['devices']}")
    for device, peak in report["peaks"].items():
        for dtype, m in (peak.get("matmul") or {}).items():
            print(f"peak {device} {dtype}: {m['gflops']:.0f} GFLOP/s ({m['how']})")
        if peak.get("copy"):
            print(
                f"peak {device} bandwidth: {peak['copy']['gbs']:.1f} GB/s ({peak['copy']['how']})"
            )
        if peak.get("derived"):
            d = peak["derived"]
            print(f"derived {device} float32 peak (not used for %): {d['gflops']:.0f} GFLOP/s "
                  f"= {d['how']}")  # fmt: skip
    check = env.get("timer_check")
    if check:
        print(f"harness vs torch.utils.benchmark on {check['kernel']}: "
              f"{rep.fmt_time(check['harness_median_s'])} vs "
              f"{rep.fmt_time(check['torch_utils_benchmark_median_s'])} "
              f"(ratio {check['ratio']:.2f})")  # fmt: skip
    for group, table in rep.tables(report["results"]).items():
        print(f"\n== {group} ==\n{table}")
    summary = rep.ratio_summary(report["results"])
    if summary:
        print("\nRatios (time / time; torch/tensorflow > 1: TensorFlow faster; "
              "dualnet/native 1: no overhead):")  # fmt: skip
        print(tabulate(summary, headers=rep.SUMMARY_HEADERS, disable_numparse=True))
    statuses: dict[str, int] = {}
    for r in report["results"]:
        statuses[r["status"]] = statuses.get(r["status"], 0) + 1
    print("\nentries: " + ", ".join(f"{n} {s}" for s, n in sorted(statuses.items())))
    print("spread = IQR/2 relative to the median; * = precision target not reached in budget")
    for line in notes:
        print(f"note: {line}")


class _Progress:
    """A rich progress bar on stderr (no-op when disabled)."""

    def __init__(self, enabled: bool, total: int):
        self._progress = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,  # fmt: skip
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                      MofNCompleteColumn(), TimeElapsedColumn(),
                                      console=Console(stderr=True), transient=True)  # fmt: skip
            self._task = self._progress.add_task("starting", total=total)
        self._started = False

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)

    def step(self, description: str) -> None:
        if self._progress is None:
            return
        if self._started:
            self._progress.advance(self._task)
        self._started = True
        self._progress.update(self._task, description=description[:70])
