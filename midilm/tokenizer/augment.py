"""Data augmentation on token rows, as the reference's ``augment``: transpose,
shift velocities, controller values, tempo, tracks and channels."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np

from midilm import vocab
from midilm.tokenizer.encoder.keys import key_to_sf
from midilm.tokenizer.grammar import check_shape

SHIFTED_CONTROLLERS = (1, 2, 7, 11)
"""Modulation, breath, volume and expression: the controllers whose values shift."""


@dataclass(frozen=True)
class AugmentShifts:
    """Amounts to shift by (one draw of the random augmentation)."""

    pitch: int = field(default=0, metadata={"help": "semitones added to every non-drum note (and the key)"})
    velocity: int = field(default=0, metadata={"help": "added to note velocities, clamped to 1..127"})
    cc_value: int = field(default=0, metadata={"help": "added to values of controllers 1, 2, 7, 11, clamped to 1..127"})
    bpm: int = field(default=0, metadata={"help": "added to tempos, clamped to 1..383"})
    track: int = field(default=0, metadata={"help": "added to track numbers, modulo 128"})
    channel: int = field(default=0, metadata={"help": "added to channels modulo 16, the drum channel 9 kept apart"})


@dataclass(frozen=True)
class AugmentMaxima:
    """Ranges of random shifts: pitch, velocity, cc_value and bpm in
    [-max, max], track and channel in [0, max] (the reference's defaults)."""

    pitch: int = field(default=4, metadata={"help": "largest transposition in semitones, up or down"})
    velocity: int = field(default=10, metadata={"help": "largest velocity shift"})
    cc_value: int = field(default=10, metadata={"help": "largest controller value shift"})
    bpm: int = field(default=10, metadata={"help": "largest tempo shift in bpm"})
    track: int = field(default=0, metadata={"help": "largest track shift"})
    channel: int = field(default=16, metadata={"help": "largest channel shift (16 = no-op at the top)"})

    def draw(self, rng: random.Random | np.random.Generator | None = None) -> AugmentShifts:
        """Random shifts, drawn in the reference's order (pitch, velocity,
        cc_value, bpm, track, channel); ``None`` uses the ``random`` module."""
        source = random if rng is None else rng
        if isinstance(source, np.random.Generator):

            def randint(low: int, high: int) -> int:
                return int(source.integers(low, high + 1))

        else:
            randint = source.randint
        return AugmentShifts(
            pitch=randint(-self.pitch, self.pitch),
            velocity=randint(-self.velocity, self.velocity),
            cc_value=randint(-self.cc_value, self.cc_value),
            bpm=randint(-self.bpm, self.bpm),
            track=randint(0, self.track),
            channel=randint(0, self.channel),
        )


def augment(
    tokens: np.ndarray,
    shifts: AugmentShifts | None = None,
    *,
    rng: random.Random | np.random.Generator | None = None,
    maxima: AugmentMaxima = AugmentMaxima(),
) -> np.ndarray:
    """Token rows shifted by ``shifts`` (or by random shifts within ``maxima``).

    As in the reference: if transposing would move a note outside 0..127 the
    rows come back unchanged; key signatures move with the transposition, and
    a key signature on a track whose notes are all drums becomes C major.
    """
    if shifts is None:
        shifts = maxima.draw(rng)
    rows = check_shape(tokens)
    out = rows.copy()
    first = rows[:, 0]
    is_event = (first >= vocab.FIRST_EVENT_ID) & (first <= vocab.LAST_EVENT_ID)
    track_slot, channel_slot = vocab.TRACK_SLOT, vocab.CHANNEL_SLOT
    track_offset, channel_offset = vocab.PARAM_OFFSET["track"], vocab.PARAM_OFFSET["channel"]
    out[is_event, track_slot] = track_offset + (rows[is_event, track_slot] - track_offset + shifts.track) % vocab.PARAM_SIZES["track"]

    has_channel = np.isin(first, [vocab.EVENT_ID[n] for n in vocab.CHANNEL_EVENTS])
    channel = rows[:, channel_slot] - channel_offset
    drums = vocab.DRUM_CHANNEL
    shifted = (channel + shifts.channel) % vocab.CHANNELS
    shifted = np.where(channel == drums, drums, np.where(shifted == drums, (drums + shifts.channel) % vocab.CHANNELS, shifted))
    out[has_channel, channel_slot] = channel_offset + shifted[has_channel]

    note = first == vocab.EVENT_ID["note"]
    pitch_offset = vocab.PARAM_OFFSET["pitch"]
    pitch_slot = vocab.PARAM_SLOT["pitch"]
    pitch = rows[note, pitch_slot] - pitch_offset + np.where(channel[note] != drums, shifts.pitch, 0)
    if np.any((pitch < 0) | (pitch >= vocab.PARAM_SIZES["pitch"])):
        return rows.astype(np.asarray(tokens).dtype, copy=True)
    out[note, pitch_slot] = pitch + pitch_offset
    velocity_slot, velocity_offset = vocab.PARAM_SLOT["velocity"], vocab.PARAM_OFFSET["velocity"]
    out[note, velocity_slot] = velocity_offset + np.clip(rows[note, velocity_slot] - velocity_offset + shifts.velocity, 1, 127)

    control = first == vocab.EVENT_ID["control_change"]
    controller = rows[:, vocab.PARAM_SLOT["controller"]] - vocab.PARAM_OFFSET["controller"]
    moved = control & np.isin(controller, SHIFTED_CONTROLLERS)
    value_slot, value_offset = vocab.PARAM_SLOT["value"], vocab.PARAM_OFFSET["value"]
    out[moved, value_slot] = value_offset + np.clip(rows[moved, value_slot] - value_offset + shifts.cc_value, 1, 127)

    tempo = first == vocab.EVENT_ID["set_tempo"]
    bpm_slot, bpm_offset = vocab.PARAM_SLOT["bpm"], vocab.PARAM_OFFSET["bpm"]
    out[tempo, bpm_slot] = bpm_offset + np.clip(rows[tempo, bpm_slot] - bpm_offset + shifts.bpm, 1, vocab.PARAM_SIZES["bpm"] - 1)

    key = np.flatnonzero(first == vocab.EVENT_ID["key_signature"])
    if len(key):
        sf_slot, sf_offset = vocab.PARAM_SLOT["sf"], vocab.PARAM_OFFSET["sf"]
        mi_slot, mi_offset = vocab.PARAM_SLOT["mi"], vocab.PARAM_OFFSET["mi"]
        drum_only = _drum_only_tracks(rows, note, channel)
        for row in key.tolist():
            if int(out[row, track_slot]) - track_offset in drum_only:
                out[row, sf_slot] = sf_offset + vocab.NO_KEY_SF
                continue
            sf = int(rows[row, sf_slot]) - sf_offset - vocab.SF_OFFSET
            root = ((sf * 7) % 12 + shifts.pitch) % 12
            out[row, sf_slot] = sf_offset + vocab.SF_OFFSET + key_to_sf(root, int(rows[row, mi_slot]) - mi_offset)
    return out.astype(np.asarray(tokens).dtype)


def _drum_only_tracks(rows: np.ndarray, note: np.ndarray, channel: np.ndarray) -> set[int]:
    """Tracks (before shifting) whose notes are all on the drum channel."""
    track = rows[note, vocab.TRACK_SLOT] - vocab.PARAM_OFFSET["track"]
    channels: dict[int, set[int]] = {}
    for t, c in zip(track.tolist(), channel[note].tolist(), strict=True):
        channels.setdefault(t, set()).add(c)
    return {t for t, cs in channels.items() if cs == {vocab.DRUM_CHANNEL}}
