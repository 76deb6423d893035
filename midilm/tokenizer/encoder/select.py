"""Step 1: the events the reference keeps from a score, converted to token values.

Quantise times, check each event, and filter repeated programs, control
changes within ``cc_eps`` and tempos within ``tempo_eps`` (per track).
"""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.tokenizer.columns import SMALL_DTYPE, Columns, narrowed
from midilm.tokenizer.encoder.table import Batch
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.score import CONTROL, KEY_SIG, NOTE, PATCH, TEMPO, TIME_SIG
from midilm.vocab import CHANNELS, MAX_TRACKS, SF_OFFSET, STEPS_PER_BEAT

MAX_BPM = vocab.PARAM_SIZES["bpm"] - 1
"""Faster tempos are clamped to this bpm (the reference's rule)."""
MAX_DURATION = vocab.PARAM_SIZES["duration"]
"""Longer notes are all dropped alike (``long_note``), so durations are kept up to this."""


def quantize(ticks: np.ndarray, ticks_per_beat: float | np.ndarray) -> np.ndarray:
    """``round(16 * tick / ticks_per_beat)`` with Python's float division and
    round-half-even, as the reference computes it (exact for ticks < 2**48),
    as float64."""
    steps = np.multiply(ticks, float(STEPS_PER_BEAT))
    np.divide(steps, ticks_per_beat, out=steps)
    return np.rint(steps, out=steps)


def tempo_to_bpm(microseconds_per_beat: np.ndarray) -> np.ndarray:
    """``min(int(60 / (tempo / 10**6)), 383)``, the reference's float arithmetic."""
    return np.minimum((60 / (microseconds_per_beat / 1e6)).astype(np.int64), MAX_BPM)


_NN, _DD, _MI = vocab.PARAM_SIZES["nn"], vocab.PARAM_SIZES["dd"], vocab.PARAM_SIZES["mi"]
# the valid range of param0 and param1 of time signatures (nn, dd) and key signatures (sf, mi), by kind
_LOW0 = np.array([0, 0, 0, 0, 1, -SF_OFFSET], np.int64)
_HIGH0 = np.array([0, 0, 0, 0, _NN, SF_OFFSET], np.int64)
_LOW1 = np.array([0, 0, 0, 0, 1, 0], np.int64)
_HIGH1 = np.array([0, 0, 0, 0, _DD, _MI - 1], np.int64)
assert TIME_SIG == KEY_SIG - 1 == len(vocab.EVENT_NAMES) - 2
_INVALID = {
    "invalid_channel": (NOTE, PATCH, CONTROL),
    "invalid_tempo": (TEMPO,),
    "invalid_time_signature": (TIME_SIG,),
    "invalid_key_signature": (KEY_SIG,),
}
"""The reference's checks of each event before anything else: reason -> kinds."""
assert PATCH < CONTROL < TEMPO == PATCH + 2  # the kinds with a per-track repeat filter: PATCH..TEMPO


def select(events: Columns, options: TokenizerOptions, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Step 1, in place: the events the reference keeps from the scores, in
    score order, converted to working values. Returns the file and sf of
    every key signature kept (raw mode decides about key detection on them,
    before deduplication)."""
    kind, file = events.kind, events.file
    present = np.bincount(kind, minlength=len(vocab.EVENT_NAMES)) if len(kind) else np.zeros(len(vocab.EVENT_NAMES), np.int64)
    keep = _valid(events, present, batch)

    # times and durations in 1/16 beats
    ticks_per_beat = batch.ticks_per_beat[0] if batch.single else batch.ticks_per_beat[file]
    np.copyto(events.time, quantize(events.time, ticks_per_beat), casting="unsafe")
    duration = quantize(events.param3, ticks_per_beat)
    np.clip(duration, 1, MAX_DURATION, out=duration)
    duration[kind != NOTE] = 0
    events.param3 = duration.astype(SMALL_DTYPE)
    del duration
    if present[TEMPO]:
        tempo = ((kind == TEMPO) & keep).nonzero()[0]
        events.param0[tempo] = tempo_to_bpm(events.param0[tempo])
    if present[TIME_SIG]:
        time_sig = (kind == TIME_SIG).nonzero()[0]
        events.param0[time_sig] -= vocab.NN_OFFSET
        events.param1[time_sig] -= vocab.DD_OFFSET
        events.param2[time_sig] = 0
    if present[KEY_SIG]:
        events.param0[kind == KEY_SIG] += SF_OFFSET

    if present[PATCH] or present[CONTROL] or present[TEMPO]:
        _repeat_filter(events, ((kind >= PATCH) & (kind <= TEMPO) & keep).nonzero()[0], keep, options, batch)
    if not keep.all():
        events.keep(keep)
    # once in 1/16 beats and token values, most fields are small: times fit 32 bits in any real file
    events.time = narrowed(events.time, np.int32)
    events.param0 = narrowed(events.param0, SMALL_DTYPE)
    key_sig = (events.kind == KEY_SIG).nonzero()[0] if present[KEY_SIG] else np.zeros(0, np.int64)
    return events.file[key_sig], events.param0[key_sig]


def _valid(events: Columns, present: np.ndarray, batch: Batch) -> np.ndarray:
    """Which events the reference reads: tracks after the first 128 are not
    read; events with a channel outside 0..15, a tempo of 0, or a time or
    key signature the vocabulary cannot hold are refused (counted by reason)."""
    kind, param0 = events.kind, events.param0
    keep = events.track < MAX_TRACKS
    invalid = (param0 < 0) | (param0 >= CHANNELS)
    invalid &= kind <= CONTROL
    if present[TEMPO]:
        invalid |= (kind == TEMPO) & (param0 == 0)
    if present[TIME_SIG] or present[KEY_SIG]:
        signature = (kind >= TIME_SIG).nonzero()[0]
        of_kind, first, second = kind[signature], param0[signature], events.param1[signature]
        invalid[signature] = (first < _LOW0[of_kind]) | (first > _HIGH0[of_kind]) | (second < _LOW1[of_kind]) | (second > _HIGH1[of_kind])
    if not keep.all():
        batch.drop("track_limit", events.file, ~keep)
        invalid &= keep
    if invalid.any():
        for reason, kinds in _INVALID.items():
            batch.drop(reason, events.file, invalid & np.isin(kind, kinds))
        keep &= ~invalid
    return keep


STRETCH = 1 << 14
"""Events whose values are taken into Python lists at once (a list of Python numbers takes several times an array's memory)."""


def _repeat_filter(events: Columns, rows: np.ndarray, keep: np.ndarray, options: TokenizerOptions, batch: Batch) -> None:
    """The reference's per-track repeat filters, one pass over the events in
    score order (``rows``): a program equal to its channel's last one, a
    control value within ``cc_eps`` of the controller's last kept value, a
    tempo within ``tempo_eps`` bpm of the last kept one (the last kept value
    starts at 0 for both); ``keep`` is cleared where they drop."""
    last: dict[tuple[int, ...], int] = {}
    dropped: dict[int, list[int]] = {PATCH: [], CONTROL: [], TEMPO: []}
    columns = (events.kind, events.file, events.track, events.param0, events.param1, events.param2)
    cc_eps, tempo_eps = options.cc_eps, options.tempo_eps
    for start in range(0, len(rows), STRETCH):
        part = rows[start : start + STRETCH]
        for at, kind, file, track, first, second, third in zip(
            range(start, start + len(part)), *(c[part].tolist() for c in columns), strict=True
        ):
            if kind == PATCH:
                key, value = (file, track, kind, first), second
                if last.get(key) == value:
                    dropped[kind].append(at)
                    continue
            elif kind == CONTROL:
                key, value = (file, track, kind, first, second), third
                if abs(value - last.get(key, 0)) < cc_eps:
                    dropped[kind].append(at)
                    continue
            else:
                key, value = (file, track, kind), first
                if abs(value - last.get(key, 0)) < tempo_eps:
                    dropped[kind].append(at)
                    continue
            last[key] = value
    for kind, reason in ((PATCH, "repeated_patch"), (CONTROL, "cc_within_eps"), (TEMPO, "tempo_within_eps")):
        if dropped[kind]:
            at = rows[dropped[kind]]
            keep[at] = False
            batch.drop(reason, events.file, at)
