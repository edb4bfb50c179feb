"""``from_torch``: functional calls and tensor methods (``F.relu``, ``x + y``, ``torch.cat``,
``x.view``, ``x.permute``, ``x.mean``, ``x[:, -1]``, ...) onto dualnet layers.

Every converter takes the :class:`~dualnet.interop.torch_import.Converter` and the call's
arguments (graph nodes replaced by their converted values: a
:class:`~dualnet.interop.torch_import.Tensor`, a recorded constant, or a tuple) and returns the
converted result, or raises :class:`~dualnet.interop.torch_import.Unsupported`.

What maps to what (torch dims count the batch, dualnet axes too; ``p`` is the lazy
permutation of Note [Importing a torch module]):

============================================  ===============================================
torch                                         dualnet
============================================  ===============================================
``relu``, ``relu6``, ``leaky_relu``, ``elu``,  ``ReLU``, ``ReLU(max_value=6)``, ``LeakyReLU``,
``gelu``, ``silu``, ``sigmoid``, ``tanh``,     ``ELU``, ``Activation(name)``; the layout is
``hardswish``, ``hardsigmoid``, ``mish``,      kept (element-wise)
``selu``, ``softsign``, ``softplus``
``softmax(dim)``, ``log_softmax(dim)``        ``Softmax(axis=p[dim])``; ``log_softmax`` on the
                                              last axis only
``a + b``, ``a - b``, ``a * b`` (tensors of   ``Add``, ``Subtract``, ``Multiply`` (no
the same shape)                               broadcasting in dualnet: shapes must match)
``x * c``, ``c * x`` (``c`` a Python number)  ``Rescaling(c, offset=-0.0)`` (Note [Scalar
``x + c``, ``c + x``, ``x - c``, ``c - x``    operands]): ``Rescaling(1, c)``,
                                              ``Rescaling(1, -c)``, ``Rescaling(-1, c)``
``x / c`` (``c`` a power of two)              ``Rescaling(1/c, -0.0)``; another ``c`` refused
``-x``, ``neg``                               ``Rescaling(-1, -0.0)``
``torch.cat(xs, dim)``                        ``Concatenate(axis=p[dim])`` (dim 0 refused)
``view``/``reshape``/``squeeze``/             ``Reshape(recorded shape[1:])`` (the batch must
``unsqueeze``/``flatten(start, end)``         stay dim 0); ``flatten(1)`` → ``Flatten()``
                                              (memory order, torch's)
``permute``, ``transpose``                    nothing: the lazy permutation changes
``mean(dims)`` over the spatial/time axes     ``GlobalAveragePooling1D/2D`` (keepdims)
``x[..., a:b]``, ``x[:, i]`` (step 1)         ``Cropping1D`` (+ ``Permute``/``Reshape``)
``size()``, ``dim()``, ``shape``, arithmetic  the recorded Python values
on them
``F.dropout(x, p)``                           ``Dropout(p)`` (dualnet's training flag)
============================================  ===============================================
"""

from __future__ import annotations

import builtins
import math
import operator
from typing import Any

from dualnet.errors import describe
from dualnet.interop.torch_import import Converter, Special, Tensor, Unsupported

__all__ = ["FUNCTIONS", "METHODS", "activation", "function_name"]


def _layers() -> Any:
    from dualnet import layers

    return layers


def tensor(value: Any, what: str = "the input") -> Tensor:
    """``value`` as a converted tensor, or :class:`Unsupported` for a constant operand."""
    if isinstance(value, Special):
        raise Unsupported(f"{what} is {value.message}")
    if not isinstance(value, Tensor):
        raise Unsupported(f"{what} is a constant ({describe(value)}), not a tensor computed from "
                          "the model's inputs; dualnet has no layer holding constants")  # fmt: skip
    return value


def _dim(dim: Any, rank: int) -> int:
    if isinstance(dim, bool) or not isinstance(dim, int) or not -rank <= dim < rank:
        raise Unsupported(f"dim={describe(dim)} is not an axis of a rank-{rank} tensor")
    return dim % rank


def _identity(rank: int) -> tuple[int, ...]:
    return tuple(range(rank))


# -- element-wise ----------------------------------------------------------------------------


def activation(cv: Converter, x: Any, kind: str, **params: Any) -> Tensor:
    """An element-wise activation layer on ``x`` (the layout is kept)."""
    x = tensor(x)
    layers = _layers()
    if kind == "relu":
        layer = cv.layer(layers.ReLU)
    elif kind == "relu_max":
        layer = cv.layer(layers.ReLU, max_value=float(params["max_value"]))
    elif kind == "leaky_relu":
        layer = cv.layer(layers.LeakyReLU, negative_slope=float(params["negative_slope"]))
    elif kind == "elu":
        layer = cv.layer(layers.ELU, alpha=float(params["alpha"]))
    elif kind == "gelu":
        approximate = params.get("approximate", "none")
        if approximate not in ("none", "tanh"):
            raise Unsupported(f"approximate={approximate!r}; supported: 'none', 'tanh'")
        # torch's "none" is the exact erf form, dualnet's gelu default; "tanh" is the same
        # formula as dualnet's approximate=True.
        layer = cv.layer(layers.Activation, "gelu" if approximate == "none" else "gelu_tanh")
    elif kind == "softplus":
        beta, threshold = params.get("beta", 1.0), params.get("threshold", 20.0)
        if beta != 1 or threshold < 20:
            # Below 20 torch's "x above the threshold" is visibly not log(1 + e^x) (3.9e-2 at
            # threshold 1); from 20 on the two differ by < e^-20/20 ≈ 1e-10 relative.
            raise Unsupported(f"beta={beta}, threshold={threshold}; supported: beta=1 with "
                              "threshold >= 20 (torch returns x above the threshold)")  # fmt: skip
        # torch returns x itself above `threshold` (relative error < e^-20/20 ≈ 1e-10);
        # dualnet computes the exact log(1 + e^x): recorded as a deviation.
        cv.note(f"softplus: exact above threshold={threshold} (torch returns x there)")
        layer = cv.layer(layers.Activation, "softplus")
    else:
        layer = cv.layer(layers.Activation, kind)
    return Tensor(cv.call(layer, x.sym), x.perm)


def softmax(cv: Converter, x: Any, dim: Any = None, *, log: bool = False,
            _stacklevel: int = 3, dtype: Any = None) -> Tensor:  # fmt: skip
    """``softmax(x, dim)``: ``Softmax(axis)`` on the axis holding torch dim ``dim``."""
    x = tensor(x)
    if dim is None:
        raise Unsupported("dim=None (torch's implicit, deprecated choice); pass dim explicitly")
    if dtype is not None:
        raise Unsupported(f"dtype={dtype}; supported: None")
    axis = x.perm[_dim(dim, x.rank)]
    if axis == 0:
        raise Unsupported("a softmax over the batch axis")
    if log:
        if axis != x.rank - 1:
            raise Unsupported("log_softmax over another axis than the last one")
        return Tensor(cv.call(cv.layer(_layers().Activation, "log_softmax"), x.sym), x.perm)
    return Tensor(cv.call(cv.layer(_layers().Softmax, axis=axis), x.sym), x.perm)


def _act(kind: str, **fixed: Any):
    def convert(cv: Converter, x: Any, *args: Any, inplace: bool = False, **kwargs: Any):
        del inplace  # in-place or not, the value is the same
        names = {"relu_max": ("max_value",), "leaky_relu": ("negative_slope",),
                 "elu": ("alpha",), "gelu": ("approximate",),
                 "softplus": ("beta", "threshold")}.get(kind, ())  # fmt: skip
        params = {**fixed, **dict(zip(names, args, strict=False)), **kwargs}
        return activation(cv, x, kind, **params)

    return convert


def dropout(cv: Converter, x: Any, p: float = 0.5, training: bool = True,
            inplace: bool = False) -> Tensor:  # fmt: skip
    """``F.dropout(x, p)``: ``Dropout(p)``, applied when the dualnet call is in training mode
    (torch applies it when its ``training`` argument says so, usually ``self.training``)."""
    del training, inplace
    x = tensor(x)
    if p == 0:
        return x
    cv.note("dropout: dualnet's portable mask (torch's RNG draws other masks)")
    return Tensor(cv.call(cv.layer(_layers().Dropout, float(p)), x.sym), x.perm)


# -- scalar operands --------------------------------------------------------------------------
#
# Note [Scalar operands]
# ----------------------
# torch's CPU kernels take a Python number as a scalar converted to the computation's type
# (float for a float32 tensor, double for float64), as Keras's Rescaling casts its operands;
# Rescaling computes ``x·s`` then ``+ o``, each rounded once, so every form below is torch's
# result bit for bit:
#
# * ``x * c`` -> ``x·c + (-0.0)``: adding -0.0 changes no value, -0.0 included (IEEE 754), where
#   Rescaling's default ``+ 0.0`` would turn torch's ``-0.0`` products into ``+0.0``;
# * ``x + c`` -> ``x·1 + c`` (``x·1`` is exact); ``x - c`` -> ``x·1 + (-c)`` (torch computes
#   ``x + (-1)·c``; negation is exact); ``c - x`` -> ``x·(-1) + c``; ``-x`` -> ``x·(-1) + (-0.0)``;
# * ``x / c`` -> ``x·(1/c) + (-0.0)`` only when ``c`` is a power of two whose reciprocal is a
#   normal number of the model's dtype: ``x/c`` and ``x·(1/c)`` are then the same real number,
#   rounded once. torch divides (``x / 3`` and ``x * (1/3)`` differ in about a third of float32
#   elements), so another ``c`` is refused.


def _number(value: Any) -> float | None:
    """A Python (or numpy) real number operand as a float; None for anything else."""
    import numpy as np

    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer |
                                                             np.floating):  # fmt: skip
        return None
    return float(value)


def rescale(cv: Converter, x: Any, scale: float, offset: float) -> Tensor:
    """``Rescaling(scale, offset)`` on a floating tensor ``x`` (the layout is kept)."""
    x = tensor(x)
    if not x.sym.dtype.startswith(("float", "bfloat")):
        raise Unsupported(f"arithmetic with a number on a {x.sym.dtype} tensor (torch keeps "
                          "integers; dualnet's Rescaling computes in floats)")  # fmt: skip
    return Tensor(cv.call(cv.layer(_layers().Rescaling, scale, offset), x.sym), x.perm)


def _with_number(cv: Converter, kind: str, a: Any, b: Any) -> Tensor:
    """``a ∘ b`` with one Python-number operand (Note [Scalar operands])."""
    ca, cb = _number(a), _number(b)
    if ca is not None and cb is not None:
        raise Unsupported("arithmetic on two numbers")  # never reached: fx folds it
    c = cb if cb is not None else ca
    x = a if cb is not None else b
    if kind == "Multiply":
        return rescale(cv, x, c, -0.0)
    if kind == "Add":
        return rescale(cv, x, 1.0, c)
    return rescale(cv, x, 1.0, -c) if cb is not None else rescale(cv, x, -1.0, c)


def divide(cv: Converter, a: Any, b: Any, *, rounding_mode: Any = None, out: Any = None) -> Tensor:
    """``x / c`` for a power of two ``c``: ``Rescaling(1/c, -0.0)`` (Note [Scalar operands])."""
    import numpy as np

    if rounding_mode is not None or out is not None:
        raise Unsupported(f"rounding_mode={describe(rounding_mode)} / out=; supported: true "
                          "division by a number")  # fmt: skip
    c = _number(b)
    if c is None:
        what = "a number divided by a tensor" if _number(a) is not None else "tensor / tensor"
        raise Unsupported(f"{what}; supported: x / c with c a power of two (dualnet has no "
                          "division layer)")  # fmt: skip
    real = np.float64 if cv.dtype == "float64" else np.float32
    info = np.finfo(real)
    exact = (c != 0 and abs(math.frexp(c)[0]) == 0.5 and float(real(c)) == c
             and info.tiny <= abs(1.0 / c) <= info.max)  # fmt: skip
    if not exact:
        raise Unsupported(f"x / {c!r}: 1/{c!r} is not exact in {cv.dtype}, and torch divides "
                          "(x·(1/c) rounds differently); supported: c a power of two (x / 2, "
                          "x / 0.25, ...), or write x * (1/c) in the torch model")  # fmt: skip
    return rescale(cv, a, 1.0 / c, -0.0)


def negative(cv: Converter, x: Any, *, out: Any = None) -> Tensor:
    """``-x``: ``Rescaling(-1, -0.0)``, exactly ``-x`` (zeros flip sign as torch's do)."""
    if out is not None:
        raise Unsupported("out=; supported: no out")
    return rescale(cv, x, -1.0, -0.0)


def rsub(cv: Converter, x: Any, other: Any, *, alpha: Any = 1) -> Tensor:
    """``torch.rsub(x, c)`` = ``c - x``."""
    if alpha != 1 or _number(other) is None:
        raise Unsupported(f"rsub(x, {describe(other)}, alpha={describe(alpha)}); supported: a "
                          "number and alpha=1")  # fmt: skip
    return _with_number(cv, "Subtract", other, x)


# -- merging ---------------------------------------------------------------------------------


def _binary(kind: str):
    def convert(cv: Converter, a: Any, b: Any, *, alpha: Any = 1, out: Any = None) -> Tensor:
        if out is not None or alpha != 1:
            raise Unsupported(f"alpha={describe(alpha)} / out=; supported: alpha=1, no out")
        if _number(a) is not None or _number(b) is not None:
            return _with_number(cv, kind, a, b)
        a, b = tensor(a, "the first operand"), tensor(b, "the second operand")
        if a.torch_shape != b.torch_shape:
            raise Unsupported(f"operands of shapes {a.torch_shape} and {b.torch_shape}: dualnet's "
                              "merging layers take equal shapes (no broadcasting)")  # fmt: skip
        layer = cv.layer(getattr(_layers(), kind))
        if a.perm == b.perm:
            return Tensor(cv.call(layer, [a.sym, b.sym]), a.perm)
        return Tensor(cv.call(layer, [cv.dense(a), cv.dense(b)]), _identity(a.rank))

    return convert


def cat(cv: Converter, tensors: Any, dim: int = 0, *, out: Any = None) -> Tensor:
    """``torch.cat(tensors, dim)``: ``Concatenate(axis)`` (torch's dim counts the batch)."""
    if out is not None or not isinstance(tensors, tuple | list) or not tensors:
        raise Unsupported("expected a list of tensors and no out=")
    xs = [tensor(t, f"tensor {i}") for i, t in enumerate(tensors)]
    rank = xs[0].rank
    d = _dim(dim, rank)
    if len(xs) == 1:
        return xs[0]
    if len({x.perm for x in xs}) == 1:
        syms, axis, perm = [x.sym for x in xs], xs[0].perm[d], xs[0].perm
    else:
        syms, axis, perm = [cv.dense(x) for x in xs], d, _identity(rank)
    if axis == 0:
        raise Unsupported("a concatenation along the batch axis")
    return Tensor(cv.call(cv.layer(_layers().Concatenate, axis=axis), syms), perm)


# -- shapes ----------------------------------------------------------------------------------


def reshape_to_recorded(cv: Converter, x: Any) -> Tensor:
    """``Reshape`` to the node's recorded shape (row-major, as torch), the batch kept at dim 0."""
    x = tensor(x)
    shape = cv.example_shape(cv.node)
    sym = cv.dense(x)
    if not shape or shape[0] != cv.batch:
        raise Unsupported(f"a reshape to {shape} moves or merges the batch axis (batch size "
                          f"{cv.batch}); dualnet keeps the batch at dim 0")  # fmt: skip
    if tuple(sym.shape[1:]) == shape[1:]:
        return Tensor(sym, _identity(len(shape)))
    layer = cv.layer(_layers().Reshape, shape[1:])
    return Tensor(cv.call(layer, sym), _identity(len(shape)))


def reshape(cv: Converter, x: Any, *shape: Any, **kwargs: Any) -> Tensor:
    """``view``/``reshape``/``squeeze``/``unsqueeze``: a ``Reshape`` to the recorded shape."""
    del shape, kwargs  # the recorded output shape says it all (-1 and x.size(0) resolved)
    return reshape_to_recorded(cv, x)


def flatten(cv: Converter, x: Any, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """``torch.flatten(x, start, end)``: ``Flatten()`` for ``(1, -1)`` (memory order on the
    NCHW tensor, torch's order), else a ``Reshape``."""
    x = tensor(x)
    start, end = _dim(start_dim, x.rank), _dim(end_dim, x.rank)
    if start == 0:
        raise Unsupported("flatten(start_dim=0) merges the batch axis")
    if start == 1 and end == x.rank - 1:
        if x.rank == 2:
            return x
        return Tensor(cv.call(cv.layer(_layers().Flatten), cv.dense(x)), (0, 1))
    return reshape_to_recorded(cv, x)


def permute(cv: Converter, x: Any, *dims: Any) -> Tensor:
    """``x.permute(dims)``: only the lazy permutation changes."""
    x = tensor(x)
    if len(dims) == 1 and isinstance(dims[0], tuple | list):
        dims = tuple(dims[0])
    order = [_dim(d, x.rank) for d in dims]
    if sorted(order) != list(range(x.rank)):
        raise Unsupported(f"dims={dims} is not a permutation of {x.rank} axes")
    return Tensor(x.sym, tuple(x.perm[d] for d in order))


def transpose(cv: Converter, x: Any, dim0: int, dim1: int) -> Tensor:
    """``x.transpose(a, b)``: only the lazy permutation changes."""
    x = tensor(x)
    a, b = _dim(dim0, x.rank), _dim(dim1, x.rank)
    perm = list(x.perm)
    perm[a], perm[b] = perm[b], perm[a]
    return Tensor(x.sym, tuple(perm))


def mean(cv: Converter, x: Any, dim: Any = None, keepdim: bool = False, *,
         dtype: Any = None) -> Tensor:  # fmt: skip
    """``x.mean(dims)`` over the spatial axes (or the steps): global average pooling, which
    computes the same mean."""
    x = tensor(x)
    if dim is None or dtype is not None:
        raise Unsupported("mean over every axis (the batch included) or with dtype=")
    dims = [_dim(d, x.rank) for d in (dim if isinstance(dim, tuple | list) else [dim])]
    axes = sorted({x.perm[d] for d in dims})
    layers, rank = _layers(), x.rank
    table = {(4, (2, 3)): (layers.GlobalAveragePooling2D, "channels_first"),
             (4, (1, 2)): (layers.GlobalAveragePooling2D, "channels_last"),
             (3, (1,)): (layers.GlobalAveragePooling1D, "channels_last"),
             (3, (2,)): (layers.GlobalAveragePooling1D, "channels_first")}  # fmt: skip
    found = table.get((rank, tuple(axes)))
    if found is None:
        raise Unsupported(f"a mean over torch dims {dims} of a rank-{rank} tensor; supported: "
                          "the two spatial axes of a 4-D tensor or one non-batch axis of a "
                          "3-D tensor (global average pooling)")  # fmt: skip
    cls, data_format = found
    sym = cv.call(cv.layer(cls, data_format=data_format, keepdims=bool(keepdim)), x.sym)
    if keepdim:
        return Tensor(sym, x.perm)
    kept = [d for d in range(rank) if d not in dims]
    # after the reduction, axis a becomes a - (number of reduced axes below it)
    return Tensor(sym, tuple(x.perm[d] - sum(1 for r in axes if r < x.perm[d]) for d in kept))


def _crop(cv: Converter, x: Tensor, d: int, start: int, stop: int) -> Tensor:
    """Keep ``[start, stop)`` of torch dim ``d`` with ``Cropping1D``: the axis is brought to
    axis 1 (Permute) and the others folded (Reshape) when the tensor is not ``(B, n, F)``."""
    layers = _layers()
    a = x.perm[d]
    shape = tuple(x.sym.shape)
    order = (0, a, *(i for i in range(1, len(shape)) if i != a))
    sym = x.sym
    if a != 1:
        sym = cv.call(cv.layer(layers.Permute, order[1:], suffix="permute"), sym)
    rest = [shape[i] for i in order[2:]]
    n = shape[a]
    if len(shape) != 3:
        sym = cv.call(cv.layer(layers.Reshape, (n, math.prod(rest)), suffix="fold"), sym)
    sym = cv.call(cv.layer(layers.Cropping1D, (start, n - stop), suffix="crop"), sym)
    if len(shape) != 3:
        sym = cv.call(cv.layer(layers.Reshape, (stop - start, *rest), suffix="unfold"), sym)
    # torch dim e sat at sym axis perm[e]; that axis is now at position order.index(perm[e])
    return Tensor(sym, tuple(order.index(p) for p in x.perm))


def _drop(cv: Converter, x: Tensor, d: int) -> Tensor:
    """Remove torch dim ``d`` (size 1 now) with a ``Reshape`` of the symbolic tensor."""
    a = x.perm[d]
    shape = [s for i, s in enumerate(x.sym.shape) if i != a][1:]
    sym = cv.call(cv.layer(_layers().Reshape, tuple(shape), suffix="squeeze"), x.sym)
    return Tensor(sym, tuple(p - (p > a) for i, p in enumerate(x.perm) if i != d))


def getitem(cv: Converter, x: Any, index: Any) -> Any:
    """``x[i]`` on a tuple (an LSTM's ``(output, (h, c))``) or on a tensor (basic indexing
    with ints and step-1 slices on non-batch axes)."""
    from dualnet.interop.torch_recurrent import FinalStates

    if isinstance(x, tuple | list):
        return x[index]
    if isinstance(x, FinalStates):
        return x.pick(cv, index)
    x = tensor(x)
    items = list(index) if isinstance(index, tuple) else [index]
    if any(i is None or not isinstance(i, int | slice | type(Ellipsis)) for i in items):
        raise Unsupported(f"index {describe(index)}: supported are ints, step-1 slices and "
                          "... (no None, tensors or lists)")  # fmt: skip
    if Ellipsis in items:
        at = items.index(Ellipsis)
        items[at : at + 1] = [slice(None)] * (x.rank - len(items) + 1)
    items += [slice(None)] * (x.rank - len(items))
    drops = []
    for d, item in enumerate(items):
        n = x.torch_shape[d]
        if item == slice(None):
            continue
        if x.perm[d] == 0:
            raise Unsupported(f"index {describe(index)} selects along the batch axis")
        if isinstance(item, int):
            if not -n <= item < n:
                raise Unsupported(f"index {item} out of range for size {n}")
            start, stop = item % n, item % n + 1
            drops.append(d)
        else:
            start, stop, step = item.indices(n)
            if step != 1 or stop <= start:
                raise Unsupported(f"slice {item}: supported are non-empty step-1 slices")
        if (start, stop) != (0, n):
            x = _crop(cv, x, d, start, stop)
    for d in reversed(drops):
        x = _drop(cv, x, d)
    return x


def recorded(cv: Converter, *args: Any, **kwargs: Any) -> Any:
    """``x.size()``, ``x.dim()``, ``x.shape``: the value recorded on the example inputs."""
    del args, kwargs
    return cv.values[cv.node]


def identity(cv: Converter, x: Any, *args: Any, **kwargs: Any) -> Tensor:
    """``contiguous()``, ``x.float()`` on a float32 model, ...: nothing to do."""
    x = tensor(x)
    dtype = str(cv.values[cv.node].dtype).removeprefix("torch.")
    if dtype != x.sym.dtype:
        raise Unsupported(f"a cast from {x.sym.dtype} to {dtype} (no cast layer in dualnet)")
    return x


def _pool(name: str):
    def convert(cv: Converter, x: Any, *args: Any, **kwargs: Any) -> Tensor:
        from dualnet.interop import torch_modules

        return getattr(torch_modules, name)(cv, tensor(x), *args, **kwargs)

    return convert


def function_name(fn: Any) -> str:
    """A readable name of a torch function target (``torch.relu``, ``operator.add``)."""
    module = getattr(fn, "__module__", None) or "torch"
    module = {"_operator": "operator", "torch._C._nn": "torch.nn.functional",
              "torch._C._VariableFunctions": "torch"}.get(module, module)  # fmt: skip
    return f"{module}.{getattr(fn, '__name__', repr(fn))}"


def _tables() -> tuple[dict[Any, Any], dict[str, Any]]:
    import torch
    import torch.nn.functional as F

    acts = {"relu": _act("relu"), "relu6": _act("relu_max", max_value=6.0),
            "leaky_relu": _act("leaky_relu", negative_slope=0.01), "elu": _act("elu", alpha=1.0),
            "gelu": _act("gelu"), "silu": _act("silu"), "sigmoid": _act("sigmoid"),
            "tanh": _act("tanh"), "hardswish": _act("hard_silu"),
            "hardsigmoid": _act("hard_sigmoid"), "mish": _act("mish"), "selu": _act("selu"),
            "softsign": _act("softsign"), "softplus": _act("softplus")}  # fmt: skip
    functions: dict[Any, Any] = {}
    for name, fn in acts.items():
        for owner in (F, torch):
            if hasattr(owner, name):
                functions[getattr(owner, name)] = fn
    add, sub, mul = _binary("Add"), _binary("Subtract"), _binary("Multiply")
    functions.update({
        operator.add: add, operator.iadd: add, torch.add: add,
        operator.sub: sub, operator.isub: sub, torch.sub: sub, torch.subtract: sub,
        operator.mul: mul, operator.imul: mul, torch.mul: mul, torch.multiply: mul,
        operator.truediv: divide, operator.itruediv: divide, torch.div: divide,
        torch.divide: divide, torch.true_divide: divide, operator.neg: negative,
        torch.neg: negative, torch.negative: negative, torch.rsub: rsub,
        torch.cat: cat, torch.concat: cat, torch.concatenate: cat,
        F.softmax: softmax, torch.softmax: softmax,
        F.log_softmax: lambda cv, x, dim=None, **k: softmax(cv, x, dim, log=True, **k),
        torch.log_softmax: lambda cv, x, dim=None, **k: softmax(cv, x, dim, log=True, **k),
        F.dropout: dropout, torch.flatten: flatten, torch.reshape: reshape,
        torch.squeeze: reshape, torch.unsqueeze: reshape, torch.permute: permute,
        torch.transpose: transpose, torch.mean: mean, operator.getitem: getitem,
        builtins.getattr: recorded,
        F.adaptive_avg_pool1d: _pool("adaptive_avg_pool"),
        F.adaptive_avg_pool2d: _pool("adaptive_avg_pool"),
        F.max_pool1d: _pool("max_pool"), F.max_pool2d: _pool("max_pool"),
        F.avg_pool1d: _pool("avg_pool"), F.avg_pool2d: _pool("avg_pool"),
    })  # fmt: skip
    methods: dict[str, Any] = {name: fn for name, fn in acts.items() if hasattr(torch.Tensor,
                                                                                 name)}  # fmt: skip
    methods.update({
        "add": add, "add_": add, "sub": sub, "sub_": sub, "mul": mul, "mul_": mul,
        "div": divide, "div_": divide, "true_divide": divide, "neg": negative,
        "neg_": negative,
        "relu_": acts["relu"], "sigmoid_": acts["sigmoid"], "tanh_": acts["tanh"],
        "softmax": softmax,
        "log_softmax": lambda cv, x, dim=None, **k: softmax(cv, x, dim, log=True, **k),
        "view": reshape, "reshape": reshape, "squeeze": reshape, "unsqueeze": reshape,
        "flatten": flatten, "permute": permute, "transpose": transpose, "mean": mean,
        "size": recorded, "dim": recorded, "contiguous": identity, "float": identity,
        "double": identity,
    })  # fmt: skip
    return functions, methods


FUNCTIONS, METHODS = _tables()
