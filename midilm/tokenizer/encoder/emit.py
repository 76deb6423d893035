"""Step 5: sort, collapse the "setup" before the first note, drop the
settings of empty channels, and emit token rows with range checks."""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.tokenizer.columns import PARAM_FIELDS, Columns
from midilm.tokenizer.encoder.dedup import dedup_key
from midilm.tokenizer.encoder.grouping import sort_groups, sort_order
from midilm.tokenizer.encoder.layout import Instruments
from midilm.tokenizer.encoder.table import Batch
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.score import CONTROL, NOTE, PATCH, TIME_SIG
from midilm.vocab import CHANNELS, MAX_TRACKS, STEPS_PER_BEAT

STEP_BITS = STEPS_PER_BEAT.bit_length() - 1
"""beat = time >> STEP_BITS, step = time & (STEPS_PER_BEAT - 1)."""
MAX_TIME1 = vocab.PARAM_SIZES["time1"]
STRETCH = 1 << 16
"""Events checked or written at once (lookups by kind take temporary memory)."""
MAX_DURATION = vocab.PARAM_SIZES["duration"]

SORT_ORDER = ("time_signature", "key_signature", "set_tempo", "patch_change", "control_change", "note")
"""The order of event types at the same time and track (the reference's)."""
_SORT_RANK = np.array([SORT_ORDER.index(name) for name in vocab.EVENT_NAMES], np.int8)

_PARAM_NAMES = [vocab.EVENT_PARAMS[name][vocab.CHANNEL_SLOT - 1 :] for name in vocab.EVENT_NAMES]
"""Each kind's parameters after time1, time2 and track: the table's param0..param3."""
_PARAM_OFFSET = np.zeros((4, len(_PARAM_NAMES)), np.int64)
_PARAM_LIMIT = np.ones((4, len(_PARAM_NAMES)), np.uint64)
"""Token offset and size of each parameter slot (row) of each kind (column).
A slot the kind does not use must hold 0, and becomes PAD (offset 0)."""
assert vocab.PAD == 0 and max(map(len, _PARAM_NAMES)) == 4
for _kind, _names in enumerate(_PARAM_NAMES):
    for _slot, _name in enumerate(_names):
        _PARAM_OFFSET[_slot, _kind] = vocab.PARAM_OFFSET[_name]
        _PARAM_LIMIT[_slot, _kind] = vocab.PARAM_SIZES[_name]
_EVENT_ID = np.array([vocab.EVENT_ID[name] for name in vocab.EVENT_NAMES], vocab.TOKEN_DTYPE)
_KEEPS_TIME = np.zeros(len(vocab.EVENT_NAMES), bool)
_KEEPS_TIME[[NOTE, TIME_SIG]] = True
"""Kinds that keep their own time when the setup collapses to time 0."""


def sort_events(events: Columns, batch: Batch) -> np.ndarray:
    """The order of the events (in event-list order) sorted by (file, time,
    track, kind rank), ties in event-list order."""
    return sort_order(*batch.keys(events.file, events.time, events.track, _SORT_RANK[events.kind]))


def collapse_setup(events: Columns, order: np.ndarray, batch: Batch) -> np.ndarray:
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
    if batch.single:
        end = _setup_end(events, order)
        in_setup: slice | np.ndarray = slice(0, end)
        file = None
    else:
        file = events.file[order]
        in_setup = _setup(file, events.time[order], events.kind[order])
    setup_at = order[in_setup]
    if not len(setup_at):
        return order
    setup = events.take(setup_at)
    first, second = dedup_key(setup)
    group_order, starts, ends = sort_groups(*batch.keys(setup.file, setup.track, setup.kind, first, second))
    if ends.all() and not setup.time.any():
        return order  # one event per key, all at time 0: the setup is collapsed already
    setup.time[~_KEEPS_TIME[setup.kind]] = 0
    batch.drop("setup_replaced", setup.file, group_order[~ends])
    # the last of each group survives, in the place of the group's first member, at time 0
    first_member = group_order[np.maximum.accumulate(np.where(starts, np.arange(len(group_order)), 0))[ends]]
    survivor = group_order[ends]
    events.time[setup_at[survivor]] = setup.time[survivor]
    kept = setup_at[survivor[np.argsort(first_member)]]
    kept = kept[sort_order(*batch.keys(events.file[kept], events.time[kept], events.track[kept], _SORT_RANK[events.kind[kept]]))]
    if batch.single:
        return np.concatenate([kept, order[in_setup.stop :]])
    rest = order[~in_setup]
    # each file: its kept settings, sorted, then the rest of its events
    kept_count = np.bincount(events.file[kept], minlength=batch.count)
    rest_file = file[~in_setup]
    rest_count = np.bincount(rest_file, minlength=batch.count)
    file_end = (kept_count + rest_count).cumsum()
    collapsed = np.empty(len(kept) + len(rest), np.int64)
    collapsed[np.arange(len(kept)) + (file_end - rest_count - kept_count.cumsum())[events.file[kept]]] = kept
    collapsed[np.arange(len(rest)) + (file_end - rest_count.cumsum())[rest_file]] = rest
    return collapsed


def _setup(file: np.ndarray, time: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Whether each event (sorted; its file, time and kind given) lies before
    the event that ends its file's setup. A file without one has no setup."""
    count = len(time)
    file_start = np.empty(count, bool)
    file_start[0] = True
    np.not_equal(file[1:], file[:-1], out=file_start[1:])
    ends = _ends_setup(time, kind, file_start).nonzero()[0]
    if not len(ends):
        return np.zeros(count, bool)
    file_starts = file_start.nonzero()[0]
    first_end = ends[np.minimum(np.searchsorted(ends, file_starts), len(ends) - 1)]
    # a file's first end, if it lies in that file; else the file has no setup (its start)
    end_of_file = np.zeros(int(file[-1]) + 1, np.int64)
    end_of_file[file[file_starts]] = np.where(file[first_end] == file[file_starts], first_end, file_starts)
    return np.arange(count) < end_of_file[file]


def _setup_end(events: Columns, order: np.ndarray) -> int:
    """The setup of a single file's sorted events ``order``: its length
    (0: none). The setup ends early in any real file, so the events are
    looked at in growing prefixes."""
    size = 64
    while True:
        prefix = order[: size + 1]  # the event after the prefix tells whether its last event is followed at the same time
        ends = _ends_setup(events.time[prefix], events.kind[prefix], None)
        last = len(prefix) if len(prefix) == len(order) else size
        found = ends[:last].nonzero()[0]
        if len(found):
            return int(found[0])
        if last == len(order):
            return 0
        size *= 16


def _ends_setup(time: np.ndarray, kind: np.ndarray, file_start: np.ndarray | None) -> np.ndarray:
    """Which sorted events (of one file when ``file_start`` is None) would
    end the setup, the reference's walk: a note not followed by an event at
    the same time, or an event after a note not at the time of the one
    before it."""
    count = len(time)
    same_time = (time >> STEP_BITS) + (time & (STEPS_PER_BEAT - 1))
    same_as_previous = np.zeros(count, bool)
    np.equal(same_time[1:], same_time[:-1], out=same_as_previous[1:])
    del same_time
    if file_start is not None:
        same_as_previous &= ~file_start
    same_as_next = np.zeros(count, bool)
    same_as_next[:-1] = same_as_previous[1:]
    note = kind == NOTE
    notes_before = np.cumsum(note) - note
    if file_start is None:
        note_before = notes_before > 0
    else:
        note_before = notes_before > notes_before[np.maximum.accumulate(np.where(file_start, np.arange(count), 0))]
    return (note & ~same_as_next) | (note_before & ~same_as_previous)


def drop_empty_channels(events: Columns, order: np.ndarray, instruments: list[Instruments], batch: Batch) -> np.ndarray:
    """``order`` without the program and control changes of channels without notes."""
    is_empty = np.zeros(batch.count * CHANNELS, bool)
    is_empty[[file * CHANNELS + channel for file, of_file in enumerate(instruments) for channel in of_file.empty]] = True
    kind, file = events.kind[order], events.file[order]
    setting = (kind == PATCH) | (kind == CONTROL)
    drop = setting & is_empty[batch.file_key(file, np.where(setting, events.param0[order], 0), CHANNELS)]
    batch.drop("empty_channel", file, drop)
    return order[~drop]


def _unsigned(values: np.ndarray) -> np.ndarray:
    """The same bits as unsigned integers: negative values become too large."""
    return values.view(np.dtype(f"u{values.itemsize}"))


def _out_of_range(events: Columns, rows: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
    """Of the events at ``rows``: whether each is out of the vocabulary's range
    (any parameter, the track, a negative time), and whether each is a note
    whose parameters are all in range but its duration (``long_note``)."""
    kind = events.kind[rows]
    # as unsigned numbers, negative values are too large: one comparison checks both ends
    bad = _unsigned(events.track[rows]) >= MAX_TRACKS
    for slot, param in enumerate(events.params[:3]):
        bad |= _unsigned(param[rows]) >= _PARAM_LIMIT[slot].take(kind)
    long_note = _unsigned(events.param3[rows]) >= _PARAM_LIMIT[3].take(kind)
    long_note &= kind == NOTE
    long_note &= ~bad
    bad |= long_note
    bad |= events.time[rows] < 0  # (hand-built scores only) a negative time1 is out of range too
    return bad, long_note


def emit(events: Columns, options: TokenizerOptions, batch: Batch) -> list[np.ndarray]:
    """Step 5b: range-check every event (sorted, file after file) and write
    its token rows, file by file. An event out of range is dropped; since
    times are relative to the last *emitted* event, a gap of 128 beats or
    more drops that event and every later one of its file."""
    count = len(events)
    ok = np.empty(count, bool)
    for start in range(0, count, STRETCH):  # its lookups by kind take a stretch's worth of memory at a time
        np.logical_not(_out_of_range(events, slice(start, start + STRETCH))[0], out=ok[start : start + STRETCH])
    candidates = None if ok.all() else ok.nonzero()[0]
    beat = events.time >> STEP_BITS
    if candidates is not None:
        beat = beat[candidates]
    relative = np.empty_like(beat)
    if len(beat):
        relative[0] = beat[0]
        np.subtract(beat[1:], beat[:-1], out=relative[1:])
        if not batch.single:
            candidate_file = events.file if candidates is None else events.file[candidates]
            file_start = np.empty(len(beat), bool)
            file_start[0] = True
            np.not_equal(candidate_file[1:], candidate_file[:-1], out=file_start[1:])
            relative[file_start] = beat[file_start]
    del beat
    gaps = (relative >= MAX_TIME1).nonzero()[0]
    if len(gaps):
        if candidates is None:
            candidates = np.arange(count)
        first_gap = np.full(batch.count, count, np.int64)
        np.minimum.at(first_gap, events.file[candidates[gaps]], candidates[gaps])
        alive = np.arange(count) < first_gap[events.file]
        batch.drop("gap", events.file, ~alive)
        kept = alive[candidates]
        candidates, relative = candidates[kept], relative[kept]
        ok |= ~alive  # counted as gaps, not as out of range
    if not ok.all():
        failed = (~ok).nonzero()[0]
        long_note = _out_of_range(events, failed)[1]
        batch.drop("long_note", events.file, failed[long_note])
        batch.drop("out_of_range", events.file, failed[~long_note])
    del ok
    if candidates is not None:
        events.keep(candidates)
        del candidates
    return _token_rows(events, relative, options, batch)


_PARAM_OFFSET_TOKENS = _PARAM_OFFSET.astype(vocab.TOKEN_DTYPE)


def _token_rows(events: Columns, relative: np.ndarray, options: TokenizerOptions, batch: Batch) -> list[np.ndarray]:
    """Each file's token rows: BOS, a row per event (``relative``: its beats
    since the event before), EOS. Written field by field into the rows,
    a stretch of events at a time."""
    count, kind = len(events), events.kind
    extra = 1 if options.add_bos_eos else 0
    per_file = np.array([count]) if batch.single else np.bincount(events.file, minlength=batch.count)
    sizes = per_file + 2 * extra
    ends = sizes.cumsum()
    starts = ends - sizes
    tokens = np.zeros((int(ends[-1]), vocab.EVENT_LEN), vocab.TOKEN_DTYPE)
    rows = tokens[extra : extra + count] if batch.single else np.zeros((count, vocab.EVENT_LEN), vocab.TOKEN_DTYPE)
    for start in range(0, count, STRETCH):  # lookups by kind take a stretch's worth of memory at a time
        part = slice(start, start + STRETCH)
        block, of_kind = rows[part], kind[part]
        _EVENT_ID.take(of_kind, out=block[:, vocab.EVENT_SLOT])
        np.add(relative[part], vocab.PARAM_OFFSET["time1"], out=block[:, vocab.TIME1_SLOT], casting="unsafe")
        np.bitwise_and(events.time[part], STEPS_PER_BEAT - 1, out=block[:, vocab.TIME2_SLOT], casting="unsafe")
        block[:, vocab.TIME2_SLOT] += vocab.PARAM_OFFSET["time2"]
        np.add(events.track[part], vocab.PARAM_OFFSET["track"], out=block[:, vocab.TRACK_SLOT], casting="unsafe")
        for slot, name in enumerate(PARAM_FIELDS):
            column = block[:, vocab.CHANNEL_SLOT + slot]
            _PARAM_OFFSET_TOKENS[slot].take(of_kind, out=column)
            np.add(column, getattr(events, name)[part], out=column, casting="unsafe")
    del relative
    if not batch.single:
        # emitted events are in file order: event i goes to its file's block, after the BOS row
        tokens[np.arange(count) + (starts + extra - (per_file.cumsum() - per_file))[events.file]] = rows
    if extra:
        tokens[starts, vocab.EVENT_SLOT] = vocab.BOS
        tokens[ends - 1, vocab.EVENT_SLOT] = vocab.EOS
    for report, events_of_file in zip(batch.reports, per_file.tolist(), strict=True):
        report.output_events = events_of_file
    if batch.single:
        return [tokens]
    return [tokens[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]
