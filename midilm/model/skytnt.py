"""``skytnt``: SkyTNT's midi-model (``MIDIModel``) as a midilm architecture.

SkyTNT's model is an event-level model like ``hier``: the 8 token embeddings
of an event are summed, a LLaMA stack (``net``) runs over events, and a second,
smaller LLaMA stack (``net_token``) decodes the next event's tokens from
``[state, e(t_0), ..., e(t_6)]``; an untied ``lm_head`` gives the logits. The
modules here carry the names of SkyTNT's state dict (``net.layers.0.self_attn.q_proj``,
``net_token.norm``, ``lm_head``), so its Hub folders load without conversion and
peft adapter keys name these modules directly.

Everything LLaMA reads from its config is read from :class:`ModelConfig`:
head size, key/value heads (grouped-query attention), RMSNorm epsilon and the
rotary base of each stack; nothing is fixed here. Dropout, which LLaMA applies
to attention weights only (``attention_dropout``), is ``config.dropout``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from midilm import vocab
from midilm.errors import ConfigError
from midilm.model.attention import causal_attention
from midilm.model.base import EventModel
from midilm.model.config import ModelConfig
from midilm.model.kv_cache import KVCache
from midilm.model.layers import RMSNorm, init_weights, run_layers
from midilm.model.rotary import apply_rotary

DEFAULT_NORM_EPS = 1e-6
"""LLaMA's default ``rms_norm_eps``, for models built from a preset."""
TOKEN_LEVEL_SHARE = 4
"""SkyTNT derives its token decoder from the event level: a quarter of the layers, heads and MLP size."""
PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
PUBLISHED_SHAPES: dict[str, dict[str, int]] = {
    "tv2o-medium": {"d_model": 1024, "n_heads": 16, "n_layers": 12, "d_ff": 4096, "context_events": 4096},
    "tv2o-large": {"d_model": 1024, "n_heads": 16, "n_layers": 24, "d_ff": 4096, "context_events": 4096},
}
"""SkyTNT's published model shapes (``MIDIModelConfig.from_name``); the token decoder follows
from :data:`TOKEN_LEVEL_SHARE`, everything else is LLaMA's default, as in SkyTNT's configs."""


@dataclass(frozen=True)
class StackShape:
    """The sizes of one LLaMA stack, read from a resolved config: the event level (``net``) or the token level (``net_token``)."""

    heads: int
    kv_heads: int
    head_dim: int
    d_ff: int
    layers: int
    rope_base: float

    @classmethod
    def of(cls, config: ModelConfig, *, token_level: bool) -> StackShape:
        if token_level:
            return cls(
                config.token_heads,
                config.token_kv_heads,
                config.token_head_dim,
                config.token_d_ff,
                config.token_layers,
                config.token_rope_base,
            )
        return cls(config.n_heads, config.kv_heads, config.head_dim, config.d_ff, config.n_layers, config.rope_base)

    def flops_per_position(self, d_model: int, context: int) -> float:
        """Training FLOPs per position: 6 per weight and ``12 * heads * head_dim * context``
        per layer for attention (the PaLM estimate)."""
        weights = 2 * d_model * self.heads * self.head_dim + 2 * d_model * self.kv_heads * self.head_dim + 3 * d_model * self.d_ff
        return self.layers * (6 * weights + 12 * self.heads * self.head_dim * context)


class LlamaAttention(nn.Module):
    """Multi-head attention with separate projections and ``kv_heads`` key/value heads."""

    def __init__(self, d_model: int, n_heads: int, kv_heads: int, head_dim: int, dropout: float) -> None:
        super().__init__()
        self.n_heads, self.kv_heads, self.head_dim, self.dropout = n_heads, kv_heads, head_dim, dropout
        self.q_proj = nn.Linear(d_model, n_heads * head_dim, bias=False)
        self.k_proj = nn.Linear(d_model, kv_heads * head_dim, bias=False)
        self.v_proj = nn.Linear(d_model, kv_heads * head_dim, bias=False)
        self.o_proj = nn.Linear(n_heads * head_dim, d_model, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache | None, layer: int) -> torch.Tensor:
        batch, length, _ = x.shape
        q = self.q_proj(x).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)  # (B, H, T, hd)
        k = self.k_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)  # (B, KV, T, hd)
        v = self.v_proj(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
        if cache is None:  # grouped heads (kv_heads < n_heads) are expanded by the attention functions
            y = causal_attention(q, k, v, 0, self.dropout if self.training else 0.0)  # (B, H, T, hd)
        else:
            y = cache.attend(layer, q, k, v)
        return self.o_proj(y.transpose(1, 2).reshape(batch, length, self.n_heads * self.head_dim))


class LlamaMLP(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d_model, d_ff, bias=False)
        self.up_proj = nn.Linear(d_model, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaLayer(nn.Module):
    """A pre-norm decoder layer: attention, then the gated MLP, each added to the stream."""

    def __init__(self, d_model: int, n_heads: int, kv_heads: int, head_dim: int, d_ff: int, eps: float, dropout: float) -> None:
        super().__init__()
        self.self_attn = LlamaAttention(d_model, n_heads, kv_heads, head_dim, dropout)
        self.mlp = LlamaMLP(d_model, d_ff)
        self.input_layernorm = RMSNorm(d_model, eps)
        self.post_attention_layernorm = RMSNorm(d_model, eps)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), rope, cache, layer)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaStack(nn.Module):
    """A LLaMA model without its head (``embed_tokens``, ``layers``, ``norm``), fed
    with vectors ``[B, T, d]``: SkyTNT embeds events and tokens itself."""

    def __init__(self, config: ModelConfig, shape: StackShape) -> None:
        super().__init__()
        self.head_dim, self.kv_heads, self.rope_base = shape.head_dim, shape.kv_heads, shape.rope_base
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model, padding_idx=vocab.PAD)
        self.layers = nn.ModuleList(
            LlamaLayer(config.d_model, shape.heads, shape.kv_heads, shape.head_dim, shape.d_ff, config.norm_eps, config.dropout)
            for _ in range(shape.layers)
        )
        self.norm = RMSNorm(config.d_model, config.norm_eps)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Positions continue after the cached ones (from 0 without a cache)."""
        return self.norm(run_layers(self.layers, x, self.head_dim, self.rope_base, cache))

    def new_cache(self, batch_size: int, capacity: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        return KVCache(len(self.layers), batch_size, self.kv_heads, self.head_dim, capacity, device=device, dtype=dtype)


def check_heads(d_model: int, heads: int, kv_heads: int, head_dim: int, level: str) -> None:
    """Heads of one stack: without an explicit head size they split the width
    evenly; query heads share key/value heads evenly; rotary positions need an even head size."""
    if not head_dim and d_model % heads:
        raise ConfigError(f"model {level}heads: d_model={d_model} does not split into {heads} heads (or set {level}head_dim)")
    if heads % (kv_heads or heads):
        raise ConfigError(f"model {level}kv_heads: {heads} query heads cannot share {kv_heads} key/value heads evenly")
    if (head_dim or d_model // heads) % 2:
        raise ConfigError(f"model {level}head_dim: rotary positions need an even head size, got {head_dim or d_model // heads}")


@dataclass
class EventInProgress:
    """The token level's KV cache of the event being sampled, and what it holds."""

    states: torch.Tensor
    tokens: torch.Tensor
    cache: KVCache


class SkyTNTModel(EventModel):
    """The ``skytnt`` architecture: SkyTNT's ``MIDIModel`` with its state-dict names."""

    lora_targets = PROJECTIONS
    _event_in_progress: EventInProgress | None = None

    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        token_heads = config.token_heads or max(1, config.n_heads // TOKEN_LEVEL_SHARE)
        check_heads(config.d_model, config.n_heads, config.kv_heads, config.head_dim, "")
        check_heads(config.d_model, token_heads, config.token_kv_heads, config.token_head_dim, "token_")

    @classmethod
    def default_sizes(cls, config: ModelConfig) -> dict[str, int | float]:
        d_ff = config.d_ff or 4 * config.d_model
        token_heads = config.token_heads or max(1, config.n_heads // TOKEN_LEVEL_SHARE)  # as SkyTNT's MIDIModelConfig.get_config
        return {
            "d_ff": d_ff,
            "head_dim": config.head_dim or config.d_model // config.n_heads,
            "kv_heads": config.kv_heads or config.n_heads,
            "token_layers": config.token_layers or max(1, config.n_layers // TOKEN_LEVEL_SHARE),
            "token_heads": token_heads,
            "token_d_ff": config.token_d_ff or max(1, d_ff // TOKEN_LEVEL_SHARE),
            "token_head_dim": config.token_head_dim or config.d_model // token_heads,
            "token_kv_heads": config.token_kv_heads or token_heads,
            "norm_eps": config.norm_eps or DEFAULT_NORM_EPS,
            "token_rope_base": config.token_rope_base or config.rope_base,
        }

    @classmethod
    def flops_per_token(cls, config: ModelConfig, window_events: int) -> float:
        # the event level runs once per event (8 tokens), the token level once per token
        c = config.resolved()
        event_level = StackShape.of(c, token_level=False).flops_per_position(c.d_model, window_events)
        token_level = StackShape.of(c, token_level=True).flops_per_position(c.d_model, vocab.EVENT_LEN)
        return event_level / vocab.EVENT_LEN + token_level + 6 * c.vocab_size * c.d_model

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.net = LlamaStack(config, StackShape.of(config, token_level=False))
        self.net_token = LlamaStack(config, StackShape.of(config, token_level=True))
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_weights(self, config.n_layers)

    def encode_events(self, events: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        return self.net(self.net.embed_tokens(events).sum(dim=-2), cache)  # (B, n, d)

    def _token_hidden(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        leading = states.shape[:-1]
        x = torch.cat((states.unsqueeze(-2), self.net_token.embed_tokens(tokens)), dim=-2)  # (..., j+1, d)
        hidden = self.net_token(x.reshape(-1, x.size(-2), x.size(-1)))  # (prod(leading), j+1, d)
        return hidden.view(*leading, x.size(-2), -1)

    def next_token_logits(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, V]`` of token ``j`` of the next event, as :class:`EventModel`'s, but
        decoding an event token by token: while the decoder asks again with the same state
        object and one more token, only that token passes through the token level, with a
        KV cache of the event's earlier tokens (as SkyTNT's own generate does). Any other
        call (the reference decoder computes a fresh state each time) starts afresh."""
        event = self._event_in_progress
        if event is None or event.states is not states or not torch.equal(event.tokens, tokens[:, :-1]) or tokens.size(1) == 0:
            cache = self.net_token.new_cache(states.size(0), vocab.EVENT_LEN, states.device, states.dtype)
            event = self._event_in_progress = EventInProgress(states, tokens[:, :0], cache)
            x = torch.cat((states.unsqueeze(1), self.net_token.embed_tokens(tokens)), dim=1)  # (B, j+1, d)
        else:
            x = self.net_token.embed_tokens(tokens[:, -1:])  # (B, 1, d)
        event.tokens = tokens
        return self.lm_head(self.net_token(x, event.cache)[:, -1])

    def new_cache(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        return self.net.new_cache(batch_size, self.context_positions, device, dtype)
