"""Note pairing with numpy: first-in first-out per track and ``channel * 128 + pitch``.

The reference's key is ``channel * 128 + pitch``, so a corrupt pitch of 128
on channel 0 pairs with pitch 0 on channel 1; pitches are bytes, so a key is
below :data:`PITCH_KEYS`.
"""

from __future__ import annotations

import numpy as np

PITCH_KEYS = 1 << 12
"""Pitch keys (``channel * 128 + pitch``, pitch a byte) are below this."""


def key_order(track: np.ndarray, pitch_key: np.ndarray) -> np.ndarray:
    """The stable order of note messages by (track, pitch key); ``track``
    counts from 0 and never decreases (messages come in file order).

    Radix sorts of 16-bit keys where the numbers allow (one pass for up to
    16 tracks, two for up to 65,536), else one sort of a packed unique key.
    """
    count = len(track)
    span = int(track[-1]) + 1 if count else 0
    if span * PITCH_KEYS <= 1 << 16:
        return np.argsort((track * PITCH_KEYS + pitch_key).astype(np.uint16), kind="stable")
    if span <= 1 << 16:
        by_pitch = np.argsort(pitch_key.astype(np.uint16), kind="stable")
        return by_pitch[np.argsort(track[by_pitch].astype(np.uint16), kind="stable")]
    return np.argsort((track * PITCH_KEYS + pitch_key) * count + np.arange(count))


def pair_notes(track: np.ndarray, pitch_key: np.ndarray, is_on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Pair note-ons with note-offs (``is_on`` False) first-in first-out per
    (track, pitch key). The messages are in file order, ``track`` counting
    from 0.

    Returns message indices: (on, off) of the closed notes, the ons never
    closed, and for each of those the first note-on of its key.

    When every key's messages alternate on, off, on, off (most files), the
    sorted messages are (on, off) pairs of one key each; otherwise the keys
    that do not go through :func:`_pair_queues`.
    """
    count = len(track)
    if not count:
        empty = np.zeros(0, np.int64)
        return empty, empty, empty, empty
    order = key_order(track, pitch_key)
    key = (track * PITCH_KEYS + pitch_key)[order]
    on = is_on[order]
    if not count & 1 and on[0::2].all() and not on[1::2].any() and (key[0::2] == key[1::2]).all():
        return order[0::2], order[1::2], order[:0], order[:0]
    # the keys that do not alternate go through the queues; each of the others pairs an on with the next message
    new_key = np.empty(count, bool)
    new_key[0] = True
    np.not_equal(key[1:], key[:-1], out=new_key[1:])
    last_of_key = np.empty(count, bool)
    last_of_key[-1] = True
    last_of_key[:-1] = new_key[1:]
    irregular = (new_key & ~on) | (last_of_key & on)
    irregular[1:] |= ~new_key[1:] & (on[1:] == on[:-1])
    group = new_key.cumsum() - 1
    queued = np.zeros(int(group[-1]) + 1, bool)
    queued[group[irregular]] = True
    queued = queued[group]
    regular_on = (on & ~queued).nonzero()[0]
    at = queued.nonzero()[0]
    queued_on, queued_off, open_on, open_first = (at[index] for index in _pair_queues(key[at], on[at]))
    return (
        order[np.concatenate([regular_on, queued_on])],
        order[np.concatenate([regular_on + 1, queued_off])],
        order[open_on],
        order[open_first],
    )


def _pair_queues(key: np.ndarray, on: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First-in first-out pairing of note messages sorted by key (then in
    file order), ``on`` telling note-ons from note-offs. Returns positions:
    (on, off) of the closed notes, the ons never closed, and for each of
    those the first note-on of its key.

    One queue per key, vectorised: along a key's messages the queue length
    is the running sum of +1 (on) / -1 (off) clamped at 0, which equals
    ``sum - min(0, running minimum of sum)``. An off that finds the queue
    empty is ignored; the k-th accepted off closes the k-th on.
    """
    count = len(key)
    step = on.astype(np.int64) * 2 - 1
    new_key = np.empty(count, bool)
    new_key[0] = True
    np.not_equal(key[1:], key[:-1], out=new_key[1:])
    group = new_key.cumsum() - 1
    running = step.cumsum()
    local = running - (running - step)[new_key][group]
    spacing = 2 * count + 2  # every earlier group's values lie above this group's
    running_min = np.minimum.accumulate(local - group * spacing) + group * spacing
    queue = local - np.minimum(running_min, 0)
    queue_before = np.empty(count, np.int64)
    queue_before[0] = 0
    queue_before[1:] = queue[:-1]
    accepted = ~on & ~new_key & (queue_before > 0)

    on_at = on.nonzero()[0]
    ons_before_key = (on.cumsum() - on)[new_key]
    accepted_count = accepted.cumsum()
    off_at = accepted.nonzero()[0]
    rank = accepted_count[off_at] - (accepted_count - accepted)[new_key][group[off_at]] - 1
    matched = ons_before_key[group[off_at]] + rank
    still_open = np.ones(len(on_at), bool)
    still_open[matched] = False
    open_at = on_at[still_open]
    first_of_key = on_at[ons_before_key[group[open_at]]]
    return on_at[matched], off_at, open_at, first_of_key
