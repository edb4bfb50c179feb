"""The ``dualnet`` command line: ``dualnet parity`` runs the parity catalogue."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _parity(args: argparse.Namespace) -> int:
    from dualnet import parity

    devices = None if args.device == "all" else [args.device]
    report = parity.run(
        args.k, dtypes=args.dtype, devices=devices, families=args.family, progress=not args.quiet
    )
    if not report.checks:
        print(f"no parity case matches -k {args.k!r}", file=sys.stderr)
        return 4
    if not args.quiet:
        print(report.table(failures_only=args.failures_only))
        print()
    from tabulate import tabulate

    print("Worst torch-vs-TensorFlow error per family and dtype:")
    print(tabulate(report.summary_by_family(),
                   headers=("family", "dtype", "checks", "max abs", "max rel", "where"),
                   disable_numparse=True))  # fmt: skip
    counts = ", ".join(f"{n} {s}" for s, n in sorted(report.counts().items()))
    print(f"\n{len(report.checks)} checks in {report.seconds:.1f}s: {counts}")
    for check in report.failures:
        print("\n" + check.explain(), file=sys.stderr)
    if args.json:
        report.write_json(args.json)
        print(f"wrote {args.json}")
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dualnet", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("parity", help="run the parity catalogue (torch vs tf.keras vs float64)")
    p.add_argument("-k", help="select cases like pytest -k, e.g. 'relu and float32'")
    p.add_argument("--json", metavar="PATH", help="also write every measurement as JSON")
    p.add_argument("--dtype", action="append", choices=("float32", "float64", "float16", "bfloat16"),
                   help="only this dtype (repeatable)")  # fmt: skip
    p.add_argument("--family", action="append", help="only this family (repeatable)")
    p.add_argument("--device", default="all", choices=("cpu", "cuda", "all"),
                   help="cpu, cuda or all available (default)")  # fmt: skip
    p.add_argument("--failures-only", action="store_true", help="print only failing rows")
    p.add_argument("-q", "--quiet", action="store_true", help="summary only, no progress")
    p.set_defaults(func=_parity)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
