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
STRETCH = 1 << 14
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
assert [vocab.EVENT_ID[name] for name in vocab.EVENT_NAMES] == list(
    range(vocab.FIRST_EVENT_ID, vocab.FIRST_EVENT_ID + len(vocab.EVENT_NAMES))
)
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
        bounds = [0, len(order)]
    else:
        bounds = np.searchsorted(events.file[order], np.arange(batch.count + 1)).tolist()
    in_setup = np.zeros(len(order), bool)
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        in_setup[start : _setup_end(events, order, start, stop)] = True
    setup_at = order[in_setup]
    if not len(setup_at) or _collapsed_already(events, setup_at):
        return order
    setup = events.take(setup_at)
    setup.time[~_KEEPS_TIME[setup.kind]] = 0
    group_order, starts, ends = sort_groups(*batch.keys(setup.file, setup.track, setup.kind, *dedup_key(setup)))
    batch.drop("setup_replaced", setup.file, group_order[~ends])
    # the last of each group survives, in the place of the group's first member, at time 0
    first_member = group_order[np.maximum.accumulate(np.where(starts, np.arange(len(group_order)), 0))[ends]]
    survivor = group_order[ends]
    events.time[setup_at[survivor]] = setup.time[survivor]
    kept = setup_at[survivor[np.argsort(first_member)]]
    kept = kept[sort_order(*batch.keys(events.file[kept], events.time[kept], events.track[kept], _SORT_RANK[events.kind[kept]]))]
    rest = order[~in_setup]
    if batch.single:
        return np.concatenate([kept, rest])
    # each file: its kept settings, sorted, then the rest of its events
    kept_count = np.bincount(events.file[kept], minlength=batch.count)
    rest_file = events.file[rest]
    rest_count = np.bincount(rest_file, minlength=batch.count)
    file_end = (kept_count + rest_count).cumsum()
    collapsed = np.empty(len(kept) + len(rest), np.int64)
    collapsed[np.arange(len(kept)) + (file_end - rest_count - kept_count.cumsum())[events.file[kept]]] = kept
    collapsed[np.arange(len(rest)) + (file_end - rest_count.cumsum())[rest_file]] = rest
    return collapsed


def _setup_end(events: Columns, order: np.ndarray, start: int, stop: int) -> int:
    """Where the setup of one file's sorted events ``order[start:stop]`` ends
    (``start``: it has none), by the reference's walk: it stops at a note not
    followed by an event at the same time, or at an event after a note not at
    the time of the one before it. The setup ends early in any real file, so
    the walk reads the events in growing windows."""
    size = 32
    while True:
        window = order[start : min(stop, start + size + 1)]  # one more: is the last followed at the same time?
        time = events.time[window]
        same_time = ((time >> STEP_BITS) + (time & (STEPS_PER_BEAT - 1))).tolist()
        note = (events.kind[window] == NOTE).tolist()
        count = len(window)
        walked = count if start + count >= stop else count - 1
        notes_seen = False
        for at in range(walked):
            followed = at + 1 < count and same_time[at] == same_time[at + 1]
            if (note[at] and not followed) or (notes_seen and same_time[at] != same_time[at - 1]):
                return start + at
            notes_seen = notes_seen or note[at]
        if walked == count:
            return start  # no event ends it: nothing changes
        size *= 16


def _collapsed_already(events: Columns, setup_at: np.ndarray) -> bool:
    """Whether collapsing the setup would change nothing: its events are all
    at time 0 and no two share a key (kind, track, channel, pitch or controller)."""
    if events.time[setup_at].any():
        return False
    setup = events.take(setup_at)
    first, second = dedup_key(setup)
    columns = (setup.file, setup.track, setup.kind, first, second)
    keys = list(zip(*(column.tolist() for column in columns), strict=True))
    return len(set(keys)) == len(keys)


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


def emit(events: Columns, options: TokenizerOptions, batch: Batch) -> list[np.ndarray]:
    """Step 5b: range-check every event (sorted, file after file) and write
    its token rows, file by file. An event out of range is dropped; since
    times are relative to the last *emitted* event, a gap of 128 beats or
    more drops that event and every later one of its file."""
    count = len(events)
    extra = 1 if options.add_bos_eos else 0
    # every event's row is written (but time1), then the rows of events out of range are left out
    written = np.zeros((count + 2 * extra, vocab.EVENT_LEN), vocab.TOKEN_DTYPE)
    rows = written[extra : extra + count]
    ok = np.empty(count, bool)
    long_note = np.zeros(count, bool)
    for start in range(0, count, STRETCH):  # the 2-D values take a stretch's worth of memory at a time
        part = slice(start, start + STRETCH)
        _write(events, part, rows[part], ok[part], long_note[part])
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
        failed = ~ok
        batch.drop("long_note", events.file, failed & long_note)
        batch.drop("out_of_range", events.file, failed & ~long_note)
    del ok, long_note
    if candidates is None:
        file = events.file
    else:
        file = events.file[candidates]
        rows = rows[candidates]
    np.add(relative, vocab.PARAM_OFFSET["time1"], out=rows[:, vocab.TIME1_SLOT], casting="unsafe")
    del relative
    per_file = np.array([len(file)]) if batch.single else np.bincount(file, minlength=batch.count)
    for report, events_of_file in zip(batch.reports, per_file.tolist(), strict=True):
        report.output_events = events_of_file
    if batch.single and candidates is None:
        tokens = written
    else:  # the rows kept, each file's after a BOS row
        tokens = np.zeros((len(file) + 2 * extra * batch.count, vocab.EVENT_LEN), vocab.TOKEN_DTYPE)
        tokens[np.arange(len(file)) + (np.arange(batch.count) * 2 + 1)[file] * extra] = rows
    del rows, written
    sizes = per_file + 2 * extra
    ends = sizes.cumsum()
    starts = ends - sizes
    if extra:
        tokens[starts, vocab.EVENT_SLOT] = vocab.BOS
        tokens[ends - 1, vocab.EVENT_SLOT] = vocab.EOS
    if batch.single:
        return [tokens]
    return [tokens[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]


def _write(events: Columns, part: slice, rows: np.ndarray, ok: np.ndarray, long_note: np.ndarray) -> None:
    """The token rows of the events in ``part`` but their time1, and whether
    each event is in the vocabulary's range (``ok``) or a note too long."""
    kind = events.kind[part]
    params = np.empty((len(PARAM_FIELDS), len(kind)), np.int64)
    for slot, name in enumerate(PARAM_FIELDS):
        params[slot] = getattr(events, name)[part]
    # as unsigned numbers, negative values are too large: one comparison checks both ends
    bad = params.view(np.uint64) >= _PARAM_LIMIT.take(kind, axis=1)
    other_bad = bad[0] | bad[1] | bad[2] | (_unsigned(events.track[part]) >= MAX_TRACKS)
    np.logical_and(bad[3], kind == NOTE, out=long_note)
    long_note &= ~other_bad
    np.logical_or(other_bad, bad[3], out=ok)
    ok |= events.time[part] < 0  # (hand-built scores only) a negative time1 is out of range too
    np.logical_not(ok, out=ok)
    params += _PARAM_OFFSET.take(kind, axis=1)
    rows[:, vocab.CHANNEL_SLOT :] = params.T
    np.add(kind, vocab.FIRST_EVENT_ID, out=rows[:, vocab.EVENT_SLOT], casting="unsafe")
    np.bitwise_and(events.time[part], STEPS_PER_BEAT - 1, out=rows[:, vocab.TIME2_SLOT], casting="unsafe")
    rows[:, vocab.TIME2_SLOT] += vocab.PARAM_OFFSET["time2"]
    np.add(events.track[part], vocab.PARAM_OFFSET["track"], out=rows[:, vocab.TRACK_SLOT], casting="unsafe")
