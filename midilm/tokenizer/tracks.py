"""The tracks of a token sequence, as ``midilm info`` lists them and ``accompany --keep`` and
``infill --tracks`` name them: the track numbers of the tokens themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from midilm import vocab
from midilm.tokenizer.events import EventTable
from midilm.tokenizer.grammar import check_shape

META_EVENTS = ("set_tempo", "time_signature", "key_signature")


@dataclass
class TrackInfo:
    """What one track holds. Channels are 0-based here and 1-based in :meth:`describe`."""

    track: int
    events: int = 0
    notes: int = 0
    channels: list[int] = field(default_factory=list)
    programs: list[int] = field(default_factory=list)
    """the programs (drum kits on channel 10) its channels play, in order of appearance"""
    lowest_pitch: int | None = None
    highest_pitch: int | None = None
    meta_events: int = 0
    """tempo, time and key signatures"""

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        import pretty_midi

        parts = []
        for channel in self.channels:
            names = [
                f"drum kit {p}" if channel == vocab.DRUM_CHANNEL else pretty_midi.program_to_instrument_name(p) for p in self.programs
            ] or ["Acoustic Grand Piano"]
            parts.append(f"{' / '.join(dict.fromkeys(names))} on channel {channel + 1}")
        if self.meta_events:
            parts.append(f"{self.meta_events} tempo/time/key events")
        what = "; ".join(parts) or "no notes"
        pitches = f", pitches {self.lowest_pitch}-{self.highest_pitch}" if self.notes else ""
        return f"track {self.track}: {what}, {self.notes} notes{pitches}"


def list_tracks(tokens: np.ndarray) -> list[TrackInfo]:
    """One :class:`TrackInfo` per track number used by an event, in increasing order."""
    events = EventTable.of(check_shape(tokens), strict_padding=True)
    names = [vocab.ID_EVENT[int(i)] for i in events.event_id]
    columns = (events.column("track"), events.column("channel"), events.column("patch"), events.column("pitch"))
    programs: dict[int, list[int]] = {}
    tracks: dict[int, TrackInfo] = {}
    for name, track, channel, patch, pitch in zip(names, *(c.tolist() for c in columns), strict=True):
        info = tracks.setdefault(track, TrackInfo(track))
        info.events += 1
        if name in META_EVENTS:
            info.meta_events += 1
            continue
        if channel not in info.channels:
            info.channels.append(channel)
        if name == "patch_change":
            programs.setdefault(channel, []).append(patch)
        elif name == "note":
            info.notes += 1
            info.lowest_pitch = pitch if info.lowest_pitch is None else min(info.lowest_pitch, pitch)
            info.highest_pitch = pitch if info.highest_pitch is None else max(info.highest_pitch, pitch)
    for info in tracks.values():
        info.programs = list(dict.fromkeys(p for c in info.channels for p in programs.get(c, [0])))
    return [tracks[t] for t in sorted(tracks)]
