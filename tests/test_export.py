"""model.export: a SavedModel, a .keras file and a torch.export program, each loaded in a
subprocess that cannot import dualnet and compared with the dualnet model's outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import dualnet as dn
from dualnet.export import ExportError
from dualnet.parity import tolerance
from dualnet.parity.compare import compare

RNG = np.random.default_rng(1)
IDS = np.array([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0], [8, 7, 6, 5, 4], [2, 2, 0, 0, 0],
                [5, 5, 5, 5, 0]], "int32")  # fmt: skip
FLOATS = RNG.normal(size=(5, 4)).astype("float32")
SEQUENCES = RNG.normal(size=(5, 6, 3)).astype("float32")
SEQUENCES[0, 3:] = 0.0  # masked steps (Masking)
IMAGES = RNG.normal(size=(5, 6, 6, 2)).astype("float32")

# The subprocess: dualnet made unimportable first, then the framework loads each artefact.
LOADER = """
import json, sys
sys.modules["dualnet"] = None  # `import dualnet` now raises ImportError
try:
    import dualnet
except ImportError:
    pass
else:
    raise SystemExit("dualnet is importable")
import numpy as np
{imports}
for job in json.load(open(sys.argv[1])):
    data = np.load(job["inputs"])
    xs = [data[f"arr_{{i}}"] for i in range(len(data.files))]
    args = xs[0] if job["single"] else xs
{body}
    outs = y if isinstance(y, (list, tuple)) else [y]
    np.savez(job["out"], *[np.asarray(o) for o in outs])
    assert not any(m == "dualnet" or m.startswith("dualnet.") for m in sys.modules
                   if sys.modules[m] is not None)
"""
TF_BODY = """    if job["format"] == "tf_saved_model":
        served = tf.saved_model.load(job["path"])  # kept: its variables live as long as it
        y = served.serve(args)
        y = [t.numpy() for t in y] if isinstance(y, (list, tuple)) else y.numpy()
    else:
        y = keras.saving.load_model(job["path"])(args, training=False)
        y = [np.asarray(t) for t in y] if isinstance(y, (list, tuple)) else np.asarray(y)"""
TORCH_BODY = """    program = torch.export.load(job["path"]).module()
    y = program(*[torch.from_numpy(x) for x in xs])
    y = [t.detach().numpy() for t in y] if isinstance(y, (list, tuple)) else y.detach().numpy()"""
LOADERS = {
    "tensorflow": LOADER.format(imports="import tensorflow as tf\nimport keras", body=TF_BODY),
    "torch": LOADER.format(imports="import torch", body=TORCH_BODY),
}


class Small(dn.Model):
    def __init__(self, hidden=5):
        super().__init__()
        self.a = dn.layers.Dense(hidden, activation="tanh")
        self.drop = dn.layers.Dropout(0.5, seed=3)
        self.b = dn.layers.Dense(2, activation="sigmoid")

    def call(self, inputs):
        return self.b(self.drop(self.a(inputs)))


def cnn_bn():
    return dn.Sequential([
        dn.Input(shape=(6, 6, 2)), dn.layers.Conv2D(3, 3, activation="relu"),
        dn.layers.BatchNormalization(), dn.layers.Dropout(0.3, seed=1), dn.layers.Flatten(),
        dn.layers.Dense(4, activation="softmax"),
    ])  # fmt: skip


def embedding_lstm():
    ids, f = dn.Input(shape=(5,), dtype="int32"), dn.Input(shape=(4,))
    h = dn.layers.LSTM(3)(dn.layers.Embedding(9, 4, mask_zero=True)(ids))
    h = dn.layers.Concatenate()([h, dn.layers.Dense(3, activation="relu")(f)])
    return dn.Model([ids, f], [dn.layers.Dense(2)(h), dn.layers.Dense(1)(h)])


def masking_lstm():
    seq, f = dn.Input(shape=(6, 3)), dn.Input(shape=(4,))
    h = dn.layers.GRU(3)(dn.layers.LSTM(4, return_sequences=True)(dn.layers.Masking()(seq)))
    return dn.Model([seq, f], dn.layers.Dense(2)(dn.layers.Concatenate()([h, f])))


def subclassed():
    model = Small()
    model(FLOATS)
    return model


def builtin_mlp():
    return dn.Sequential(
        [
            dn.Input(shape=(4,)),
            dn.layers.Dense(6, activation="relu"),
            dn.layers.LayerNormalization(),
            dn.layers.Dense(3, activation="softmax"),
        ]
    )


def builtin_functional():
    a, b = dn.Input(shape=(4,)), dn.Input(shape=(4,))
    h = dn.layers.Add()([dn.layers.Dense(3, activation="tanh")(a), dn.layers.Dense(3)(b)])
    return dn.Model([a, b], dn.layers.Dense(2, activation="sigmoid")(dn.layers.Flatten()(h)))


def builtin_rescaling():
    """Keras's own Rescaling realises float32 layers without a -0.0 operand (a Keras built-in)."""
    return dn.Sequential([
        dn.Input(shape=(4,)), dn.layers.Rescaling(1 / 127.5, offset=-1.0),
        dn.layers.Rescaling([0.5, -2.0, 1 / 3, 4.0], offset=0.25), dn.layers.Dense(3),
    ])  # fmt: skip


# (backend, format, builder, inputs, path suffix, other export arguments)
ARTEFACTS = {
    "saved_model-cnn_bn": ("tensorflow", "tf_saved_model", cnn_bn, IMAGES, ""),
    "saved_model-embedding_lstm": ("tensorflow", "tf_saved_model", embedding_lstm,
                                   [IDS, FLOATS], ""),
    "saved_model-subclassed": ("tensorflow", "tf_saved_model", subclassed, FLOATS, ""),
    "keras-mlp": ("tensorflow", "keras", builtin_mlp, FLOATS, ".keras"),
    "keras-functional": ("tensorflow", "keras", builtin_functional, [FLOATS, FLOATS[::-1]],
                         ".keras"),
    "keras-rescaling": ("tensorflow", "keras", builtin_rescaling, FLOATS, ".keras"),
    "torch_export-cnn_bn": ("torch", "torch_export", cnn_bn, IMAGES, ".pt2"),
    "torch_export-embedding_lstm": ("torch", "torch_export", embedding_lstm, [IDS, FLOATS],
                                    ".pt2"),
    "torch_export-masking_lstm": ("torch", "torch_export", masking_lstm,
                                  [SEQUENCES, FLOATS], ".pt2"),
    # Fixed batch: the subclassed call reads the batch size (test_torch_export_...batch below).
    "torch_export-subclassed": ("torch", "torch_export", subclassed, FLOATS, ".pt2",
                                {"dynamic_batch": False, "example_inputs": FLOATS}),
}  # fmt: skip


def _export_and_load(backend, tmp):
    """Export every artefact of ``backend``, load them all in one isolated subprocess; returns
    ``{case: (dualnet outputs, loaded outputs)}``."""
    jobs, expected = [], {}
    for case, (b, fmt, builder, inputs, suffix, *options) in ARTEFACTS.items():
        if b != backend:
            continue
        dn.set_random_seed(0)
        with dn.use_backend(backend):
            model = builder()
            model(inputs, training=True)  # move BN statistics and dropout counters
        path = tmp / f"{case}{suffix}"
        assert model.export(path, format=fmt, **(options[0] if options else {})) == str(path)
        xs = inputs if isinstance(inputs, list) else [inputs]
        np.savez(tmp / f"{case}-in.npz", *xs)
        out = model.predict(inputs)
        expected[case] = out if isinstance(out, list) else [out]
        jobs.append({"format": fmt, "path": str(path), "inputs": str(tmp / f"{case}-in.npz"),
                     "out": str(tmp / f"{case}-out.npz"),
                     "single": not isinstance(inputs, list)})  # fmt: skip
    (tmp / "jobs.json").write_text(json.dumps(jobs))
    (tmp / "load.py").write_text(LOADERS[backend])
    # -I: no PYTHONPATH, no user site, no script folder on sys.path; cwd outside the repository.
    run = subprocess.run([sys.executable, "-I", str(tmp / "load.py"), str(tmp / "jobs.json")],
                         cwd=tmp, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = {}
    for case in expected:
        data = np.load(tmp / f"{case}-out.npz")
        loaded[case] = [data[f"arr_{i}"] for i in range(len(data.files))]
    return {case: (expected[case], loaded[case]) for case in expected}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    cache = {}

    def get(backend):
        if backend not in cache:
            cache[backend] = _export_and_load(backend, tmp_path_factory.mktemp(backend))
        return cache[backend]

    return get


@pytest.mark.parametrize("case", list(ARTEFACTS))
def test_artefact_loads_without_dualnet_and_matches(case, exported):
    expected, loaded = exported(ARTEFACTS[case][0])[case]
    assert len(expected) == len(loaded)
    for e, a in zip(expected, loaded, strict=True):
        assert a.shape == e.shape and a.shape[0] == 5  # batch 5: not the 2 of the export
        diff = compare(a, e, tolerance.default("float32"))
        assert diff.passed, diff


# ---------------------------------------------------------------------------- refusals


def test_keras_file_refusal_lists_every_layer_and_why(tmp_path):
    with dn.use_backend("tensorflow"):
        x = dn.Input(shape=(6, 6, 2))
        h = dn.layers.Conv2D(3, 3)(x)
        h = dn.layers.Flatten()(dn.layers.BatchNormalization()(h))
        h = dn.layers.Dense(4, activation="gelu")(h)
        h = dn.layers.Dense(4, activation="relu", dtype="float16")(h)
        model = dn.Model(x, dn.layers.Dense(2, activation="relu")(h))
    with pytest.raises(ExportError, match=r"cannot be a \.keras file") as info:
        model.export(tmp_path / "m.keras")
    problems = info.value.problems
    assert len(problems) == 4, problems
    assert problems[0].startswith("conv2d") and "dualnet's own Keras layer" in problems[0]
    assert problems[1].startswith("batch_normalization")
    assert "activation 'gelu' has no Keras built-in" in problems[2]
    assert "in float16: Keras computes it in float16" in problems[3]
    assert not (tmp_path / "m.keras").exists()
    with dn.use_backend("tensorflow"):
        sub = subclassed()
    with pytest.raises(ExportError, match="subclassed model"):
        sub.export(tmp_path / "s.keras")


def test_keras_file_refuses_rescaling_that_keras_computes_otherwise(tmp_path):
    """float64 (Keras rounds Python-float operands to float32), half precision (Keras computes
    in half) and a -0.0 offset (Keras's tf.cast reads TensorFlow's scalar cache) are realised by
    dualnet's own layer, which a .keras file cannot name."""
    with dn.use_backend("tensorflow"):
        model = dn.Sequential([
            dn.Input(shape=(4,), dtype="float64"), dn.layers.Rescaling(0.5, dtype="float64"),
            dn.layers.Rescaling(2.0, dtype="float16"), dn.layers.Rescaling(2.0, offset=-0.0),
        ])  # fmt: skip
        model(FLOATS)
    with pytest.raises(ExportError, match=r"cannot be a \.keras file") as info:
        model.export(tmp_path / "r.keras")
    problems = info.value.problems
    assert len(problems) == 3 and all("dualnet's own Keras layer" in p for p in problems)


def test_torch_export_keeps_the_embedding_id_check(tmp_path):
    torch = pytest.importorskip("torch")
    with dn.use_backend("torch"):
        model = embedding_lstm()
        expected = model.predict([IDS, FLOATS])
    program = torch.export.load(model.export(tmp_path / "m.pt2")).module()
    got = program(torch.as_tensor(IDS, dtype=torch.int32), torch.as_tensor(FLOATS))
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.detach().numpy(), e, rtol=1.3e-6, atol=1e-5)
    bad = IDS.copy()
    bad[0, 0] = 9  # input_dim is 9: the program's own assert refuses it
    with pytest.raises(RuntimeError):
        program(torch.as_tensor(bad, dtype=torch.int32), torch.as_tensor(FLOATS))


def test_torch_export_of_a_subclassed_model_needs_a_fixed_batch(tmp_path):
    with dn.use_backend("torch"):
        model = subclassed()
    with pytest.raises(ExportError, match="dynamic_batch=False") as info:
        model.export(tmp_path / "m.pt2")
    assert info.value.problems[0].startswith("the batch dimension: Python code")


def test_open_dimensions_need_example_inputs(tmp_path):
    with dn.use_backend("torch"):
        model = dn.Sequential([dn.Input(shape=(None, 3)), dn.layers.LSTM(2)])
    with pytest.raises(ValueError, match=r"example_inputs.*open dimensions.*\(None, None, 3\)"):
        model.export(tmp_path / "m.pt2")
    with pytest.raises(ValueError, match=r"invalid example_inputs='an array of shape \(2, 4, 5\)'"):
        model.export(tmp_path / "m.pt2", example_inputs=np.zeros((2, 4, 5), "float32"))
    model.export(tmp_path / "m.pt2", example_inputs=SEQUENCES[:, :4])
    import torch

    program = torch.export.load(tmp_path / "m.pt2").module()
    diff = compare(program(torch.from_numpy(SEQUENCES[:, :4])).detach().numpy(),
                   model.predict(SEQUENCES[:, :4]), tolerance.default("float32"))  # fmt: skip
    assert diff.passed, diff


def test_export_argument_errors(tmp_path):
    with dn.use_backend("torch"):
        model = builtin_mlp()
    with pytest.raises(ValueError, match=r"format 'keras' exports a tensorflow model.*"
                       r"to_backend\('tensorflow'\)"):  # fmt: skip
        model.export(tmp_path / "m.keras", format="keras")
    with pytest.raises(ValueError, match="invalid format='onnx'"):
        model.export(tmp_path / "m.onnx", format="onnx")
    with pytest.raises(TypeError, match="invalid path=3"):
        model.export(3)
    model.export(tmp_path / "m.pt2")
    before = (tmp_path / "m.pt2").read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.export(tmp_path / "m.pt2", overwrite=False)
    assert (tmp_path / "m.pt2").read_bytes() == before
    with dn.use_backend("tensorflow"):
        tf_model = builtin_mlp()
    with pytest.raises(ValueError, match=r"invalid path=.*ending in \.keras"):
        tf_model.export(tmp_path / "m.h5", format="keras")
