"""model.save / dn.load_model / dualnet.saving.load_weights: one safetensors file, bit-identical
round trips on and across both backends, every corruption refused with nothing half-loaded."""

from __future__ import annotations

import json
import os
import pickle
import sys
import zipfile

import numpy as np
import pytest
import safetensors
import safetensors.numpy

import dualnet as dn
from dualnet import saving, training
from dualnet.dtypes import numpy_dtype
from dualnet.saving import ModelFileError

BACKENDS = ("torch", "tensorflow")
PAIRS = [(a, b) for a in BACKENDS for b in BACKENDS]
PAIR_IDS = [f"{a}-to-{b}" for a, b in PAIRS]
RNG = np.random.default_rng(0)


class TwoBranch(dn.Model):
    """A subclassed model with a runtime state (dropout) and a frozen layer."""

    def __init__(self, hidden=5):
        super().__init__()
        self.a = dn.layers.Dense(hidden, activation="tanh")
        self.drop = dn.layers.Dropout(0.5, seed=7)
        self.b = dn.layers.Dense(2)

    def call(self, inputs):
        return self.b(self.drop(self.a(inputs)))


def _sequential():
    return dn.Sequential([dn.Input(shape=(4,)), dn.layers.Dense(6, activation="relu"),
                          dn.layers.Dense(3)])  # fmt: skip


def _functional():
    a, b = dn.Input(shape=(4,), name="a"), dn.Input(shape=(3,), name="b")
    h = dn.layers.Concatenate()([dn.layers.Dense(5, activation="relu")(a), dn.layers.Dense(2)(b)])
    return dn.Model([a, b], [dn.layers.Dense(2)(h), dn.layers.Dense(1)(h)])


def _cnn():
    return dn.Sequential([
        dn.Input(shape=(6, 6, 2)), dn.layers.Conv2D(3, 3, activation="relu"),
        dn.layers.BatchNormalization(), dn.layers.Dropout(0.3, seed=1), dn.layers.Flatten(),
        dn.layers.Dense(2),
    ])  # fmt: skip


def _lstm():
    ids = dn.Input(shape=(5,), dtype="int32")
    h = dn.layers.Embedding(9, 4, mask_zero=True)(ids)
    h = dn.layers.LSTM(3, dropout=0.25, seed=2)(h)
    return dn.Model(ids, dn.layers.Dense(2)(h))


def _subclassed():
    model = TwoBranch()
    model(np.zeros((1, 4), "float32"))
    model.a.trainable = False
    return model


CASES = {"sequential": _sequential, "functional": _functional, "cnn_bn": _cnn,
         "lstm_embedding": _lstm, "subclassed": _subclassed}  # fmt: skip
INPUTS = {
    "sequential": RNG.normal(size=(4, 4)).astype("float32"),
    "functional": [RNG.normal(size=(4, 4)).astype("float32"),
                   RNG.normal(size=(4, 3)).astype("float32")],
    "cnn_bn": RNG.normal(size=(4, 6, 6, 2)).astype("float32"),
    "lstm_embedding": np.array([[1, 2, 3, 0, 0], [4, 0, 0, 0, 0], [8, 7, 6, 5, 4],
                                [2, 2, 0, 0, 0]], "int32"),
    "subclassed": RNG.normal(size=(4, 4)).astype("float32"),
}  # fmt: skip
CUSTOM = {"TwoBranch": TwoBranch}


def build(case, backend, seed=0):
    """The case on ``backend``, then one training-mode call: moving statistics and dropout
    counters move away from their initial values, so the file must carry them."""
    dn.set_random_seed(seed)
    with dn.use_backend(backend):
        model = CASES[case]()
        model(INPUTS[case], training=True)
    return model


def same_bits(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_same_weights(model, other, paths=True):
    if paths:
        assert [w.path for w in model.weights] == [w.path for w in other.weights]
    for w, a, b in zip(model.weights, model.get_weights(), other.get_weights(), strict=True):
        assert same_bits(a, b), w.path


def outputs(model, x):
    out = model.predict(x)
    return out if isinstance(out, list) else [out]


# ------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_is_bit_identical(case, source, target, tmp_path):
    model = build(case, source)
    path = tmp_path / "model.safetensors"
    model.save(path)
    loaded = dn.load_model(path, backend=target, custom_objects=CUSTOM)
    assert loaded.backend == target and type(loaded) is type(model)
    assert loaded.name == model.name
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert [w.trainable for w in loaded.weights] == [w.trainable for w in model.weights]
    assert_same_weights(model, loaded)
    for a, b in zip(model.layers, loaded.layers, strict=True):
        assert a.get_runtime_state() == b.get_runtime_state(), a.name
    # Loaded on `target`, the model computes exactly what the original moved there does.
    twin = model.to_backend(target)
    for a, b in zip(outputs(twin, INPUTS[case]), outputs(loaded, INPUTS[case]), strict=True):
        assert same_bits(a, b)
    # ...including the next training-mode call (the dropout mask sequence continues).
    with dn.use_backend(target):
        a, b = twin(INPUTS[case], training=True), loaded(INPUTS[case], training=True)
    for x, y in zip(*(o if isinstance(o, list) else [o] for o in (a, b)), strict=True):
        assert same_bits(dn.to_numpy(x), dn.to_numpy(y))


# Signed zero, subnormals, ±inf, NaN, the float16 maximum, a value every format rounds.
AWKWARD = np.array([0.0, -0.0, 1e-45, -1e-300, np.inf, -np.inf, np.nan, 1 / 3, 65504.0, 6e-8])


@pytest.mark.parametrize(("source", "target"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "bfloat16"])
def test_every_weight_dtype_round_trips_bit_for_bit(dtype, source, target, tmp_path):
    with dn.use_backend(source):
        model = dn.Sequential([dn.Input(shape=(5,), dtype=dtype),
                               dn.layers.Dense(2, dtype=dtype),
                               dn.layers.BatchNormalization(dtype=dtype)])  # fmt: skip
        # Awkward values (signed zero, subnormal, huge, ±inf, NaN) in every weight.
        model.set_weights([np.resize(AWKWARD, w.shape).astype(numpy_dtype(dtype))
                           for w in model.weights])  # fmt: skip
    path = tmp_path / "model.safetensors"
    model.save(path)
    with safetensors.safe_open(path, framework="np") as f:  # safetensors' own dtype codes
        codes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118
    assert codes == {{"float32": "F32", "float64": "F64", "float16": "F16",
                      "bfloat16": "BF16"}[dtype]}  # fmt: skip
    with safetensors.safe_open(path, framework="np") as f:  # the file holds the exact bits
        for w, a in zip(model.weights, model.get_weights(), strict=True):
            stored = np.frombuffer(f.get_slice(w.path)[:].tobytes(), a.dtype).reshape(a.shape)
            assert same_bits(stored, a), w.path
    loaded = dn.load_model(path, backend=target)
    assert_same_weights(model, loaded)


# ------------------------------------------------------------------- training state resumes


def _compiled(backend, seed=0):
    dn.set_random_seed(seed)
    with dn.use_backend(backend):
        model = dn.Sequential([
            dn.Input(shape=(6,)), dn.layers.Dense(8, activation="relu"),
            dn.layers.BatchNormalization(), dn.layers.Dropout(0.25, seed=5), dn.layers.Dense(3),
        ])  # fmt: skip
        model.compile(optimizer=dn.optimizers.Adam(learning_rate=0.01), loss="mse",
                      metrics=["mae"], run_eagerly=True)  # fmt: skip
    return model


X6, Y3 = RNG.normal(size=(8, 6)).astype("float32"), RNG.normal(size=(8, 3)).astype("float32")


def _steps(model, start, n):
    with dn.use_backend(model.backend):
        for k in range(start, start + n):
            s = slice(4 * (k % 2), 4 * (k % 2) + 4)
            model.train_step(X6[s], Y3[s])


@pytest.mark.parametrize("backend", BACKENDS)
def test_resumed_training_equals_uninterrupted_training(backend, tmp_path):
    straight = _compiled(backend)
    _steps(straight, 0, 4)
    first = _compiled(backend)
    _steps(first, 0, 2)
    first.save(tmp_path / "m.safetensors")
    resumed = dn.load_model(tmp_path / "m.safetensors", backend=backend)
    assert resumed.backend == backend
    assert resumed.optimizer.iterations == 2
    assert resumed._compiled.run_eagerly is True
    _steps(resumed, 2, 2)
    assert resumed.optimizer.iterations == 4
    assert_same_weights(straight, resumed, paths=False)  # two models: other automatic names
    a, b = training.canonical_optimizer_state(straight), training.canonical_optimizer_state(resumed)
    assert list(a) == list(b) == ["momentum", "velocity"]
    assert all(same_bits(x, y) for k in a for x, y in zip(a[k], b[k], strict=True))


@pytest.mark.parametrize(
    ("source", "target"),
    [p for p in PAIRS if p[0] != p[1]],
    ids=[i for p, i in zip(PAIRS, PAIR_IDS, strict=True) if p[0] != p[1]],
)
def test_optimizer_state_crosses_backends(source, target, tmp_path):
    model = _compiled(source)
    _steps(model, 0, 2)
    model.save(tmp_path / "m.safetensors")
    loaded = dn.load_model(tmp_path / "m.safetensors", backend=target)
    assert loaded.optimizer.iterations == 2 and loaded.optimizer.backend == target
    a, b = training.canonical_optimizer_state(model), training.canonical_optimizer_state(loaded)
    assert all(same_bits(x, y) for k in a for x, y in zip(a[k], b[k], strict=True))
    _steps(loaded, 2, 1)  # and training goes on there
    assert loaded.optimizer.iterations == 3


def test_compile_false_and_unbuilt_optimizer(tmp_path):
    model = _compiled("torch")  # compiled, never trained: no optimizer state yet
    model.save(tmp_path / "m.safetensors")
    assert dn.load_model(tmp_path / "m.safetensors", backend="torch").optimizer.iterations == 0
    assert not dn.load_model(tmp_path / "m.safetensors", compile=False).compiled


def test_custom_loss_needs_custom_objects(tmp_path):
    def my_loss(y_true, y_pred):
        return (y_true - y_pred) ** 2

    with dn.use_backend("torch"):
        model = _sequential()
        model.compile(optimizer="sgd", loss=my_loss)
    model.save(tmp_path / "m.safetensors")
    with pytest.raises(ModelFileError, match=r"custom function 'my_loss'.*custom_objects"):
        dn.load_model(tmp_path / "m.safetensors")
    loaded = dn.load_model(tmp_path / "m.safetensors", custom_objects={"my_loss": my_loss})
    assert loaded._compiled.loss.fn is my_loss


# -------------------------------------------------------------------------- the file itself


def test_file_is_plain_safetensors_with_json_metadata(tmp_path):
    model = build("cnn_bn", "torch")
    path = tmp_path / "m.safetensors"
    model.save(path)
    data = path.read_bytes()
    tensors = dict(safetensors.deserialize(data))  # safetensors' own parser, no dualnet
    assert sorted(tensors) == sorted(w.path for w in model.weights)
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + n])["__metadata__"]
    doc = json.loads(meta["dualnet"])
    assert meta["format"] == doc["format"] == "dualnet.model"
    assert doc["format_version"] == saving.FORMAT_VERSION
    assert doc["model"]["class_name"] == "Sequential" and doc["backend"] == "torch"
    assert [w["key"] for w in doc["weights"]] == [w.path for w in model.weights]
    assert doc["runtime_state"] == {model.layers[2].name: {"_training_calls": 1}}
    assert b"\x80\x04\x95" not in data[: 8 + n]  # no pickle protocol-4 frame in the header


class _Boom:
    """Unpickling this would create a marker file: proof that nothing is unpickled."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_a_pickle_is_refused_without_unpickling_it(tmp_path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "evil.safetensors"
    path.write_bytes(pickle.dumps(_Boom(str(marker))))
    with pytest.raises(ModelFileError, match="pickle stream; dualnet never unpickles"):
        dn.load_model(path)
    assert not marker.exists()


def test_the_class_is_never_imported_from_the_file(tmp_path):
    model = build("subclassed", "torch")
    path = tmp_path / "m.safetensors"
    model.save(path)
    _rewrite(path, doc=lambda d: d["model"].update(class_path="evil_module_xyz.Evil"))
    with pytest.raises(ModelFileError, match=r"class 'TwoBranch'.*custom_objects=\{'TwoBranch'"):
        dn.load_model(path)
    assert "evil_module_xyz" not in sys.modules


def test_save_refusals_and_atomic_write(tmp_path, monkeypatch):
    model = build("sequential", "torch")
    path = tmp_path / "m.safetensors"
    model.save(path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=False"):
        model.save(path, overwrite=False)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)  # the rename at the end of the write fails
    with pytest.raises(OSError, match="disk full"):
        build("cnn_bn", "torch").save(path)
    assert path.read_bytes() == before  # the old file is intact...
    assert os.listdir(tmp_path) == ["m.safetensors"]  # ...and no temporary file is left
    monkeypatch.undo()
    with pytest.raises(TypeError, match="invalid overwrite=1"):
        model.save(path, overwrite=1)
    with pytest.raises(IsADirectoryError):
        model.save(tmp_path)
    with pytest.raises(ValueError, match="not built yet"):
        dn.Sequential([dn.layers.Dense(2)]).save(tmp_path / "x.safetensors")


def test_loading_keeps_the_global_seed_and_names(tmp_path):
    model = build("subclassed", "torch")
    model.save(tmp_path / "m.safetensors")
    dn.set_random_seed(11)
    dn.models.clear_session()
    dn.load_model(tmp_path / "m.safetensors", custom_objects=CUSTOM)
    after = (dn.random.draw_seed(), dn.layers.Dense(1).name)
    dn.set_random_seed(11)
    dn.models.clear_session()
    assert after == (dn.random.draw_seed(), dn.layers.Dense(1).name)


# ---------------------------------------------------------------------------- bad files


def _raw(path):
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    meta = json.loads(data[8 : 8 + n])["__metadata__"]
    tensors = {k: np.frombuffer(bytes(v["data"]), np.float32).reshape(v["shape"])
               for k, v in safetensors.deserialize(data)}  # fmt: skip
    return meta, tensors


def _rewrite(path, doc=None, tensors=None, meta=None):
    """Rewrite a (float32) model file with its description, tensors or metadata edited."""
    m, t = _raw(path)
    d = json.loads(m["dualnet"])
    if doc is not None:
        doc(d)
    if tensors is not None:
        tensors(t)
    m["dualnet"] = json.dumps(d)
    if meta is not None:
        meta(m)
    path.write_bytes(safetensors.numpy.save(t, metadata=m))


def _keras_zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")


def _flip_header_byte(path):
    data = bytearray(path.read_bytes())
    data[9] = ord("#")  # the header JSON's first key's quote
    path.write_bytes(bytes(data))


def _bad_offsets(path):
    """A tensor's data_offsets not a [begin, end] pair (the header rewritten, data kept)."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    first = next(k for k in header if k != "__metadata__")
    header[first]["data_offsets"] = 4
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data[8 + n :])


BAD_FILES = {
    "empty": (lambda p: p.write_bytes(b""), "truncated or empty"),
    "truncated_data": (lambda p: p.write_bytes(p.read_bytes()[:-7]), "truncated: the header "
                       "describes"),
    "truncated_header": (lambda p: p.write_bytes(p.read_bytes()[:40]), "truncated: the header is"),
    "random_bytes": (lambda p: p.write_bytes(RNG.bytes(300)), "not a safetensors file"),
    "keras_zip": (_keras_zip, "zip archive"),
    "hdf5": (lambda p: p.write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(50)), "HDF5"),
    "corrupt_header": (_flip_header_byte, "corrupt safetensors header"),
    "plain_safetensors": (lambda p: safetensors.numpy.save_file({"w": np.zeros(2)}, p),
                          "not a dualnet model file"),
    "bad_json": (lambda p: _rewrite(p, meta=lambda m: m.update(dualnet="{oops")),
                 "not valid JSON"),
    "newer_version": (lambda p: _rewrite(p, doc=lambda d: d.update(format_version=99)),
                      "newer dualnet.*format version 99"),
    "no_weights_list": (lambda p: _rewrite(p, doc=lambda d: d.pop("weights")),
                        "has no 'weights'"),
    "missing_tensor": (lambda p: _rewrite(p, tensors=lambda t: t.pop("sequential/dense/bias")),
                       "missing tensors: sequential/dense/bias"),
    "extra_tensor": (lambda p: _rewrite(p, tensors=lambda t: t.update(extra=np.zeros(1, "f4"))),
                     "unexpected tensors.*extra"),
    "wrong_shape": (lambda p: _rewrite(p, tensors=lambda t: t.update(
        {"sequential/dense/bias": np.zeros(5, "float32")})), r"sequential/dense/bias: float32 "
        r"\(5,\), described as float32 \(6,\)"),
    "wrong_dtype": (lambda p: _rewrite(p, tensors=lambda t: t.update(
        {"sequential/dense/bias": np.zeros(6, "float64")})), "float64 .*described as float32"),
    "wrong_class": (lambda p: _rewrite(p, doc=lambda d: d["model"].update(class_name="Evil")),
                    "not Sequential or Functional"),
    "weights_do_not_fit": (lambda p: _rewrite(p, doc=lambda d: d["weights"][0].update(
        key="sequential/other/kernel")), "missing tensors|do not fit"),
    "bad_offsets": (_bad_offsets, r"data_offsets \[begin, end\]"),
    "bad_class_path": (lambda p: _rewrite(p, doc=lambda d: d["model"].update(class_path=[1])),
                       "class_path is not a string"),
    "bad_build_shape": (lambda p: _rewrite(p, doc=lambda d: d["model"].update(
        build_input_shape=5)), "build_input_shape 5"),
}  # fmt: skip


def _damaged(case, tmp_path):
    dn.set_random_seed(0)
    with dn.use_backend("torch"):
        dn.models.clear_session()
        model = _sequential()  # names: sequential, dense, dense_1
    path = tmp_path / "m.safetensors"
    model.save(path)
    damage, message = BAD_FILES[case]
    damage(path)
    return path, message


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_is_refused_clearly(case, tmp_path):
    path, message = _damaged(case, tmp_path)
    with pytest.raises(ModelFileError, match=message) as info:
        dn.load_model(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("backend", BACKENDS)
# load_weights loads into the model it is given: the saved model's class plays no part.
@pytest.mark.parametrize("case", [c for c in BAD_FILES if c != "wrong_class"])
def test_load_weights_leaves_the_model_untouched(case, backend, tmp_path):
    path, message = _damaged(case, tmp_path)
    with dn.use_backend(backend):
        model = _cnn() if case == "plain_safetensors" else _sequential()
    before = model.get_weights()
    with pytest.raises(ModelFileError, match=message):
        saving.load_weights(model, path)
    assert all(same_bits(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_load_weights_into_another_model(tmp_path):
    model = build("cnn_bn", "torch")
    model.save(tmp_path / "m.safetensors")
    with dn.use_backend("tensorflow"):
        twin = dn.models.clone_to(model, "tensorflow")
        twin.set_weights([np.zeros_like(w) for w in twin.get_weights()])
        other = _sequential()
    saving.load_weights(twin, tmp_path / "m.safetensors")
    assert_same_weights(model, twin)
    assert twin.layers[2].get_runtime_state() == model.layers[2].get_runtime_state()
    before = other.get_weights()
    with pytest.raises(ModelFileError, match="the layers do not fit"):
        saving.load_weights(other, tmp_path / "m.safetensors")
    assert all(same_bits(a, b) for a, b in zip(before, other.get_weights(), strict=True))


def test_load_model_argument_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        dn.load_model(tmp_path / "absent.safetensors")
    with pytest.raises(TypeError, match="invalid path=3"):
        dn.load_model(3)
    with pytest.raises(TypeError, match="invalid custom_objects"):
        dn.load_model(tmp_path / "x", custom_objects=[TwoBranch])
    with pytest.raises(TypeError, match="invalid compile='yes'"):
        dn.load_model(tmp_path / "x", compile="yes")
