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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

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


def start_rows(prompt: np.ndarray | None = None, controls: Controls | None = None) -> np.ndarray:
    """The rows generation continues from: a prompt (BOS first), or BOS followed
    by the control events. A prompt's trailing EOS row is dropped."""
    if prompt is not None and controls is not None and controls.any():
        raise ConfigError("give either a prompt or controls, not both (a prompt carries its own instruments and tempo)")
    if prompt is not None:
        rows = np.asarray(prompt)
        if rows.ndim != 2 or rows.shape[1] != vocab.EVENT_LEN or not len(rows) or rows[0, 0] != vocab.BOS:
            raise ConfigError(f"a prompt must be token rows [n, {vocab.EVENT_LEN}] starting with the BOS row")
        if rows[-1, 0] == vocab.EOS:
            rows = rows[:-1]
        return rows.astype(vocab.TOKEN_DTYPE)
    extra = control_events(controls) if controls is not None else np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE)
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


def sample_events(
    model: torch.nn.Module,
    config: SamplingConfig,
    start: np.ndarray,
    *,
    on_event: Callable[[int], None] | None = None,
    cache: bool = True,
) -> GenerationResult:
    """Generate ``config.num_samples`` continuations of the rows ``start``.

    ``on_event(n)`` is called after each generated event (progress bars);
    Ctrl-C stops cleanly and returns what was generated so far. ``cache=False``
    recomputes the whole context for every token with the model as it is, like
    the design notebook's sampler (a baseline for benchmarks and tests).
    """
    from midilm.model import make_decoder
    from midilm.model.int8 import for_sampling

    config.validate()
    device = next(model.parameters()).device
    batch = config.num_samples
    began = time.perf_counter()
    grammar = GrammarMask(device)
    generators = make_generators(config, device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    clock = MusicClock(batch)
    for row in start:
        clock.advance(np.repeat(row[None, :], batch, axis=0))
    start_seconds = clock.seconds.copy()
    rows: list[list[np.ndarray]] = [[] for _ in range(batch)]
    done, reason = 0, "events"
    model.eval()
    try:
        with torch.inference_mode(), cpu_threads(config.threads if device.type == "cpu" else 0):
            decoder = make_decoder(for_sampling(model, config.weights) if cache else model, batch, cache=cache)
            decoder.prefill(torch.as_tensor(start.astype(np.int64), device=device).unsqueeze(0).expand(batch, -1, -1).contiguous())
            while done < config.events:
                row = _sample_row(decoder, grammar, config, generators, finished, eos_allowed=done >= config.min_events)
                active = (~finished).cpu().numpy()
                row_np = row.cpu().numpy().astype(vocab.TOKEN_DTYPE)
                ended = active & (row_np[:, 0] == vocab.EOS)
                for b in np.flatnonzero(active):
                    rows[b].append(row_np[b])
                finished |= torch.as_tensor(ended, device=device)
                done += 1
                clock.advance(row_np, active & ~ended)
                if on_event is not None:
                    on_event(done)
                if bool(finished.all()):
                    reason = "eos"
                    break
                if config.seconds and bool(np.all((clock.seconds - start_seconds)[~finished.cpu().numpy()] >= config.seconds)):
                    reason = "seconds"
                    break
    except KeyboardInterrupt:
        reason = "interrupted"
    samples = [np.concatenate([start, np.stack(r)]) if r else start.copy() for r in rows]
    generated = [sum(1 for x in r if x[0] != vocab.EOS) for r in rows]
    return GenerationResult(samples, len(start), generated, time.perf_counter() - began, reason)


def _sample_row(
    decoder, grammar: GrammarMask, config: SamplingConfig, generators: list[torch.Generator], finished: torch.Tensor, *, eos_allowed: bool
) -> torch.Tensor:
    """One event row per sample: slot by slot, sampling only where the grammar leaves a choice."""
    batch = finished.shape[0]
    event_index = torch.zeros(batch, dtype=torch.long, device=finished.device)
    row = torch.zeros(batch, vocab.EVENT_LEN, dtype=torch.long, device=finished.device)
    for slot in range(vocab.EVENT_LEN):
        forced = grammar.forced(slot, event_index, finished)
        if bool(forced.all()):
            token = torch.zeros(batch, dtype=torch.long, device=finished.device)  # PAD everywhere
        else:
            mask = grammar.for_slot(slot, event_index, eos_allowed, finished)
            token = choose(decoder.logits(), mask, config, generators, skip=forced)
        decoder.push(token)
        row[:, slot] = token
        if slot == 0:
            event_index = (token - vocab.FIRST_EVENT_ID).clamp(0, len(vocab.EVENT_NAMES) - 1)
            finished = finished | (token == vocab.EOS)  # the rest of an EOS row is PAD
    return row


def generate(
    model: torch.nn.Module,
    config: SamplingConfig | None = None,
    prompt: np.ndarray | None = None,
    controls: Controls | None = None,
) -> list[np.ndarray]:
    """Generate samples from a model (Python API): token arrays [n, 8], BOS first."""
    config = config or SamplingConfig()
    return sample_events(model, config, start_rows(prompt, controls)).samples
