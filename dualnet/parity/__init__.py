"""The parity suite: a catalogue of cases run on torch, TensorFlow and a float64 reference.

    from dualnet import parity
    report = parity.run(k="relu and float32")
    print(report.table())

See :mod:`dualnet.parity.cases` (Note [Parity cases]) for what a case is and
:mod:`dualnet.parity.tolerance` for the tolerance policy.
"""

from dualnet.parity.cases import Case, Check, FunctionCase
from dualnet.parity.compare import Diff, compare
from dualnet.parity.runner import Report, available_devices, run, select
from dualnet.parity.tolerance import Tolerance

__all__ = [
    "Case", "Check", "Diff", "FunctionCase", "Report", "Tolerance", "available_devices",
    "compare", "run", "select",
]  # fmt: skip
