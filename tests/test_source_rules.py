"""Source rules that keep dualnet traceable: tf.function's AutoGraph converts the neutral code a
compiled step runs through, and cannot convert a function whose body is only a docstring (it
logs "could not transform" and runs it unconverted)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "dualnet").rglob("*.py"), *(ROOT / "backends").rglob("*.py")])


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_function_body_is_only_a_docstring(path):
    tree = ast.parse(path.read_text())
    empty = [
        f"{node.name} (line {node.lineno})"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and len(node.body) == 1
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    ]
    assert not empty, f"give these a body besides the docstring (return None): {empty}"


def test_documentation_stands_alone():
    """The project's README, docs and code never point outside the repository (a team notes
    folder beside it is not part of the project)."""
    texts = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md"), *(ROOT / "benchmarks").rglob("*"),
             *SOURCES]  # fmt: skip
    readable = [p for p in texts if p.is_file() and p.suffix in (".md", ".py")]
    offenders = [str(p.relative_to(ROOT)) for p in readable if "../shared" in p.read_text()]
    assert not offenders, offenders
