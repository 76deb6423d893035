"""The token history and context window of incremental decoding, shared by every decoder.

An :class:`EventDecoder` holds ``B`` token histories that grow in lockstep
(all rows at the same slot of the same event). It keeps a *window*, the part of
the history the model sees, which always starts at an event boundary; when a
new token would not fit the model's context, the window slides to the most
recent ``keep_events`` whole events (plus the event being built) and is
processed afresh. Every decoder (the torch reference and cached ones, the
ONNX Runtime and compiled fast paths) shares this logic, so all of them see
exactly the same context and give the same logits.

The history lives in numpy and this module imports no torch, so a model
exported to ONNX decodes without torch installed. Two window rules exist, one
per model family: :class:`FlatWindow` (a context of token positions) and
:class:`EventWindow` (a context of whole events; the event being built stays
outside it until complete).
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

import numpy as np

from midilm import vocab
from midilm.errors import ConfigError, TokenError

EVENT_LEN = vocab.EVENT_LEN


class EventDecoder(ABC):
    """Next-token logits for ``batch_size`` sequences built token by token.

    Call :meth:`prefill` with the prompt (starting with the BOS row), then
    alternate :meth:`logits` and :meth:`push`; eight pushes complete an event.
    ``context_events`` is the model's context; ``vocab_size`` bounds prompt ids.
    """

    def __init__(self, context_events: int, vocab_size: int, batch_size: int, *, keep_events: int | None = None) -> None:
        if batch_size < 1:
            raise ConfigError(f"decoder batch_size: must be at least 1, got {batch_size}")
        self.context_events = context_events
        self.vocab_size = vocab_size
        self.batch_size = batch_size
        most = self._most_kept_events()
        self.keep_events = keep_events if keep_events is not None else max(1, most // 2)
        if not 1 <= self.keep_events <= most:
            raise ConfigError(f"decoder keep_events: must be in 1..{most} for a context of {context_events} events, got {self.keep_events}")
        self._tokens: np.ndarray | None = None  # (B, allocated) int64, the whole history
        self._n_tokens = 0
        self._window_start = 0  # token index, a multiple of EVENT_LEN
        self._next_logits: Any = None

    # ----- what a decoder supplies ------------------------------------------------------------------

    @abstractmethod
    def _fits(self, window_tokens: int) -> bool:
        """Whether a window of this many tokens fits the model's context."""

    @abstractmethod
    def _most_kept_events(self) -> int:
        """The most whole events a slide may keep."""

    @abstractmethod
    def _refresh(self, new_window: bool) -> Any:
        """Logits ``[B, V]`` after the history grew by one token (or, with
        ``new_window``, after the window was replaced)."""

    def _host(self, values: Any) -> np.ndarray:
        """Tokens given by a caller as a numpy array (torch decoders also take tensors)."""
        return np.asarray(values)

    def _float_logits(self, logits: Any) -> Any:
        """The logits :meth:`logits` returns: float32, in the decoder's array type."""
        return logits.astype(np.float32, copy=False)

    @contextlib.contextmanager
    def running(self, threads: int) -> Iterator[None]:
        """A block of decoding on ``threads`` CPU threads (0: the library's
        setting); decoders whose threads are fixed when they are made ignore it."""
        yield

    # ----- the public calls -------------------------------------------------------------------------

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

    def prefill(self, events: Any) -> None:
        """Start every row from a prompt ``[B, N, 8]`` (N >= 1, the BOS row first)."""
        events = self._host(events)
        if events.ndim != 3 or events.shape[0] != self.batch_size or events.shape[2] != EVENT_LEN or events.shape[1] < 1:
            raise TokenError(
                f"decoder prompt: expected events of shape [{self.batch_size}, N >= 1, {EVENT_LEN}], got {tuple(events.shape)}"
            )
        flat = events.reshape(self.batch_size, -1).astype(np.int64)
        if int(flat.min()) < 0 or int(flat.max()) >= self.vocab_size:
            raise TokenError(f"decoder prompt: token ids must be in 0..{self.vocab_size - 1}, got {int(flat.min())}..{int(flat.max())}")
        self._tokens = np.full((self.batch_size, max(2 * flat.shape[1], 1024)), vocab.PAD, dtype=np.int64)
        self._tokens[:, : flat.shape[1]] = flat
        self._n_tokens = flat.shape[1]
        self._window_start = 0
        if not self._fits(self._n_tokens):
            self._slide()
        self._next_logits = self._float_logits(self._refresh(new_window=True))

    def push(self, tokens: Any, *, logits_needed: bool = True) -> None:
        """Append one token ``[B]`` to every row. ``logits_needed=False`` says
        the logits of the next token will not be asked for (the grammar forces
        the rest of the event): a decoder that can leaves them uncomputed."""
        if self._tokens is None:
            raise TokenError("decoder: call prefill(prompt) before push()")
        tokens = self._host(tokens)
        if tuple(tokens.shape) != (self.batch_size,):
            raise TokenError(f"decoder push: expected one token per row, shape [{self.batch_size}], got {tuple(tokens.shape)}")
        if self._n_tokens == self._tokens.shape[1]:
            grown = np.full((self.batch_size, 2 * self._n_tokens), vocab.PAD, dtype=np.int64)
            grown[:, : self._n_tokens] = self._tokens
            self._tokens = grown
        self._tokens[:, self._n_tokens] = tokens
        self._n_tokens += 1
        new_window = not self._fits(self._n_tokens - self._window_start)
        if new_window:
            self._slide()
        if not logits_needed and not new_window and self._within_event():
            self._next_logits = None
            return
        self._next_logits = self._float_logits(self._refresh(new_window))

    def logits(self) -> Any:
        """Float logits ``[B, V]`` for the next token (slot :attr:`slot`), in
        the decoder's array type (a torch tensor for torch decoders, numpy otherwise)."""
        if self._tokens is None:
            raise TokenError("decoder: call prefill(prompt) before logits()")
        if self._next_logits is None:
            raise TokenError("decoder: the last push said no logits were needed; none were computed")
        return self._next_logits

    def _within_event(self) -> bool:
        """Whether the last push left the model's state untouched until more tokens
        come (event-level models: the event is not complete); flat models read every token."""
        return False

    def events(self) -> np.ndarray:
        """The whole history ``[B, n, 8]`` (int64), prompt included; the event
        being built is the last row, PAD past the tokens pushed so far."""
        if self._tokens is None:
            raise TokenError("decoder: call prefill(prompt) before events()")
        rows = -(-self._n_tokens // EVENT_LEN)
        history = np.full((self.batch_size, rows * EVENT_LEN), vocab.PAD, dtype=np.int64)
        history[:, : self._n_tokens] = self._tokens[:, : self._n_tokens]
        return history.reshape(self.batch_size, rows, EVENT_LEN)

    def _slide(self) -> None:
        """Keep the last ``keep_events`` whole events and the event being built."""
        complete_events = self._n_tokens // EVENT_LEN
        self._window_start = max(0, complete_events - self.keep_events) * EVENT_LEN


class FlatWindow(EventDecoder):
    """Flat token streams: the window is at most ``8 * context_events`` tokens."""

    def _fits(self, window_tokens: int) -> bool:
        return window_tokens <= self.context_events * EVENT_LEN

    def _most_kept_events(self) -> int:
        # room for the kept events and a 7-token partial event
        return (self.context_events * EVENT_LEN - (EVENT_LEN - 1)) // EVENT_LEN

    def _window(self) -> np.ndarray:
        return self._tokens[:, self._window_start : self._n_tokens]  # (B, L)

    def _last_token(self) -> np.ndarray:
        return self._tokens[:, self._n_tokens - 1 : self._n_tokens]  # (B, 1)


class EventWindow(EventDecoder):
    """Event-level models: the window holds at most ``context_events`` whole
    events (the event being built is outside the event level until it is complete)."""

    def _fits(self, window_tokens: int) -> bool:
        return window_tokens // EVENT_LEN <= self.context_events

    def _most_kept_events(self) -> int:
        return self.context_events

    def _complete_events(self, start: int) -> np.ndarray:
        """Whole events of the history from token ``start`` on, ``[B, n, 8]``."""
        end = self._n_tokens - self.slot
        return self._tokens[:, start:end].reshape(self.batch_size, -1, EVENT_LEN)

    def _partial_event(self) -> np.ndarray:
        return self._tokens[:, self._n_tokens - self.slot : self._n_tokens]  # (B, slot)

    def _within_event(self) -> bool:
        # the token level reads the event's tokens afresh (or catches up) when logits are next needed
        return self.slot != 0

    def _new_event(self) -> bool:
        """Whether the last push completed an event (the event level must read it)."""
        return self.slot == 0
