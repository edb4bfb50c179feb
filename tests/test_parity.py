"""The parity catalogue as tests: one test per case x backend x dtype (x device).

``pytest -k "gelu and float32"`` runs what it says. Each backend is compared with the float64
reference in its own test; ``test_torch_vs_tensorflow`` compares the two frameworks directly.
Evaluations are cached per (case, dtype, device), so the three tests share one computation.
"""

from __future__ import annotations

import pytest

from dualnet._backend import BACKENDS
from dualnet.parity import catalogue, runner

# CUDA rows are generated only when both frameworks see a GPU (collection imports both
# frameworks to ask); otherwise one visible skip below says CUDA parity was not checked.
_DEVICES = tuple(runner.available_devices())
_PARAMS = [
    pytest.param(case.id, dtype, device, id=f"{case.family}-{case.name}-{dtype}-{device}",
                 marks=[pytest.mark.cuda] if device == "cuda" else [])
    for case in catalogue.load()
    for dtype in case.dtypes
    for device in _DEVICES
]  # fmt: skip


def test_cuda_parity_runs_when_a_gpu_is_present():
    if "cuda" not in _DEVICES:
        pytest.skip("no CUDA device visible to both frameworks: CUDA parity rows not generated")
    assert any(p.values[2] == "cuda" for p in _PARAMS)


def _checks(case_id: str, dtype: str, device: str):
    checks = runner.evaluate(case_id, dtype, device)
    skipped = [c for c in checks if c.status == "skip"]
    if skipped and len(skipped) == len(checks):
        pytest.skip(skipped[0].detail)
    errors = [c for c in checks if c.status == "error"]
    assert not errors, "\n".join(c.explain() for c in errors)
    return checks


@pytest.mark.parametrize("backend_name", BACKENDS)
@pytest.mark.parametrize(("case_id", "dtype", "device"), _PARAMS)
def test_vs_reference(case_id, dtype, device, backend_name):
    """Forward values and gradients of one backend against the float64 reference (and the
    initializers' round trips of their own portable draw, ``~draw``)."""
    keys = (f"{backend_name}~ref", f"{backend_name}~draw")
    failures = [
        f"{c.id}\n{c.comparisons[key].message(key)}"
        for c in _checks(case_id, dtype, device)
        for key in keys
        if key in c.comparisons and not c.comparisons[key].passed
    ]
    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize(("case_id", "dtype", "device"), _PARAMS)
def test_torch_vs_tensorflow(case_id, dtype, device):
    """Forward values and gradients of torch against TensorFlow."""
    key = "torch~tensorflow"
    failures = [
        f"{c.id}\n{c.comparisons[key].message(key)}"
        for c in _checks(case_id, dtype, device)
        if key in c.comparisons and not c.comparisons[key].passed
    ]
    assert not failures, "\n\n".join(failures)
