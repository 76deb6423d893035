"""A piece of a batch's bytes -> its messages in file order, runs decoded with numpy.

In a run (:mod:`.scan`) every message has exactly three bytes below 0x80:
the last byte of its delta time and its two data bytes, with an explicit
status byte (if any) between the first two. So the low bytes of the runs,
taken three at a time, locate every message at once; the single events are
then slotted in between by position.
"""

from __future__ import annotations

import numpy as np

from midilm.tokenizer.reader.scan import RUNNING, SINGLE_FIELDS

POSITION, DELTA, CODE, A, B = range(SINGLE_FIELDS)
"""Rows of a message table: batch position, delta time, code (status byte,
:data:`~.scan.RUNNING` or a meta code), first and second value."""


def piece_messages(buffer: np.ndarray, start: int, runs: np.ndarray, singles: np.ndarray) -> np.ndarray:
    """The messages of ``buffer`` (bytes of the batch from position ``start``)
    as rows ``[5, count]`` in file order: the runs ``[2, r]`` (start, stop
    positions) decoded, and the single events ``[5, s]`` between them."""
    if not runs.shape[1]:
        return singles
    delta_end, delta, code, a, b = _decode_runs(buffer, runs - start)
    count, singles_count = len(delta_end), singles.shape[1]
    messages = np.empty((SINGLE_FIELDS, count + singles_count), np.int64)
    if singles_count:
        # a single event goes after every run message before it
        single_at = np.searchsorted(delta_end, singles[POSITION] - start) + np.arange(singles_count)
        is_single = np.zeros(count + singles_count, bool)
        is_single[single_at] = True
        messages[:, single_at] = singles
        run_at = (~is_single).nonzero()[0]
        messages[POSITION, run_at] = delta_end + start
        messages[DELTA, run_at] = delta
        messages[CODE, run_at] = code
        messages[A, run_at] = a
        messages[B, run_at] = b
    else:
        np.add(delta_end, start, out=messages[POSITION])
        messages[DELTA], messages[CODE], messages[A], messages[B] = delta, code, a, b
    return messages


_ALTERNATING = (np.arange(1 << 12) & 1).astype(bool)


def _alternating(count: int) -> np.ndarray:
    """False, True, False... ``count`` of them."""
    return _ALTERNATING[:count] if count <= len(_ALTERNATING) else (np.arange(count) & 1).astype(bool)


def _decode_runs(buffer: np.ndarray, runs: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each run message's delta-time end (an offset in ``buffer``), delta time,
    code and two data bytes; ``runs`` are ``[2, r]`` offsets (start, stop)."""
    # the buffer alternates between bytes outside runs and run bytes
    edges = np.empty(2 * runs.shape[1] + 2, np.int64)
    edges[0], edges[-1] = 0, len(buffer)
    edges[1:-1] = runs.T.ravel()
    in_run = np.repeat(_alternating(len(edges) - 1), edges[1:] - edges[:-1])
    low = ((buffer < 0x80) & in_run).nonzero()[0]
    delta_end, data1, data2 = low[0::3], low[1::3], low[2::3]
    delta = buffer[delta_end].astype(np.int64)
    # a delta's other bytes lie between the previous message (or the run's start) and its last byte
    event_start = np.empty(len(delta_end), np.int64)
    event_start[0] = 0
    np.add(data2[:-1], 1, out=event_start[1:])
    event_start[np.searchsorted(delta_end, runs[0])] = runs[0]
    continuation = delta_end - event_start
    longer = continuation.nonzero()[0]
    for back in (1, 2, 3):
        if not len(longer):
            break
        delta[longer] |= (buffer[delta_end[longer] - back].astype(np.int64) & 0x7F) << (7 * back)
        longer = longer[continuation[longer] > back]
    code = np.where(data1 - delta_end == 2, buffer[delta_end + 1], RUNNING)
    return delta_end, delta, code, buffer[data1], buffer[data2]
