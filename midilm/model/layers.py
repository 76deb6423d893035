"""The transformer block shared by ``gpt`` and both levels of ``hier``.

Pre-norm RMSNorm, rotary positions, SwiGLU and PyTorch's fused
``scaled_dot_product_attention``. Every forward takes an optional
:class:`~midilm.model.kv_cache.KVCache`; without one it is the training path
(causal attention over the whole input), with one it appends the new positions
to the cache and attends over everything cached. Forward passes have no
data-dependent Python branches, so they compile with ``torch.compile``;
norms and rotary products run in float32, so they are safe under bf16 autocast.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from midilm.errors import ConfigError
from midilm.model.attention import causal_attention
from midilm.model.kv_cache import KVCache
from midilm.model.rotary import Unrotated, apply_rotary, rotary_tables

INIT_STD = 0.02
NORM_EPS = 1e-5
BLOCK_PROJECTIONS = ("qkv", "proj", "gate_up", "down")
"""The linear layers of a :class:`Block`: its attention and MLP projections (what LoRA adapts)."""


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = NORM_EPS) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.rms_norm(x.float(), self.weight.shape, self.weight.float(), self.eps).type_as(x)


class Attention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, rope_base: float) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.rope_base = rope_base
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=False)
        self.proj = nn.Linear(d_model, d_model, bias=False)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache | None, layer: int) -> torch.Tensor:
        batch, length, width = x.shape
        rows = self.qkv(x)
        qkv = rows.view(batch, length, 3, self.n_heads, width // self.n_heads).permute(2, 0, 3, 1, 4)  # (3, B, H, T, hd)
        q, k = apply_rotary(qkv[:2], *rope)
        v = qkv[2]
        if cache is None:
            y = causal_attention(q, k, v, 0)  # (B, H, T, hd)
        else:
            y = cache.attend(layer, q, k, v, Unrotated((rows,), self.rope_base))
        return self.proj(y.transpose(1, 2).reshape(batch, length, width))


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_ff: int) -> None:
        super().__init__()
        self.gate_up = nn.Linear(d_model, 2 * d_ff, bias=False)
        self.down = nn.Linear(d_ff, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float, rope_base: float) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(d_model)
        self.attn = Attention(d_model, n_heads, rope_base)
        self.mlp_norm = RMSNorm(d_model)
        self.mlp = SwiGLU(d_model, d_ff)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor], cache: KVCache | None, layer: int) -> torch.Tensor:
        x = x + self._drop(self.attn(self.attn_norm(x), rope, cache, layer))
        return x + self._drop(self.mlp(self.mlp_norm(x)))

    def _drop(self, x: torch.Tensor) -> torch.Tensor:
        # skipped outright in eval mode: sampling calls this twice a layer for every token
        return self.dropout(x) if self.training else x


class BlockStack(nn.Module):
    """``n_layers`` blocks and a final norm over a sequence of vectors ``[B, T, d]``."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, n_layers: int, dropout: float, rope_base: float) -> None:
        super().__init__()
        self.head_dim = d_model // n_heads
        self.n_heads = n_heads
        self.rope_base = rope_base
        self.blocks = nn.ModuleList(Block(d_model, n_heads, d_ff, dropout, rope_base) for _ in range(n_layers))
        self.norm = RMSNorm(d_model)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """Positions continue after the cached ones (from 0 without a cache)."""
        return self.norm(run_layers(self.blocks, x, self.head_dim, self.rope_base, cache))

    def new_cache(self, batch_size: int, capacity: int, device: torch.device, dtype: torch.dtype) -> KVCache:
        return KVCache(len(self.blocks), batch_size, self.n_heads, self.head_dim, capacity, device=device, dtype=dtype)


def run_layers(layers: nn.ModuleList, x: torch.Tensor, head_dim: int, rope_base: float, cache: KVCache | None) -> torch.Tensor:
    """Pass ``x [B, T, d]`` through rotary-position layers called as
    ``layer(x, rope, cache, index)``, positions continuing after the cached ones."""
    start = 0 if cache is None else cache.length
    rope = rotary_tables(start, x.size(1), head_dim, rope_base, x.device)
    for index, layer in enumerate(layers):
        x = layer(x, rope, cache, index)
    if cache is not None:
        cache.advance(x.size(1))
    return x


def check_rotary_heads(d_model: int, n_heads: int, setting: str) -> None:
    """Rotary positions rotate pairs of a head's dimensions: heads must split the width evenly, in even sizes."""
    if d_model % n_heads or (d_model // n_heads) % 2:
        raise ConfigError(f"model {setting}: d_model={d_model} must split into {n_heads} heads of even size (rotary positions)")


def stack_flops_per_position(d_model: int, d_ff: int, n_layers: int, context: int) -> float:
    """Training FLOPs per position of a :class:`BlockStack`: 6 per weight
    (attention 4*d^2, SwiGLU 3*d*d_ff) and ``12 * d_model * context`` for attention."""
    return 6 * n_layers * (4 * d_model * d_model + 3 * d_model * d_ff) + 12 * n_layers * d_model * context


def init_weights(model: nn.Module, n_layers: int) -> None:
    """GPT-2 style: normal(0, 0.02) weights, zero biases, and the projections
    that write into the residual stream scaled by 1/sqrt(2 * n_layers) so the
    stream's variance does not grow with depth."""
    residual_std = INIT_STD / math.sqrt(2 * n_layers)
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            std = residual_std if name.endswith(("attn.proj", "mlp.down")) else INIT_STD
            nn.init.normal_(module.weight, mean=0.0, std=std)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()
