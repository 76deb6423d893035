"""Model construction and size figures shared by training, sampling and benchmarks."""

from __future__ import annotations

from torch import nn

from midilm.model.base import MidilmModel
from midilm.model.config import ModelConfig
from midilm.model.registry import architecture


def build_model(config: ModelConfig) -> MidilmModel:
    """A freshly initialised model of the config's architecture; ``model.config``
    is the resolved config (every default size made explicit), which is what
    checkpoints store."""
    resolved = config.resolved()
    return architecture(resolved.arch)(resolved)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(config: ModelConfig, window_events: int) -> float:
    """Training FLOPs per token of a window of ``window_events`` events (see
    :meth:`midilm.model.base.MidilmModel.flops_per_token`)."""
    return architecture(config.arch).flops_per_token(config, window_events)
