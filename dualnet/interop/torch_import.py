"""``from_torch``: a ``torch.nn.Module`` in, a functional dualnet model computing the same
function out.

    model = dn.from_torch(module, torch.randn(2, 3, 32, 32))     # NCHW stays NCHW

Note [Importing a torch module]
-------------------------------
1. **Trace.** ``torch.fx.symbolic_trace`` with a tracer whose leaf modules are the modules
   dualnet maps (and torch's own modules, so that an unsupported one is named rather than traced
   into); user modules are traced through. Control flow that depends on tensor *values* cannot
   be traced: fx's error is wrapped in :class:`~dualnet.errors.UnsupportedModelError`.
2. **Propagate.** The graph runs once on ``example_inputs`` (``ShapeProp``, in eval mode, without
   gradients, every module's training flag restored afterwards, so no running statistic moves)
   and every node's result is recorded. A node that depends on no input is a *constant*: its
   recorded value is used as is (``x.size(1)``, ``x.shape[2] // 2``, a causal mask built with
   ``torch.triu``). Reshapes take their target from the recorded output shape.
3. **Convert.** Nodes that the outputs need are converted in graph order into dualnet layer
   calls on ``dn.Input`` tensors, one (or a few) layers per node, named after the node, with the
   module's weights converted to dualnet's canonical (Keras) layout. A tensor value is a
   symbolic tensor plus a *lazy permutation* (torch dim ``i`` is axis ``perm[i]`` of the
   symbolic tensor), so ``transpose``/``permute`` cost nothing until a layer needs torch's
   order, and a time-major ``(T, B, F)`` tensor feeding ``nn.LSTM(batch_first=False)`` is the
   batch-major tensor it came from. dualnet keeps the batch at axis 0: a permutation that moves
   it can only feed layers that read it that way (time-major recurrent and attention modules).
4. **Report.** Every node that cannot be converted exactly is recorded (the conversion goes on
   with a stand-in of the recorded shape, so later problems are found too) and the import
   raises one :class:`~dualnet.errors.UnsupportedModelError` listing them all, each naming the
   node, its op and what is supported.

Semantics kept (see ``docs/import_torch.md`` for the table): NCHW with
``data_format="channels_first"``, torch's explicit symmetric padding, ``ceil_mode``,
``count_include_pad``, BatchNorm's momentum (``1 - m`` in Keras's sense), epsilon and unbiased
running variance, the memory-order flatten after a convolution, train-mode behaviour
(BatchNorm batch statistics and updates, dualnet's portable dropout masks). The imported model
takes ``training=`` at call time; the module's own ``training`` flags are not copied.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from dualnet.errors import UnsupportedModelError, bad_type, bad_value, describe
from dualnet.layers.base import check_name

__all__ = ["ImportReport", "from_torch", "supported_ops"]


class Unsupported(Exception):
    """Raised by a converter: this node (or one of its settings) has no exact dualnet form."""


@dataclass
class Tensor:
    """A torch tensor during conversion: symbolic tensor ``sym`` whose axis ``perm[i]`` holds
    torch dim ``i`` (identity when the layouts agree)."""

    sym: Any
    perm: tuple[int, ...]

    @property
    def rank(self) -> int:
        return len(self.perm)

    @property
    def identity(self) -> bool:
        return self.perm == tuple(range(len(self.perm)))

    @property
    def torch_shape(self) -> tuple[int | None, ...]:
        """The shape in torch's order (batch as None)."""
        return tuple(self.sym.shape[a] for a in self.perm)


class Special:
    """A value only some converters can read (a recurrent module's stacked final states, the
    attention weights torch returns); ``message`` says how it may be used."""

    message = "this value"


class Poison:
    """The value of a node that could not be converted (its problem is already recorded)."""


@dataclass
class ImportReport:
    """What :func:`from_torch` did, attached to the model as ``model.torch_import``.

    Attributes:
        seconds: wall time of the whole import (trace, propagation, conversion, weights).
        nodes: graph nodes converted (constants excluded).
        layers: dualnet layers created.
        special: one line per conversion that needed more than a one-to-one layer mapping.
    """

    seconds: float
    nodes: int
    layers: int
    special: list[str]


class Converter:
    """State of one import: the recorded values, the names in use, the model's dtype, and the
    helpers converters call (:meth:`layer`, :meth:`dense`, :meth:`note`)."""

    def __init__(self, graph_module: Any, values: dict[Any, Any], batch: int, dtype: str,
                 batch_dependent: set[Any]):  # fmt: skip
        self.gm = graph_module
        self.values = values
        self.batch = batch
        self.dtype = dtype
        self.names: set[str] = set()
        self.layers: list[Any] = []
        self.special: list[str] = []
        self.node: Any = None
        self.batch_dependent = batch_dependent  # nodes whose number depends on the batch
        self.scopes: list[str] = []

    # -- names and layers ---------------------------------------------------------------------

    def name(self, suffix: str = "") -> str:
        """A unique layer name derived from the current node (``layer1_0_conv1``, ...)."""
        base = "_".join([self.node.name, *self.scopes, *([suffix] if suffix else [])])
        name, i = base, 1
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(check_name(name, where="from_torch"))
        return name

    @contextlib.contextmanager
    def scope(self, part: str) -> Iterator[None]:
        """Names made inside get ``_part`` after the node's name (a composite module's parts)."""
        self.scopes.append(part)
        try:
            yield
        finally:
            self.scopes.pop()

    def layer(self, cls: type, *args: Any, suffix: str = "", **kwargs: Any) -> Any:
        """A dualnet layer named after the node, in the model's dtype. A dualnet argument
        error (a combination dualnet refuses) becomes :class:`Unsupported`."""
        try:
            layer = cls(*args, name=self.name(suffix), dtype=self.dtype, **kwargs)
        except (TypeError, ValueError) as exc:
            raise Unsupported(f"dualnet {cls.__name__} refuses it: {exc}") from None
        self.layers.append(layer)
        return layer

    def call(self, layer: Any, inputs: Any, weights: list[Any] | None = None,
             **kwargs: Any) -> Any:  # fmt: skip
        """``layer(inputs, **kwargs)`` on symbolic tensors, then the weights (canonical
        layout, cast to the layer's dtype) loaded into the built layer."""
        try:
            out = layer(inputs, **kwargs)
        except (TypeError, ValueError) as exc:
            raise Unsupported(f"dualnet {type(layer).__name__} refuses it: {exc}") from None
        if weights is not None:
            layer.set_weights([np.asarray(w, dtype=self.dtype) for w in weights])
        return out

    def apply(self, cls: type, x: Tensor, *args: Any, suffix: str = "",
              weights: list[Any] | None = None, **kwargs: Any) -> Tensor:  # fmt: skip
        """One layer on ``x`` in torch's layout (materialised first); identity permutation."""
        return Tensor(self.call(self.layer(cls, *args, suffix=suffix, **kwargs), self.dense(x),
                                weights), tuple(range(x.rank)))  # fmt: skip

    def note(self, text: str) -> None:
        """Record a conversion that needed special handling (reported by the import)."""
        self.special.append(f"{self.node.name}: {text}")

    # -- layouts ------------------------------------------------------------------------------

    def dense(self, x: Tensor) -> Any:
        """The symbolic tensor holding ``x`` in torch's order (a Permute when the lazy
        permutation is not the identity; the batch must be torch's dim 0)."""
        if x.identity:
            return x.sym
        if x.perm[0] != 0:
            raise Unsupported(
                f"the tensor's batch axis sits at torch dim {x.perm.index(0)} here (after a "
                "transpose/permute); dualnet keeps the batch at axis 0, so only time-major "
                "nn.LSTM/GRU/RNN and nn.MultiheadAttention(batch_first=False) may read it"
            )
        from dualnet import layers

        layer = self.layer(layers.Permute, x.perm[1:], suffix="permute")
        return self.call(layer, x.sym)

    def example_shape(self, node: Any) -> tuple[int, ...]:
        """The recorded shape of a tensor node."""
        return tuple(self.values[node].shape)


def _to_numpy(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy()


# -- tracing ----------------------------------------------------------------------------------


# fx cannot trace *args: a bare module is called from a forward of fixed arity (the node is
# named after the module's class through `attribute`).
def _forward1(self: Any, x0: Any) -> Any:
    return getattr(self, self.attribute)(x0)


def _forward2(self: Any, x0: Any, x1: Any) -> Any:
    return getattr(self, self.attribute)(x0, x1)


def _forward3(self: Any, x0: Any, x1: Any, x2: Any) -> Any:
    return getattr(self, self.attribute)(x0, x1, x2)


_ROOT_FORWARDS = (_forward1, _forward2, _forward3)


def _trace(module: Any, arity: int) -> Any:
    import torch
    import torch.fx

    from dualnet.interop import torch_modules

    leaves = tuple(torch_modules.MODULES)

    class Tracer(torch.fx.Tracer):
        def is_leaf_module(self, m: Any, qualname: str) -> bool:
            # Mapped modules (exact type: a subclass may override forward) and every other
            # torch.nn module stay calls, so that an unmapped one is named, not traced into.
            return type(m) in leaves or super().is_leaf_module(m, qualname)

    tracer = Tracer()
    if tracer.is_leaf_module(module, ""):
        # a bare mapped module (nn.Linear, nn.LSTM): trace a call of it, not its insides
        from dualnet.layers.base import snake_case

        if not 1 <= arity <= len(_ROOT_FORWARDS):
            raise bad_value("example_inputs", arity, f"1 to {len(_ROOT_FORWARDS)} inputs for a "
                            f"bare {type(module).__name__}", where="from_torch")  # fmt: skip
        root = type("Root", (torch.nn.Module,), {"forward": _ROOT_FORWARDS[arity - 1]})()
        root.attribute = snake_case(type(module).__name__)
        root.add_module(root.attribute, module)
        module = root
    try:
        graph = tracer.trace(module)
    except Exception as exc:  # fx raises TraceError, TypeError, RuntimeError, ...
        raise UnsupportedModelError(
            f"from_torch: torch.fx could not trace {type(module).__name__}",
            [
                f"{type(exc).__name__}: {exc} (control flow on tensor values, data-dependent "
                "shapes and non-tensor outputs of untraceable code cannot be captured; make the "
                "branch depend on module attributes instead)"
            ],
        ) from exc
    return torch.fx.GraphModule(module, graph)


def run_recording(gm: Any, inputs: Any, base: Any) -> dict[Any, Any]:
    """Run the traced graph with the fx interpreter class ``base`` on ``inputs`` (eval mode: no
    BatchNorm statistic moves; no gradients; every module's training flag restored afterwards)
    and return every node's result."""
    import torch

    values: dict[Any, Any] = {}

    class Recorder(base):
        def run_node(self, n: Any) -> Any:
            result = super().run_node(n)
            values[n] = result
            return result

    flags = {m: m.training for m in gm.modules()}
    try:
        gm.eval()
        with torch.no_grad():
            runner = Recorder(gm)
            (runner.propagate if hasattr(runner, "propagate") else runner.run)(*inputs)
    finally:
        for m, flag in flags.items():
            m.training = flag
    return values


def _record(gm: Any, inputs: tuple[Any, ...]) -> dict[Any, Any]:
    """Run the traced graph once on the example inputs and return every node's result;
    ShapeProp also stores ``tensor_meta``."""
    from torch.fx.passes.shape_prop import ShapeProp

    try:
        return run_recording(gm, inputs, ShapeProp)
    except Exception as exc:
        raise bad_value("example_inputs", [tuple(t.shape) for t in inputs],
                        f"inputs the module runs on; running it raised {type(exc).__name__}: "
                        f"{exc}", where="from_torch") from exc  # fmt: skip


def _example_inputs(example_inputs: Any) -> tuple[Any, ...]:
    import torch

    items = example_inputs if isinstance(example_inputs, tuple | list) else (example_inputs,)
    out = []
    for item in items:
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(item)
        if not isinstance(item, torch.Tensor):
            raise bad_type("example_inputs", example_inputs, "a torch tensor or numpy array, or "
                           "a tuple of them", where="from_torch")  # fmt: skip
        if item.ndim < 2:
            raise bad_value("example_inputs", tuple(item.shape), "tensors with a batch axis "
                            "and at least one more axis", where="from_torch")  # fmt: skip
        out.append(item)
    if not out or len({int(t.shape[0]) for t in out}) != 1:
        raise bad_value("example_inputs", [tuple(t.shape) for t in out],
                        "one or more tensors sharing their batch size (dim 0)",
                        where="from_torch")  # fmt: skip
    return tuple(out)


def _model_dtype(module: Any, inputs: tuple[Any, ...]) -> str:
    """float32 or float64: the dtype of every floating parameter, buffer and input."""
    tensors = [*module.parameters(), *module.buffers(), *inputs]
    found = {str(t.dtype).removeprefix("torch.") for t in tensors if t.is_floating_point()}
    if not found:
        return "float32"
    if len(found) > 1 or found - {"float32", "float64"}:
        raise UnsupportedModelError("from_torch: the module's floating dtypes",
                                    [f"parameters, buffers and inputs in {sorted(found)}; "
                                     "supported: all float32 or all float64 (module.float() / "
                                     "module.double())"])  # fmt: skip
    return found.pop()


# -- the conversion ---------------------------------------------------------------------------


def _needed(gm: Any) -> set[Any]:
    """The nodes the output depends on."""
    output = next(n for n in gm.graph.nodes if n.op == "output")
    seen, stack = set(), [output]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(n.all_input_nodes)
    return seen


def _op_name(node: Any) -> str:
    """How a node's op reads in a message: ``torch.nn.Linear``, ``torch.relu``, ``.view``."""
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "call_function":
        target = node.target
        module = getattr(target, "__module__", None) or "torch"
        module = {"_operator": "operator", "torch._C._nn": "torch.nn.functional",
                  "torch._C._VariableFunctions": "torch"}.get(module, module)  # fmt: skip
        return f"{module}.{getattr(target, '__name__', repr(target))}"
    if node.op == "get_attr":
        return f"attribute {node.target}"
    return node.op


def _placeholder_for(cv: Converter, value: Any) -> Any:
    """A stand-in for an unconverted node's result (same shapes), so conversion continues."""
    import torch

    from dualnet.models import Input

    if isinstance(value, torch.Tensor):
        if value.ndim < 2:
            return Poison()
        dtype = str(value.dtype).removeprefix("torch.")
        return Tensor(Input(tuple(value.shape[1:]), dtype=dtype if dtype.startswith("int")
                            else cv.dtype), tuple(range(value.ndim)))  # fmt: skip
    if isinstance(value, tuple | list):
        return type(value)(_placeholder_for(cv, v) for v in value)
    return value


def _contains(value: Any, kind: type) -> bool:
    if isinstance(value, kind):
        return True
    if isinstance(value, tuple | list):
        return any(_contains(v, kind) for v in value)
    if isinstance(value, dict):
        return any(_contains(v, kind) for v in value.values())
    return False


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, tuple | list):
        return [v for item in value for v in _flatten(item)]
    return [value]


def supported_ops() -> dict[str, list[str]]:
    """The modules, functions and tensor methods :func:`from_torch` maps, by kind."""
    from dualnet.interop import torch_functions, torch_modules

    return {
        "modules": sorted(f"nn.{t.__name__}" for t in torch_modules.MODULES),
        "functions": sorted({torch_functions.function_name(f) for f in torch_functions.FUNCTIONS}),
        "methods": sorted(f"Tensor.{m}" for m in torch_functions.METHODS),
    }


def _convert(cv: Converter, gm: Any) -> tuple[list[Any], list[Any], list[str]]:
    import torch

    from dualnet.interop import torch_checks, torch_functions, torch_modules
    from dualnet.models import Input

    needed = _needed(gm)
    inputs, problems = [], torch_checks.inplace_problems(gm, needed)
    env: dict[Any, Any] = {}
    constant: set[Any] = set()
    supported = supported_ops()
    for node in gm.graph.nodes:
        if node not in needed:
            continue
        cv.node = node
        value = cv.values.get(node)
        if node.op == "placeholder":
            dtype = str(value.dtype).removeprefix("torch.")
            sym = Input(tuple(value.shape[1:]), dtype=dtype if not value.is_floating_point()
                        else cv.dtype, name=cv.name())  # fmt: skip
            inputs.append(sym)
            env[node] = Tensor(sym, tuple(range(value.ndim)))
            continue
        if node.op == "output":
            break
        if node.op == "get_attr" or all(a in constant for a in node.all_input_nodes):
            constant.add(node)  # depends on no input: its recorded value is exact
            env[node] = value
            continue
        frozen = [n.name for n in node.all_input_nodes if n in cv.batch_dependent]
        if frozen and torch_checks.is_arithmetic(node, cv.values):
            problems.append(f"node {node.name!r} ({_op_name(node)}): an operand computed from "
                            f"the batch size ({', '.join(frozen)}) would be frozen at the "
                            f"example's batch size {cv.batch}; supported: sizes of the "
                            "non-batch axes")  # fmt: skip
            env[node] = Poison()
            continue
        args = torch.fx.node.map_arg(node.args, lambda n: env[n])
        kwargs = torch.fx.node.map_arg(node.kwargs, lambda n: env[n])
        if _contains((args, kwargs), Poison):
            env[node] = Poison()
            continue
        if node.op != "call_module" and not _contains((args, kwargs), Tensor | Special):
            env[node] = value  # arithmetic on recorded sizes (x.size(0) // 2): a constant
            continue
        try:
            if node.op == "call_module":
                module = gm.get_submodule(node.target)
                fn = torch_modules.MODULES.get(type(module))
                if fn is None:
                    raise Unsupported(f"module type not supported; supported modules: "
                                      f"{', '.join(supported['modules'])}")  # fmt: skip
                env[node] = fn(cv, module, *args, **kwargs)
            elif node.op == "call_function":
                fn = torch_functions.FUNCTIONS.get(node.target)
                if fn is None:
                    raise Unsupported(f"function not supported; supported functions: "
                                      f"{', '.join(supported['functions'])}")  # fmt: skip
                env[node] = fn(cv, *args, **kwargs)
            else:
                fn = torch_functions.METHODS.get(node.target)
                if fn is None:
                    raise Unsupported(f"method not supported; supported methods: "
                                      f"{', '.join(supported['methods'])}")  # fmt: skip
                env[node] = fn(cv, *args, **kwargs)
        except Unsupported as exc:
            what = (f"torch.nn.{type(gm.get_submodule(node.target)).__name__} "
                    f"'{node.target}'" if node.op == "call_module" else _op_name(node))  # fmt: skip
            problems.append(f"node {node.name!r} ({what}): {exc}")
            env[node] = _placeholder_for(cv, value)
    output = next(n for n in gm.graph.nodes if n.op == "output")
    cv.node = output
    result = torch.fx.node.map_arg(output.args[0], lambda n: env[n])
    outputs = []
    for item in _flatten(result):
        if isinstance(item, Poison):
            continue
        if isinstance(item, Special):
            problems.append(f"output: {item.message}")
            continue
        if not isinstance(item, Tensor):
            problems.append(f"output {describe(item)}: the model must return tensors that "
                            "depend on its inputs (a tensor or a tuple/list of them)")  # fmt: skip
            continue
        try:
            outputs.append(cv.dense(item))
        except Unsupported as exc:
            problems.append(f"output of node {output.args[0]!r}: {exc}")
    return inputs, outputs, problems


def from_torch(module: Any, example_inputs: Any, *, backend: str | None = None,
               name: str | None = None) -> Any:  # fmt: skip
    """Import a ``torch.nn.Module`` as a functional dualnet model (Note [Importing a torch
    module]).

    Args:
        module: the ``torch.nn.Module`` (float32 or float64 throughout). It is not modified:
            its training flags are restored after the example run.
        example_inputs: a tensor or numpy array, or a tuple of them (one per ``forward``
            argument), with the batch at dim 0; used to trace shapes. Integer inputs (token
            ids) stay integer inputs.
        backend: ``"torch"`` or ``"tensorflow"``; None: the active backend.
        name: the model's name (default: the module's class name in snake case).

    Returns:
        A built functional :class:`dualnet.Model` whose inputs and outputs have torch's
        layouts, with the module's weights; ``model.torch_import`` is an
        :class:`ImportReport`.

    Raises:
        UnsupportedModelError: listing every node, module setting or function dualnet cannot
            represent exactly, and fx tracing failures.
    """
    import torch

    from dualnet._backend import BACKENDS, get_backend, use_backend
    from dualnet.layers.base import snake_case
    from dualnet.models import Model

    start = time.perf_counter()
    if not isinstance(module, torch.nn.Module):
        raise bad_type("module", module, "a torch.nn.Module", where="from_torch")
    if backend is not None and backend not in BACKENDS:
        raise bad_value("backend", backend, f"one of {', '.join(BACKENDS)} or None",
                        where="from_torch")  # fmt: skip
    if name is not None:
        check_name(name, where="from_torch")
    inputs = _example_inputs(example_inputs)
    dtype = _model_dtype(module, inputs)
    gm = _trace(module, len(inputs))
    values = _record(gm, inputs)
    from dualnet.interop.torch_checks import batch_dependent

    cv = Converter(gm, values, int(inputs[0].shape[0]), dtype,
                   batch_dependent(gm, inputs, values))  # fmt: skip
    sym_inputs, outputs, problems = _convert(cv, gm)
    if problems:
        raise UnsupportedModelError(f"from_torch: {type(module).__name__}", problems)
    if not outputs:
        raise UnsupportedModelError(
            f"from_torch: {type(module).__name__}",
            ["the module returns no tensor computed from its inputs"],
        )
    with use_backend(backend or get_backend()):
        model = Model(sym_inputs if len(sym_inputs) > 1 else sym_inputs[0],
                      outputs if len(outputs) > 1 else outputs[0],
                      name=name or snake_case(type(module).__name__))  # fmt: skip
    report = ImportReport(seconds=time.perf_counter() - start,
                          nodes=sum(1 for n in gm.graph.nodes if n.op.startswith("call")),
                          layers=len(cv.layers), special=cv.special)  # fmt: skip
    object.__setattr__(model, "torch_import", report)
    return model
