"""The model config shared by the CLI, checkpoints and the Python API, and the size presets.

One dataclass describes every architecture; fields an architecture does not
use are ignored by it. Zero in a size field means "the architecture's default",
which :meth:`ModelConfig.resolved` replaces by a number, so a checkpoint always
stores explicit sizes and is rebuilt from them, never from code defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from midilm import vocab
from midilm.errors import ConfigError

ARCHS: tuple[str, ...] = ("seed", "gpt", "hier")
"""``seed``: the design notebook's MusicGPT; ``gpt``: a modern decoder over the
flat token stream; ``hier``: an event-level transformer with a token-level decoder."""

FLAT_ARCHS: frozenset[str] = frozenset({"seed", "gpt"})


@dataclass
class ModelConfig:
    """Architecture and sizes of a model."""

    arch: str = field(default="gpt", metadata={"help": "architecture: seed (the notebook's MusicGPT), gpt or hier", "choices": ARCHS})
    d_model: int = field(default=256, metadata={"help": "width of the residual stream"})
    n_heads: int = field(default=8, metadata={"help": "attention heads per layer"})
    n_layers: int = field(default=6, metadata={"help": "transformer layers (the event level for hier)"})
    d_ff: int = field(
        default=0,
        metadata={"help": "hidden size of the feed-forward block; 0: 4*d_model for seed, about 8/3*d_model (SwiGLU) for gpt and hier"},
    )
    max_seq_len: int = field(default=512, metadata={"help": "context length in positions: tokens for seed and gpt, events for hier"})
    dropout: float = field(default=0.1, metadata={"help": "dropout probability during training"})
    vocab_size: int = field(
        default=vocab.VOCAB_SIZE, metadata={"help": "output classes; at least the v2 vocabulary (a larger value pads the tables)"}
    )
    rope_base: float = field(default=10000.0, metadata={"help": "rotary position base (gpt, hier)"})
    token_layers: int = field(default=0, metadata={"help": "hier: layers of the token-level decoder; 0: max(1, n_layers // 3)"})
    token_heads: int = field(default=0, metadata={"help": "hier: attention heads of the token-level decoder; 0: n_heads"})
    token_d_ff: int = field(default=0, metadata={"help": "hier: feed-forward size of the token-level decoder; 0: the event level's d_ff"})

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def context_events(self) -> int:
        """Whole events that fit the context."""
        return self.max_seq_len if self.arch == "hier" else self.max_seq_len // vocab.EVENT_LEN

    def validate(self) -> ModelConfig:
        """Raise :class:`ConfigError` naming the first setting that cannot work; return self."""
        if self.arch not in ARCHS:
            raise ConfigError(f"model arch: unknown architecture {self.arch!r}; choose one of {', '.join(ARCHS)}")
        for name in ("d_model", "n_heads", "n_layers", "max_seq_len"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model {name}: must be at least 1, got {getattr(self, name)}")
        for name in ("d_ff", "token_layers", "token_heads", "token_d_ff"):
            if getattr(self, name) < 0:
                raise ConfigError(f"model {name}: must be 0 (the default) or positive, got {getattr(self, name)}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"model d_model: {self.d_model} is not divisible by n_heads={self.n_heads}")
        if self.arch != "seed" and self.head_dim % 2:
            raise ConfigError(
                f"model d_model/n_heads: rotary positions need an even head size, got {self.d_model}/{self.n_heads}={self.head_dim}"
            )
        if self.context_events < 2:
            unit = "events" if self.arch == "hier" else "tokens"
            raise ConfigError(
                f"model max_seq_len: {self.max_seq_len} {unit} hold fewer than 2 whole events; {self.arch} needs at least {2 if self.arch == 'hier' else 2 * vocab.EVENT_LEN}"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model dropout: must be in [0, 1), got {self.dropout}")
        if self.vocab_size < vocab.VOCAB_SIZE:
            raise ConfigError(f"model vocab_size: {self.vocab_size} is smaller than the v2 vocabulary ({vocab.VOCAB_SIZE} tokens)")
        if self.rope_base <= 0:
            raise ConfigError(f"model rope_base: must be positive, got {self.rope_base}")
        if self.arch == "hier":
            heads = self.token_heads or self.n_heads
            if self.d_model % heads or (self.d_model // heads) % 2:
                raise ConfigError(f"model token_heads: d_model={self.d_model} must split into {heads} heads of even size")
        return self

    def resolved(self) -> ModelConfig:
        """A validated copy with every 0-means-default size replaced by its value."""
        self.validate()
        if self.arch == "seed":
            d_ff = self.d_ff or 4 * self.d_model
        else:
            d_ff = self.d_ff or swiglu_hidden_size(self.d_model)
        if self.arch != "hier":
            return dataclasses.replace(self, d_ff=d_ff)
        return dataclasses.replace(
            self,
            d_ff=d_ff,
            token_layers=self.token_layers or max(1, self.n_layers // 3),
            token_heads=self.token_heads or self.n_heads,
            token_d_ff=self.token_d_ff or d_ff,
        )


def swiglu_hidden_size(d_model: int, multiple: int = 64) -> int:
    """About 8/3 * d_model, rounded up to a multiple of 64: a gated MLP with
    the parameter count of a plain 4*d_model one, in hardware-friendly sizes."""
    target = (8 * d_model + 2) // 3
    return -(-target // multiple) * multiple


PRESETS: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 64, "n_heads": 4, "n_layers": 2, "max_seq_len": 256},
    "small": {"d_model": 256, "n_heads": 8, "n_layers": 6, "max_seq_len": 512},
    "medium": {"d_model": 512, "n_heads": 8, "n_layers": 8, "max_seq_len": 1024},
    "base": {"d_model": 640, "n_heads": 10, "n_layers": 10, "max_seq_len": 1024},
    "large": {"d_model": 768, "n_heads": 12, "n_layers": 14, "max_seq_len": 1024},
}
"""Shapes shared by every arch: ``tiny`` for tests, ``small`` the notebook's
shape (d256, 8 heads, 6 layers), then about 25M, 50M and 100M parameters for
``gpt`` (see docs/models.md for each arch's counts)."""

_ARCH_OVERRIDES: dict[tuple[str, str], dict[str, int]] = {
    # The notebook trained on 512-token windows with 512 + 64 learned positions;
    # its checkpoints carry a 576-row position table.
    ("seed", "small"): {"max_seq_len": 576},
}


def preset_config(arch: str, preset: str) -> ModelConfig:
    """The config of a named size preset for an architecture."""
    if arch not in ARCHS:
        raise ConfigError(f"model arch: unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if preset not in PRESETS:
        raise ConfigError(f"model preset: unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    sizes = {**PRESETS[preset], **_ARCH_OVERRIDES.get((arch, preset), {})}
    return ModelConfig(arch=arch, **sizes).validate()
