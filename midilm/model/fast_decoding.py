"""Decoders that run a model's step graphs (:mod:`midilm.model.steps`) from numpy, without torch.

The window logic is :mod:`midilm.model.window`'s, shared with the torch
decoders; the KV cache is a set of numpy arrays of fixed capacity that the
step reads whole (positions ``< start`` valid) and that this module extends
with the keys and values the step returns. What runs a step is a
:class:`StepRunner`: ONNX Runtime sessions (:mod:`midilm.model.onnx_model`,
torch-free), a compiled torch module, or the plain torch module (the
reference the other two are tested against).
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np

from midilm.errors import ConfigError
from midilm.model.window import EVENT_LEN, EventDecoder, EventWindow, FlatWindow


class StepRunner(Protocol):
    """Runs a named step graph on numpy inputs (in the graph's input order) and returns its outputs."""

    def run(self, graph: str, inputs: list[np.ndarray]) -> list[np.ndarray]: ...

    def running(self, threads: int) -> AbstractContextManager[None]:
        """A block of steps on ``threads`` CPU threads, for runners whose threads are not fixed."""


class StepCache:
    """Keys and values ``[B, H, C, hd]`` of every cached layer, filled from position 0."""

    def __init__(self, shapes: list[tuple[int, int, int]], batch_size: int, dtype: type = np.float32) -> None:
        self.keys = [np.zeros((batch_size, h, c, d), dtype=dtype) for h, c, d in shapes]
        self.values = [np.zeros((batch_size, h, c, d), dtype=dtype) for h, c, d in shapes]
        self.capacity = min(c for _, c, _ in shapes)
        self.length = 0

    def inputs(self) -> list[np.ndarray]:
        """The step's past inputs, then ``start``."""
        return [np.array(self.length, dtype=np.int64), *self.keys, *self.values]

    def store(self, new: list[np.ndarray]) -> None:
        """Append a step's new keys then new values ``[B, H, t, hd]`` per layer."""
        n = len(self.keys)
        end = self.length + new[0].shape[2]
        if end > self.capacity:
            raise ConfigError(f"KV cache: {end} positions exceed its capacity of {self.capacity}; the decoder should have slid its window")
        for layer in range(n):
            self.keys[layer][:, :, self.length : end] = new[layer]
            self.values[layer][:, :, self.length : end] = new[n + layer]
        self.length = end

    def reset(self) -> None:
        self.length = 0


class _StepDecoder(EventDecoder):
    def __init__(
        self,
        runner: StepRunner,
        shapes: list[tuple[int, int, int]],
        context_events: int,
        vocab_size: int,
        batch_size: int,
        *,
        keep_events: int | None = None,
    ) -> None:
        super().__init__(context_events, vocab_size, batch_size, keep_events=keep_events)
        self.runner = runner
        self.cache = StepCache(shapes, batch_size)

    def running(self, threads: int) -> AbstractContextManager[None]:
        return self.runner.running(threads)

    def _cached_step(self, graph: str, positions: np.ndarray) -> np.ndarray:
        """Run a cached graph on new positions after the cached ones; store what it adds."""
        start, *past = self.cache.inputs()
        out, *new = self.runner.run(graph, [np.ascontiguousarray(positions), start, *past])
        self.cache.store(new)
        return out


class FlatStepDecoder(_StepDecoder, FlatWindow):
    """Flat models: one ``tokens`` step per token (the whole window after a slide)."""

    def _refresh(self, new_window: bool) -> np.ndarray:
        if new_window:
            self.cache.reset()
            return self._cached_step("tokens", self._window())
        return self._cached_step("tokens", self._last_token())


class EventStepDecoder(_StepDecoder, EventWindow):
    """Event-level models: an ``events`` step per completed event, a ``tokens`` step per token."""

    _state: np.ndarray  # (B, d), the state of the last whole event in the window

    def _refresh(self, new_window: bool) -> np.ndarray:
        if new_window:
            self.cache.reset()
            self._state = self._cached_step("events", self._complete_events(self._window_start))
        elif self._new_event():
            self._state = self._cached_step("events", self._complete_events(self._n_tokens - EVENT_LEN))
        (logits,) = self.runner.run("tokens", [self._state, np.ascontiguousarray(self._partial_event())])
        return logits


STEP_DECODERS: dict[str, type[_StepDecoder]] = {"flat": FlatStepDecoder, "event": EventStepDecoder}
"""A family's ``step_family`` -> the decoder that drives its step graphs."""
