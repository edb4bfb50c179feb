"""``dualnet check`` on the command line: sources (a .keras file, a torch factory, a dualnet
file), inputs files, JSON, the table and the exit status."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from frameworks import keras as _keras
from frameworks import torch as _torch
from test_check import _build, _simulated_flip

from dualnet.cli import main

# ------------------------------------------------------------------------------------ CLI


def _keras_file(tmp_path, *, broken: bool = False):
    keras = _keras()
    model = keras.Sequential([
        keras.Input((6, 6, 2)),
        keras.layers.Conv2D(3, 3, activation="relu", name="conv"),
        keras.layers.BatchNormalization(name="bn"),
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(2, name="head"),
    ], name="small")  # fmt: skip
    if broken:  # layers dualnet does not have: every one must be listed
        model = keras.Sequential([
            keras.Input((6, 6, 2)), keras.layers.RandomFlip(name="flip"),
            keras.layers.Flatten(), keras.layers.ActivityRegularization(name="scale"),
        ])  # fmt: skip
    path = tmp_path / ("broken.keras" if broken else "small.keras")
    model.save(path)
    return path


def test_cli_keras_file_passes_and_writes_json(tmp_path, capsys):
    path = _keras_file(tmp_path)
    out = tmp_path / "check.json"
    assert main(["check", str(path), "--json", str(out), "--batch-size", "3"]) == 0
    text = capsys.readouterr().out
    assert "verdict: pass" in text and "times: import" in text
    data = json.loads(out.read_text())
    assert data["ok"] and data["verdict"].startswith("pass")
    assert data["kind"] == "keras" and data["backends"] == ["tensorflow", "torch"]
    assert any(r["kind"] == "original" and r["passed"] for r in data["rows"])
    assert {r["layer"] for r in data["rows"] if r["kind"] == "gradient"} == {"conv", "bn",
                                                                              "head"}  # fmt: skip
    assert set(data["times"]) >= {"import", "twin build"}


def test_cli_inputs_file(tmp_path, capsys):
    path = _keras_file(tmp_path)
    x = np.random.default_rng(5).standard_normal((2, 6, 6, 2)).astype(np.float32)
    np.savez(tmp_path / "x.npz", x)
    assert main(["check", str(path), "--inputs", str(tmp_path / "x.npz"), "--json",
                 str(tmp_path / "c.json")]) == 0  # fmt: skip
    data = json.loads((tmp_path / "c.json").read_text())
    assert data["inputs"] == [{"shape": [2, 6, 6, 2], "dtype": "float32"}]


def test_cli_unsupported_keras_model_lists_every_problem(tmp_path, capsys):
    path = _keras_file(tmp_path, broken=True)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unsupported model" in err
    assert "2 problems" in err
    assert "'flip'" in err and "'scale'" in err  # both layers named, not only the first


TORCH_MODULE = """
import torch
from torch import nn


def build():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                         nn.Flatten(), nn.Linear(4 * 5 * 5, 3))
"""


def test_cli_torch_factory_with_weights(tmp_path, monkeypatch, capsys):
    torch = _torch()
    (tmp_path / "mynets.py").write_text(textwrap.dedent(TORCH_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    import mynets

    module = mynets.build()
    for p in module.parameters():
        torch.nn.init.normal_(p, 0.0, 0.3)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    out = tmp_path / "t.json"
    code = main(["check", "mynets:build", "--path", str(tmp_path), "--weights",
                 str(tmp_path / "w.pt"), "--input-shape", "2,5,5", "--json", str(out)])  # fmt: skip
    assert code == 0, capsys.readouterr()
    data = json.loads(out.read_text())
    assert data["kind"] == "torch" and data["backends"] == ["torch", "tensorflow"]
    assert any(r["kind"] == "original" and r["passed"] for r in data["rows"])


def test_cli_mismatch_exits_1(tmp_path, monkeypatch, capsys):
    """A saved check of a model whose twin disagrees: the CLI's exit status is 1 (a dualnet
    factory module standing in for an importer: check_model given a broken twin)."""
    import dualnet.parity.check as check

    model, twin, x = _simulated_flip()
    w = twin.get_weights()
    w[0][0, 0] += 0.5
    twin.set_weights(w)
    real = check.check_model
    monkeypatch.setattr(check, "check_model", lambda *a, **k: real(model, x, other=twin))
    assert main(["check", "anything.keras"]) == 1
    assert "FAIL: first departure at layer 'hidden'" in capsys.readouterr().out


def test_cli_errors_exit_3_with_one_line(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.keras")]) == 3
    err = capsys.readouterr().err
    assert "no such file" in err and "Traceback" not in err
    (tmp_path / "junk.bin").write_bytes(b"not a model")
    assert main(["check", str(tmp_path / "junk.bin")]) == 3
    assert "neither" in capsys.readouterr().err


def test_cli_unsupported_error_from_a_factory_exits_2(tmp_path, capsys):
    """The CLI's handling of UnsupportedModelError (whoever raises it): exit 2, every problem
    printed."""
    (tmp_path / "refuses.py").write_text(textwrap.dedent('''
        from dualnet.errors import UnsupportedModelError

        def build():
            raise UnsupportedModelError("module", ["node a: op x (supported: y)",
                                                   "node b: op z (supported: y)"])
    '''))  # fmt: skip
    assert main(["check", "refuses:build", "--path", str(tmp_path), "--input-shape", "3"]) == 2
    err = capsys.readouterr().err
    assert "2 problems" in err and "node a: op x" in err and "node b: op z" in err


def test_cli_dualnet_file(tmp_path, capsys):
    model = _build("lenet", "torch")
    path = tmp_path / "lenet.safetensors"
    model.save(path)
    assert main(["check", str(path), "--batch-size", "2", "--no-training"]) == 0
    assert "(dualnet-file:" in capsys.readouterr().out


def test_cli_all_rows_and_no_arbiter(tmp_path, capsys):
    path = _keras_file(tmp_path)
    assert main(["check", str(path), "--batch-size", "3", "--no-training"]) == 0
    folded = capsys.readouterr().out
    assert "tensors, identical on both backends (--all lists each)" in folded
    assert main(["check", str(path), "--batch-size", "3", "--no-training", "--all",
                 "--no-arbiter"]) == 0  # fmt: skip
    listed = capsys.readouterr().out
    assert "(--all lists each)" not in listed
    assert sum(" weight " in line for line in listed.splitlines()) >= 3


# ---------------------------------------------------------------- sources leave things as found


def test_inputs_file_is_matched_by_input_name(tmp_path):
    import dualnet as dn
    from dualnet.parity.check import check_model

    with dn.use_backend("torch"):
        a, b = dn.Input((3,), name="a"), dn.Input((5,), name="b")
        h = dn.layers.Concatenate()([dn.layers.Dense(2)(a), dn.layers.Dense(2)(b)])
        model = dn.Model([a, b], dn.layers.Dense(1)(h))
    rng = np.random.default_rng(0)
    # Keys in the other order: matched by name, not by position.
    np.savez(tmp_path / "x.npz", b=rng.standard_normal((4, 5)).astype("float32"),
             a=rng.standard_normal((4, 3)).astype("float32"))  # fmt: skip
    report = check_model(model, tmp_path / "x.npz", training=False)
    assert report.ok and [i["shape"] for i in report.inputs] == [[4, 3], [4, 5]]


def test_torch_sources_leave_the_module_and_sys_path_as_found(tmp_path):
    import sys

    from dualnet.parity.check import check_model

    torch = _torch()
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.BatchNorm1d(3))
    module.train()
    check_model(module, input_shape=(4,), training=False)
    assert all(m.training for m in module.modules())  # not left in eval mode
    path = list(sys.path)
    (tmp_path / "othernets.py").write_text(textwrap.dedent(TORCH_MODULE))
    assert main(["check", "othernets:build", "--path", str(tmp_path), "--input-shape",
                 "2,5,5", "--no-training"]) == 0  # fmt: skip
    assert sys.path == path  # the search path served that import only


def test_mismatched_state_dict_is_refused_before_anything_is_copied(tmp_path):
    from dualnet.parity.check import check_model

    torch = _torch()
    module = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    state = {k: torch.ones_like(v) for k, v in before.items()}
    state["1.weight"] = torch.ones(5, 3)  # the second layer's shape is wrong
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(ValueError, match=r"mis-shaped: \['1\.weight'\]"):
        check_model(module, weights=tmp_path / "w.pt", input_shape=(4,))
    after = module.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # nothing half-loaded
