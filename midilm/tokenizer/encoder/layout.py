"""Which channels and tracks of a file carry what, as the reference records
them while it reads the events: the facts renumbering (step 3), default
instruments and key detection (step 4) decide on."""

from __future__ import annotations

import numpy as np

from midilm.tokenizer.encoder.grouping import first_seen
from midilm.tokenizer.encoder.table import FILE
from midilm.tokenizer.score import CONTROL, KIND, NOTE, PARAM0, PARAM1, PATCH, TRACK
from midilm.vocab import CHANNELS, DRUM_CHANNEL, MAX_TRACKS


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
    def of(cls, events: np.ndarray, files: int, tracks: list[int]) -> list[Layout]:
        """The layout of each file of the batch."""
        layouts = [cls(count) for count in tracks]
        kind = events[KIND]
        used = (kind <= CONTROL).nonzero()[0]
        if not len(used):
            for layout in layouts:
                layout.pitch_class_hist = np.zeros(12, np.int64)
            return layouts
        file, channel, track, is_note = events[FILE, used], events[PARAM0, used], events[TRACK, used], kind[used] == NOTE
        codes = first_seen((((file * CHANNELS) + channel) * MAX_TRACKS + track) * 2 + is_note)
        pairs = codes >> 1
        file_channels = pairs // MAX_TRACKS
        for f, c, t, note in zip(
            (file_channels // CHANNELS).tolist(),
            (file_channels % CHANNELS).tolist(),
            (pairs % MAX_TRACKS).tolist(),
            (codes & 1).tolist(),
            strict=True,
        ):
            layout = layouts[f]
            instruments = layout.instruments
            if c not in layout.track_map:
                instruments.channels.append(c)
                layout.track_map[c] = []
            if t not in layout.track_map[c]:
                layout.track_map[c].append(t)
            if note:
                layout.note_tracks.setdefault(c, []).append(t)
                instruments.track_channels[t].append(c)
        for layout in layouts:
            instruments = layout.instruments
            instruments.home = {c: tracks_of[0] for c, tracks_of in layout.note_tracks.items()}
            instruments.empty = [c for c in instruments.channels if c not in layout.note_tracks]
        patch = kind[used] == PATCH
        for code in first_seen(file[patch] * CHANNELS + channel[patch]).tolist():
            layouts[code // CHANNELS].instruments.patch_channels.add(code % CHANNELS)
        melodic = is_note & (channel != DRUM_CHANNEL)
        hist = np.bincount(file[melodic] * 12 + events[PARAM1, used[melodic]] % 12, minlength=12 * files).reshape(files, 12)
        for layout, counts in zip(layouts, hist, strict=True):
            layout.pitch_class_hist = counts
        return layouts
