"""``training`` flows through every call as in Keras (Note [Training flag]): explicit values
win, None inherits the enclosing call's flag and is False at the top level; fit/train_step run
training, predict/evaluate/test_step and a bare call run inference."""

from __future__ import annotations

import numpy as np
import pytest

import dualnet as dn
from dualnet.layers import base

X = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
Y = np.eye(2, dtype="float32")[[0, 1, 1, 0]]


class Recorder(dn.Model):
    """Records the flag ``call`` receives and the flag its layers would inherit."""

    def __init__(self):
        super().__init__(name="recorder")
        self.dense = dn.layers.Dense(2, activation="softmax")
        self.seen = []

    def call(self, inputs, training=None):
        self.seen.append((training, base._training))
        return self.dense(inputs)


class NoFlag(dn.Model):
    """A call without a ``training`` parameter: its layers inherit the model call's flag."""

    def __init__(self):
        super().__init__(name="no_flag")
        self.dense = dn.layers.Dense(2, activation="softmax")
        self.seen = []

    def call(self, inputs):
        self.seen.append(base._training)
        return self.dense(inputs)


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (lambda m: m(X), False),
        (lambda m: m(X, training=True), True),
        (lambda m: m(X, training=False), False),
        (lambda m: m.predict(X), False),
        (lambda m: m.train_step(X, Y), True),
        (lambda m: m.test_step(X, Y), False),
        (lambda m: m.evaluate(X, Y, verbose=0), False),
        (lambda m: m.fit(X, Y, epochs=1, verbose=0), True),
    ],
    ids=["call", "call-true", "call-false", "predict", "train_step", "test_step", "evaluate",
         "fit"],
)  # fmt: skip
def test_flag_reaches_subclassed_call(backend, run, expected):
    """Every call of ``call`` sees the flag, in the eager loop (``run_eagerly=True``)."""
    model = Recorder()
    model(X)  # build
    model.compile(optimizer="sgd", loss="categorical_crossentropy", run_eagerly=True)
    model.seen.clear()
    run(model)
    assert model.seen and all(s == (expected, expected) for s in model.seen), model.seen


@pytest.mark.parametrize("how", ["train_step", "fit"])
def test_flag_reaches_the_compiled_step(backend, how):
    """The compiled step (TensorFlow's default) traces ``call`` with training=True; the only
    other call is the one inference pass per input shape that sizes the zero predictions the
    labels are checked against (training.check_labels)."""
    model = Recorder()
    model(X)  # build
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.seen.clear()
    if how == "fit":
        model.fit(X, Y, epochs=2, verbose=0)
    else:
        model.train_step(X, Y)
        model.train_step(X, Y)
    assert (True, True) in model.seen, model.seen
    assert set(model.seen) <= {(True, True), (False, False)}, model.seen
    assert model.seen.count((False, False)) <= 1, model.seen


def test_flag_is_inherited_without_a_training_parameter(backend):
    model = NoFlag()
    model(X, training=True)
    model(X)
    assert model.seen == [True, False]
    assert base._training is False  # restored after the call


def test_bad_training_value_is_refused(backend):
    model = Recorder()
    with pytest.raises(TypeError, match=r"training='yes'.*a bool or None"):
        model(X, training="yes")
    layer = dn.layers.Dense(2)
    with pytest.raises(TypeError, match=r"Dense 'dense.*training=1.*a bool or None"):
        layer(X, training=1)
    assert not layer.built


def test_flag_restored_after_an_exception(backend):
    class Boom(dn.Model):
        def call(self, inputs, training=None):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        Boom()(X, training=True)
    assert base._training is False
