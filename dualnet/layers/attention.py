"""Attention layers: MultiHeadAttention (Keras's ``layers/attention`` group).

Note [Multi-head attention]
---------------------------
For a query ``x_q (B, T, E_q)``, a value ``x_v (B, S, E_v)`` and a key ``x_k (B, S, E_k)``
(the value when not given), with ``N`` heads:

* projections, one per head ``n``: ``q = x_q·Wq + bq`` (``Wq (E_q, N, key_dim)``,
  ``bq (N, key_dim)``), ``k = x_k·Wk + bk`` likewise, ``v = x_v·Wv + bv`` (``Wv (E_v, N,
  value_dim)``);
* scores ``s[b, n, t, u] = Σ_h (q[b, t, n, h]/√key_dim)·k[b, u, n, h]``: the query is scaled
  *before* the product (Keras);
* the attention mask ``M (B, T, S)``, True = attend: the ``attention_mask`` argument ∧ the
  query's mask ``(B, T, 1)`` ∧ the value's mask ``(B, 1, S)`` ∧ the key's mask (when a key
  is given) ∧ the causal mask ``t >= u`` (``use_causal_mask``): Keras's
  ``_compute_attention_mask``;
* weights ``p = softmax over u of s`` among the positions M allows; a query row that may attend
  to no key gets ``p = 0`` (see the table), so its output is the output bias;
* in training mode with ``dropout > 0``: ``p' = where(keep, p·1/(1-dropout), 0)``, one keep-mask
  of shape ``(B, N, T, S)`` per training call, drawn as :class:`~dualnet.layers.Dropout` draws
  its masks (Note [Portable noise] in :mod:`dualnet.layers.regularization`);
* ``o[b, t] = Σ_{n,h} (Σ_u p'[b, n, t, u]·v[b, u, n, h])·Wo[n, h] + bo`` with ``Wo (N,
  value_dim, *output_shape)``.

The call returns ``o`` ``(B, T, *output_shape)``, or the list ``[o, p]`` with
``return_attention_scores=True`` (``p`` before dropout, ``(B, N, T, S)``, Keras's). The output
carries the query's mask.

Inputs of higher rank (``(B, d₁, …, d_k, E)``) attend over ``attention_axes`` (default: all of
``d₁…d_k`` jointly); the other axes act as batch axes: the layer folds them into the batch and
the attention axes into one (row-major), attends, and unfolds (Keras's einsum equations
compute the same). Scores are then ``(B, *other axes, N, *query attention axes, *key attention
axes)``. Masks (the mask arguments and the inputs' masks) and ``use_causal_mask`` are refused
there: Keras broadcasts them against ranks they were not made for.

Where the frameworks differ
---------------------------
===========================  =========================  =====================  ================
behaviour                    torch                      Keras 3.15             dualnet
===========================  =========================  =====================  ================
weights                      ``in_proj_weight (3E,E)``  per head: ``(E, N,     Keras's (see
                             packed q/k/v, ``out_proj   key_dim)``, ``(N,      :func:`torch_
                             (E, E)``, head size E/N    value_dim, E)``        mha_weights`)
key_dim                      ``E / num_heads``          any                    any (Keras)
call order                   ``(query, key, value)``    ``(query, value,       Keras's
                                                        key=None)``
layout                       ``batch_first=False``      batch first            batch first
boolean mask                 True = **masked**          True = attend          True = attend
                             (``nn.MultiheadAttention`` (SDPA too)
                             ``attn_mask``)
query row with no key        MHA: NaN (its default      uniform average        zeros: output =
                             ``need_weights=True``),    (default path); zeros  output bias
                             zeros with ``need_         with dropout or
                             weights=False`` (SDPA)     ``return_attention_
                                                        scores`` (Softmax)
scores returned              averaged over heads by     per head               per head
                             default
dropout masks                torch's RNG                TF's RNG               numpy PCG64
===========================  =========================  =====================  ================

The backends: torch uses ``F.scaled_dot_product_attention`` unless the call needs the
attention weights (``return_attention_scores``) or drops them (training with ``dropout > 0``),
where it computes them explicitly with ``matmul`` and ``softmax``; TensorFlow computes them
with ``einsum`` and ``softmax`` as Keras's own layer does (its ``dot_product_attention`` path
would give the uniform average). Half precision: computed in float32, rounded once at the end.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from dualnet import initializers as _initializers
from dualnet.errors import bad_type, bad_value
from dualnet.layers import _args
from dualnet.layers.base import WeightSpec, format_shape
from dualnet.layers.regularization import _RandomLayer, keep_mask

__all__ = ["MultiHeadAttention", "torch_mha_weights"]


def fold_permutation(rank: int, attention_axes: Sequence[int]) -> tuple[int, ...]:
    """The permutation that orders an input of ``rank`` as ``(batch, other axes, attention
    axes, features)``: after it, the batch and other axes fold into one batch axis and the
    attention axes into one sequence axis (row-major reshapes)."""
    others = [a for a in range(1, rank - 1) if a not in attention_axes]
    return (0, *others, *attention_axes, rank - 1)


def _seed_for(initializer: _initializers.Initializer, index: int) -> _initializers.Initializer:
    """The initializer of projection ``index`` (0: query, 1: key, 2: value, 3: output).

    A seeded dualnet initializer returns the same array on every call, so the query, key and
    value kernels of a self-attention layer (same shapes) would be equal; Keras clones its
    initializer per projection, which repeats the values too when a seed is given and draws
    unrelated values when not. dualnet derives one seed per projection from the initializer's
    (index 0 keeps it), so the projections differ and the draw is reproducible."""
    if index == 0 or initializer.seed is None:
        return initializer
    derived = int(np.random.SeedSequence([initializer.seed, index]).generate_state(1)[0])
    config = {**initializer.get_config(), "seed": derived % (2**31 - 1)}
    return type(initializer).from_config(config)


class MultiHeadAttention(_RandomLayer):
    """Multi-head attention as Keras computes it (Note [Multi-head attention]).

    Called as Keras's layer: ``mha(query, value, key=None, attention_mask=None,
    return_attention_scores=False, training=None, use_causal_mask=False)``.

    Args:
        num_heads: the number of heads ``N``, a positive int.
        key_dim: the size of each head for the query and key, a positive int (torch's
            ``nn.MultiheadAttention`` fixes it to ``E/num_heads``).
        value_dim: the size of each head for the value; None: ``key_dim``.
        dropout: the rate at which the attention weights are dropped in training mode, in
            [0, 1].
        use_bias: whether the four projections have biases.
        output_shape: the output's feature shape (an int or a tuple of positive ints); None:
            the query's last dimension.
        attention_axes: the axes attention runs over (an int or a list of ints, the batch and
            feature axes excluded; negative axes count from the end, -2 being the last
            sequence axis); None: all of them.
        kernel_initializer, bias_initializer: initializers of the four projections; a seeded
            one gives the key, value and output projections seeds derived from its own, so that
            equal shapes do not get equal values (Keras repeats them).
        seed: seed of the dropout masks (Note [Portable noise]); None draws one.
        name, dtype, input_shape, trainable: see :class:`Layer`.

    Shape:
        query ``(B, T, E_q)``, value ``(B, S, E_v)``, key ``(B, S, E_k)``, attention_mask
        ``(B, T, S)`` (bool or int: nonzero = attend); output ``(B, T, *output_shape)``, scores
        ``(B, N, T, S)``. Higher ranks: see the note.
    """

    supports_masking: ClassVar[bool] = True
    call_arguments: ClassVar[tuple[str, ...]] = (
        "value", "key", "attention_mask", "return_attention_scores", "use_causal_mask",
    )  # fmt: skip

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | Sequence[int] | None = None,
        attention_axes: int | Sequence[int] | None = None,
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        seed: int | None = None,
        *,
        name: str | None = None,
        dtype: Any = None,
        input_shape: Any = None,
        trainable: bool = True,
    ):
        where = type(self).__name__
        self._num_heads = _args.positive_int(num_heads, "num_heads", where)
        self._key_dim = _args.positive_int(key_dim, "key_dim", where)
        self._value_dim = (self._key_dim if value_dim is None
                           else _args.positive_int(value_dim, "value_dim", where))  # fmt: skip
        self._dropout = _args.real(dropout, "dropout", where, low=0.0, high=1.0)
        self._use_bias = _args.boolean(use_bias, "use_bias", where)
        self._out_features = _feature_shape(output_shape, where)
        self._attention_axes = (
            None
            if attention_axes is None
            else _args.axis_list(attention_axes, "attention_axes", where)
        )
        _args.seed(seed, "seed", where)  # before the initializers draw theirs
        inits = _args.initializers(where, name=name, dtype=dtype, input_shape=input_shape,
                                   trainable=trainable, kernel_initializer=kernel_initializer,
                                   bias_initializer=bias_initializer)  # fmt: skip
        self._kernel_initializer = inits["kernel_initializer"]
        self._bias_initializer = inits["bias_initializer"]
        super().__init__(seed, name=name, dtype=dtype, input_shape=input_shape,
                         trainable=trainable)  # fmt: skip

    num_heads = property(lambda self: self._num_heads)
    key_dim = property(lambda self: self._key_dim)
    value_dim = property(lambda self: self._value_dim)
    dropout = property(lambda self: self._dropout)
    use_bias = property(lambda self: self._use_bias)
    attention_axes = property(lambda self: self._attention_axes)

    @property
    def scale(self) -> float:
        """``1/√key_dim``, by which the projected query is multiplied."""
        return 1.0 / math.sqrt(float(self._key_dim))

    @property
    def dropout_scale(self) -> float:
        """The factor of the kept attention weights, ``1/(1 - dropout)``; 0 for dropout 1."""
        return 0.0 if self._dropout >= 1.0 else 1.0 / (1.0 - self._dropout)

    def next_keep_mask(self, shape: Sequence[int]) -> np.ndarray | None:
        """The keep-mask of the attention weights (``shape``: the scores') for the next
        training call, advancing the count of training calls; None when ``dropout=0``."""
        call = self._advance()
        if self._dropout <= 0.0:
            return None
        return keep_mask(self.seed, call, shape, self._dropout)

    # -- calling ----------------------------------------------------------------------------

    def __call__(self, query: Any, value: Any = None, key: Any = None, attention_mask: Any = None,
                 return_attention_scores: bool = False, training: Any = None,
                 use_causal_mask: bool = False, **kwargs: Any) -> Any:  # fmt: skip
        """Keras's call order ``(query, value, key)``, mapped onto the generic call."""
        if value is None:
            raise TypeError(f"{self._where()}: missing the value tensor; expected "
                            "mha(query, value) or mha(query, value, key).")  # fmt: skip
        return super().__call__(query, training=training, value=value, key=key,
                                attention_mask=attention_mask,
                                return_attention_scores=return_attention_scores,
                                use_causal_mask=use_causal_mask, **kwargs)  # fmt: skip

    # -- shapes -----------------------------------------------------------------------------

    def resolved_axes(self, rank: int) -> tuple[int, ...]:
        """The attention axes for inputs of ``rank`` (increasing, in [1, rank - 2])."""
        if self._attention_axes is None:
            return tuple(range(1, rank - 1))
        # Keras: a negative axis counts from the end of the input, so -2 is the last sequence
        # axis (-1, the features, is never one).
        resolved = [a + rank if a < 0 else a for a in self._attention_axes]
        if any(not 1 <= a <= rank - 2 for a in resolved) or len(set(resolved)) < len(resolved):
            raise bad_value("attention_axes", list(self._attention_axes),
                            f"distinct axes in [1, {rank - 2}] or [{1 - rank}, -2] (neither the "
                            f"batch nor the feature axis) for inputs of rank {rank}",
                            where=self._where())  # fmt: skip
        return tuple(sorted(resolved))

    def check_input_shape(self, shape: Sequence[int | None]) -> None:
        shape = tuple(shape)
        if len(shape) < 3:
            raise ValueError(
                f"{self._where()} expects a query of rank >= 3 ((batch, sequence, features)), "
                f"got shape {format_shape(shape)}."
            )
        self.resolved_axes(len(shape))
        self._check_same_as_built(shape, [len(shape) - 1])

    def check_call_arguments(self, input_shape: Any, value: Any = None, key: Any = None,
                             attention_mask: Any = None, return_attention_scores: Any = False,
                             use_causal_mask: Any = False) -> None:  # fmt: skip
        """Shapes and options of a call (tensor arguments as their shapes, None when absent)."""
        where = self._where()
        q = tuple(input_shape)
        self.check_input_shape(q)
        _args.boolean(return_attention_scores, "return_attention_scores", where)
        _args.boolean(use_causal_mask, "use_causal_mask", where)
        for argument, shape in (("value", value), ("key", key), ("attention_mask", attention_mask)):
            if shape is not None and not isinstance(shape, tuple):
                raise bad_type(argument, shape, "a tensor (a numpy array or a backend tensor)",
                               where=where)  # fmt: skip
        if value is None:
            raise TypeError(f"{where}: missing the value tensor; expected mha(query, value).")
        for argument, shape in (("value", value), ("key", key)):
            if shape is not None and (len(shape) != len(q) or not _same(shape[0], q[0])):
                raise ValueError(f"{where}: {argument} of shape {format_shape(shape)} does not fit "
                                 f"the query {format_shape(q)}; expected the query's rank "
                                 f"{len(q)} and batch size {q[0]}.")  # fmt: skip
        if key is not None and not all(_same(a, b) for a, b in zip(key[:-1], value[:-1],
                                                                      strict=True)):  # fmt: skip
            raise ValueError(
                f"{where}: key {format_shape(key)} and value {format_shape(value)} "
                "differ; expected the same shape but for the last axis."
            )
        axes = self.resolved_axes(len(q))
        others = [a for a in range(1, len(q) - 1) if a not in axes]
        if not all(_same(q[a], value[a]) for a in others):
            raise ValueError(
                f"{where}: query {format_shape(q)} and value {format_shape(value)} "
                f"differ on the non-attention axes {others}; expected equal sizes."
            )
        if self.built:  # the projections' input sizes
            built = self._call_shapes["value"]
            built_key = self._call_shapes.get("key") or built
            for argument, shape, want in (("value", value, built), ("key", key or value,
                                                                       built_key)):  # fmt: skip
                if not _same(shape[-1], want[-1]):
                    raise ValueError(f"{where} was built for a {argument} of shape "
                                     f"{format_shape(want)}; expected {want[-1]} features, got "
                                     f"{format_shape(shape)}.")  # fmt: skip
        if (attention_mask is not None or use_causal_mask) and len(q) != 3:
            raise ValueError(f"{where}: attention_mask and use_causal_mask expected rank-3 "
                             f"inputs (batch, sequence, features), got a query of shape "
                             f"{format_shape(q)}.")  # fmt: skip
        if attention_mask is not None:
            want = (q[0], q[1], value[1])
            if len(attention_mask) != 3 or not all(
                _same(a, b) for a, b in zip(attention_mask, want, strict=True)
            ):
                raise ValueError(f"{where}: attention_mask of shape "
                                 f"{format_shape(attention_mask)}; expected (batch, T, S) = "
                                 f"{format_shape(want)}.")  # fmt: skip

    def check_input_masks(self, query_shape: Sequence[int | None], *masks: Any) -> None:
        """The inputs' masks (Note [Masks]) are only taken for rank-3 inputs."""
        if len(query_shape) != 3 and any(m is not None for m in masks):
            raise ValueError(f"{self._where()}: masks on the inputs expected rank-3 inputs "
                             f"(batch, sequence, features), got a query of shape "
                             f"{format_shape(tuple(query_shape))}.")  # fmt: skip

    def compute_output_shape(self, input_shape: Any, value: Any = None, key: Any = None,
                             return_attention_scores: bool = False,
                             **_: Any) -> Any:  # fmt: skip
        q = tuple(input_shape)
        value = tuple(value) if value is not None else self._call_shapes.get("value")
        if value is None:
            raise ValueError(f"{self._where()}: the value's shape is needed (call it as "
                             "mha(query, value)).")  # fmt: skip
        out = q[:-1] + (self._out_features or (q[-1],))
        if not return_attention_scores:
            return out
        axes = self.resolved_axes(len(q))
        others = tuple(q[a] for a in range(1, len(q) - 1) if a not in axes)
        scores = (q[0], *others, self._num_heads, *(q[a] for a in axes),
                  *(value[a] for a in axes))  # fmt: skip
        return [out, scores]

    def declare_weights(self) -> list[WeightSpec]:
        q = self.input_shape
        value = self._call_shapes.get("value")
        if value is None:
            raise ValueError(f"{self._where()} cannot be built from the query's shape alone: "
                             "call it as mha(query, value).")  # fmt: skip
        key = self._call_shapes.get("key") or value
        heads, kd, vd = self._num_heads, self._key_dim, self._value_dim
        out = self._out_features or (q[-1],)
        projections = [("query", q[-1], kd), ("key", key[-1], kd), ("value", value[-1], vd)]
        specs = []
        for index, (name, features, size) in enumerate(projections):
            specs.append(
                WeightSpec(
                    name=f"{name}/kernel",
                    shape=(features, heads, size),
                    initializer=_seed_for(self._kernel_initializer, index),
                )
            )
            if self._use_bias:
                specs.append(
                    WeightSpec(
                        name=f"{name}/bias",
                        shape=(heads, size),
                        initializer=_seed_for(self._bias_initializer, index),
                    )
                )
        specs.append(
            WeightSpec(
                name="attention_output/kernel",
                shape=(heads, vd, *out),
                initializer=_seed_for(self._kernel_initializer, 3),
            )
        )
        if self._use_bias:
            specs.append(
                WeightSpec(
                    name="attention_output/bias",
                    shape=tuple(out),
                    initializer=_seed_for(self._bias_initializer, 3),
                )
            )
        return specs

    def get_config(self) -> dict[str, Any]:
        axes = self._attention_axes
        return {
            **super().get_config(), "num_heads": self._num_heads, "key_dim": self._key_dim,
            "value_dim": self._value_dim, "dropout": self._dropout, "use_bias": self._use_bias,
            "output_shape": None if self._out_features is None else list(self._out_features),
            "attention_axes": None if axes is None else list(axes),
            "kernel_initializer": _initializers.serialize(self._kernel_initializer),
            "bias_initializer": _initializers.serialize(self._bias_initializer),
        }  # fmt: skip


def _feature_shape(value: Any, where: str) -> tuple[int, ...] | None:
    """``output_shape``: None, a positive int, or a non-empty tuple of positive ints."""
    if value is None:
        return None
    expected = "None, a positive int or a non-empty tuple of positive ints"
    if _args.is_int(value):
        value = (value,)
    if not isinstance(value, tuple | list) or not value or not all(_args.is_int(d) for d in value):
        raise bad_type("output_shape", value, expected, where=where)
    if any(d <= 0 for d in value):
        raise bad_value("output_shape", value, expected, where=where)
    return tuple(int(d) for d in value)


def _same(a: int | None, b: int | None) -> bool:
    """Two sizes agree, an unknown (None) agreeing with anything."""
    return a is None or b is None or a == b


def torch_mha_weights(state: Mapping[str, Any], num_heads: int) -> list[np.ndarray]:
    """The canonical weights of ``MultiHeadAttention(num_heads, key_dim=E // num_heads)`` that
    compute what a torch ``nn.MultiheadAttention(E, num_heads, batch_first=True)`` computes.

    torch packs the three input projections in ``in_proj_weight (3E, E)`` (rows ``[Wq; Wk;
    Wv]``, row ``n·H + h`` = head ``n``, channel ``h``; or ``q/k/v_proj_weight`` when
    ``kdim``/``vdim`` differ from E) and computes ``x·Wᵀ + b``; Keras's kernel is
    ``Wᵀ`` reshaped to ``(E_in, N, H)``, its bias ``b`` reshaped to ``(N, H)``, the output
    kernel ``out_proj.weightᵀ`` reshaped to ``(N, H, E)``. torch also scales by ``1/√H``.

    The call maps as ``torch_mha(q, k, v, attn_mask=m)[0] == mha(q, v, k, attention_mask=~m)``:
    Keras's order (query, value, key), and torch's boolean masks mark the *masked* positions.

    Args:
        state: ``module.state_dict()`` as numpy arrays (or tensors with ``.numpy()``).
        num_heads: the module's ``num_heads``.

    Returns:
        The canonical arrays in the layer's weight order (biases included when the module has
        them).
    """
    where = "torch_mha_weights"
    heads = _args.positive_int(num_heads, "num_heads", where)
    arrays = {k: np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v)
              for k, v in state.items()}  # fmt: skip
    extra = sorted(k for k in arrays if k in ("bias_k", "bias_v"))
    if extra:
        raise bad_value("state", extra, "no bias_k/bias_v (add_bias_kv=True has no Keras "
                        "counterpart)", where=where)  # fmt: skip
    if "in_proj_weight" in arrays:
        w_q, w_k, w_v = np.split(arrays["in_proj_weight"], 3, axis=0)
    elif all(f"{p}_proj_weight" in arrays for p in "qkv"):
        w_q, w_k, w_v = (arrays[f"{p}_proj_weight"] for p in "qkv")
    else:
        raise bad_type("state", sorted(arrays), "a state_dict of nn.MultiheadAttention "
                       "(in_proj_weight or q/k/v_proj_weight)", where=where)  # fmt: skip
    embed = w_q.shape[0]
    if embed % heads:
        raise bad_value("num_heads", num_heads, f"a divisor of embed_dim={embed}", where=where)
    size = embed // heads
    biases = np.split(arrays["in_proj_bias"], 3) if "in_proj_bias" in arrays else None
    out: list[np.ndarray] = []
    for i, w in enumerate((w_q, w_k, w_v)):
        out.append(w.T.reshape(w.shape[1], heads, size))  # x·Wᵀ: kernel (E_in, N·H) -> per head
        if biases is not None:
            out.append(biases[i].reshape(heads, size))
    out.append(arrays["out_proj.weight"].T.reshape(heads, size, -1))
    if "out_proj.bias" in arrays:
        out.append(arrays["out_proj.bias"])
    return out
