"""Torch decoders: next-token logits of a torch model while a sampler appends tokens one by one.

The history, the window and its slides are :mod:`midilm.model.window`'s,
shared with the fast paths; these classes only compute logits:

- reference (``cache=False``): a full forward over the window for every token,
  like the design notebook's sampler;
- cached (``cache=True``): a preallocated KV cache; flat models process one
  token per step, event-level models one event per 8 steps at the event level
  plus their few-token decoder.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from torch import nn

from midilm.model.window import EVENT_LEN, EventDecoder, EventWindow, FlatWindow
from midilm.runtime import cpu_threads


class TorchDecoder(EventDecoder):
    """A decoder of a torch model: windows go in as tensors on the model's device."""

    def __init__(self, model: nn.Module, batch_size: int, *, keep_events: int | None = None) -> None:
        super().__init__(model.config.context_events, model.config.vocab_size, batch_size, keep_events=keep_events)
        self.model = model
        parameter = next(model.parameters())
        self.device = parameter.device
        self.dtype = parameter.dtype
        self._cache = None  # the model's KV cache, for the cached decoders

    def _host(self, values: Any) -> np.ndarray:
        if isinstance(values, torch.Tensor):
            return values.detach().cpu().numpy()
        return np.asarray(values)

    def _float_logits(self, logits: torch.Tensor) -> torch.Tensor:
        return logits.float()

    def _tensor(self, tokens: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(tokens)).to(self.device)

    def running(self, threads: int) -> AbstractContextManager[None]:
        """Torch's CPU thread count set to ``threads`` for the block (on a CPU), and restored after it."""
        return cpu_threads(threads if self.device.type == "cpu" else 0)

    @torch.inference_mode()
    def prefill(self, events: Any) -> None:
        super().prefill(events)

    @torch.inference_mode()
    def push(self, tokens: Any, *, logits_needed: bool = True) -> None:
        super().push(tokens, logits_needed=logits_needed)

    def _empty_cache(self):
        """The model's KV cache, allocated on first use and emptied for a new window."""
        if self._cache is None:
            self._cache = self.model.new_cache(self.batch_size, self.device, self.dtype)
        else:
            self._cache.reset()
        return self._cache


class FlatReferenceDecoder(TorchDecoder, FlatWindow):
    def _refresh(self, new_window: bool) -> torch.Tensor:
        return self.model(self._tensor(self._window()))[:, -1]


class FlatCachedDecoder(TorchDecoder, FlatWindow):
    def _refresh(self, new_window: bool) -> torch.Tensor:
        if new_window:
            return self.model.next_logits(self._tensor(self._window()), self._empty_cache())
        return self.model.next_logits(self._tensor(self._last_token()), self._cache)


class HierReferenceDecoder(TorchDecoder, EventWindow):
    def _refresh(self, new_window: bool) -> torch.Tensor:
        state = self.model.encode_events(self._tensor(self._complete_events(self._window_start)))[:, -1]
        return self.model.next_token_logits(state, self._tensor(self._partial_event()))


class HierCachedDecoder(TorchDecoder, EventWindow):
    _state: torch.Tensor  # (B, d), the state of the last whole event in the window

    def _refresh(self, new_window: bool) -> torch.Tensor:
        if new_window:
            self._state = self.model.encode_events(self._tensor(self._complete_events(self._window_start)), self._empty_cache())[:, -1]
        elif self._new_event():
            self._state = self.model.encode_events(self._tensor(self._complete_events(self._n_tokens - EVENT_LEN)), self._cache)[:, -1]
        return self.model.next_token_logits(self._state, self._tensor(self._partial_event()))


def make_decoder(model: nn.Module, batch_size: int, *, cache: bool = True, keep_events: int | None = None) -> EventDecoder:
    """The model's incremental torch decoder; puts the model in eval mode.

    ``cache=False`` gives the architecture's reference decoder (a full forward
    per token). ``keep_events``: whole events kept when the window slides
    (default half the context).
    """
    model.eval()
    decoder_class = model.cached_decoder if cache else model.reference_decoder
    return decoder_class(model, batch_size, keep_events=keep_events)
