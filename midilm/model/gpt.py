"""``gpt``: a modern decoder-only transformer over the flat v2 token stream.

Besides rotary positions it embeds each token's slot within its event
(position mod 8 in an event-aligned stream), so the model knows whether it is
predicting an event type, a time or a pitch without inferring it from the
history. Input and output embeddings are tied.
"""

from __future__ import annotations

import torch
from torch import nn

from midilm import vocab
from midilm.model.base import FlatModel
from midilm.model.config import ModelConfig, swiglu_hidden_size
from midilm.model.kv_cache import KVCache
from midilm.model.layers import BLOCK_PROJECTIONS, BlockStack, check_rotary_heads, init_weights, stack_flops_per_position


class GPT(FlatModel):
    """The ``gpt`` architecture: its config rules, sizes and modules."""

    lora_targets = BLOCK_PROJECTIONS

    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        check_rotary_heads(config.d_model, config.n_heads, "n_heads")

    @classmethod
    def default_sizes(cls, config: ModelConfig) -> dict[str, int]:
        return {"d_ff": config.d_ff or swiglu_hidden_size(config.d_model)}

    @classmethod
    def flops_per_token(cls, config: ModelConfig, window_events: int) -> float:
        c = config.resolved()
        context_tokens = window_events * cls.positions_per_event
        return stack_flops_per_position(c.d_model, c.d_ff, c.n_layers, context_tokens) + 6 * c.vocab_size * c.d_model

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.token_embed = nn.Embedding(config.vocab_size, config.d_model)
        self.slot_embed = nn.Embedding(vocab.EVENT_LEN, config.d_model)
        self.embed_dropout = nn.Dropout(config.dropout)
        self.stack = BlockStack(config.d_model, config.n_heads, config.d_ff, config.n_layers, config.dropout, config.rope_base)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        init_weights(self, config.n_layers)
        self.lm_head.weight = self.token_embed.weight

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, T, V]`` for inputs ``[B, T]`` that start at an event
        boundary; ``targets`` is accepted for the shared model signature."""
        return self.lm_head(self._hidden(inputs, cache=None))  # (B, T, V)

    def next_logits(self, tokens: torch.Tensor, cache: KVCache) -> torch.Tensor:
        """Feed ``t`` tokens ``[B, t]`` that continue the cached ones; logits
        ``[B, V]`` of the token that follows them."""
        return self.lm_head(self._hidden(tokens, cache)[:, -1])

    def new_cache(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        return self.stack.new_cache(batch_size, self.context_positions, device, dtype)

    def _hidden(self, tokens: torch.Tensor, cache: KVCache | None) -> torch.Tensor:
        start = 0 if cache is None else cache.length
        slots = (start + torch.arange(tokens.size(1), device=tokens.device)) % vocab.EVENT_LEN
        x = self.embed_dropout(self.token_embed(tokens) + self.slot_embed(slots))  # (B, T, d)
        return self.stack(x, cache)  # (B, T, d)
