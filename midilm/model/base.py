"""What an architecture declares, and the two families every architecture belongs to.

A model class *is* its architecture's declaration (registered by name in
:mod:`midilm.model.registry`): config defaults and checks, construction, the
training view that feeds it, which target slot each logit predicts, its incremental decoders and its FLOPs per
token. Training, sampling, evaluation and export call these; they never test
an architecture's name.

Two families share most of that:

- :class:`FlatModel` (``seed``, ``gpt``) reads the flat token stream: 8
  positions per event, ``forward(inputs [B, T]) -> [B, T, V]``, the target of
  position ``t`` being the token at ``t + 1``;
- :class:`EventModel` (``hier``) reads event rows: 1 position per event,
  ``forward(inputs [B, N, 8], targets [B, N, 8]) -> [B, N, 8, V]``, teacher-forced
  on the next event's tokens.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from torch import nn

from midilm import vocab
from midilm.errors import ConfigError
from midilm.model.config import ModelConfig
from midilm.model.decoding import (
    EventDecoder,
    FlatCachedDecoder,
    FlatReferenceDecoder,
    HierCachedDecoder,
    HierReferenceDecoder,
)


class MidilmModel(nn.Module, ABC):
    """The contract of every architecture (see the module doc).

    ``forward(inputs, targets)`` takes an item of :meth:`window_view` (batched)
    and returns logits aligned with ``targets``: the loss is their
    cross-entropy, PAD targets ignored, whatever the architecture.
    """

    positions_per_event: ClassVar[int]
    """Model positions one event occupies: 8 for token streams, 1 for event rows."""
    preset_overrides: ClassVar[dict[str, dict[str, int]]] = {}
    """Per preset, sizes that differ from the shared shape (see :data:`midilm.model.config.PRESETS`)."""
    reference_decoder: ClassVar[type[EventDecoder]]
    """Recomputes the whole window for every token: the plain path the fast one is tested against."""
    cached_decoder: ClassVar[type[EventDecoder]]
    """Decodes with a KV cache: what sampling uses on GPUs, and the eager path on CPUs."""
    step_family: ClassVar[str]
    """Which step graphs (:data:`midilm.model.steps.STEP_GRAPHS`) and step decoder
    (:data:`midilm.model.fast_decoding.STEP_DECODERS`) the ONNX and compiled paths use."""
    lora_targets: ClassVar[tuple[str, ...]]
    """Names of the linear layers (attention and MLP projections) that LoRA adapts by default."""

    config: ModelConfig

    # ----- config --------------------------------------------------------------------------------

    @classmethod
    def check_config(cls, config: ModelConfig) -> None:
        """Raise :class:`~midilm.errors.ConfigError` for settings this architecture cannot build."""

    @classmethod
    def default_sizes(cls, config: ModelConfig) -> dict[str, Any]:
        """Values for the config's 0-means-default sizes."""
        return {}

    @classmethod
    @abstractmethod
    def flops_per_token(cls, config: ModelConfig, window_events: int) -> float:
        """Training FLOPs (forward + backward) per token for a window of
        ``window_events`` events, for model-FLOPs-utilisation figures: matrix
        products count 6 FLOPs per weight per token and attention
        ``12 * d_model * context`` per layer per token (the PaLM appendix B
        estimate, causal masking ignored; embeddings and norms not counted)."""

    def sampling_decoder(self, batch_size: int, config: Any, *, cache: bool = True) -> EventDecoder:
        """The decoder the sampler uses for ``batch_size`` samples under a
        ``SamplingConfig`` (see :mod:`midilm.model.sampling`)."""
        from midilm.model.sampling import sampling_decoder

        return sampling_decoder(self, batch_size, config, cache=cache)

    @property
    def context_positions(self) -> int:
        """The context in this model's positions."""
        return self.config.context_events * self.positions_per_event

    # ----- training ------------------------------------------------------------------------------

    @classmethod
    @abstractmethod
    def window_view(cls, store: Any, split: str, window_events: int, stride_events: int, **options: Any) -> Any:
        """The torch-free view of a store split whose items ``(inputs, targets)`` train this model."""

    @staticmethod
    @abstractmethod
    def target_slots(targets: torch.Tensor) -> torch.Tensor:
        """The slot (0 = event type, then the parameters) of every target."""

    @staticmethod
    @abstractmethod
    def training_pair(events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inputs, targets)`` as :meth:`window_view` lays them out, from event
        rows ``[B, n + 1, 8]`` (n events of input, each followed by its target)."""


class FlatModel(MidilmModel):
    """A model of the flat token stream (``seed``, ``gpt``)."""

    positions_per_event = vocab.EVENT_LEN
    reference_decoder = FlatReferenceDecoder
    cached_decoder = FlatCachedDecoder
    step_family = "flat"

    @classmethod
    def window_view(cls, store: Any, split: str, window_events: int, stride_events: int, **options: Any) -> Any:
        from midilm.data import TokenWindows

        per_event = cls.positions_per_event
        return TokenWindows(store, split, window_tokens=window_events * per_event, stride_tokens=stride_events * per_event, **options)

    @staticmethod
    def target_slots(targets: torch.Tensor) -> torch.Tensor:
        # target t is the input token t + 1 of an event-aligned window
        positions = torch.arange(1, targets.shape[-1] + 1, device=targets.device)
        return (positions % vocab.EVENT_LEN).expand_as(targets)

    @staticmethod
    def training_pair(events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        flat = events.reshape(events.shape[0], -1)  # (B, (n + 1) * 8)
        n_tokens = flat.shape[1] - vocab.EVENT_LEN
        return flat[:, :n_tokens], flat[:, 1 : n_tokens + 1]


class EventModel(MidilmModel):
    """A model of event rows teacher-forced on the next event's tokens (``hier``, ``skytnt``).

    A member encodes events into states (:meth:`encode_events`) and runs its
    token-level decoder over ``[state, e(t_0), ..., e(t_j-1)]``
    (:meth:`_token_hidden`); ``lm_head`` turns that into logits.
    """

    positions_per_event = 1
    reference_decoder = HierReferenceDecoder
    cached_decoder = HierCachedDecoder
    step_family = "event"
    lm_head: nn.Linear

    @abstractmethod
    def encode_events(self, events: torch.Tensor, cache: Any = None) -> torch.Tensor:
        """Event states ``[B, n, d]`` of events ``[B, n, 8]`` (continuing the cached ones)."""

    @abstractmethod
    def _token_hidden(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Token-level hidden states ``[..., j+1, d]`` from event states ``[..., d]``
        and the next event's first ``j`` tokens ``[..., j]``."""

    @abstractmethod
    def new_cache(self, batch_size: int, device: torch.device, dtype: torch.dtype) -> Any:
        """An empty KV cache of the event level for the whole context."""

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        """Logits ``[B, N, 8, V]``: ``[:, n, j]`` predicts ``targets[:, n, j]``
        from ``inputs[:, :n+1]`` and ``targets[:, n, :j]`` (teacher forcing)."""
        if targets is None:
            raise ConfigError(
                f"{self.config.arch} model: forward needs targets [B, N, 8] (the next event of each input event) "
                "to teacher-force its token-level decoder"
            )
        states = self.encode_events(inputs)  # (B, N, d)
        return self.decode_tokens(states, targets[..., :-1])  # (B, N, 8, V)

    def decode_tokens(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[..., j+1, V]`` of the next event's tokens from event states
        ``[..., d]`` and that event's first ``j`` tokens ``[..., j]``."""
        return self.lm_head(self._token_hidden(states, tokens))

    def next_token_logits(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, V]`` of token ``j`` of the next event from event states
        ``[B, d]`` and that event's first ``j`` tokens ``[B, j]``."""
        return self.lm_head(self._token_hidden(states, tokens)[:, -1])

    @classmethod
    def window_view(cls, store: Any, split: str, window_events: int, stride_events: int, **options: Any) -> Any:
        from midilm.data import EventWindows

        return EventWindows(store, split, window_events=window_events, stride_events=stride_events, **options)

    @staticmethod
    def target_slots(targets: torch.Tensor) -> torch.Tensor:
        return torch.arange(vocab.EVENT_LEN, device=targets.device).expand_as(targets)

    @staticmethod
    def training_pair(events: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return events[:, :-1], events[:, 1:]
