"""Functional models: layers called on ``dn.Input`` tensors (``dn.Model(inputs, outputs)``),
run as a graph of nodes; see :mod:`dualnet.models` for what every model shares."""

from __future__ import annotations

from typing import Any

from dualnet import _ops
from dualnet import layers as _layers
from dualnet._backend import backend_module, get_backend
from dualnet.errors import bad_type, bad_value
from dualnet.layers import (
    InputLayer,
    Layer,
    SymbolicTensor,
    _symbolic,
    format_shape,
)
from dualnet.models import (
    Model,
    _param_text,
)

__all__ = ["Functional"]


def _as_list(value: Any, argument: str, where: str) -> tuple[list[SymbolicTensor], bool]:
    single = isinstance(value, SymbolicTensor)
    items = [value] if single else value
    if (
        not isinstance(items, list | tuple)
        or not items
        or not all(isinstance(t, SymbolicTensor) for t in items)
    ):
        raise bad_type(argument, value, "a tensor from dn.Input / a layer call, or a list of them",
                       where=where)  # fmt: skip
    return list(items), single


class Functional(Model):
    """A model defined by calling layers on ``dn.Input`` tensors (``dn.Model(inputs, outputs)``).

    Args:
        inputs: a ``dn.Input(...)`` tensor or a list of them.
        outputs: the tensor(s) the model returns, computed from ``inputs`` by layer calls.
        name: default ``functional``, ``functional_1``, ...
    """

    def __init__(self, inputs: Any, outputs: Any, name: str | None = None):
        where = "Model"
        ins, single_in = _as_list(inputs, "inputs", where)
        outs, single_out = _as_list(outputs, "outputs", where)
        for t in ins:
            if not isinstance(t.history[0], InputLayer):
                raise ValueError(
                    f"Model: inputs must be tensors returned by dn.Input(...); {t.name!r} is the "
                    f"output of layer {t.history[0].name!r}."
                )
        nodes = _collect_nodes(outs, ins)
        layers = [t.history[0] for t in ins]
        for node in nodes:
            if node.layer not in layers:
                layers.append(node.layer)
        names: dict[str, Layer] = {}
        for layer in layers:
            if names.setdefault(layer.name, layer) is not layer:
                raise ValueError(
                    f"Model: the name {layer.name!r} is used by more than one layer; layer names "
                    "must be unique within a model."
                )
        super().__init__(name=name if name is not None else None)
        object.__setattr__(self, "_inputs", ins)
        object.__setattr__(self, "_outputs", outs)
        object.__setattr__(self, "_single", (single_in, single_out))
        object.__setattr__(self, "_nodes", nodes)
        object.__setattr__(self, "_layers", layers)
        self._realise(get_backend())

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    @property
    def inputs(self) -> list[SymbolicTensor]:
        return list(self._inputs)

    @property
    def outputs(self) -> list[SymbolicTensor]:
        return list(self._outputs)

    def _input_layers(self) -> list[InputLayer]:
        return [t.history[0] for t in self._inputs]

    def _split_inputs(self, inputs: Any) -> tuple[list[Any], bool]:
        xs, _ = super()._split_inputs(inputs)
        return xs, self._single[0]

    def _realise(self, backend: str) -> None:
        foreign = [layer.name for layer in self._layers if layer.backend not in (None, backend)]
        if foreign:
            raise ValueError(
                f"{self._where()}: layers {foreign} are built on another backend than {backend!r}."
            )
        for layer in self._layers:
            layer._realise(backend)
        ids = {}
        for t in self._inputs:
            ids.setdefault(id(t), len(ids))
        plan = []
        for node in self._nodes:
            kwargs = {k: _symbolic.template(v, ids) for k, v in node.kwargs.items()}
            for t in node.outputs:
                ids.setdefault(id(t), len(ids))
            plan.append((node.layer, [ids[id(t)] for t in node.inputs],
                         [ids[id(t)] for t in node.outputs], kwargs))  # fmt: skip
        native = backend_module(backend).models.functional(
            self, plan, [ids[id(t)] for t in self._inputs], [ids[id(t)] for t in self._outputs]
        )
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_native", native)
        object.__setattr__(self, "_build_input_shape", [t.shape for t in self._inputs])

    def _run(self, tensors: list[Any], single: bool, training: bool) -> Any:
        models = _ops.package(self._backend).models
        return models.call(self._native, tensors, self._single[0], training)

    def _graph(self) -> list[tuple[Layer, list[Layer], tuple | None]]:
        out = [(layer, [], layer.input_shape) for layer in self._input_layers()]
        for node in self._nodes:
            out.append((node.layer, [t.history[0] for t in node.parents], node.outputs[0].shape))
        return out

    def _node_indices(self) -> dict[int, int]:
        """Per node (by id): the index of that call among the layer's calls in this model."""
        counts: dict[int, int] = {}
        out = {}
        for node in self._nodes:
            out[id(node)] = counts.get(id(node.layer), 0)
            counts[id(node.layer)] = out[id(node)] + 1
        return out

    def _tensor_ref(self, t: SymbolicTensor) -> list[Any]:
        layer = t.history[0]
        if isinstance(layer, InputLayer):
            return [layer.name, 0, 0]
        index = self._node_indices()
        for node in self._nodes:
            if any(o is t for o in node.outputs):
                return [layer.name, index[id(node)], node.outputs.index(t)]
        raise AssertionError("tensor not produced in this model")  # unreachable by construction

    def _node_config(self, node: _layers.Node) -> dict[str, Any]:
        config: dict[str, Any] = {
            "layer": node.layer.name,
            "args": [self._tensor_ref(t) for t in node.inputs],
        }
        if node.kwargs:
            config["kwargs"] = {k: self._kwarg_ref(v) for k, v in node.kwargs.items()}
        return config

    def _kwarg_ref(self, value: Any) -> Any:
        """A call argument in a config: ``{"tensor": ref}`` for a tensor, a list of those for a
        list, the option itself otherwise."""
        if isinstance(value, SymbolicTensor):
            return {"tensor": self._tensor_ref(value)}
        if isinstance(value, list | tuple) and any(isinstance(v, SymbolicTensor) for v in value):
            return [self._kwarg_ref(v) for v in value]
        return value

    def _is_chain(self) -> bool:
        """Keras's "sequential-like" test: at most one node per depth, one input per node."""
        if any(len(node.parents) > 1 for node in self._nodes):
            return False  # a merge (several input tensors) is a branching graph for Keras too
        depth: dict[int, int] = {}
        for node in reversed(self._nodes):
            d = depth.setdefault(id(node), 0)
            for t in node.parents:
                parent = _producer(self._nodes, t)
                key = id(parent) if parent is not None else id(t.history[0])
                depth[key] = max(depth.get(key, 0), d + 1)
        for t in self._outputs:  # an Input returned directly is a depth-0 node too
            if isinstance(t.history[0], InputLayer):
                depth.setdefault(id(t.history[0]), 0)
        for layer in self._input_layers():
            depth.setdefault(id(layer), 0)
        by_depth: dict[int, int] = {}
        for d in depth.values():
            by_depth[d] = by_depth.get(d, 0) + 1
        return all(n == 1 for n in by_depth.values())

    def _summary_rows(self) -> tuple[list[list[str]], bool]:
        chain = self._is_chain()
        rows = []
        for layer in self._layers:
            nodes = [n for n in self._nodes if n.layer is layer]
            shape = (
                layer.input_shape if isinstance(layer, InputLayer) else nodes[-1].outputs[0].shape
            )
            row = [f"{layer.name} ({type(layer).__name__})", format_shape(shape),
                   _param_text(layer)]  # fmt: skip
            if not chain:
                refs = ["{}[{}][{}]".format(*self._tensor_ref(t)) for n in nodes for t in n.parents]
                row.append(", ".join(refs) if refs else "-")
            rows.append(row)
        return rows, chain

    def get_config(self) -> dict[str, Any]:
        def refs(tensors: list[SymbolicTensor], single: bool) -> list[Any]:
            out = [self._tensor_ref(t) for t in tensors]
            return out[0] if single else out

        return {
            "name": self.name,
            "layers": [_layers.serialize(layer) for layer in self._layers],
            "nodes": [self._node_config(n) for n in self._nodes],
            "input_layers": refs(self._inputs, self._single[0]),
            "output_layers": refs(self._outputs, self._single[1]),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Model:
        keys = {"name", "layers", "nodes", "input_layers", "output_layers"}
        if not isinstance(config, dict) or not keys <= set(config):
            raise bad_value("config", config, "a dict from a functional model's get_config()")
        layers = {}
        for c in config["layers"]:
            layer = _layers.get(c, custom_objects)
            layers[layer.name] = layer
        tensors: dict[tuple, SymbolicTensor] = {}
        for layer in layers.values():
            if isinstance(layer, InputLayer):
                tensors[(layer.name, 0, 0)] = layer.output
        counts: dict[str, int] = {}
        for node in config["nodes"]:
            layer = layers[node["layer"]]
            args = [tensors[tuple(ref)] for ref in node["args"]]
            k = counts.get(layer.name, 0)
            counts[layer.name] = k + 1

            def arg(value: Any) -> Any:
                if isinstance(value, dict) and set(value) == {"tensor"}:
                    return tensors[tuple(value["tensor"])]
                if isinstance(value, list) and value and isinstance(value[0], dict):
                    return [arg(v) for v in value]
                return value

            kwargs = {key: arg(v) for key, v in node.get("kwargs", {}).items()}
            out = layer(args if layer.multi_input else args[0], **kwargs)
            for i, t in enumerate(out if isinstance(out, list) else [out]):
                tensors[(layer.name, k, i)] = t

        def pick(refs: list[Any]) -> Any:
            if refs and isinstance(refs[0], str):
                return tensors[tuple(refs)]
            return [tensors[tuple(r)] for r in refs]

        return Model(pick(config["input_layers"]), pick(config["output_layers"]),
                     name=config["name"])  # fmt: skip

    def _after_clone(self, clone: Model) -> None:
        pass  # the config holds every name

    def build(self, input_shape: Any) -> None:
        pass  # always built at construction


def _producer(nodes: list[_layers.Node], t: SymbolicTensor) -> _layers.Node | None:
    for node in nodes:
        if any(o is t for o in node.outputs):
            return node
    return None


def _collect_nodes(
    outputs: list[SymbolicTensor], inputs: list[SymbolicTensor]
) -> list[_layers.Node]:
    """The layer calls between ``inputs`` and ``outputs``, in execution (topological) order."""
    input_ids = {id(t) for t in inputs}
    order: list[_layers.Node] = []
    done: set[int] = set()

    def visit(t: SymbolicTensor, path: tuple[str, ...]) -> None:
        if id(t) in input_ids:
            return
        layer, node_index, _ = t.history
        if isinstance(layer, InputLayer):
            raise ValueError(
                f"Output {path[0]!r} is not connected to `inputs`: it depends on Input "
                f"{layer.name!r}, which is not among the model's inputs."
            )
        node = layer._inbound_nodes[node_index]
        if id(node) in done:
            return
        for parent in node.parents:
            visit(parent, path)
        done.add(id(node))
        order.append(node)

    for t in outputs:
        visit(t, (t.name,))
    return order
