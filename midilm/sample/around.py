"""Writing around a user's music: what accompaniment and infilling share.

A :class:`Task` says which rows of a :class:`~midilm.sample.song.Song` are kept,
which voices the model writes, from where to where. :func:`write_around`
samples it with a :class:`~midilm.sample.timeline.Timeline` in the mode the model
supports (``anticipate`` for models trained with ``--anticipation``, else
``interleave``) and merges each sample's own events with every kept event by
time into a plain v2 token array.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from midilm import anticipation, vocab
from midilm.errors import ConfigError, MidilmError
from midilm.sample.config import SamplingConfig
from midilm.sample.instruments import InstrumentPlan
from midilm.sample.rules import EventRules, LockRules
from midilm.sample.sampler import BOS_ROW, EOS_ROW, GenerationResult, sample_events
from midilm.sample.song import Song
from midilm.sample.timeline import KeptEvents, Timeline

MODES = ("auto", "interleave", "anticipate")
STEPS_PER_BEAT = vocab.PARAM_SIZES["time2"]
BUDGET_PER_KEPT = 4
"""Own events allowed per kept event of the span written (plus BUDGET_EXTRA): room for a
dense part, yet a bound on a model that never ends."""
BUDGET_EXTRA = 512


@dataclass
class AroundModel:
    """A model and what writing around music needs to know of it."""

    model: torch.nn.Module
    tokenizer: dict[str, Any]
    anticipation_steps: int
    """how far ahead (1/16 beats) it was trained to read kept events; 0: not trained for it"""
    source: str

    @classmethod
    def of(cls, model: Any = None, device: str | torch.device = "cpu") -> AroundModel:
        """From a loaded model (``midilm.load_for_inference``), a checkpoint path, None
        (the shipped model) or a bare torch model (default tokenizer options, no anticipation)."""
        from midilm.train import LoadedModel, load_for_inference

        if isinstance(model, torch.nn.Module):
            return cls(model, {}, 0, type(model).__name__)
        if not isinstance(model, LoadedModel):
            from midilm.cli.generate import default_checkpoint

            model = load_for_inference(model if model is not None else default_checkpoint(), device)
        beats = getattr(model.run.train, "anticipation", 0.0) or 0.0
        return cls(model.model, model.run.data.tokenizer, round(beats * STEPS_PER_BEAT), str(model.source))

    def mode(self, asked: str) -> str:
        """The decoding mode for ``asked`` (auto: anticipate when the model was trained for it)."""
        if asked not in MODES:
            raise ConfigError(f"mode must be one of {', '.join(MODES)} (got {asked!r})")
        if asked == "anticipate" and not self.anticipation_steps:
            raise ConfigError(f"{self.source}: not trained with --anticipation; use --mode interleave (or auto)")
        if asked == "auto":
            return "anticipate" if self.anticipation_steps else "interleave"
        return asked


@dataclass
class Task:
    """What to write: the song rows kept (``keep``), the voices the model writes
    (``plan``; ``new_rows`` start them), where its events may start (``own_from``)
    and the limit its part ends by; ``fill_to_limit``: play on up to the limit."""

    song: Song
    keep: np.ndarray
    plan: InstrumentPlan
    own_from: int
    limit: int
    fill_to_limit: bool
    new_rows: np.ndarray
    shares: bool
    voice_tracks: frozenset[int] | None = None
    """None: each voice writes on its own track; else the track numbers the model's
    events may use, each voice following its channel (see EventRules)"""

    def start(self, mode: str, delta: int) -> tuple[np.ndarray, KeptEvents]:
        """The rows sampling starts from and the kept events the timeline places."""
        song = self.song
        before = self.keep & song.is_event & (song.onsets < self.own_from)
        if mode == "interleave":
            at_start = self.keep & song.is_event & (song.onsets == self.own_from) if len(self.new_rows) else np.zeros_like(before)
            prompt = np.flatnonzero(before | at_start)
            rows = np.concatenate([_placed(song.rows[prompt], song.onsets[prompt]), self.new_rows])
            stream = song.kept(self.keep & (song.onsets >= self.own_from), sounding=False).before(self.limit)
            return np.concatenate([BOS_ROW[None], rows]), stream
        controls = song.kept(self.keep & (song.onsets >= self.own_from), sounding=False)
        ordinary = np.concatenate([song.rows[before], self.new_rows])
        onsets = np.concatenate([song.onsets[before], np.full(len(self.new_rows), self.own_from, dtype=np.int64)])
        interleaved = anticipation.interleave(ordinary, onsets, controls.rows, controls.onsets, delta)
        if interleaved is None:
            raise MidilmError(f"{song.name}: a silence of 128 beats or more before the part to write cannot be tokenized")
        rows, _ = interleaved
        return np.concatenate([BOS_ROW[None], rows]), controls

    def timeline(self, locks: LockRules, batch: int, around: AroundModel, mode: str, start: np.ndarray, stream: KeptEvents) -> Timeline:
        """The constraint that samples this task from ``start`` (see :meth:`start`)."""
        rules = EventRules(locks, self.plan, batch, meta=False, shares=self.shares, voice_tracks=self.voice_tracks)
        return Timeline(
            rules,
            start,
            batch,
            around.model.config.vocab_size,
            kept=stream,
            mode=mode,
            delta=around.anticipation_steps,
            own_from=self.own_from,
            limit=self.limit,
            fill_to_limit=self.fill_to_limit,
            protected=self.song.protected(self.keep),
        )

    def own_rows(self, rows: np.ndarray, onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A sample's own rows as the output holds them: the rows that start the new
        voices, then the model's, each voice on its own track."""
        rows = np.concatenate([self.new_rows, rows if self.voice_tracks is None else self.plan.retracked(rows)])
        return rows, np.concatenate([np.full(len(self.new_rows), self.own_from, dtype=np.int64), onsets])

    def budget(self) -> int:
        """Events the sampler may take: the kept ones it places and room for the new part."""
        span = self.keep & self.song.is_event & (self.song.onsets >= self.own_from) & (self.song.onsets < self.limit)
        written = ~self.keep & self.song.is_event
        return int(span.sum()) + BUDGET_PER_KEPT * int(max(span.sum(), written.sum())) + BUDGET_EXTRA


@dataclass
class AroundResult:
    """The pieces written (plain v2 token arrays, BOS first, EOS last), which of
    their rows are kept ones, the mode used and how sampling went."""

    samples: list[np.ndarray]
    kept_rows: list[np.ndarray]
    mode: str
    plan: InstrumentPlan
    generation: GenerationResult
    config: SamplingConfig
    """The settings sampled with: the caller's, with the event budget the task needs."""

    @property
    def stop_reason(self) -> str:
        """Why sampling stopped for the pieces the model did not end (see :func:`midilm.sample.output.sample_stop_reasons`)."""
        return self.generation.stop_reason


def write_around(
    around: AroundModel, config: SamplingConfig, task: Task, *, mode: str = "auto", on_event: Callable[[int], None] | None = None
) -> AroundResult:
    """Sample ``task`` ``config.num_samples`` times and merge each sample with the kept music."""
    mode = around.mode(mode)
    config = _with_budget(config, task.budget())
    start, stream = task.start(mode, around.anticipation_steps)
    timeline = task.timeline(LockRules.from_config(config), config.num_samples, around, mode, start, stream)
    result = sample_events(around.model, config, start, on_event=on_event, constraints=[timeline])
    all_kept = task.song.kept(task.keep, sounding=True)
    merged = [merge(all_kept, *task.own_rows(*timeline.own_events(b))) for b in range(config.num_samples)]
    return AroundResult([m[0] for m in merged], [m[1] for m in merged], mode, task.plan, result, config)


def merge(kept: KeptEvents, own_rows: np.ndarray, own_onsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kept and own event rows in time order (kept first at the same onset and track),
    their times written afresh: ``(tokens [BOS, ..., EOS], kept flag per row)``."""
    rows = np.concatenate([kept.rows, own_rows]).astype(vocab.TOKEN_DTYPE)
    onsets = np.concatenate([kept.onsets, own_onsets])
    is_kept = np.concatenate([np.ones(len(kept), dtype=bool), np.zeros(len(own_rows), dtype=bool)])
    track = rows[:, 1 + vocab.EVENT_PARAMS["note"].index("track")]
    order = np.lexsort((np.arange(len(rows)), track, onsets))
    placed = _placed(rows[order], onsets[order])
    tokens = np.concatenate([BOS_ROW[None], placed, EOS_ROW[None]])
    return tokens, np.concatenate([[False], is_kept[order], [False]])


def _placed(rows: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """Event rows at ``onsets`` (in time order) with their time slots written from the start of the piece."""
    out, beat = [], 0
    for row, onset in zip(rows, onsets.tolist(), strict=True):
        placed = anticipation.placed_row(row, onset, beat)
        if placed is None:
            raise MidilmError(f"a silence of 128 beats or more (before beat {onset // STEPS_PER_BEAT}) cannot be written as v2 tokens")
        out.append(placed)
        beat = onset // STEPS_PER_BEAT
    return np.stack(out) if out else np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE)


def _with_budget(config: SamplingConfig, budget: int) -> SamplingConfig:
    from dataclasses import replace

    return replace(config, events=budget, min_events=0, seconds=0.0)


def load_song(source: str | os.PathLike | bytes | np.ndarray, around: AroundModel) -> Song:
    """The song, tokenized as the model's training data was."""
    return Song.load(source, around.tokenizer)
