"""Exporting a model for inference where dualnet is not installed.

    model.export("served")                  # TensorFlow: a SavedModel folder
    model.export("model.keras")             # TensorFlow: a .keras file (Keras built-ins only)
    model.export("model.pt2")               # torch: a torch.export program

========================  ==========  =============================================  ========
format                    backend     loaded by (no dualnet)                         default
========================  ==========  =============================================  ========
``"tf_saved_model"``      tensorflow  ``tf.saved_model.load(path).serve(x)``         a folder
``"keras"``               tensorflow  ``keras.saving.load_model(path)``              ``.keras``
``"torch_export"``        torch       ``torch.export.load(path).module()(x)``        ``.pt2``
========================  ==========  =============================================  ========

Every artefact computes the model in inference mode (``training=False``): dropout and the other
portable-noise layers are the identity, BatchNormalization uses its moving statistics. The batch
dimension stays dynamic (``None`` in the SavedModel's signature, a ``torch.export.Dim`` in the
program); other dimensions are those of the model's inputs, and a dimension the model leaves
open (``Input(shape=(None, 8))``) takes its size from ``example_inputs``.

What cannot be exported, and why
--------------------------------
* ``.keras``: only when every layer is realised by a *Keras built-in* layer. dualnet's
  TensorFlow backend adopts Keras's own layer only where it computes exactly dualnet's documented
  math (Dense, LayerNormalization, Flatten, Add, ...); elsewhere (Conv2D, BatchNormalization,
  Dropout, LSTM, Embedding, ...) it uses its own Keras layer class, which Keras cannot rebuild
  without dualnet. Activations must be ones whose Keras built-in computes dualnet's value exactly
  in float32/float64 (:data:`KERAS_EXACT_ACTIVATIONS`): the file names Keras's function, so a
  half-precision layer (Keras computes it in half; dualnet in float32, rounded once) or another
  activation is refused. A subclassed model is refused (its ``call`` is Python). The error lists
  every offending layer at once; the SavedModel has none of these limits.
* ``.pt2``: ``torch.export`` traces the torch modules. When it cannot, its own error is passed
  on (its first line) in an :class:`ExportError`; a batch size fixed by Python code (a
  subclassed model's ``call`` reads it as an int) is recognised and explained.
  :data:`TORCH_EXPORT_LIMITS` lists layer classes known not to trace, with the reason, to name
  them in that error (none today: the Embedding's id check became an assert in the program).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any

import numpy as np

from dualnet._backend import backend_module
from dualnet.dtypes import FLOATX
from dualnet.errors import bad_type, bad_value

__all__ = ["FORMATS", "KERAS_EXACT_ACTIVATIONS", "TORCH_EXPORT_LIMITS", "ExportError",
           "export_model"]  # fmt: skip

FORMATS: dict[str, str] = {"tf_saved_model": "tensorflow", "keras": "tensorflow",
                           "torch_export": "torch"}  # fmt: skip

# dualnet activations whose TensorFlow realisation is the Keras built-in of the same name,
# called with no argument (backends/tensorflow/nn.py), so a .keras file naming Keras's function
# computes the same float32/float64 values.
KERAS_EXACT_ACTIVATIONS = frozenset({
    "sigmoid", "tanh", "relu", "relu6", "silu", "softplus", "softsign", "hard_sigmoid",
    "exponential", "softmax",
})  # fmt: skip

# Layers whose torch module reads tensor values on the host, which torch.export cannot trace.
# (A subclassed model's call() runs dualnet's layer calls, which read the batch size as an int:
# its program needs dynamic_batch=False.)
TORCH_EXPORT_LIMITS: dict[str, str] = {}  # layer class -> why torch.export cannot trace it


class ExportError(ValueError):
    """The model cannot be exported in the requested format.

    Attributes:
        problems: one line per problem (layer name, class, why).
    """

    def __init__(self, what: str, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{what}:\n{lines}" if problems else what)


def export_model(model: Any, path: Any, format: str | None = None, *,
                 example_inputs: Any = None, dynamic_batch: bool = True,
                 overwrite: bool = True) -> str:  # fmt: skip
    """Write ``model`` as an inference artefact its framework loads without dualnet.

    Args:
        model: a built dualnet model.
        path: a folder (SavedModel), a ``.keras`` file or a ``.pt2`` file.
        format: ``"tf_saved_model"``, ``"keras"`` or ``"torch_export"`` (table above); default:
            ``"torch_export"`` on torch, on TensorFlow ``"keras"`` for a ``.keras`` path and
            ``"tf_saved_model"`` otherwise. It must match the model's backend (use
            ``model.to_backend(...)`` first).
        example_inputs: an array (a list for several inputs) whose non-batch shape and dtype the
            artefact takes; default: the model's input shapes and dtypes.
        dynamic_batch: the artefact takes any batch size (default); False fixes it to the
            batch size of ``example_inputs`` (1 without them), for models whose Python code reads
            the batch size (a subclassed model's ``call`` on torch, see
            :data:`TORCH_EXPORT_LIMITS`).
        overwrite: replace an existing ``path`` (atomically); False refuses.

    Returns:
        ``path`` as a string.

    Raises:
        ExportError: the model cannot be exported in that format (every reason listed).
    """
    where = f"{model._where()}.export"
    if not isinstance(path, str | os.PathLike):
        raise bad_type("path", path, "a str or os.PathLike", where=where)
    target = os.fspath(path)
    for name, flag in (("overwrite", overwrite), ("dynamic_batch", dynamic_batch)):
        if not isinstance(flag, bool):
            raise bad_type(name, flag, "a bool", where=where)
    if not model.built:
        raise ValueError(f"{where}: the model is not built yet; call it on data first.")
    fmt = _resolve_format(model, target, format, where)
    if not overwrite and os.path.lexists(target):
        raise FileExistsError(f"{where}: {target} exists and overwrite=False.")
    specs, single = input_specs(model, example_inputs, dynamic_batch, where)
    writer = {"tf_saved_model": _saved_model, "keras": _keras_file, "torch_export": _torch}[fmt]
    folder = os.path.dirname(os.path.abspath(target))
    staging = tempfile.mkdtemp(dir=folder, prefix=f".{os.path.basename(target)}.")
    try:
        built = writer(model, os.path.join(staging, os.path.basename(target)), specs, single)
        _move_into_place(built, target, overwrite, where)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _resolve_format(model: Any, target: str, format: str | None, where: str) -> str:
    if format is None:
        if model.backend == "torch":
            return "torch_export"
        return "keras" if target.endswith(".keras") else "tf_saved_model"
    if format not in FORMATS:
        raise bad_value("format", format, f"one of {', '.join(map(repr, FORMATS))}", where=where)
    if FORMATS[format] != model.backend:
        raise ValueError(
            f"{where}: format {format!r} exports a {FORMATS[format]} model; this model is on "
            f"{model.backend!r}: use model.to_backend({FORMATS[format]!r}).export(...)."
        )
    if format == "keras" and not target.endswith(".keras"):
        raise bad_value("path", target, "a path ending in .keras for format='keras'", where=where)
    return format


def input_specs(model: Any, example_inputs: Any, dynamic_batch: bool, where: str
                ) -> tuple[list[tuple[tuple[int | None, ...], str]], bool]:  # fmt: skip
    """The artefact's inputs: ``(shape, dtype)`` each, the batch None when dynamic, and whether
    the model takes one tensor (not a list)."""
    kind = type(model).__name__
    if kind == "Functional":
        specs = [(tuple(layer.input_shape), layer.dtype) for layer in model._input_layers()]
        single = model._single[0]
    elif kind == "Sequential":
        specs, single = [(tuple(model._build_input_shape), model.input_dtype())], True
    else:  # subclassed: built by a first call, on float32 data unless told otherwise
        shape = model._build_input_shape
        single = not isinstance(shape, list)
        specs = [(tuple(s), FLOATX) for s in ([shape] if single else shape)]
    if example_inputs is not None:
        xs = [example_inputs] if single else example_inputs
        if not isinstance(xs, list | tuple) or len(xs) != len(specs):
            raise bad_value("example_inputs", example_inputs,
                            f"{'an array' if single else f'a list of {len(specs)} arrays'}",
                            where=where)  # fmt: skip
        out = []
        for (shape, _), x in zip(specs, xs, strict=True):
            x = np.asarray(x)
            if x.ndim != len(shape) or any(
                d is not None and d != s for d, s in zip(shape[1:], x.shape[1:], strict=True)
            ):
                raise bad_value("example_inputs", f"an array of shape {x.shape}",
                                f"shape {shape} (batch first)", where=where)  # fmt: skip
            out.append(((None if dynamic_batch else x.shape[0], *x.shape[1:]), x.dtype.name))
        return out, single
    open_dims = [s for s, _ in specs if any(d is None for d in s[1:])]
    if open_dims:
        raise bad_value("example_inputs", None, f"arrays fixing the open dimensions of input "
                        f"shape(s) {open_dims}", where=where)  # fmt: skip
    if not dynamic_batch:
        specs = [((1, *shape[1:]), dtype) for shape, dtype in specs]
    return specs, single


def _move_into_place(built: str, target: str, overwrite: bool, where: str) -> None:
    """Rename the finished artefact onto ``target``; an old one is moved aside first and
    deleted only after the new one is in place."""
    old = None
    if os.path.lexists(target):
        if not overwrite:
            raise FileExistsError(f"{where}: {target} exists and overwrite=False.")
        old = f"{built}.old"
        os.rename(target, old)
    try:
        os.rename(built, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    if old is not None:
        shutil.rmtree(old) if os.path.isdir(old) else os.unlink(old)


# --------------------------------------------------------------------------------------------
# TensorFlow


def _signature(specs: list, single: bool) -> list:
    import tensorflow as tf

    tensors = [tf.TensorSpec(shape, tf.as_dtype(dtype)) for shape, dtype in specs]
    return [tensors[0]] if single else [tensors]  # one argument: a tensor or a list of them


def _saved_model(model: Any, path: str, specs: list, single: bool) -> str:
    """Keras 3's ``export``: a SavedModel with a ``serve`` endpoint (training=False)."""
    backend_module("tensorflow")
    try:
        model.native.export(path, format="tf_saved_model", verbose=False,
                            input_signature=_signature(specs, single))  # fmt: skip
    except Exception as exc:
        raise ExportError(f"{model._where()}: Keras could not export a SavedModel",
                          [f"{type(exc).__name__}: {exc}"]) from exc  # fmt: skip
    return path


def keras_problems(model: Any) -> list[str]:
    """Why ``model`` cannot be a ``.keras`` file loadable without dualnet (empty: it can)."""
    from dualnet import activations
    from dualnet.layers import InputLayer

    problems = []
    if type(model).__name__ not in ("Sequential", "Functional"):
        problems.append(f"model {model.name!r} ({type(model).__name__}): a subclassed model; "
                        "its call() is Python code that a .keras file cannot hold")  # fmt: skip
    for layer in model.layers:
        if isinstance(layer, InputLayer):
            continue
        cls = type(layer.native)
        if not cls.__module__.startswith("keras."):
            problems.append(
                f"{layer.name} ({type(layer).__name__}): realised by dualnet's own Keras layer "
                f"{cls.__module__}.{cls.__qualname__}, because no Keras built-in computes "
                "dualnet's documented math exactly; Keras cannot rebuild it without dualnet"
            )  # fmt: skip
            continue
        act = getattr(layer, "activation", None)
        name = None if act is None else activations.serialize(act)
        if act is None or name == "linear":
            continue
        if name not in KERAS_EXACT_ACTIVATIONS:
            problems.append(f"{layer.name} ({type(layer).__name__}): activation {name!r} has no "
                            "Keras built-in computing dualnet's values exactly; exactly "
                            f"computed: {', '.join(sorted(KERAS_EXACT_ACTIVATIONS))}")  # fmt: skip
        elif layer.dtype not in ("float32", "float64"):
            problems.append(f"{layer.name} ({type(layer).__name__}): activation {name!r} in "
                            f"{layer.dtype}: Keras computes it in {layer.dtype}, dualnet in "
                            "float32 rounded once")  # fmt: skip
    return problems


def _keras_file(model: Any, path: str, specs: list, single: bool) -> str:
    """The native model saved by Keras (config JSON + weights), after :func:`keras_problems`."""
    problems = keras_problems(model)
    if problems:
        raise ExportError(
            f"{model._where()} cannot be a .keras file that Keras loads without dualnet "
            "(export format='tf_saved_model' has no such limit)", problems,
        )  # fmt: skip
    model.native.save(path)
    return path


# --------------------------------------------------------------------------------------------
# torch


def _torch(model: Any, path: str, specs: list, single: bool) -> str:
    """``torch.export.export`` of the native module in inference mode, batch dimension dynamic,
    saved with ``torch.export.save``."""
    backend_module("torch")
    import torch

    from dualnet.backends.torch import core

    class Serving(torch.nn.Module):
        """``forward(*inputs)``: the model's native module with ``training=False``."""

        def __init__(self) -> None:
            super().__init__()
            self.model = model.native

        def forward(self, *inputs: Any) -> Any:
            if type(model).__name__ in ("Sequential", "Functional"):
                return self.model(*inputs, training=False)
            return self.model(inputs[0] if single else list(inputs), training=False)

    dynamic = specs[0][0][0] is None
    # Batch 2 when dynamic: torch.export specialises dimensions of size 0 and 1.
    args = tuple(torch.zeros((2 if dynamic else shape[0], *shape[1:]),
                             dtype=core.native_dtype(dtype)) for shape, dtype in specs)  # fmt: skip
    batch = torch.export.Dim("batch")
    shapes = (tuple({0: batch} for _ in specs),) if dynamic else None
    try:
        program = torch.export.export(Serving(), args, dynamic_shapes=shapes)
    except Exception as exc:
        kinds = [(layer.name, type(layer).__name__) for layer in model.layers]
        known = [
            f"{n} ({k}): {TORCH_EXPORT_LIMITS[k]}" for n, k in kinds if k in TORCH_EXPORT_LIMITS
        ]
        if "specialized it to be a constant" in str(exc):
            known.insert(0, "the batch dimension: Python code in the model reads the batch size "
                         "as an int (dualnet's layer calls inside a subclassed model's call() "
                         "check input shapes), which fixes it; export with dynamic_batch=False "
                         "and example_inputs of the batch size to serve")  # fmt: skip
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportError(f"{model._where()}: torch.export could not trace the model "
                          f"({type(exc).__name__}: {first})", known) from exc  # fmt: skip
    torch.export.save(program, path)
    return path
