"""Shared fixtures. torch is imported before TensorFlow (the order known to work in one process)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

import dualnet as dn
from dualnet._backend import BACKENDS


def pytest_configure(config):
    """One intra-op thread per framework in every test process, as ``dualnet parity`` runs
    (``runner.pin_threads``): the catalogue's numbers do not depend on the thread count, and the
    ``-n auto`` workers of pytest-xdist do not oversubscribe the cores (torch's OpenMP regions
    stall badly when two processes spin two threads each on two cores)."""
    from dualnet.parity.runner import pin_threads

    pin_threads()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per backend, with that backend active."""
    with dn.use_backend(request.param):
        yield request.param


@pytest.fixture(params=("float32", "float64"))
def dtype(request):
    return request.param


# Hypothesis budgets (tests/test_properties.py): "ci", the default, runs a fixed, derandomized
# number of examples per test (the same ones on every run, no example database written);
# DUALNET_HYPOTHESIS_PROFILE=thorough searches many more, with fresh random draws each run.
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True, database=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
settings.register_profile(
    "thorough", max_examples=500, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)  # fmt: skip
settings.load_profile(os.environ.get("DUALNET_HYPOTHESIS_PROFILE", "ci"))
