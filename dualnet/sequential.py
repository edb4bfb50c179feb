"""Sequential models: a plain stack of layers (Keras's ``keras.Sequential``); see
:mod:`dualnet.models` for what every model shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dualnet import _ops
from dualnet import layers as _layers
from dualnet._backend import backend_module, get_backend
from dualnet.dtypes import FLOATX
from dualnet.errors import bad_type, bad_value
from dualnet.layers import (
    InputLayer,
    Layer,
    SymbolicTensor,
    format_shape,
)
from dualnet.models import (
    Model,
    _to_input_dtype,
)

__all__ = ["Sequential"]

# Input signatures (shape, dtype) a model keeps as checked (more: forgotten, checked again).
_MAX_CHECKED = 64


class Sequential(Model):
    """A plain stack of layers, each feeding the next (Keras's ``keras.Sequential``).

    Args:
        layers: layers in order; the first may be ``dn.Input(shape)`` (or a layer given
            ``input_shape=``), which builds the model at construction on the active backend.
            Without it the model is built on its first call.
        name: default ``sequential``, ``sequential_1``, ...
    """

    def __init__(self, layers: Sequence[Any] | None = None, name: str | None = None):
        super().__init__(name=name)
        object.__setattr__(self, "_layers", [])
        object.__setattr__(self, "_input_layer", None)
        if layers is not None:
            if not isinstance(layers, list | tuple):
                raise bad_type("layers", layers, "a list of layers", where=self._where())
            for item in layers:
                self._add(item)
        self._maybe_build()

    @property
    def layers(self) -> list[Layer]:
        return list(self._layers)

    def _input_layers(self) -> list[InputLayer]:
        return [] if self._input_layer is None else [self._input_layer]

    def _add(self, item: Any) -> None:
        if isinstance(item, SymbolicTensor):
            item = item.history[0]
        if isinstance(item, Model):
            raise TypeError(f"{self._where()}: nesting models is not supported; add its layers.")
        if not isinstance(item, Layer):
            raise bad_type("layer", item, "a dualnet layer or dn.Input(...)", where=self._where())
        if isinstance(item, InputLayer):
            if self._layers or self._input_layer is not None:
                raise ValueError(f"{self._where()}: an Input must come first, and only once.")
            object.__setattr__(self, "_input_layer", item)
            return
        if any(layer.name == item.name for layer in self._layers):
            raise ValueError(
                f"All layers added to a Sequential model should have unique names. Name "
                f"{item.name!r} is already the name of a layer in this model. Update the `name` "
                "argument to pass a unique name."
            )
        if item in self._layers:
            raise ValueError(f"{self._where()}: layer {item.name!r} is already in the model.")
        if not self._layers and self._input_layer is None and item._input_shape_arg is not None:
            # Keras: a first layer given input_shape makes an implicit Input.
            object.__setattr__(
                self, "_input_layer", InputLayer(item._input_shape_arg, dtype=item.dtype)
            )
        self._layers.append(item)

    def add(self, layer: Any) -> None:
        """Append a layer (or ``dn.Input`` first); a built model builds the new layer too."""
        if self.built and (isinstance(layer, SymbolicTensor | InputLayer)):
            raise ValueError(f"{self._where()}: cannot add an Input to a built model.")
        before = (list(self._layers), self._input_layer)
        self._add(layer)
        try:
            if self.built:
                self._realise(self._build_input_shape, self._backend)
            else:
                self._maybe_build()
        except BaseException:
            object.__setattr__(self, "_layers", before[0])
            object.__setattr__(self, "_input_layer", before[1])
            raise

    def _maybe_build(self) -> None:
        if self._input_layer is not None and self._layers:
            self._realise(self._input_layer.input_shape, get_backend())

    def _realise(self, input_shape: tuple, backend: str) -> None:
        foreign = [layer.name for layer in self._layers if layer.backend not in (None, backend)]
        if foreign:
            raise ValueError(
                f"{self._where()}: layers {foreign} are built on another backend than {backend!r}."
            )
        shape = tuple(input_shape)
        for layer in self._layers:  # every shape is checked before anything is realised
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        for layer in self._layers:
            layer._realise(backend)
        if self._input_layer is not None:
            self._input_layer._realise(backend)
        native = backend_module(backend).models.sequential(self, tuple(input_shape))
        object.__setattr__(self, "_build_input_shape", tuple(input_shape))
        object.__setattr__(self, "_backend", backend)
        object.__setattr__(self, "_native", native)

    def input_dtype(self) -> str:
        if self._input_layer is not None:
            return self._input_layer.dtype
        if self._layers and self._layers[0].integer_input:
            return "int32"  # ids for an Embedding (Keras's Embedding casts to int32 too)
        return self._layers[0].dtype if self._layers else FLOATX

    def _first_call(self, tensors: list[Any], single: bool, backend: str,
                    training: bool = False) -> Any:  # fmt: skip
        if not self._layers:
            raise ValueError(f"{self._where()} has no layers.")
        self._layers[0].check_input_shape(tuple(tensors[0].shape))
        self._realise((None, *tuple(tensors[0].shape)[1:]), backend)
        return self(tensors[0], training=training)

    def _prepare(self, tensors: list[Any], core: Any) -> list[Any]:
        t = tensors[0]
        # The checks below depend only on the input's shape and dtype: a signature that has
        # passed them once, with no cast to make, is not checked again (a training loop calls
        # with the same one at every step).
        key = (tuple(t.shape), t.dtype)
        checked = self.__dict__.get("_checked_inputs")
        if checked is not None and key in checked:
            return [t]
        t = _to_input_dtype(t, self.input_dtype(), core, self._where)
        shape = tuple(t.shape)
        # The first layer's own check gives the most specific message ("Dense 'dense' expects
        # inputs with last dimension 3, ..."); then the whole build shape is compared.
        self._layers[0].check_input_shape(shape)
        expected = self._build_input_shape
        if len(shape) != len(expected) or any(
            e is not None and e != s for e, s in zip(expected[1:], shape[1:], strict=True)
        ):
            raise ValueError(
                f"{self._where()} expects inputs of shape {format_shape(expected)}, got shape "
                f"{shape}."
            )
        if t is tensors[0]:  # no cast was needed: the signature is checked for next time
            if checked is None or len(checked) >= _MAX_CHECKED:
                checked = set()
                object.__setattr__(self, "_checked_inputs", checked)
            checked.add(key)
        return [t]

    def _run(self, tensors: list[Any], single: bool, training: bool) -> Any:
        return _ops.package(self._backend).models.call(self._native, tensors, True, training)

    def _graph(self) -> list[tuple[Layer, list[Layer], tuple | None]]:
        out: list[tuple[Layer, list[Layer], tuple | None]] = []
        previous: list[Layer] = []
        if self._input_layer is not None:
            out.append((self._input_layer, [], self._input_layer.input_shape))
            previous = [self._input_layer]
        for layer in self._layers:
            out.append((layer, previous, layer.output_shape))
            previous = [layer]
        return out

    def build(self, input_shape: Any) -> None:
        """Build for inputs of ``input_shape`` (batch dimension included), as Keras."""
        if self.built:
            return
        if not isinstance(input_shape, tuple | list) or len(input_shape) < 1:
            raise bad_type("input_shape", input_shape, "a tuple including the batch dimension",
                           where=self._where())  # fmt: skip
        if not self._layers:
            raise ValueError(f"{self._where()} has no layers.")
        self._realise((None, *tuple(input_shape)[1:]), get_backend())

    def get_config(self) -> dict[str, Any]:
        layers = [_layers.serialize(layer) for layer in self._layers]
        if self._input_layer is not None:
            layers.insert(0, _layers.serialize(self._input_layer))
        return {
            "name": self.name,
            "layers": layers,
            "build_input_shape": (
                None if self._build_input_shape is None else list(self._build_input_shape)
            ),
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Sequential:
        if not isinstance(config, dict) or "layers" not in config:
            raise bad_value("config", config, "a dict from Sequential.get_config()")
        layers = [_layers.get(c, custom_objects) for c in config["layers"]]
        model = cls(layers, name=config.get("name"))
        shape = config.get("build_input_shape")
        if shape is not None and not model.built:
            model.build(tuple(shape))
        return model
