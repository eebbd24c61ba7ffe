"""Attention FLOPs by formula, whichever kernel PyTorch dispatches (docs/profiling.md, "Attention").

``F.scaled_dot_product_attention`` reaches the counter as one of several ops, chosen per device, dtype, shape,
mask and torch version: the math path (plain ``bmm`` products, which the counter counts), the CPU flash kernel,
CUDA flash, memory-efficient, cuDNN, the "overrideable" fused op of out-of-tree backends, the varlen kernels
nested tensors use, and ``nn.MultiheadAttention`` / ``nn.TransformerEncoderLayer``'s fused inference fast path.
The counter's own formulas cover only some of these, and differ between versions (the CPU flash kernel counts 0
in torch 2.14), so every variant present in the installed torch is counted here, identically, as the math path
counts it:

- forward: ``Q·Kᵀ`` and ``A·V``, ``2·B·H·L·S·E + 2·B·H·L·S·Eᵥ`` FLOPs (``H`` query heads, also under grouped-query
  attention, where the math path repeats the key and value heads);
- backward: the four products of the math path's gradient (``dA = dO·Vᵀ``, ``dV = Aᵀ·dO``, ``dQ = dS·K``,
  ``dK = dSᵀ·Q``), twice the forward. The fused kernels' recomputation of ``Q·Kᵀ`` is an implementation choice
  and is not counted (PyTorch's own formula counts it: 2.5x the forward);
- softmax, scaling, masking and dropout are elementwise and not counted; a causal, masked or windowed attention
  is counted over the full score matrix, as the math path computes it;
- the fast path ops count everything they compute: the q, k, v and output projections (and the feed-forward
  layer for ``_transformer_encoder_layer_fwd``) as the unfused modules' linear layers would, plus attention.
  On a nested (padded) batch they count the real tokens only, since the kernel computes only those.

Each formula is a pure function of shapes (the ``raw`` arguments of one op call), registered with the counter
through ``FlopCounterMode(custom_mapping=...)`` for the ops ``torch.ops.aten`` has in the installed version.
:func:`is_attention_op` and :func:`expected_flops` serve the guard (:func:`benchkit.profiling.flops.unaccounted`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

Shape = Sequence[int]


def products(pairs: int, e: int, ev: int) -> int:
    """Forward FLOPs of attention with ``pairs`` (query, key) position pairs summed over batch and heads:
    ``Q·Kᵀ`` (``2·pairs·E``) and ``A·V`` (``2·pairs·Eᵥ``)."""
    return 2 * pairs * e + 2 * pairs * ev


def sdpa_flops(q: Shape, k: Shape, v: Shape) -> int:
    """Forward FLOPs for ``(..., L, E)`` query, ``(..., S, E)`` key and ``(..., S, Eᵥ)`` value shapes, the layout of
    ``F.scaled_dot_product_attention`` (leading dims: batch and query heads)."""
    rows = 1
    for d in q[:-1]:
        rows *= d
    return products(rows * k[-2], q[-1], v[-1])


def sdpa_backward_flops(q: Shape, k: Shape, v: Shape) -> int:
    """Backward FLOPs for the same shapes: the math path's four products, twice the forward."""
    return 2 * sdpa_flops(q, k, v)


# -- reading one op call's arguments ------------------------------------------------------------------------------


def _arg(args: tuple, kwargs: dict, i: int, name: str, default: Any = None) -> Any:
    if i < len(args):
        return args[i]
    return kwargs.get(name, default)


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(t.shape)


def _pieces(t: torch.Tensor) -> list[tuple[int, ...]]:
    """The shapes of the sequences of a nested tensor, or the one shape of a dense tensor."""
    if getattr(t, "is_nested", False):
        if hasattr(t, "_nested_tensor_size"):
            try:
                return [tuple(s) for s in t._nested_tensor_size().tolist()]
            except (RuntimeError, AttributeError, NotImplementedError):
                pass
        return [tuple(x.shape) for x in t.unbind()]
    return [_shape(t)]


def _lengths(offsets: torch.Tensor, max_len: int) -> list[int]:
    """Sequence lengths from cumulative offsets; the maximum for every sequence where the values are unknown
    (meta or fake tensors), as PyTorch's counter does."""
    try:
        return [int(n) for n in offsets.diff().tolist()]
    except (RuntimeError, NotImplementedError, ValueError):
        return [int(max_len)] * (offsets.shape[0] - 1)


def _raw(fn: Callable[..., int]) -> Callable[..., int]:
    fn._get_raw = True  # FlopCounterMode passes the tensors themselves, not their shapes
    return fn


# -- the formulas, per op -----------------------------------------------------------------------------------------


@_raw
def sdpa_forward_op(*args, out_val=None, **kwargs) -> int:
    """``(query, key, value, ...)`` in ``(B, H, L, E)`` layout: the SDPA-level kernels and the math op."""
    return sdpa_flops(_shape(args[0]), _shape(args[1]), _shape(args[2]))


@_raw
def sdpa_backward_op(*args, out_val=None, **kwargs) -> int:
    """``(grad_out, query, key, value, ...)`` in ``(B, H, L, E)`` layout."""
    return sdpa_backward_flops(_shape(args[1]), _shape(args[2]), _shape(args[3]))


def _varlen(q, k, v, cum_q, cum_k, max_q, max_k) -> int:
    """Forward FLOPs of the low-level kernels: ``(B, L, H, E)`` dense, or ``(total, H, E)`` (flash) /
    ``(1, total, H, E)`` (memory-efficient) packed sequences delimited by cumulative offsets."""
    heads, e, ev = q.shape[-2], q.shape[-1], v.shape[-1]
    if cum_q is None:
        pairs = q.shape[0] * heads * q.shape[-3] * k.shape[-3]
    else:
        pairs = heads * sum(a * b for a, b in zip(_lengths(cum_q, max_q), _lengths(cum_k, max_k), strict=True))
    return products(pairs, e, ev)


@_raw
def flash_forward_op(*args, out_val=None, **kwargs) -> int:
    """``aten._flash_attention_forward(query, key, value, cum_seq_q, cum_seq_k, max_q, max_k, ...)``."""
    return _varlen(*args[:3], _arg(args, kwargs, 3, "cum_seq_q"), _arg(args, kwargs, 4, "cum_seq_k"),
                   _arg(args, kwargs, 5, "max_q"), _arg(args, kwargs, 6, "max_k"))


@_raw
def flash_forward_inplace_op(*args, out_val=None, **kwargs) -> int:
    """``aten._flash_attention_forward_no_dropout_inplace(out, query, key, value, cum_seq_q, ...)``."""
    return flash_forward_op(*args[1:], **kwargs)


@_raw
def flash_backward_op(*args, out_val=None, **kwargs) -> int:
    """``aten._flash_attention_backward(grad_out, query, key, value, out, logsumexp, cum_seq_q, cum_seq_k, max_q,
    max_k, ...)``: twice the forward."""
    return 2 * _varlen(*args[1:4], _arg(args, kwargs, 6, "cum_seq_q"), _arg(args, kwargs, 7, "cum_seq_k"),
                       _arg(args, kwargs, 8, "max_q"), _arg(args, kwargs, 9, "max_k"))


@_raw
def efficient_forward_op(*args, out_val=None, **kwargs) -> int:
    """``aten._efficient_attention_forward(query, key, value, bias, cu_seqlens_q, cu_seqlens_k, max_seqlen_q,
    max_seqlen_k, ...)`` in ``(B, M, H, K)`` layout."""
    return _varlen(*args[:3], _arg(args, kwargs, 4, "cu_seqlens_q"), _arg(args, kwargs, 5, "cu_seqlens_k"),
                   _arg(args, kwargs, 6, "max_seqlen_q"), _arg(args, kwargs, 7, "max_seqlen_k"))


@_raw
def efficient_backward_op(*args, out_val=None, **kwargs) -> int:
    """``aten._efficient_attention_backward(grad_out, query, key, value, bias, out, cu_seqlens_q, cu_seqlens_k,
    max_seqlen_q, max_seqlen_k, ...)``: twice the forward."""
    return 2 * _varlen(*args[1:4], _arg(args, kwargs, 6, "cu_seqlens_q"), _arg(args, kwargs, 7, "cu_seqlens_k"),
                       _arg(args, kwargs, 8, "max_seqlen_q"), _arg(args, kwargs, 9, "max_seqlen_k"))


@_raw
def cudnn_forward_op(*args, out_val=None, **kwargs) -> int:
    """``aten._cudnn_attention_forward(query, key, value, attn_bias, cum_seq_q, cum_seq_k, max_q, max_k, ...)``:
    ``(B, H, L, E)`` dense, or ``(total, H, E)`` packed (varlen attention, nested tensors)."""
    q, k, v, cum_q = *args[:3], _arg(args, kwargs, 4, "cum_seq_q")
    if cum_q is None:
        return sdpa_flops(_shape(q), _shape(k), _shape(v))
    return _varlen(q, k, v, cum_q, _arg(args, kwargs, 5, "cum_seq_k"), _arg(args, kwargs, 6, "max_q"),
                   _arg(args, kwargs, 7, "max_k"))


@_raw
def cudnn_backward_op(*args, out_val=None, **kwargs) -> int:
    """``aten._cudnn_attention_backward(grad_out, query, key, value, out, logsumexp, philox_seed, philox_offset,
    attn_bias, cum_seq_q, cum_seq_k, max_q, max_k, ...)``: twice the forward."""
    return 2 * cudnn_forward_op(*args[1:4], None, *(_arg(args, kwargs, i, n) for i, n in (
        (9, "cum_seq_q"), (10, "cum_seq_k"), (11, "max_q"), (12, "max_k"))))


def _tokens(t: torch.Tensor) -> list[int]:
    """Sequence lengths of a ``(B, L, E)`` batch (batch first, as the fast path requires) or a nested one."""
    out = []
    for shape in _pieces(t):
        out.extend([shape[-2]] * (shape[0] if len(shape) == 3 else 1))
    return out


def mha_flops(query: torch.Tensor, key: torch.Tensor, embed_dim: int) -> int:
    """``nn.MultiheadAttention`` with ``embed_dim`` E: q projection on the queries, k and v projections on the keys
    (``2·T·E·E`` each, one packed ``3E`` product in self-attention), attention over all heads (``E`` = heads x
    head dim), output projection."""
    lq, lk = _tokens(query), _tokens(key)
    e = embed_dim
    projections = 2 * sum(lq) * e * e * 2 + 2 * sum(lk) * e * e * 2  # q and output; k and v
    return projections + products(sum(a * b for a, b in zip(lq, lk, strict=True)), e, e)


@_raw
def native_mha_op(*args, out_val=None, **kwargs) -> int:
    """``aten._native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, ...)``: the
    ``nn.MultiheadAttention`` fast path, projections included."""
    return mha_flops(args[0], args[1], int(args[3]))


@_raw
def encoder_layer_op(*args, out_val=None, **kwargs) -> int:
    """``aten._transformer_encoder_layer_fwd(src, embed_dim, num_heads, qkv_weight, ..., ffn_weight_1, ...)``: the
    ``nn.TransformerEncoderLayer`` fast path: attention block and feed-forward (``2·T·E·F`` twice)."""
    src, e = args[0], int(args[1])
    ffn = _arg(args, kwargs, 14, "ffn_weight_1").shape[0]
    return mha_flops(src, src, e) + 2 * 2 * sum(_tokens(src)) * e * ffn


_FORWARD = (
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_fused_attention_overrideable",
    "_scaled_dot_product_attention_math_for_mps",
)
_BACKWARD = (
    "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention_backward",
    "_scaled_dot_product_fused_attention_overrideable_backward",
)
_LOW_LEVEL = {
    "_triton_scaled_dot_attention": sdpa_forward_op,
    "_flash_attention_forward": flash_forward_op,
    "_flash_attention_forward_no_dropout_inplace": flash_forward_inplace_op,
    "_flash_attention_backward": flash_backward_op,
    "_efficient_attention_forward": efficient_forward_op,
    "_efficient_attention_backward": efficient_backward_op,
    "_cudnn_attention_forward": cudnn_forward_op,
    "_cudnn_attention_backward": cudnn_backward_op,
    "_native_multi_head_attention": native_mha_op,
    "_triton_multi_head_attention": native_mha_op,
    "_transformer_encoder_layer_fwd": encoder_layer_op,
}

FORMULA_BY_NAME: dict[str, Callable[..., int]] = {
    **{name: sdpa_forward_op for name in _FORWARD},
    **{name: sdpa_backward_op for name in _BACKWARD},
    **_LOW_LEVEL,
}
"""Every attention op benchkit counts by formula, by ``aten`` name (present or not in the installed torch)."""

ATTENTION_FORMULAS: dict[Any, Callable[..., int]] = {
    getattr(torch.ops.aten, name): fn for name, fn in FORMULA_BY_NAME.items() if hasattr(torch.ops.aten, name)
}
"""The same, keyed by the op packets the installed torch has (added to ``formulas.OP_FORMULAS``)."""

# -- the guard's view ---------------------------------------------------------------------------------------------

_COMPOSITES = tuple(  # decomposed by the counter into a kernel above, or into the math path's ``bmm``
    getattr(torch.ops.aten, name)
    for name in ("scaled_dot_product_attention", "_scaled_dot_product_attention_math")
    if hasattr(torch.ops.aten, name)
)
_WORDS = ("attention", "multi_head", "transformer_encoder_layer")


def is_attention_op(packet: Any) -> bool:
    """An op that computes attention: one of the formulas', the composite SDPA ops (which the counter decomposes
    into one of them), or any other ``aten`` op named like one (a variant a newer torch adds)."""
    if packet in ATTENTION_FORMULAS or packet in _COMPOSITES:
        return True
    name = str(packet)
    return name.startswith("aten.") and any(word in name for word in _WORDS)


def expected_flops(packet: Any, args: tuple, kwargs: dict) -> int | None:
    """The FLOPs the counter must have counted for one call of an attention op; ``None`` when they cannot be
    told from the arguments (an unknown variant or shape: then any count above 0 passes)."""
    fn = ATTENTION_FORMULAS.get(packet)
    if fn is None and packet in _COMPOSITES:
        fn = sdpa_forward_op
    if fn is None:
        return None
    try:
        return int(fn(*args, **kwargs))
    except Exception:  # symbolic or exotic shapes: fall back to "more than nothing"
        return None
