"""Grammar-constrained, batched, KV-cached generation for every architecture.

All samples of a batch advance in lockstep, one slot of one event row at a
time: the decoder gives logits for the next token, the grammar mask keeps only
tokens that make a decodable row, and each sample draws from its own seeded
generator. Slots that admit one token only (PAD past an event's end, finished
samples) are filled without sampling. The decoder slides its window when the
context is full, so pieces can be longer than the model's context.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from midilm import vocab
from midilm.errors import ConfigError
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


@contextmanager
def cpu_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (0: leave the setting alone)."""
    previous = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class Constraint(Protocol):
    """A rule on what may be sampled, applied through the masks while sampling
    (never by filtering afterwards). Every method may return None for "no rule now"."""

    def slot_mask(self, slot: int, row: torch.Tensor, event_index: torch.Tensor) -> torch.Tensor | None:
        """An additive mask ``[B, V]`` (0 or -inf) for ``slot``, given each
        sample's tokens so far in this event (``row[:, :slot]``) and event type (0..5)."""

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
    collects what was generated."""

    def __init__(
        self,
        model: torch.nn.Module,
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
        self.device = next(model.parameters()).device
        batch = config.num_samples
        self.grammar = GrammarMask(self.device, vocab_size=model.config.vocab_size)
        self.generators = make_generators(config, self.device)
        self.finished = torch.zeros(batch, dtype=torch.bool, device=self.device)
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
        from midilm.model import make_decoder
        from midilm.model.int8 import for_sampling

        config, batch = self.config, self.config.num_samples
        self.model.eval()
        with torch.inference_mode(), cpu_threads(config.threads if self.device.type == "cpu" else 0):
            decoder = make_decoder(for_sampling(self.model, config.weights) if self.cache else self.model, batch, cache=self.cache)
            decoder.prefill(
                torch.as_tensor(self.start.astype(np.int64), device=self.device).unsqueeze(0).expand(batch, -1, -1).contiguous()
            )
            self.stop_reason = "events"
            while self.done < config.events:
                row = self._sample_row(decoder, eos_allowed=self.done >= config.min_events)
                active = (~self.finished).cpu().numpy()
                row_np = row.cpu().numpy().astype(vocab.TOKEN_DTYPE)
                ended = active & (row_np[:, 0] == vocab.EOS)
                for b in np.flatnonzero(active):
                    self.rows[b].append(row_np[b])
                self.finished |= torch.as_tensor(ended, device=self.device)
                self.done += 1
                self.clock.advance(row_np, active & ~ended)
                for constraint in self.constraints:
                    constraint.observe(row_np, active)
                yield row_np
                if bool(self.finished.all()):
                    self.stop_reason = "eos"
                    return
                going = ~self.finished.cpu().numpy()
                if config.seconds and bool(np.all((self.clock.seconds - self.start_seconds)[going] >= config.seconds)):
                    self.stop_reason = "seconds"
                    return

    def result(self) -> GenerationResult:
        """The samples so far: the start rows, then each sample's rows."""
        samples = [np.concatenate([self.start, np.stack(r)]) if r else self.start.copy() for r in self.rows]
        generated = [sum(1 for x in r if x[0] != vocab.EOS) for r in self.rows]
        return GenerationResult(samples, len(self.start), generated, time.perf_counter() - self.began, self.stop_reason)

    def _sample_row(self, decoder: Any, *, eos_allowed: bool) -> torch.Tensor:
        """One event row per sample: slot by slot, sampling only where the grammar
        and the constraints leave a choice; forced rows are written as given."""
        finished, device = self.finished, self.device
        batch = finished.shape[0]
        forcing, forced_rows = self._forced_rows(batch)
        event_index = torch.zeros(batch, dtype=torch.long, device=device)
        row = torch.zeros(batch, vocab.EVENT_LEN, dtype=torch.long, device=device)
        for slot in range(vocab.EVENT_LEN):
            single = self.grammar.forced(slot, event_index, finished) | forcing
            if bool(single.all()):
                token = torch.where(forcing, forced_rows[:, slot], 0)  # PAD where nothing is forced
            else:
                mask = self.grammar.for_slot(slot, event_index, eos_allowed, finished)
                logits = decoder.logits()
                for constraint in self.constraints:
                    extra = constraint.slot_mask(slot, row, event_index)
                    if extra is not None:
                        mask = mask + extra
                    bias = constraint.logit_bias(slot, row, event_index, logits) if hasattr(constraint, "logit_bias") else None
                    if bias is not None:
                        mask = mask + bias
                token = choose(logits, mask, self.config, self.generators, skip=single)
                token = torch.where(forcing, forced_rows[:, slot], token)
            decoder.push(token)
            row[:, slot] = token
            if slot == 0:
                event_index = (token - vocab.FIRST_EVENT_ID).clamp(0, len(vocab.EVENT_NAMES) - 1)
                finished = finished | (token == vocab.EOS)  # the rest of an EOS row is PAD
        return row

    def _forced_rows(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Which samples write a given row at this step, and those rows (the last constraint that asks wins)."""
        forcing = torch.zeros(batch, dtype=torch.bool, device=self.device)
        rows = torch.zeros(batch, vocab.EVENT_LEN, dtype=torch.long, device=self.device)
        for constraint in self.constraints:
            asked = constraint.forced_rows()
            if asked is not None:
                which = torch.as_tensor(asked[0], device=self.device) & ~self.finished
                rows = torch.where(which[:, None], torch.as_tensor(asked[1].astype(np.int64), device=self.device), rows)
                forcing |= which
        return forcing, rows


def sample_events(
    model: torch.nn.Module,
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


def generate(
    model: torch.nn.Module,
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
