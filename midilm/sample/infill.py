"""Infilling: rewrite a span of a song so that it joins the music after it; the rest stays as it was."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from midilm import vocab
from midilm.errors import ConfigError
from midilm.sample.around import AroundModel, AroundResult, Task, load_song, write_around
from midilm.sample.config import SamplingConfig
from midilm.sample.instruments import InstrumentPlan, Voice
from midilm.sample.song import STEPS_PER_BEAT, Song

_PATCH = vocab.EVENT_ID["patch_change"]
_NOTE = vocab.EVENT_ID["note"]


def infill_task(song: Song, start: float, end: float, tracks: str = "all", unit: str = "seconds") -> Task:
    """Rewrite the notes (and instrument and controller changes) of ``tracks`` that
    start in ``[start, end)``; everything else is kept, tempo, time and key signatures included."""
    first, last = song.steps_at(start, unit, "start"), song.steps_at(end, unit, "end")
    if first >= last:
        raise ConfigError(f"the span to rewrite is empty: start {start} is not before end {end} ({unit})")
    if first >= song.end():
        raise ConfigError(f"start {start} ({unit}) is at or after the end of {song.name} (beat {song.end() / STEPS_PER_BEAT:g})")
    chosen = song.select_tracks(tracks, "tracks")
    rewritten = song.is_event & ~song.is_meta & np.isin(song.track, chosen) & (song.onsets >= first) & (song.onsets < last)
    plan = InstrumentPlan(tuple(voice_of_track(song, track, first) for track in chosen))
    return Task(song, song.is_event & ~rewritten, plan, first, last, False, np.zeros((0, vocab.EVENT_LEN), vocab.TOKEN_DTYPE), shares=False)


def voice_of_track(song: Song, track: int, at: int) -> Voice:
    """A rewritten track as a voice: the channel most of its notes use, and that channel's program at ``at``."""
    channel_slot = 1 + vocab.EVENT_PARAMS["note"].index("channel")
    notes = (song.rows[:, 0] == _NOTE) & (song.track == track)
    channels = Counter((song.rows[notes, channel_slot].astype(np.int64) - vocab.PARAM_OFFSET["channel"]).tolist())
    channel = channels.most_common(1)[0][0] if channels else 0
    patches = (song.rows[:, 0] == _PATCH) & (song.onsets <= at)
    patches &= song.rows[:, channel_slot].astype(np.int64) - vocab.PARAM_OFFSET["channel"] == channel
    program_slot = 1 + vocab.EVENT_PARAMS["patch_change"].index("patch")
    program = int(song.rows[patches, program_slot][-1]) - vocab.PARAM_OFFSET["patch"] if patches.any() else 0
    return Voice(track, channel, program)


def infill(
    song: str | os.PathLike | bytes | np.ndarray,
    start: float,
    end: float,
    tracks: str = "all",
    unit: str = "seconds",
    *,
    model: Any = None,
    config: SamplingConfig | None = None,
    mode: str = "auto",
    on_event: Callable[[int], None] | None = None,
) -> AroundResult:
    """Rewrite a span of a song (Python API): ``midilm.infill("chorale.mid", 9, 13, unit="bars")``.

    ``model``: a loaded model, a checkpoint path or None (the shipped model);
    ``config``: sampling settings and locks. Returns the pieces as token arrays
    (``.samples``) with which rows were kept.
    """
    around = AroundModel.of(model)
    task = infill_task(load_song(song, around), start, end, tracks, unit)
    return write_around(around, config or SamplingConfig(), task, mode=mode, on_event=on_event)
