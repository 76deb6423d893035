"""Grammar-constrained, batched, KV-cached generation for every architecture.

All samples of a batch advance in lockstep, one slot of one event row at a
time: the decoder gives logits for the next token, the grammar mask keeps only
tokens that make a decodable row, and each sample draws from its own seeded
generator. Slots that admit one token only (PAD past an event's end, finished
samples) are filled without sampling. The decoder slides its window when the
context is full, so pieces can be longer than the model's context.

The model supplies the decoder (``model.sampling_decoder``): a torch model's
(ONNX Runtime on a CPU by default, eager PyTorch on a GPU) or an ONNX export's.
Everything else here runs on numpy, with the logits' own array type only for
the masked choice (:mod:`midilm.sample.arrays`), so sampling an export never
imports torch. :func:`stream` yields rows as they are sampled.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from midilm import vocab
from midilm.errors import ConfigError
from midilm.sample.arrays import array_ops
from midilm.sample.choose import choose, make_generators
from midilm.sample.clock import MusicClock
from midilm.sample.config import Controls, SamplingConfig
from midilm.sample.controls import control_events
from midilm.sample.grammar import GrammarMask

BOS_ROW = np.array([vocab.BOS] + [vocab.PAD] * (vocab.EVENT_LEN - 1), dtype=vocab.TOKEN_DTYPE)
EOS_ROW = np.array([vocab.EOS] + [vocab.PAD] * (vocab.EVENT_LEN - 1), dtype=vocab.TOKEN_DTYPE)


@dataclass
class GenerationResult:
    """The samples (token rows: the start rows, then what was generated, then
    the EOS row if the model ended the piece) and how the run went."""

    samples: list[np.ndarray]
    start_events: int
    generated_events: list[int]
    seconds: float
    stop_reason: str

    @property
    def events_per_s(self) -> float:
        """Generated events (start rows excluded) per second of the whole run, prefill included."""
        return sum(self.generated_events) / max(self.seconds, 1e-9)


def start_rows(
    prompt: np.ndarray | None = None, controls: Controls | None = None, *, avoid_channels: frozenset[int] = frozenset()
) -> np.ndarray:
    """The rows generation continues from: a prompt (BOS first), or BOS followed
    by the control events (instruments off ``avoid_channels``, 0-based). A prompt's
    trailing EOS row is dropped."""
    if prompt is not None and controls is not None and controls.any():
        raise ConfigError("give either a prompt or controls, not both (a prompt carries its own instruments and tempo)")
    if prompt is not None:
        rows = np.asarray(prompt)
        if rows.ndim != 2 or rows.shape[1] != vocab.EVENT_LEN or not len(rows) or rows[0, 0] != vocab.BOS:
            raise ConfigError(f"a prompt must be token rows [n, {vocab.EVENT_LEN}] starting with the BOS row")
        if rows[-1, 0] == vocab.EOS:
            rows = rows[:-1]
        return rows.astype(vocab.TOKEN_DTYPE)
    extra = control_events(controls, avoid_channels) if controls is not None else np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE)
    return np.concatenate([BOS_ROW[None, :], extra])


class Constraint(Protocol):
    """A rule on what may be sampled, applied through the masks while sampling
    (never by filtering afterwards). Every method may return None for "no rule now".
    Everything is numpy, whatever computes the logits."""

    def slot_mask(self, slot: int, row: np.ndarray, event_index: np.ndarray) -> np.ndarray | None:
        """An additive mask ``[B, V]`` (float32, 0 or -inf) for ``slot``, given each
        sample's tokens so far in this event (``row[:, :slot]``, int64) and event type (0..5)."""

    def forced_rows(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(which [B] bool, rows [B, 8])``: rows to write at this event step instead of sampling."""

    def observe(self, rows: np.ndarray, active: np.ndarray) -> None:
        """The rows ``[B, 8]`` of the event step just taken, and which samples were still going."""

    # Optional: a constraint may also define
    # ``logit_bias(slot, row, event_index, logits [B, V]) -> [B, V] | None``, a finite
    # additive bias that depends on the model's logits (e.g. folding the probability
    # of tokens a mask removes onto one it keeps); the sampler adds it when present.


class EventSampler:
    """One sampling run over a batch: decoder, grammar, generators, clock and
    the rows each sample has so far. :meth:`steps` takes one event row per
    sample at a time and yields it, so callers can stream; :meth:`result`
    collects what was generated.

    ``model`` is anything with ``sampling_decoder(batch_size, config, cache=)``:
    a torch model (:class:`midilm.model.base.MidilmModel`) or an exported one
    (:class:`midilm.model.onnx_model.OnnxModel`). The algorithm is the same for
    both; its arrays are those of the decoder's logits (:mod:`midilm.sample.arrays`).
    """

    def __init__(
        self,
        model: Any,
        config: SamplingConfig,
        start: np.ndarray,
        *,
        cache: bool = True,
        constraints: Sequence[Constraint] = (),
    ) -> None:
        from midilm.sample.locks import with_config_locks

        config.validate()
        self.model, self.config, self.start, self.cache = model, config, start, cache
        self.constraints = with_config_locks(config, start, constraints, model.config.vocab_size)
        batch = config.num_samples
        self.generators = make_generators(config)
        self.finished = np.zeros(batch, dtype=bool)
        self.clock = MusicClock(batch)
        for row in start:
            self.clock.advance(np.repeat(row[None, :], batch, axis=0))
        self.start_seconds = self.clock.seconds.copy()
        self.rows: list[list[np.ndarray]] = [[] for _ in range(batch)]
        self.done = 0
        self.stop_reason = ""
        self.began = time.perf_counter()

    def steps(self) -> Iterator[np.ndarray]:
        """Event rows ``[B, 8]``, one per step, until the event or seconds limit or
        every sample has ended; :attr:`stop_reason` says which. Rows of samples
        that had already ended are PAD."""
        config, batch = self.config, self.config.num_samples
        decoder = self.model.sampling_decoder(batch, config, cache=self.cache)
        with decoder.running(config.threads):
            decoder.prefill(np.broadcast_to(self.start.astype(np.int64), (batch, *self.start.shape)))
            ops = array_ops(decoder.logits())
            grammar = GrammarMask(ops, self.model.config.vocab_size)
            self.stop_reason = "events"
            while self.done < config.events:
                row = self._sample_row(decoder, grammar, ops, eos_allowed=self.done >= config.min_events)
                active = ~self.finished
                row_np = row.astype(vocab.TOKEN_DTYPE)
                ended = active & (row_np[:, 0] == vocab.EOS)
                for b in np.flatnonzero(active):
                    self.rows[b].append(row_np[b])
                self.finished |= ended
                self.done += 1
                self.clock.advance(row_np, active & ~ended)
                for constraint in self.constraints:
                    constraint.observe(row_np, active)
                yield row_np
                if self.finished.all():
                    self.stop_reason = "eos"
                    return
                going = ~self.finished
                if config.seconds and bool(np.all((self.clock.seconds - self.start_seconds)[going] >= config.seconds)):
                    self.stop_reason = "seconds"
                    return

    def result(self) -> GenerationResult:
        """The samples so far: the start rows, then each sample's rows."""
        samples = [np.concatenate([self.start, np.stack(r)]) if r else self.start.copy() for r in self.rows]
        generated = [sum(1 for x in r if x[0] != vocab.EOS) for r in self.rows]
        return GenerationResult(samples, len(self.start), generated, time.perf_counter() - self.began, self.stop_reason)

    def _sample_row(self, decoder: Any, grammar: GrammarMask, ops: Any, *, eos_allowed: bool) -> np.ndarray:
        """One event row per sample: slot by slot, sampling only where the grammar
        and the constraints leave a choice; forced rows are written as given."""
        finished = self.finished
        batch = finished.shape[0]
        forcing, forced_rows = self._forced_rows(batch)
        event_index = np.zeros(batch, dtype=np.int64)
        row = np.zeros((batch, vocab.EVENT_LEN), dtype=np.int64)
        for slot in range(vocab.EVENT_LEN):
            single = grammar.forced(slot, event_index, finished) | forcing
            if single.all():
                token = np.where(forcing, forced_rows[:, slot], vocab.PAD)
            else:
                mask = grammar.for_slot(slot, event_index, eos_allowed, finished)
                logits = decoder.logits()
                for constraint in self.constraints:
                    extras = [constraint.slot_mask(slot, row, event_index)]
                    if hasattr(constraint, "logit_bias"):  # optional: a bias that reads the logits
                        extras.append(constraint.logit_bias(slot, row, event_index, ops.to_numpy(logits)))
                    for extra in extras:
                        if extra is not None:
                            mask = mask + ops.asarray(np.asarray(extra, dtype=np.float32))
                token = choose(logits, mask, self.config, self.generators, single, ops)
                token = np.where(forcing, forced_rows[:, slot], token)
            row[:, slot] = token
            if slot == 0:
                event_index = np.clip(token - vocab.FIRST_EVENT_ID, 0, len(vocab.EVENT_NAMES) - 1)
                finished = finished | (token == vocab.EOS)  # the rest of an EOS row is PAD
                rest_forced = self._rest_forced(grammar, event_index, finished, forcing)
            # the last slots of an event are often all forced (PAD past an event's parameters): their logits are never read
            decoder.push(token, logits_needed=slot == vocab.EVENT_LEN - 1 or not rest_forced[slot + 1])
        return row

    @staticmethod
    def _rest_forced(grammar: GrammarMask, event_index: np.ndarray, finished: np.ndarray, forcing: np.ndarray) -> list[bool]:
        """For each slot, whether it and every later slot of this event leave no choice in any sample."""
        rest = [False] * (vocab.EVENT_LEN + 1)
        rest[vocab.EVENT_LEN] = True
        for slot in range(vocab.EVENT_LEN - 1, 0, -1):
            rest[slot] = rest[slot + 1] and bool((grammar.forced(slot, event_index, finished) | forcing).all())
        return rest

    def _forced_rows(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """Which samples write a given row at this step, and those rows (the last constraint that asks wins)."""
        forcing = np.zeros(batch, dtype=bool)
        rows = np.zeros((batch, vocab.EVENT_LEN), dtype=np.int64)
        for constraint in self.constraints:
            asked = constraint.forced_rows()
            if asked is not None:
                which = np.asarray(asked[0], dtype=bool) & ~self.finished
                rows = np.where(which[:, None], np.asarray(asked[1]).astype(np.int64), rows)
                forcing |= which
        return forcing, rows


def sample_events(
    model: Any,
    config: SamplingConfig,
    start: np.ndarray,
    *,
    on_event: Callable[[int], None] | None = None,
    cache: bool = True,
    constraints: Sequence[Constraint] = (),
) -> GenerationResult:
    """Generate ``config.num_samples`` continuations of the rows ``start``.

    ``on_event(n)`` is called after each generated event (progress bars);
    Ctrl-C stops cleanly and returns what was generated so far. ``cache=False``
    recomputes the whole context for every token with the model as it is, like
    the design notebook's sampler (a baseline for benchmarks and tests).
    """
    sampler = EventSampler(model, config, start, cache=cache, constraints=constraints)
    try:
        for _ in sampler.steps():
            if on_event is not None:
                on_event(sampler.done)
    except KeyboardInterrupt:
        sampler.stop_reason = "interrupted"
    return sampler.result()


def stream(
    model: Any,
    config: SamplingConfig | None = None,
    prompt: np.ndarray | None = None,
    controls: Controls | None = None,
) -> Iterator[np.ndarray]:
    """Generate one sample and yield each event row ``[8]`` as soon as it is
    sampled (Python API; the arguments of :func:`generate`, ``num_samples`` 1).

    With the same settings and seed the rows are exactly those :func:`generate`
    returns after the start rows (the EOS row last if the model ends the piece).
    Stopping early (``break``, ``close()``, Ctrl-C in the loop) leaves nothing
    behind: the thread setting is restored and the rows yielded so far are whole.
    """
    config = config or SamplingConfig()
    if config.num_samples != 1:
        raise ConfigError(f"stream: yields the rows of one sample; num_samples must be 1 (got {config.num_samples})")
    sampler = EventSampler(model, config, start_rows(prompt, controls))
    for rows in sampler.steps():
        yield rows[0]


def generate(
    model: Any,
    config: SamplingConfig | None = None,
    prompt: np.ndarray | None = None,
    controls: Controls | None = None,
) -> list[np.ndarray]:
    """Generate samples from a model (Python API): token arrays [n, 8], BOS first.
    The config's locks hold, and instruments the controls name play (unless
    ``controls.lock_instruments`` is off)."""
    from midilm.sample.locks import generation_setup

    config = config or SamplingConfig()
    setup = generation_setup(config, prompt, controls, model.config.vocab_size)
    return setup.finish(sample_events(model, config, setup.start, constraints=setup.constraints)).samples
