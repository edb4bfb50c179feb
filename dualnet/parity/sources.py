"""What ``dualnet check`` checks: a model from a path or an object, and inputs for it.

A source is one of

====================================  ========================================================
source                                how it is loaded
====================================  ========================================================
``model.keras``                       ``keras.saving.load_model(path, safe_mode=True)`` (no
                                      lambda or arbitrary code deserialised), then
                                      :func:`dualnet.interop.from_keras` on TensorFlow
``package.module:factory``            the module is imported (the current directory and any
                                      ``search_path`` entries first on ``sys.path``) and
                                      ``factory()`` called: an ``nn.Module``, put in eval mode;
                                      ``weights=`` a ``state_dict`` file read with
                                      ``torch.load(path, weights_only=True)`` (tensors only,
                                      nothing unpickled as code), loaded ``strict=True``; then
                                      :func:`dualnet.interop.from_torch` on torch, traced on
                                      example inputs of ``input_shape``
a dualnet file (``.safetensors``, or  :func:`dualnet.load_model` (JSON config + safetensors
any file with a safetensors header)   weights, no pickle)
a ``keras.Model`` / ``nn.Module``     imported as above (a dualnet model is used as it is)
====================================  ========================================================

``.pt2`` programs are refused: ``torch.export.load`` unpickles the program's constants
(``pickle.loads`` and ``torch.load(weights_only=False)``), so loading an untrusted one can run
code; give the factory and a ``state_dict`` instead.

Inputs (:func:`random_inputs`): seeded standard-normal floats of the model's input shape (the
batch of ``batch_size``, any other unknown length ``sequence_length``), or integer ids for an
input read by an ``Embedding``: uniform in ``[1, input_dim)``, and with ``mask_zero`` padded
with 0 at the end to random lengths (every length from 1 to the full one), so the masks are
exercised. :func:`read_inputs` reads an ``.npz`` file with ``allow_pickle=False``.
"""

from __future__ import annotations

import importlib
import struct
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dualnet.errors import bad_type, bad_value

__all__ = ["Loaded", "load_source", "random_inputs", "read_inputs"]


@dataclass(frozen=True, kw_only=True)
class Loaded:
    """A model ready to check.

    Attributes:
        model: the dualnet model (built).
        kind: ``"dualnet"``, ``"keras"``, ``"torch"`` or ``"dualnet-file"``.
        description: where it came from (a path, a factory, a class name).
        seconds: time spent loading and importing (0 for a dualnet model given as is).
        original: the Keras model or torch module it was imported from (None otherwise), run
            on the check's inputs to show the import reproduces it.
        inputs: the example inputs a torch module was traced on (None otherwise).
    """

    model: Any
    kind: str
    description: str
    seconds: float = 0.0
    original: Any = None
    inputs: Any = field(default=None, repr=False)


def _is_keras_model(obj: Any) -> bool:
    keras = sys.modules.get("keras")
    return keras is not None and isinstance(obj, keras.Model)


def _is_torch_module(obj: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def _is_safetensors(path: Path) -> bool:
    """A safetensors file starts with its header's length (u64, little-endian) and the JSON
    header itself."""
    try:
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) != 8:
                return False
            (n,) = struct.unpack("<Q", head)
            return 1 < n < 100_000_000 and f.read(1) == b"{"
    except OSError:
        return False


def _framework(name: str) -> Any:
    """torch or TensorFlow's Keras, through dualnet's loader (torch first, TF's settings)."""
    from dualnet._backend import backend_module

    backend_module("torch" if name == "torch" else "tensorflow")
    return importlib.import_module(name)


def load_source(source: Any, *, weights: str | Path | None = None,
                input_shape: Any = None, input_dtype: str = "float32",
                inputs: Any = None, batch_size: int = 8, seed: int = 0,
                search_path: list[str] | None = None) -> Loaded:  # fmt: skip
    """Load ``source`` (see the module docstring) as a dualnet model.

    Args:
        source: a path (``str``/``Path``), a ``package.module:factory`` string, a dualnet
            model, a ``keras.Model`` or an ``nn.Module``.
        weights: a torch ``state_dict`` file (torch factories only).
        input_shape: a torch module's input shape without the batch (a tuple, or a list of
            tuples for several inputs); not needed when ``inputs`` are given.
        input_dtype: the dtype of a torch module's example inputs (``"int64"`` for ids).
        inputs: the check's inputs (a torch module is traced on them).
        batch_size, seed: for a torch module's example inputs when ``inputs`` is None.
        search_path: directories put first on ``sys.path`` for a factory's module (after the
            current directory).
    """
    from dualnet.models import Model

    factory = isinstance(source, str | Path) and ":" in str(source) and not Path(source).exists()
    if weights is not None and not (factory or _is_torch_module(source)):
        raise bad_value("weights", str(weights), "a state_dict file for a torch factory or "
                        "nn.Module source only")  # fmt: skip
    if isinstance(source, Model):
        return Loaded(model=source, kind="dualnet", description=source.name)
    start = time.perf_counter()
    if _is_keras_model(source):
        return _from_keras(source, type(source).__name__, start)
    if _is_torch_module(source):
        if weights is not None:
            _load_state_dict(source, weights)
        return _from_torch(source, type(source).__name__, input_shape, input_dtype, inputs,
                           batch_size, seed, start)  # fmt: skip
    if not isinstance(source, str | Path):
        raise bad_type("model_or_path", source, "a dualnet Model, a keras.Model, an "
                       "nn.Module, a .keras/dualnet file path or a 'package.module:factory' "
                       "string")  # fmt: skip
    path = Path(source)
    if path.suffix == ".pt2":
        raise bad_value("model_or_path", str(source), "a .keras file, a dualnet file or a torch "
                        "'package.module:factory' (+ a state_dict): torch.export.load unpickles "
                        "a .pt2 program's constants (pickle.loads, torch.load(weights_only="
                        "False)), so an untrusted .pt2 could run code")  # fmt: skip
    if path.is_file():
        if path.suffix == ".keras":
            keras = _framework("keras")
            model = keras.saving.load_model(str(path), safe_mode=True)
            return _from_keras(model, str(path), start)
        if path.suffix == ".safetensors" or _is_safetensors(path):
            from dualnet.saving import load_model

            model = load_model(str(path))
            return Loaded(model=model, kind="dualnet-file", description=str(path),
                          seconds=time.perf_counter() - start)  # fmt: skip
        raise bad_value("model_or_path", str(source), "a .keras file or a dualnet "
                        ".safetensors file (this file is neither)")  # fmt: skip
    text = str(source)
    if ":" not in text or path.exists():
        raise FileNotFoundError(f"dualnet check: no such file {text!r} (expected a .keras "
                                "file, a dualnet file or a 'package.module:factory')")  # fmt: skip
    module = _factory_module(text, search_path)
    if weights is not None:
        _load_state_dict(module, weights)
    return _from_torch(module, text, input_shape, input_dtype, inputs, batch_size, seed, start)


def _from_keras(model: Any, description: str, start: float) -> Loaded:
    from dualnet.interop import from_keras

    converted = from_keras(model, backend="tensorflow")
    return Loaded(model=converted, kind="keras", description=description,
                  seconds=time.perf_counter() - start, original=model)  # fmt: skip


def _factory_module(text: str, search_path: list[str] | None) -> Any:
    """Import ``package.module`` and call ``factory()``: the ``nn.Module`` to check."""
    module_name, _, attribute = text.partition(":")
    if not module_name or not attribute.isidentifier():
        raise bad_value("model_or_path", text, "'package.module:factory' (a module path, a "
                        "colon, a callable's name)")  # fmt: skip
    torch = _framework("torch")
    added = []
    for entry in [*(search_path or [])[::-1], str(Path.cwd())]:
        if entry not in sys.path:
            sys.path.insert(0, entry)
            added.append(entry)
    try:
        factory = getattr(importlib.import_module(module_name), attribute, None)
    finally:  # the search path is the import's only: a later import must not see it
        for entry in added:
            sys.path.remove(entry)
    if not callable(factory):
        raise bad_value("model_or_path", text, f"a callable {attribute!r} in {module_name}")
    module = factory()
    if not isinstance(module, torch.nn.Module):
        raise bad_type("factory()", module, f"an nn.Module returned by {text}")
    return module


def _load_state_dict(module: Any, weights: str | Path) -> None:
    torch = _framework("torch")
    # weights_only=True: tensors and plain containers only; a pickled object is refused.
    state = torch.load(str(weights), weights_only=True, map_location="cpu")
    if not isinstance(state, dict):
        raise bad_type("weights", str(weights), "a file holding a state_dict (a dict of tensors)")
    # Checked before anything is copied: load_state_dict(strict=True) copies every matching
    # tensor before it raises on the others, which would leave the module half-loaded.
    have = module.state_dict()
    shared = set(have) & set(state)
    misfit = [k for k in shared if not isinstance(state[k], torch.Tensor)
              or tuple(have[k].shape) != tuple(state[k].shape)]  # fmt: skip
    bad = sorted(set(have) ^ set(state)) + sorted(misfit)
    if bad:
        raise bad_value("weights", str(weights), f"a state_dict matching the module's names and "
                        f"shapes (missing, unexpected or mis-shaped: {bad[:6]}"
                        f"{' ...' if len(bad) > 6 else ''})")  # fmt: skip
    module.load_state_dict(state, strict=True)


def _from_torch(module: Any, description: str, input_shape: Any, input_dtype: str,
                inputs: Any, batch_size: int, seed: int, start: float) -> Loaded:  # fmt: skip
    from dualnet.interop import from_torch

    torch = _framework("torch")
    if isinstance(inputs, dict):  # several arrays from a file: the module's inputs in order
        inputs = list(inputs.values())
    if inputs is None:
        if input_shape is None:
            raise bad_value("input_shape", None, "the input shape without the batch (an "
                            "nn.Module has none), or inputs")  # fmt: skip
        shapes = input_shape if isinstance(input_shape, list) else [input_shape]
        rng = np.random.default_rng(seed)
        if np.dtype(input_dtype).kind in "iu":
            # Ids 0 and 1 are valid for any Embedding; the check draws its own from the
            # imported model's vocabulary afterwards.
            inputs = [rng.integers(0, 2, (batch_size, *s)).astype(input_dtype) for s in shapes]
        else:
            inputs = [rng.standard_normal((batch_size, *s)).astype(input_dtype) for s in shapes]
        inputs = inputs[0] if len(inputs) == 1 else inputs
    items = inputs if isinstance(inputs, list | tuple) else [inputs]
    example = tuple(torch.as_tensor(np.asarray(v)) for v in items)
    flags = {m: m.training for m in module.modules()}
    try:  # traced in eval mode (its control flow); the caller's module keeps its modes
        module.eval()
        converted = from_torch(module, example[0] if len(example) == 1 else example,
                               backend="torch")  # fmt: skip
    finally:
        for m, flag in flags.items():
            m.training = flag
    return Loaded(model=converted, kind="torch", description=description,
                  seconds=time.perf_counter() - start, original=module, inputs=inputs)  # fmt: skip


def run_original(loaded: Loaded, x: Any) -> list[np.ndarray] | None:
    """The original Keras model's or torch module's output(s) on ``x`` (inference), as numpy;
    None when the model was not imported."""
    if loaded.original is None:
        return None
    items = x if isinstance(x, list | tuple) else [x]
    if loaded.kind == "torch":
        torch = _framework("torch")
        module = loaded.original
        flags = {m: m.training for m in module.modules()}
        try:  # inference, and the caller's module left in the modes it had
            module.eval()
            with torch.no_grad():
                out = module(*(torch.as_tensor(np.asarray(v)) for v in items))
        finally:
            for m, flag in flags.items():
                m.training = flag
        outs = list(out) if isinstance(out, list | tuple) else [out]
        return [o.detach().cpu().numpy() for o in outs]
    out = loaded.original(x if isinstance(x, list | tuple) else items[0], training=False)
    outs = list(out) if isinstance(out, list | tuple) else [out]
    return [np.asarray(o) for o in outs]


# ------------------------------------------------------------------------------------ inputs


def read_inputs(path: str | Path, model: Any = None) -> Any:
    """The arrays of an ``.npz`` file (``np.load(allow_pickle=False)``): one array is the
    input; several are matched to the model's inputs by name where every input's name is a key,
    else taken in the file's order (``np.savez(f, a, b)`` stores ``arr_0``, ``arr_1``). Without
    ``model``, several arrays come back as that ``{name: array}`` dict, to be matched later."""
    with np.load(str(path), allow_pickle=False) as data:
        arrays = {k: np.asarray(data[k]) for k in data.files}
    if not arrays:
        raise bad_value("inputs", str(path), "an .npz file holding at least one array")
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    if model is None:
        return arrays  # {name: array} in the file's order, matched once the model is known
    names = [layer.name for layer in model._input_layers()]
    if names and all(n in arrays for n in names):
        return [arrays[n] for n in names]
    return list(arrays.values())


def _input_specs(model: Any) -> list[tuple[tuple, str, Any]]:
    """Per model input: (shape with None for unknown lengths, dtype, the Embedding reading it
    or None)."""
    from dualnet.models import Functional, Sequential

    if isinstance(model, Sequential):
        first = model.layers[0]
        shape = tuple(model._build_input_shape)
        reader = first if getattr(first, "integer_input", False) else None
        return [(shape, model.input_dtype(), reader)]
    if isinstance(model, Functional):
        specs = []
        for t in model.inputs:
            readers = [n.layer for n in model._nodes
                       if any(i is t for i in n.inputs) and n.layer.integer_input]  # fmt: skip
            specs.append((tuple(t.shape), t.dtype, readers[0] if readers else None))
        return specs
    shape = model._build_input_shape
    shapes = shape if isinstance(shape, list) else [shape]
    return [(tuple(s), "float32", None) for s in shapes]


def random_inputs(model: Any, *, batch_size: int = 8, seed: int = 0,
                  sequence_length: int = 8) -> Any:  # fmt: skip
    """Seeded inputs of ``model``'s input shape (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = []
    for shape, dtype, reader in _input_specs(model):
        full = (batch_size, *(sequence_length if d is None else d for d in shape[1:]))
        if reader is not None or np.dtype(dtype).kind in "iu":
            vocab = int(getattr(reader, "input_dim", 2))
            ids = rng.integers(1 if vocab > 1 else 0, vocab, full)
            if reader is not None and reader.get_config().get("mask_zero") and len(full) > 1:
                # Padded at the end to every length 1..steps (the first two rows: 1 and all).
                steps = full[1]
                lengths = rng.integers(1, steps + 1, full[0])
                lengths[: min(2, full[0])] = [1, steps][: min(2, full[0])]
                valid = np.arange(steps)[None, :] < lengths[:, None]
                ids = np.where(valid.reshape(valid.shape + (1,) * (len(full) - 2)), ids, 0)
            out.append(ids.astype(dtype if np.dtype(dtype).kind in "iu" else "int32"))
        else:
            out.append(rng.standard_normal(full).astype(dtype))
    return out[0] if len(out) == 1 else out


def describe_inputs(x: Any) -> list[dict[str, Any]]:
    """Shape and dtype of each input (for the report)."""
    items = x if isinstance(x, list | tuple) else [x]
    return [{"shape": list(np.shape(v)), "dtype": str(np.asarray(v).dtype)} for v in items]
