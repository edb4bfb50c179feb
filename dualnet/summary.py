"""The text of ``Model.summary()``: Keras 3's table, rendered without colours."""

from __future__ import annotations

import shutil
from collections.abc import Sequence

from dualnet.dtypes import numpy_dtype
from dualnet.errors import bad_value
from dualnet.layers import (
    WeightInfo,
)
from dualnet.models import (
    Model,
)

__all__ = ["summary_text"]


def summary_text(
    model: Model, *, line_length: int | None = None, positions: Sequence[float] | None = None
) -> str:
    """The text of :meth:`Model.summary`: Keras 3's table, rendered without colours."""
    import rich.console
    import rich.markup
    import rich.table

    rows, chain = model._summary_rows()
    if chain:
        default_length, default_positions = 88, [0.45, 0.80, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #"]
        alignment = ["left", "left", "right"]
    else:
        default_length, default_positions = 108, [0.3, 0.56, 0.74, 1.0]
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        alignment = ["left", "left", "right", "left"]
    # Keras's widths: the default length, narrowed to the terminal (minus 4).
    default_length = min(default_length, shutil.get_terminal_size().columns - 4)
    if line_length is None:
        line_length = default_length
    if isinstance(line_length, bool) or not isinstance(line_length, int) or line_length <= 0:
        raise bad_value("line_length", line_length, "a positive int", where="summary")
    positions = list(positions or default_positions)
    if positions[-1] <= 1:
        positions = [int(p * line_length) for p in positions]
    widths, current = [], 0
    for pos in positions:
        width = int(pos) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(width)
        current += width
    columns = [rich.table.Column(h, justify=a, width=w)
               for h, a, w in zip(header, alignment, widths, strict=False)]  # fmt: skip
    table = rich.table.Table(*columns, width=line_length, show_lines=True)
    for row in rows:
        table.add_row(*[rich.markup.escape(cell) for cell in row])

    weights = model.weights
    trainable = [w for w in weights if w.trainable]
    frozen = [w for w in weights if not w.trainable]

    def line(label: str, ws: list[WeightInfo]) -> str:
        count = sum(w.size for w in ws)
        size = sum(w.size * numpy_dtype(w.dtype).itemsize for w in ws)
        return f" {label}: {count:,} ({_readable_size(size)})"

    console = rich.console.Console(
        highlight=False, force_terminal=False, color_system=None, width=max(line_length, 80)
    )
    with console.capture() as capture:
        console.print(f'Model: "{rich.markup.escape(model.name)}"')
        console.print(table)
        console.print(line("Total params", weights))
        console.print(line("Trainable params", trainable))
        console.print(line("Non-trainable params", frozen))
    return capture.get()


def _readable_size(size: float) -> str:
    """Keras's ``readable_memory_size``: ``104.00 B``, ``1.50 KB``, ..."""
    for unit in ["B", "KB", "MB", "GB", "TB", "PB"]:
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"
