"""A user's MIDI file as the music to write around: its token rows, when each row
sounds, how long its notes sound once decoded, its tracks, and times given in
seconds or bars as positions in 1/16 beats (the tokens' time grid)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from midilm import anticipation, vocab
from midilm.errors import ConfigError
from midilm.sample.instruments import split_list
from midilm.sample.timeline import KeptEvents, ProtectedNotes
from midilm.tokenizer.tempo import TempoMap, bpm_to_tempo
from midilm.tokenizer.tracks import META_EVENTS, TrackInfo, list_tracks

STEPS_PER_BEAT = vocab.PARAM_SIZES["time2"]
UNITS = ("seconds", "bars")
ALL = "all"
_NOTE = vocab.EVENT_ID["note"]
_DURATION_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("duration")
_TRACK_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("track")
_CHANNEL_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("channel")
_PITCH_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("pitch")
_META_IDS = [vocab.EVENT_ID[name] for name in META_EVENTS]


@dataclass
class Song:
    """Token rows of a piece (BOS first, no EOS), each row's onset and sounding length in 1/16 beats."""

    rows: np.ndarray
    onsets: np.ndarray
    sounding: np.ndarray
    name: str

    @classmethod
    def from_tokens(cls, tokens: np.ndarray, name: str = "song") -> Song:
        from midilm.tokenizer.decode import sounding_durations

        rows = np.asarray(tokens, dtype=vocab.TOKEN_DTYPE)
        if len(rows) and rows[-1, 0] == vocab.EOS:
            rows = rows[:-1]
        if not len(rows) or rows[0, 0] != vocab.BOS:
            raise ConfigError(f"{name}: token rows must start with the BOS row")
        if not (rows[:, 0] == _NOTE).any():
            raise ConfigError(f"{name}: holds no notes to write around")
        return cls(rows, anticipation.stream_onsets(rows), sounding_durations(rows), name)

    @classmethod
    def load(cls, source: str | os.PathLike | bytes | np.ndarray, tokenizer_spec: dict[str, Any] | None = None) -> Song:
        """A MIDI file (path or bytes, tokenized with the model's tokenizer options) or a token array."""
        from midilm.sample.prompt import tokenizer_options
        from midilm.tokenizer import tokenize

        if isinstance(source, np.ndarray):
            return cls.from_tokens(source)
        name = "<bytes>" if isinstance(source, bytes) else os.fspath(source)
        if isinstance(source, (str, os.PathLike)) and str(source).endswith(".npy"):
            return cls.from_tokens(np.load(source), name)
        return cls.from_tokens(tokenize(source, tokenizer_options(tokenizer_spec or {})).tokens, name)

    # ----- what it holds -------------------------------------------------------------------------

    @property
    def is_event(self) -> np.ndarray:
        return (self.rows[:, 0] >= vocab.FIRST_EVENT_ID) & (self.rows[:, 0] <= vocab.LAST_EVENT_ID)

    @property
    def is_meta(self) -> np.ndarray:
        """Tempo, time and key signatures: they belong to the whole piece and are always kept."""
        return np.isin(self.rows[:, 0], _META_IDS)

    @property
    def track(self) -> np.ndarray:
        return self.rows[:, _TRACK_SLOT].astype(np.int64) - vocab.PARAM_OFFSET["track"]

    def tracks(self) -> list[TrackInfo]:
        return list_tracks(self.rows)

    def end(self) -> int:
        """Where the piece ends, in 1/16 beats: the end of its last note (or its last event)."""
        notes = self.rows[:, 0] == _NOTE
        return int(max(self.onsets.max(), (self.onsets + self.sounding)[notes].max()))

    def select_tracks(self, text: str, setting: str) -> list[int]:
        """Track numbers from ``"1,3"`` or ``"all"`` (every track with notes), checked against the song."""
        with_notes = [t.track for t in self.tracks() if t.notes]
        if text.strip().lower() == ALL:
            return with_notes
        chosen = []
        for item in split_list(text):
            if not item.isdigit():
                raise ConfigError(f"{setting}: {item!r} is not a track number (see `midilm info {self.name}`)")
            chosen.append(int(item))
        unknown = sorted(set(chosen) - {t.track for t in self.tracks()})
        if unknown or not chosen:
            raise ConfigError(
                f"{setting}: {self.name} has no track {', '.join(map(str, unknown)) or '(none given)'}; "
                f"its tracks with notes are {', '.join(map(str, with_notes))} (`midilm info {self.name}` lists them)"
            )
        return sorted(set(chosen))

    def kept(self, keep: np.ndarray, *, sounding: bool) -> KeptEvents:
        """The event rows where ``keep`` is true; with ``sounding``, notes carry the length they sound
        once decoded (so the output decodes them exactly as the input's own round trip does)."""
        keep = keep & self.is_event
        rows = self.rows[keep].copy()
        if sounding:
            notes = rows[:, 0] == _NOTE
            rows[notes, _DURATION_SLOT] = vocab.PARAM_OFFSET["duration"] + self.sounding[keep][notes]
        return KeptEvents(rows, self.onsets[keep])

    def protected(self, keep: np.ndarray) -> ProtectedNotes:
        """The kept notes (their sounding extent) that new notes must not restart."""
        notes = keep & (self.rows[:, 0] == _NOTE)
        rows = self.rows[notes].astype(np.int64)
        return ProtectedNotes(
            track=rows[:, _TRACK_SLOT] - vocab.PARAM_OFFSET["track"],
            channel=rows[:, _CHANNEL_SLOT] - vocab.PARAM_OFFSET["channel"],
            pitch=rows[:, _PITCH_SLOT] - vocab.PARAM_OFFSET["pitch"],
            start=self.onsets[notes],
            end=self.onsets[notes] + self.sounding[notes],
        )

    def channels_of(self, rows_mask: np.ndarray) -> set[int]:
        """0-based channels used by the note, patch and control rows selected."""
        with_channel = np.isin(self.rows[:, 0], [vocab.EVENT_ID[n] for n in ("note", "patch_change", "control_change")])
        chosen = self.rows[rows_mask & with_channel, _CHANNEL_SLOT].astype(np.int64) - vocab.PARAM_OFFSET["channel"]
        return set(chosen.tolist())

    # ----- times ---------------------------------------------------------------------------------

    def steps_at(self, time: float, unit: str, setting: str) -> int:
        """A time in ``unit`` (seconds from the start, or bars counted from 1) as 1/16 beats."""
        if unit not in UNITS:
            raise ConfigError(f"unit must be one of {', '.join(UNITS)} (got {unit!r})")
        if unit == "seconds":
            if time < 0:
                raise ConfigError(f"{setting}: {time} s is before the start")
            return self._steps_at_seconds(time)
        if time < 1:
            raise ConfigError(f"{setting}: bars count from 1 (got {time})")
        return self._steps_at_bar(time)

    def _changes(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Onsets and rows of one meta event type."""
        chosen = self.rows[:, 0] == vocab.EVENT_ID[name]
        return self.onsets[chosen], self.rows[chosen].astype(np.int64)

    def _steps_at_seconds(self, seconds: float) -> int:
        onsets, rows = self._changes("set_tempo")
        bpms = (rows[:, vocab.PARAM_SLOT["bpm"]] - vocab.PARAM_OFFSET["bpm"]).tolist()
        tempo = TempoMap.from_changes(STEPS_PER_BEAT, [(o, bpm_to_tempo(b)) for o, b in zip(onsets.tolist(), bpms, strict=True)])
        return round(tempo.to_ticks(seconds))

    def _steps_at_bar(self, bar: float) -> int:
        onsets, rows = self._changes("time_signature")
        numerators = rows[:, vocab.PARAM_SLOT["nn"]] - vocab.PARAM_OFFSET["nn"] + 1
        denominators = 2 ** (rows[:, vocab.PARAM_SLOT["dd"]] - vocab.PARAM_OFFSET["dd"] + 1)
        lengths = (numerators * 4 * STEPS_PER_BEAT // denominators).tolist()
        at, length, bars = 0, 4 * STEPS_PER_BEAT, bar - 1  # 4/4 until the first time signature
        for onset, new_length in zip(onsets.tolist(), lengths, strict=True):
            whole = (onset - at) / length
            if whole > bars:
                break
            at, length, bars = onset, new_length, bars - whole
        return at + round(bars * length)
