"""Causal attention of new positions over cached ones, in the two forms decoding needs.

:func:`causal_attention` attends over keys that already hold the new positions
(the training path and the in-place KV cache, with PyTorch's fused kernel).
:func:`attention_past_and_new` reads a fixed-capacity cache of which only the
first ``start`` positions are valid, and the new keys beside it, without
concatenating the cache: shapes stay static and no cache copy is made, which
is what an exported (ONNX) or compiled step needs. :func:`attention_in_cache`
also writes the new keys into the cache, in place; exported to ONNX it is one
ONNX Runtime ``GroupQueryAttention`` node, which writes into the cache buffer
it reads and attends over the filled positions only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.onnx import symbolic_helper


def causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_past: int, dropout: float = 0.0) -> torch.Tensor:
    """Attention of ``t`` new queries ``[B, H, t, hd]`` over ``n_past + t`` keys
    ``[B, KV, n_past + t, hd]``, each query seeing the past and the new keys up
    to its own position (``dropout``: of the attention weights, for training)."""
    k, v = grouped(k, q.size(1)), grouped(v, q.size(1))
    t = q.size(2)
    if n_past == 0:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
    if t == 1:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout)
    allowed = torch.ones(t, n_past + t, dtype=torch.bool, device=q.device).tril(diagonal=n_past)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, dropout_p=dropout)


def grouped(kv: torch.Tensor, heads: int) -> torch.Tensor:
    """Keys or values ``[B, KV, n, hd]`` for ``heads`` query heads: with grouped-query
    attention each key/value head serves ``heads / KV`` consecutive query heads
    (repeated here, which works in every exporter; caches keep the ``KV`` heads)."""
    return kv if kv.size(1) == heads else kv.repeat_interleave(heads // kv.size(1), dim=1)


def attention_past_and_new(
    q: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: torch.Tensor
) -> torch.Tensor:
    """Attention of ``t`` new queries ``[B, H, t, hd]`` over the first ``start``
    positions of a cache ``[B, H, C, hd]`` and, causally, the new keys ``[B, H, t, hd]``.
    The same numbers as :func:`causal_attention` over the concatenated keys."""
    past_k, past_v, k, v = (grouped(x, q.size(1)) for x in (past_k, past_v, k, v))
    capacity, t = past_k.size(2), q.size(2)
    scale = q.size(-1) ** -0.5
    past_scores = torch.matmul(q, past_k.transpose(-1, -2)) * scale  # (B, H, t, C)
    valid = torch.arange(capacity, device=q.device) < start
    past_scores = past_scores.masked_fill(~valid, float("-inf"))
    new_scores = torch.matmul(q, k.transpose(-1, -2)) * scale  # (B, H, t, t)
    positions = torch.arange(t, device=q.device)
    new_scores = new_scores.masked_fill(positions[None, :] > positions[:, None], float("-inf"))
    weights = torch.softmax(torch.cat((past_scores, new_scores), dim=-1).float(), dim=-1).type_as(q)
    return torch.matmul(weights[..., :capacity], past_v) + torch.matmul(weights[..., capacity:], v)


def written_at(cache: torch.Tensor, new: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """``cache [B, KV, C, hd]`` with ``new [B, KV, t, hd]`` written, in place, at positions ``start .. start+t-1``."""
    return cache.index_copy_(2, start + torch.arange(new.size(2), device=new.device), new)


def attention_in_cache(
    q: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor, k: torch.Tensor, v: torch.Tensor, start: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`attention_past_and_new`, after writing the new keys and values into
    the caches (in place) at ``start``; returns the attention and the caches.
    In an ONNX export, ONNX Runtime's ``GroupQueryAttention``."""
    if torch.onnx.is_in_onnx_export():
        return _GroupQueryAttention.apply(q, past_k, past_v, k, v, start, int(q.size(1)))
    y = attention_past_and_new(q, past_k, past_v, k, v, start)
    return y, written_at(past_k, k, start), written_at(past_v, v, start)


class _GroupQueryAttention(torch.autograd.Function):
    """:func:`attention_in_cache` as the ``com.microsoft`` operator
    ``GroupQueryAttention``: one node per layer instead of a score, mask and
    softmax chain over the whole capacity; the caches it returns share the
    buffers of the past inputs when the caller binds them so (the decoder does)."""

    @staticmethod
    def forward(
        ctx: object,
        q: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        start: torch.Tensor,
        heads: int,
    ) -> tuple:
        y = attention_past_and_new(q, past_k, past_v, k, v, start)
        return y, written_at(past_k.clone(), k, start), written_at(past_v.clone(), v, start)

    @staticmethod
    def symbolic(g: object, q: object, past_k: object, past_v: object, k: object, v: object, start: object, heads: int) -> tuple:
        _, kv_heads, _, head_dim = symbolic_helper._get_tensor_sizes(past_k)  # the cache's sizes are static

        def constant(values: list[int]) -> object:
            return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))

        def rows(x: object) -> object:  # [B, H, t, hd] -> [B, t, H * hd], the operator's layout
            return g.op("Reshape", g.op("Transpose", x, perm_i=[0, 2, 1, 3]), constant([0, 0, -1]))

        shape = g.op("Shape", q)
        total = g.op("Add", start, g.op("Gather", shape, constant([2]), axis_i=0))  # [1]: positions after this step
        last = g.op("Cast", g.op("Sub", total, constant([1])), to_i=6)  # int32, the operator's seqlens_k
        seqlens = g.op("Expand", last, g.op("Slice", shape, constant([0]), constant([1])))  # [B]
        total_scalar = g.op("Cast", g.op("Squeeze", total, constant([0])), to_i=6)
        out, present_k, present_v = g.op(
            "com.microsoft::GroupQueryAttention",
            rows(q),
            rows(k),
            rows(v),
            past_k,
            past_v,
            seqlens,
            total_scalar,
            num_heads_i=heads,
            kv_num_heads_i=kv_heads,
            scale_f=head_dim**-0.5,
            outputs=3,
        )
        out.setType(q.type().with_sizes(None))
        present_k.setType(past_k.type())
        present_v.setType(past_v.type())
        y = g.op("Transpose", g.op("Reshape", out, constant([0, 0, heads, head_dim])), perm_i=[0, 2, 1, 3])
        return y, present_k, present_v
