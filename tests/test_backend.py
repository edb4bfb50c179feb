"""Backend selection, lazy imports, tensor conversion."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )  # fmt: skip


def test_import_loads_no_framework():
    code = (
        "import sys, dualnet as dn; dn.get_backend(); dn.set_backend('tf'); dir(dn);"
        "print(sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))"
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_env_variable_selects_backend():
    out = _run("import dualnet as dn; print(dn.get_backend())", DUALNET_BACKEND="tf")
    assert out.stdout.strip() == "tensorflow", out.stderr


def test_env_variable_bad_value_is_clear():
    out = _run("import dualnet", DUALNET_BACKEND="jax")
    assert out.returncode != 0
    assert "DUALNET_BACKEND" in out.stderr and "'jax'" in out.stderr


def test_default_is_torch():
    out = _run("import dualnet as dn; print(dn.get_backend())", DUALNET_BACKEND="")
    assert out.stdout.strip() == "torch"


def test_set_and_scoped_backend():
    start = dn.get_backend()
    with dn.use_backend("tf"):
        assert dn.get_backend() == "tensorflow"
        with dn.use_backend("torch"):
            assert dn.get_backend() == "torch"
        assert dn.get_backend() == "tensorflow"
    assert dn.get_backend() == start


def test_scoped_backend_restored_on_exception():
    start = dn.get_backend()
    with pytest.raises(RuntimeError), dn.use_backend("tensorflow"):
        raise RuntimeError("boom")
    assert dn.get_backend() == start


@pytest.mark.parametrize("bad", ["jax", "", None, 3])
def test_unknown_backend_names_value(bad):
    with pytest.raises(ValueError, match="backend=") as info:
        dn.set_backend(bad)
    assert repr(bad) in str(info.value)
    assert "'torch', 'tensorflow'" in str(info.value)


def test_missing_framework_error_names_package(monkeypatch):
    from dualnet import _backend

    monkeypatch.setattr(_backend, "is_available", lambda name: False)
    monkeypatch.delitem(sys.modules, "dualnet.backends.tensorflow", raising=False)
    with pytest.raises(dn.BackendUnavailableError, match="pip install tensorflow"):
        _backend.backend_module("tensorflow")


def test_native_tensor_types(backend):
    y = dn.activations.relu(np.array([-1.0, 2.0], dtype=np.float32))
    module = type(y).__module__
    assert module.startswith("torch" if backend == "torch" else "tensorflow"), module
    np.testing.assert_array_equal(dn.to_numpy(y), [0.0, 2.0])


def test_list_input_defaults_to_float32(backend):
    y = dn.activations.relu([-1.0, 2.0])
    assert dn.to_numpy(y).dtype == np.float32


def test_numpy_input_keeps_dtype(backend):
    y = dn.activations.tanh(np.array([0.5], dtype=np.float64))
    assert dn.to_numpy(y).dtype == np.float64


def test_foreign_tensor_is_refused():
    with dn.use_backend("torch"):
        t = dn.activations.relu([1.0])
    with dn.use_backend("tensorflow"), pytest.raises(TypeError, match="torch tensor"):
        dn.activations.relu(t)
