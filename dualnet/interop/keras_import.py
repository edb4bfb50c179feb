"""``dn.from_keras(model)``: a Keras Sequential or functional model -> the same dualnet model.

    model = dn.from_keras(keras_model)                    # on the active backend
    model = dn.from_keras(keras_model, backend="tensorflow", name="twin")

The architecture is read from Keras's own graph, never from Python code: a Sequential's layer
list, a functional model's nodes (``model._nodes_by_depth``, each node's operation and call
arguments, walked in Keras's own execution order). Each Keras layer becomes the dualnet layer of
the same class, name and settings (:mod:`dualnet.interop.keras_layers` maps every config key),
each call becomes the same call (MultiHeadAttention's ``value``/``key``/``attention_mask``/
``use_causal_mask``, an RNN's ``initial_state``, a layer called twice stays one shared layer),
and masks from ``Embedding(mask_zero=True)``/``Masking`` propagate as they do in Keras. Models
nested as layers (a Sequential inside a functional model, a functional block called twice) are
flattened into the outer graph, their layers keeping their names. dualnet's canonical weight
layout is Keras's, so each layer's weights are copied as they are, in Keras's order, after their
shapes are checked.

Refused, with every problem of the model listed at once (:class:`UnsupportedModelError`):
subclassed models (their ``call`` is Python code with no graph to read: rebuild them as
functional models), layer classes dualnet lacks (``Lambda``, custom layers, subclasses of
built-in layers), Keras settings dualnet lacks unless they sit at their neutral value
(regularizers, constraints, mixed or quantized dtype policies, ...: the table in
:mod:`dualnet.interop.keras_layers`), explicit ``mask=`` or ``training=`` arguments in a layer
call (dualnet's functional calls take masks from the layers that make them and the training
flag from the model call), and dict-structured inputs or outputs.

Importing a model never imports a framework: Keras is already loaded (the model is one of its
objects), and it is found in ``sys.modules``. If the conversion fails, dualnet's global random
state is restored (initializers of the new layers draw their seeds from it).
"""

from __future__ import annotations

import inspect
import sys
from typing import Any

from dualnet import random as _random
from dualnet._backend import canonical_name, get_backend, use_backend
from dualnet.errors import UnsupportedModelError, bad_type, describe
from dualnet.interop import keras_layers as _kl
from dualnet.layers import Bidirectional, InputLayer, Layer, public_classes
from dualnet.layers._checks import check_name

__all__ = ["from_keras"]

# Keras's own explanation for classes that can never be read as a graph.
_WHY_NOT = {
    "Lambda": "it runs an arbitrary Python function, which cannot be read as a layer",
    "TFSMLayer": "it wraps a TensorFlow SavedModel, not Keras layers",
}


def from_keras(model: Any, *, backend: str | None = None, name: str | None = None) -> Any:
    """The dualnet twin of a Keras Sequential or functional model: same architecture, layer
    names, settings and weights.

    Args:
        model: a built ``keras.Sequential`` or functional ``keras.Model`` (subclassed models
            have no graph to read and are refused).
        backend: where to build it (``"torch"`` or ``"tensorflow"``); default the active one.
        name: the dualnet model's name; default the Keras model's.

    Returns:
        A built :class:`dualnet.Sequential` (from a Sequential without nested functional
        models) or functional :class:`dualnet.Model`, weights copied.

    Raises:
        UnsupportedModelError: listing every layer, setting or call dualnet cannot reproduce.
        TypeError: ``model`` is not a Keras model.
    """
    keras = sys.modules.get("keras")
    if keras is None or not isinstance(model, keras.Model):
        raise bad_type("model", model, "a keras.Model (Sequential or functional)",
                       where="from_keras")  # fmt: skip
    resolved = get_backend() if backend is None else canonical_name(backend)
    if name is not None:
        check_name(name, where="from_keras")
    state = _random._generator.bit_generator.state
    try:
        converter = _Converter(keras)
        plan = converter.read(model)
        if converter.problems:
            raise UnsupportedModelError(f"from_keras: Keras model {model.name!r} cannot be "
                                        "imported", converter.problems)  # fmt: skip
        with use_backend(resolved):
            twin = converter.build(model, plan, _model_name(model.name) if name is None else name)
        converter.copy_weights(twin)
    except BaseException:
        _random._generator.bit_generator.state = state  # nothing half-changed after a failure
        raise
    return twin


class _Converter:
    """Reads a Keras model (pass 1: every problem collected, dualnet layers made) and builds its
    dualnet twin (pass 2)."""

    def __init__(self, keras: Any):
        self.keras = keras
        from keras.src.models.functional import Functional

        self.functional_class = Functional
        self.problems: list[str] = []
        self.layers: dict[int, Layer] = {}  # id(keras layer) -> dualnet layer
        self.sources: dict[int, Any] = {}  # id(keras layer) -> keras layer (weight copy)
        self.names: dict[str, int] = {}  # dualnet name -> id(keras layer)
        self.auto_masks: dict[int, set[str]] = {}  # id(node) -> its automatic mask arguments
        self.mask_nodes: set[int] = set()  # id(node) of ops that only compute masks

    # -- pass 1: read ---------------------------------------------------------------------

    def read(self, model: Any) -> str:
        """Check the whole model and make its dualnet layers; returns ``"sequential"`` or
        ``"functional"`` (the form the twin takes)."""
        kind = self._kind(model)
        if kind is None:
            return "functional"
        if kind == "sequential":
            inputs = [model._layers[0]] if model._layers and self._is_input(model._layers[0]) \
                else []  # fmt: skip
            if not inputs:
                self.problems.append(
                    f"model {model.name!r}: the Sequential is not built (its input shape is "
                    "unknown); start it with keras.Input(shape) or call model.build(shape)."
                )
        else:
            inputs = [t._keras_history.operation for t in model.inputs]
            for label, struct in (("inputs", model._inputs_struct),
                                  ("outputs", model._outputs_struct)):  # fmt: skip
                flat = isinstance(struct, self.keras.KerasTensor) or (
                    isinstance(struct, list | tuple)
                    and all(isinstance(t, self.keras.KerasTensor) for t in struct)
                )
                if not flat:
                    self.problems.append(
                        f"model {model.name!r}: {label} given as a {type(struct).__name__} "
                        "structure; dualnet models take a tensor or a flat list of tensors "
                        "(rebuild the Keras model with a list)."
                    )
        for layer in inputs:
            self._input_layer(layer)
        self._read_body(model)
        nested = kind == "sequential" and any(
            self._kind_quiet(layer) == "functional" for layer in self._flat_sequence(model)
        )
        return "functional" if nested else kind

    def _kind(self, model: Any) -> str | None:
        """``"sequential"``, ``"functional"``, or None with a problem (subclassed)."""
        keras = self.keras
        if isinstance(model, keras.Sequential):
            if type(model).call is not keras.Sequential.call:
                self._subclassed(model, "a Sequential subclass that overrides call()")
                return None
            return "sequential"
        if isinstance(model, self.functional_class):
            if type(model).call is not self.functional_class.call:
                self._subclassed(model, "a functional model whose class overrides call()")
                return None
            return "functional"
        if isinstance(model, keras.Model):
            self._subclassed(model, "a subclassed keras.Model")
            return None
        return "layer"

    def _subclassed(self, model: Any, what: str) -> None:
        self.problems.append(
            f"model {model.name!r} ({type(model).__name__}): {what} is Python code with no "
            "layer graph to read; rebuild it as a functional model (keras.Input, layer calls, "
            "keras.Model(inputs, outputs)) or a keras.Sequential."
        )

    def _is_input(self, layer: Any) -> bool:
        return type(layer) is self.keras.layers.InputLayer

    def _flat_sequence(self, model: Any) -> list[Any]:
        """A Sequential's layers, nested Sequentials expanded in place."""
        out = []
        for layer in model.layers:
            if self._kind_quiet(layer) == "sequential":
                out.extend(self._flat_sequence(layer))
            else:
                out.append(layer)
        return out

    def _kind_quiet(self, layer: Any) -> str:
        if isinstance(layer, self.keras.Sequential):
            return "sequential"
        if isinstance(layer, self.functional_class):
            return "functional"
        return "model" if isinstance(layer, self.keras.Model) else "layer"

    def _read_body(self, model: Any) -> None:
        """Every layer and call of ``model`` (nested models included)."""
        kind = self._kind_quiet(model)
        if kind == "sequential":
            for layer in model.layers:
                self._read_operation(layer)
            return
        self._find_masks(model)
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.operation is None or node.is_input or id(node) in self.mask_nodes:
                    continue
                self._read_operation(node.operation)
                self._read_call(node)

    def _find_masks(self, model: Any) -> None:
        """Keras 3 records mask propagation in a functional graph: a layer's ``compute_mask``
        appears as ops (``NotEqual`` for ``Embedding(mask_zero=True)``), and each call gets the
        masks of its inputs as keyword arguments (``mask=``, MultiHeadAttention's
        ``query_mask=``/``value_mask=``/``key_mask=``). dualnet propagates masks itself (Note
        [Masks]), so those keyword arguments are dropped when they hold exactly the masks
        attached to the call's own inputs, and the ops that only compute masks are skipped.
        Anything else passed as a mask is the user's and refused."""
        from keras.src.backend import get_keras_mask

        tree = self.keras.tree
        uses: dict[int, list[tuple[Any, bool]]] = {}  # tensor id -> (node, as an auto mask)
        for node in _nodes(model):
            named = self._bind(node.operation, node)
            auto = set()
            for key, value in named.items():
                source = next(iter(named)) if key == "mask" else key.removesuffix("_mask")
                if key.endswith("mask") and source in named and value is not None:
                    expected = tree.map_structure(get_keras_mask, named[source])
                    if _identical(tree.flatten(value), tree.flatten(expected)):
                        auto.add(key)
            self.auto_masks[id(node)] = auto
            for key, value in named.items():
                for t in tree.flatten(value):
                    if isinstance(t, self.keras.KerasTensor):
                        uses.setdefault(id(t), []).append((node, key in auto))
        outputs = {id(t) for t in model.outputs}
        for depth in sorted(model._nodes_by_depth):  # from the outputs towards the inputs
            for node in model._nodes_by_depth[depth]:
                if node.operation is None or node.is_input or \
                        isinstance(node.operation, self.keras.layers.Layer):  # fmt: skip
                    continue
                if all(id(t) not in outputs and uses.get(id(t)) and all(
                    as_mask or id(user) in self.mask_nodes for user, as_mask in uses[id(t)]
                ) for t in node.outputs):  # fmt: skip
                    self.mask_nodes.add(id(node))

    def _read_operation(self, op: Any) -> None:
        kind = self._kind_quiet(op)
        if kind in ("sequential", "functional", "model"):
            if self._kind(op) is not None:
                self._read_body(op)
            return
        self._layer(op)

    def _read_call(self, node: Any) -> None:
        """Problems with one call's arguments (explicit masks, training flags, arguments the
        dualnet layer does not take)."""
        op = node.operation
        if isinstance(op, self.keras.Model):
            named = self._bind(op, node)
            auto = self.auto_masks.get(id(node), set())
            extra = {k: v for k, v in list(named.items())[1:]
                     if k not in auto and v is not None and v is not False}  # fmt: skip
            if extra:
                self.problems.append(f"{_where(op)}: called with {sorted(extra)}; a nested "
                                     "model is imported as its layers, called on its inputs "
                                     "only.")  # fmt: skip
            return
        layer = self.layers.get(id(op))
        if layer is None:
            return
        named = self._bind(op, node)
        auto = self.auto_masks.get(id(node), set())
        first = next(iter(named.values()), None)
        dropped = "mask" in inspect.signature(op.call).parameters and "mask" not in named
        if dropped and getattr(first, "_keras_mask", None) is not None and layer.supports_masking:
            # Keras fills mask= only for a call with one tensor argument: with initial_state it
            # drops the input's mask and runs over the padding (the divergence record
            # keras-rnn-mask-ignored-with-initial-state); dualnet would apply it.
            self.problems.append(
                f"{_where(op)}: Keras ignores the mask of this call's input (a call with "
                "other tensor arguments, such as initial_state, gets no mask in Keras) while "
                "dualnet applies it, so the twin would compute another function; pass the "
                "mask explicitly in Keras, or remove it (mask_zero/Masking)."
            )
        for key, value in list(named.items())[1:]:
            if key in auto:
                continue
            masky = key == "mask" or (key.endswith("_mask") and key not in layer.call_arguments)
            if masky and value is not None:
                self.problems.append(
                    f"{_where(op)}: called with {key}=...; dualnet takes masks from the layers "
                    "that make them (Embedding(mask_zero=True), Masking), not as call arguments."
                )
            elif key == "training" and value not in (None, False):
                # Keras records training=False (Dropout.call's default) in every node; at run
                # time a model call's own flag overrides it, and None keeps it: inference, as
                # dualnet's inherited flag. A recorded True (MC dropout) has no equivalent.
                self.problems.append(
                    f"{_where(op)}: called with training={describe(value)}; a dualnet layer "
                    "call inherits the training flag of the model call (remove the argument)."
                )
            elif key not in layer.call_arguments and key not in ("mask", "training"):
                default = _default(op, key)
                if value is not None and not _same(value, default):
                    takes = ", ".join(layer.call_arguments) or "none"
                    self.problems.append(
                        f"{_where(op)}: call argument {key}={describe(value)} is not supported "
                        f"(dualnet's {type(layer).__name__} takes: {takes})."
                    )

    def _bind(self, op: Any, node: Any) -> dict[str, Any]:
        """The node's call arguments by parameter name (Keras's ``call`` signature)."""
        try:
            return _bind_values(op, node.arguments.args, node.arguments.kwargs)
        except TypeError:  # a call Keras itself accepted through **kwargs: keep what was given
            names = {f"arg{i}": a for i, a in enumerate(node.arguments.args)}
            return {**names, **node.arguments.kwargs}

    def _claim_name(self, layer_name: str, op: Any) -> None:
        owner = self.names.setdefault(layer_name, id(op))
        if owner != id(op):
            self.problems.append(
                f"{_where(op)}: the name {layer_name!r} is used by another layer of the model "
                "(a nested model's layer?); dualnet layer names are unique within a model."
            )

    def _input_layer(self, layer: Any) -> None:
        if id(layer) in self.layers:
            return
        where = _where(layer)
        config = dict(layer.get_config())
        problems_before = len(self.problems)
        kwargs: dict[str, Any] = {"batch_shape": tuple(config.pop("batch_shape"))}
        for key, value in config.items():
            if key == "name":
                kwargs["name"] = value
            elif key == "dtype":
                kwargs["dtype"] = value
            elif key in _kl.NEUTRAL:
                neutral, why = _kl.NEUTRAL[key]
                if value != neutral:
                    self.problems.append(f"{where}: {key}={value!r} is not supported ({why}).")
            else:
                self.problems.append(f"{where}: setting {key}={describe(value)} has no dualnet "
                                     "equivalent.")  # fmt: skip
        if len(self.problems) > problems_before:
            return
        try:
            made = InputLayer(**kwargs)
        except (TypeError, ValueError) as exc:
            self.problems.append(f"{where}: {exc}")
            return
        self._claim_name(made.name, layer)
        self.layers[id(layer)] = made

    def _layer(self, op: Any) -> Layer | None:
        """The dualnet layer for Keras layer ``op`` (made once; problems recorded)."""
        if id(op) in self.layers:
            return self.layers[id(op)]
        if self._is_input(op):
            self._input_layer(op)
            return self.layers.get(id(op))
        made = self._make(op)
        if made is not None:
            self._claim_name(made.name, op)
            self.layers[id(op)] = made
            self.sources[id(op)] = op
        return made

    def _make(self, op: Any) -> Layer | None:
        cls_name = type(op).__name__
        where = _where(op)
        classes = public_classes()
        if not isinstance(op, self.keras.layers.Layer):
            self.problems.append(
                f"operation {op.name!r} ({cls_name}): a keras.ops call (or a Python operator "
                "on Keras tensors) in the graph is not supported; use the equivalent layer "
                "(keras.layers.Add for +, Multiply for *, Reshape, Permute, Activation, ...)."
            )
            return None
        if cls_name not in classes or cls_name in _kl.STRUCTURAL or \
                type(op) is not getattr(self.keras.layers, cls_name, None):  # fmt: skip
            custom = cls_name in classes  # a subclass or a same-named class of the user's
            custom_why = "a custom class (a subclass of a Keras layer may change its call)"
            why = _WHY_NOT.get(cls_name) or (custom_why if custom else "no dualnet layer")
            self.problems.append(
                f"{where}: the layer class is not supported ({why}); dualnet maps these Keras "
                f"classes: {', '.join(_kl.supported_classes())}."
            )
            return None
        before = len(self.problems)
        config = op.get_config()
        self._layer_attributes(op, config, where)
        if cls_name == "Bidirectional":
            return self._bidirectional(op, config, where, before)
        cls = classes[cls_name]
        accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
        kwargs = _kl.layer_arguments(cls_name, config, where, self.problems, accepted)
        if len(self.problems) > before:
            return None
        try:
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            self.problems.append(f"{where}: {exc}")
            return None

    def _layer_attributes(self, op: Any, config: dict[str, Any], where: str) -> None:
        """Settings a Keras layer may hold outside its config (Layer-level keywords)."""
        if "activity_regularizer" not in config and getattr(op, "activity_regularizer", None):
            self.problems.append(
                f"{where}: activity_regularizer={describe(op.activity_regularizer)} is not "
                "supported (a regularizer adds a loss term in training); remove it."
            )
        policy = getattr(op, "dtype_policy", None)
        if policy is not None and "dtype" not in config:
            _kl.dtype_name(policy, where, self.problems)

    def _bidirectional(self, op: Any, config: dict[str, Any], where: str,
                       before: int) -> Layer | None:  # fmt: skip
        outer = {k: v for k, v in config.items() if k not in ("layer", "backward_layer")}
        kwargs = _kl.layer_arguments("Bidirectional", outer, where, self.problems,
                                     {"name", "dtype", "merge_mode", "trainable"})  # fmt: skip
        inner = []
        for sub in (op.forward_layer, op.backward_layer):
            inner.append(self._make(sub))
        if len(self.problems) > before or None in inner:
            return None
        try:
            return Bidirectional(inner[0], backward_layer=inner[1], **kwargs)
        except (TypeError, ValueError) as exc:
            self.problems.append(f"{where}: {exc}")
            return None

    # -- pass 2: build --------------------------------------------------------------------

    def build(self, model: Any, kind: str, name: str) -> Any:
        from dualnet.models import Model, Sequential

        if kind == "sequential":
            layers = [self.layers[id(model._layers[0])]]
            layers += [self.layers[id(layer)] for layer in self._flat_sequence(model)]
            return Sequential(layers, name=name)
        if isinstance(model, self.keras.Sequential):
            inputs = [self.layers[id(model._layers[0])].output]
            outputs = self._run(model, inputs)
            return Model(inputs[0], outputs[0], name=name)
        inputs = [self.layers[id(t._keras_history.operation)].output for t in model.inputs]
        outputs = self._run(model, inputs)
        tree = self.keras.tree
        return Model(tree.pack_sequence_as(model._inputs_struct, inputs),
                     tree.pack_sequence_as(model._outputs_struct, outputs),
                     name=name)  # fmt: skip

    def _run(self, model: Any, inputs: list[Any]) -> list[Any]:
        """``model``'s graph applied to dualnet symbolic ``inputs``; its outputs, flattened."""
        if self._kind_quiet(model) == "sequential":
            x = inputs[0]
            for layer in model.layers:
                x = self._apply(layer, (x,), {})[0]
            return [x]
        tensors = {id(k): t for k, t in zip(model.inputs, inputs, strict=True)}
        for depth in sorted(model._nodes_by_depth, reverse=True):
            for node in model._nodes_by_depth[depth]:
                if node.operation is None or node.is_input:
                    continue
                if any(id(x) not in tensors for x in node.input_tensors):
                    continue  # not computable from these inputs (Keras skips it too)
                if id(node) in self.mask_nodes:
                    tensors.update((id(k), None) for k in node.outputs)  # dualnet's own masks
                    continue
                args, kwargs = node.arguments.fill_in(tensors)
                for key in self.auto_masks.get(id(node), ()):
                    kwargs.pop(key, None)  # the mask attached to the input: dualnet's own
                outs = self._apply(node.operation, args, kwargs)
                for k, t in zip(node.outputs, outs, strict=True):
                    tensors[id(k)] = t
        return [tensors[id(k)] for k in model.outputs]

    def _apply(self, op: Any, args: tuple, kwargs: dict[str, Any]) -> list[Any]:
        """One Keras call replayed on dualnet tensors; the outputs, flattened."""
        tree = self.keras.tree
        if isinstance(op, self.keras.Model):
            return self._run(op, tree.flatten(args[0]))
        layer = self.layers[id(op)]
        named = _bind_values(op, args, kwargs)
        first = named.pop(next(iter(named)))
        call = {k: v for k, v in named.items()
                if k in layer.call_arguments and not _same(v, _default(op, k))}  # fmt: skip
        try:
            out = layer(list(first) if layer.multi_input else first, **call)
        except (TypeError, ValueError) as exc:
            raise UnsupportedModelError("from_keras: the dualnet twin cannot be built",
                                        [f"{_where(op)}: {exc}"]) from exc  # fmt: skip
        return out if isinstance(out, list) else [out]

    # -- weights --------------------------------------------------------------------------

    def copy_weights(self, twin: Any) -> None:
        """Each Keras layer's weights into its dualnet twin, shapes checked first for all."""
        pairs = [(self.sources[key], layer) for key, layer in self.layers.items()
                 if key in self.sources]  # fmt: skip
        problems, loads = [], []
        for op, layer in pairs:
            arrays = op.get_weights()
            shapes = [tuple(a.shape) for a in arrays]
            expected = layer.weight_shapes()
            if shapes != expected:
                problems.append(f"{_where(op)}: Keras weights of shapes {shapes}, dualnet "
                                f"expects {expected}.")  # fmt: skip
            loads.append((layer, arrays))
        if problems:
            raise UnsupportedModelError("from_keras: weights do not fit the dualnet twin",
                                        problems)  # fmt: skip
        for layer, arrays in loads:
            if arrays:
                layer.set_weights(arrays)


def _model_name(name: str) -> str:
    """The Keras model's name as a dualnet model name: ``.`` and ``/`` (which torch module
    paths and weight paths cannot hold) become ``_`` (``mobilenetv2_0.35_32`` ->
    ``mobilenetv2_0_35_32``). Layer names are kept exactly or refused: they name the weights
    and the per-layer comparisons."""
    return name.replace(".", "_").replace("/", "_") or "functional"


def _where(op: Any) -> str:
    return f"layer {getattr(op, 'name', '?')!r} ({type(op).__name__})"


def _nodes(model: Any) -> list[Any]:
    """A functional model's layer calls (input nodes left out)."""
    return [node for nodes in model._nodes_by_depth.values() for node in nodes
            if node.operation is not None and not node.is_input]  # fmt: skip


def _identical(a: list[Any], b: list[Any]) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b, strict=True))


def _bind_values(op: Any, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """Call arguments by name (Keras's ``call`` signature), the input first."""
    signature = inspect.signature(op.call)
    bound = signature.bind(*args, **kwargs)
    out: dict[str, Any] = {}
    for key, value in bound.arguments.items():
        if signature.parameters[key].kind == inspect.Parameter.VAR_KEYWORD:
            out.update(value)
        else:
            out[key] = value
    return out


def _default(op: Any, key: str) -> Any:
    parameter = inspect.signature(op.call).parameters.get(key)
    if parameter is None or parameter.default is inspect.Parameter.empty:
        return None
    return parameter.default


def _same(value: Any, default: Any) -> bool:
    """``value`` is the parameter's default (plain values only; tensors never are)."""
    if isinstance(value, bool | int | float | str | type(None)):
        return type(value) is type(default) and value == default
    return False
