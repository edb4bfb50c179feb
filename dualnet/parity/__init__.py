"""The parity suite: a catalogue of cases run on torch, TensorFlow and a float64 reference.

    from dualnet import parity
    report = parity.run(k="relu and float32")
    print(report.table())

    print(parity.compare(model, x, y, loss="mse"))      # where do the backends part ways?
    print(parity.compare_training(model, x, y, loss="mse", optimizer="adam", steps=100))
    print(parity.check_model("model.keras"))            # does it port? (``dualnet check``)

See :mod:`dualnet.parity.cases` (Note [Parity cases]) for what a case is,
:mod:`dualnet.parity.tolerance` for the tolerance policy and :mod:`dualnet.parity.locate` for
the divergence locator, :mod:`dualnet.parity.check` for ``check_model``.
"""

from typing import Any

from dualnet.parity.cases import Case, Check, FunctionCase
from dualnet.parity.check import CheckReport, check_model
from dualnet.parity.compare import Diff
from dualnet.parity.compare import compare as compare_arrays
from dualnet.parity.locate import (
    ModelReport,
    TrainingReport,
    compare_model,
    compare_training,
    layer_calls,
    layer_outputs,
)
from dualnet.parity.runner import Report, available_devices, run, select
from dualnet.parity.tolerance import Growth, Tolerance


def compare(*args: Any, **kwargs: Any) -> Any:
    """Two forms under one name.

    * ``compare(model, x, y=None, loss=None, *, other=None, tolerance=None)`` with a dualnet
      model first: the divergence locator, :func:`dualnet.parity.locate.compare_model`
      (a :class:`ModelReport`).
    * ``compare(actual, expected, tolerance, *, mask=None)`` with arrays: the element-wise
      comparison, :func:`dualnet.parity.compare.compare` (a :class:`Diff`; also available as
      ``compare_arrays``).
    """
    first = args[0] if args else kwargs.get("model", kwargs.get("actual"))
    from dualnet.models import Model

    if isinstance(first, Model):
        return compare_model(*args, **kwargs)
    return compare_arrays(*args, **kwargs)


__all__ = [
    "Case", "Check", "CheckReport", "Diff", "FunctionCase", "Growth", "ModelReport", "Report",
    "Tolerance", "TrainingReport", "available_devices", "check_model", "compare",
    "compare_arrays", "compare_model", "compare_training", "layer_calls", "layer_outputs", "run",
    "select",
]  # fmt: skip
