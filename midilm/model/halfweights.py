"""Float16 weights for decoding on a CPU.

Sampling feeds one token at a time, so every step reads every weight matrix
once for a matrix-vector product: on a CPU that is bound by memory traffic, not
arithmetic. Keeping the linear layers' weights in float16 halves the bytes read
(the small model then fits the last-level cache) and makes decoding about 1.5x
faster; logits move by about 1e-3. Norms, attention and embeddings stay in the
model's dtype, and the training weights are not touched (this is a copy).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


class HalfWeightLinear(nn.Module):
    """A linear layer computing with float16 weights and returning the input's dtype."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().to(torch.float16), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().to(torch.float16), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(torch.float16), self.weight, self.bias).to(x.dtype)


def with_half_weights(model: nn.Module) -> nn.Module:
    """An eval-mode copy of ``model`` whose linear layers hold float16 weights.

    Linear layers that ``nn.MultiheadAttention`` (the ``seed`` arch) reads by
    attribute instead of calling are left as they are.
    """
    half = copy.deepcopy(model).eval()
    for parent in list(half.modules()):
        if isinstance(parent, nn.MultiheadAttention):
            continue
        for name, child in list(parent.named_children()):
            if type(child) is nn.Linear:
                setattr(parent, name, HalfWeightLinear(child))
    return half


def for_sampling(model: nn.Module) -> nn.Module:
    """The model to sample with: on a CPU, flat models (one full step per token)
    get float16 weights; ``hier`` runs its event level once per 8 tokens and its
    token level on small matrices, where the casts cost more than they save
    (measured on 2 CPU cores: gpt 353 -> 504 tokens/s, hier 916 -> 730)."""
    on_cpu = next(model.parameters()).device.type == "cpu"
    return with_half_weights(model) if on_cpu and model.input_kind == "tokens" else model
