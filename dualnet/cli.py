"""The ``dualnet`` command line: ``dualnet check PATH`` checks that a model gives the same numbers
on torch and tf.keras, ``dualnet parity`` runs the parity catalogue, ``dualnet bench`` the
benchmarks (``dualnet bench --help``), ``dualnet plot`` draws the figures."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from dualnet.dtypes import FLOAT_DTYPES


def _parity(args: argparse.Namespace) -> int:
    from dualnet.parity.runner import pin_threads

    # Before any framework starts: one intra-op thread here as in every worker, so the report
    # does not depend on -n or on the machine's core count (see runner.THREADS).
    restore = pin_threads()
    try:
        return _parity_report(args)
    finally:
        restore()


def _parity_report(args: argparse.Namespace) -> int:
    from dualnet import parity

    devices = None if args.device == "all" else [args.device]
    if args.device == "cuda":
        from dualnet.parity.runner import available_devices

        if "cuda" not in available_devices():
            # An asked-for device that is not there is an error, not a report of skips.
            print("dualnet parity: --device cuda: no CUDA device visible to both torch and "
                  "TensorFlow here (use --device cpu or all).", file=sys.stderr)  # fmt: skip
            return 2
    report = parity.run(
        args.k, dtypes=args.dtype, devices=devices, families=args.family,
        progress=not args.quiet, workers=args.workers,
    )  # fmt: skip
    if not report.checks:
        print(f"no parity case matches -k {args.k!r}", file=sys.stderr)
        return 4
    if not args.quiet:
        print(report.table(failures_only=args.failures_only))
        print()
    from tabulate import tabulate

    print("Worst torch-vs-TensorFlow error per family and dtype:")
    print(tabulate(report.summary_by_family(), headers=report.SUMMARY_HEADERS,
                   disable_numparse=True))  # fmt: skip
    if not args.k and not args.family:
        _print_divergences()
        _print_conventions()
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items()))
    print(f"\n{len(report.checks)} checks in {report.seconds:.1f}s: {counts}")
    for check in report.failures:
        print("\n" + check.explain(), file=sys.stderr)
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0 if report.ok else 1


def _print_divergences() -> None:
    """The native ops known to depart from the math, each measured now, and dualnet's answer."""
    from tabulate import tabulate

    from dualnet.parity.divergences import measure

    rows = [
        [d.id, d.api, d.dtype, f"{e:.2g}" if isinstance(e, float) else e, d.dualnet]
        for d, e in measure()
    ]
    print("\nNative ops that depart from the math (measured now), and what dualnet does:")
    print(tabulate(rows, headers=("id", "native API", "dtype", "native error", "dualnet does"),
                   maxcolwidths=[None, 28, None, None, 48], disable_numparse=True))  # fmt: skip


def _print_conventions() -> None:
    """The torch/Keras layer conventions, torch's default measured against dualnet's rule."""
    from tabulate import tabulate

    from dualnet.parity.conventions import measure

    rows = [
        [c.id, c.keras, c.torch, f"{e:.2g}" if isinstance(e, float) else e, c.dualnet]
        for c, e in measure()
    ]
    print("\nLayer conventions where torch and Keras split (torch's default vs dualnet's rule, "
          "measured now):")  # fmt: skip
    print(tabulate(rows, headers=("id", "Keras", "torch", "torch off by", "dualnet does"),
                   maxcolwidths=[None, 30, 30, None, 36], disable_numparse=True))  # fmt: skip


def _workers(text: str) -> int:
    """``-n``'s value: a count >= 1, or ``auto`` for the cores available."""
    from dualnet.parity.runner import check_workers

    try:
        return check_workers("auto" if text == "auto" else int(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an integer >= 1 or 'auto'") from None


def _shape(text: str) -> tuple[int, ...]:
    """``--input-shape``'s value: comma-separated positive ints, e.g. ``3,32,32``."""
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if not shape or any(d < 1 for d in shape):
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers separated by "
                                         "commas, e.g. 3,32,32 (no batch dimension)")  # fmt: skip
    return shape


# Exit statuses of `dualnet check`.
CHECK_PASS, CHECK_MISMATCH, CHECK_UNSUPPORTED, CHECK_ERROR = 0, 1, 2, 3


def _check(args: argparse.Namespace) -> int:
    """Check one model; 0 pass, 1 mismatch, 2 unsupported model, 3 any other error."""
    from dualnet.errors import UnsupportedModelError
    from dualnet.parity.check import check_model

    shapes = args.input_shape
    try:
        report = check_model(
            args.path, args.inputs, weights=args.weights,
            input_shape=None if not shapes else shapes[0] if len(shapes) == 1 else shapes,
            input_dtype=args.input_dtype, batch_size=args.batch_size, seed=args.seed,
            sequence_length=args.sequence_length, training=not args.no_training,
            arbiter=not args.no_arbiter, search_path=args.search_path,
        )  # fmt: skip
    except UnsupportedModelError as exc:
        n = len(exc.problems)
        print(f"dualnet check: {args.path}: unsupported model ({n} "
              f"problem{'' if n == 1 else 's'}):", file=sys.stderr)  # fmt: skip
        for problem in exc.problems:
            print(f"  - {problem}", file=sys.stderr)
        return CHECK_UNSUPPORTED
    except (OSError, ValueError, TypeError, ImportError, AttributeError, RuntimeError) as exc:
        # A missing file, a bad argument, a module that fails to import, a file Keras or
        # torch cannot read: one clear line, no traceback.
        print(f"dualnet check: {args.path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return CHECK_ERROR
    print(report.table(failures_only=args.failures_only, all_rows=args.all_rows))
    if args.json:
        try:
            report.to_json(args.json)
        except OSError as exc:  # an unwritable path: an error, not a mismatch
            print(f"dualnet check: --json {args.json}: {exc}", file=sys.stderr)
            return CHECK_ERROR
        print(f"wrote {args.json}")
    return CHECK_PASS if report.ok else CHECK_MISMATCH


_FIGURES = ("activations", "training", "gradients")


def _plot(args: argparse.Namespace) -> int:
    """Write the requested figures as DIR/<name>.png."""
    from pathlib import Path

    from dualnet import figures

    draw = {"activations": figures.activation_curves, "training": figures.training_curves,
            "gradients": figures.gradient_norms}  # fmt: skip
    unknown = [name for name in args.figures if name not in _FIGURES]
    if unknown:
        print(f"dualnet plot: unknown figure {unknown[0]!r}; choose from "
              f"{', '.join(_FIGURES)}", file=sys.stderr)  # fmt: skip
        return 2
    for name in args.figures or _FIGURES:
        path = draw[name](Path(args.out) / f"{name}.png")
        print(f"wrote {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualnet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "check", help="check a model gives the same outputs and gradients on torch and tf.keras "
        "(exit 0 pass, 1 mismatch, 2 unsupported model, 3 other error)",
        description="Import a model, build its twin on the other framework, run both and the "
        "float64 reference in inference and training mode, and compare every layer's output "
        "and every weight's gradient against derived tolerances. Exit status: 0 pass (kink "
        "flips included), 1 mismatch, 2 unsupported model (every problem listed), 3 any other "
        "error; argparse's usage errors exit 2 as well.",
    )  # fmt: skip
    p.add_argument("path", metavar="PATH",
                   help="a .keras file, a dualnet .safetensors file, or a torch "
                   "'package.module:factory' that returns the nn.Module")  # fmt: skip
    p.add_argument("--inputs", metavar="FILE.npz",
                   help="inputs (np.load, allow_pickle=False): one array, or one per model input "
                   "(by input name, else in order); default: seeded random inputs")  # fmt: skip
    p.add_argument("--json", metavar="PATH", help="also write the whole report as JSON")
    p.add_argument("--weights", metavar="FILE", help="torch factories: a state_dict loaded "
                   "with torch.load(weights_only=True)")  # fmt: skip
    p.add_argument("--input-shape", type=_shape, action="append", metavar="D1,D2,...",
                   help="torch factories: the input shape without the batch, e.g. 3,32,32 "
                   "(repeat for several inputs; not needed with --inputs)")  # fmt: skip
    p.add_argument("--input-dtype", default="float32", help="torch factories: the example "
                   "inputs' dtype (int64 for token ids)")  # fmt: skip
    p.add_argument("--path", dest="search_path", action="append", metavar="DIR",
                   help="torch factories: a directory to import the module from (repeatable; "
                   "the current directory is always searched)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=8, help="random inputs' batch (default 8)")
    p.add_argument("--sequence-length", type=int, default=8, help="random inputs' length "
                   "where the model leaves one open (default 8)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs and of the "
                   "gradient's projection (default 0)")  # fmt: skip
    p.add_argument("--no-training", action="store_true", help="inference mode only")
    p.add_argument("--no-arbiter", action="store_true", help="do not judge float32 rows beyond "
                   "their bound against the model's float64 copies (they fail)")  # fmt: skip
    p.add_argument("--failures-only", action="store_true",
                   help="print only the rows that fail (and the verdict)")  # fmt: skip
    p.add_argument(
        "--all",
        dest="all_rows",
        action="store_true",
        help="print every row "
        "(weights identical on both sides are folded into one line by default)",
    )
    p.set_defaults(func=_check)
    p = sub.add_parser("parity", help="run the parity catalogue (torch vs tf.keras vs float64)")
    p.add_argument("-k", help="select cases like pytest -k, e.g. 'relu and float32'")
    p.add_argument("--json", metavar="PATH", help="also write every measurement as JSON")
    p.add_argument("--dtype", action="append", choices=FLOAT_DTYPES,
                   help="only this dtype (repeatable)")  # fmt: skip
    p.add_argument("--family", action="append", help="only this family (repeatable)")
    p.add_argument("--device", default="all", choices=("cpu", "cuda", "all"),
                   help="cpu, cuda or all available (default)")  # fmt: skip
    p.add_argument("--failures-only", action="store_true", help="print only failing rows")
    p.add_argument("-n", "--workers", type=_workers, default=1, metavar="N",
                   help="worker processes (default 1: serial; 'auto' = the cores available). "
                   "Each worker evaluates whole cases; every process, serial or worker, runs "
                   "torch and TensorFlow with one intra-op thread, so N workers use N cores "
                   "without oversubscribing and the report equals the serial one, rows in the "
                   "same order")  # fmt: skip
    p.add_argument("-q", "--quiet", action="store_true", help="summary only, no progress")
    p.set_defaults(func=_parity)
    p = sub.add_parser("plot", help="draw figures: activations, training curves, gradient "
                       "norms (torch vs tf.keras)")  # fmt: skip
    # No `choices=` with nargs="*": argparse would check the empty default against them.
    p.add_argument("figures", nargs="*", metavar="FIGURE",
                   help=f"one or more of {', '.join(_FIGURES)} (default: all)")  # fmt: skip
    p.add_argument("--out", default=".", metavar="DIR", help="directory for <figure>.png")
    p.set_defaults(func=_plot)
    # Listed here for `dualnet --help`; main() hands everything after `bench` to the bench
    # command's own parser (dualnet.bench.cli, shared with benchmarks/run.py).
    sub.add_parser("bench", add_help=False, help="time kernels on torch and tf.keras "
                   "(`dualnet bench --help`; `dualnet bench compare OLD NEW`)")  # fmt: skip
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        from dualnet.bench.cli import main as bench_main

        return bench_main(argv[1:])
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
