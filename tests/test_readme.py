"""The README's Python examples run as written (in order, in one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_examples_run(tmp_path, monkeypatch, capsys):
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # model.plot("model.png") writes here
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    out = capsys.readouterr().out
    tokens = out.split()
    assert tokens[0] == "pass"  # the verdict of dn.parity.check_model on the small Keras file
    assert (tmp_path / "small.safetensors").stat().st_size > 1000
    assert (tmp_path / "small.pt2").exists()
    first = float(tokens[1])  # the torch-vs-tf max difference the README quotes
    assert first < 1e-6
    assert "Total params: 26" in out
    assert "all rows within tolerance" in out
    assert float(out.split()[-2]) < 1e-5  # the CNN's moving statistics agree across backends
    assert float(out.split()[-1]) < 1e-6  # the masked LSTM text model, torch vs tf
    assert (tmp_path / "model.png").stat().st_size > 1000
