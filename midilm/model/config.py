"""The model config shared by the CLI, checkpoints and the Python API, and the size presets.

One dataclass describes every architecture; fields an architecture does not
use are ignored by it. Zero in a size field means "the architecture's default",
which :meth:`ModelConfig.resolved` asks the architecture for, so a checkpoint
always stores explicit sizes and is rebuilt from them, never from code defaults.

Every length a user sets counts **events** (8 tokens each): a flat model's
context of ``context_events`` events is ``8 * context_events`` token positions,
an event-level model's is ``context_events`` positions. Configs written before
this unit existed (``max_seq_len`` in positions) are read by :func:`upgrade_model_dict`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from midilm import vocab
from midilm.errors import ConfigError
from midilm.model.registry import ARCHS, architecture

DEFAULT_MEANING_SIZES = (
    "d_ff",
    "token_layers",
    "token_heads",
    "token_d_ff",
    "head_dim",
    "kv_heads",
    "token_head_dim",
    "token_kv_heads",
    "norm_eps",
    "token_rope_base",
)
"""Fields where 0 means "the architecture's default" (see :meth:`ModelConfig.resolved`)."""


@dataclass
class ModelConfig:
    """Architecture and sizes of a model."""

    arch: str = field(default="gpt", metadata={"help": f"architecture: {', '.join(ARCHS)} (see docs/models.md)", "choices": ARCHS})
    d_model: int = field(default=256, metadata={"help": "width of the residual stream"})
    n_heads: int = field(default=8, metadata={"help": "attention heads per layer"})
    n_layers: int = field(default=6, metadata={"help": "transformer layers (the event level for hier)"})
    d_ff: int = field(
        default=0,
        metadata={
            "help": "hidden size of the feed-forward block; 0: the architecture's default (4*d_model for seed and skytnt, about 8/3*d_model for gpt and hier)"
        },
    )
    context_events: int = field(default=64, metadata={"help": "context length in events (a flat model holds 8 tokens per event)"})
    dropout: float = field(default=0.1, metadata={"help": "dropout probability during training"})
    vocab_size: int = field(
        default=vocab.VOCAB_SIZE, metadata={"help": "output classes; at least the v2 vocabulary (a larger value pads the tables)"}
    )
    rope_base: float = field(default=10000.0, metadata={"help": "rotary position base (gpt, hier, skytnt)"})
    token_layers: int = field(
        default=0,
        metadata={
            "help": "hier, skytnt: layers of the token-level decoder; 0: the architecture's default (hier: max(1, n_layers // 3), skytnt: max(1, n_layers // 4))"
        },
    )
    token_heads: int = field(
        default=0,
        metadata={"help": "hier, skytnt: attention heads of the token-level decoder; 0: n_heads (hier), max(1, n_heads // 4) (skytnt)"},
    )
    token_d_ff: int = field(
        default=0,
        metadata={
            "help": "hier, skytnt: feed-forward size of the token-level decoder; 0: the event level's d_ff (hier), a quarter of it (skytnt)"
        },
    )
    head_dim: int = field(default=0, metadata={"help": "skytnt: size of an attention head; 0: d_model // n_heads"})
    kv_heads: int = field(
        default=0, metadata={"help": "skytnt: key/value heads (grouped-query attention when fewer than n_heads); 0: n_heads"}
    )
    token_head_dim: int = field(default=0, metadata={"help": "skytnt: head size of the token-level decoder; 0: d_model // token_heads"})
    token_kv_heads: int = field(default=0, metadata={"help": "skytnt: key/value heads of the token-level decoder; 0: token_heads"})
    norm_eps: float = field(default=0.0, metadata={"help": "skytnt: RMSNorm epsilon; 0: the architecture's default (1e-6)"})
    token_rope_base: float = field(default=0.0, metadata={"help": "skytnt: rotary position base of the token-level decoder; 0: rope_base"})

    @property
    def context_positions(self) -> int:
        """The context in the model's own positions (tokens or events)."""
        return self.context_events * architecture(self.arch).positions_per_event

    def validate(self) -> ModelConfig:
        """Raise :class:`ConfigError` naming the first setting that cannot work; return self."""
        model_class = architecture(self.arch)
        for name in ("d_model", "n_heads", "n_layers"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model {name}: must be at least 1, got {getattr(self, name)}")
        for name in DEFAULT_MEANING_SIZES:
            if getattr(self, name) < 0:
                raise ConfigError(f"model {name}: must be 0 (the default) or positive, got {getattr(self, name)}")
        if self.d_model % self.n_heads and not self.head_dim:
            raise ConfigError(f"model d_model: {self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.context_events < 2:
            raise ConfigError(f"model context_events: a context must hold at least 2 events, got {self.context_events}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model dropout: must be in [0, 1), got {self.dropout}")
        if self.vocab_size < vocab.VOCAB_SIZE:
            raise ConfigError(f"model vocab_size: {self.vocab_size} is smaller than the v2 vocabulary ({vocab.VOCAB_SIZE} tokens)")
        if self.rope_base <= 0:
            raise ConfigError(f"model rope_base: must be positive, got {self.rope_base}")
        model_class.check_config(self)
        return self

    def resolved(self) -> ModelConfig:
        """A validated copy with every 0-means-default size replaced by the architecture's value."""
        self.validate()
        return dataclasses.replace(self, **architecture(self.arch).default_sizes(self))


def swiglu_hidden_size(d_model: int, multiple: int = 64) -> int:
    """About 8/3 * d_model, rounded up to a multiple of 64: a gated MLP with
    the parameter count of a plain 4*d_model one, in hardware-friendly sizes."""
    target = (8 * d_model + 2) // 3
    return -(-target // multiple) * multiple


PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 64, "n_heads": 4, "n_layers": 2, "context_positions": 256},
    "small": {"d_model": 256, "n_heads": 8, "n_layers": 6, "context_positions": 512},
    "medium": {"d_model": 512, "n_heads": 8, "n_layers": 8, "context_positions": 1024},
    "base": {"d_model": 640, "n_heads": 10, "n_layers": 10, "context_positions": 1024},
    "large": {"d_model": 768, "n_heads": 12, "n_layers": 14, "context_positions": 1024},
}
"""Shapes shared by every arch: ``tiny`` for tests, ``small`` the notebook's
shape (d256, 8 heads, 6 layers), then about 25M, 50M and 100M parameters for
``gpt`` (see docs/models.md for each arch's counts). The context is given in
positions, so that a preset costs about the same per window for every arch:
512 positions are 64 events of a flat model and 512 events of ``hier``."""


SKYTNT_MEDIUM = {
    "arch": "hier",
    "d_model": 1024,
    "n_heads": 16,
    "n_layers": 12,
    "d_ff": 4096,
    "token_layers": 3,
    "token_heads": 4,
    "token_d_ff": 1024,
    "context_events": 1024,
}
"""The shape of SkyTNT's published ``tv2o-medium`` model (a LLaMA event level of
12 layers, 16 heads, width 1024, feed-forward 4096; a token level of a quarter
of the layers, heads and feed-forward), built with ``hier``'s classes, for
benchmarks at the size people run."""


def preset_config(arch: str, preset: str) -> ModelConfig:
    """The config of a named size preset for an architecture."""
    model_class = architecture(arch)
    if preset not in PRESETS:
        raise ConfigError(f"model preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    sizes = dict(PRESETS[preset])
    sizes["context_events"] = sizes.pop("context_positions") // model_class.positions_per_event
    sizes.update(model_class.preset_overrides.get(preset, {}))
    return ModelConfig(arch=arch, **sizes).validate()


def upgrade_model_dict(data: Any) -> Any:
    """A model config dict of an older midilm in today's form: ``max_seq_len``
    (positions: tokens for flat models, events for event-level ones) becomes
    ``context_events``. Other input is returned unchanged for the reader to refuse."""
    if not isinstance(data, dict) or "max_seq_len" not in data:
        return data
    upgraded = dict(data)
    positions = upgraded.pop("max_seq_len")
    per_event = architecture(upgraded.get("arch", ModelConfig.arch)).positions_per_event
    if not isinstance(positions, int) or positions % per_event:
        raise ConfigError(f"model max_seq_len: {positions!r} positions are not a whole number of {per_event}-token events")
    upgraded.setdefault("context_events", positions // per_event)
    return upgraded
