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
_CHANNEL_EVENTS = [vocab.EVENT_ID[name] for name in ("note", "patch_change", "control_change")]
_TRACK_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("track")
_CHANNEL_SLOT = 1 + vocab.EVENT_PARAMS["note"].index("channel")
DRUMS_WORD = "drums"
"""In an instrument list, the drum kit (any kit); ``drums:KIT`` names one."""


DRUM_KEYS = (35, 81)
"""The General MIDI percussion keys (Acoustic Bass Drum .. Open Triangle): the pitches a drum kit sounds."""
_FAMILY_RANGES = (
    (21, 108),  # piano
    (36, 108),  # chromatic percussion
    (36, 96),  # organ
    (40, 88),  # guitar
    (28, 67),  # bass
    (28, 103),  # strings (single instruments below)
    (28, 103),  # ensembles
    (34, 86),  # brass
    (34, 94),  # reeds
    (60, 108),  # pipes
    (36, 96),  # synth lead
    (36, 96),  # synth pad
    (36, 96),  # synth effects
    (48, 84),  # ethnic
    (36, 84),  # percussive
    (0, 127),  # sound effects
)
_PROGRAM_RANGES = {
    40: (55, 103), 41: (48, 91), 42: (36, 76), 43: (28, 67), 46: (23, 103), 47: (36, 57),  # violin .. timpani
    52: (40, 84), 53: (40, 84), 54: (40, 84),  # choir
    56: (54, 86), 57: (34, 75), 58: (28, 58), 59: (54, 86), 60: (34, 77),  # trumpet, trombone, tuba, muted, horn
    64: (56, 88), 65: (49, 81), 66: (44, 76), 67: (36, 69), 68: (58, 91), 69: (52, 81), 70: (34, 75), 71: (50, 94),
    72: (74, 108),  # piccolo
}  # fmt: skip
"""Written ranges of single instruments, where their family's is too wide (standard orchestration ranges)."""


def pitch_range(program: int, is_drum: bool) -> tuple[int, int]:
    """The lowest and highest pitch an instrument plays (inclusive); a drum kit's percussion keys."""
    if is_drum:
        return DRUM_KEYS
    return _PROGRAM_RANGES.get(program, _FAMILY_RANGES[program // 8])


@dataclass(frozen=True)
class Voice:
    """One instrument of a plan: its track, 0-based channel and program (a drum kit on the drum channel)."""

    track: int
    channel: int
    program: int

    @property
    def is_drum(self) -> bool:
        return self.channel == DRUM_CHANNEL

    @property
    def pitches(self) -> tuple[int, int]:
        """The pitches it plays (inclusive), see :func:`pitch_range`."""
        return pitch_range(self.program, self.is_drum)

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

    def retracked(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` with every note, patch and control change on a voice's channel moved
        to that voice's track (for voices that follow their channels, see EventRules)."""
        rows = np.array(rows, dtype=vocab.TOKEN_DTYPE)
        channel = rows[:, _CHANNEL_SLOT].astype(np.int64) - vocab.PARAM_OFFSET["channel"]
        with_channel = np.isin(rows[:, 0], _CHANNEL_EVENTS)
        for voice in self.voices:
            rows[with_channel & (channel == voice.channel), _TRACK_SLOT] = vocab.PARAM_OFFSET["track"] + voice.track
        return rows

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
    avoid_tracks: Collection[int] = (),
    avoid_channels: Collection[int] = (),
    what: str = "instruments",
) -> InstrumentPlan:
    """Voices for the named melodic programs (the lowest free melodic channels, in
    order) and a drum kit on the drum channel (last), on the lowest track numbers
    from 1 not in ``avoid_tracks``; ``avoid_channels`` (0-based) are never used."""
    programs = list(programs)
    free = [c for c in range(CHANNELS) if c != DRUM_CHANNEL and c not in avoid_channels]
    if len(programs) > len(free):
        raise ConfigError(f"{what}: {len(programs)} instruments named, but only {len(free)} melodic MIDI channels are free")
    if drum_kit is not None and DRUM_CHANNEL in avoid_channels:
        raise ConfigError(f"{what}: drums play on MIDI channel {DRUM_CHANNEL + 1}, which is disabled or already used")
    channels = free[: len(programs)] + ([DRUM_CHANNEL] if drum_kit is not None else [])
    tracks = [t for t in range(1, vocab.PARAM_SIZES["track"]) if t not in avoid_tracks][: len(channels)]
    if len(tracks) < len(channels):
        raise ConfigError(f"{what}: {len(channels)} new tracks do not fit beside the {len(avoid_tracks)} kept ones (tracks go up to 127)")
    return InstrumentPlan(tuple(Voice(t, c, p) for t, c, p in zip(tracks, channels, [*programs, drum_kit], strict=False)))


def named_plan(
    instruments: str, drums: str, *, avoid_tracks: Collection[int] = (), avoid_channels: Collection[int] = (), what: str = "instruments"
) -> InstrumentPlan:
    """The plan of an instrument list and a drum kit as users type them."""
    programs = [instrument_program(name) for name in split_list(instruments)]
    kit = drum_kit_program(drums) if drums.strip() else None
    return plan_voices(programs, kit, avoid_tracks=avoid_tracks, avoid_channels=avoid_channels, what=what)


TEXTURE_TRACKS = 4
"""Track numbers the model may spread named instruments over, at least: the four voices of
a chorale (tracks keep voices apart for the model; each instrument is one track in the output)."""


def texture_tracks(plan: InstrumentPlan, taken: set[int], voices: int = TEXTURE_TRACKS) -> frozenset[int]:
    """The plan's tracks and the lowest further numbers not ``taken``, ``voices`` in all
    (at least one per instrument)."""
    tracks = [v.track for v in plan.voices]
    spare = (t for t in range(1, vocab.PARAM_SIZES["track"]) if t not in taken and t not in tracks)
    tracks += [t for _, t in zip(range(max(voices - len(tracks), 0)), spare, strict=False)]
    return frozenset(tracks)
