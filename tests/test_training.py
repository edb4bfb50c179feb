"""Training: compile/fit/evaluate/train_step, metrics, bad input, the NaN stop, the divergence
locator and the figures (100-step parity itself is in test_parity.py, family "training")."""

from __future__ import annotations

import itertools
import json

import ml_dtypes
import numpy as np
import pytest

import dualnet as dn
from dualnet import losses, metrics, optimizers, schedules, training
from dualnet.dtypes import numpy_dtype
from dualnet.errors import NonFiniteError
from dualnet.reference import training as R

ACTS = ("relu", "sigmoid", "softmax")  # the seed tutorial: 3 -> 3 -> 2 -> 2
RNG = np.random.default_rng(0)
X = RNG.normal(size=(10, 3))
Y = np.eye(2)[RNG.integers(0, 2, 10)]


class Tutorial(dn.Model):
    def __init__(self, dtype="float32"):
        super().__init__(name="tutorial")
        self.d1 = dn.layers.Dense(3, activation="relu", dtype=dtype)
        self.d2 = dn.layers.Dense(2, activation="sigmoid", dtype=dtype)
        self.d3 = dn.layers.Dense(2, activation="softmax", dtype=dtype)

    def call(self, inputs):
        return self.d3(self.d2(self.d1(inputs)))


def build(kind="sequential", backend="torch", dtype="float64", seed=0):
    """The tutorial network with the same names and weights on every call."""
    dn.models.clear_session()
    dn.set_random_seed(seed)
    with dn.use_backend(backend):
        layers = [dn.layers.Dense(u, activation=a, dtype=dtype)
                  for u, a in zip((3, 2, 2), ACTS, strict=True)]  # fmt: skip
        if kind == "sequential":
            return dn.Sequential([dn.Input(shape=(3,), dtype=dtype), *layers], name="tutorial")
        if kind == "functional":
            inputs = x = dn.Input(shape=(3,), dtype=dtype)
            for layer in layers:
                x = layer(x)
            return dn.Model(inputs, x, name="tutorial")
        model = Tutorial(dtype)
        model(X[:1])
        return model


def reference_fit(weights, batches, lr, x=X, y=Y):
    """Per-step losses and final weights of plain SGD, float64 numpy."""
    opt = optimizers.serialize(optimizers.SGD(lr))
    cce = losses.serialize(losses.CategoricalCrossentropy())
    return R.train(x, y, weights, ACTS, cce, opt, batches)


def documented_orders(n, epochs, seed):
    """fit's sample order per epoch, from the rule documented in ``training.batch_orders`` and
    written here without dualnet: one ``numpy.random.default_rng(seed)`` for the whole fit,
    one permutation of ``range(n)`` drawn from it per epoch."""
    generator = np.random.default_rng(seed)
    return [generator.permutation(n) for _ in range(epochs)]


def errors_on_both(fn):
    """The error message ``fn(backend)`` raises on each backend (they must be equal)."""
    messages = {}
    for backend in dn.BACKENDS:
        with pytest.raises((ValueError, TypeError, NonFiniteError)) as info:
            fn(backend)
        messages[backend] = f"{type(info.value).__name__}: {info.value}"
    assert messages["torch"] == messages["tensorflow"], messages
    return messages["torch"]


# ------------------------------------------------------------------------------------ fit


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_fit_history_matches_reference_on_both_backends(kind):
    """Same keys, same numbers (float64) on both backends, and the numpy reference's numbers:
    the epoch loss is the batch-size-weighted mean of the batch losses (batches of 4, 4, 2)."""
    histories = {}
    for backend in dn.BACKENDS:
        model = build(kind, backend)
        weights = model.get_weights()
        model.compile(optimizer=optimizers.SGD(0.5), loss="categorical_crossentropy",
                      metrics=["accuracy", "mae"])  # fmt: skip
        h = model.fit(X, Y, batch_size=4, epochs=3, seed=7, verbose=0,
                      validation_data=(X[:5], Y[:5]))  # fmt: skip
        histories[backend] = (h, model.get_weights())
    (ht, wt), (hf, wf) = histories["torch"], histories["tensorflow"]
    assert list(ht.history) == list(hf.history) == [
        "loss", "accuracy", "mae", "val_loss", "val_accuracy", "val_mae"]  # fmt: skip
    assert ht.epoch == hf.epoch == [0, 1, 2]
    for key in ht.history:
        np.testing.assert_allclose(ht.history[key], hf.history[key], rtol=1e-13, err_msg=key)
    batches = [o[i : i + 4] for o in documented_orders(10, 3, seed=7) for i in (0, 4, 8)]
    ref_loss, ref_hist, _ = reference_fit(weights, batches, 0.5)
    sizes = np.array([len(b) for b in batches]).reshape(3, 3)
    epoch_loss = (np.array(ref_loss).reshape(3, 3) * sizes).sum(axis=1) / 10
    np.testing.assert_allclose(ht.history["loss"], epoch_loss, rtol=1e-12)
    for got_t, got_f, want in zip(wt, wf, ref_hist[-1], strict=True):
        np.testing.assert_allclose(got_t, want, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(got_f, want, rtol=1e-12, atol=1e-14)


def test_same_seed_same_batches_on_both_backends():
    orders = {}
    for backend in dn.BACKENDS:
        model = build("sequential", backend)
        model.compile("sgd", "mse")
        orders[backend] = model.fit(X, Y, batch_size=3, epochs=4, seed=3, verbose=0).orders
    # The expectation is the documented rule, not the function fit calls.
    expected = documented_orders(10, 4, seed=3)
    for a, b, e in zip(orders["torch"], orders["tensorflow"], expected, strict=True):
        np.testing.assert_array_equal(a, e)
        np.testing.assert_array_equal(b, e)
    assert not all(np.array_equal(a, b) for a, b in itertools.pairwise(expected))
    other = documented_orders(10, 4, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(expected, other, strict=True))
    model = build("sequential", "torch")
    model.compile("sgd", "mse")
    in_order = model.fit(X, Y, batch_size=3, epochs=2, seed=3, shuffle=False, verbose=0).orders
    for order in in_order:
        np.testing.assert_array_equal(order, np.arange(10))


def test_global_seed_makes_unseeded_fit_repeatable(backend):
    runs = []
    for _ in range(2):
        model = build("sequential", backend)  # also calls dn.set_random_seed(0)
        model.compile("sgd", "mse")
        runs.append(model.fit(X, Y, batch_size=3, epochs=2, verbose=0))
    assert runs[0].params["seed"] == runs[1].params["seed"]
    np.testing.assert_array_equal(runs[0].orders[1], runs[1].orders[1])


def test_train_step_is_one_reference_update(backend):
    model = build("sequential", backend)
    weights = model.get_weights()
    model.compile(optimizer=optimizers.SGD(0.3), loss="categorical_crossentropy",
                  metrics=["acc"])  # fmt: skip
    logs = model.train_step(X, Y)
    ref_loss, ref_hist, _ = reference_fit(weights, [np.arange(10)], 0.3)
    assert set(logs) == {"loss", "acc"}
    assert logs["loss"] == pytest.approx(ref_loss[0], rel=1e-13)
    for got, want in zip(model.get_weights(), ref_hist[0], strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-15)
    assert model.optimizer.iterations == 1


def test_evaluate_forms_and_state_in_canonical_layout():
    results, states = {}, {}
    for backend in dn.BACKENDS:
        model = build("sequential", backend)
        model.compile(optimizer=optimizers.Adam(0.01), loss="categorical_crossentropy",
                      metrics=["accuracy"])  # fmt: skip
        model.fit(X, Y, batch_size=5, epochs=2, seed=0, verbose=0)
        results[backend] = model.evaluate(X, Y, batch_size=3, verbose=0)
        assert model.evaluate(X, Y, verbose=0, return_dict=True) == pytest.approx(
            dict(zip(["loss", "accuracy"], results[backend], strict=True)), rel=1e-12
        )
        states[backend] = training.canonical_optimizer_state(model)
        shapes = [s.shape for s in states[backend]["momentum"]]
        assert shapes == [w.shape for w in model.weights]  # (in, out) kernels on torch too
    np.testing.assert_allclose(results["torch"], results["tensorflow"], rtol=1e-13)
    for k in states["torch"]:
        for a, b in zip(states["torch"][k], states["tensorflow"][k], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    plain = build("sequential", "torch")
    plain.compile("sgd", "mse")
    assert isinstance(plain.evaluate(X, Y, verbose=0), float)


def test_verbose_output(backend, capsys):
    model = build("sequential", backend)
    model.compile("sgd", "mse", metrics=["mse"])
    model.fit(X, Y, epochs=2, batch_size=4, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(X, Y, epochs=2, batch_size=4, verbose=2)
    out = capsys.readouterr().out
    assert "Epoch 1/2 - 3 steps" in out and "Epoch 2/2" in out and "mse: " in out
    model.fit(X, Y, epochs=1, batch_size=4, verbose=1)  # the rich bar (not a terminal here)
    assert "Epoch 1/1" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- metrics


@pytest.mark.parametrize(
    ("metric", "y_true", "y_pred", "expected", "cls"),
    [
        ("accuracy", [[0, 1], [1, 0], [0, 1]], [[0.2, 0.8], [0.3, 0.7], [0.5, 0.5]],
         [1, 0, 0], metrics.CategoricalAccuracy),  # ties go to the first class
        ("accuracy", [1, 0, 1], [[0.2, 0.8], [0.3, 0.7], [0.9, 0.1]], [1, 0, 0],
         metrics.SparseCategoricalAccuracy),
        ("acc", [[1], [0], [1]], [[0.2, 0.8], [0.6, 0.4], [0.9, 0.1]], [1, 1, 0],
         metrics.SparseCategoricalAccuracy),  # a (B, 1) label column is sparse
        ("accuracy", [[1], [0], [1]], [[0.5], [0.2], [0.51]], [0, 1, 1],
         metrics.BinaryAccuracy),  # strict "> 0.5"
        ("binary_accuracy", [[1, 0], [0, 0]], [[0.9, 0.9], [0.1, 0.2]], [0.5, 1.0],
         metrics.BinaryAccuracy),  # multi-label: mean over the last axis
        ("mae", [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, -3.0]], [1.5, 2.0],
         metrics.MeanAbsoluteError),
        ("mse", [[1.0, 2.0], [0.0, 0.0]], [[0.0, 0.0], [1.0, -3.0]], [2.5, 5.0],
         metrics.MeanSquaredError),
    ],
)  # fmt: skip
def test_metric_values(metric, y_true, y_pred, expected, cls):
    spec = metrics.resolve(metrics.get(metric), np.asarray(y_true), np.asarray(y_pred))
    assert type(spec) is cls and spec.name == metric
    np.testing.assert_array_equal(spec(y_true, y_pred), expected)


def test_epoch_metrics_are_sample_weighted(backend):
    """Keras's Mean: the epoch accuracy is over all samples, not the mean of batch means."""
    model = build("sequential", backend)
    model.compile(optimizer=optimizers.SGD(0.0), loss="categorical_crossentropy",
                  metrics=["accuracy", "mse"])  # fmt: skip
    h = model.fit(X, Y, batch_size=4, epochs=1, shuffle=False, verbose=0)
    p = model.predict(X)
    assert h.history["accuracy"][0] == pytest.approx(np.mean(p.argmax(1) == Y.argmax(1)))
    assert h.history["mse"][0] == pytest.approx(np.mean((p - Y) ** 2), rel=1e-13)
    ref = dn.reference.losses.categorical_crossentropy(Y, p).mean()
    assert h.history["loss"][0] == pytest.approx(ref, rel=1e-13)


# -------------------------------------------------------------------------------- bad input


def _compiled(backend, **kwargs):
    model = build("sequential", backend)
    model.compile(**{"optimizer": "sgd", "loss": "categorical_crossentropy", **kwargs})
    return model


@pytest.mark.parametrize(
    ("case", "match"),
    [
        (lambda b: _compiled(b, optimizer="adamax"), "Unknown optimizer 'adamax'"),
        (lambda b: _compiled(b, optimizer=optimizers.SGD(-0.1)), "learning_rate=-0.1"),
        (lambda b: _compiled(b, loss="hinge"), "Unknown loss 'hinge'"),
        (lambda b: _compiled(b, metrics=["f1"]), "Unknown metric 'f1'"),
        (lambda b: _compiled(b, metrics="accuracy"), "metrics="),
        (lambda b: _compiled(b).fit(X, Y[:7], verbose=0), "x with 10 and y with 7 samples"),
        (lambda b: _compiled(b).fit(X, Y.argmax(1), verbose=0), "integer class labels"),
        (lambda b: _compiled(b).fit(X, Y, batch_size=0, verbose=0), "batch_size=0"),
        (lambda b: _compiled(b).fit(X, Y, epochs=1.5, verbose=0), "epochs=1.5"),
        (lambda b: _compiled(b).fit(X, Y, verbose=3), "verbose=3"),
        (lambda b: _compiled(b).fit(X, Y, validation_data=X, verbose=0), "validation_data="),
        (lambda b: build("sequential", b).fit(X, Y, verbose=0), "not compiled"),
        (lambda b: _compiled(b, loss=None).train_step(X, Y), "no loss"),
    ],
    ids=["unknown-optimizer", "negative-lr", "unknown-loss", "unknown-metric", "metrics-str",
         "length-mismatch", "int-labels-for-cce", "batch-size", "epochs", "verbose",
         "validation-data", "not-compiled", "no-loss"],
)  # fmt: skip
def test_bad_input_same_error_on_both_backends_and_nothing_changes(case, match):
    message = errors_on_both(case)
    assert match in message


def test_failed_label_check_leaves_weights_and_optimizer_untouched(backend):
    model = _compiled(backend)
    before = model.get_weights()
    with pytest.raises(ValueError, match="integer class labels"):
        model.fit(X, Y.argmax(1), verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert model.optimizer.iterations == 0


@pytest.mark.parametrize("where", ["late-label", "validation-shape"])
def test_bad_input_found_mid_fit_restores_weights_and_optimizer(where, backend):
    """A problem found after some updates (a label out of range in the last batch, validation
    data that does not fit) leaves the model and the optimizer as they were before fit."""
    model = _compiled(backend, loss="sparse_categorical_crossentropy", optimizer="adam")
    model.fit(X, Y.argmax(1), verbose=0, epochs=1, seed=0)  # the optimizer now has state
    before, state = model.get_weights(), model.optimizer.state()
    iterations = model.optimizer.iterations
    labels = Y.argmax(1)
    kwargs = {"verbose": 0, "batch_size": 4, "shuffle": False, "epochs": 2}
    if where == "late-label":
        labels = labels.copy()
        labels[-1] = 7  # found at batch 3 of epoch 1, after two updates
        with pytest.raises(ValueError, match="y_true=7") as info:
            model.fit(X, labels, **kwargs)
    else:
        with pytest.raises(ValueError) as info:
            model.fit(X, labels, validation_data=(X[:, :2], labels), **kwargs)
        assert len(info.value.history.history.get("loss", [])) == 0  # stopped in epoch 1
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert model.optimizer.iterations == iterations
    after = model.optimizer.state()
    for k in state:
        assert all(np.array_equal(a, b) for a, b in zip(state[k], after[k], strict=True))
    assert hasattr(info.value, "history")


def test_optimizer_used_by_another_model_is_refused():
    opt = optimizers.SGD(0.1)
    model = _compiled("torch", optimizer=opt)
    model.train_step(X, Y)
    message = errors_on_both(lambda b: _compiled(b, optimizer=opt))
    assert "optimizer=" in message


# -------------------------------------------------------------------------------- NaN stop


def linear(backend, dtype="float32"):
    """A single linear Dense layer: no saturation, so a huge weight always reaches the loss.

    (Through relu -> sigmoid the tutorial network overflows *inside* a matmul first, and the
    frameworks round that differently: torch's CPU matmul gives NaN for inf + (-inf) terms,
    numpy's and TensorFlow's fused multiply-adds give ±inf, which the sigmoid then saturates.)
    """
    dn.models.clear_session()
    dn.set_random_seed(0)
    with dn.use_backend(backend):
        return dn.Sequential([dn.Input(shape=(3,), dtype=dtype), dn.layers.Dense(2, dtype=dtype)],
                             name="linear")  # fmt: skip


def _nan_run(backend, how):
    model = linear(backend) if how == "huge-lr" else build("sequential", backend, "float32")
    lr = 1e30 if how == "huge-lr" else 0.1
    model.compile(optimizer=optimizers.SGD(lr), loss="mse")
    x = X.copy()
    if how == "inf-input":
        x[5, 1] = np.inf  # in the second batch of the (unshuffled) first epoch
    snapshots = []
    original = model.train_step

    def record(xb, yb):  # the weights before each step, to compare after the failure
        snapshots.append(model.get_weights())
        return original(xb, yb)

    with pytest.raises(NonFiniteError) as info:
        for start in range(0, 10, 4):
            record(x[start : start + 4], Y[start : start + 4])
        for _ in range(5):
            record(x, Y)
    return model, info.value, snapshots


@pytest.mark.parametrize("how", ["inf-input", "huge-lr"])
def test_nan_stop_keeps_weights_and_is_the_same_on_both_backends(how):
    messages = {}
    for backend in dn.BACKENDS:
        model, err, snapshots = _nan_run(backend, how)
        messages[backend] = str(err)
        # The weights (and the optimizer counter) are those from before the failing step.
        for got, want in zip(model.get_weights(), snapshots[-1], strict=True):
            np.testing.assert_array_equal(got, want)
        assert np.all([np.isfinite(w).all() for w in model.get_weights()])
        assert model.optimizer.iterations == err.step - 1
    assert messages["torch"] == messages["tensorflow"]
    assert err.step == 2 and err.what == "loss"
    assert "training stopped at step 2" in messages["torch"]
    assert "The update was not applied" in messages["torch"]
    if how == "inf-input":
        assert err.parameter == "tutorial/dense/kernel"  # inf · w reaches the first kernel


def test_nan_stop_in_fit_carries_the_history(backend):
    model = linear(backend)
    model.compile(optimizer=optimizers.SGD(1e30), loss="mse")
    with pytest.raises(NonFiniteError, match=r"step 2 \(epoch 1, batch 2\)") as info:
        model.fit(X, Y, batch_size=4, epochs=3, verbose=0, seed=0)
    assert info.value.epoch == 1 and info.value.batch == 2
    assert info.value.history.epoch == []  # no epoch completed


def test_weight_overflowed_by_an_update_is_reported(backend):
    model = linear(backend, "float64")
    model.compile(optimizer=optimizers.SGD(1e308), loss="mse")
    model.train_step(X * 1e3, Y * 1e3)  # finite gradients, lr·g overflows some weights
    with pytest.raises(NonFiniteError, match="the update of step 1 overflowed it") as info:
        model.train_step(X, Y)
    assert info.value.what == "weight" and info.value.step == 2


# ------------------------------------------------------------------------ divergence locator


@pytest.mark.parametrize("kind", ["sequential", "functional", "subclassed"])
def test_compare_names_the_perturbed_layer(kind):
    model = build(kind, "torch", dtype="float32")
    twin = model.to_backend("tensorflow")
    clean = dn.parity.compare(model, X, Y, "categorical_crossentropy", other=twin)
    assert clean.ok and clean.first_layer is None, clean.table()
    kernel = twin.layers[-2].native.kernel  # the 2nd Dense, through the native Keras layer
    kernel.assign(kernel + 1e-3)
    report = dn.parity.compare(model, X, Y, "categorical_crossentropy", other=twin)
    assert report.first_layer == twin.layers[-2].name, report.table()
    assert report.first_divergence.kind == "weight"
    rows = {(r.layer, r.kind): r for r in report.rows}
    assert rows[(model.layers[-3].name, "output")].passed  # before the perturbation: fine
    assert not rows[(model.layers[-2].name, "output")].passed
    assert "first divergence: layer" in str(report)
    data = json.loads(report.to_json())
    assert data["first_divergence"]["layer"] == twin.layers[-2].name
    assert len(data["rows"]) == len(report.rows)


def test_compare_outputs_only_and_default_twin():
    model = build("functional", "tensorflow", dtype="float64")
    report = dn.parity.compare(model, X)
    assert report.ok and report.backends == ("tensorflow", "torch")
    assert [r.kind for r in report.rows].count("output") == 3
    assert all(r.diff.max_abs < 1e-15 for r in report.rows)
    diff = dn.parity.compare(np.ones(3), np.ones(3), dn.parity.Tolerance(rtol=0, atol=0))
    assert isinstance(diff, dn.parity.Diff) and diff.passed  # the array form still works


def test_compare_training_finds_the_first_diverging_step():
    model = build("sequential", "torch", dtype="float64")
    before = model.get_weights()
    # Learning rates agree for the first 6 updates (iterations 0..5), then TF's doubles.
    pair = {
        "torch": optimizers.SGD(schedules.PiecewiseConstantDecay([5], [0.1, 0.1])),
        "tensorflow": optimizers.SGD(schedules.PiecewiseConstantDecay([5], [0.1, 0.2])),
    }
    report = dn.parity.compare_training(model, X, Y, loss="categorical_crossentropy",
                                        optimizer=pair, steps=10, batch_size=4)  # fmt: skip
    assert report.first_divergence["step"] == 7, report.table()
    assert report.first_divergence["parameter"].startswith("tutorial/")
    assert max(report.growth()[:6]) < 1e-15
    assert "first divergence at step 7" in report.table()
    same = dn.parity.compare_training(model, X, Y, loss="categorical_crossentropy",
                                      optimizer="adam", steps=10, batch_size=4)  # fmt: skip
    assert same.ok, same.table()
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))


def test_compare_training_bound_grows_by_the_measured_policy():
    """A learning rate 0.4% higher on TensorFlow from update 51 on makes the weights drift
    apart slowly (~1e-5 per update, float32). The bound of the parity suite's growth policy
    (one-step bound x (1 + (F-1)·√(k/100)), F measured) locates it; the old x k bound grew
    with the drift and never did."""
    model = build("sequential", "torch", dtype="float32")
    later = {
        "torch": optimizers.SGD(schedules.PiecewiseConstantDecay([50], [0.5, 0.5])),
        "tensorflow": optimizers.SGD(schedules.PiecewiseConstantDecay([50], [0.5, 0.502])),
    }
    report = dn.parity.compare_training(model, X, Y, loss="categorical_crossentropy",
                                        optimizer=later, steps=100, batch_size=4)  # fmt: skip
    assert report.first_divergence is not None, report.table()
    assert 51 < report.first_divergence["step"] <= 100, report.table()
    assert max(report.growth()[:50]) < 1e-6  # identical schedules until then
    same = dn.parity.compare_training(model, X, Y, loss="categorical_crossentropy",
                                      optimizer="sgd", steps=100, batch_size=4)  # fmt: skip
    assert same.ok, same.table()
    with pytest.raises(TypeError, match="growth=2"):
        dn.parity.compare_training(model, X, Y, loss="mse", growth=2)


# ----------------------------------------------------------------------------------- figures


def test_figures_written(tmp_path):
    import matplotlib.image

    from dualnet import figures

    paths = [
        figures.training_curves(tmp_path / "t.png", steps=12, samples=16, batch_size=8),
        figures.gradient_norms(tmp_path / "g.png", depth=4, width=8),
    ]
    for path in paths:
        image = matplotlib.image.imread(path)
        assert image.shape[0] > 300 and image.shape[1] > 300 and image.std() > 0.05
    norms = figures.layer_gradient_norms("sigmoid", "torch", depth=6, width=16)
    assert norms[0] < norms[-2] / 10  # vanishing towards the input
    np.testing.assert_allclose(
        norms,
        figures.layer_gradient_norms("sigmoid", "tensorflow", depth=6, width=16),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="steps="):
        figures.training_curves(tmp_path / "x.png", steps=0)
    with pytest.raises(ValueError, match="Unknown optimizer"):
        figures.training_curves(tmp_path / "x.png", optimizer="nope")
    assert not (tmp_path / "x.png").exists()


def test_cli_plot(tmp_path, monkeypatch):
    from dualnet import cli, figures

    drawn = []
    monkeypatch.setattr(figures, "gradient_norms", lambda path: drawn.append(path) or path)
    assert cli.main(["plot", "gradients", "--out", str(tmp_path)]) == 0
    assert drawn == [tmp_path / "gradients.png"]
    assert cli.main(["plot", "nope", "--out", str(tmp_path)]) == 2


# ------------------------------------------------------------------- the per-step finiteness check


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "inf-and-minus-inf", "none"])
def test_all_finite_agrees_with_the_per_tensor_flags(backend, bad, size):
    """The cheap all-finite test never misses a non-finite value (no false negatives), whether
    the value sits in a small tensor (torch checks those concatenated) or a large one (summed
    alone), among tensors of several dtypes and sizes."""
    from dualnet._backend import backend_module

    B = backend_module(backend).models
    values = {"nan": [np.nan], "inf": [np.inf], "-inf": [-np.inf],
              "inf-and-minus-inf": [np.inf, -np.inf], "none": []}[bad]  # fmt: skip
    n = 3 if size == "small" else 5000  # past torch's 4096-element threshold
    with dn.use_backend(backend):
        tensors = [dn.activations.linear(np.ones((3, 2), "float32")),
                   dn.activations.linear(np.array(2.0, "float64")),
                   dn.activations.linear(np.ones(6000, "float16")),
                   dn.activations.linear(np.ones((70, 70), "float64"))]  # fmt: skip
        tensors.append(dn.activations.linear(np.array([*np.ones(n), *values], "float32")))
        tensors.append(dn.activations.linear(np.ones(2, "float16")))
        flags = B.finite_flags(tensors)
        assert B.all_finite(tensors) == bool(flags.all()) == (bad == "none")


def test_overflowing_check_sum_of_finite_values_does_not_stop_training(backend):
    """All-finite is tested through sums, which can overflow for finite values: then the
    per-tensor scan decides, and training goes on."""
    model = linear(backend)
    model.compile(optimizer=optimizers.SGD(0.0), loss="mse")
    big = np.full((3, 2), 3e38, "float32")  # finite, but its float32 sum is inf
    model.set_weights([big, np.zeros(2, "float32")])
    from dualnet._backend import backend_module

    B = backend_module(backend).models
    with dn.use_backend(backend):
        # The cheap test is inconclusive where it sums (TensorFlow: every tensor; torch: those
        # past 4096 elements, the small ones being checked element by element).
        assert not B.all_finite([dn.activations.linear(np.full(5000, 3e38, "float32"))])
        assert B.all_finite(B.trainable_params(model)) == (backend == "torch")
    logs = model.train_step(np.zeros((4, 3)), np.zeros((4, 2)))  # zero inputs: finite loss
    assert logs["loss"] == 0.0 and model.optimizer.iterations == 1
    np.testing.assert_array_equal(model.get_weights()[0], big)


def test_all_finite_leaves_the_tensors_bit_for_bit(backend):
    """The check reads, never changes: torch's small tensors go through GradScaler's check with
    a scale of 1, which multiplies them in place; every bit survives (−0, subnormals, NaN with
    its payload, ±inf, the largest finite values), in every dtype."""
    from dualnet._backend import backend_module

    B = backend_module(backend).models
    with dn.use_backend(backend):
        tensors, before = [], []
        for dtype in ("float32", "float64", "float16", "bfloat16"):
            info = ml_dtypes.finfo(numpy_dtype(dtype))
            values = np.array([-0.0, 0.0, info.smallest_subnormal, -info.smallest_subnormal,
                               info.max, -info.max, 1.5, np.nan, np.inf, -np.inf],
                              dtype=numpy_dtype(dtype))  # fmt: skip
            t = dn.activations.linear(values)
            tensors.append(t)
            before.append(dn.to_numpy(t).copy())
        assert not B.all_finite(tensors)
        for t, b in zip(tensors, before, strict=True):
            a = dn.to_numpy(t)
            np.testing.assert_array_equal(a.view(f"u{a.dtype.itemsize}"),
                                          b.view(f"u{b.dtype.itemsize}"))  # fmt: skip


# -------------------------------------------------- the step's call path: checks kept per signature


def test_kept_input_signature_does_not_hide_bad_inputs(backend):
    """A Sequential model checks an input signature (shape, dtype) once; a bad one after good
    calls gets the full check's error, and other dtypes are still cast."""
    model = build("sequential", backend, dtype="float32")
    good = X[:2].astype("float32")
    first = dn.to_numpy(model(good))
    np.testing.assert_array_equal(dn.to_numpy(model(good)), first)  # the kept signature
    assert model.__dict__.get("_checked_inputs")
    with pytest.raises(ValueError) as kept:
        model(np.zeros((2, 4), "float32"))
    with pytest.raises(ValueError) as full:
        build("sequential", backend, dtype="float32")(np.zeros((2, 4), "float32"))
    assert str(kept.value) == str(full.value) and "last dimension 3" in str(kept.value)
    cast = model(good.astype("float64"))  # cast to the Input's float32 as before
    assert dn.to_numpy(cast).dtype == np.float32
    np.testing.assert_array_equal(dn.to_numpy(cast), first)


@pytest.mark.parametrize("dtype", ["float32", "float64", "bfloat16"])
@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_torch_dense_activation_is_the_neutral_functions_bits(activation, dtype):
    """torch's Dense calls the torch function behind a standard activation directly (half
    precision in float32, rounded once); the bits are the neutral function's."""
    import torch

    from dualnet import _ops

    with dn.use_backend("torch"):
        layer = dn.layers.Dense(4, activation=activation, dtype=dtype)
        x = _ops.tensor(RNG.normal(0, 4, (5, 3)), dtype)
        y = layer(x)
        linear = torch.nn.functional.linear(x, layer.native.kernel, layer.native.bias)
        expected = getattr(dn.activations, activation)(linear)
    assert y.dtype == expected.dtype and torch.equal(y, expected)


@pytest.mark.parametrize("bad", [False, True])
def test_all_finite_takes_any_gradient_autograd_returns(bad):
    """torch's autograd may return a stride-0 (expanded) gradient, which an in-place check
    cannot write into: those are checked by a sum instead (no crash), alongside ordinary and
    non-contiguous ones, and a NaN in any of them is found."""
    import torch
    from dualnet.backends.torch import models as TM

    p = torch.nn.Parameter(torch.ones(3))
    (expanded,) = torch.autograd.grad((torch.ones(4, 3) * p.sum()).sum(), [p])
    tensors = [torch.ones(5), expanded, torch.ones(3, 4).t(), torch.ones(1).expand(3)]
    if bad:
        tensors[3] = torch.full((1,), float("nan")).expand(3)
    assert TM.all_finite(tensors) is (not bad)
