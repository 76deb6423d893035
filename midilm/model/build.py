"""Model construction and size figures shared by training, sampling and benchmarks."""

from __future__ import annotations

import dataclasses

from torch import nn

from midilm.errors import ConfigError
from midilm.model.base import MidilmModel
from midilm.model.config import ModelConfig
from midilm.model.registry import architecture


def build_model(config: ModelConfig) -> MidilmModel:
    """A freshly initialised model of the config's architecture; ``model.config``
    is the resolved config (every default size made explicit), which is what
    checkpoints store."""
    resolved = config.resolved()
    return architecture(resolved.arch)(resolved)


def with_vocabulary(model: MidilmModel, vocab_size: int) -> MidilmModel:
    """A copy of ``model`` whose vocabulary grows to ``vocab_size`` ids: every
    weight is kept, and the rows of the new ids (embeddings, output layer) are
    freshly initialised, so that a trained model can learn new ids (anticipation's)."""
    old_size = model.config.vocab_size
    if vocab_size < old_size:
        raise ConfigError(f"vocabulary: cannot shrink from {old_size} to {vocab_size} ids")
    grown = build_model(dataclasses.replace(model.config, vocab_size=vocab_size))
    old_state, state = model.state_dict(), grown.state_dict()
    for name, new in state.items():
        old = old_state[name]
        if old.shape == new.shape:
            new.copy_(old)
            continue
        grown_dims = [d for d, (a, b) in enumerate(zip(old.shape, new.shape, strict=True)) if a != b]
        if len(grown_dims) != 1 or (old.shape[grown_dims[0]], new.shape[grown_dims[0]]) != (old_size, vocab_size):
            raise ConfigError(f"vocabulary: {name} changes from {tuple(old.shape)} to {tuple(new.shape)}, not along the vocabulary")
        new.narrow(grown_dims[0], 0, old_size).copy_(old)
    grown.load_state_dict(state)
    return grown.to(next(model.parameters()).device).train(model.training)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(config: ModelConfig, window_events: int) -> float:
    """Training FLOPs per token of a window of ``window_events`` events (see
    :meth:`midilm.model.base.MidilmModel.flops_per_token`)."""
    return architecture(config.arch).flops_per_token(config, window_events)
