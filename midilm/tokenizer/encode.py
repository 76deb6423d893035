"""Score -> v2 tokens, exactly as the reference's ``MIDITokenizerV2.tokenize``.

The reference walks Python lists event by event; this module runs the same
steps on an integer table with numpy, in the same order (``docs/tokenizer.md``
describes each step and its quirks):

1. select: quantise, check each event, filter repeated programs, control
   changes within ``cc_eps`` and tempos within ``tempo_eps`` (per track);
2. deduplicate: the reference's insertion-ordered dict keyed by kind, 1/16
   step, track and channel/pitch/controller, plus its note-overlap rule;
3. renumber tracks and channels (``remap_track_channel``);
4. add default instruments, detect or fix key signatures;
5. sort, collapse the "setup" before the first note, emit with range checks.

The working table extends the score table (:mod:`midilm.tokenizer.score`):
TIME replaces TICK (1/16 beats from the start), PARAM0..3 hold token values
(channel, pitch, velocity, duration of a note; bpm of a tempo; nn - 1, dd - 1
of a time signature; sf + 7, mi of a key signature) and POSITION is the
event's place in the reference's event list, which breaks every tie the way
the reference's stable sort does.
"""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.errors import MidiFileError
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import CONTROL, KEY_SIG, KIND, NOTE, PARAM0, PARAM1, PARAM2, PARAM3, PATCH, TEMPO, TIME_SIG, TRACK, MidiScore
from midilm.tokenizer.score import TICK as TIME

POSITION = 7
WIDTH = 8
"""Columns of the working table."""

MAX_TRACKS = vocab.PARAM_SIZES["track"]
"""The reference reads only this many tracks of a score."""
STEPS_PER_BEAT = vocab.PARAM_SIZES["time2"]
DRUM_CHANNEL = 9
NO_KEY_SF = 7
"""Token value of sf = 0 (C major / A minor), which the reference treats as "unknown key"."""
MAX_TIME1 = vocab.PARAM_SIZES["time1"]
MAX_DURATION = vocab.PARAM_SIZES["duration"]
MAX_BPM = vocab.PARAM_SIZES["bpm"] - 1
MAX_TICKS = 1 << 48
"""Larger times would lose exactness in float64 (the reference's arithmetic)."""

_SORT_RANK = np.array([5, 3, 4, 2, 0, 1], np.int64)
"""Rank of each kind (note, patch, control, tempo, time sig, key sig) among events at the same time and track."""

_PARAM_NAMES = [vocab.EVENT_PARAMS[name][3:] for name in vocab.EVENT_NAMES]
_PARAM_OFFSET = np.zeros((len(_PARAM_NAMES), 4), np.int64)
_PARAM_LIMIT = np.ones((len(_PARAM_NAMES), 4), np.int64)
for _kind, _names in enumerate(_PARAM_NAMES):
    for _slot, _name in enumerate(_names):
        _PARAM_OFFSET[_kind, _slot] = vocab.PARAM_OFFSET[_name]
        _PARAM_LIMIT[_kind, _slot] = vocab.PARAM_SIZES[_name]
_EVENT_ID = np.array([vocab.EVENT_ID[name] for name in vocab.EVENT_NAMES], np.int64)


def encode(score: MidiScore, options: TokenizerOptions, report: TokenizeReport) -> np.ndarray:
    """Token rows [n, 8] (``vocab.TOKEN_DTYPE``) of a score; fills ``report``."""
    options = options.resolved()
    report.ticks_per_beat = score.ticks_per_beat
    report.tracks = score.tracks
    report.input_events = len(score.events) + sum(score.dropped.values())
    for reason, count in score.dropped.items():
        report.drop(reason, count)
    report.warnings.extend(score.warnings)

    events, pre_dedup_key_sf = _select(score, options, report)
    layout = _Layout.of(events, min(score.tracks, MAX_TRACKS))
    events = _deduplicate(events, report)
    if options.remap_track_channel:
        events, channels, home, patch_channels, track_channels, empty = _remap(events, layout, options, report)
        key_sf = events[events[:, KIND] == KEY_SIG, PARAM0]
    else:
        channels, home, patch_channels = layout.channels, layout.first_note_track, layout.patch_channels
        track_channels, empty, key_sf = layout.track_channels, layout.empty_channels, pre_dedup_key_sf
    if options.add_default_instr:
        events = _add_default_instruments(events, channels, home, patch_channels, report)
    events = _fix_key_signatures(events, key_sf, layout.pitch_class_hist, track_channels, options, report)
    events = _collapse_setup(_sort(events), report)
    if options.remove_empty_channels and empty:
        events = _drop_empty_channels(events, empty, report)
    return _emit(events, options, report)


def quantize(ticks: np.ndarray, ticks_per_beat: float) -> np.ndarray:
    """``round(16 * tick / ticks_per_beat)`` with Python's float division and
    round-half-even, as the reference computes it (exact for ticks < 2**48)."""
    return np.rint((ticks * STEPS_PER_BEAT) / ticks_per_beat).astype(np.int64)


def tempo_to_bpm(microseconds_per_beat: np.ndarray) -> np.ndarray:
    """``min(int(60 / (tempo / 10**6)), 383)``, the reference's float arithmetic."""
    return np.minimum((60 / (microseconds_per_beat / 1e6)).astype(np.int64), MAX_BPM)


_VALIDITY = (
    ("invalid_tempo", TEMPO, lambda first, second: first == 0),
    ("invalid_time_signature", TIME_SIG, lambda first, second: (first < 1) | (first > 16) | (second < 1) | (second > 4)),
    ("invalid_key_signature", KEY_SIG, lambda first, second: (first < -7) | (first > 7) | (second < 0) | (second > 1)),
)
"""The reference's checks of meta events before anything else: (reason, kind, invalid rows)."""


def _select(score: MidiScore, options: TokenizerOptions, report: TokenizeReport) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: the events the reference keeps from the score, as a working table
    in score order; also the sf values of every key signature kept here (raw
    mode decides about key detection on them, before deduplication)."""
    table = score.events
    if not len(table):
        return np.zeros((0, WIDTH), np.int64), np.zeros(0, np.int64)
    if score.ticks_per_beat <= 0:
        raise MidiFileError(report.source, f"ticks per beat is {score.ticks_per_beat}")
    if np.abs(table).max() >= MAX_TICKS:
        raise MidiFileError(report.source, "event times or values beyond 2**48: not a plausible score")
    kind = table[:, KIND]
    present = np.bincount(kind, minlength=6)
    keep = table[:, TRACK] < MAX_TRACKS
    report.drop("track_limit", len(table) - np.count_nonzero(keep))
    first, second = table[:, PARAM0], table[:, PARAM1]
    if present[:3].any():
        channel = first[kind <= CONTROL]
        if channel.min() < 0 or channel.max() > 15:
            invalid = keep & (kind <= CONTROL) & ((first < 0) | (first > 15))
            report.drop("invalid_channel", np.count_nonzero(invalid))
            keep &= ~invalid
    for reason, meta_kind, is_invalid in _VALIDITY:
        if present[meta_kind]:
            rows = (kind == meta_kind).nonzero()[0]
            invalid = rows[is_invalid(first[rows], second[rows]) & keep[rows]]
            report.drop(reason, len(invalid))
            keep[invalid] = False
    table = table[keep]
    kind = table[:, KIND]

    events = np.empty((len(table), WIDTH), np.int64)
    events[:, :POSITION] = table
    events[:, TIME] = quantize(table[:, TIME], score.ticks_per_beat)
    note = kind == NOTE
    events[note, PARAM3] = np.maximum(1, quantize(table[note, PARAM3], score.ticks_per_beat))
    if present[TEMPO]:
        tempo = kind == TEMPO
        events[tempo, PARAM0] = tempo_to_bpm(table[tempo, PARAM0])
    if present[TIME_SIG]:
        time_sig = kind == TIME_SIG
        events[time_sig, PARAM0:PARAM2] -= 1
        events[time_sig, PARAM2:POSITION] = 0
    if present[KEY_SIG]:
        events[kind == KEY_SIG, PARAM0] += NO_KEY_SF

    keep = _repeat_filter(events, present, options, report)
    if keep is not None:
        events = events[keep]
    events[:, POSITION] = np.arange(len(events))
    return events, events[events[:, KIND] == KEY_SIG, PARAM0] if present[KEY_SIG] else np.zeros(0, np.int64)


def _repeat_filter(events: np.ndarray, present: np.ndarray, options: TokenizerOptions, report: TokenizeReport) -> np.ndarray | None:
    """Which events survive the reference's per-track repeat filters (None:
    all): a program equal to the channel's last one, a control value within
    ``cc_eps`` of the last kept one (initially 0), a tempo within
    ``tempo_eps`` bpm of the last kept one (initially 0)."""
    if not present[PATCH] and not present[CONTROL] and not present[TEMPO]:
        return None
    keep = np.ones(len(events), bool)
    kind = events[:, KIND]
    if present[PATCH]:
        rows = (kind == PATCH).nonzero()[0]
        ordered = rows[_order(events[rows, TRACK] * 16 + events[rows, PARAM0])]
        same = (events[ordered[1:], TRACK] == events[ordered[:-1], TRACK]) & (events[ordered[1:], PARAM0] == events[ordered[:-1], PARAM0])
        repeat = same & (events[ordered[1:], PARAM1] == events[ordered[:-1], PARAM1])
        keep[ordered[1:][repeat]] = False
        report.drop("repeated_patch", np.count_nonzero(repeat))
    if present[CONTROL]:
        rows = (kind == CONTROL).nonzero()[0]
        keep[rows] = _hysteresis((events[rows, TRACK], events[rows, PARAM0], events[rows, PARAM1]), events[rows, PARAM2], options.cc_eps)
        report.drop("cc_within_eps", len(rows) - np.count_nonzero(keep[rows]))
    if present[TEMPO]:
        rows = (kind == TEMPO).nonzero()[0]
        keep[rows] = _hysteresis((events[rows, TRACK],), events[rows, PARAM0], options.tempo_eps)
        report.drop("tempo_within_eps", len(rows) - np.count_nonzero(keep[rows]))
    return keep


def _hysteresis(keys: tuple[np.ndarray, ...], values: np.ndarray, eps: int) -> np.ndarray:
    """Keep a value when it differs by at least ``eps`` from the last kept
    value of its key (0 before the first); one pass per key, in order."""
    if eps <= 0:
        return np.ones(len(values), bool)
    order = _order(*keys)
    starts = _group_bounds(*(key[order] for key in keys))[0]
    kept_at = []
    last = 0
    for i, (start, value) in enumerate(zip(starts.tolist(), values[order].tolist(), strict=True)):
        if start:
            last = 0
        if value - last >= eps or last - value >= eps:
            last = value
            kept_at.append(i)
    kept = np.zeros(len(values), bool)
    kept[order[kept_at]] = True
    return kept


SMALL = 2048
"""Below this many rows one ``lexsort`` call is cheaper than packing a key."""


def _order(*columns: np.ndarray) -> np.ndarray:
    """Indices that sort rows by the columns (first column most significant),
    ties in row order: a stable lexicographic sort, done as one argsort of a
    packed integer key when the values allow it."""
    count = len(columns[0])
    if count < 2:
        return np.arange(count)
    if count < SMALL:
        return np.lexsort((np.arange(count), *columns[::-1]))
    key = None
    span_product = count
    for column in columns:
        low, high = int(column.min()), int(column.max())
        span = high - low + 1
        span_product *= span
        if span_product >= 1 << 62:
            return np.lexsort((np.arange(count), *columns[::-1]))
        shifted = column - low if low else column
        key = shifted if key is None else key * span + shifted
    return np.argsort(key * count + np.arange(count))


def _first_seen(values: np.ndarray) -> list[int]:
    """Distinct values in order of first appearance."""
    if not len(values):
        return []
    order = _order(values)
    ordered = values[order]
    starts = np.empty(len(values), bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    return ordered[starts][np.argsort(order[starts])].tolist()


class _Layout:
    """Which channels and tracks carry what, as the reference records it
    while reading the events (before deduplication)."""

    def __init__(self) -> None:
        self.channels: list[int] = []
        """Channels of notes, program and control changes, in order of first use."""
        self.track_map: dict[int, list[int]] = {}
        """Channel -> tracks it is used in, in order of first use."""
        self.note_tracks: dict[int, list[int]] = {}
        """Channel -> tracks with notes on it, in order of first note."""
        self.first_note_track: dict[int, int] = {}
        self.empty_channels: list[int] = []
        self.patch_channels: set[int] = set()
        self.track_channels: dict[int, list[int]] = {}
        """Track -> channels of its notes, for every track read (raw mode's view)."""
        self.pitch_class_hist = np.zeros(12, np.int64)

    @classmethod
    def of(cls, events: np.ndarray, tracks: int) -> _Layout:
        layout = cls()
        layout.track_channels = {t: [] for t in range(tracks)}
        kind = events[:, KIND]
        used = (kind <= CONTROL).nonzero()[0]
        if not len(used):
            return layout
        channel, track, is_note = events[used, PARAM0], events[used, TRACK], kind[used] == NOTE
        for code in _first_seen((channel * MAX_TRACKS + track) * 2 + is_note):
            pair, note = divmod(code, 2)
            c, t = divmod(pair, MAX_TRACKS)
            if c not in layout.track_map:
                layout.channels.append(c)
                layout.track_map[c] = []
            if t not in layout.track_map[c]:
                layout.track_map[c].append(t)
            if note:
                layout.note_tracks.setdefault(c, []).append(t)
                layout.track_channels[t].append(c)
        layout.first_note_track = {c: tracks_of[0] for c, tracks_of in layout.note_tracks.items()}
        layout.empty_channels = [c for c in layout.channels if c not in layout.note_tracks]
        layout.patch_channels = set(channel[kind[used] == PATCH].tolist())
        melodic = is_note & (channel != DRUM_CHANNEL)
        layout.pitch_class_hist = np.bincount(events[used[melodic], PARAM1] % 12, minlength=12)
        return layout


def _dedup_key(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two key columns besides kind, time and track that make events
    "the same" for the reference: (channel, pitch) of notes, (channel,
    controller) of control changes, channel of program changes."""
    kind = events[:, KIND]
    first = np.where(kind <= CONTROL, events[:, PARAM0], 0)
    second = np.where((kind == NOTE) | (kind == CONTROL), events[:, PARAM1], 0)
    return first, second


def _group_bounds(*columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For rows sorted by ``columns``: whether each row starts / ends a group of equal keys."""
    count = len(columns[0])
    starts, ends = np.empty(count, bool), np.empty(count, bool)
    if count:
        starts[0] = ends[-1] = True
        differs = starts[1:]
        np.not_equal(columns[0][1:], columns[0][:-1], out=differs)
        for column in columns[1:]:
            differs |= column[1:] != column[:-1]
        ends[:-1] = differs
    return starts, ends


def _deduplicate(events: np.ndarray, report: TokenizeReport) -> np.ndarray:
    """Step 2: the reference's event dict, in its insertion order.

    A later event with the same key replaces the earlier one in its place. A
    note first shortens the previous note of the same (track, channel,
    pitch) to at most the gap between their starts; a note shortened to 0 is
    removed from the dict, so its successor is inserted afresh at the end.
    """
    count = len(events)
    if count < 2:
        return events
    events = events.copy()
    popped = np.zeros(count, bool)
    notes = (events[:, KIND] == NOTE).nonzero()[0]
    if len(notes) > 1:
        track, channel, pitch = events[notes, TRACK], events[notes, PARAM0], events[notes, PARAM1]
        voice_order = _order(track, channel, pitch)
        by_voice = notes[voice_order]
        same_voice = ~_group_bounds(track[voice_order], channel[voice_order], pitch[voice_order])[1][:-1]
        earlier, later = by_voice[:-1][same_voice], by_voice[1:][same_voice]
        gap = events[later, TIME] - events[earlier, TIME]
        events[earlier, PARAM3] = np.where(gap > 0, np.minimum(events[earlier, PARAM3], gap), events[earlier, PARAM3])
        popped[earlier[gap <= 0]] = True

    first, second = _dedup_key(events)
    kind, time, track = events[:, KIND], events[:, TIME], events[:, TRACK]
    order = _order(kind, time, track, first, second)
    starts, ends = _group_bounds(kind[order], time[order], track[order], first[order], second[order])
    if ends.all() and not popped.any():
        return events
    popped_sorted = popped[order]
    chain_start = starts.copy()
    chain_start[1:] |= popped_sorted[:-1]
    chain_first = order[np.maximum.accumulate(np.where(chain_start, np.arange(count), 0))]
    survives = ends & ~popped_sorted
    report.drop("note_overlap", np.count_nonzero(popped))
    report.drop("duplicate", count - np.count_nonzero(popped) - np.count_nonzero(survives))
    result = events[order[survives]]
    result[:, POSITION] = chain_first[survives]
    return result[np.argsort(result[:, POSITION])]


def _remap(
    events: np.ndarray, layout: _Layout, options: TokenizerOptions, report: TokenizeReport
) -> tuple[np.ndarray, list[int], dict[int, int], set[int], dict[int, list[int]], list[int]]:
    """Step 3: pack channels densely (drums stay on 9) and give each
    (channel, track) pair with notes a track of its own, numbered from 1 in
    channel order; tempo and time signatures go to track 0, program and
    control changes of a channel with notes elsewhere to its first note track.

    Returns the rewritten events, the channels in the reference's order, each
    channel's home track (of its first note), the channels with a program
    change, track -> channels, and the channels without notes.
    """
    empty = set(layout.empty_channels)
    channel_map: dict[int, int] = {DRUM_CHANNEL: DRUM_CHANNEL} if DRUM_CHANNEL in layout.track_map else {}
    order = sorted(layout.channels, key=lambda c: c in empty) if options.remove_empty_channels else layout.channels
    for channel in order:
        if channel != DRUM_CHANNEL:
            value = len(channel_map) - (DRUM_CHANNEL in channel_map)
            channel_map[channel] = value + (value >= DRUM_CHANNEL)

    new_track = np.zeros((16, MAX_TRACKS), np.int64)
    has_notes = np.zeros((16, MAX_TRACKS), bool)
    first_note_track = np.full(16, -1, np.int64)
    mapped = np.zeros(16, np.int64)
    next_track = 0
    for channel in sorted(channel_map, key=channel_map.get):
        mapped[channel] = channel_map[channel]
        note_tracks = layout.note_tracks.get(channel, [])
        if note_tracks:
            has_notes[channel, note_tracks] = True
            first_note_track[channel] = note_tracks[0]
        if options.remove_empty_channels and channel in empty:
            continue
        for track in layout.track_map[channel]:
            if not note_tracks or track in note_tracks:
                next_track += 1
                new_track[channel, track] = next_track

    events = events.copy()
    kind, track = events[:, KIND], events[:, TRACK]
    original_track = track.copy()
    used = kind <= CONTROL
    channel = np.where(used, events[:, PARAM0], 0)
    moved = used & (kind != NOTE) & (first_note_track[channel] >= 0) & ~has_notes[channel, track]
    source = np.where(moved, first_note_track[channel], track)
    events[:, TRACK] = np.where(used, new_track[channel, source], np.where(kind == KEY_SIG, track, 0))
    events[used, PARAM0] = mapped[channel[used]]
    events = _spread_key_signatures(events, original_track, mapped, new_track, report)

    notes = events[events[:, KIND] == NOTE]
    home = dict(zip(*(_first_rows(notes[:, PARAM0], notes[:, TRACK])), strict=True))
    patch_channels = set(events[events[:, KIND] == PATCH, PARAM0].tolist())
    track_channels: dict[int, list[int]] = {}
    for original in range(16):
        if original in channel_map:
            for track_index in layout.track_map[original]:
                channels_of = track_channels.setdefault(int(new_track[original, track_index]), [])
                if channel_map[original] not in channels_of:
                    channels_of.append(channel_map[original])
    return events, list(channel_map.values()), home, patch_channels, track_channels, [channel_map[c] for c in layout.empty_channels]


def _first_rows(keys: np.ndarray, values: np.ndarray) -> tuple[list[int], list[int]]:
    """Each distinct key and the value at its first occurrence."""
    if not len(keys):
        return [], []
    order = _order(keys)
    starts = _group_bounds(keys[order])[0]
    first = order[starts]
    return keys[first].tolist(), values[first].tolist()


def _spread_key_signatures(
    events: np.ndarray,
    original_track: np.ndarray,
    mapped: np.ndarray,
    new_track: np.ndarray,
    report: TokenizeReport,
) -> np.ndarray:
    """Put each key signature on the new tracks its original track became:
    the first (channel, track) pair (in original channel order) takes the
    event, each further pair gets a copy at the end of the list. On the drum
    channel the key becomes sf = 0, and copies inherit the first pair's sf.
    A key signature whose track keeps nothing is deleted, except on track 0."""
    rows = (events[:, KIND] == KEY_SIG).nonzero()[0]
    if not len(rows):
        return events
    copies = []
    delete = []
    for row in rows.tolist():
        track = int(original_track[row])
        pairs: list[tuple[int, int]] = []
        for channel in range(16):
            if new_track[channel, track]:
                pair = (int(mapped[channel]), int(new_track[channel, track]))
                if pair not in pairs:
                    pairs.append(pair)
        if not pairs:
            if track != 0:
                delete.append(row)
            continue
        first_channel, events[row, TRACK] = pairs[0]
        if first_channel == DRUM_CHANNEL:
            events[row, PARAM0] = NO_KEY_SF
        for channel, track_index in pairs[1:]:
            copy = events[row].copy()
            copy[TRACK] = track_index
            if channel == DRUM_CHANNEL:
                copy[PARAM0] = NO_KEY_SF
            copies.append(copy)
    report.drop("key_signature_untracked", len(delete))
    report.add("key_signature_copy", len(copies))
    if delete:
        events = events[np.isin(np.arange(len(events)), delete, invert=True)]
    return _append(events, copies)


def _append(events: np.ndarray, new: list) -> np.ndarray:
    """Append rows at the end of the reference's event list."""
    if not new:
        return events
    start = int(events[:, POSITION].max()) + 1 if len(events) else 0
    rows = np.array(new, np.int64).reshape(-1, WIDTH)
    rows[:, POSITION] = np.arange(start, start + len(rows))
    return np.concatenate([events, rows])


def _add_default_instruments(
    events: np.ndarray, channels: list[int], home: dict[int, int], patch_channels: set[int], report: TokenizeReport
) -> np.ndarray:
    """Step 4a: program 0 at time 0 on the home track of every channel that has
    notes but no program change (the drum channel included)."""
    added = [[PATCH, 0, home[c], c, 0, 0, 0, 0] for c in channels if c not in patch_channels and c in home]
    report.add("default_patch", len(added))
    return _append(events, added)


def detect_key(pitch_class_hist: np.ndarray, threshold: float = 0.7) -> int | None:
    """Root (0 = C) of the major key whose scale the 7 most used pitch
    classes form, or None (the reference's ``detect_key_signature``)."""
    hist = pitch_class_hist.tolist()
    total = sum(hist)
    if total == 0:
        return None
    top = sorted(range(12), key=lambda pc: -hist[pc])[:7]
    if sum(hist[pc] for pc in top) / total < threshold:
        return None
    scale = sorted(top)
    semitones = [scale[i] for i in range(7) if scale[i] - scale[i - 1] in (1, -11)]
    if len(semitones) != 2:
        return None
    return {5: semitones[0], 7: semitones[1]}.get(semitones[1] - semitones[0])


def key_to_sf(root: int, minor: int) -> int:
    """Sharps (+) or flats (-) of a key, the reference's ``key2sf``."""
    sf = (root * 7) % 12
    if sf > 6 or (minor == 1 and sf >= 5):
        sf -= 12
    return sf


def _fix_key_signatures(
    events: np.ndarray,
    key_sf: np.ndarray,
    pitch_class_hist: np.ndarray,
    track_channels: dict[int, list[int]],
    options: TokenizerOptions,
    report: TokenizeReport,
) -> np.ndarray:
    """Step 4b: when no key signature, or only C major/A minor ones (``key_sf``
    says which the reference looks at), detect the key from the notes: add it
    to every track, or write it into the existing ones; if no key is found,
    the C major/A minor ones are removed."""
    if len(key_sf) and not np.all(key_sf == NO_KEY_SF):
        return events
    root = detect_key(pitch_class_hist)
    rows = (events[:, KIND] == KEY_SIG).nonzero()[0] if len(key_sf) else []
    if root is None:
        if len(key_sf) > len(rows):
            report.warn("the reference crashes on this file (raw mode, duplicate key signatures); they are removed")
        report.drop("default_key_signature", len(rows))
        return events[events[:, KIND] != KEY_SIG] if len(rows) else events
    sf = key_to_sf(root, 0) + NO_KEY_SF
    if not len(key_sf):
        added = [
            [KEY_SIG, 0, track, NO_KEY_SF if channels == [DRUM_CHANNEL] else sf, 0, 0, 0, 0]
            for track, channels in track_channels.items()
            if not (options.remap_track_channel and track == 0)
        ]
        report.add("detected_key_signature", len(added))
        return _append(events, added)
    events = events.copy()
    for row in rows.tolist():
        if track_channels.get(int(events[row, TRACK])) != [DRUM_CHANNEL]:
            events[row, PARAM0], events[row, PARAM1] = sf, 0
    return events


def _sort(events: np.ndarray) -> np.ndarray:
    """Stable sort by (time, track, kind rank), ties in event-list order."""
    return events[_order(events[:, TIME], events[:, TRACK], _SORT_RANK[events[:, KIND]], events[:, POSITION])]


SETUP_WINDOW = 256
"""Events examined first when looking for the end of the setup (usually near the start)."""


def _collapse_setup(events: np.ndarray, report: TokenizeReport) -> np.ndarray:
    """Step 5a: move the settings before the first note (and those inside the
    first group of events at the first note's time) to time 0, keeping only
    the last value per (kind, track, channel, controller/pitch); notes and time
    signatures among them keep their time.

    "Same time" is the reference's ``time1 + time2`` (a sum, so beat 1 step 0
    equals beat 0 step 1). If no event ends the setup, nothing changes.
    """
    end = _setup_end(events[: SETUP_WINDOW + 1], complete=len(events) <= SETUP_WINDOW + 1)
    if end is None and len(events) > SETUP_WINDOW + 1:
        end = _setup_end(events, complete=True)
    if not end:
        return events
    setup = events[:end].copy()
    settings = (setup[:, KIND] != NOTE) & (setup[:, KIND] != TIME_SIG)
    setup[settings, TIME] = 0
    first, second = _dedup_key(setup)
    order = _order(setup[:, KIND], setup[:, TRACK], first, second)
    starts, ends = _group_bounds(setup[order, KIND], setup[order, TRACK], first[order], second[order])
    kept = setup[order[ends]]
    kept[:, POSITION] = order[np.maximum.accumulate(np.where(starts, np.arange(end), 0))[ends]]
    report.drop("setup_replaced", end - len(kept))
    return np.concatenate([_sort(kept), events[end:]])


def _setup_end(events: np.ndarray, complete: bool) -> int | None:
    """Index of the event that ends the setup, or None. When ``events`` is only
    the start of the list (not ``complete``), its last event is not judged,
    since whether it ends the setup depends on its successor."""
    count = len(events)
    if not count:
        return None
    time = events[:, TIME]
    same_time = time // STEPS_PER_BEAT + time % STEPS_PER_BEAT
    same_as_next = np.zeros(count, bool)
    np.equal(same_time[1:], same_time[:-1], out=same_as_next[:-1])
    same_as_previous = np.zeros(count, bool)
    same_as_previous[1:] = same_as_next[:-1]
    note = events[:, KIND] == NOTE
    note_before = np.zeros(count, bool)
    note_before[1:] = np.logical_or.accumulate(note)[:-1]
    ends = ((note & ~same_as_next) | (note_before & ~same_as_previous)).nonzero()[0]
    if not len(ends) or (ends[0] == count - 1 and not complete):
        return None
    return int(ends[0])


def _drop_empty_channels(events: np.ndarray, empty: list[int], report: TokenizeReport) -> np.ndarray:
    """Program and control changes of channels without notes."""
    is_empty = np.zeros(16, bool)
    is_empty[empty] = True
    kind = events[:, KIND]
    setting = (kind == PATCH) | (kind == CONTROL)
    drop = setting & is_empty[np.where(setting, events[:, PARAM0], 0)]
    report.drop("empty_channel", np.count_nonzero(drop))
    return events[~drop]


def _emit(events: np.ndarray, options: TokenizerOptions, report: TokenizeReport) -> np.ndarray:
    """Step 5b: range-check every event and write its token row. An event out
    of range is dropped; since times are relative to the last *emitted* event,
    a gap of 128 beats or more drops that event and every later one."""
    kind = events[:, KIND]
    params = events[:, PARAM0:POSITION]
    limit = _PARAM_LIMIT[kind]
    params_bad = (params >= limit) | (params < 0)
    track = events[:, TRACK]
    ok = ~params_bad.any(axis=1) & (track >= 0) & (track < MAX_TRACKS)
    candidates = ok.nonzero()[0]
    beat = events[candidates, TIME] // STEPS_PER_BEAT
    relative = np.diff(beat, prepend=0)
    gaps = (relative >= MAX_TIME1).nonzero()[0]
    stop = int(candidates[gaps[0]]) if len(gaps) else len(events)
    report.drop("gap", len(events) - stop)
    failed = (~ok[:stop]).nonzero()[0]
    if len(failed):
        long_note = (
            (kind[failed] == NOTE)
            & (params[failed, 3] >= MAX_DURATION)
            & ~params_bad[failed, :3].any(axis=1)
            & (track[failed] >= 0)
            & (track[failed] < MAX_TRACKS)
        )
        report.drop("long_note", np.count_nonzero(long_note))
        report.drop("out_of_range", len(failed) - np.count_nonzero(long_note))
    if len(gaps):
        candidates, relative = candidates[: gaps[0]], relative[: gaps[0]]
    emitted = events[candidates]
    kinds = emitted[:, KIND]
    report.output_events = len(emitted)
    extra = 1 if options.add_bos_eos else 0
    tokens = np.zeros((len(emitted) + 2 * extra, vocab.EVENT_LEN), np.int64)
    body = tokens[extra : extra + len(emitted)]
    body[:, 0] = _EVENT_ID[kinds]
    body[:, 1] = relative + vocab.PARAM_OFFSET["time1"]
    body[:, 2] = emitted[:, TIME] % STEPS_PER_BEAT + vocab.PARAM_OFFSET["time2"]
    body[:, 3] = emitted[:, TRACK] + vocab.PARAM_OFFSET["track"]
    offset = _PARAM_OFFSET[kinds]
    body[:, 4:] = np.where(offset > 0, emitted[:, PARAM0:POSITION] + offset, vocab.PAD)
    if extra:
        tokens[0, 0], tokens[-1, 0] = vocab.BOS, vocab.EOS
    return tokens.astype(vocab.TOKEN_DTYPE)
