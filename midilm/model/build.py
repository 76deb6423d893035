"""Model construction and size figures shared by training, sampling and benchmarks."""

from __future__ import annotations

from torch import nn

from midilm import vocab
from midilm.model.config import ModelConfig
from midilm.model.gpt import GPT
from midilm.model.hier import HierModel
from midilm.model.seed import SeedModel

_MODEL_CLASSES: dict[str, type[nn.Module]] = {"seed": SeedModel, "gpt": GPT, "hier": HierModel}


def build_model(config: ModelConfig) -> nn.Module:
    """A freshly initialised model; ``model.config`` is the resolved config
    (every default size made explicit), which is what checkpoints store."""
    resolved = config.resolved()
    return _MODEL_CLASSES[resolved.arch](resolved)


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in model.parameters())


def flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Training FLOPs (forward + backward) per token, for MFU figures.

    Matrix products count 6 FLOPs per weight per token and attention
    ``12 * d_model * context`` per layer per token, the usual (PaLM appendix B)
    estimate that ignores causal masking; embeddings and norms are not
    counted. ``seq_len`` is in the model's positions: tokens for ``seed`` and
    ``gpt``, events for ``hier``. ``seed`` attends twice per layer.
    """
    c = config.resolved()
    d = c.d_model
    head = c.vocab_size * d
    if c.arch == "seed":
        layer_weights = 2 * 4 * d * d + 2 * d * c.d_ff
        return 6 * (c.n_layers * layer_weights + head) + 2 * 12 * c.n_layers * d * seq_len
    event_level = 6 * c.n_layers * (4 * d * d + 3 * d * c.d_ff) + 12 * c.n_layers * d * seq_len
    if c.arch == "gpt":
        return event_level + 6 * head
    token_level = 6 * (c.token_layers * (4 * d * d + 3 * d * c.token_d_ff) + head) + 12 * c.token_layers * d * vocab.EVENT_LEN
    return event_level / vocab.EVENT_LEN + token_level
