"""Incremental decoding: next-token logits while a sampler appends tokens one by one.

An :class:`EventDecoder` holds ``B`` token histories that grow in lockstep
(all rows at the same slot of the same event). It keeps a *window*, the part of
the history the model sees, which always starts at an event boundary; when a
new token would not fit the model's context, the window slides to the most
recent ``keep_events`` whole events (plus the event being built) and is
processed afresh. Cached and reference decoders share that window logic, so
they see exactly the same context and give the same logits:

- reference (``cache=False``): a full forward over the window for every token,
  like the design notebook's sampler;
- cached (``cache=True``): a preallocated KV cache; flat models process one
  token per step, ``hier`` one event per 8 steps at the event level plus its
  few-token decoder.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import nn

from midilm import vocab
from midilm.errors import ConfigError, TokenError

EVENT_LEN = vocab.EVENT_LEN


class EventDecoder(ABC):
    """Next-token logits for ``batch_size`` sequences built token by token.

    Call :meth:`prefill` with the prompt (starting with the BOS row), then
    alternate :meth:`logits` and :meth:`push`; eight pushes complete an event.
    """

    def __init__(self, model: nn.Module, batch_size: int, *, keep_events: int | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"decoder batch_size: must be at least 1, got {batch_size}")
        self.model = model
        self.batch_size = batch_size
        parameter = next(model.parameters())
        self.device = parameter.device
        self.dtype = parameter.dtype
        most = self._most_kept_events()
        self.keep_events = keep_events if keep_events is not None else max(1, most // 2)
        if not 1 <= self.keep_events <= most:
            raise ConfigError(
                f"decoder keep_events: must be in 1..{most} for a context of {model.config.context_events} events, got {self.keep_events}"
            )
        self._tokens: torch.Tensor | None = None  # (B, allocated), the whole history
        self._n_tokens = 0
        self._window_start = 0  # token index, a multiple of EVENT_LEN
        self._next_logits: torch.Tensor | None = None
        self._cache = None  # the model's KV cache, for the cached decoders

    @abstractmethod
    def _fits(self, window_tokens: int) -> bool:
        """Whether a window of this many tokens fits the model's context."""

    @abstractmethod
    def _most_kept_events(self) -> int:
        """The most whole events a slide may keep."""

    @abstractmethod
    def _refresh(self, new_window: bool) -> torch.Tensor:
        """Logits ``[B, V]`` after the history grew by one token (or, with
        ``new_window``, after the window was replaced)."""

    @property
    def slot(self) -> int:
        """Index within its event of the next token to push (0: an event type or EOS)."""
        return self._n_tokens % EVENT_LEN

    @property
    def window_start(self) -> int:
        """Index of the first history token the model sees (a multiple of 8);
        it moves forward each time the window slides."""
        return self._window_start

    @property
    def n_tokens(self) -> int:
        """Tokens in the history, prompt included."""
        return self._n_tokens

    @torch.inference_mode()
    def prefill(self, events: torch.Tensor) -> None:
        """Start every row from a prompt ``[B, N, 8]`` (N >= 1, the BOS row first)."""
        if (
            not isinstance(events, torch.Tensor)
            or events.dim() != 3
            or events.size(0) != self.batch_size
            or events.size(2) != EVENT_LEN
            or events.size(1) < 1
        ):
            shape = tuple(events.shape) if isinstance(events, torch.Tensor) else type(events).__name__
            raise TokenError(f"decoder prompt: expected events of shape [{self.batch_size}, N >= 1, {EVENT_LEN}], got {shape}")
        flat = events.reshape(self.batch_size, -1).to(device=self.device, dtype=torch.long)
        if int(flat.min()) < 0 or int(flat.max()) >= self.model.config.vocab_size:
            raise TokenError(
                f"decoder prompt: token ids must be in 0..{self.model.config.vocab_size - 1}, got {int(flat.min())}..{int(flat.max())}"
            )
        self._tokens = torch.full((self.batch_size, max(2 * flat.size(1), 1024)), vocab.PAD, dtype=torch.long, device=self.device)
        self._tokens[:, : flat.size(1)] = flat
        self._n_tokens = flat.size(1)
        self._window_start = 0
        if not self._fits(self._n_tokens):
            self._slide()
        self._next_logits = self._refresh(new_window=True).float()

    @torch.inference_mode()
    def push(self, tokens: torch.Tensor) -> None:
        """Append one token ``[B]`` to every row."""
        if self._tokens is None:
            raise TokenError("decoder: call prefill(prompt) before push()")
        if not isinstance(tokens, torch.Tensor) or tuple(tokens.shape) != (self.batch_size,):
            shape = tuple(tokens.shape) if isinstance(tokens, torch.Tensor) else type(tokens).__name__
            raise TokenError(f"decoder push: expected one token per row, shape [{self.batch_size}], got {shape}")
        if self._n_tokens == self._tokens.size(1):
            grown = torch.full((self.batch_size, 2 * self._n_tokens), vocab.PAD, dtype=torch.long, device=self.device)
            grown[:, : self._n_tokens] = self._tokens
            self._tokens = grown
        self._tokens[:, self._n_tokens] = tokens
        self._n_tokens += 1
        new_window = not self._fits(self._n_tokens - self._window_start)
        if new_window:
            self._slide()
        self._next_logits = self._refresh(new_window).float()

    def logits(self) -> torch.Tensor:
        """Float logits ``[B, V]`` for the next token (slot :attr:`slot`)."""
        if self._next_logits is None:
            raise TokenError("decoder: call prefill(prompt) before logits()")
        return self._next_logits

    def events(self) -> torch.Tensor:
        """The whole history ``[B, n, 8]``, prompt included; the event being
        built is the last row, PAD past the tokens pushed so far."""
        if self._tokens is None:
            raise TokenError("decoder: call prefill(prompt) before events()")
        rows = -(-self._n_tokens // EVENT_LEN)
        history = torch.full((self.batch_size, rows * EVENT_LEN), vocab.PAD, dtype=torch.long, device=self.device)
        history[:, : self._n_tokens] = self._tokens[:, : self._n_tokens]
        return history.view(self.batch_size, rows, EVENT_LEN)

    def _slide(self) -> None:
        """Keep the last ``keep_events`` whole events and the event being built."""
        complete_events = self._n_tokens // EVENT_LEN
        self._window_start = max(0, complete_events - self.keep_events) * EVENT_LEN

    def _window(self) -> torch.Tensor:
        return self._tokens[:, self._window_start : self._n_tokens]  # (B, L)

    def _empty_cache(self):
        """The model's KV cache, allocated on first use and emptied for a new window."""
        if self._cache is None:
            self._cache = self.model.new_cache(self.batch_size, self.device, self.dtype)
        else:
            self._cache.reset()
        return self._cache


class _FlatDecoder(EventDecoder):
    """Flat models: the window is at most ``8 * context_events`` tokens."""

    def _fits(self, window_tokens: int) -> bool:
        return window_tokens <= self.model.context_positions

    def _most_kept_events(self) -> int:
        # room for the kept events and a 7-token partial event
        return (self.model.context_positions - (EVENT_LEN - 1)) // EVENT_LEN


class FlatReferenceDecoder(_FlatDecoder):
    def _refresh(self, new_window: bool) -> torch.Tensor:
        return self.model(self._window())[:, -1]


class FlatCachedDecoder(_FlatDecoder):
    def _refresh(self, new_window: bool) -> torch.Tensor:
        if new_window:
            return self.model.next_logits(self._window(), self._empty_cache())
        return self.model.next_logits(self._tokens[:, self._n_tokens - 1 : self._n_tokens], self._cache)


class _HierDecoder(EventDecoder):
    """Event-level models: the window holds at most ``context_events`` whole
    events (the event being built is outside the event level until it is complete)."""

    def _fits(self, window_tokens: int) -> bool:
        return window_tokens // EVENT_LEN <= self.model.config.context_events

    def _most_kept_events(self) -> int:
        return self.model.config.context_events

    def _complete_events(self, start: int) -> torch.Tensor:
        """Whole events of the history from token ``start`` on, ``[B, n, 8]``."""
        end = self._n_tokens - self.slot
        return self._tokens[:, start:end].view(self.batch_size, -1, EVENT_LEN)

    def _partial_event(self) -> torch.Tensor:
        return self._tokens[:, self._n_tokens - self.slot : self._n_tokens]  # (B, slot)


class HierReferenceDecoder(_HierDecoder):
    def _refresh(self, new_window: bool) -> torch.Tensor:
        state = self.model.encode_events(self._complete_events(self._window_start))[:, -1]
        return self.model.next_token_logits(state, self._partial_event())


class HierCachedDecoder(_HierDecoder):
    _state: torch.Tensor  # (B, d), the state of the last whole event in the window

    def _refresh(self, new_window: bool) -> torch.Tensor:
        if new_window:
            self._state = self.model.encode_events(self._complete_events(self._window_start), self._empty_cache())[:, -1]
        elif self.slot == 0:
            self._state = self.model.encode_events(self._complete_events(self._n_tokens - EVENT_LEN), self._cache)[:, -1]
        return self.model.next_token_logits(self._state, self._partial_event())


def make_decoder(model: nn.Module, batch_size: int, *, cache: bool = True, keep_events: int | None = None) -> EventDecoder:
    """The model's incremental decoder; puts the model in eval mode.

    ``cache=False`` gives the architecture's reference decoder (a full forward
    per token). ``keep_events``: whole events kept when the window slides
    (default half the context).
    """
    model.eval()
    decoder_class = model.cached_decoder if cache else model.reference_decoder
    return decoder_class(model, batch_size, keep_events=keep_events)
