"""Causal attention of new positions over cached ones, in the two forms decoding needs.

:func:`causal_attention` attends over keys that already hold the new positions
(the training path and the in-place KV cache, with PyTorch's fused kernel).
:func:`attention_past_and_new` reads a fixed-capacity cache of which only the
first ``start`` positions are valid, and the new keys beside it, without
writing or concatenating the cache: shapes stay static and no cache copy is
made, which is what an exported (ONNX) or compiled step needs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
