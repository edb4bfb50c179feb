"""The layout promise: the framework implementations live in the top-level folder ``backends/``
and are installed and imported only as ``dualnet.backends.<framework>``; nothing is installed as
a top-level package ``backends``. Checked for the editable install the README's commands make
and for a regular wheel installed into a separate target directory."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = (
    "import importlib.util, sys, dualnet, dualnet.backends.torch as t, dualnet.layers;"
    "print(dualnet.__file__); print(t.__file__);"
    "print(importlib.util.find_spec('backends'))"
)


def _probe(cwd: Path, **env: str) -> list[str]:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         cwd=cwd, timeout=300, env={**os.environ, **env})  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()


def test_every_package_in_the_tree_is_listed():
    """pyproject.toml lists packages explicitly (the package-dir mapping needs it): a new
    subpackage that is not listed would be missing from the wheel."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = config["package-dir"]
    found = set()
    for prefix, folder in mapping.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base).parts
            found.add(".".join((prefix, *rel)))
    assert found == set(config["packages"]), sorted(found ^ set(config["packages"]))
    assert not (ROOT / "dualnet" / "backends").exists(), "backends/ must stay top-level"


def test_editable_install_imports_backends_as_dualnet_backends(tmp_path):
    dualnet_file, torch_file, top_level = _probe(tmp_path)
    assert Path(torch_file) == ROOT / "backends" / "torch" / "__init__.py"
    assert Path(dualnet_file) == ROOT / "dualnet" / "__init__.py"
    assert top_level == "None"  # no importable top-level `backends`


@pytest.mark.slow
def test_wheel_installs_backends_only_under_dualnet(tmp_path):
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(wheels), str(ROOT)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = wheels.glob("dualnet-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert not [n for n in names if n.startswith("backends/")], "a top-level backends/ in the wheel"
    assert "dualnet/backends/torch/layers/__init__.py" in names
    assert "dualnet/backends/tensorflow/layers/core.py" in names
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
         str(wheel)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    assert not (target / "backends").exists()
    # The target directory comes first on sys.path, ahead of the editable install's finder.
    dualnet_file, torch_file, top_level = _probe(tmp_path, PYTHONPATH=str(target))
    assert Path(dualnet_file).is_relative_to(target)
    assert Path(torch_file) == target / "dualnet" / "backends" / "torch" / "__init__.py"
    assert top_level == "None"
