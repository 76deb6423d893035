"""Decoders that run a model's step graphs (:mod:`midilm.model.steps`) from numpy, without torch.

The window logic is :mod:`midilm.model.window`'s, shared with the torch
decoders; the KV cache (a :class:`StepCache` of fixed capacity, positions
``< start`` valid) is written by the step itself, in place. What runs a step
is a :class:`StepRunner`: ONNX Runtime sessions (:mod:`midilm.model.onnx_model`,
torch-free, the cache in buffers bound to the session), a compiled torch
module, or the plain torch module (the reference the other two are tested
against), both on numpy arrays (:class:`ArrayStepCache`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Protocol

import numpy as np

from midilm.errors import ConfigError
from midilm.model.window import EVENT_LEN, EventDecoder, EventWindow, FlatWindow


class StepCache(ABC):
    """A decoder's KV cache for a runner's cached step graphs: every layer's keys
    and values ``[B, H, C, hd]``, filled from position 0. A step reads the first
    ``length`` positions and writes its new ones after them, in the cache's own
    buffers (the graph's outputs are its inputs, written)."""

    def __init__(self, shapes: list[tuple[int, int, int]]) -> None:
        self.capacity = min(c for _, c, _ in shapes)
        self.length = 0

    def step(self, graph: str, positions: np.ndarray) -> np.ndarray:
        """Run a cached graph on new positions ``[B, t, ...]`` after the cached ones; returns its first output."""
        end = self.length + positions.shape[1]
        if end > self.capacity:
            raise ConfigError(f"KV cache: {end} positions exceed its capacity of {self.capacity}; the decoder should have slid its window")
        out = self._run(graph, np.ascontiguousarray(positions))
        self.length = end
        return out

    def reset(self) -> None:
        self.length = 0

    @abstractmethod
    def _run(self, graph: str, positions: np.ndarray) -> np.ndarray:
        """One step with ``start`` = :attr:`length`; the cache holds the new positions afterwards."""


class StepRunner(Protocol):
    """Runs a model's step graphs: the stateless ones on numpy inputs (in the
    graph's input order), the cached ones through a :class:`StepCache` it makes."""

    def run(self, graph: str, inputs: list[np.ndarray]) -> list[np.ndarray]: ...

    def new_cache(self, shapes: list[tuple[int, int, int]], batch_size: int) -> StepCache: ...

    def running(self, threads: int) -> AbstractContextManager[None]:
        """A block of steps on ``threads`` CPU threads, for runners whose threads are not fixed."""


class ArrayStepCache(StepCache):
    """Numpy arrays handed to :meth:`StepRunner.run` as the past inputs; the
    graph's outputs (the same arrays written in place, for torch runners) replace them."""

    def __init__(self, runner: StepRunner, shapes: list[tuple[int, int, int]], batch_size: int) -> None:
        super().__init__(shapes)
        self.runner = runner
        self.past = [np.zeros((batch_size, h, c, d), dtype=np.float32) for h, c, d in shapes * 2]  # keys, then values

    def _run(self, graph: str, positions: np.ndarray) -> np.ndarray:
        out, *self.past = self.runner.run(graph, [positions, np.array(self.length, dtype=np.int64), *self.past])
        return out


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
        self.cache = runner.new_cache(shapes, batch_size)

    def running(self, threads: int) -> AbstractContextManager[None]:
        return self.runner.running(threads)


class FlatStepDecoder(_StepDecoder, FlatWindow):
    """Flat models: one ``tokens`` step per token (the whole window after a slide)."""

    def _refresh(self, new_window: bool) -> np.ndarray:
        if new_window:
            self.cache.reset()
            return self.cache.step("tokens", self._window())
        return self.cache.step("tokens", self._last_token())


class EventStepDecoder(_StepDecoder, EventWindow):
    """Event-level models: an ``events`` step per completed event, a ``tokens`` step per token."""

    _state: np.ndarray  # (B, d), the state of the last whole event in the window

    def _refresh(self, new_window: bool) -> np.ndarray:
        if new_window:
            self.cache.reset()
            self._state = self.cache.step("events", self._complete_events(self._window_start))
        elif self._new_event():
            self._state = self.cache.step("events", self._complete_events(self._n_tokens - EVENT_LEN))
        (logits,) = self.runner.run("tokens", [self._state, np.ascontiguousarray(self._partial_event())])
        return logits


STEP_DECODERS: dict[str, type[_StepDecoder]] = {"flat": FlatStepDecoder, "event": EventStepDecoder}
"""A family's ``step_family`` -> the decoder that drives its step graphs."""
