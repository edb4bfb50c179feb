"""Models on PyTorch: real ``nn.Module``s built from the layers' modules.

* Sequential -> ``torch.nn.Sequential`` (submodules named like the dualnet layers);
* functional -> :class:`Functional`, an ``nn.Module`` that runs the layer calls in order;
* subclassed -> :class:`Subclassed`, an ``nn.Module`` whose ``forward`` runs ``model.call``.

Every layer module is shared with the dualnet layer (``layer.native``), so there is one copy of
each weight. :func:`trainable_params` and :func:`canonical_grads` give the parameters in
dualnet's canonical order and their gradients in canonical layout (kernels transposed to
``(in, out)``), for gradient checks with ``core.vjp(..., params=...)``.
"""

from __future__ import annotations

import contextlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from dualnet.backends.torch import core
from dualnet.backends.torch import layers as _layers
from torch import nn

from dualnet._backend import use_backend
from dualnet.layers._symbolic import resolve


def _modules(layers: Sequence[Any]) -> OrderedDict[str, nn.Module]:
    return OrderedDict((layer.name, layer.native) for layer in layers if layer.native is not None)


_NATIVE_DTYPES: dict[str, torch.dtype] = {}


def _native_dtype(name: str) -> torch.dtype:
    """``core.native_dtype`` of a layer's dtype name, cached (every layer call asks)."""
    dtype = _NATIVE_DTYPES.get(name)
    if dtype is None:
        dtype = _NATIVE_DTYPES[name] = core.native_dtype(name)
    return dtype


def _cast(x: Any, module: nn.Module) -> Any:
    """Floating inputs cast to the layer's dtype, as a dualnet (or Keras) layer call does: a
    float64 layer after a float32 one computes in float64 on both backends. The mask attached
    to a tensor stays attached (Note [Masks] in :mod:`dualnet.layers.base`)."""
    if isinstance(x, list):
        return [_cast(t, module) for t in x]
    if not isinstance(x, torch.Tensor) or module.layer.integer_input:
        return x
    target = _native_dtype(module.layer.dtype)
    if not x.is_floating_point() or x.dtype == target:
        return x
    y = x.to(target)
    mask = core.get_mask(x)
    if mask is not None:
        y._keras_mask = mask
    return y


class Sequential(nn.Sequential):
    """``torch.nn.Sequential`` whose ``forward`` passes ``training`` to every layer module."""

    def forward(self, x: torch.Tensor, training: bool = False) -> torch.Tensor:
        for module in self:
            x = module(_cast(x, module), training=training)
        return x


def sequential(model: Any, input_shape: tuple) -> Sequential:
    return Sequential(_modules(model.layers))


class Functional(nn.Module):
    """Runs a functional model's layer calls; ``forward(*inputs)``."""

    def __init__(self, layers: Sequence[Any], plan: list, input_ids: list, output_ids: list,
                 single_output: bool):  # fmt: skip
        super().__init__()
        self.layers = nn.ModuleDict(_modules(layers))
        # (layer name, input ids, output ids, takes a list, other call arguments with Ref
        # slots) per call, in execution order.
        self._plan = [(layer.name, ins, outs, layer.multi_input, kwargs)
                      for layer, ins, outs, kwargs in plan]  # fmt: skip
        self._input_ids, self._output_ids = list(input_ids), list(output_ids)
        self._single_output = single_output

    def forward(self, *inputs: torch.Tensor, training: bool = False) -> Any:
        values = dict(zip(self._input_ids, inputs, strict=True))
        for name, ins, outs, multi, kwargs in self._plan:
            module = self.layers[name]
            args = [values[i] for i in ins] if multi else values[ins[0]]
            extra = {k: _cast(resolve(v, values), module) for k, v in kwargs.items()}
            out = module(_cast(args, module), training=training, **extra)
            for i, t in zip(outs, out if len(outs) > 1 else [out], strict=True):
                values[i] = t
        results = [values[i] for i in self._output_ids]
        return results[0] if self._single_output else results


def functional(model: Any, plan: list, input_ids: list, output_ids: list) -> Functional:
    return Functional(model.layers, plan, input_ids, output_ids, model._single[1])


class Subclassed(nn.Module):
    """The native face of a subclassed dualnet model: ``forward`` runs ``model.call``."""

    def __init__(self, model: Any):
        super().__init__()
        self.layers = nn.ModuleDict(_modules(model.layers))
        # A plain attribute (not a submodule): the dualnet model owns this module.
        self.__dict__["dualnet_model"] = model

    def forward(self, inputs: Any, training: bool = False) -> Any:
        with use_backend("torch"):
            return self.dualnet_model._call_with_training(inputs, training)


def subclassed(model: Any) -> Subclassed:
    return Subclassed(model)


def call(native: nn.Module, inputs: list[torch.Tensor], single_input: bool,
         training: bool = False) -> Any:  # fmt: skip
    return native(*inputs, training=training)


@contextlib.contextmanager
def inference() -> Iterator[None]:
    """No autograd graph (for predict)."""
    with torch.no_grad():
        yield


def trainable_params(model: Any) -> list[nn.Parameter]:
    """The native parameters the optimizer updates, in the order of
    ``model.trainable_weights`` (moving statistics and frozen layers excluded)."""
    return [p for layer in model._weight_layers() for p in _layers.params(layer.native)]


def canonical_grads(model: Any, grads: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Gradients of :func:`trainable_params` in canonical layout (kernels ``(in, out)``)."""
    out, start = [], 0
    for layer in model._weight_layers():
        n = len(_layers.params(layer.native))
        out.extend(_layers.canonical_grads(layer.native, grads[start : start + n]))
        start += n
    return out


def value_and_grads(
    compute: Callable[[], tuple[torch.Tensor, Any]], params: Sequence[torch.Tensor]
) -> tuple[torch.Tensor, Any, list[torch.Tensor]]:
    """``loss, outputs = compute()`` and ``∂loss/∂params`` (native layout; unused: zeros).

    The training loop's only autograd call: one forward pass, one ``torch.autograd.grad``
    (no ``.grad`` fields are written, so nothing accumulates between steps).
    """
    with torch.enable_grad():
        loss, outputs = compute()
        grads = torch.autograd.grad(loss, list(params), allow_unused=True)
    if any(g is None for g in grads):
        grads = [torch.zeros_like(p) if g is None else g
                 for p, g in zip(params, grads, strict=True)]  # fmt: skip
    return loss.detach(), outputs, list(grads)


def all_finite(tensors: Sequence[torch.Tensor]) -> bool:
    """Whether every element of every tensor is finite: the per-step check, in few kernels.

    One sum per large tensor: a NaN or an infinity (``inf + -inf`` is NaN) makes its sum
    non-finite, so finite sums prove the tensors finite; a sum of finite values can still
    overflow, which only costs the detailed scan of :func:`finite_flags`, which the caller
    runs whenever this says False. (Sums are the cheapest full reduction on CPU:
    ``isfinite().all()`` per tensor costs ~20x more on the MLP's 0.7 M weights, and
    ``_foreach_norm(inf)`` more still.) The small tensors, where a call costs more than the
    arithmetic, go in one call of the check torch's ``GradScaler`` runs,
    ``_amp_foreach_non_finite_check_and_unscale_``, with a scale of exactly 1: it sets a flag
    for any non-finite element and multiplies each tensor in place by the inverse scale, 1,
    which leaves every value as it was bit for bit (−0, subnormals and NaN included: tested).
    That is ~4 µs for a small network's twelve tensors where flattening and concatenating
    them took ~8. All values are read back in one transfer.
    """
    sums, small = [], []
    with torch.no_grad():
        for t in tensors:
            (sums.append(t.sum()) if t.numel() > _SMALL else small.append(t))
        found = None
        if small:
            device = small[0].device
            # Dense, non-overlapping tensors only (the check writes x·1 into each; a stride-0
            # gradient autograd may return would refuse it), on a device whose kernel exists.
            dense = [t for t in small if t.device == device and _checkable(t)]
            if dense and _amp_works(device):
                found, one = _amp_buffers(device)
                found.zero_()
                _AMP_CHECK(dense, found, one)  # x·1 = x: nothing changes
                if len(dense) == len(small) and not sums:
                    return found.item() == 0
                at = len(sums)  # where the flag goes among the values read back
                sums.append(found.reshape(()))
                if len(dense) < len(small):
                    ids = {id(t) for t in dense}
                    small = [t for t in small if id(t) not in ids]
                else:
                    small = []
            if small:  # one sum of them all, flattened (cat promotes mixed dtypes exactly)
                sums.append(torch.cat([t.reshape(-1) for t in small]).sum())
        if not sums:
            return True
        values = (torch.stack(sums) if len(sums) > 1 else sums[0].reshape(1)).tolist()
        if found is not None and values.pop(at) != 0:
            return False
        return all(map(math.isfinite, values))


# torch's GradScaler check (private, present since torch 1.7 and on CPU since 2.3); without
# it all_finite sums the small tensors too.
_AMP_CHECK = getattr(torch, "_amp_foreach_non_finite_check_and_unscale_", None)
_AMP_WORKS: dict[str, bool] = {}


def _checkable(t: torch.Tensor) -> bool:
    """A tensor GradScaler's check may take: floating, dense and non-overlapping."""
    return t.is_floating_point() and t.is_contiguous()


def _amp_works(device: torch.device) -> bool:
    """Whether GradScaler's check runs on ``device``'s type (tried once on two finite values:
    an older torch has no CPU kernel)."""
    works = _AMP_WORKS.get(device.type)
    if works is None:
        works = False
        if _AMP_CHECK is not None:
            try:
                found, one = _amp_buffers(device)
                found.zero_()
                _AMP_CHECK([torch.ones(2, device=device)], found, one)
                works = found.item() == 0
            except (RuntimeError, NotImplementedError):
                pass
        _AMP_WORKS[device.type] = works
    return works


_AMP_BUFFERS: dict[tuple[torch.device, int], tuple[torch.Tensor, torch.Tensor]] = {}


def _amp_buffers(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """The check's flag and its inverse scale, a float32 1, on ``device``: kept per thread (the
    flag is zeroed and read within one call of :func:`all_finite`; two threads checking at
    once must not share it)."""
    key = (device, threading.get_ident())
    buffers = _AMP_BUFFERS.get(key)
    if buffers is None:
        buffers = _AMP_BUFFERS[key] = (torch.zeros(1, device=device),
                                       torch.ones(1, device=device))  # fmt: skip
    return buffers


_SMALL = 4096  # elements: tensors up to this size are checked together (all_finite)


def finite_flags(tensors: Sequence[torch.Tensor]) -> np.ndarray:
    """Per tensor, whether every element is finite; one device-to-host transfer for all."""
    with torch.no_grad():
        flags = torch.stack([torch.isfinite(t).all() for t in tensors])
    return flags.cpu().numpy()


# ------------------------------------------------------------------ compiled training steps


def state_variables(model: Any) -> list[torch.Tensor]:
    """The buffers a training forward pass may write (moving statistics), which a compiled step
    puts back on the steps it skips (Note [Compiled training] in :mod:`dualnet.training_steps`)."""
    return list(model.native.buffers())


class CompiledStep:
    """One training step, compiled whole by ``torch.compile`` with ``jit=True`` (graph breaks
    where the model draws host noise): forward, loss, gradients, the finiteness check and the
    optimizer update, with the update masked out on the device (``torch.where``, no host sync)
    when a value is non-finite or an earlier step failed (Note [Compiled training]).

    ``step(inputs, y, vector)``: ``inputs`` the model's input tensors, ``vector`` the
    optimizer's float64 coefficients followed by the step number. Returns ``(loss, outputs,
    mask)`` (outputs and mask None unless ``outputs=True``). :meth:`failure` reads the record of
    the first failing step since :meth:`reset` (one host transfer when nothing failed).
    (The failing step's loss is not kept on the device: the step returned it, and inductor
    miscompiles ``copy_`` of a float32 ``where`` into a float64 0-d buffer — it wrote 0.)
    """

    def __init__(self, forward: Callable[[Any, Any], tuple[Any, Any]], params: Sequence[Any],
                 state: Sequence[torch.Tensor], update: Callable[[list[Any], Any], Any], *,
                 jit: bool, outputs: bool):  # fmt: skip
        self._forward, self._update = forward, update
        self._params, self._state = list(params), list(state)
        self._outputs = outputs
        self._device = self._params[0].device
        checked = 1 + 2 * len(self._params)  # the loss, every gradient, every weight
        self.failed_at = torch.zeros((), dtype=torch.int64, device=self._device)
        self.flags = torch.ones(checked, dtype=torch.bool, device=self._device)
        # dynamic=False: one specialisation per batch shape (the full batches and the last).
        self._fn = torch.compile(self._step, dynamic=False) if jit else self._step

    def __call__(self, inputs: Any, y: Any, vector: np.ndarray) -> tuple[Any, Any, Any]:
        v = torch.from_numpy(vector).to(self._device, non_blocking=True)
        return self._fn(inputs, y, v)

    def _step(self, inputs: Any, y: Any, vector: torch.Tensor) -> tuple[Any, Any, Any]:
        step = vector[-1].to(torch.int64)  # exact: step numbers stay far below 2**53
        skip = self.failed_at != 0  # an earlier step since the last read failed
        saved = [b.clone() for b in self._state]
        with torch.enable_grad():
            loss, outputs = self._forward(inputs, y)
            grads = torch.autograd.grad(loss, self._params, allow_unused=True)
        with torch.no_grad():
            grads = [torch.zeros_like(p) if g is None else g
                     for p, g in zip(self._params, grads, strict=True)]  # fmt: skip
            for b, s in zip(self._state, saved, strict=True):  # the forward's writes undone
                b.copy_(torch.where(skip, s, b))
            checked = [loss.detach(), *grads, *(p.detach() for p in self._params)]
            flags = torch.stack([torch.isfinite(t).all() for t in checked])
            ok = flags.all()
            first = ~ok & ~skip
            self.flags.copy_(torch.where(first, flags, self.flags))
            self.failed_at.copy_(torch.where(first, step, self.failed_at))
            go = ok & ~skip
            variables, values = self._update(grads, vector)
            # The new value rounded to the variable's dtype first (as copy_ would): a where()
            # across dtypes then copied is one inductor writes wrongly.
            kept = [torch.where(go, new.to(v.dtype), v)
                    for v, new in zip(variables, values, strict=True)]  # fmt: skip
            torch._foreach_copy_(variables, kept)
        if not self._outputs:
            return loss.detach(), None, None
        return loss.detach(), outputs, core.get_mask(outputs)

    def failure(self) -> tuple[int, np.ndarray]:
        """``(step, flags)`` of the first failing step since :meth:`reset` (step 0: none; its
        loss is the one that step returned); flags per checked tensor (the loss, the
        gradients, the weights), as :func:`finite_flags`."""
        step = int(self.failed_at.item())
        return step, (self.flags.cpu().numpy() if step else np.ones(0, bool))

    def reset(self) -> None:
        self.failed_at.zero_()


def host_values(tensors: Sequence[torch.Tensor]) -> np.ndarray:
    """0-d tensors as one float64 array: one device-to-host transfer for a block of steps."""
    return torch.stack([t.detach().double() for t in tensors]).cpu().numpy()
