"""The model file's format: writing it atomically, reading and checking it completely (Note
[The model file] in :mod:`dualnet.saving`)."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from dualnet.dtypes import numpy_dtype
from dualnet.errors import bad_type

FORMAT_NAME = "dualnet.model"
FORMAT_VERSION = 1
OPTIMIZER_PREFIX = "optimizer/"
ITERATIONS_KEY = "optimizer/iterations"

# safetensors dtype codes <-> dualnet dtype names (weights are floating; the counter is int64).
_CODES = {"F32": "float32", "F64": "float64", "F16": "float16", "BF16": "bfloat16",
          "I64": "int64"}  # fmt: skip
# Leading bytes of files people mistake for a model file, and what they are.
_MAGIC = {
    b"PK\x03\x04": "a zip archive (a Keras .keras file or a torch.save file?); dualnet model "
    "files are safetensors: import a Keras model with dn.from_keras",
    b"\x80": "a pickle stream; dualnet never unpickles (loading one could run code)",
    b"\x89HDF": "an HDF5 file (a Keras .h5 file?)",
}


class ModelFileError(ValueError):
    """A file that is not a dualnet model file, or one that does not fit the model.

    Attributes:
        path: the file.
        problem: what is wrong, in words.
    """

    def __init__(self, path: Any, problem: str):
        self.path = os.fspath(path) if isinstance(path, str | os.PathLike) else str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


# --------------------------------------------------------------------------------------------
# Writing


def describe_model(model: Any, where: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """The header document and the tensors of ``model``'s file."""
    from dualnet import models

    cls = type(model)
    subclassed = cls not in (models.Sequential, models.Functional)
    try:
        config = model.get_config()
    except NotImplementedError as exc:
        raise ValueError(f"{where}: {exc}") from None
    tensors: dict[str, np.ndarray] = {}
    weights = []
    for info, array in zip(model.weights, model.get_weights(), strict=True):
        if info.path in tensors:
            raise ValueError(f"{where}: two weights share the path {info.path!r}; layer names "
                             "must be unique within a model.")  # fmt: skip
        tensors[info.path] = np.ascontiguousarray(array)
        weights.append({"key": info.path, "shape": list(info.shape), "dtype": info.dtype,
                        "trainable": info.trainable})  # fmt: skip
    runtime = {layer.name: layer.get_runtime_state() for layer in model.layers
               if layer.get_runtime_state()}  # fmt: skip
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "dualnet_version": _version(),
        "backend": model.backend,
        "model": {
            "class_name": cls.__name__,
            "class_path": f"{cls.__module__}.{cls.__qualname__}",  # informative only
            "subclassed": subclassed,
            "name": model.name,
            "config": config,
            "build_input_shape": _shape_json(model._build_input_shape),
            "layers": [
                [layer.name, type(layer).__name__, layer.trainable] for layer in model.layers
            ],
        },
        "weights": weights,
        "runtime_state": runtime,
        "training": None,
    }
    if model.compiled:
        from dualnet.saving_training import describe_training

        document["training"] = describe_training(model, tensors, where)
    return document, tensors


def _version() -> str:
    import dualnet

    return dualnet.__version__


def _shape_json(shape: Any) -> Any:
    if shape is None:
        return None
    if isinstance(shape, list):
        return [list(s) for s in shape]
    return list(shape)


def to_json(document: dict[str, Any], where: str) -> str:
    try:
        return json.dumps(document, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"{where}: the model's description is not plain JSON ({exc}); custom callables "
            "(activations, initializers) cannot be saved by value: use built-in names, or a "
            "layer class whose get_config() returns plain values."
        ) from None


def check_path(path: Any, where: str) -> str:
    if not isinstance(path, str | os.PathLike):
        raise bad_type("path", path, "a str or os.PathLike", where=where)
    target = os.fspath(path)
    if os.path.isdir(target):
        raise IsADirectoryError(f"{where}: {target} is a directory; give a file name.")
    return target


def write_atomic(target: str, data: bytes, overwrite: bool, where: str) -> None:
    """``data`` into ``target`` via a temporary file in the same folder and a rename, so the
    target is either untouched or complete."""
    folder = os.path.dirname(os.path.abspath(target))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(target)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if the target appeared meanwhile: never clobbers
            except FileExistsError:
                raise FileExistsError(f"{where}: {target} exists and overwrite=False.") from None
            os.unlink(tmp)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------------------------
# Reading and validating


@dataclass(frozen=True)
class ModelFile:
    """A validated model file: its header document and its tensors (numpy, file dtypes)."""

    path: str
    document: dict[str, Any]
    tensors: dict[str, np.ndarray]

    @property
    def weights(self) -> list[dict[str, Any]]:
        return self.document["weights"]

    def weight_arrays(self) -> list[np.ndarray]:
        return [self.tensors[w["key"]] for w in self.weights]


def read_model_file(path: Any, *, where: str = "load_model") -> ModelFile:
    """Read and check a model file completely (Note [The model file]); raise
    :class:`ModelFileError` on anything wrong. Nothing is executed or unpickled."""
    target = check_path(path, where)
    with open(target, "rb") as f:
        data = f.read()
    header = _parse_header(target, data)
    import safetensors

    try:
        entries = safetensors.deserialize(data)
    except Exception as exc:  # safetensors' own validation: offsets, sizes, overlaps
        raise ModelFileError(target, f"not a valid safetensors file ({exc}).") from None
    metadata = header.get("__metadata__") or {}
    if metadata.get("format") != FORMAT_NAME or "dualnet" not in metadata:
        raise ModelFileError(target, "a safetensors file, but not a dualnet model file (its "
                             "header has no dualnet model description); weights-only "
                             "safetensors files can be read with safetensors.numpy.load_file "
                             "and model.set_weights.")  # fmt: skip
    try:
        document = json.loads(metadata["dualnet"])
    except json.JSONDecodeError as exc:
        raise ModelFileError(target, f"the model description is not valid JSON ({exc}).") from None
    _check_document(target, document)
    tensors = {}
    for name, entry in entries:
        code = entry["dtype"]
        if code not in _CODES:
            raise ModelFileError(target, f"tensor {name!r} has dtype {code}; dualnet files hold "
                                 f"only {', '.join(_CODES)}.")  # fmt: skip
        array = np.frombuffer(bytes(entry["data"]), dtype=numpy_dtype(_CODES[code]))
        tensors[name] = array.reshape(entry["shape"])
    _check_tensors(target, document, tensors)
    return ModelFile(target, document, tensors)


def _parse_header(target: str, data: bytes) -> dict[str, Any]:
    """The safetensors header, with a precise message for the common wrong files."""
    if data[8:9] != b"{":  # not a safetensors file: say what it is when we can tell
        for magic, what in _MAGIC.items():
            if data.startswith(magic):
                raise ModelFileError(target, f"not a dualnet model file: this is {what}.")
        if len(data) < 9:
            raise ModelFileError(
                target,
                f"truncated or empty: {len(data)} bytes (a safetensors "
                "file starts with an 8-byte header length and a JSON header).",
            )
        raise ModelFileError(target, "not a safetensors file (no JSON header after the "
                             "8-byte length).")  # fmt: skip
    n = int.from_bytes(data[:8], "little")
    if 8 + n > len(data):
        raise ModelFileError(target, f"truncated: the header is {n} bytes long but the file "
                             f"holds {len(data) - 8} after the length.")  # fmt: skip
    try:
        header = json.loads(data[8 : 8 + n])
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelFileError(target, f"corrupt safetensors header ({exc}).") from None
    if not isinstance(header, dict):
        raise ModelFileError(target, "corrupt safetensors header (not a JSON object).")
    entries = [e for k, e in header.items() if k != "__metadata__"]
    offsets = [e.get("data_offsets") if isinstance(e, dict) else None for e in entries]
    if not all(isinstance(o, list) and len(o) == 2
               and all(type(v) is int and v >= 0 for v in o) for o in offsets):  # fmt: skip
        raise ModelFileError(target, "corrupt safetensors header (every tensor needs "
                             "data_offsets [begin, end] of non-negative ints).")  # fmt: skip
    need = max((o[1] for o in offsets), default=0)
    if 8 + n + need > len(data):
        raise ModelFileError(target, f"truncated: the header describes {need} bytes of tensor "
                             f"data, the file holds {len(data) - 8 - n}.")  # fmt: skip
    return header


def require(target: str, mapping: Any, key: str, kind: Any, what: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise ModelFileError(target, f"corrupt model description: {what} has no {key!r}.")
    value = mapping[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ModelFileError(target, f"corrupt model description: {what}[{key!r}] is "
                             f"{type(value).__name__}.")  # fmt: skip
    return value


def _check_document(target: str, doc: Any) -> None:
    """The header document's structure and version (its values are checked where used)."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT_NAME:
        raise ModelFileError(target, "corrupt model description (no format name).")
    version = require(target, doc, "format_version", int, "the description")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            target, f"written by a newer dualnet (format version {version}, dualnet "
            f"{doc.get('dualnet_version')!s}); this dualnet reads format versions up to "
            f"{FORMAT_VERSION}: upgrade dualnet to load it."
        )  # fmt: skip
    if version < 1:
        raise ModelFileError(target, f"corrupt model description (format version {version}).")
    model = require(target, doc, "model", dict, "the description")
    for key, kind in (("class_name", str), ("subclassed", bool), ("name", str),
                      ("config", dict), ("layers", list)):  # fmt: skip
        require(target, model, key, kind, "model")
    for entry in model["layers"]:
        if not (isinstance(entry, list) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], str) and isinstance(entry[2], bool)):  # fmt: skip
            raise ModelFileError(target, f"corrupt model description: layer entry {entry!r}.")
    if "build_input_shape" not in model:
        raise ModelFileError(target, "corrupt model description: model has no build shape.")
    if not isinstance(model.get("class_path", ""), str):
        raise ModelFileError(target, "corrupt model description: class_path is not a string.")

    def dims(v: Any) -> bool:  # one input's shape: ints >= 0 or None (an open dimension)
        return isinstance(v, list) and all(
            d is None or (type(d) is int and d >= 0) for d in v)  # fmt: skip

    shape = model["build_input_shape"]
    if not (shape is None or dims(shape)
            or (isinstance(shape, list) and shape and all(dims(v) for v in shape))):  # fmt: skip
        raise ModelFileError(target, f"corrupt model description: build_input_shape "
                             f"{shape!r}.")  # fmt: skip
    for entry in require(target, doc, "weights", list, "the description"):
        require(target, entry, "key", str, "a weight")
        shape = require(target, entry, "shape", list, "a weight")
        if not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
            raise ModelFileError(target, f"corrupt model description: weight {entry['key']!r} "
                                 f"has shape {shape}.")  # fmt: skip
        if require(target, entry, "dtype", str, "a weight") not in _CODES.values():
            raise ModelFileError(target, f"corrupt model description: weight {entry['key']!r} "
                                 f"has dtype {entry['dtype']!r}.")  # fmt: skip
        require(target, entry, "trainable", bool, "a weight")
    runtime = require(target, doc, "runtime_state", dict, "the description")
    if not all(isinstance(v, dict) for v in runtime.values()):
        raise ModelFileError(target, "corrupt model description: runtime_state entries must be "
                             "objects.")  # fmt: skip
    if doc.get("training") is not None:
        require(target, doc, "training", dict, "the description")


def _check_tensors(target: str, doc: dict[str, Any], tensors: dict[str, np.ndarray]) -> None:
    """Every weight the description lists is present with its shape and dtype; the optimizer
    tensors fit the trainable weights; nothing else is in the file."""
    expected: dict[str, tuple[tuple[int, ...], str]] = {}
    for w in doc["weights"]:
        expected[w["key"]] = (tuple(w["shape"]), w["dtype"])
    training = doc.get("training")
    state = training.get("state") if training else None
    if state is not None:
        slots = require(target, state, "slots", list, "training.state")
        expected[ITERATIONS_KEY] = ((), "int64")
        for slot in slots:
            if not isinstance(slot, str):
                raise ModelFileError(target, f"corrupt model description: slot name {slot!r}.")
            for w in doc["weights"]:
                if w["trainable"]:
                    expected[f"{OPTIMIZER_PREFIX}{slot}/{w['key']}"] = expected[w["key"]]
    missing = [k for k in expected if k not in tensors]
    if missing:
        raise ModelFileError(target, f"missing tensors: {', '.join(missing)}.")
    extra = sorted(set(tensors) - set(expected))
    if extra:
        raise ModelFileError(target, f"unexpected tensors (not in the model description): "
                             f"{', '.join(extra)}.")  # fmt: skip
    bad = []
    for key, (shape, dtype) in expected.items():
        t = tensors[key]
        if tuple(t.shape) != shape or t.dtype != numpy_dtype(dtype):
            bad.append(f"{key}: {t.dtype.name} {tuple(t.shape)}, described as {dtype} {shape}")
    if bad:
        raise ModelFileError(target, "tensors that do not match the description: "
                             + "; ".join(bad) + ".")  # fmt: skip
    if state is not None and int(tensors[ITERATIONS_KEY]) < 0:
        raise ModelFileError(target, f"negative optimizer iterations "
                             f"({int(tensors[ITERATIONS_KEY])}).")  # fmt: skip
