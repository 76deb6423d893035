"""``hier``: an event-level transformer with a small token-level decoder.

An event's 8 token embeddings are summed into one vector (PAD adds nothing),
and the event-level transformer runs over events, so a context of 512 events
costs what 512 tokens cost in ``gpt`` while holding 8x more music. The state
of events ``<= n`` then starts a short causal sequence ``[state_n, e(t_0), ...,
e(t_6)]`` of event ``n+1``'s tokens, from which the token-level transformer
predicts ``t_0 .. t_7``. Both levels use the ``gpt`` block; the token level's
embedding is tied to the output layer.
"""

from __future__ import annotations

import torch
from torch import nn

from midilm import vocab
from midilm.model.base import EventModel
from midilm.model.config import ModelConfig, swiglu_hidden_size
from midilm.model.kv_cache import KVCache
from midilm.model.layers import BLOCK_PROJECTIONS, BlockStack, check_rotary_heads, init_weights, stack_flops_per_position


class HierModel(EventModel):
    """The ``hier`` architecture: its config rules, sizes and modules."""

    lora_targets = BLOCK_PROJECTIONS

    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        check_rotary_heads(config.d_model, config.n_heads, "n_heads")
        check_rotary_heads(config.d_model, config.token_heads or config.n_heads, "token_heads")

    @classmethod
    def default_sizes(cls, config: ModelConfig) -> dict[str, int]:
        d_ff = config.d_ff or swiglu_hidden_size(config.d_model)
        return {
            "d_ff": d_ff,
            "token_layers": config.token_layers or max(1, config.n_layers // 3),
            "token_heads": config.token_heads or config.n_heads,
            "token_d_ff": config.token_d_ff or d_ff,
        }

    @classmethod
    def flops_per_token(cls, config: ModelConfig, window_events: int) -> float:
        # the event level runs once per event (8 tokens), the token level once per token
        c = config.resolved()
        event_level = stack_flops_per_position(c.d_model, c.d_ff, c.n_layers, window_events)
        token_level = stack_flops_per_position(c.d_model, c.token_d_ff, c.token_layers, vocab.EVENT_LEN) + 6 * c.vocab_size * c.d_model
        return event_level / vocab.EVENT_LEN + token_level

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d_model = config.d_model
        self.event_embed = nn.Embedding(config.vocab_size, d_model, padding_idx=vocab.PAD)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.event_stack = BlockStack(d_model, config.n_heads, config.d_ff, config.n_layers, config.dropout, config.rope_base)
        self.token_embed = nn.Embedding(config.vocab_size, d_model)
        self.token_stack = BlockStack(d_model, config.token_heads, config.token_d_ff, config.token_layers, config.dropout, config.rope_base)
        self.lm_head = nn.Linear(d_model, config.vocab_size, bias=False)
        init_weights(self, config.n_layers)
        init_weights(self.token_stack, config.token_layers)
        self.lm_head.weight = self.token_embed.weight

    def encode_events(self, events: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Event states ``[B, n, d]`` of events ``[B, n, 8]`` (continuing the cached ones)."""
        x = self.embed_dropout(self.event_embed(events).sum(dim=-2))  # (B, n, d)
        return self.event_stack(x, cache)

    def _token_hidden(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        leading = states.shape[:-1]
        x = torch.cat((states.unsqueeze(-2), self.embed_dropout(self.token_embed(tokens))), dim=-2)  # (..., j+1, d)
        hidden = self.token_stack(x.reshape(-1, x.size(-2), x.size(-1)))  # (prod(leading), j+1, d)
        return hidden.view(*leading, x.size(-2), -1)

    def new_cache(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        return self.event_stack.new_cache(batch_size, self.context_positions, device, dtype)
