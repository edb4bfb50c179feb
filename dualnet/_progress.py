"""The progress display of ``fit`` (Keras's ``verbose``), apart from the training loop."""

from __future__ import annotations

import time
from typing import Any

__all__ = ["Progress"]


class Progress:
    """Keras-like progress: ``verbose=1`` a rich progress bar per epoch and a summary line,
    ``verbose=2`` the summary line only, ``verbose=0`` nothing."""

    def __init__(self, verbose: int, epochs: int, steps: int):
        self.verbose, self.epochs, self.steps = verbose, epochs, steps
        self._bar: Any = None
        self._task: Any = None
        self._start = 0.0
        self._last = 0.0
        self._console: Any = None
        if verbose:
            import rich.console

            self._console = rich.console.Console(highlight=False)

    def epoch_start(self, epoch: int) -> None:
        self._start = time.perf_counter()
        if self.verbose == 1:
            import rich.progress as rp

            self._bar = rp.Progress(
                rp.TextColumn(f"Epoch {epoch + 1}/{self.epochs}"), rp.BarColumn(),
                rp.MofNCompleteColumn(), rp.TimeElapsedColumn(), rp.TextColumn("{task.fields[l]}"),
                console=self._console, transient=True,
            )  # fmt: skip
            self._task = self._bar.add_task("", total=self.steps, l="")
            self._bar.start()

    def batch_end(self, batch: int, loss: float) -> None:
        if self._bar is None:
            return
        now = time.perf_counter()
        # Re-rendering the loss text on every batch would cost more than a small step.
        if now - self._last > 0.1 or batch + 1 == self.steps:
            self._bar.update(self._task, completed=batch + 1, l=f"loss: {loss:.4f}")
            self._last = now
        else:
            self._bar.advance(self._task)

    def epoch_end(self, epoch: int, logs: dict[str, float]) -> None:
        self.close()
        if self.verbose:
            seconds = time.perf_counter() - self._start
            parts = " - ".join(f"{k}: {v:.4f}" for k, v in logs.items())
            self._console.print(
                f"Epoch {epoch + 1}/{self.epochs} - {self.steps} steps - {seconds:.2f}s - {parts}"
            )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
