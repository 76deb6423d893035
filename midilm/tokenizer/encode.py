"""Scores -> v2 tokens, exactly as the reference's ``MIDITokenizerV2.tokenize``.

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

The table holds a batch of files at once: every grouping and sort key starts
with the file, so files never mix, and numpy's fixed cost per call (which
dominates small files) is paid once per batch. What the reference decides per
file with Python dicts (channel order, renumbering, key detection) is decided
here per file too, from a few numbers gathered for all files at once.

The working table holds the score table's columns (:mod:`midilm.tokenizer.score`)
as its rows, ``events[TIME]`` being one contiguous array (column operations
are several times faster so), and ``events[:, i]`` is event ``i`` (gathered
with ``take`` and ``compress``, which copy such a table faster than fancy
indexing). TIME
replaces TICK (1/16 beats from the start), PARAM0..3 hold token values
(channel, pitch, velocity, duration of a note; bpm of a tempo; nn - 1, dd - 1
of a time signature; sf + 7, mi of a key signature), POSITION is the event's
place in the reference's event list, which breaks every tie the way the
reference's stable sort does, and FILE is the file's index in the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from midilm import vocab
from midilm.errors import MidiFileError
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.report import TokenizeReport
from midilm.tokenizer.score import (
    CONTROL,
    KEY_SIG,
    KIND,
    N_COLUMNS,
    NOTE,
    PARAM0,
    PARAM1,
    PARAM2,
    PARAM3,
    PATCH,
    TEMPO,
    TIME_SIG,
    TRACK,
    MidiScore,
)
from midilm.tokenizer.score import TICK as TIME

POSITION = 7
FILE = 8
WIDTH = 9
"""Fields of the working table (its rows)."""

MAX_TRACKS = vocab.PARAM_SIZES["track"]
"""The reference reads only this many tracks of a score."""
STEPS_PER_BEAT = vocab.PARAM_SIZES["time2"]
STEP_BITS = STEPS_PER_BEAT.bit_length() - 1
assert 1 << STEP_BITS == STEPS_PER_BEAT, "beat = time >> STEP_BITS, step = time & (STEPS_PER_BEAT - 1)"
CHANNELS = 16
DRUM_CHANNEL = 9
NO_KEY_SF = 7
"""Token value of sf = 0 (C major / A minor), which the reference treats as "unknown key"."""
MAX_TIME1 = vocab.PARAM_SIZES["time1"]
MAX_DURATION = vocab.PARAM_SIZES["duration"]
MAX_BPM = vocab.PARAM_SIZES["bpm"] - 1
MAX_TICKS = 1 << 48
"""Larger times would lose exactness in float64 (the reference's arithmetic)."""
TRACK_BITS = 12
"""``FILE << TRACK_BITS | TRACK`` names a track across the batch (renumbered tracks stay below 16 * 128)."""

_SORT_RANK = np.array([5, 3, 4, 2, 0, 1], np.int64)
"""Rank of each kind (note, patch, control, tempo, time sig, key sig) among events at the same time and track."""

_PARAM_NAMES = [vocab.EVENT_PARAMS[name][3:] for name in vocab.EVENT_NAMES]
_PARAM_OFFSET = np.zeros((4, len(_PARAM_NAMES)), np.int64)
_PARAM_LIMIT = np.ones((4, len(_PARAM_NAMES)), np.uint64)
"""Token offset and size of each parameter slot (row) of each kind (column).
A slot the kind does not use must hold 0, and becomes PAD (offset 0)."""
assert vocab.PAD == 0
for _kind, _names in enumerate(_PARAM_NAMES):
    for _slot, _name in enumerate(_names):
        _PARAM_OFFSET[_slot, _kind] = vocab.PARAM_OFFSET[_name]
        _PARAM_LIMIT[_slot, _kind] = vocab.PARAM_SIZES[_name]
_EVENT_ID = np.array([vocab.EVENT_ID[name] for name in vocab.EVENT_NAMES], np.int64)


def encode(score: MidiScore, options: TokenizerOptions, report: TokenizeReport) -> np.ndarray:
    """Token rows [n, 8] (``vocab.TOKEN_DTYPE``) of a score; fills ``report``."""
    (tokens,) = encode_batch([score], options, [report])
    if isinstance(tokens, MidiFileError):
        raise tokens
    return tokens


def encode_batch(
    scores: Sequence[MidiScore], options: TokenizerOptions, reports: Sequence[TokenizeReport]
) -> list[np.ndarray | MidiFileError]:
    """Token rows of each score, or the :class:`~midilm.errors.MidiFileError`
    that refuses it (a hand-built score with impossible values); fills the
    score's report. The scores are encoded together, as one table."""
    options = options.resolved()
    for score, report in zip(scores, reports, strict=True):
        report.ticks_per_beat = score.ticks_per_beat
        report.tracks = score.tracks
        report.input_events = len(score.events) + sum(score.dropped.values())
        for reason, count in score.dropped.items():
            report.drop(reason, count)
        report.warnings.extend(score.warnings)
    results: list[np.ndarray | MidiFileError] = [np.zeros(0)] * len(scores)
    accepted = list(range(len(scores)))
    events = _working_table([score.events for score in scores]) if all(_is_table(score.events) for score in scores) else None
    if events is None or not _plausible(events, scores):
        accepted = []
        for index, (score, report) in enumerate(zip(scores, reports, strict=True)):
            try:
                _check(score, report.source)
                accepted.append(index)
            except MidiFileError as error:
                results[index] = error
        events = _working_table([scores[i].events for i in accepted])
    if accepted:
        batch = _Batch([reports[i] for i in accepted], [scores[i].ticks_per_beat for i in accepted])
        for index, tokens in zip(accepted, _encode(events, batch, options), strict=True):
            results[index] = tokens
    return results


def _is_table(events: object) -> bool:
    """Whether ``events`` is a score table: integers, [n, N_COLUMNS]."""
    return isinstance(events, np.ndarray) and events.ndim == 2 and events.shape[1] == N_COLUMNS and events.dtype.kind in "iu"


def _working_table(tables: list[np.ndarray]) -> np.ndarray:
    """The score tables of a batch as one working table (POSITION not yet set)."""
    lengths = [len(table) for table in tables]
    events = np.empty((WIDTH, sum(lengths)), np.int64)
    if tables:
        np.concatenate([table.T for table in tables], axis=1, out=events[:N_COLUMNS])
    events[FILE] = np.repeat(np.arange(len(tables)), lengths)
    return events


def _plausible(events: np.ndarray, scores: Sequence[MidiScore]) -> bool:
    """Whether every score passes :func:`_check` (as every score read from a
    file does), tested on the whole batch at once."""
    if not events.shape[1]:
        return True
    if any(score.ticks_per_beat <= 0 for score in scores if len(score.events)):
        return False
    values = events[:N_COLUMNS]
    if values.max() >= MAX_TICKS or values.min() <= -MAX_TICKS:
        return False
    kind, track = events[KIND], events[TRACK]
    if kind.min() < NOTE or kind.max() > KEY_SIG or track.min() < 0:
        return False
    return not (track >= np.array([score.tracks for score in scores])[events[FILE]]).any()


def _check(score: MidiScore, source: str | None) -> None:
    """Refuse a score whose numbers no MIDI file gives."""
    table = score.events
    if not _is_table(table):
        raise MidiFileError(
            source, f"a score's events are an integer table [n, {N_COLUMNS}], not {type(table).__name__} {getattr(table, 'shape', '')}"
        )
    if not len(table):
        return
    if score.ticks_per_beat <= 0:
        raise MidiFileError(source, f"ticks per beat is {score.ticks_per_beat}")
    low, high = table.min(axis=0).tolist(), table.max(axis=0).tolist()
    if min(low) <= -MAX_TICKS or max(high) >= MAX_TICKS:
        raise MidiFileError(source, "event times or values beyond 2**48: not a plausible score")
    if low[KIND] < NOTE or high[KIND] > KEY_SIG or low[TRACK] < 0 or high[TRACK] >= score.tracks:
        raise MidiFileError(
            source,
            f"events of kinds {low[KIND]}..{high[KIND]} on tracks {low[TRACK]}..{high[TRACK]}: expected kinds 0..5 on tracks 0..{score.tracks - 1}",
        )


class _Batch:
    """The files of a batch: their ticks per beat, and their reports, which
    count drops and additions by file."""

    def __init__(self, reports: list[TokenizeReport], ticks_per_beat: list[float]) -> None:
        self.reports = reports
        self.count = len(reports)
        self.ticks_per_beat = np.array(ticks_per_beat, np.float64)

    def drop(self, reason: str, files: np.ndarray) -> None:
        """Count one drop for ``reason`` per entry of ``files`` (file indices)."""
        for report, count in self._per_file(files):
            report.drop(reason, count)

    def add(self, reason: str, files: np.ndarray) -> None:
        for report, count in self._per_file(files):
            report.add(reason, count)

    def _per_file(self, files: np.ndarray) -> list[tuple[TokenizeReport, int]]:
        if not len(files):
            return []
        if self.count == 1:
            return [(self.reports[0], len(files))]
        counts = np.bincount(files, minlength=self.count)
        return [(self.reports[file], int(counts[file])) for file in counts.nonzero()[0].tolist()]


def _encode(events: np.ndarray, batch: _Batch, options: TokenizerOptions) -> list[np.ndarray]:
    """Steps 1-5 on the working table of a batch of plausible scores: each file's token rows."""
    events, pre_dedup_key_sf = _select(events, options, batch)
    layouts = _Layout.of(events, batch.count, [min(report.tracks, MAX_TRACKS) for report in batch.reports])
    events = _deduplicate(events, batch)
    if options.remap_track_channel:
        events, instruments = _remap(events, layouts, options, batch)
        key_sf = events[[FILE, PARAM0]].compress(events[KIND] == KEY_SIG, axis=1)
    else:
        instruments, key_sf = [layout.instruments for layout in layouts], pre_dedup_key_sf
    default_patches = _default_instruments(instruments, batch) if options.add_default_instr else []
    removed, detected_keys = _fix_key_signatures(
        events, key_sf, [layout.pitch_class_hist for layout in layouts], instruments, options, batch
    )
    events = _append(events, default_patches + detected_keys)
    # step 5 orders and filters row indices, and gathers the table once
    order = _sort(events)
    if removed:
        order = order[np.isin(order, removed, invert=True)]
    order = _collapse_setup(events, order, batch)
    if options.remove_empty_channels and any(i.empty for i in instruments):
        order = _drop_empty_channels(events, order, instruments, batch)
    return _emit(events.take(order, axis=1), options, batch)


def quantize(ticks: np.ndarray, ticks_per_beat: float | np.ndarray) -> np.ndarray:
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


def _select(events: np.ndarray, options: TokenizerOptions, batch: _Batch) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: the events the reference keeps from the scores, in score order,
    converted in place to working values; also the FILE and sf fields of
    every key signature kept here (raw mode decides about key detection on
    them, before deduplication)."""
    if not events.shape[1]:
        return events, np.zeros((2, 0), np.int64)
    kind, file = events[KIND], events[FILE]
    present = np.bincount(kind, minlength=6)
    keep = events[TRACK] < MAX_TRACKS
    if not keep.all():
        batch.drop("track_limit", file[~keep])
    first, second = events[PARAM0], events[PARAM1]
    if present[:3].any():
        channel = first[kind <= CONTROL]
        if channel.min() < 0 or channel.max() >= CHANNELS:
            invalid = keep & (kind <= CONTROL) & ((first < 0) | (first >= CHANNELS))
            batch.drop("invalid_channel", file[invalid])
            keep &= ~invalid
    for reason, meta_kind, is_invalid in _VALIDITY:
        if present[meta_kind]:
            rows = (kind == meta_kind).nonzero()[0]
            invalid = rows[is_invalid(first[rows], second[rows]) & keep[rows]]
            batch.drop(reason, file[invalid])
            keep[invalid] = False
    if not keep.all():
        events = events.compress(keep, axis=1)
        kind, file = events[KIND], events[FILE]

    ticks_per_beat = batch.ticks_per_beat[file]
    events[TIME] = quantize(events[TIME], ticks_per_beat)
    note = (kind == NOTE).nonzero()[0]
    events[PARAM3, note] = np.maximum(1, quantize(events[PARAM3, note], ticks_per_beat[note]))
    if present[TEMPO]:
        tempo = (kind == TEMPO).nonzero()[0]
        events[PARAM0, tempo] = tempo_to_bpm(events[PARAM0, tempo])
    if present[TIME_SIG]:
        time_sig = (kind == TIME_SIG).nonzero()[0]
        events[PARAM0:PARAM2, time_sig] -= 1
        events[PARAM2:POSITION, time_sig] = 0
    if present[KEY_SIG]:
        events[PARAM0, kind == KEY_SIG] += NO_KEY_SF

    keep = _repeat_filter(events, present, options, batch)
    if keep is not None:
        events = events.compress(keep, axis=1)
    events[POSITION] = np.arange(events.shape[1])
    key_sf = events[[FILE, PARAM0]].compress(events[KIND] == KEY_SIG, axis=1) if present[KEY_SIG] else np.zeros((2, 0), np.int64)
    return events, key_sf


def _file_track(events: np.ndarray) -> np.ndarray:
    """Each event's track, named across the batch."""
    return (events[FILE] << TRACK_BITS) | events[TRACK]


def _repeat_filter(events: np.ndarray, present: np.ndarray, options: TokenizerOptions, batch: _Batch) -> np.ndarray | None:
    """Which events survive the reference's per-track repeat filters (None:
    all): a program equal to the channel's last one, a control value within
    ``cc_eps`` of the last kept one (initially 0), a tempo within
    ``tempo_eps`` bpm of the last kept one (initially 0)."""
    if not present[PATCH] and not present[CONTROL] and not present[TEMPO]:
        return None
    keep = np.ones(events.shape[1], bool)
    kind, file, track = events[KIND], events[FILE], _file_track(events)
    if present[PATCH]:
        rows = (kind == PATCH).nonzero()[0]
        voice = track[rows] * CHANNELS + events[PARAM0, rows]
        order = _order(voice)
        ordered, voice = rows[order], voice[order]
        program = events[PARAM1, ordered]
        repeat = ordered[1:][(voice[1:] == voice[:-1]) & (program[1:] == program[:-1])]
        keep[repeat] = False
        batch.drop("repeated_patch", file[repeat])
    if present[CONTROL]:
        rows = (kind == CONTROL).nonzero()[0]
        keep[rows] = _hysteresis((track[rows], events[PARAM0, rows], events[PARAM1, rows]), events[PARAM2, rows], options.cc_eps)
        batch.drop("cc_within_eps", file[rows[~keep[rows]]])
    if present[TEMPO]:
        rows = (kind == TEMPO).nonzero()[0]
        keep[rows] = _hysteresis((track[rows],), events[PARAM0, rows], options.tempo_eps)
        batch.drop("tempo_within_eps", file[rows[~keep[rows]]])
    return keep


def _hysteresis(keys: tuple[np.ndarray, ...], values: np.ndarray, eps: int) -> np.ndarray:
    """Keep a value when it differs by at least ``eps`` from the last kept
    value of its key (0 before the first); one pass per key, in order."""
    if eps <= 0:
        return np.ones(len(values), bool)
    order, starts, _ = _groups(*keys)
    values = values[order]
    # a value equal to the one before it in its key is never kept and changes nothing
    candidates = starts.copy()
    np.not_equal(values[1:], values[:-1], out=candidates[1:])
    candidates |= starts
    at = candidates.nonzero()[0]
    kept_at = []
    last = 0
    for i, start, value in zip(at.tolist(), starts[at].tolist(), values[at].tolist(), strict=True):
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


def _order(*columns: np.ndarray, nearly_sorted: bool = False) -> np.ndarray:
    """Indices that sort rows by the columns (first column most significant),
    ties in row order: a stable lexicographic sort, done as one argsort of a
    packed integer key when the values allow it. When the rows are
    ``nearly_sorted`` already, a stable merge sort of the key, about linear
    on such input, beats a quicksort (which needs the row index in its key)."""
    return _ordered(columns, nearly_sorted)[0]


def _groups(*columns: np.ndarray, nearly_sorted: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_order` of the rows, and for the sorted rows whether each
    starts / ends a group of equal keys."""
    order, key = _ordered(columns, nearly_sorted)
    starts, ends = _group_bounds(key[order]) if key is not None else _group_bounds(*(column[order] for column in columns))
    return order, starts, ends


def _ordered(columns: tuple[np.ndarray, ...], nearly_sorted: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`_order`, and the packed key it sorted (None when it sorted the columns)."""
    count = len(columns[0])
    if count < 2:
        return np.arange(count), None
    if count >= SMALL:
        key = _packed(columns, 1 if nearly_sorted else count)
        if key is not None:
            return (np.argsort(key, kind="stable") if nearly_sorted else np.argsort(key * count + np.arange(count))), key
    return np.lexsort(columns[::-1]), None


def _packed(columns: tuple[np.ndarray, ...], headroom: int) -> np.ndarray | None:
    """The columns as one integer key with the same order, or None when the
    key times ``headroom`` would not fit in 62 bits."""
    key = None
    span_product = headroom
    for column in columns:
        low, high = int(column.min()), int(column.max())
        span = high - low + 1
        span_product *= span
        if span_product >= 1 << 62:
            return None
        shifted = column - low if low else column
        key = shifted if key is None else key * span + shifted
    return key


def _changes(values: np.ndarray) -> np.ndarray:
    """Indices where a value differs from the one before (0 included): every
    first occurrence is one of them, and in real files they are few."""
    changed = np.empty(len(values), bool)
    changed[0] = True
    np.not_equal(values[1:], values[:-1], out=changed[1:])
    return changed.nonzero()[0]


def _first_seen(values: np.ndarray) -> np.ndarray:
    """Distinct values in order of first appearance."""
    if not len(values):
        return values
    values = values[_changes(values)]
    order, starts, _ = _groups(values)
    return values[np.sort(order[starts])]


class _Instruments:
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


class _Layout:
    """Which channels and tracks of a file carry what, as the reference
    records it while reading the events (before deduplication)."""

    def __init__(self, tracks: int) -> None:
        self.track_map: dict[int, list[int]] = {}
        """Channel -> tracks it is used in, in order of first use."""
        self.note_tracks: dict[int, list[int]] = {}
        """Channel -> tracks with notes on it, in order of first note."""
        self.instruments = _Instruments([], {t: [] for t in range(tracks)})
        """The raw mode's view: ``track_channels`` has every track read."""
        self.pitch_class_hist: np.ndarray

    @classmethod
    def of(cls, events: np.ndarray, files: int, tracks: list[int]) -> list[_Layout]:
        """The layout of each file of the batch."""
        layouts = [cls(count) for count in tracks]
        kind = events[KIND]
        used = (kind <= CONTROL).nonzero()[0]
        if not len(used):
            for layout in layouts:
                layout.pitch_class_hist = np.zeros(12, np.int64)
            return layouts
        file, channel, track, is_note = events[FILE, used], events[PARAM0, used], events[TRACK, used], kind[used] == NOTE
        codes = _first_seen((((file * CHANNELS) + channel) * MAX_TRACKS + track) * 2 + is_note)
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
        for code in _first_seen(file[patch] * CHANNELS + channel[patch]).tolist():
            layouts[code // CHANNELS].instruments.patch_channels.add(code % CHANNELS)
        melodic = is_note & (channel != DRUM_CHANNEL)
        hist = np.bincount(file[melodic] * 12 + events[PARAM1, used[melodic]] % 12, minlength=12 * files).reshape(files, 12)
        for layout, counts in zip(layouts, hist, strict=True):
            layout.pitch_class_hist = counts
        return layouts


def _dedup_key(events: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two key fields besides kind, time and track that make events
    "the same" for the reference: (channel, pitch) of notes, (channel,
    controller) of control changes, channel of program changes."""
    kind = events[KIND]
    first = np.where(kind <= CONTROL, events[PARAM0], 0)
    second = np.where((kind == NOTE) | (kind == CONTROL), events[PARAM1], 0)
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


def _deduplicate(events: np.ndarray, batch: _Batch) -> np.ndarray:
    """Step 2: the reference's event dict, in its insertion order.

    A later event with the same key replaces the earlier one in its place. A
    note first shortens the previous note of the same (track, channel,
    pitch) to at most the gap between their starts; a note shortened to 0 is
    removed from the dict, so its successor is inserted afresh at the end.
    """
    count = events.shape[1]
    if count < 2:
        return events
    popped = np.zeros(count, bool)
    notes = (events[KIND] == NOTE).nonzero()[0]
    if len(notes) > 1:
        voice_order, _, voice_ends = _groups(events[FILE, notes], events[TRACK, notes], events[PARAM0, notes], events[PARAM1, notes])
        by_voice = notes[voice_order]
        same_voice = ~voice_ends[:-1]
        earlier, later = by_voice[:-1][same_voice], by_voice[1:][same_voice]
        gap = events[TIME, later] - events[TIME, earlier]
        duration = events[PARAM3, earlier]
        events[PARAM3, earlier] = np.where(gap > 0, np.minimum(duration, gap), duration)
        popped[earlier[gap <= 0]] = True

    first, second = _dedup_key(events)
    file, track, time, kind = events[FILE], events[TRACK], events[TIME], events[KIND]
    # the score lists each track's events about in time order: the sort has little to do
    order, starts, ends = _groups(file, track, time, kind, first, second, nearly_sorted=True)
    if ends.all() and not popped.any():
        return events
    popped_sorted = popped[order]
    chain_start = starts.copy()
    chain_start[1:] |= popped_sorted[:-1]
    chain_first = order[np.maximum.accumulate(np.where(chain_start, np.arange(count), 0))]
    survives = ends & ~popped_sorted
    batch.drop("note_overlap", file[popped])
    batch.drop("duplicate", file[order[~survives & ~popped_sorted]])
    place = chain_first[survives]
    by_place = np.argsort(place, kind="stable")
    result = events.take(order[survives][by_place], axis=1)
    result[POSITION] = place[by_place]
    return result


def _channel_map(layout: _Layout, options: TokenizerOptions) -> dict[int, int]:
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


def _renumber(layout: _Layout, options: TokenizerOptions) -> _Renumbering:
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


def _remap(events: np.ndarray, layouts: list[_Layout], options: TokenizerOptions, batch: _Batch) -> tuple[np.ndarray, list[_Instruments]]:
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

    instruments = [_Instruments(list(renumbering.channel_map.values()), {}) for renumbering in renumberings]
    kind = events[KIND]
    file_channel = events[FILE] * CHANNELS + events[PARAM0]
    notes = (kind == NOTE).nonzero()[0]
    for code, track_index in zip(*_first_rows(file_channel[notes], events[TRACK, notes]), strict=True):
        instruments[code // CHANNELS].home[code % CHANNELS] = track_index
    for code in _first_seen(file_channel[kind == PATCH]).tolist():
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


def _first_rows(keys: np.ndarray, values: np.ndarray) -> tuple[list[int], list[int]]:
    """Each distinct key and the value at its first occurrence."""
    if not len(keys):
        return [], []
    changes = _changes(keys)
    keys, values = keys[changes], values[changes]
    order, starts, _ = _groups(keys)
    first = order[starts]
    return keys[first].tolist(), values[first].tolist()


def _spread_key_signatures(events: np.ndarray, original_track: np.ndarray, renumberings: list[_Renumbering], batch: _Batch) -> np.ndarray:
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
    return _append(events, copies)


def _append(events: np.ndarray, new: list) -> np.ndarray:
    """Append events at the end of the reference's event list (of their
    file: every later step sorts or groups by file first)."""
    if not new:
        return events
    start = int(events[POSITION].max()) + 1 if events.shape[1] else 0
    added = np.array(new, np.int64).reshape(-1, WIDTH).T
    added[POSITION] = np.arange(start, start + added.shape[1])
    return np.concatenate([events, added], axis=1)


def _default_instruments(instruments: list[_Instruments], batch: _Batch) -> list[list[int]]:
    """Step 4a: program 0 at time 0 on the home track of every channel that has
    notes but no program change (the drum channel included), as events to
    append."""
    added = []
    for file, (of_file, report) in enumerate(zip(instruments, batch.reports, strict=True)):
        rows = [
            [PATCH, 0, of_file.home[c], c, 0, 0, 0, 0, file]
            for c in of_file.channels
            if c not in of_file.patch_channels and c in of_file.home
        ]
        report.add("default_patch", len(rows))
        added += rows
    return added


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
    pitch_class_hists: list[np.ndarray],
    instruments: list[_Instruments],
    options: TokenizerOptions,
    batch: _Batch,
) -> tuple[list[int], list[list[int]]]:
    """Step 4b: in a file with no key signature, or only C major/A minor ones
    (``key_sf``, FILE and sf of the key signatures the reference looks at),
    detect the key from the notes: add it to every track, or write it into
    the existing ones (in place); if no key is found, the C major/A minor
    ones are removed. Returns the events to remove and the key signatures
    to append."""
    files, sf_values = key_sf
    looked_at = np.bincount(files, minlength=batch.count)
    known = np.bincount(files[sf_values != NO_KEY_SF], minlength=batch.count)
    undecided = (known == 0).nonzero()[0].tolist()
    if not undecided:
        return [], []
    rows = (events[KIND] == KEY_SIG).nonzero()[0]
    rows = rows[np.argsort(events[FILE, rows], kind="stable")]
    bounds = np.searchsorted(events[FILE, rows], np.arange(batch.count + 1)).tolist()
    removed, rewritten, added = [], [], []
    for file in undecided:
        root = detect_key(pitch_class_hists[file])
        report = batch.reports[file]
        of_file = rows[bounds[file] : bounds[file + 1]].tolist() if looked_at[file] else []
        if root is None:
            if looked_at[file] > len(of_file):
                report.warn("the reference crashes on this file (raw mode, duplicate key signatures); they are removed")
            report.drop("default_key_signature", len(of_file))
            removed += of_file
            continue
        sf = key_to_sf(root, 0) + NO_KEY_SF
        track_channels = instruments[file].track_channels
        if not looked_at[file]:
            new = [
                [KEY_SIG, 0, track, NO_KEY_SF if channels == [DRUM_CHANNEL] else sf, 0, 0, 0, 0, file]
                for track, channels in track_channels.items()
                if not (options.remap_track_channel and track == 0)
            ]
            report.add("detected_key_signature", len(new))
            added += new
            continue
        rewritten += [(row, sf) for row in of_file if track_channels.get(int(events[TRACK, row])) != [DRUM_CHANNEL]]
    if rewritten:
        at, sf_of_row = zip(*rewritten, strict=True)
        events[PARAM0, list(at)] = sf_of_row
        events[PARAM1, list(at)] = 0
    return removed, added


def _sort(events: np.ndarray) -> np.ndarray:
    """The order of events in event-list order (POSITION increasing) sorted
    by (file, time, track, kind rank), ties in event-list order."""
    return _order(events[FILE], events[TIME], events[TRACK], _SORT_RANK[events[KIND]], nearly_sorted=True)


def _collapse_setup(events: np.ndarray, order: np.ndarray, batch: _Batch) -> np.ndarray:
    """Step 5a: in each file, move the settings before the first note (and
    those inside the first group of events at the first note's time) to time
    0, keeping only the last value per (kind, track, channel,
    controller/pitch); notes and time signatures among them keep their time.
    ``order`` is the sorted order of the events; returns the new one (the
    surviving settings are rewritten in place).

    "Same time" is the reference's ``time1 + time2`` (a sum, so beat 1 step 0
    equals beat 0 step 1). If no event ends the setup, nothing changes.
    """
    if not len(order):
        return order
    file = events[FILE, order]
    in_setup = _setup(file, events[TIME, order], events[KIND, order])
    if not in_setup.any():
        return order
    setup_at = order[in_setup]
    setup = events.take(setup_at, axis=1)
    kind = setup[KIND]
    setup[TIME, (kind != NOTE) & (kind != TIME_SIG)] = 0
    first, second = _dedup_key(setup)
    file_track = _file_track(setup)
    group_order, starts, ends = _groups(file_track, kind, first, second)
    batch.drop("setup_replaced", setup[FILE, group_order[~ends]])
    # the last of each group survives, in the place of the group's first member, at time 0
    first_member = group_order[np.maximum.accumulate(np.where(starts, np.arange(len(group_order)), 0))[ends]]
    survivor = group_order[ends]
    events[TIME, setup_at[survivor]] = setup[TIME, survivor]
    events[POSITION, setup_at[survivor]] = first_member
    kept = setup_at[survivor[np.argsort(first_member)]]
    kept = kept[_order(events[FILE, kept], events[TIME, kept], events[TRACK, kept], _SORT_RANK[events[KIND, kept]], nearly_sorted=True)]
    rest = order[~in_setup]
    # each file: its kept settings, sorted, then the rest of its events
    kept_count = np.bincount(events[FILE, kept], minlength=batch.count)
    rest_file = file[~in_setup]
    rest_count = np.bincount(rest_file, minlength=batch.count)
    file_end = (kept_count + rest_count).cumsum()
    collapsed = np.empty(len(kept) + len(rest), np.int64)
    collapsed[np.arange(len(kept)) + (file_end - rest_count - kept_count.cumsum())[events[FILE, kept]]] = kept
    collapsed[np.arange(len(rest)) + (file_end - rest_count.cumsum())[rest_file]] = rest
    return collapsed


def _setup(file: np.ndarray, time: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Whether each event (sorted; its file, time and kind given) lies
    before the event that ends its file's setup: the first note not followed
    by an event at the same time, or the first event after a note at a new
    time. A file without one has no setup."""
    count = len(file)
    file_start = np.empty(count, bool)
    file_start[0] = True
    np.not_equal(file[1:], file[:-1], out=file_start[1:])
    same_time = (time >> STEP_BITS) + (time & (STEPS_PER_BEAT - 1))
    same_as_previous = np.zeros(count, bool)
    np.equal(same_time[1:], same_time[:-1], out=same_as_previous[1:])
    same_as_previous &= ~file_start
    same_as_next = np.zeros(count, bool)
    same_as_next[:-1] = same_as_previous[1:]
    note = kind == NOTE
    notes_before = np.cumsum(note) - note
    starts_at = np.maximum.accumulate(np.where(file_start, np.arange(count), 0))
    note_before = notes_before > notes_before[starts_at]
    ends = ((note & ~same_as_next) | (note_before & ~same_as_previous)).nonzero()[0]
    if not len(ends):
        return np.zeros(count, bool)
    file_starts = file_start.nonzero()[0]
    first_end = ends[np.minimum(np.searchsorted(ends, file_starts), len(ends) - 1)]
    # a file's first end, if it lies in that file; else the file has no setup (its start)
    end_of_file = np.zeros(int(file[-1]) + 1, np.int64)
    end_of_file[file[file_starts]] = np.where(file[first_end] == file[file_starts], first_end, file_starts)
    return np.arange(count) < end_of_file[file]


def _drop_empty_channels(events: np.ndarray, order: np.ndarray, instruments: list[_Instruments], batch: _Batch) -> np.ndarray:
    """``order`` without the program and control changes of channels without notes."""
    is_empty = np.zeros(batch.count * CHANNELS, bool)
    is_empty[[file * CHANNELS + channel for file, of_file in enumerate(instruments) for channel in of_file.empty]] = True
    kind, file = events[KIND, order], events[FILE, order]
    setting = (kind == PATCH) | (kind == CONTROL)
    drop = setting & is_empty[file * CHANNELS + np.where(setting, events[PARAM0, order], 0)]
    batch.drop("empty_channel", file[drop])
    return order[~drop]


def _emit(events: np.ndarray, options: TokenizerOptions, batch: _Batch) -> list[np.ndarray]:
    """Step 5b: range-check every event and write its token rows, file by
    file. An event out of range is dropped; since times are relative to the
    last *emitted* event, a gap of 128 beats or more drops that event and
    every later one of its file."""
    count = events.shape[1]
    kind, track, file = events[KIND], events[TRACK], events[FILE]
    params = events[PARAM0:POSITION]
    # as unsigned numbers, negative values are too large: one comparison checks both ends
    params_bad = params.view(np.uint64) >= _PARAM_LIMIT.take(kind, axis=1)
    track_bad = track.view(np.uint64) >= MAX_TRACKS
    ok = ~(params_bad.any(axis=0) | track_bad)
    candidates = ok.nonzero()[0]
    beat = events[TIME, candidates] >> STEP_BITS
    relative = np.empty(len(candidates), np.int64)
    if len(candidates):
        relative[0] = beat[0]
        np.subtract(beat[1:], beat[:-1], out=relative[1:])
        candidate_file = file[candidates]
        file_start = np.empty(len(candidates), bool)
        file_start[0] = True
        np.not_equal(candidate_file[1:], candidate_file[:-1], out=file_start[1:])
        relative[file_start] = beat[file_start]
    gaps = (relative >= MAX_TIME1).nonzero()[0]
    alive = ok
    if len(gaps):
        first_gap = np.full(batch.count, count, np.int64)
        np.minimum.at(first_gap, file[candidates[gaps]], candidates[gaps])
        alive = np.arange(count) < first_gap[file]
        batch.drop("gap", file[~alive])
        kept = alive[candidates]
        candidates, relative = candidates[kept], relative[kept]
        failed = (~ok & alive).nonzero()[0]
    else:
        failed = (~ok).nonzero()[0]
    if len(failed):
        long_note = (kind[failed] == NOTE) & (params[3, failed] >= MAX_DURATION) & ~params_bad[:3, failed].any(axis=0) & ~track_bad[failed]
        batch.drop("long_note", file[failed[long_note]])
        batch.drop("out_of_range", file[failed[~long_note]])

    emitted = events if len(candidates) == count else events.take(candidates, axis=1)
    kinds, emitted_file = emitted[KIND], emitted[FILE]
    per_file = np.bincount(emitted_file, minlength=batch.count)
    extra = 1 if options.add_bos_eos else 0
    sizes = per_file + 2 * extra
    ends = sizes.cumsum()
    starts = ends - sizes
    # token rows as columns while they are assembled: [EVENT_LEN, rows of all files]
    tokens = np.zeros((vocab.EVENT_LEN, int(ends[-1])), vocab.TOKEN_DTYPE)
    # emitted events are in file order: event i goes to its file's block, after the BOS row
    at = np.arange(len(candidates)) + (starts + extra - (per_file.cumsum() - per_file))[emitted_file]
    tokens[0, at] = _EVENT_ID[kinds]
    tokens[1, at] = relative + vocab.PARAM_OFFSET["time1"]
    tokens[2, at] = (emitted[TIME] & (STEPS_PER_BEAT - 1)) + vocab.PARAM_OFFSET["time2"]
    tokens[3, at] = emitted[TRACK] + vocab.PARAM_OFFSET["track"]
    for slot in range(4):  # row by row: a scatter along the second axis of a 2-D array is slow
        tokens[4 + slot, at] = emitted[PARAM0 + slot] + _PARAM_OFFSET[slot].take(kinds)
    if extra:
        tokens[0, starts] = vocab.BOS
        tokens[0, ends - 1] = vocab.EOS
    rows = np.ascontiguousarray(tokens.T)
    for report, events_of_file in zip(batch.reports, per_file.tolist(), strict=True):
        report.output_events = events_of_file
    return [rows[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]
