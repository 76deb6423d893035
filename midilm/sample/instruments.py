"""Who may play: instrument and channel lists as users type them, and the plan of
voices a piece is written for.

A *voice* is one instrument on its own track and MIDI channel, the layout the
optimised tokenizer gives real files. Named instruments (``--instruments``,
``--drums``, ``accompany --add``) become an :class:`InstrumentPlan`; its patch
changes start the piece, and with the instrument lock the sampler's masks keep
every new note on one of its voices. Channels are 0-based inside midilm and
1-based (as MIDI players and DAWs show them) where users type them.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

import numpy as np

from midilm import vocab
from midilm.errors import ConfigError
from midilm.sample.controls import DRUM_CHANNEL, drum_kit_program, instrument_program

CHANNELS = vocab.PARAM_SIZES["channel"]
DRUMS_WORD = "drums"
"""In an instrument list, the drum kit (any kit); ``drums:KIT`` names one."""


@dataclass(frozen=True)
class Voice:
    """One instrument of a plan: its track, 0-based channel and program (a drum kit on the drum channel)."""

    track: int
    channel: int
    program: int

    @property
    def is_drum(self) -> bool:
        return self.channel == DRUM_CHANNEL

    def describe(self) -> str:
        import pretty_midi

        what = f"drum kit {self.program}" if self.is_drum else pretty_midi.program_to_instrument_name(self.program)
        return f"{what} (track {self.track}, channel {self.channel + 1})"


@dataclass(frozen=True)
class InstrumentPlan:
    """The voices new notes may use, in the order they were named."""

    voices: tuple[Voice, ...]

    def __post_init__(self) -> None:
        tracks = [v.track for v in self.voices]
        if len(set(tracks)) != len(tracks):
            raise ConfigError(f"instrument plan: two voices share a track ({tracks})")

    def voice_of_track(self, track: int) -> int:
        """Index of the voice on ``track`` (-1: none)."""
        return next((i for i, v in enumerate(self.voices) if v.track == track), -1)

    def patch_rows(self) -> np.ndarray:
        """One patch change per voice at time 0, as token rows [n, 8]."""
        rows = [
            vocab.encode_event("patch_change", time1=0, time2=0, track=v.track, channel=v.channel, patch=v.program) for v in self.voices
        ]
        return np.stack(rows) if rows else np.zeros((0, vocab.EVENT_LEN), dtype=vocab.TOKEN_DTYPE)


@dataclass(frozen=True)
class AllowedInstruments:
    """``--allow-instruments``: melodic programs, and whether (which kits of) the drum channel may play."""

    programs: frozenset[int]
    drums: bool
    kits: frozenset[int] | None
    """None: any kit, when ``drums``."""

    def allows(self, channel: int, program: int) -> bool:
        """Whether a note on ``channel`` whose program (kit on the drum channel) is ``program`` is allowed."""
        if channel == DRUM_CHANNEL:
            return self.drums and (self.kits is None or program in self.kits)
        return program in self.programs


def split_list(text: str) -> list[str]:
    """The non-empty items of a comma-separated list."""
    return [item.strip() for item in text.split(",") if item.strip()]


def parse_allowed(text: str) -> AllowedInstruments | None:
    """``"piano,bass,drums"`` or ``"0,33,drums:jazz"`` as allowed instruments; None for an empty list (anything)."""
    items = split_list(text)
    if not items:
        return None
    programs: set[int] = set()
    kits: set[int] = set()
    any_kit = False
    for item in items:
        word, _, kit = item.partition(":")
        if word.strip().lower() == DRUMS_WORD:
            if kit.strip():
                kits.add(drum_kit_program(kit))
            else:
                any_kit = True
        else:
            programs.add(instrument_program(item))
    drums = any_kit or bool(kits)
    return AllowedInstruments(frozenset(programs), drums, None if any_kit else frozenset(kits) or None)


def parse_channels(text: str, setting: str = "disable_channels") -> frozenset[int]:
    """1-based MIDI channels ``"10"`` or ``"2,3"`` as 0-based channel numbers."""
    channels = set()
    for item in split_list(text):
        if not item.isdigit() or not 1 <= int(item) <= CHANNELS:
            raise ConfigError(f"{setting}: {item!r} is not a MIDI channel (1-{CHANNELS}; 10 is the drum channel)")
        channels.add(int(item) - 1)
    return frozenset(channels)


def plan_voices(
    programs: Iterable[int],
    drum_kit: int | None,
    *,
    first_track: int = 1,
    avoid_channels: Collection[int] = (),
    what: str = "instruments",
) -> InstrumentPlan:
    """Voices for the named melodic programs (tracks from ``first_track``, the
    lowest free melodic channels in order) and a drum kit on the drum channel
    (last track); ``avoid_channels`` (0-based) are never used."""
    programs = list(programs)
    free = [c for c in range(CHANNELS) if c != DRUM_CHANNEL and c not in avoid_channels]
    if len(programs) > len(free):
        raise ConfigError(f"{what}: {len(programs)} instruments named, but only {len(free)} melodic MIDI channels are free")
    voices = [Voice(first_track + i, channel, program) for i, (channel, program) in enumerate(zip(free, programs, strict=False))]
    if drum_kit is not None:
        if DRUM_CHANNEL in avoid_channels:
            raise ConfigError(f"{what}: drums play on MIDI channel {DRUM_CHANNEL + 1}, which is disabled or already used")
        voices.append(Voice(first_track + len(programs), DRUM_CHANNEL, drum_kit))
    return InstrumentPlan(tuple(voices))


def named_plan(
    instruments: str, drums: str, *, first_track: int = 1, avoid_channels: Collection[int] = (), what: str = "instruments"
) -> InstrumentPlan:
    """The plan of an instrument list and a drum kit as users type them."""
    programs = [instrument_program(name) for name in split_list(instruments)]
    kit = drum_kit_program(drums) if drums.strip() else None
    return plan_voices(programs, kit, first_track=first_track, avoid_channels=avoid_channels, what=what)
