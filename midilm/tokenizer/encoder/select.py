"""Step 1: the events the reference keeps from a score, converted to token values.

Quantise times, check each event, and filter repeated programs, control
changes within ``cc_eps`` and tempos within ``tempo_eps`` (per track).
"""

from __future__ import annotations

import numpy as np

from midilm import vocab
from midilm.tokenizer.encoder.grouping import sort_groups, sort_order
from midilm.tokenizer.encoder.table import FILE, POSITION, TIME, Batch, track_key
from midilm.tokenizer.options import TokenizerOptions
from midilm.tokenizer.score import CONTROL, KEY_SIG, KIND, NOTE, PARAM0, PARAM1, PARAM2, PARAM3, PATCH, TEMPO, TIME_SIG, TRACK
from midilm.vocab import CHANNELS, MAX_TRACKS, SF_OFFSET, STEPS_PER_BEAT

MAX_BPM = vocab.PARAM_SIZES["bpm"] - 1
"""Faster tempos are clamped to this bpm (the reference's rule)."""


def quantize(ticks: np.ndarray, ticks_per_beat: float | np.ndarray) -> np.ndarray:
    """``round(16 * tick / ticks_per_beat)`` with Python's float division and
    round-half-even, as the reference computes it (exact for ticks < 2**48)."""
    return np.rint((ticks * STEPS_PER_BEAT) / ticks_per_beat).astype(np.int64)


def tempo_to_bpm(microseconds_per_beat: np.ndarray) -> np.ndarray:
    """``min(int(60 / (tempo / 10**6)), 383)``, the reference's float arithmetic."""
    return np.minimum((60 / (microseconds_per_beat / 1e6)).astype(np.int64), MAX_BPM)


_NN, _DD, _MI = vocab.PARAM_SIZES["nn"], vocab.PARAM_SIZES["dd"], vocab.PARAM_SIZES["mi"]
_VALIDITY = (
    ("invalid_tempo", TEMPO, lambda first, second: first == 0),
    ("invalid_time_signature", TIME_SIG, lambda first, second: (first < 1) | (first > _NN) | (second < 1) | (second > _DD)),
    ("invalid_key_signature", KEY_SIG, lambda first, second: (first < -SF_OFFSET) | (first > SF_OFFSET) | (second < 0) | (second >= _MI)),
)
"""The reference's checks of meta events before anything else: (reason, kind, invalid rows)."""


def select(events: np.ndarray, options: TokenizerOptions, batch: Batch) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: the events the reference keeps from the scores, in score order,
    converted in place to working values; also the FILE and sf fields of
    every key signature kept here (raw mode decides about key detection on
    them, before deduplication)."""
    if not events.shape[1]:
        return events, np.zeros((2, 0), np.int64)
    kind, file = events[KIND], events[FILE]
    present = np.bincount(kind, minlength=len(vocab.EVENT_NAMES))
    keep = events[TRACK] < MAX_TRACKS
    if not keep.all():
        batch.drop("track_limit", file[~keep])
    first, second = events[PARAM0], events[PARAM1]
    if present[: CONTROL + 1].any():  # kinds with a channel
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
        events[PARAM0:PARAM2, time_sig] -= np.array([[vocab.NN_OFFSET], [vocab.DD_OFFSET]])
        events[PARAM2:POSITION, time_sig] = 0
    if present[KEY_SIG]:
        events[PARAM0, kind == KEY_SIG] += SF_OFFSET

    keep = _repeat_filter(events, present, options, batch)
    if keep is not None:
        events = events.compress(keep, axis=1)
    events[POSITION] = np.arange(events.shape[1])
    key_sf = events[[FILE, PARAM0]].compress(events[KIND] == KEY_SIG, axis=1) if present[KEY_SIG] else np.zeros((2, 0), np.int64)
    return events, key_sf


def _repeat_filter(events: np.ndarray, present: np.ndarray, options: TokenizerOptions, batch: Batch) -> np.ndarray | None:
    """Which events survive the reference's per-track repeat filters (None:
    all): a program equal to the channel's last one, a control value within
    ``cc_eps`` of the last kept one (initially 0), a tempo within
    ``tempo_eps`` bpm of the last kept one (initially 0)."""
    if not present[PATCH] and not present[CONTROL] and not present[TEMPO]:
        return None
    keep = np.ones(events.shape[1], bool)
    kind, file, track = events[KIND], events[FILE], track_key(events)
    if present[PATCH]:
        rows = (kind == PATCH).nonzero()[0]
        voice = track[rows] * CHANNELS + events[PARAM0, rows]
        order = sort_order(voice)
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
    order, starts, _ = sort_groups(*keys)
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
