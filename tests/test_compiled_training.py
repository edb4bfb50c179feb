"""Compiled training (Note [Compiled training] in :mod:`dualnet.training_steps`): the
TensorFlow step in ``tf.function`` (the default) and with XLA, the torch step under
``torch.compile``, each against ``run_eagerly=True``: the same weights, histories, optimizer
state, dropout masks, the same NonFiniteError with the failing update not applied, and the
multi-tensor optimizer updates bit for bit as the per-tensor rule."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet import optimizers, training, training_steps
from dualnet._backend import backend_module
from dualnet.bench import suite_fit
from dualnet.bench.kernels import Setup
from dualnet.errors import NonFiniteError
from dualnet.parity.catalogue import training_sequences as TS

RNG = np.random.default_rng(7)
X = RNG.standard_normal((20, 6))
Y = np.eye(3)[RNG.integers(0, 3, 20)]
# batch_size=8: batches of 8, 8 and 4 samples, so the last batch has its own shape.
BATCH = 8

# The compiled modes per backend (compile() keyword arguments).
COMPILED = [
    pytest.param("tensorflow", {}, id="tensorflow-function"),
    pytest.param("tensorflow", {"jit_compile": True}, id="tensorflow-xla"),
    pytest.param("torch", {"jit_compile": True}, id="torch-compile"),
]


def mlp(backend, *, dropout=False, batchnorm=False, dtype="float32"):
    """6 -> Dense(8, relu) [-> BatchNormalization] [-> Dropout(0.3)] -> Dense(3) logits, the
    same weights and names on every call."""
    dn.models.clear_session()
    dn.set_random_seed(0)
    with dn.use_backend(backend):
        stack = [dn.Input((6,), dtype=dtype), dn.layers.Dense(8, activation="relu", dtype=dtype)]
        if batchnorm:
            stack.append(dn.layers.BatchNormalization(dtype=dtype))
        if dropout:
            stack.append(dn.layers.Dropout(0.3, seed=5, dtype=dtype))
        stack.append(dn.layers.Dense(3, dtype=dtype))
        return dn.Sequential(stack, name="mlp")


def train(model, compile_kwargs, x=X, y=Y, *, optimizer=None, loss=None, metrics=("accuracy",),
          **fit_kwargs):  # fmt: skip
    """Compile and fit; the history, or the NonFiniteError raised."""
    model.compile(
        optimizer=optimizer or optimizers.Adam(0.05),
        loss=loss or dn.losses.CategoricalCrossentropy(from_logits=True),
        metrics=list(metrics), **compile_kwargs,
    )  # fmt: skip
    options = {"batch_size": BATCH, "epochs": 2, "verbose": 0, "seed": 3, **fit_kwargs}
    try:
        return model.fit(x, y, **options)
    except NonFiniteError as err:
        return err


def assert_same_training(got, want, *, history=True, rtol=1e-5):
    """Weights, optimizer state and counter, histories, to a few float32 ulp per step: a graph
    may run other kernels than eager code for the same op (TensorFlow's oneDNN rewrite of a
    graph fuses the convolution and batch-normalization kernels and sums their gradients in
    another order; eagerly it keeps Eigen's), and XLA and inductor fuse the ops of a step
    (contracted multiply-adds, other summation orders). Six steps of Adam at lr 0.05 on values
    of order 1: a 1e-6 absolute difference is ~10 ulp of float32 carried forward."""
    tol = {"rtol": rtol, "atol": 1e-6}
    (ma, ha), (mb, hb) = got, want
    for a, b in zip(ma.get_weights(), mb.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, **tol, equal_nan=True)
    assert ma.optimizer.iterations == mb.optimizer.iterations
    sa, sb = ma.optimizer.state(), mb.optimizer.state()
    assert sa.keys() == sb.keys()
    for k in sa:
        for a, b in zip(sa[k], sb[k], strict=True):
            np.testing.assert_allclose(a, b, **tol, err_msg=k)
    if history:
        assert ha.history.keys() == hb.history.keys()
        for k in ha.history:
            np.testing.assert_allclose(ha.history[k], hb.history[k], **tol, err_msg=k)


# ---------------------------------------------------------------- the same training, compiled


@pytest.mark.parametrize(("backend", "kwargs"), COMPILED)
def test_compiled_fit_matches_eager_fit(backend, kwargs):
    """Two epochs of Adam with accuracy, the last batch partial: everything as eagerly."""
    model, eager = mlp(backend), mlp(backend)
    got = (model, train(model, kwargs))
    want = (eager, train(eager, {"run_eagerly": True}))
    assert model._compiled.runner is not None  # it did run compiled
    assert_same_training(got, want)


@pytest.mark.parametrize(("backend", "kwargs"), [COMPILED[0], COMPILED[2]])
def test_compiled_dropout_model_draws_the_eager_masks(backend, kwargs):
    """Portable dropout inside the compiled step (tf.numpy_function in a graph, the host draw
    between torch.compile's graphs): the same masks call by call, so the same training."""
    model, eager = mlp(backend, dropout=True), mlp(backend, dropout=True)
    got = (model, train(model, kwargs))
    want = (eager, train(eager, {"run_eagerly": True}))
    assert model.layers[1].training_calls == eager.layers[1].training_calls == 6
    assert_same_training(got, want)


@pytest.mark.parametrize(("backend", "kwargs"), [COMPILED[0], COMPILED[2]])
def test_compiled_masked_sequence_model_matches_eager(backend, kwargs):
    """The BiGRU tagger of the sequence training cases: Embedding(mask_zero) masks flow to a
    per-timestep sparse cross-entropy, whose divisor (the valid steps) stays on the device."""
    x, y = TS.tagger_data(np.random.default_rng(1), 16)
    runs = []
    for options in (kwargs, {"run_eagerly": True}):
        dn.models.clear_session()
        dn.set_random_seed(0)
        with dn.use_backend(backend):
            model = TS.gru_tagger("float32")
        loss = dn.losses.SparseCategoricalCrossentropy(from_logits=True)
        runs.append((model, train(model, options, x, y, loss=loss, optimizer=optimizers.SGD(0.5),
                                  metrics=())))  # fmt: skip
    assert_same_training(*runs)


def test_custom_loss_on_masked_outputs_compiles():
    """A user loss returning per-timestep values of masked outputs: the mean over the valid
    steps, counted on the device inside tf.function."""
    x, y = TS.tagger_data(np.random.default_rng(2), 16)

    def per_step(y_true, y_pred):
        return dn.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")(
            y_true, y_pred
        )

    runs = []
    for options in ({}, {"run_eagerly": True}):
        dn.models.clear_session()
        dn.set_random_seed(0)
        with dn.use_backend("tensorflow"):
            model = TS.gru_tagger("float32")
        runs.append((model, train(model, options, x, y, loss=per_step, metrics=(),
                                  optimizer=optimizers.SGD(0.5))))  # fmt: skip
    assert_same_training(*runs)


def test_steps_per_execution_changes_only_when_the_host_reads():
    """Reading the flag and losses every 1, 2 or 100 steps gives the same training."""
    runs = {}
    for spe in (1, 2, 100):
        model = mlp("tensorflow", dropout=True)
        runs[spe] = (model, train(model, {"steps_per_execution": spe}, epochs=3))
    assert_same_training(runs[2], runs[1])
    assert_same_training(runs[100], runs[1])


@pytest.mark.parametrize("case", ["dropout-cnn-adam", "bigru-tagger"])
def test_training_catalogue_passes_with_eager_steps(case, monkeypatch):
    """``dualnet parity`` runs the training cases with the default (compiled) TensorFlow step;
    forced eager they pass too (two cases here: portable dropout, masks and sparse labels)."""
    from dualnet.parity import catalogue

    original = training.compile
    monkeypatch.setattr(training, "compile",
                        lambda *a, **k: original(*a, **{**k, "run_eagerly": True}))  # fmt: skip
    built = []
    monkeypatch.setattr(training_steps, "Runner", lambda *a: built.append(a))
    (found,) = [c for c in catalogue.load() if c.id == f"training/{case}"]
    checks = list(found.evaluate("float32", "cpu"))
    assert built == []  # no compiled step was built
    failed = [c.explain() for c in checks if c.status in ("FAIL", "error")]
    assert not failed, "\n".join(failed)


# ----------------------------------------------------------------------- non-finite values


def _nonfinite_run(backend, kwargs, how):
    """A model with BatchNormalization and Dropout that fails at step 2 (epoch 1, batch 2),
    with the flag read only after step 3 (steps_per_execution=3): an infinite input sample
    in the second batch, or a learning rate that overflows the weights in the first update."""
    model = mlp(backend, dropout=True, batchnorm=True)
    x = X.copy()
    if how == "inf-input":
        x[BATCH + 1, 2] = np.inf  # the second batch of the unshuffled first epoch
    lr = 1e30 if how == "huge-lr" else 0.05
    err = train(model, {"steps_per_execution": 3, **kwargs}, x, Y,
                optimizer=optimizers.SGD(lr), shuffle=False)  # fmt: skip
    assert isinstance(err, NonFiniteError)
    return model, err


@pytest.mark.parametrize("how", ["inf-input", "huge-lr"])
@pytest.mark.parametrize(("backend", "kwargs"), [COMPILED[0], COMPILED[2]])
def test_nonfinite_step_raises_the_eager_error_and_skips_every_later_update(backend, kwargs, how):
    """Step 3 is finite again (its batch has no inf), but its update must not be applied
    either: the model ends exactly where eager training stopped, before step 2, with the
    moving statistics and the dropout count of step 2's forward pass, and the same message."""
    got, err = _nonfinite_run(backend, kwargs, how)
    want, expected = _nonfinite_run(backend, {"run_eagerly": True}, how)
    assert str(err) == str(expected)
    assert (err.step, err.epoch, err.batch) == (2, 1, 2)
    assert (err.what, err.parameter) == (expected.what, expected.parameter)
    assert err.history.epoch == []
    # The first update multiplies the gradients' rounding differences (a few ulp, more where
    # the batch-norm gradient cancels) by lr = 1e30.
    assert_same_training((got, err), (want, expected), history=False,
                         rtol=1e-3 if how == "huge-lr" else 1e-5)  # fmt: skip
    assert got.optimizer.iterations == 1
    assert got.layers[2].training_calls == want.layers[2].training_calls == 2
    if how == "inf-input":  # training on after the error: the flag was reset, steps 2-4 apply
        before = got.get_weights()
        got.fit(X, Y, batch_size=BATCH, epochs=1, verbose=0, seed=0)
        assert got.optimizer.iterations == 4
        assert not np.array_equal(got.get_weights()[0], before[0])


def test_train_step_reads_the_flag_at_once():
    """A compiled train_step raises at its own step, as the eager one: a linear model whose
    first update overflows its kernel (finite gradients), caught as a weight at step 2."""
    dn.models.clear_session()
    dn.set_random_seed(0)
    with dn.use_backend("tensorflow"):
        model = dn.Sequential([dn.Input((6,), dtype="float64"),
                               dn.layers.Dense(3, dtype="float64")])  # fmt: skip
    model.compile(optimizer=optimizers.SGD(1e308), loss="mse")
    model.train_step(X[:4] * 1e3, Y[:4] * 1e3)
    with pytest.raises(NonFiniteError, match="the update of step 1 overflowed it") as info:
        model.train_step(X[:4], Y[:4])
    assert info.value.step == 2 and model.optimizer.iterations == 1


# --------------------------------------------------------------------- labels and arguments


def test_labels_are_checked_once_on_the_host_before_any_step(monkeypatch):
    """The traced loss checks nothing on the host: fit checks the whole label array first, with
    the eager loss's message, before launching a step."""
    launched = []
    original = training_steps.Runner.run

    def run(self, *args, **kwargs):
        launched.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(training_steps.Runner, "run", run)
    labels = Y.argmax(1)
    labels[-1] = 7  # in the last batch
    messages = []
    for kwargs in ({}, {"run_eagerly": True}):
        model = mlp("tensorflow")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", **kwargs)
        with pytest.raises(ValueError, match="y_true=7") as info:
            model.fit(X, labels, batch_size=BATCH, verbose=0, shuffle=False)
        messages.append(str(info.value))
        if not kwargs:
            assert launched == []  # refused before any step
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"run_eagerly": 1}, "run_eagerly=1"), ({"jit_compile": "xla"}, "jit_compile='xla'"),
     ({"steps_per_execution": 0}, "steps_per_execution=0")],
)  # fmt: skip
def test_compile_options_are_validated(backend, kwargs, match):
    model = mlp(backend)
    with pytest.raises((TypeError, ValueError), match=match):
        model.compile(optimizer="adam", loss="mse", **kwargs)
    assert not model.compiled


def test_default_modes_follow_keras():
    """TensorFlow: tf.function by default (XLA only with a GPU, as Keras's "auto"); torch:
    eager unless jit_compile=True; run_eagerly wins everywhere."""
    tf_model, torch_model = mlp("tensorflow"), mlp("torch")
    gpu = backend_module("tensorflow").core.cuda_available()
    assert training_steps.resolve_mode(tf_model, False, "auto") == ("xla" if gpu else "function")
    assert training_steps.resolve_mode(tf_model, False, False) == "function"
    assert training_steps.resolve_mode(tf_model, True, True) == "eager"
    assert training_steps.resolve_mode(torch_model, False, "auto") == "eager"
    assert training_steps.resolve_mode(torch_model, False, True) == "torch.compile"
    dropout = mlp("tensorflow", dropout=True)
    assert training_steps.resolve_mode(dropout, False, "auto") == "function"
    with pytest.raises(ValueError, match=r"layers \['dropout'\] draw their noise on the host"):
        training_steps.resolve_mode(dropout, False, True)


# ------------------------------------------------------------------------ compiled, once


def test_tensorflow_step_is_traced_once_per_batch_shape():
    model = mlp("tensorflow", dropout=True)
    train(model, {}, epochs=3)
    assert model._compiled.runner.step_fn._fn.experimental_get_tracing_count() == 2


@pytest.mark.parametrize("dropout", [False, True], ids=["mlp", "dropout"])
def test_torch_step_does_not_recompile_from_step_to_step(dropout):
    """Coefficients and the step number are tensors: nothing the compiled code guards on
    changes from step to step (were they Python numbers, torch.compile would recompile at
    every step count). The dropout masks' host draw must stay out of the traced code too:
    traced, the draw's call count is a guard, and every step recompiles."""
    import torch
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    model = mlp("torch", dropout=dropout)
    model.compile(optimizer=optimizers.Adam(0.01), loss="mse", jit_compile=True)
    for _ in range(2):
        model.train_step(X[:BATCH], Y[:BATCH])
    frames, graphs = counters["frames"]["total"], counters["stats"]["unique_graphs"]
    assert graphs > 0
    for _ in range(4):
        model.train_step(X[:BATCH], Y[:BATCH])
    # Frames compiled: a recompilation of a frame without tensor ops makes no new graph.
    assert (counters["frames"]["total"], counters["stats"]["unique_graphs"]) == (frames, graphs)


# ------------------------------------------------------------------ the optimizer's updates


UPDATE_CONFIGS = {
    "adam": optimizers.Adam(0.01),
    "adam-amsgrad-torch-eps-decoupled": optimizers.Adam(
        0.01, amsgrad=True, epsilon_placement="sqrt_v_hat", weight_decay=0.1),
    "sgd-torch-nesterov-l2": optimizers.SGD(0.1, momentum=0.9, nesterov=True,
                                            momentum_form="torch", weight_decay=0.05,
                                            weight_decay_mode="l2"),
    "rmsprop-centered-momentum-clipnorm": optimizers.RMSprop(0.01, centered=True, momentum=0.9,
                                                             clipnorm=0.5),
    "adagrad-schedule": optimizers.Adagrad(dn.optimizers.schedules.ExponentialDecay(0.1, 2, 0.5)),
}  # fmt: skip


def _updates(backend, opt, compiled, dtypes=("float32", "float64")):
    """Three updates of a float32 and a float64 variable (or of those in ``dtypes``: the same
    values), by ``apply`` or by the compiled step's path (coefficients as a float64 tensor; in
    tf.function on TensorFlow)."""
    rng = np.random.default_rng(0)
    init = {d: rng.standard_normal((4, 3)).astype(d) for d in ("float32", "float64")}
    steps = [{d: rng.standard_normal((4, 3)).astype(d) for d in init} for _ in range(3)]
    opt = type(opt).from_config(opt.get_config())
    natives = backend_module(backend)
    if backend == "torch":
        import torch

        params = [torch.nn.Parameter(torch.tensor(init[d])) for d in dtypes]
        grads = [[torch.tensor(s[d]) for d in dtypes] for s in steps]
    else:
        import tensorflow as tf

        params = [tf.Variable(init[d]) for d in dtypes]
        grads = [[tf.constant(s[d]) for d in dtypes] for s in steps]
    opt.build(params)
    for gs in grads:
        if not compiled:
            opt.apply(gs, params)
            continue
        vector = natives.core.convert_to_tensor(opt._coefficient_vector(opt.iterations))

        def update(gs=gs, vector=vector):
            variables, values = opt._compiled_values(gs, vector)
            natives.optimizers.assign_all(variables, values)

        if backend == "tensorflow":
            import tensorflow as tf

            tf.function(update)()
        else:
            import torch

            with torch.no_grad():
                update()
        opt._rt.iterations += 1
    return [dn.to_numpy(p) for p in params], opt.state()


@pytest.mark.parametrize("config", list(UPDATE_CONFIGS))
def test_compiled_update_path_is_the_eager_update_bit_for_bit(backend, config):
    """The compiled step's update (per variable, coefficients as tensors rounded on the
    device) writes the bits of ``apply`` (multi-tensor groups, Python-float coefficients)."""
    got = _updates(backend, UPDATE_CONFIGS[config], compiled=True)
    want = _updates(backend, UPDATE_CONFIGS[config], compiled=False)
    for a, b in zip(got[0], want[0], strict=True):
        np.testing.assert_array_equal(a, b)
    for k in want[1]:
        for a, b in zip(got[1][k], want[1][k], strict=True):
            np.testing.assert_array_equal(a, b, err_msg=k)


def test_mixed_dtype_groups_update_as_separate_optimizers(backend):
    """One group per compute dtype: a float32 and a float64 variable in one optimizer move as
    each would alone."""
    opt = UPDATE_CONFIGS["adam"]
    both = _updates(backend, opt, compiled=False)
    for i, dtype in enumerate(("float32", "float64")):
        alone = _updates(backend, opt, compiled=False, dtypes=(dtype,))
        np.testing.assert_array_equal(both[0][i], alone[0][0])


def test_torch_float32_sqrt_is_correctly_rounded_on_cpu():
    """numpy's float32 square root (the IEEE instruction) equals the float64 round trip, the
    correctly rounded result, on every kind of input; a 0-d tensor too."""
    import torch
    from dualnet.backends.torch import optimizers as T

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(100_000) * 10.0 ** rng.integers(-40, 38, 100_000),
                        [0.0, -0.0, np.inf, np.nan, -1.0, 1e-45, 1e-40, 3.4e38]])  # fmt: skip
    t = torch.tensor(x.astype(np.float32))
    want = torch.sqrt(t.double()).float()
    np.testing.assert_array_equal(T.sqrt(t).numpy(), want.numpy())
    assert T.sqrt(t[5]).shape == () and T.sqrt(t[5]).item() == want[5].item()


# ------------------------------------------------------------------------- the fit benchmark


SMALL_FIT = {
    "mlp": suite_fit.FitSpec("mlp", (12, 16, 16, 3), "relu", 64, 16, "cce_logits"),
    "tutorial": suite_fit.FitSpec("tutorial", (3, 3, 2, 2), "sigmoid", 8, 1, "mse"),
}


def test_fit_group_times_every_loop_in_its_own_mode(monkeypatch):
    """The fit group: dualnet's fit, Keras's fit and the torch loop, eager and compiled, each
    checked against dualnet's first step before timing; the harness calls the epochs as they
    are (each compiles its own steps), so its own wrappers never see them."""
    from dualnet.bench import runner
    from dualnet.bench.timing import Policy

    kernels = [suite_fit._fit_kernel(spec) for spec in SMALL_FIT.values()]
    config = runner.Config(modes=("eager", "compiled"), torch_compile=True, json_path=None,
                           policy=Policy(rel_ci=0.5, min_samples=3, budget_s=0.02,
                                         block_s=1e-4, warmup=1, warmup_s=0))  # fmt: skip
    report = runner.Run(config, {}, {}).execute(runner.plan(kernels, config, [], quick=True))
    rows = {(r["kernel"], r["label"], r["mode"]): r for r in report["results"]}
    assert len(rows) == 16  # 2 networks x 2 backends x 2 loops x 2 modes
    for key, r in rows.items():
        assert r["status"] == "ok", (key, r["error"])
        assert r["group"] == "fit" and r["pass"] == "epoch"
    for kernel in SMALL_FIT:
        for label, mode in (("dualnet[torch]", "compile"), ("dualnet[tensorflow]", "function")):
            assert rows[(kernel, label, mode)]["ratio"]["name"] == "dualnet/native"


@pytest.mark.parametrize("backend", ["torch", "tensorflow"])
def test_fit_group_refuses_a_native_loop_doing_other_work(backend, monkeypatch):
    """A native twin with another learning rate must not be timed against dualnet."""
    monkeypatch.setattr(suite_fit, "LEARNING_RATE", 1e-2)  # the twins read it when built
    kernel = suite_fit._fit_kernel(SMALL_FIT["mlp"])
    original = suite_fit._dualnet

    def dualnet_lr_1e3(spec, setup, options):  # dualnet keeps 1e-3
        model = original(spec, setup, options)
        model.compile(optimizer=optimizers.from_torch_defaults("adam", lr=1e-3, eps=1e-7)
                      if backend == "torch" else optimizers.Adam(1e-3), loss=model._compiled.loss,
                      **options)  # fmt: skip
        return model

    monkeypatch.setattr(suite_fit, "_dualnet", dualnet_lr_1e3)
    with dn.use_backend(backend), pytest.raises(AssertionError, match="disagrees with dualnet"):
        kernel.build(Setup(backend=backend, impl="native"))
