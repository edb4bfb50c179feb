"""What a model does with data, as Keras's ``Trainer`` mixin: ``predict`` in batches and the
training API (``compile``, ``fit``, ``evaluate``, ``train_step``, ``test_step``), each a thin
method over :mod:`dualnet.training` (Note [Keras semantics of fit] there). :class:`dualnet.Model`
inherits it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dualnet._backend import backend_module, get_backend
from dualnet._ops import tensor_backend, to_numpy
from dualnet.errors import bad_type, bad_value

__all__ = ["DEFAULT_BATCH_SIZE", "Trainer"]

DEFAULT_BATCH_SIZE = 32  # Keras's predict() default


def _to_numpy_tree(out: Any) -> Any:
    if isinstance(out, list | tuple):
        return [to_numpy(o) for o in out]
    return to_numpy(out)


class Trainer:
    """``predict`` and the training API of :class:`dualnet.Model` (which supplies
    ``_split_inputs``, ``_check_tensor``, ``_where`` and ``_compiled``)."""

    def predict(self, x: Any, batch_size: int | None = None) -> Any:
        """Run the model in batches without recording gradients; returns numpy array(s).

        Args:
            x: an array (or a list of arrays for a model with several inputs).
            batch_size: samples per batch (default 32, as Keras).
        """
        if batch_size is None:
            batch_size = DEFAULT_BATCH_SIZE
        if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer):
            raise bad_type("batch_size", batch_size, "a positive int", where=self._where())
        if batch_size <= 0:
            raise bad_value("batch_size", batch_size, "a positive int", where=self._where())
        xs, single = self._split_inputs(x)
        backend = self._backend or get_backend()
        for item in xs:
            self._check_tensor(item, backend)
        xs = [item if tensor_backend(item) else np.asarray(item) for item in xs]
        sizes = {int(item.shape[0]) if len(item.shape) else -1 for item in xs}
        if len(sizes) != 1 or -1 in sizes:
            raise ValueError(
                f"{self._where()}.predict: inputs need a batch dimension of one common size, got "
                f"shapes {[tuple(item.shape) for item in xs]}."
            )
        n = sizes.pop()
        if n == 0:
            raise ValueError(f"{self._where()}.predict: got an empty batch (0 samples).")
        batches = []
        with backend_module(backend).models.inference():
            for start in range(0, n, batch_size):
                chunk = [item[start : start + batch_size] for item in xs]
                out = self(chunk[0] if single else chunk)
                batches.append(_to_numpy_tree(out))
        if isinstance(batches[0], list):
            return [np.concatenate([b[i] for b in batches]) for i in range(len(batches[0]))]
        return np.concatenate(batches)

    # -- training (dualnet/training.py; Note [Keras semantics of fit]) ------------------------

    def compile(self, optimizer: Any = "rmsprop", loss: Any = None,
                metrics: Sequence[Any] | None = None, *, run_eagerly: bool = False,
                jit_compile: bool | str = "auto",
                steps_per_execution: int = 1) -> None:  # fmt: skip
        """Configure the model for training, as Keras's ``compile``.

        Args:
            optimizer: a name (``"adam"``; default ``"rmsprop"``, as Keras), an
                :class:`~dualnet.optimizers.Optimizer` (used by this model only) or a config dict.
            loss: a name (``"mse"``, ``"categorical_crossentropy"``: the loss class with the
                default ``sum_over_batch_size`` reduction), a :class:`~dualnet.losses.Loss`, or
                a callable ``fn(y_true, y_pred)``.
            metrics: names or :class:`~dualnet.metrics.Metric` objects; ``"accuracy"`` picks
                binary/categorical/sparse accuracy from the shapes, as Keras.
            run_eagerly: run every training step eagerly (as Keras's ``run_eagerly``); by
                default the TensorFlow step is a ``tf.function``.
            jit_compile: ``"auto"`` (Keras's default: XLA for TensorFlow when a GPU is present
                and the model draws no host noise; eager on torch), ``True`` (XLA on
                TensorFlow, ``torch.compile`` on torch) or ``False``.
            steps_per_execution: a compiled step's non-finite flag, losses and metrics are read
                back every this many steps (and at the end of each epoch); 1 (Keras's default)
                reads after every step. Unlike Keras, each step is still one call of the
                compiled function. See Note [Compiled training] in
                :mod:`dualnet.training_steps`.
        """
        from dualnet import training

        training.compile(self, optimizer=optimizer, loss=loss, metrics=metrics,
                         run_eagerly=run_eagerly, jit_compile=jit_compile,
                         steps_per_execution=steps_per_execution)  # fmt: skip

    @property
    def optimizer(self) -> Any:
        """The compiled optimizer (None before ``compile``)."""
        return None if self._compiled is None else self._compiled.optimizer

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def fit(self, x: Any = None, y: Any = None, *, batch_size: int | None = None,
            epochs: int = 1, verbose: Any = "auto", shuffle: bool = True,
            validation_data: Any = None, seed: int | None = None) -> Any:  # fmt: skip
        """Train for ``epochs`` passes over ``(x, y)``; returns a Keras-style ``History``.

        Args:
            x, y: inputs and targets with one row per sample (numpy or this backend's tensors).
            batch_size: samples per update (default 32); the last batch may be smaller.
            epochs: passes over the data.
            verbose: 0 silent, 1 (``"auto"``) progress bar and one line per epoch, 2 the line.
            shuffle: draw a new sample order each epoch.
            validation_data: ``(x_val, y_val)``, evaluated after every epoch (``val_*`` keys).
            seed: seeds the batch order; the same seed gives the same batches on both
                backends (default: drawn from dualnet's global generator).

        Returns:
            :class:`dualnet.training.History` (``.history``, ``.epoch``, ``.params``,
            ``.orders``).

        Raises:
            dualnet.errors.NonFiniteError: a loss, gradient or weight became NaN/inf; the
                failing update is not applied (Note [Non-finite values stop training]). A
                compiled step raises it when its flag is read (every ``steps_per_execution``
                steps and at each epoch's end), with the model as it was before the failing
                step (Note [Compiled training] in :mod:`dualnet.training_steps`).
        """
        from dualnet import training

        return training.fit(
            self, x, y, batch_size=batch_size, epochs=epochs, verbose=verbose, shuffle=shuffle,
            validation_data=validation_data, seed=seed,
        )  # fmt: skip

    def evaluate(self, x: Any = None, y: Any = None, *, batch_size: int | None = None,
                 verbose: Any = "auto", return_dict: bool = False) -> Any:  # fmt: skip
        """The loss (a float), or ``[loss, *metrics]``, or a dict with ``return_dict=True``."""
        from dualnet import training

        return training.evaluate(self, x, y, batch_size=batch_size, verbose=verbose,
                                 return_dict=return_dict)  # fmt: skip

    def train_step(self, x: Any, y: Any) -> dict[str, float]:
        """One optimizer update on the batch ``(x, y)``, for custom loops.

        Returns ``{"loss": batch loss, "<metric>": batch value}`` (the values *before* the
        update). Raises :class:`dualnet.errors.NonFiniteError` without updating when a value is
        non-finite. Runs as ``compile`` chose (a ``tf.function`` on TensorFlow by default), and
        reads the flag back at once.
        """
        from dualnet import training

        return training.train_step(self, x, y)

    def test_step(self, x: Any, y: Any) -> dict[str, float]:
        """Loss and metrics of one batch, without updating anything."""
        from dualnet import training

        return training.test_step(self, x, y)
