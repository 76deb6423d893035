"""Step 5: sort, collapse the "setup" before the first note, drop the
settings of empty channels, and emit token rows with range checks."""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.tokenizer.encoder.dedup import dedup_key
from midilm.tokenizer.encoder.grouping import sort_groups, sort_order
from midilm.tokenizer.encoder.layout import Instruments
from midilm.tokenizer.encoder.table import FILE, POSITION, TIME, Batch, track_key
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.score import CONTROL, KIND, NOTE, PARAM0, PATCH, TIME_SIG, TRACK
from midilm.vocab import CHANNELS, MAX_TRACKS, STEPS_PER_BEAT

STEP_BITS = STEPS_PER_BEAT.bit_length() - 1
"""beat = time >> STEP_BITS, step = time & (STEPS_PER_BEAT - 1)."""
MAX_TIME1 = vocab.PARAM_SIZES["time1"]
MAX_DURATION = vocab.PARAM_SIZES["duration"]

SORT_ORDER = ("time_signature", "key_signature", "set_tempo", "patch_change", "control_change", "note")
"""The order of event types at the same time and track (the reference's)."""
_SORT_RANK = np.array([SORT_ORDER.index(name) for name in vocab.EVENT_NAMES], np.int64)

_PARAM_NAMES = [vocab.EVENT_PARAMS[name][vocab.CHANNEL_SLOT - 1 :] for name in vocab.EVENT_NAMES]
"""Each kind's parameters after time1, time2 and track: the working table's PARAM0..PARAM3."""
_PARAM_SLOTS = range(PARAM0, POSITION)
_PARAM_OFFSET = np.zeros((len(_PARAM_SLOTS), len(_PARAM_NAMES)), np.int64)
_PARAM_LIMIT = np.ones((len(_PARAM_SLOTS), len(_PARAM_NAMES)), np.uint64)
"""Token offset and size of each parameter slot (row) of each kind (column).
A slot the kind does not use must hold 0, and becomes PAD (offset 0)."""
assert vocab.PAD == 0 and max(map(len, _PARAM_NAMES)) == len(_PARAM_SLOTS)
for _kind, _names in enumerate(_PARAM_NAMES):
    for _slot, _name in enumerate(_names):
        _PARAM_OFFSET[_slot, _kind] = vocab.PARAM_OFFSET[_name]
        _PARAM_LIMIT[_slot, _kind] = vocab.PARAM_SIZES[_name]
_EVENT_ID = np.array([vocab.EVENT_ID[name] for name in vocab.EVENT_NAMES], np.int64)


def sort_events(events: np.ndarray) -> np.ndarray:
    """The order of events in event-list order (POSITION increasing) sorted
    by (file, time, track, kind rank), ties in event-list order."""
    return sort_order(events[FILE], events[TIME], events[TRACK], _SORT_RANK[events[KIND]], nearly_sorted=True)


def collapse_setup(events: np.ndarray, order: np.ndarray, batch: Batch) -> np.ndarray:
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
    first, second = dedup_key(setup)
    file_track = track_key(setup)
    group_order, starts, ends = sort_groups(file_track, kind, first, second)
    batch.drop("setup_replaced", setup[FILE, group_order[~ends]])
    # the last of each group survives, in the place of the group's first member, at time 0
    first_member = group_order[np.maximum.accumulate(np.where(starts, np.arange(len(group_order)), 0))[ends]]
    survivor = group_order[ends]
    events[TIME, setup_at[survivor]] = setup[TIME, survivor]
    events[POSITION, setup_at[survivor]] = first_member
    kept = setup_at[survivor[np.argsort(first_member)]]
    kept = kept[sort_order(events[FILE, kept], events[TIME, kept], events[TRACK, kept], _SORT_RANK[events[KIND, kept]], nearly_sorted=True)]
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


def drop_empty_channels(events: np.ndarray, order: np.ndarray, instruments: list[Instruments], batch: Batch) -> np.ndarray:
    """``order`` without the program and control changes of channels without notes."""
    is_empty = np.zeros(batch.count * CHANNELS, bool)
    is_empty[[file * CHANNELS + channel for file, of_file in enumerate(instruments) for channel in of_file.empty]] = True
    kind, file = events[KIND, order], events[FILE, order]
    setting = (kind == PATCH) | (kind == CONTROL)
    drop = setting & is_empty[file * CHANNELS + np.where(setting, events[PARAM0, order], 0)]
    batch.drop("empty_channel", file[drop])
    return order[~drop]


def emit(events: np.ndarray, options: TokenizerOptions, batch: Batch) -> list[np.ndarray]:
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
    before_start = events[TIME] < 0  # (hand-built scores only) a negative time1 is out of range too
    ok = ~(params_bad.any(axis=0) | track_bad | before_start)
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
    tokens[vocab.EVENT_SLOT, at] = _EVENT_ID[kinds]
    tokens[vocab.TIME1_SLOT, at] = relative + vocab.PARAM_OFFSET["time1"]
    tokens[vocab.TIME2_SLOT, at] = (emitted[TIME] & (STEPS_PER_BEAT - 1)) + vocab.PARAM_OFFSET["time2"]
    tokens[vocab.TRACK_SLOT, at] = emitted[TRACK] + vocab.PARAM_OFFSET["track"]
    for slot in range(len(_PARAM_SLOTS)):  # row by row: a scatter along the second axis of a 2-D array is slow
        tokens[vocab.CHANNEL_SLOT + slot, at] = emitted[PARAM0 + slot] + _PARAM_OFFSET[slot].take(kinds)
    if extra:
        tokens[vocab.EVENT_SLOT, starts] = vocab.BOS
        tokens[vocab.EVENT_SLOT, ends - 1] = vocab.EOS
    rows = np.ascontiguousarray(tokens.T)
    for report, events_of_file in zip(batch.reports, per_file.tolist(), strict=True):
        report.output_events = events_of_file
    return [rows[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]
