"""Bidirectional (see the package docstring for the torch | Keras | dualnet table)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from dualnet import initializers as _initializers
from dualnet.errors import bad_type, bad_value
from dualnet.layers import _args
from dualnet.layers.base import Layer, WeightSpec, check_layer_arguments
from dualnet.layers.recurrent.base_rnn import BaseRNN, check_sequence_shape

MERGE_MODES = ("concat", "sum", "mul", "ave")


def _derived_seed(seed: int) -> int:
    """The backward copy's seed for a forward seed: another deterministic stream (so the two
    directions start from different weights and draw different dropout masks)."""
    return int(np.random.default_rng([seed, 1]).integers(0, 2**31 - 1))


def _reseeded(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every seed (initializers' and dropout's) replaced by its derived seed."""
    out = dict(config)
    for key, value in config.items():
        if key.endswith("_initializer"):
            init = _initializers.get(value)
            if init.random:
                out[key] = _initializers.serialize(replace(init, seed=_derived_seed(init.seed)))
    if out.get("seed") is not None:
        out["seed"] = _derived_seed(out["seed"])
    return out


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards over the sequence and merges
    the two outputs, Keras's wrapper.

    The forward layer is a copy of ``layer`` named ``forward_<name>``; the backward layer is
    ``backward_layer`` (copied), or a copy of ``layer`` named ``backward_<name>`` with
    ``go_backwards`` flipped. Both run on the same input (and mask). The backward output is
    re-reversed with ``return_sequences`` so that step ``t`` of both sits at ``t``; without it,
    the outputs merged are the two *final* outputs (the forward layer's after step T, the
    backward layer's after step 1). ``merge_mode``: ``concat`` (``[y_fw, y_bw]`` on the last
    axis), ``sum``, ``mul``, ``ave`` (``(y_fw + y_bw)/2``), or None (the list ``[y_fw,
    y_bw]``). With ``return_state`` the result is the list ``[merged, *forward states,
    *backward states]`` (``[y_fw, y_bw, *states]`` for None), and ``initial_state`` is the
    list ``[*forward states, *backward states]``.

    As Keras does, both copies get ``zero_output_for_mask = return_sequences``: with a mask and
    ``return_sequences``, masked steps give zeros (the standalone layer repeats the last valid
    output instead).

    Without ``backward_layer``, the copy's seeds (its initializers' and its dropout seed) are
    derived deterministically from the layer's, so the two directions start from different
    weights and draw different masks (Keras: copies of unseeded layers draw new seeds; copies of
    seeded ones repeat them). ``get_config`` lists both layers, so a copy of the wrapper
    reproduces both.

    Weights: the forward layer's, then the backward layer's, named ``forward_<name>/kernel``,
    ... (Keras's paths, without its ``/<cell>`` level).

    Args:
        layer: a :class:`~dualnet.layers.SimpleRNN`, :class:`~dualnet.layers.LSTM` or
            :class:`~dualnet.layers.GRU` (its own weights are not used: copies are made).
        merge_mode: one of ``concat`` (default), ``sum``, ``mul``, ``ave``, or None.
        backward_layer: a recurrent layer with the other ``go_backwards`` and the same
            ``return_sequences`` and ``return_state``; default a copy of ``layer``.
        name, input_shape, trainable: see :class:`~dualnet.layers.base.Layer`.
        dtype: default the layer's; given, both copies take it.

    Shape:
        input ``(batch, timesteps, features)``; output as the layer's, with ``2·units``
        features for ``concat``.
    """

    supports_masking: ClassVar[bool] = True
    call_arguments: ClassVar[tuple[str, ...]] = ("initial_state",)

    def __init__(self, layer: BaseRNN, merge_mode: str | None = "concat",
                 backward_layer: BaseRNN | None = None, *, name: str | None = None,
                 dtype: Any = None, input_shape: Any = None,
                 trainable: bool = True):  # fmt: skip
        where = type(self).__name__
        expected = "a SimpleRNN, LSTM or GRU layer"
        if isinstance(layer, dict):  # from get_config
            layer = _deserialize(layer)
        if isinstance(backward_layer, dict):
            backward_layer = _deserialize(backward_layer)
        if not isinstance(layer, BaseRNN):
            raise bad_type("layer", layer, expected, where=where)
        if merge_mode is not None:
            merge_mode = _args.choice(merge_mode, MERGE_MODES, "merge_mode", where)
        if backward_layer is not None:
            if not isinstance(backward_layer, BaseRNN):
                raise bad_type("backward_layer", backward_layer, expected + " or None",
                               where=where)  # fmt: skip
            if backward_layer.go_backwards == layer.go_backwards:
                raise bad_value("backward_layer", backward_layer,
                                f"go_backwards={not layer.go_backwards} (the opposite of the "
                                "layer's)", where=where)  # fmt: skip
            for attribute in ("return_sequences", "return_state"):
                if getattr(backward_layer, attribute) != getattr(layer, attribute):
                    raise bad_value("backward_layer", backward_layer,
                                    f"{attribute}={getattr(layer, attribute)} (the layer's)",
                                    where=where)  # fmt: skip
        check_layer_arguments(where, name=name, dtype=dtype, input_shape=input_shape,
                              trainable=trainable)  # fmt: skip
        dtype = layer.dtype if dtype is None else dtype
        sequences = layer.return_sequences
        base = layer.name.removeprefix("forward_")
        config = {**layer.get_config(), "name": f"forward_{base}", "dtype": dtype,
                  "zero_output_for_mask": sequences}  # fmt: skip
        self.forward_layer = type(layer).from_config(config)
        if backward_layer is None:
            config = {**_reseeded(layer.get_config()), "name": f"backward_{base}",
                      "go_backwards": not layer.go_backwards}  # fmt: skip
            cls = type(layer)
        else:
            config, cls = backward_layer.get_config(), type(backward_layer)
        config.update(dtype=dtype, zero_output_for_mask=sequences)
        self.backward_layer = cls.from_config(config)
        self._merge_mode = merge_mode
        super().__init__(name=name, dtype=dtype, input_shape=input_shape, trainable=trainable)

    merge_mode = property(lambda self: self._merge_mode)
    return_sequences = property(lambda self: self.forward_layer.return_sequences)
    return_state = property(lambda self: self.forward_layer.return_state)

    @property
    def layers(self) -> tuple[BaseRNN, BaseRNN]:
        return self.forward_layer, self.backward_layer

    # -- runtime state: the two copies' counts of training calls (their dropout masks) ------

    def get_runtime_state(self) -> dict[str, Any]:
        return {"forward": self.forward_layer.get_runtime_state(),
                "backward": self.backward_layer.get_runtime_state()}  # fmt: skip

    def set_runtime_state(self, state: dict[str, Any]) -> None:
        self.forward_layer.set_runtime_state(state["forward"])
        self.backward_layer.set_runtime_state(state["backward"])

    # -- shapes -----------------------------------------------------------------------------

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        check_sequence_shape(self, shape)

    def _merged(self, fw: Any, bw: Any) -> Any:
        if self.merge_mode is None:
            return [fw, bw]
        if self.merge_mode == "concat":
            return (*fw[:-1], fw[-1] + bw[-1])
        if fw[-1] != bw[-1]:
            raise ValueError(
                f"{self._where()}: merge_mode={self.merge_mode!r} expects both directions to "
                f"have the same units, got {fw[-1]} and {bw[-1]}."
            )
        return fw

    def compute_output_shape(self, input_shape: Sequence[int | None],
                             **call_kwargs: Any) -> Any:  # fmt: skip
        fw = self.forward_layer.compute_output_shape(input_shape)
        bw = self.backward_layer.compute_output_shape(input_shape)
        if not self.return_state:
            return self._merged(fw, bw)
        merged = self._merged(fw[0], bw[0])
        head = merged if self.merge_mode is None else [merged]
        return [*head, *fw[1:], *bw[1:]]

    def check_call_arguments(self, input_shape: Sequence[int | None], initial_state: Any = None,
                             **call_kwargs: Any) -> None:  # fmt: skip
        """``initial_state``: None or the list of the forward states then the backward ones."""
        if initial_state is None:
            return
        n = len(self.forward_layer.state_names)
        m = len(self.backward_layer.state_names)
        if not isinstance(initial_state, list | tuple) or len(initial_state) != n + m:
            raise ValueError(
                f"{self._where()}: initial_state expected a list of {n + m} states (the forward "
                f"layer's {n}, then the backward layer's {m}), got {initial_state!r}."
            )
        self.forward_layer.check_call_arguments(input_shape, list(initial_state[:n]))
        self.backward_layer.check_call_arguments(input_shape, list(initial_state[n:]))

    # -- weights ----------------------------------------------------------------------------

    def declare_weights(self) -> list[WeightSpec]:
        """The forward layer's weights, then the backward layer's, as ``<copy name>/<weight
        name>``."""
        specs = []
        for inner in self.layers:
            inner.build(self.input_shape)
            specs.extend(replace(s, name=f"{inner.name}/{s.name}") for s in inner.weight_specs)
        return specs

    # -- config -----------------------------------------------------------------------------

    def get_config(self) -> dict[str, Any]:
        from dualnet.layers import serialize

        return {**super().get_config(), "layer": serialize(self.forward_layer),
                "merge_mode": self.merge_mode,
                "backward_layer": serialize(self.backward_layer)}  # fmt: skip

    def __repr__(self) -> str:
        return f"<Bidirectional name={self.name!r}, layer={self.forward_layer!r}>"


def _deserialize(config: dict[str, Any]) -> Any:
    from dualnet.layers import get

    return get(config)
