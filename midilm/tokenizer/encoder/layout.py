"""Which channels and tracks of a file carry what, as the reference records
them while it reads the events: the facts renumbering (step 3), default
instruments and key detection (step 4) decide on."""

from __future__ import annotations

import numpy as np

from midilm.tokenizer.columns import Columns
from midilm.tokenizer.encoder.table import Batch
from midilm.tokenizer.score import CONTROL, NOTE, PATCH
from midilm.vocab import CHANNELS, DRUM_CHANNEL, MAX_TRACKS

_KINDS = 4
"""Kinds with a channel (note, patch, control) fit in this many codes."""


class Instruments:
    """What steps 4 and 5 need to know of a file's channels and tracks
    (as read, or as renumbered). A plain class: a batch makes two per file."""

    __slots__ = ("channels", "home", "patch_channels", "track_channels", "empty")

    def __init__(self, channels: list[int], track_channels: dict[int, list[int]]) -> None:
        self.channels = channels
        """Channels of notes, program and control changes, in the reference's order."""
        self.home: dict[int, int] = {}
        """Channel -> track of its first note."""
        self.patch_channels: set[int] = set()
        self.track_channels = track_channels
        """Track -> channels of its notes."""
        self.empty: list[int] = []
        """Channels without notes."""


class Layout:
    """Which channels and tracks of a file carry what, as the reference
    records it while reading the events (before deduplication)."""

    def __init__(self, tracks: int) -> None:
        self.track_map: dict[int, list[int]] = {}
        """Channel -> tracks it is used in, in order of first use."""
        self.note_tracks: dict[int, list[int]] = {}
        """Channel -> tracks with notes on it, in order of first note."""
        self.instruments = Instruments([], {t: [] for t in range(tracks)})
        """The raw mode's view: ``track_channels`` has every track read."""
        self.pitch_class_hist: np.ndarray

    @classmethod
    def of(cls, events: Columns, batch: Batch, tracks: list[int]) -> list[Layout]:
        """The layout of each file of the batch."""
        layouts = [cls(count) for count in tracks]
        # each (file, channel, track, kind) in order of first appearance, a stretch of events at a time
        codes: dict[int, None] = {}
        hist = np.zeros(12 * batch.count, np.int64)
        for start in range(0, len(events), STRETCH):
            part = events.rows(start, start + STRETCH)
            codes.update(dict.fromkeys(_first_codes(part, batch)))
            hist += _pitch_classes(part, batch)
        for code in codes:
            code, code_kind = divmod(code, _KINDS)
            code, track = divmod(code, MAX_TRACKS)
            file, channel = divmod(code, CHANNELS)
            layouts[file].record(channel, track, code_kind)
        for layout, counts in zip(layouts, hist.reshape(batch.count, 12), strict=True):
            instruments = layout.instruments
            instruments.home = {c: tracks_of[0] for c, tracks_of in layout.note_tracks.items()}
            instruments.empty = [c for c in instruments.channels if c not in layout.note_tracks]
            layout.pitch_class_hist = counts
        return layouts

    def record(self, channel: int, track: int, kind: int) -> None:
        """An event of ``kind`` on ``channel`` and ``track``, the first of its kind there."""
        instruments = self.instruments
        tracks_of = self.track_map.get(channel)
        if tracks_of is None:
            instruments.channels.append(channel)
            tracks_of = self.track_map[channel] = []
        if track not in tracks_of:
            tracks_of.append(track)
        if kind == NOTE:
            self.note_tracks.setdefault(channel, []).append(track)
            instruments.track_channels[track].append(channel)
        elif kind == PATCH:
            instruments.patch_channels.add(channel)


STRETCH = 1 << 16
"""Events whose codes are computed at once (bounds memory on large files)."""


def _first_codes(events: Columns, batch: Batch) -> list[int]:
    """``((file * 16 + channel) * 128 + track) * 4 + kind`` of the events with
    a channel, without repeats in a row (every first appearance is kept, and
    in real files few others)."""
    kind = events.kind
    used = (kind <= CONTROL).nonzero()[0]
    codes = batch.file_key(events.file[used], events.param0[used].astype(np.int64), CHANNELS)
    codes *= MAX_TRACKS
    codes += events.track[used]
    codes *= _KINDS
    codes += kind[used]
    changed = np.empty(len(codes), bool)
    changed[:1] = True
    np.not_equal(codes[1:], codes[:-1], out=changed[1:])
    return codes[changed].tolist()


def _pitch_classes(events: Columns, batch: Batch) -> np.ndarray:
    """How often each pitch class sounds outside the drum channel, per file (flat)."""
    melodic = ((events.kind == NOTE) & (events.param0 != DRUM_CHANNEL)).nonzero()[0]
    pitch_class = batch.file_key(events.file[melodic], events.param1[melodic] % 12, 12)
    return np.bincount(pitch_class, minlength=12 * batch.count)


assert CONTROL < _KINDS
