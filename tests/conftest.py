"""Shared fixtures. torch is imported before TensorFlow (the order known to work in one process)."""

from __future__ import annotations

import pytest

import dualnet as dn
from dualnet._backend import BACKENDS


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Run the test once per backend, with that backend active."""
    with dn.use_backend(request.param):
        yield request.param


@pytest.fixture(params=("float32", "float64"))
def dtype(request):
    return request.param
