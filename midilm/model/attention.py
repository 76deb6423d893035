"""Causal attention of new positions over cached ones, in the two forms decoding needs.

:func:`causal_attention` attends over keys that already hold the new positions
(the training path and the in-place KV cache, with PyTorch's fused kernel).
:func:`attention_past_and_new` reads a fixed-capacity cache of which only the
first ``start`` positions are valid, and the new keys beside it, without
concatenating the cache: shapes stay static and no cache copy is made, which
is what a compiled step needs. :func:`exported_attention` is the same in an
ONNX export: one ONNX Runtime ``GroupQueryAttention`` node, which also writes
the new positions into the cache buffer it reads and attends over the filled
positions only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.onnx import symbolic_helper

from midilm.model.rotary import Unrotated, rotary_tables


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


ROTARY_HEAD_MULTIPLE = 16
"""``GroupQueryAttention`` rotates heads whose size is a multiple of this; others are rotated before it."""


def exported_attention(
    q: torch.Tensor,
    past_k: torch.Tensor,
    past_v: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    lengths: tuple[torch.Tensor, torch.Tensor],
    unrotated: Unrotated | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """In an ONNX export, :func:`attention_past_and_new` as ONNX Runtime's
    ``GroupQueryAttention``, which also writes the new keys and values into the
    caches: returns the attention and the caches as written. ``lengths`` come
    from :func:`operator_lengths` (computed once for all layers); given the
    ``unrotated`` projections (and heads of a multiple of 16) the operator
    applies the rotary positions itself."""
    seqlens, total = lengths
    if unrotated is None or past_k.size(3) % ROTARY_HEAD_MULTIPLE:
        return _GroupQueryAttention.apply(q, past_k, past_v, k, v, seqlens, total, int(q.size(1)), None, None)
    cos, sin = rotary_tables(0, past_k.size(2), past_k.size(3), unrotated.base, q.device)  # every position of the cache
    return _GroupQueryAttention.apply(q, past_k, past_v, k, v, seqlens, total, int(q.size(1)), cos, sin, *unrotated.rows)


def operator_lengths(start: torch.Tensor, q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``GroupQueryAttention``'s lengths for new queries ``[B, H, t, hd]`` after
    ``start`` cached positions: each row's last position (int32 ``[B]``) and the
    positions after the step (int32 scalar)."""
    total = start + q.size(2)
    return (total - 1).to(torch.int32).expand(q.size(0)), total.to(torch.int32)


class _GroupQueryAttention(torch.autograd.Function):
    """:func:`exported_attention` as the ``com.microsoft`` operator
    ``GroupQueryAttention``: one node per layer instead of a score, mask and
    softmax chain over the whole capacity; the caches it returns share the
    buffers of the past inputs when the caller binds them so (the decoder does).
    With rotary tables and the unrotated projections (``rows``) it rotates the
    new queries and keys itself, at positions ``start ..``."""

    @staticmethod
    def forward(
        ctx: object,
        q: torch.Tensor,
        past_k: torch.Tensor,
        past_v: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        seqlens: torch.Tensor,
        total: torch.Tensor,
        heads: int,
        cos: torch.Tensor | None,
        sin: torch.Tensor | None,
        *rows: torch.Tensor,
    ) -> tuple:
        start = total.long() - q.size(2)
        positions = start + torch.arange(q.size(2), device=q.device)
        y = attention_past_and_new(q, past_k, past_v, k, v, start)
        return y, past_k.index_copy(2, positions, k), past_v.index_copy(2, positions, v)

    @staticmethod
    def symbolic(
        g: object,
        q: object,
        past_k: object,
        past_v: object,
        k: object,
        v: object,
        seqlens: object,
        total: object,
        heads: int,
        cos: object,
        sin: object,
        *rows: object,
    ) -> tuple:
        _, kv_heads, _, head_dim = symbolic_helper._get_tensor_sizes(past_k)  # the cache's sizes are static

        def constant(values: list[int]) -> object:
            return g.op("Constant", value_t=torch.tensor(values, dtype=torch.int64))

        def as_rows(x: object) -> object:  # [B, H, t, hd] -> [B, t, H * hd], the operator's layout
            return g.op("Reshape", g.op("Transpose", x, perm_i=[0, 2, 1, 3]), constant([0, 0, -1]))

        if not rows:
            inputs, rotary = [as_rows(q), as_rows(k), as_rows(v)], {}
        else:
            empty = g.op("prim::Constant").setType(torch._C.OptionalType.ofTensor())  # an omitted input
            inputs = [rows[0], empty, empty] if len(rows) == 1 else list(rows)  # packed: queries, keys, values in one
            rotary = {"do_rotary_i": 1, "rotary_interleaved_i": 0}
        extra = [cos, sin] if rows else []
        out, present_k, present_v = g.op(
            "com.microsoft::GroupQueryAttention",
            *inputs,
            past_k,
            past_v,
            seqlens,
            total,
            *extra,
            num_heads_i=heads,
            kv_num_heads_i=kv_heads,
            scale_f=head_dim**-0.5,
            outputs=3,
            **rotary,
        )
        out.setType(q.type().with_sizes(None))
        present_k.setType(past_k.type())
        present_v.setType(past_v.type())
        y = g.op("Transpose", g.op("Reshape", out, constant([0, 0, heads, head_dim])), perm_i=[0, 2, 1, 3])
        return y, present_k, present_v
