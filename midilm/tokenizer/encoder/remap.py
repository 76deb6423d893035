"""Step 3 (``remap_track_channel``): pack channels densely and give each
(channel, track) pair with notes a track of its own."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from midilm.tokenizer.columns import Columns
from midilm.tokenizer.encoder.layout import Instruments, Layout
from midilm.tokenizer.encoder.table import Batch, append_events
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.score import CONTROL, KEY_SIG
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


def remap(events: Columns, layouts: list[Layout], options: TokenizerOptions, batch: Batch) -> list[Instruments]:
    """Step 3: pack channels densely (drums stay on 9) and give each
    (channel, track) pair with notes a track of its own, numbered from 1 in
    channel order; tempo and time signatures go to track 0, program and
    control changes of a channel with notes elsewhere to its first note track.

    Rewrites the events in place; returns each file's renumbered instruments.
    """
    renumberings = [_renumber(layout, options) for layout in layouts]
    # lookup tables by (file * CHANNELS + channel) [* MAX_TRACKS + track], of the pairs that occur
    mapped = np.zeros(batch.count * CHANNELS, np.int64)
    target = np.zeros(batch.count * CHANNELS * MAX_TRACKS, np.int64)
    mapped_at, mapped_value, target_at, target_value = [], [], [], []
    for file, (layout, renumbering) in enumerate(zip(layouts, renumberings, strict=True)):
        new_track = renumbering.new_track
        for channel, packed in renumbering.channel_map.items():
            mapped_at.append(file * CHANNELS + channel)
            mapped_value.append(packed)
            note_tracks = layout.note_tracks.get(channel)
            for track in layout.track_map[channel]:
                # a setting on a track without the channel's notes moves to the channel's first note track
                source = note_tracks[0] if note_tracks and track not in note_tracks else track
                target_at.append((file * CHANNELS + channel) * MAX_TRACKS + track)
                target_value.append(new_track.get((channel, source), 0))
    mapped[mapped_at] = mapped_value
    target[target_at] = target_value

    kind, track = events.kind, events.track
    used = kind <= CONTROL
    file_channel = batch.file_key(events.file, np.where(used, events.param0, 0), CHANNELS)
    original_track = track
    events.track = np.where(used, target[file_channel * MAX_TRACKS + track], np.where(kind == KEY_SIG, track, 0)).astype(track.dtype)
    events.param0 = np.where(used, mapped[file_channel], events.param0).astype(events.param0.dtype)
    _spread_key_signatures(events, original_track, renumberings, batch)
    return [_renumbered(layout, renumbering) for layout, renumbering in zip(layouts, renumberings, strict=True)]


def _renumbered(layout: Layout, renumbering: _Renumbering) -> Instruments:
    """A file's instruments after renumbering. A channel's first note lies on
    its first note track whatever deduplication removed (the last note of a
    pitch always stays, and notes put back at the end of the event list
    never pass a later track's), so the layout tells it all."""
    channel_map, new_track = renumbering.channel_map, renumbering.new_track
    renumbered = Instruments(list(channel_map.values()), {})
    renumbered.home = {channel_map[c]: new_track[c, tracks[0]] for c, tracks in layout.note_tracks.items()}
    renumbered.patch_channels = {channel_map[c] for c in layout.instruments.patch_channels}
    renumbered.empty = [channel_map[c] for c in layout.instruments.empty]
    for original in sorted(channel_map):
        for track_index in layout.track_map[original]:
            channels_of = renumbered.track_channels.setdefault(new_track.get((original, track_index), 0), [])
            if channel_map[original] not in channels_of:
                channels_of.append(channel_map[original])
    return renumbered


def _spread_key_signatures(events: Columns, original_track: np.ndarray, renumberings: list[_Renumbering], batch: Batch) -> None:
    """Put each key signature on the new tracks its original track became:
    the first (channel, track) pair (in original channel order) takes the
    event, each further pair gets a copy at the end of the list. On the drum
    channel the key becomes sf = 0, and copies inherit the first pair's sf.
    A key signature whose track keeps nothing is deleted, except on track 0."""
    rows = (events.kind == KEY_SIG).nonzero()[0]
    if not len(rows):
        return
    copies: list[tuple[int, ...]] = []
    delete = []
    file_of = events.file[rows].tolist()
    for row, file, track in zip(rows.tolist(), file_of, original_track[rows].tolist(), strict=True):
        pairs = renumberings[file].pairs_by_track.get(track)
        if not pairs:
            if track != 0:
                delete.append(row)
            continue
        first_channel, events.track[row] = pairs[0]
        if first_channel == DRUM_CHANNEL:
            events.param0[row] = NO_KEY_SF
        sf, mi = int(events.param0[row]), int(events.param1[row])
        time = int(events.time[row])
        for channel, track_index in pairs[1:]:
            copies.append((KEY_SIG, time, track_index, NO_KEY_SF if channel == DRUM_CHANNEL else sf, mi, 0, 0, file))
    batch.drop("key_signature_untracked", events.file, np.array(delete, np.int64))
    batch.add("key_signature_copy", np.array([copy[-1] for copy in copies], np.int64), np.arange(len(copies)))
    if delete:
        keep = np.ones(len(events), bool)
        keep[delete] = False
        events.keep(keep)
    append_events(events, copies)
