"""What the model may write itself: the locks and the instrument plan, as sets of
token values per slot.

:class:`EventRules` keeps, per sample, what the rules depend on (each channel's
program, the pitched notes that sound, how many notes each voice of the plan
has played) and answers the sampler's questions slot by slot: which event types,
which onsets, tracks, channels and programs a sample's next own event may take.
Time windows (where a piece's kept music leaves room) come from
:class:`midilm.sample.timeline.Timeline`, which is the constraint the sampler sees.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

from midilm import vocab
from midilm.sample.config import SamplingConfig
from midilm.sample.controls import DRUM_CHANNEL
from midilm.sample.instruments import CHANNELS, AllowedInstruments, InstrumentPlan, parse_allowed, parse_channels

META_EVENTS = ("set_tempo", "time_signature", "key_signature")
"""Events that belong to the whole piece (tempo map, metre, key) rather than to an instrument."""
MIN_SHARE_OF_FAIR = 0.5
"""With a locked plan, a voice that has fewer than this share of an equal split of
the notes so far (counted whole) is given the next note."""


@dataclass(frozen=True)
class LockRules:
    """The lock settings of a :class:`~midilm.sample.config.SamplingConfig`, parsed."""

    allowed: AllowedInstruments | None = None
    disabled: frozenset[int] = frozenset()
    patch_change: bool = True
    control_change: bool = True
    max_polyphony: int = 0

    @classmethod
    def from_config(cls, config: SamplingConfig) -> LockRules:
        return cls(
            allowed=parse_allowed(config.allow_instruments),
            disabled=parse_channels(config.disable_channels),
            patch_change=config.patch_change,
            control_change=config.control_change,
            max_polyphony=config.max_polyphony,
        )

    def any(self) -> bool:
        """Whether any lock is set."""
        return self != LockRules()

    def check_plan(self, plan: InstrumentPlan) -> None:
        """Refuse a plan the locks contradict (an instrument not allowed, a disabled channel)."""
        from midilm.errors import ConfigError

        for voice in plan.voices:
            if voice.channel in self.disabled:
                raise ConfigError(f"{voice.describe()}: its channel is disabled by --disable-channels")
            if self.allowed is not None and not self.allowed.allows(voice.channel, voice.program):
                raise ConfigError(f"{voice.describe()} is named, but --allow-instruments does not allow it")


class EventRules:
    """The locks and plan applied to a batch's own events (see the module doc).

    ``meta``: whether the model may write tempo, time and key signatures;
    ``shares``: whether every voice of the plan must keep a share of the notes.
    """

    def __init__(
        self,
        locks: LockRules,
        plan: InstrumentPlan | None,
        batch: int,
        *,
        meta: bool = True,
        shares: bool = False,
        voice_tracks: Collection[int] | None = None,
    ) -> None:
        """``voice_tracks``: None ties each voice of the plan to its own track; a
        collection is the track numbers the model's own events may use, the voice
        following the channel (the plan's channels must differ). A model trained on
        four-voice chorales then writes its voices on the instruments named, on as
        many tracks as the texture needs, rather than stacking notes on the few it is given."""
        if plan is not None:
            locks.check_plan(plan)
            if voice_tracks is not None and len({v.channel for v in plan.voices}) != len(plan.voices):
                raise ValueError("voices follow their channels only when every voice has its own channel")
        self.locks, self.plan, self.meta = locks, plan, meta
        self.voice_tracks = None if voice_tracks is None else frozenset(voice_tracks)
        self.shares = shares and plan is not None and len(plan.voices) > 1
        self.program = np.zeros((batch, CHANNELS), dtype=np.int64)
        self.sounding: list[list[tuple[int, int]]] = [[] for _ in range(batch)]
        """Per sample, (start, end) in 1/16 beats of the pitched notes that may still sound."""
        self.voice_notes = np.zeros((batch, len(plan.voices) if plan else 0), dtype=np.int64)
        self.track_channel: list[dict[int, int]] = [{} for _ in range(batch)]
        """per sample, the channel of each track's first own note: with voices following
        channels, a track's later notes keep to it (while that voice has room and share)"""

    # ----- state ---------------------------------------------------------------------------------

    def record(self, b: int, row: np.ndarray, onset: int, *, own: bool) -> None:
        """An event row of sample ``b`` placed at ``onset`` (1/16 beats); ``own``: the model wrote it."""
        name, values = vocab.decode_event(row)
        if name == "patch_change":
            self.program[b, values["channel"]] = values["patch"]
        elif name == "note":
            if values["channel"] != DRUM_CHANNEL and self.locks.max_polyphony:
                self.sounding[b].append((onset, onset + values["duration"]))
            if own and self.plan is not None:
                self.track_channel[b].setdefault(values["track"], values["channel"])
                voice = self.voice_of(values)
                if voice >= 0:
                    self.voice_notes[b, voice] += 1

    def forget_before(self, b: int, onset: int) -> None:
        """Drop notes that end by ``onset``: no later note can overlap them."""
        if self.sounding[b]:
            self.sounding[b] = [(s, e) for s, e in self.sounding[b] if e > onset]

    # ----- what may come next --------------------------------------------------------------------

    def event_types(self, b: int, lo: int, hi: int) -> list[str]:
        """The event types sample ``b`` may write with an onset in ``[lo, hi]``."""
        if lo > hi:
            return []
        names = []
        if self._note_channels(b) and self.note_onsets(b, lo, hi).any():
            names.append("note")
        if self.locks.patch_change and (self.plan is not None or self._patch_channels().any()):
            names.append("patch_change")
        if self.locks.control_change and (self.plan is not None or self._free_channels().any()):
            names.append("control_change")
        if self.meta:
            names.extend(META_EVENTS)
        return names

    def note_onsets(self, b: int, lo: int, hi: int) -> np.ndarray:
        """Which onsets in ``[lo, hi]`` a new note may take (``[hi - lo + 1]`` bools):
        all of them when a drum may play, else those where polyphony leaves room."""
        allowed = np.ones(max(hi - lo + 1, 0), dtype=bool)
        if not self.locks.max_polyphony or any(c == DRUM_CHANNEL for c in self._note_channels(b)):
            return allowed
        return allowed & (self._sounding_counts(b, lo, hi) < self.locks.max_polyphony)

    def values(self, b: int, name: str, param: str, chosen: dict[str, int], onset: int) -> np.ndarray | None:
        """Allowed values of ``param`` for sample ``b``'s own ``name`` event, given the
        parameters ``chosen`` so far and its ``onset``; None when any value may do."""
        size = vocab.PARAM_SIZES[param]
        plan = self.plan
        if plan is not None and name in ("note", "patch_change", "control_change"):
            voices = self._note_voices(b, onset) if name == "note" else np.ones(len(plan.voices), dtype=bool)
            by_channel = self.voice_tracks is not None
            if param == "track":
                if by_channel:
                    return _many_hot(size, self.voice_tracks)
                return _many_hot(size, [v.track for v, ok in zip(plan.voices, voices, strict=True) if ok])
            if param == "channel":
                if by_channel:
                    sticky = self.track_channel[b].get(chosen["track"])
                    if name == "note" and sticky is not None and voices[self.voice_of({"channel": sticky})]:
                        return _one_hot(size, sticky)
                    return _many_hot(size, [v.channel for v, ok in zip(plan.voices, voices, strict=True) if ok])
                return _one_hot(size, plan.voices[plan.voice_of_track(chosen["track"])].channel)
            if param == "patch":
                return _one_hot(size, plan.voices[self.voice_of(chosen)].program)
            if param == "pitch":
                low, high = plan.voices[self.voice_of(chosen)].pitches
                pitches = np.zeros(size, dtype=bool)
                pitches[low : high + 1] = True
                return pitches
            return None
        if param == "channel" and name in ("note", "patch_change", "control_change"):
            if name == "note":
                channels = np.zeros(size, dtype=bool)
                channels[self._note_channels(b, self._pitched_room(b, onset))] = True
                return channels
            return self._patch_channels() if name == "patch_change" else self._free_channels()
        if param == "patch":
            return self._programs(chosen["channel"], size)
        return None

    def part_of(self, values: dict[str, int]) -> int:
        """What keeps two same-pitch notes of one channel apart: their track, unless
        voices follow channels (then the output puts them on one track: -1)."""
        return -1 if self.voice_tracks is not None else values["track"]

    def voice_of(self, values: dict[str, int]) -> int:
        """Index in the plan of the voice an event (its parameter values) belongs to; -1: none."""
        assert self.plan is not None
        if self.voice_tracks is None:
            return self.plan.voice_of_track(values["track"])
        return next((i for i, v in enumerate(self.plan.voices) if v.channel == values["channel"]), -1)

    def may_end(self, b: int) -> bool:
        """Whether the piece may end: with a locked plan, once every voice has played."""
        return not self.shares or bool((self.voice_notes[b] > 0).all())

    # ----- helpers -------------------------------------------------------------------------------

    def _free_channels(self) -> np.ndarray:
        free = np.ones(CHANNELS, dtype=bool)
        free[list(self.locks.disabled)] = False
        return free

    def _patch_channels(self) -> np.ndarray:
        channels = self._free_channels()
        if self.locks.allowed is not None and not self.locks.allowed.drums:
            channels[DRUM_CHANNEL] = False
        return channels

    def _programs(self, channel: int, size: int) -> np.ndarray | None:
        allowed = self.locks.allowed
        if allowed is None:
            return None
        if channel == DRUM_CHANNEL:
            return None if allowed.kits is None else _many_hot(size, allowed.kits)
        return _many_hot(size, allowed.programs)

    def _note_channels(self, b: int, pitched: bool = True) -> list[int]:
        """Channels a note of sample ``b`` may use now (without a plan; with one, its voices' channels)."""
        if self.plan is not None:
            return [v.channel for v in self.plan.voices if pitched or v.is_drum]
        allowed = self.locks.allowed
        channels = []
        for channel in np.flatnonzero(self._free_channels()).tolist():
            if not pitched and channel != DRUM_CHANNEL:
                continue
            if allowed is None or allowed.allows(channel, int(self.program[b, channel])):
                channels.append(channel)
        return channels

    def _pitched_room(self, b: int, onset: int) -> bool:
        """Whether a pitched note may start at ``onset`` (polyphony)."""
        return not self.locks.max_polyphony or int(self._sounding_counts(b, onset, onset)[0]) < self.locks.max_polyphony

    def _sounding_counts(self, b: int, lo: int, hi: int) -> np.ndarray:
        """Pitched notes sounding at each onset of ``[lo, hi]``."""
        steps = np.zeros(hi - lo + 2, dtype=np.int64)
        for start, end in self.sounding[b]:
            first, last = max(start, lo), min(end, hi + 1)
            if first < last:
                steps[first - lo] += 1
                steps[last - lo] -= 1
        return np.cumsum(steps)[:-1]

    def _note_voices(self, b: int, onset: int) -> np.ndarray:
        """Which voices of the plan a new note at ``onset`` may use: those with room
        (polyphony), and among them those short of their share, if any."""
        assert self.plan is not None
        room = self._pitched_room(b, onset)
        voices = np.array([v.is_drum or room for v in self.plan.voices])
        if self.shares:
            counts = self.voice_notes[b]
            silent = (counts == 0) & (counts.sum() >= len(counts))  # every voice plays within the first notes
            behind = voices & (silent | (counts < np.floor(MIN_SHARE_OF_FAIR * counts.sum() / len(counts))))
            if behind.any():
                return behind
        return voices


def _one_hot(size: int, value: int) -> np.ndarray:
    out = np.zeros(size, dtype=bool)
    out[value] = True
    return out


def _many_hot(size: int, values) -> np.ndarray:
    out = np.zeros(size, dtype=bool)
    out[list(values)] = True
    return out
