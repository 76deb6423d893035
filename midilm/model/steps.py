"""A model's decoding steps as modules of tensors in, tensors out: what ONNX export and ``torch.compile`` take.

A cached decoder's step reads and writes a KV cache object; these wrappers
take the cache's past as plain inputs (a fixed capacity per layer, the first
``start`` positions valid) and give back the cache with the new positions
written (exported to ONNX, whose runner binds the same buffers as inputs and
outputs; run in torch, :class:`TorchStepRunner` writes the new keys the module
returns, so a compiled graph never mutates its inputs), so a step has static
shapes except the count of new positions, and no Python state. :class:`~midilm.model.fast_decoding.FlatStepDecoder` and
:class:`~midilm.model.fast_decoding.EventStepDecoder` drive them (through ONNX
Runtime, a compiled module, or the plain module as a reference) with the
window logic every decoder shares.

Each family names its graphs (:data:`STEP_GRAPHS`):

- ``flat``: ``tokens`` (tokens ``[B, t]``, start, past...) -> (logits ``[B, V]``, keys..., values...);
- ``event``: ``events`` (events ``[B, n, 8]``, start, past...) -> (state of the last event ``[B, d]``, keys...,
  values...) and ``tokens`` (states ``[B, d]``, the event's first tokens ``[B, j]``) -> logits ``[B, V]``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch
from torch import nn

from midilm import vocab
from midilm.model.fast_decoding import ArrayStepCache
from midilm.model.kv_cache import layer_shapes, step_cache
from midilm.runtime import cpu_threads


class _CachedStep(nn.Module):
    """A step that reads ``past`` (every cached layer's keys, then values) from ``start`` on."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.template = model.new_cache(1, torch.device("meta"), torch.float32)  # the cache's structure, no memory

    def shapes(self) -> list[tuple[int, int, int]]:
        return layer_shapes(self.template)

    def _with_cache(self, run: Callable, start: torch.Tensor, past: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        cache, parts = step_cache(self.template, list(past), start)
        out = run(cache)
        keys = [k for part in parts for k in part.step_keys]
        values = [v for part in parts for v in part.step_values]
        return (out, *keys, *values)


class FlatTokenStep(_CachedStep):
    def forward(self, tokens: torch.Tensor, start: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._with_cache(lambda cache: self.model.next_logits(tokens, cache), start, past)


class EventEncodeStep(_CachedStep):
    def forward(self, events: torch.Tensor, start: torch.Tensor, *past: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self._with_cache(lambda cache: self.model.encode_events(events, cache)[:, -1], start, past)


class EventTokenStep(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, states: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.decode_tokens(states, tokens)[:, -1]  # stateless (skytnt's next_token_logits keeps a token cache)


@dataclass
class StepGraph:
    """One step module with example inputs and the names and dynamic axes of its inputs and outputs."""

    module: nn.Module
    example: tuple[torch.Tensor, ...]
    input_names: list[str]
    output_names: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def _cache_io(step: _CachedStep, batch: int) -> tuple[list[torch.Tensor], list[str], list[str], dict[str, dict[int, str]]]:
    """Example past tensors, input and output names, dynamic axes of a cached step."""
    shapes = step.shapes()
    past = [torch.zeros(batch, h, c, d) for h, c, d in shapes] * 2
    n = len(shapes)
    inputs = [f"past_key_{i}" for i in range(n)] + [f"past_value_{i}" for i in range(n)]
    outputs = [f"present_key_{i}" for i in range(n)] + [f"present_value_{i}" for i in range(n)]
    axes = {name: {0: "batch"} for name in inputs + outputs}
    return past, inputs, outputs, axes


def flat_graphs(model: nn.Module, batch: int = 1) -> dict[str, StepGraph]:
    step = FlatTokenStep(model)
    past, past_names, new_names, axes = _cache_io(step, batch)
    tokens = torch.full((batch, 3), vocab.FIRST_EVENT_ID, dtype=torch.long)
    return {
        "tokens": StepGraph(
            step,
            (tokens, torch.tensor(1), *past),
            ["tokens", "start", *past_names],
            ["logits", *new_names],
            {"tokens": {0: "batch", 1: "new"}, "logits": {0: "batch"}, **axes},
        )
    }


def event_graphs(model: nn.Module, batch: int = 1) -> dict[str, StepGraph]:
    encode = EventEncodeStep(model)
    past, past_names, new_names, axes = _cache_io(encode, batch)
    events = torch.full((batch, 3, vocab.EVENT_LEN), vocab.FIRST_EVENT_ID, dtype=torch.long)
    states = torch.zeros(batch, model.config.d_model)
    tokens = torch.full((batch, 2), vocab.FIRST_EVENT_ID, dtype=torch.long)
    return {
        "events": StepGraph(
            encode,
            (events, torch.tensor(1), *past),
            ["events", "start", *past_names],
            ["state", *new_names],
            {"events": {0: "batch", 1: "new"}, "state": {0: "batch"}, **axes},
        ),
        "tokens": StepGraph(
            EventTokenStep(model),
            (states, tokens),
            ["state", "tokens"],
            ["logits"],
            {"state": {0: "batch"}, "tokens": {0: "batch", 1: "slot"}, "logits": {0: "batch"}},
        ),
    }


STEP_GRAPHS: dict[str, Callable[..., dict[str, StepGraph]]] = {"flat": flat_graphs, "event": event_graphs}
"""A family's ``step_family`` -> its step graphs."""


def step_graphs(model: nn.Module, batch: int = 1) -> dict[str, StepGraph]:
    """The model's step graphs, with example inputs of ``batch`` rows."""
    return STEP_GRAPHS[model.step_family](model, batch)


class TorchStepRunner:
    """Runs the step graphs as torch modules on the CPU: plain (the reference
    the ONNX graphs are tested against) or, with ``compiled``, through
    ``torch.compile`` for the one-position steps that sampling repeats (a
    window's first step, whose length varies, runs plain)."""

    def __init__(self, model: nn.Module, *, compiled: bool = False) -> None:
        self.graphs = step_graphs(model)
        self.shapes = self.graphs[next(iter(self.graphs))].module.shapes()
        # cached steps compile for one new position (static shapes); the event-level token step for any number of tokens
        self.compiled = (
            {
                name: torch.compile(g.module, dynamic=not isinstance(g.module, _CachedStep), fullgraph=True)
                for name, g in self.graphs.items()
            }
            if compiled
            else {}
        )

    def running(self, threads: int) -> AbstractContextManager[None]:
        return cpu_threads(threads)

    def new_cache(self, shapes: list[tuple[int, int, int]], batch_size: int) -> ArrayStepCache:
        return ArrayStepCache(self, shapes, batch_size)

    @torch.inference_mode()
    def run(self, graph: str, inputs: list) -> list:
        tensors = [torch.from_numpy(x) for x in inputs]
        module = self.graphs[graph].module
        if graph in self.compiled and (not isinstance(module, _CachedStep) or tensors[0].shape[1] == 1):
            module = self.compiled[graph]
        out = module(*tensors)
        if not isinstance(out, tuple):
            return [out.numpy()]
        first, *new = (t.numpy() for t in out)
        start, past = int(inputs[1]), inputs[2:]
        for cache, positions in zip(past, new, strict=True):  # the cache as the exported graph leaves it
            cache[:, :, start : start + positions.shape[2]] = positions
        return [first, *past]
