"""``seed``: the design notebook's ``MusicGPT``, reproduced faithfully.

Same modules, attribute names and default initialisation as the notebook, so
its runs can be reproduced and its ``best_model_lm.pt`` loads with the same
state-dict keys. The notebook calls ``nn.TransformerDecoder`` with its own
input as the "memory", so every layer attends twice: once to itself and once,
causally, to the embedded input. :meth:`SeedModel.next_logits` recomputes
exactly that with the layers' own weights and a KV cache for both attentions.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from midilm import vocab
from midilm.errors import CheckpointError, ConfigError
from midilm.model.base import FlatModel
from midilm.model.config import ModelConfig
from midilm.model.kv_cache import KVCache

NOTEBOOK_DROPOUT = 0.1
NOTEBOOK_POSITIONS = 576
"""The notebook trained 512-token windows with 512 + 64 learned positions (72 events)."""


class SeedCache:
    """Keys and values of the self-attention (over layer inputs) and of the
    cross-attention (over the embedded input) of every layer."""

    def __init__(self, self_attention: KVCache, cross_attention: KVCache) -> None:
        self.self_attention = self_attention
        self.cross_attention = cross_attention

    @property
    def length(self) -> int:
        return self.self_attention.length

    def advance(self, n_positions: int) -> None:
        self.self_attention.advance(n_positions)
        self.cross_attention.advance(n_positions)

    def reset(self) -> None:
        self.self_attention.reset()
        self.cross_attention.reset()


class SeedModel(FlatModel):
    """The ``seed`` architecture: the notebook's modules, sizes and initialisation."""

    preset_overrides = {"small": {"context_events": NOTEBOOK_POSITIONS // vocab.EVENT_LEN}}
    lora_targets = ("linear1", "linear2")
    """The MLP: nn.MultiheadAttention reads its projections as packed tensors, not as layers LoRA could wrap."""

    @classmethod
    def check_config(cls, config: ModelConfig) -> None:  # nn.MultiheadAttention splits the width evenly
        if config.d_model % config.n_heads:
            raise ConfigError(f"model d_model: {config.d_model} is not divisible by n_heads={config.n_heads}")

    @classmethod
    def default_sizes(cls, config: ModelConfig) -> dict[str, int]:
        return {"d_ff": config.d_ff or 4 * config.d_model}

    @classmethod
    def flops_per_token(cls, config: ModelConfig, window_events: int) -> float:
        # two attentions per layer (self and "memory"), a ReLU MLP, an untied head
        c = config.resolved()
        d = c.d_model
        layer_weights = 2 * 4 * d * d + 2 * d * c.d_ff
        context_tokens = window_events * cls.positions_per_event
        return 6 * (c.n_layers * layer_weights + c.vocab_size * d) + 2 * 12 * c.n_layers * d * context_tokens

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        d_model, max_seq_len = config.d_model, self.context_positions
        self.token_emb = nn.Embedding(config.vocab_size, d_model, padding_idx=vocab.PAD)
        self.pos_emb = nn.Embedding(max_seq_len, d_model)
        self.dropout = nn.Dropout(config.dropout)
        layer = nn.TransformerDecoderLayer(
            d_model=d_model, nhead=config.n_heads, dim_feedforward=config.d_ff, dropout=config.dropout, batch_first=True
        )
        self.transformer = nn.TransformerDecoder(layer, num_layers=config.n_layers)
        self.lm_head = nn.Linear(d_model, config.vocab_size)
        self.register_buffer("causal_mask", torch.triu(torch.ones(max_seq_len, max_seq_len), diagonal=1).bool())

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, T, V]`` for inputs ``[B, T]``, computed as the notebook does."""
        seq_len = inputs.size(1)
        positions = torch.arange(seq_len, device=inputs.device).unsqueeze(0)
        x = self.dropout(self.token_emb(inputs) + self.pos_emb(positions))
        mask = self.causal_mask[:seq_len, :seq_len]
        x = self.transformer(x, x, tgt_mask=mask, memory_mask=mask)
        return self.lm_head(x)

    def new_cache(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> SeedCache:
        config = self.config

        def make() -> KVCache:
            return KVCache(
                config.n_layers,
                batch_size,
                config.n_heads,
                config.d_model // config.n_heads,
                self.context_positions,
                device=device,
                dtype=dtype,
            )

        return SeedCache(make(), make())

    def next_logits(self, tokens: torch.Tensor, cache: SeedCache) -> torch.Tensor:
        """Feed ``t`` tokens ``[B, t]`` that continue the cached ones; logits
        ``[B, V]`` of the token that follows them, as :meth:`forward` over the
        whole history gives them in eval mode (this path has no dropout)."""
        start = cache.length
        positions = start + torch.arange(tokens.size(1), device=tokens.device)
        memory = self.token_emb(tokens) + self.pos_emb(positions)  # (B, t, d)
        x = memory
        for index, layer in enumerate(self.transformer.layers):
            x = layer.norm1(x + _cached_attention(layer.self_attn, x, x, cache.self_attention, index))
            x = layer.norm2(x + _cached_attention(layer.multihead_attn, x, memory, cache.cross_attention, index))
            x = layer.norm3(x + layer.linear2(layer.activation(layer.linear1(x))))
        cache.advance(tokens.size(1))
        return self.lm_head(x[:, -1])


def _cached_attention(
    attention: nn.MultiheadAttention, query_input: torch.Tensor, key_input: torch.Tensor, cache: KVCache, layer: int
) -> torch.Tensor:
    """``nn.MultiheadAttention`` with a causal mask, from its packed weights,
    attending over the cached keys and values as well as the new ones."""
    batch, length, width = query_input.shape
    heads = attention.num_heads
    w_q, w_k, w_v = attention.in_proj_weight.chunk(3)
    b_q, b_k, b_v = attention.in_proj_bias.chunk(3)

    def split_heads(x: torch.Tensor) -> torch.Tensor:
        return x.view(batch, length, heads, width // heads).transpose(1, 2)  # (B, H, t, hd)

    q = split_heads(F.linear(query_input, w_q, b_q))
    y = cache.attend(layer, q, split_heads(F.linear(key_input, w_k, b_k)), split_heads(F.linear(key_input, w_v, b_v)))
    return attention.out_proj(y.transpose(1, 2).reshape(batch, length, width))


_LAYER_KEY = re.compile(r"^transformer\.layers\.(\d+)\.")
_LOAD_ERRORS = (OSError, RuntimeError, EOFError, ValueError, pickle.UnpicklingError)


def load_notebook_checkpoint(path: str | Path, *, n_heads: int = 8) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Read the design notebook's ``best_model_lm.pt`` (a dict holding
    ``model_state_dict``, or a bare state dict) as a ``seed`` config and its weights.

    Sizes come from the tensor shapes; the head count cannot (attention weights
    are packed the same way for any count), so it is a parameter, the
    notebook's 8 by default. Refuses files of another vocabulary or layout.
    """
    path = Path(path)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as exc:
        raise CheckpointError(f"{path}: no such checkpoint file") from exc
    except _LOAD_ERRORS as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc
    if not isinstance(blob, dict):
        raise CheckpointError(f"{path}: expected a dict with model_state_dict, got {type(blob).__name__}")
    state = blob.get("model_state_dict", blob)
    if not isinstance(state, dict) or "token_emb.weight" not in state:
        raise CheckpointError(f"{path}: not a notebook MusicGPT checkpoint (no model_state_dict with token_emb.weight)")
    vocab_size, d_model = state["token_emb.weight"].shape
    for found in (vocab_size, blob.get("vocab_size", vocab_size)):
        if found != vocab.VOCAB_SIZE:
            raise CheckpointError(f"{path}: made for a vocabulary of {found} tokens; midilm's v2 vocabulary has {vocab.VOCAB_SIZE}")
    layer_indices = {int(m.group(1)) for key in state if (m := _LAYER_KEY.match(key))}
    if "pos_emb.weight" not in state:
        raise CheckpointError(f"{path}: MusicGPT weights lack pos_emb.weight")
    positions = state["pos_emb.weight"].shape[0]
    if positions % vocab.EVENT_LEN:
        raise CheckpointError(f"{path}: a position table of {positions} rows is not a whole number of {vocab.EVENT_LEN}-token events")
    try:
        config = ModelConfig(
            arch="seed",
            d_model=d_model,
            n_heads=n_heads,
            n_layers=len(layer_indices),
            d_ff=state["transformer.layers.0.linear1.weight"].shape[0],
            context_events=positions // vocab.EVENT_LEN,
            dropout=NOTEBOOK_DROPOUT,
            vocab_size=vocab_size,
        ).resolved()
    except KeyError as exc:
        raise CheckpointError(f"{path}: MusicGPT weights lack {exc.args[0]}") from exc
    except ConfigError as exc:
        raise CheckpointError(f"{path}: {exc}") from exc
    _check_layout(path, config, state)
    return config, dict(state)


def _check_layout(path: Path, config: ModelConfig, state: dict[str, torch.Tensor]) -> None:
    """Compare names and shapes with a model built (without memory) from ``config``."""
    with torch.device("meta"):
        expected = {key: tuple(value.shape) for key, value in SeedModel(config).state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the notebook's MusicGPT: missing {missing[:5]}, unexpected {unexpected[:5]}")
    wrong = [f"{key} {tuple(state[key].shape)} != {shape}" for key, shape in expected.items() if tuple(state[key].shape) != shape]
    if wrong:
        raise CheckpointError(f"{path}: weight shapes do not match the notebook's MusicGPT: {'; '.join(wrong[:5])}")
