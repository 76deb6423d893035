"""Accompaniment: keep some tracks of a song verbatim and let the model write new instruments around them."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from midilm.errors import ConfigError
from midilm.sample.around import AroundModel, AroundResult, Task, load_song, write_around
from midilm.sample.config import SamplingConfig
from midilm.sample.instruments import TEXTURE_TRACKS, named_plan, parse_channels, texture_tracks
from midilm.sample.song import Song


def accompaniment_task(song: Song, keep: str, add: str, drums: str = "", *, disabled_channels: str = "") -> Task:
    """Keep the tracks ``keep`` names (``"1,3"`` or ``"all"``) and every tempo, time and key
    signature; write the instruments ``add`` names (and a drum kit) on the lowest track
    numbers the kept tracks leave free (so they sit where the model expects a next voice)
    and free channels, from the start to the end of the song. The model's parts may
    spread over as many tracks as a four-voice texture needs (or as the tracks dropped
    had): given only one track per added instrument, a model trained on chorales stacks
    the voices it expects next onto those few, a dozen notes at one onset."""
    kept_tracks = song.select_tracks(keep, "keep")
    keep_rows = song.is_event & (np.isin(song.track, kept_tracks) | song.is_meta)
    if not (add.strip() or drums.strip()):
        raise ConfigError("add: name at least one instrument to add (or a drum kit with --drums)")
    kept_numbers = set(song.track[keep_rows].tolist())
    avoid = song.channels_of(keep_rows) | parse_channels(disabled_channels)
    plan = named_plan(add, drums, avoid_tracks=kept_numbers, avoid_channels=avoid, what="add")
    with_notes = [t.track for t in song.tracks() if t.notes]
    dropped = sum(1 for track in with_notes if track not in kept_numbers)
    texture = max(dropped, TEXTURE_TRACKS - (len(with_notes) - dropped), len(plan.voices))
    tracks = texture_tracks(plan, kept_numbers, texture)
    return Task(song, keep_rows, plan, 0, song.end(), True, plan.patch_rows(), shares=True, voice_tracks=tracks)


def accompany(
    song: str | os.PathLike | bytes | np.ndarray,
    keep: str = "all",
    add: str = "",
    drums: str = "",
    *,
    model: Any = None,
    config: SamplingConfig | None = None,
    mode: str = "auto",
    on_event: Callable[[int], None] | None = None,
) -> AroundResult:
    """Accompany a song (Python API): ``midilm.accompany("melody.mid", keep="1", add="piano,bass")``.

    ``model``: a loaded model, a checkpoint path or None (the shipped model);
    ``config``: sampling settings and locks (its ``events`` is set from the song).
    Returns the pieces as token arrays (``.samples``) with which rows were kept.
    """
    around = AroundModel.of(model)
    config = config or SamplingConfig()
    task = accompaniment_task(load_song(song, around), keep, add, drums, disabled_channels=config.disable_channels)
    return write_around(around, config, task, mode=mode, on_event=on_event)
