"""The torch side of Note [Declared weights]: a :class:`Module` registers the neutral layer's
declared weights as parameters (trainable) or buffers (non-trainable), each in torch's own layout
given by a :class:`Layout`; the generic functions of ``layers/__init__.py`` read them back in
canonical layout.

A builder (``conv2d`` in ``layers/convolutional.py`` for ``dn.layers.Conv2D``) is a function
``builder(layer, weights) -> Module`` where ``layer`` is the neutral layer (validated, built) and
``weights`` its canonical numpy arrays in declaration order.

The helpers at the end are the conventions several layer modules share (half precision,
channels-first views, ``F.pad``'s argument order, per-axis weights), named as their TensorFlow
counterparts where TensorFlow has one.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from dualnet.backends.torch import core
from torch import nn

from dualnet._backend import get_backend, use_backend


@dataclass(frozen=True)
class Layout:
    """How a torch tensor stores a canonical (Keras-layout) weight:
    ``native = canonical.transpose(axes).reshape(shape)``.

    ``axes=None`` is no permutation, ``shape=None`` no reshape. Examples: a Dense kernel
    ``(in, out)`` is stored as ``nn.Linear``'s ``(out, in)``: ``Layout((1, 0))``; a Conv2D kernel
    ``(kh, kw, in, out)`` as ``(out, in, kh, kw)``: ``Layout((3, 2, 0, 1))``; a depthwise kernel
    ``(kh, kw, C, m)`` as ``(C·m, 1, kh, kw)``: ``Layout((2, 3, 0, 1), (C * m, 1, kh, kw))``.
    """

    axes: tuple[int, ...] | None = None
    shape: tuple[int, ...] | None = None

    def to_native(self, array: np.ndarray) -> np.ndarray:
        out = np.asarray(array)
        if self.axes is not None:
            out = out.transpose(self.axes)
        if self.shape is not None:
            out = out.reshape(self.shape)
        return np.ascontiguousarray(out)

    def to_canonical(self, t: Any, canonical_shape: Sequence[int]) -> Any:
        """The inverse map, for tensors (gradients, weights) and numpy arrays (optimizer slots)."""
        if self.shape is not None:
            order = self.axes or range(len(canonical_shape))
            t = t.reshape(tuple(canonical_shape[a] for a in order))
        if self.axes is not None:
            inverse = tuple(int(i) for i in np.argsort(self.axes))
            t = t.permute(inverse) if isinstance(t, torch.Tensor) else np.transpose(t, inverse)
        return t


IDENTITY = Layout()


_FORWARD_PARAMETERS: dict[type, frozenset[str]] = {}


def _forward_parameters(cls: type) -> frozenset[str]:
    """The parameter names of ``cls.forward`` (which mask keywords it takes), cached per class
    in a plain dict (torch.compile traces a dict lookup; it would warn on an lru_cache)."""
    names = _FORWARD_PARAMETERS.get(cls)
    if names is None:
        names = _FORWARD_PARAMETERS[cls] = frozenset(inspect.signature(cls.forward).parameters)
    return names


_PLAIN_CALL: dict[type, bool] = {}


def _plain_call(cls: type) -> bool:
    """Whether a call of ``cls`` whose inputs carry no mask needs none of the mask logic of
    :meth:`Module.__call__`: ``compute_mask`` is the default (no mask in, none out) and
    ``forward`` takes no ``training_mask``. Cached per class, as :func:`_forward_parameters`."""
    plain = _PLAIN_CALL.get(cls)
    if plain is None:
        default_mask = cls.compute_mask is Module.compute_mask
        plain = _PLAIN_CALL[cls] = default_mask and "training_mask" not in _forward_parameters(cls)
    return plain


def _mask_of(x: Any) -> Any:
    """The mask attached to a tensor, a list of masks for a list (None if none has one)."""
    if isinstance(x, list | tuple):
        masks = [getattr(t, "_keras_mask", None) for t in x]
        return None if all(m is None for m in masks) else masks
    return getattr(x, "_keras_mask", None)


class Module(nn.Module):
    """Base of dualnet's torch layer modules.

    Each declared weight becomes ``self.<name>`` (a ``nn.Parameter`` if trainable, else a
    buffer) in the layout given by ``layouts`` (class attribute or argument; identity where
    absent). ``self.layer`` is the neutral layer (read-only config; not a submodule).
    Subclasses implement ``forward(x, training=False)``.
    """

    layouts: ClassVar[dict[str, Layout]] = {}

    def __init__(self, layer: Any, weights: Sequence[np.ndarray] = (),
                 layouts: dict[str, Layout] | None = None):  # fmt: skip
        super().__init__()
        self.__dict__["layer"] = layer  # plain attribute: the neutral layer owns this module
        layouts = {**self.layouts, **(layouts or {})}
        slots = []
        for spec, array in zip(layer.weight_specs, weights, strict=True):
            layout = layouts.get(spec.name, IDENTITY)
            tensor = core.convert_to_tensor(layout.to_native(array))
            if spec.trainable:
                self.register_parameter(spec.name, nn.Parameter(tensor))
            else:
                self.register_buffer(spec.name, tensor)
            slots.append((spec, layout))
        self.__dict__["dualnet_slots"] = slots

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """``nn.Module``'s call with Keras's mask handling (Note [Masks] in
        :mod:`dualnet.layers.base`), which torch has no counterpart for: the mask attached to the
        first input is passed as ``mask=`` (and that of a tensor keyword ``k`` as ``k_mask=``)
        when ``forward`` takes it; the output mask from :meth:`compute_mask` is attached to the
        output when the layer supports masking; a mask reaching a layer that does not is
        dropped with Keras's warning."""
        x = args[0] if args else None
        previous = _mask_of(x)
        if (previous is None and _plain_call(type(self))
                and (not kwargs or (len(kwargs) == 1 and "training" in kwargs))):  # fmt: skip
            # The common call (no mask in; only ``training``): no mask to pass, none to attach,
            # no warning to give, so nn.Module's call as it is (the branches below would all
            # fall through to returning ``out``).
            return super().__call__(*args, **kwargs)
        params = _forward_parameters(type(self))
        if previous is not None and "mask" in params and kwargs.get("mask") is None:
            kwargs["mask"] = previous
        for name, value in list(kwargs.items()):
            key = f"{name}_mask"
            if key in params and kwargs.get(key) is None:
                kwargs[key] = _mask_of(value)
        out = super().__call__(*args, **kwargs)
        if not self.layer.supports_masking:
            if previous is not None:
                warnings.warn(
                    f"Layer '{self.layer.name}' (of type {type(self.layer).__name__}) was passed "
                    "an input with a mask attached to it. However, this layer does not support "
                    "masking and will therefore destroy the mask information. Downstream layers "
                    "will not see the mask.", stacklevel=2,
                )  # fmt: skip
            return out
        outs = out if isinstance(out, list | tuple) else [out]
        if all(_mask_of(o) is not None for o in outs):
            return out  # the call set them itself (Keras: "mask already computed")
        masks = self.compute_mask(x, previous)
        if masks is None:
            return out
        masks = masks if isinstance(masks, list | tuple) else [masks] * len(outs)
        for o, m in zip(outs, masks, strict=False):
            if m is not None and _mask_of(o) is None:
                o._keras_mask = m
        return out

    def compute_mask(self, x: Any, mask: Any) -> Any:
        """The output mask for inputs ``x`` carrying ``mask`` (Keras's ``compute_mask``): by
        default the input's (for a layer that supports masking). Layers that make or consume a
        mask override it."""
        return mask

    def effective_training(self, training: bool) -> bool:
        """``training``, except that a frozen layer whose class says so runs inference
        (Keras: a BatchNormalization with ``trainable=False``)."""
        layer = self.layer
        return bool(training) and (layer.trainable or not layer.frozen_means_inference)

    def extra_repr(self) -> str:
        return f"name={self.layer.name!r}"


@torch.compiler.disable
def host_draw(draw: Callable[..., Any], *args: Any) -> Any:
    """``draw(*args)``: a neutral layer's host draw of portable noise (Note [Portable noise] in
    :mod:`dualnet.layers.regularization`), opaque to torch.compile. Traced, dynamo would guard
    on the layer's count of training calls and recompile at every training step; here it is a
    graph break and the draw runs as in eager mode."""
    return draw(*args)


def activate(fn: Callable[..., Any], x: torch.Tensor) -> torch.Tensor:
    """Run a dualnet activation on torch (pinned: the module may be called while TensorFlow is
    the active backend, e.g. ``model.native(x)``)."""
    if get_backend() == "torch":
        return fn(x)
    with use_backend("torch"):
        return fn(x)


# -- Helpers shared by the layer modules ---------------------------------------------------------

HALF = (torch.float16, torch.bfloat16)


def upcast(x: torch.Tensor) -> torch.Tensor:
    """float32 for a half-precision tensor, else ``x`` itself: the dtype a layer computes in.

    dualnet's rule for float16/bfloat16 on both backends (torch's CPU ``opmath``): compute in
    float32 and round to half precision once, at the end; code that calls this rounds itself
    (``y.to(x.dtype)``)."""
    return x.float() if x.dtype in HALF else x


def float32_math(fn: Callable[..., torch.Tensor], x: torch.Tensor, *args: Any,
                 **kwargs: Any) -> torch.Tensor:  # fmt: skip
    """``fn(x, *args, **kwargs)``, computed in float32 for a half-precision ``x`` (the tensors
    among ``args`` too) and rounded once to ``x``'s dtype; run as it is for other dtypes."""
    if x.dtype not in HALF:
        return fn(x, *args, **kwargs)
    up = [a.float() if isinstance(a, torch.Tensor) else a for a in args]
    return fn(x.float(), *up, **kwargs).to(x.dtype)


def to_channels_first(x: torch.Tensor, data_format: str) -> torch.Tensor:
    """``x`` with its channels at dim 1, the layout of torch's convolution, pooling and
    interpolation kernels. A channels_last ``(N, *spatial, C)`` input is moved with ``movedim``:
    a view whose strides are torch's channels-last memory format, which the CPU and cuDNN
    kernels read natively, so nothing is copied for the layout."""
    return x if data_format == "channels_first" else x.movedim(-1, 1)


def from_channels_first(y: torch.Tensor, data_format: str) -> torch.Tensor:
    """The inverse of :func:`to_channels_first` (a view too)."""
    return y if data_format == "channels_first" else y.movedim(1, -1)


def pad_arg(pads: Sequence[tuple[int, int]]) -> list[int]:
    """``F.pad``'s ``pad`` list for ``(before, after)`` amounts given first axis first: torch
    takes them from the *last* axis backwards and pads that many trailing axes."""
    return [p for pair in reversed(pads) for p in pair]


def broadcast_over(w: torch.Tensor | None, ndim: int, axes: Sequence[int]) -> torch.Tensor | None:
    """A weight shaped by the sizes of ``axes`` (increasing) reshaped to broadcast against an
    input of rank ``ndim`` (None stays None: an absent γ or β)."""
    if w is None:
        return None
    shape = [1] * ndim
    for size, a in zip(w.shape, axes, strict=True):
        shape[a] = size
    return w.reshape(shape)
