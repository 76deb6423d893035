"""LoRA: low-rank adapters on a frozen model's linear layers (Hu et al. 2021, as peft implements it).

A wrapped layer computes ``x W^T + b + scaling * B(A(dropout(x)))`` with the
base ``W``, ``b`` frozen, ``A`` of shape ``[rank, in]`` drawn like a linear layer's
weight and ``B`` ``[out, rank]`` zero, so training starts from the base model
exactly; ``scaling`` is ``alpha / rank`` (``alpha / sqrt(rank)`` with rsLoRA).

The wrapper keeps the base weight under the layer's own name and adds
``lora_A``/``lora_B`` beside it, so the model's state-dict keys are the base
model's plus exactly the keys of a peft adapter file
(``net.layers.0.self_attn.q_proj.lora_A.weight``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from midilm.errors import ConfigError

ADAPTER_KEYS = (".lora_A.", ".lora_B.")


class LoRALinear(nn.Module):
    """A frozen linear layer with a trainable low-rank update."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight = base.weight
        self.bias = base.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        factory = {"device": base.weight.device, "dtype": base.weight.dtype}
        self.lora_A = nn.Linear(self.in_features, rank, bias=False, **factory)
        self.lora_B = nn.Linear(rank, self.out_features, bias=False, **factory)
        self.lora_dropout = nn.Dropout(dropout)
        self.scaling = alpha / rank
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))  # what nn.Linear and peft draw
        nn.init.zeros_(self.lora_B.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.lora_B(self.lora_A(self.lora_dropout(x) if self.training else x))
        return F.linear(x, self.weight, self.bias) + update * self.scaling

    def merged(self) -> nn.Linear:
        """A plain linear layer with the update folded into its weight."""
        layer = nn.Linear(
            self.in_features, self.out_features, bias=self.bias is not None, device=self.weight.device, dtype=self.weight.dtype
        )
        with torch.no_grad():
            layer.weight.copy_(merged_weight(self.weight, self.lora_A.weight, self.lora_B.weight, self.scaling))
            if self.bias is not None:
                layer.bias.copy_(self.bias)
        return layer


def merged_weight(weight: torch.Tensor, a: torch.Tensor, b: torch.Tensor, scaling: float) -> torch.Tensor:
    """``W + scaling * B A``, computed in float32 and returned in ``W``'s dtype."""
    return (weight.double() + scaling * (b.double() @ a.double())).to(weight.dtype)


def linear_layers(model: nn.Module) -> dict[str, nn.Linear]:
    """Every plain linear layer of a model by its full name."""
    return {name: module for name, module in model.named_modules() if type(module) is nn.Linear}


def add_adapters(model: nn.Module, rank: int, alpha: float, targets: Iterable[str], dropout: float = 0.0) -> list[str]:
    """Freeze ``model`` and wrap each linear layer whose own name is in ``targets``;
    returns the wrapped layers' full names. Refuses a target that names no linear layer."""
    if rank < 1:
        raise ConfigError(f"lora: the rank must be at least 1, got {rank}")
    targets = tuple(targets)
    layers = linear_layers(model)
    chosen = [name for name in layers if name.rsplit(".", 1)[-1] in targets]
    unknown = sorted(set(targets) - {name.rsplit(".", 1)[-1] for name in chosen})
    if unknown or not chosen:
        available = sorted({name.rsplit(".", 1)[-1] for name in layers})
        raise ConfigError(
            f"lora targets: {', '.join(unknown) or 'none given'} name no linear layer of this model; choose from {', '.join(available)}"
        )
    model.requires_grad_(False)
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name)
        setattr(parent, child, LoRALinear(getattr(parent, child), rank, alpha, dropout))
    return chosen


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapter tensors of a model with adapters, under peft's key names."""
    return {key: value for key, value in model.state_dict().items() if any(part in key for part in ADAPTER_KEYS)}


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base layer, in place; returns the model."""
    for name, module in list(model.named_modules()):
        if isinstance(module, LoRALinear):
            parent_name, _, child = name.rpartition(".")
            setattr(model.get_submodule(parent_name), child, module.merged())
    return model
