"""A picture of a model's graph, like ``keras.utils.plot_model``, drawn with matplotlib.

Keras needs the graphviz binary (``pydot``); dualnet draws the boxes and arrows itself with
matplotlib's Agg canvas (pure Python, no global pyplot state), so the picture is the same on
both backends and on any machine. Each layer is a box titled ``name (Type)`` with its input and
output shapes; arrows follow the data; layers are placed in rows by depth (longest path from an
input), top to bottom.

For a subclassed model the arrows come from the layer calls recorded during its first call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dualnet.errors import bad_type, bad_value
from dualnet.layers import InputLayer, format_shape

__all__ = ["plot_model"]

_FONT = 10.0  # points
_CHAR_W = 0.0836 * _FONT / 10  # inches per character of DejaVu Sans Mono at _FONT
_LINE_H = 0.2 * _FONT / 10  # inches per text line
_PAD = 0.12  # inches around the text in a box
_GAP_X, _GAP_Y, _MARGIN = 0.35, 0.45, 0.25  # inches between boxes / rows, and at the edges


def _box_lines(layer: Any, parents: list[Any], shape: Any, options: dict[str, bool]) -> list[str]:
    kind = type(layer).__name__
    title = f"{layer.name} ({kind})" if options["show_layer_names"] else kind
    lines = [title]
    if options["show_layer_activations"] and hasattr(layer, "activation"):
        from dualnet import activations

        act = activations.serialize(layer.activation)
        lines.append(f"Activation: {act if isinstance(act, str) else 'custom'}")
    if options["show_shapes"]:
        if not isinstance(layer, InputLayer):
            lines.append(f"Input shape: {format_shape(layer.input_shape)}")
        lines.append(f"Output shape: {format_shape(shape)}")
    if options["show_dtype"]:
        lines.append(f"dtype: {layer.dtype}")
    if options["show_trainable"]:
        lines.append(f"Params: {layer.count_params():,}")
    return lines


def plot_model(
    model: Any,
    to_file: str | Path = "model.png",
    *,
    show_shapes: bool = True,
    show_dtype: bool = False,
    show_layer_names: bool = True,
    show_layer_activations: bool = False,
    show_trainable: bool = False,
    dpi: int = 96,
) -> Path:
    """Draw ``model`` to a PNG file.

    Args:
        model: a dualnet model (built, so that shapes are known; an unbuilt one shows ``?``).
        to_file: the PNG path.
        show_shapes: input and output shapes in each box (default True here; Keras's
            ``plot_model`` defaults to False).
        show_dtype: each layer's dtype.
        show_layer_names: ``name (Type)`` rather than just ``Type``.
        show_layer_activations: the activation of layers that have one.
        show_trainable: the parameter count of each layer.
        dpi: resolution.

    Returns:
        The path written.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    from dualnet.models import Model

    if not isinstance(model, Model):
        raise bad_type("model", model, "a dualnet Model", where="plot_model")
    options = {
        "show_shapes": show_shapes, "show_dtype": show_dtype,
        "show_layer_names": show_layer_names, "show_layer_activations": show_layer_activations,
        "show_trainable": show_trainable,
    }  # fmt: skip
    for key, value in options.items():
        if not isinstance(value, bool):
            raise bad_type(key, value, "a bool", where="plot_model")
    if isinstance(dpi, bool) or not isinstance(dpi, int) or dpi <= 0:
        raise bad_value("dpi", dpi, "a positive int", where="plot_model")
    path = Path(to_file)
    if path.suffix.lower() != ".png":
        raise bad_value("to_file", str(to_file), "a path ending in .png", where="plot_model")

    graph = model._graph()
    # Depth = longest path from a source; boxes of one depth share a row.
    depth: dict[int, int] = {}
    for layer, parents, _ in graph:
        depth[id(layer)] = 1 + max((depth.get(id(p), 0) for p in parents), default=-1)
    rows: dict[int, list[tuple[Any, list[str]]]] = {}
    for layer, parents, shape in graph:
        rows.setdefault(depth[id(layer)], []).append(
            (layer, _box_lines(layer, parents, shape, options))
        )

    def size(lines: list[str]) -> tuple[float, float]:
        return (max(len(s) for s in lines) * _CHAR_W + 2 * _PAD,
                len(lines) * _LINE_H + 2 * _PAD + (0.06 if len(lines) > 1 else 0))  # fmt: skip

    row_widths = {
        d: sum(size(lines)[0] for _, lines in items) + _GAP_X * (len(items) - 1)
        for d, items in rows.items()
    }
    row_heights = {d: max(size(lines)[1] for _, lines in items) for d, items in rows.items()}
    width = max(row_widths.values(), default=1.0) + 2 * _MARGIN
    height = sum(row_heights.values()) + _GAP_Y * max(len(rows) - 1, 0) + 2 * _MARGIN

    fig = Figure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)  # y grows downwards: the first row at the top
    ax.axis("off")

    anchors: dict[int, tuple[float, float, float]] = {}  # id -> (x centre, top, bottom)
    y = _MARGIN
    for d in sorted(rows):
        x = (width - row_widths[d]) / 2
        for layer, lines in rows[d]:
            w, h = size(lines)
            top = y + (row_heights[d] - h) / 2
            kind = "input" if isinstance(layer, InputLayer) else "layer"
            ax.add_patch(FancyBboxPatch(
                (x, top), w, h, boxstyle="round,pad=0,rounding_size=0.06", linewidth=1.0,
                edgecolor="#333333", facecolor="#e8f0fb" if kind == "layer" else "#eeeeee",
            ))  # fmt: skip
            ax.text(x + w / 2, top + _PAD, lines[0], ha="center", va="top", fontsize=_FONT,
                    family="monospace", weight="bold")  # fmt: skip
            if len(lines) > 1:
                rule = top + _PAD + _LINE_H + 0.03
                ax.plot([x, x + w], [rule, rule], color="#999999", linewidth=0.6)
                ax.text(x + _PAD, rule + 0.03, "\n".join(lines[1:]), ha="left", va="top",
                        fontsize=_FONT * 0.9, family="monospace", linespacing=1.35)  # fmt: skip
            anchors[id(layer)] = (x + w / 2, top, top + h)
            x += w + _GAP_X
        y += row_heights[d] + _GAP_Y

    for layer, parents, _ in graph:
        cx, top, _ = anchors[id(layer)]
        for parent in parents:
            px, _, bottom = anchors[id(parent)]
            ax.annotate("", xy=(cx, top), xytext=(px, bottom),
                        arrowprops={"arrowstyle": "-|>", "color": "#333333", "lw": 1.0,
                                    "shrinkA": 0, "shrinkB": 1})  # fmt: skip
    fig.savefig(path, dpi=dpi, facecolor="white")
    return path
