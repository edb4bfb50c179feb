"""Saving and loading models: one ``safetensors`` file, no pickle anywhere.

    model.save("model.safetensors")
    model = dn.load_model("model.safetensors")                  # on the active backend
    model = dn.load_model("model.safetensors", backend="tensorflow")

==============================  ==============================  ==============================
torch                           Keras                           dualnet
==============================  ==============================  ==============================
``torch.save``: a pickle        ``.keras``: a zip of config     one safetensors file: the
(``weights_only=True`` limits   JSON and HDF5 weights; classes  description as JSON in its
what it may build); no config   imported by registered name     header, raw tensors; nothing
                                                                imported or unpickled
==============================  ==============================  ==============================

Note [The model file]
---------------------
A model file is a plain `safetensors <https://github.com/huggingface/safetensors>`_ file:
an 8-byte little-endian header length, a JSON header, then the raw tensor bytes. Loading it
parses JSON and copies bytes; nothing in it is ever executed or unpickled, so an untrusted file
cannot run code. The header's ``__metadata__`` holds two strings:

* ``"format": "dualnet.model"``;
* ``"dualnet"``: a JSON document (:data:`FORMAT_VERSION`, the dualnet version, the backend it
  was saved on, the model's class and ``get_config()``, its build input shape, the layer names,
  the weight list, the layers' runtime state and, for a compiled model, the training
  configuration).

Tensors, keyed by name:

* every weight, in canonical (Keras) layout and its own dtype (float32, float64, float16,
  bfloat16), under its path ``model/layer/weight`` (moving statistics included);
* for a compiled model whose optimizer has been built: ``optimizer/iterations`` (int64, shape
  ``()``) and one ``optimizer/<slot>/<weight path>`` per slot and trainable weight, also in
  canonical layout, so a file saved on one backend resumes training on the other.

Decisions
---------
* The model's class is never imported from a name in the file: ``Sequential`` and functional
  models are rebuilt from dualnet's own classes, a subclassed model only from the class passed
  in ``custom_objects`` (custom layers and loss/metric functions likewise).
* Everything the file says is checked (header, tensor names, shapes, dtypes, sizes) before
  any model is created; the rebuilt model's weight list is then compared with the file's
  before a value is assigned. A failure raises :class:`ModelFileError` naming the file and the
  problem; :func:`load_weights` leaves the model untouched on any failure.
* Loading rebuilds the model through its config, which draws initial weights from dualnet's
  global generator and takes automatic names; both are put back afterwards, so loading a file
  changes neither the seeds later layers get nor their names.
* Writes are atomic: the bytes go to a temporary file in the target folder, which is then
  renamed over the target, so a failed save never leaves half a file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

from dualnet import layers as _layers
from dualnet._backend import canonical_name, get_backend, use_backend
from dualnet.errors import bad_type
from dualnet.saving_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    ModelFile,
    ModelFileError,
    check_path,
    describe_model,
    read_model_file,
    to_json,
    write_atomic,
)
from dualnet.saving_training import TrainingPlan

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "ModelFileError", "load_model", "load_weights",
           "read_model_file", "save_model"]  # fmt: skip


# --------------------------------------------------------------------------------------------
# Saving


def save_model(model: Any, path: Any, *, overwrite: bool = True) -> None:
    """Write ``model`` to one safetensors file (Note [The model file]); see :meth:`Model.save`."""
    where = f"{model._where()}.save"
    target = check_path(path, where)
    if not isinstance(overwrite, bool):
        raise bad_type("overwrite", overwrite, "a bool", where=where)
    if not model.built:
        raise ValueError(f"{where}: the model is not built yet; call it on data (or build it) "
                         "before saving.")  # fmt: skip
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(f"{where}: {target} exists and overwrite=False.")
    document, tensors = describe_model(model, where)
    text = to_json(document, where)
    from safetensors.numpy import save

    data = save(tensors, metadata={"format": FORMAT_NAME, "dualnet": text})
    write_atomic(target, data, overwrite, where)


# --------------------------------------------------------------------------------------------
# Loading


def load_model(path: Any, *, backend: str | None = None, custom_objects: Mapping[str, Any] | None
               = None, compile: bool = True) -> Any:  # fmt: skip
    """Rebuild a model saved by :meth:`Model.save` (Note [The model file]).

    Args:
        path: the file.
        backend: realise the model on this backend (default: the active one), whichever
            backend saved it; weights are restored bit for bit.
        custom_objects: ``{class name: class}`` for a subclassed model's class and for custom
            layers, ``{function name: function}`` for custom losses and metrics. Classes are
            never imported from names in the file.
        compile: restore the training configuration (optimizer with its state, loss,
            metrics) when the file has one, so training resumes where it stopped.

    Raises:
        ModelFileError: the file is not a dualnet model file, is corrupt or truncated, was
            written by a newer dualnet, or does not fit the model its description rebuilds.
    """
    if custom_objects is not None and not isinstance(custom_objects, Mapping):
        raise bad_type("custom_objects", custom_objects, "a dict {name: class or function}",
                       where="load_model")  # fmt: skip
    if not isinstance(compile, bool):
        raise bad_type("compile", compile, "a bool", where="load_model")
    target = canonical_name(backend) if backend is not None else get_backend()
    file = read_model_file(path)
    custom = dict(custom_objects or {})
    doc = file.document
    cls = _model_class(file, custom)
    training = doc.get("training") if compile else None
    plan = None
    if training is not None:
        plan = TrainingPlan(file, training, custom)  # checked before any model exists
    with _global_state_kept(), use_backend(target):
        model = _rebuild(file, cls, custom)
        _check_fits(file, model)
        layers = {layer.name: layer for layer in model.layers}
        _check_runtime_state(file, model, layers)
        model.set_weights(file.weight_arrays())
        _set_runtime_state(file, layers)
        if plan is not None:
            plan.apply(model)
    return model


def load_weights(model: Any, path: Any) -> None:
    """Load the weights (and layers' runtime state) of a model file into ``model``: a built
    model with the same layer classes in the same order and the same weight shapes and dtypes
    (names may differ, e.g. a twin on the other backend). Everything is checked first: on any
    error the model is left exactly as it was."""
    from dualnet.models import Model

    if not isinstance(model, Model):
        raise bad_type("model", model, "a dualnet Model", where="load_weights")
    if not model.built:
        raise ValueError(f"{model._where()}.load_weights: the model is not built yet.")
    file = read_model_file(path, where="load_weights")
    saved = file.document["model"]["layers"]
    have = [type(layer).__name__ for layer in model.layers]
    if have != [entry[1] for entry in saved]:
        raise ModelFileError(file.path, f"the layers do not fit {model._where()}: it has "
                             f"{have}, the file {[entry[1] for entry in saved]}.")  # fmt: skip
    _check_fits(file, model, by_position=True)
    layers = {entry[0]: layer for entry, layer in zip(saved, model.layers, strict=True)}
    _check_runtime_state(file, model, layers)
    model.set_weights(file.weight_arrays())  # validated again, all before any assignment
    _set_runtime_state(file, layers)


def _set_runtime_state(file: ModelFile, layers: dict[str, Any]) -> None:
    for name, state in file.document["runtime_state"].items():
        layers[name].set_runtime_state(state)


def _model_class(file: ModelFile, custom: dict[str, Any]) -> type:
    from dualnet import models

    info = file.document["model"]
    if not info["subclassed"]:
        classes = {"Sequential": models.Sequential, "Functional": models.Functional}
        if info["class_name"] not in classes:
            raise ModelFileError(
                file.path,
                f"corrupt model description: class "
                f"{info['class_name']!r} is not Sequential or Functional.",
            )
        return classes[info["class_name"]]
    name = info["class_name"]
    cls = custom.get(name, custom.get(info.get("class_path", "")))
    if cls is None:
        raise ModelFileError(
            file.path, f"the model is an instance of the subclassed model class {name!r} "
            f"({info.get('class_path')}); pass it as custom_objects={{{name!r}: {name}}} "
            "(dualnet never imports a class named by a file)."
        )  # fmt: skip
    if not (isinstance(cls, type) and issubclass(cls, models.Model)):
        raise bad_type(f"custom_objects[{name!r}]", cls, "a dualnet Model subclass",
                       where="load_model")  # fmt: skip
    return cls


def _rebuild(file: ModelFile, cls: type, custom: dict[str, Any]) -> Any:
    """The model from its config, named and built as when it was saved (weights not set)."""
    info = file.document["model"]
    layer_classes = {k: v for k, v in custom.items()
                     if isinstance(v, type) and issubclass(v, _layers.Layer)}  # fmt: skip
    try:
        if info["subclassed"]:
            model = cls.from_config(info["config"])
        else:
            model = cls.from_config(info["config"], layer_classes or None)
    except (TypeError, ValueError, KeyError, IndexError) as exc:
        raise ModelFileError(
            file.path, f"cannot rebuild the model from its config: {type(exc).__name__}: {exc}"
        ) from None
    if info["subclassed"]:
        names = info["layers"]
        layers = model.layers
        if [type(layer).__name__ for layer in layers] != [entry[1] for entry in names]:
            raise ModelFileError(file.path, f"{cls.__name__}(**config) makes layers "
                                 f"{[type(x).__name__ for x in layers]}, the file has "
                                 f"{[entry[1] for entry in names]}.")  # fmt: skip
        object.__setattr__(model, "_name", info["name"])  # weight paths start with it
        for layer, entry in zip(layers, names, strict=True):
            layer._name = entry[0]  # automatic names of __init__ give way to the saved ones
        shape = info["build_input_shape"]
        if shape is not None and not model.built:
            built = (
                [tuple(s) for s in shape] if shape and isinstance(shape[0], list) else tuple(shape)
            )
            model._build_like(SimpleNamespace(_build_input_shape=built))
        for layer, entry in zip(layers, names, strict=True):
            layer.trainable = entry[2]  # set after __init__, so not in the config
    return model


def _check_fits(file: ModelFile, model: Any, *, by_position: bool = False) -> None:
    """The model's weight list equals the file's: paths, shapes, dtypes and trainability, or
    only shapes and dtypes, in order (``by_position``, for :func:`load_weights`)."""

    def entries(items: list[tuple[str, tuple, str, bool]]) -> list[tuple]:
        return [item[1:3] if by_position else item for item in items]

    have = entries([(w.path, tuple(w.shape), w.dtype, w.trainable) for w in model.weights])
    want = entries([(w["key"], tuple(w["shape"]), w["dtype"], w["trainable"])
                    for w in file.weights])  # fmt: skip
    if have != want:
        diff = [f"{a} != {b}" for a, b in zip(have, want, strict=False) if a != b][:3]
        if len(have) != len(want):
            diff.append(f"{len(have)} weights in the model, {len(want)} in the file")
        raise ModelFileError(file.path, f"the weights do not fit {model._where()}: "
                             + "; ".join(diff) + ".")  # fmt: skip


def _check_runtime_state(file: ModelFile, model: Any, layers: dict[str, Any]) -> None:
    """Each saved runtime state belongs to one of ``layers`` (by saved name) and has that
    layer's keys, with non-negative int values."""
    for name, state in file.document["runtime_state"].items():
        layer = layers.get(name)
        if layer is None or set(state) != set(layer.get_runtime_state()):
            raise ModelFileError(file.path, f"runtime state for layer {name!r} does not fit "
                                 f"{model._where()}.")  # fmt: skip
        if not _plain_ints(state):
            raise ModelFileError(file.path, f"runtime state for layer {name!r} holds values "
                                 "other than non-negative ints.")  # fmt: skip


def _plain_ints(value: Any) -> bool:
    if isinstance(value, dict):
        return all(_plain_ints(v) for v in value.values())
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class _global_state_kept:
    """Put back dualnet's global generator and automatic-name counters on exit (a rebuild
    draws initial weights and takes names; loading a file must change neither)."""

    def __enter__(self) -> None:
        from dualnet import random as _random
        from dualnet.layers import base

        self._generator = _random._generator
        self._state = self._generator.bit_generator.state
        self._names = dict(base._name_counts)

    def __exit__(self, *exc: Any) -> None:
        from dualnet import random as _random
        from dualnet.layers import base

        _random._generator = self._generator
        self._generator.bit_generator.state = self._state
        base._name_counts.clear()
        base._name_counts.update(self._names)
