"""Checks of a traced torch graph that a dataflow import needs before converting it: in-place
ops whose mutation would be lost, and numbers computed from the batch size that would be frozen
at the example's batch size (Note [Importing a torch module] in
:mod:`dualnet.interop.torch_import`)."""

from __future__ import annotations

from typing import Any

__all__ = ["batch_dependent", "inplace_problems", "is_arithmetic"]


def batch_dependent(gm: Any, inputs: tuple[Any, ...], values: dict[Any, Any]) -> set[Any]:
    """The nodes whose recorded *non-tensor* value (a size, a number computed from sizes)
    changes with the batch size: the graph runs again on the inputs with one more sample (the
    first repeated) and the numbers are compared. Used as an operand of arithmetic, such a
    value would be frozen at the example's batch size in the imported model. A module that does
    not run at another batch size gives no answer (empty set): its import is only meaningful at
    the example's batch size anyway."""
    import torch

    from dualnet.interop.torch_import import run_recording

    try:
        other = run_recording(gm, [torch.cat([t, t[:1]]) for t in inputs], torch.fx.Interpreter)
    except Exception:  # any failure: no second run to compare with
        return set()

    def numbers(v: Any) -> Any:
        if isinstance(v, torch.Tensor):
            return None
        if isinstance(v, torch.Size | tuple | list):
            return tuple(numbers(x) for x in v)
        return v if isinstance(v, int | float | bool) else None

    changed = set()
    for n, v in values.items():
        if numbers(v) is not None and n in other and numbers(v) != numbers(other[n]):
            changed.add(n)
    return changed


# Ops that treat a Python number as a value (a Rescaling): a number computed from the batch size
# would be frozen there. Reshapes read the recorded output shape instead and are not listed.
_ARITHMETIC_FUNCTIONS = ("add", "iadd", "sub", "isub", "mul", "imul", "truediv", "itruediv",
                         "floordiv", "div", "true_divide", "rsub", "subtract", "multiply",
                         "divide", "neg", "negative", "pow")  # fmt: skip


def is_arithmetic(node: Any, values: dict[Any, Any]) -> bool:
    """Whether ``node`` is tensor arithmetic (a tensor operand among its inputs: arithmetic on
    sizes alone only feeds reshapes, which read the recorded shapes)."""
    import torch

    if not any(isinstance(values.get(n), torch.Tensor) for n in node.all_input_nodes):
        return False
    if node.op == "call_method":
        return str(node.target).rstrip("_") in _ARITHMETIC_FUNCTIONS
    if node.op == "call_function":
        return getattr(node.target, "__name__", "") in _ARITHMETIC_FUNCTIONS
    return False


def inplace_problems(gm: Any, needed: set[Any]) -> list[str]:
    """In-place ops whose mutation a dataflow import would lose: the mutated tensor read again
    after the op (``a = lin(x); b = relu_(a); a + b`` reads the *mutated* ``a``), or the op's
    own result unused while its input is (``y.relu_()`` as a statement). An in-place op whose
    input nothing else reads later (``x = self.relu(self.bn(x))`` with ``inplace=True``,
    ``out += identity``) is its out-of-place form and is converted as such."""
    import operator

    from dualnet.interop.torch_import import _op_name

    order = {n: i for i, n in enumerate(gm.graph.nodes)}
    inplace_ops = (operator.iadd, operator.isub, operator.imul, operator.itruediv)
    problems = []
    for n in gm.graph.nodes:
        module = gm.get_submodule(n.target) if n.op == "call_module" else None
        inplace = ((n.op == "call_method" and str(n.target).endswith("_")
                    and not str(n.target).startswith("_"))
                   or (n.op == "call_function" and n.target in inplace_ops)
                   or n.kwargs.get("inplace") is True
                   or getattr(module, "inplace", False) is True)  # fmt: skip
        src = n.args[0] if n.args and hasattr(n.args[0], "users") else None
        if not inplace or src is None or src.op == "get_attr":
            continue
        read_later = any(order[u] > order[n] for u in src.users if u is not n)
        lost = n not in needed and src in needed
        if read_later or lost:
            why = ("is read again afterwards" if read_later
                   else "is used while the op's own result is not")  # fmt: skip
            what = (f"torch.nn.{type(module).__name__} '{n.target}'" if module is not None
                    else _op_name(n))  # fmt: skip
            problems.append(f"node {n.name!r} ({what}): an in-place op on "
                            f"{src.name!r}, which {why}: the mutation cannot be expressed as "
                            "dataflow; supported: the out-of-place form, or an in-place op "
                            "whose input nothing else reads later")  # fmt: skip
    return problems
