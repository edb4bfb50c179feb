"""``dualnet parity -n N``: worker processes give the serial run's report, row for row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from dualnet.cli import main as cli_main
from dualnet.parity import runner

# Every family, cheap units and slow ones (the first relu6 evaluation warms the frameworks up,
# the training case takes seconds), so workers finish out of catalogue order.
SELECTION = (
    "float32 and (relu6 or mse-sum or glorot_uniform-64x32 or sgd-nesterov or dense-3x3 "
    "or mlp-8x32-relu)"
)
FAMILIES = {"activation", "initializer", "layer", "loss", "model", "optimizer", "training"}


def _report(path, *extra: str) -> dict:
    """The command's JSON report, from a fresh process (as a user runs it: the command pins
    its threads before a framework starts, which a test process cannot redo)."""
    argv = ["parity", "-k", SELECTION, "--device", "cpu", "-q", "--json", str(path), *extra]
    done = subprocess.run([sys.executable, "-m", "dualnet", *argv], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(path.read_text())
    del data["seconds"]  # the only field a parallel run may change
    return data


def test_parallel_report_equals_serial(tmp_path):
    serial = _report(tmp_path / "serial.json")
    parallel = _report(tmp_path / "parallel.json", "-n", "2")
    assert {c["family"] for c in serial["checks"]} == FAMILIES
    assert len(serial["checks"]) > 20
    # The same rows, values and details, in the serial (catalogue) order.
    assert parallel == serial


def _probe(delay: float, index: int) -> tuple[int, int, int, int, int, bool]:
    """What a worker sees: (index, pid, torch threads, TF intra-op threads, TF inter-op
    threads, whether torch was imported before TensorFlow)."""
    time.sleep(delay)
    import tensorflow as tf
    import torch

    modules = list(sys.modules)
    return (
        index,
        os.getpid(),
        torch.get_num_threads(),
        tf.config.threading.get_intra_op_parallelism_threads(),
        tf.config.threading.get_inter_op_parallelism_threads(),
        modules.index("torch") < modules.index("tensorflow"),
    )


def test_workers_are_separate_limited_processes_and_keep_the_order():
    # The first jobs sleep longest, so they finish last: the results must still be in order.
    jobs = [(0.4 * (3 - i), i) for i in range(4)]
    results = runner.map_in_workers(_probe, jobs, 2)
    threads = runner.THREADS
    assert [r[0] for r in results] == [0, 1, 2, 3]
    assert all(r[1] != os.getpid() for r in results)
    assert len({r[1] for r in results}) == 2
    assert all(r[2:5] == (threads, threads, threads) for r in results)
    assert all(r[5] for r in results), "torch must be imported before TensorFlow"


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "two"])
def test_worker_and_thread_counts_are_validated(bad):
    with pytest.raises(ValueError, match="workers"):
        runner.check_workers(bad)
    with pytest.raises(ValueError, match="threads"):
        runner.pin_threads(bad)


def test_auto_is_the_available_cores():
    assert runner.check_workers("auto") == runner.cores() >= 1


def test_pinning_threads_is_undone_for_torch_and_the_environment(monkeypatch):
    import torch

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    restore = runner.pin_threads(1)
    assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    restore()
    assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ


@pytest.mark.parametrize("value", ["0", "x", "-2"])
def test_cli_refuses_a_bad_worker_count(value, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["parity", "-n", value, "-k", "relu6"])
    assert exc.value.code == 2
    assert f"{value!r}: expected an integer >= 1 or 'auto'" in capsys.readouterr().err


def test_the_suite_runs_in_worker_processes():
    """``./run.sh test`` runs pytest under pytest-xdist with a worker per core (``-n auto``);
    the user's arguments come last, so ``./run.sh test -n 0`` runs serially."""
    root = Path(__file__).resolve().parents[1]
    jobs = [line.strip() for line in (root / "run.sh").read_text().splitlines()
            if line.strip().startswith("test)")]  # fmt: skip
    assert jobs == ['test) exec "$venv/bin/python" -m pytest -q -n auto "$@" ;;']
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    assert any(r.startswith("pytest-xdist") for r in extras["optional-dependencies"]["test"])
    import xdist  # noqa: F401  (installed by the test extras)
