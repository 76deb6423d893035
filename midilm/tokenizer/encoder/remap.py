"""Step 3 (``remap_track_channel``): pack channels densely and give each
(channel, track) pair with notes a track of its own."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from midilm.tokenizer.encoder.grouping import first_seen, first_values
from midilm.tokenizer.encoder.layout import Instruments, Layout
from midilm.tokenizer.encoder.table import FILE, Batch, append_events
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.score import CONTROL, KEY_SIG, KIND, NOTE, PARAM0, PATCH, TRACK
from midilm.vocab import CHANNELS, DRUM_CHANNEL, MAX_TRACKS, NO_KEY_SF


def _channel_map(layout: Layout, options: TokenizerOptions) -> dict[int, int]:
    """Original channel -> packed channel, in the reference's order (drums stay on 9)."""
    instruments = layout.instruments
    empty = set(instruments.empty)
    channel_map: dict[int, int] = {DRUM_CHANNEL: DRUM_CHANNEL} if DRUM_CHANNEL in layout.track_map else {}
    order = instruments.channels
    if options.remove_empty_channels and empty:  # channels without notes last
        order = [c for c in order if c not in empty] + instruments.empty
    for channel in order:
        if channel != DRUM_CHANNEL:
            value = len(channel_map) - (DRUM_CHANNEL in channel_map)
            channel_map[channel] = value + (value >= DRUM_CHANNEL)
    return channel_map


@dataclass
class _Renumbering:
    """A file's new channels and tracks (step 3)."""

    channel_map: dict[int, int]
    """Original channel -> packed channel."""
    new_track: dict[tuple[int, int], int]
    """(original channel, original track) -> new track, for the pairs that get one."""

    @cached_property
    def pairs_by_track(self) -> dict[int, list[tuple[int, int]]]:
        """Original track -> the (packed channel, new track) pairs it became, in original channel order."""
        pairs: dict[int, list[tuple[int, int]]] = {}
        for (channel, track), renumbered in sorted(self.new_track.items()):
            pairs.setdefault(track, []).append((self.channel_map[channel], renumbered))
        return pairs


def _renumber(layout: Layout, options: TokenizerOptions) -> _Renumbering:
    """Number the (channel, track) pairs that keep events from 1, in packed
    channel order, the tracks of each channel in order of first use; a
    channel with notes keeps only its tracks with notes."""
    channel_map = _channel_map(layout, options)
    empty = set(layout.instruments.empty)
    new_track: dict[tuple[int, int], int] = {}
    for channel in sorted(channel_map, key=channel_map.get):
        if options.remove_empty_channels and channel in empty:
            continue
        note_tracks = layout.note_tracks.get(channel, [])
        for track in layout.track_map[channel]:
            if not note_tracks or track in note_tracks:
                new_track[channel, track] = len(new_track) + 1
    return _Renumbering(channel_map, new_track)


def remap(events: np.ndarray, layouts: list[Layout], options: TokenizerOptions, batch: Batch) -> tuple[np.ndarray, list[Instruments]]:
    """Step 3: pack channels densely (drums stay on 9) and give each
    (channel, track) pair with notes a track of its own, numbered from 1 in
    channel order; tempo and time signatures go to track 0, program and
    control changes of a channel with notes elsewhere to its first note track.

    Returns the rewritten events and each file's renumbered instruments.
    """
    renumberings = [_renumber(layout, options) for layout in layouts]
    # lookup tables indexed by (file * CHANNELS + channel) [* MAX_TRACKS + track]
    mapped = np.zeros(batch.count * CHANNELS, np.int64)
    home_track = np.full(batch.count * CHANNELS, -1, np.int64)
    new_track = np.zeros(batch.count * CHANNELS * MAX_TRACKS, np.int64)
    has_notes = np.zeros(batch.count * CHANNELS * MAX_TRACKS, bool)
    mapped_at, mapped_value, home_at, home_value, at, value, note_at = [], [], [], [], [], [], []
    for file, (layout, renumbering) in enumerate(zip(layouts, renumberings, strict=True)):
        base = file * CHANNELS
        for channel, packed in renumbering.channel_map.items():
            mapped_at.append(base + channel)
            mapped_value.append(packed)
        for channel, note_tracks in layout.note_tracks.items():
            home_at.append(base + channel)
            home_value.append(note_tracks[0])
            note_at += [(base + channel) * MAX_TRACKS + track for track in note_tracks]
        for (channel, track), renumbered in renumbering.new_track.items():
            at.append((base + channel) * MAX_TRACKS + track)
            value.append(renumbered)
    mapped[mapped_at] = mapped_value
    home_track[home_at] = home_value
    new_track[at] = value
    has_notes[note_at] = True

    kind, track = events[KIND], events[TRACK]
    original_track = track.copy()
    used = kind <= CONTROL
    file_channel = events[FILE] * CHANNELS + np.where(used, events[PARAM0], 0)
    home = home_track[file_channel]
    moved = used & (kind != NOTE) & (home >= 0) & ~has_notes[file_channel * MAX_TRACKS + track]
    source = np.where(moved, home, track)
    events[TRACK] = np.where(used, new_track[file_channel * MAX_TRACKS + source], np.where(kind == KEY_SIG, track, 0))
    events[PARAM0, used] = mapped[file_channel[used]]
    events = _spread_key_signatures(events, original_track, renumberings, batch)

    instruments = [Instruments(list(renumbering.channel_map.values()), {}) for renumbering in renumberings]
    kind = events[KIND]
    file_channel = events[FILE] * CHANNELS + events[PARAM0]
    notes = (kind == NOTE).nonzero()[0]
    for code, track_index in zip(*first_values(file_channel[notes], events[TRACK, notes]), strict=True):
        instruments[code // CHANNELS].home[code % CHANNELS] = track_index
    for code in first_seen(file_channel[kind == PATCH]).tolist():
        instruments[code // CHANNELS].patch_channels.add(code % CHANNELS)
    for layout, renumbering, renumbered in zip(layouts, renumberings, instruments, strict=True):
        channel_map = renumbering.channel_map
        renumbered.empty = [channel_map[c] for c in layout.instruments.empty]
        for original in sorted(channel_map):
            for track_index in layout.track_map[original]:
                channels_of = renumbered.track_channels.setdefault(renumbering.new_track.get((original, track_index), 0), [])
                if channel_map[original] not in channels_of:
                    channels_of.append(channel_map[original])
    return events, instruments


def _spread_key_signatures(events: np.ndarray, original_track: np.ndarray, renumberings: list[_Renumbering], batch: Batch) -> np.ndarray:
    """Put each key signature on the new tracks its original track became:
    the first (channel, track) pair (in original channel order) takes the
    event, each further pair gets a copy at the end of the list. On the drum
    channel the key becomes sf = 0, and copies inherit the first pair's sf.
    A key signature whose track keeps nothing is deleted, except on track 0."""
    rows = (events[KIND] == KEY_SIG).nonzero()[0]
    if not len(rows):
        return events
    copies = []
    delete = []
    for row, file, track in zip(rows.tolist(), events[FILE, rows].tolist(), original_track[rows].tolist(), strict=True):
        pairs = renumberings[file].pairs_by_track.get(track)
        if not pairs:
            if track != 0:
                delete.append(row)
            continue
        first_channel, events[TRACK, row] = pairs[0]
        if first_channel == DRUM_CHANNEL:
            events[PARAM0, row] = NO_KEY_SF
        for channel, track_index in pairs[1:]:
            copy = events[:, row].copy()
            copy[TRACK] = track_index
            if channel == DRUM_CHANNEL:
                copy[PARAM0] = NO_KEY_SF
            copies.append(copy)
    batch.drop("key_signature_untracked", events[FILE, delete])
    batch.add("key_signature_copy", np.array([copy[FILE] for copy in copies], np.int64))
    if delete:
        events = np.delete(events, delete, axis=1)
    return append_events(events, copies)
